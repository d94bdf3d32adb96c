"""Synthetic stores for tests and benchmarks: profiles and runs written through the Store API exactly as
`sgpo profile` and the trainer write them, without a model. Nothing here is product code.

    fill_profile(store, "p", n=240)        # a profile over built-in train queries, harder with difficulty
    fill_big_profile(store, 100_000)       # a 100,000-query profile, for the planner and the Plan page
    fill_run(store, "r", "sgpo", steps=20) # a run: step-0 row, per-step metrics, an eval every 5 steps
"""

from __future__ import annotations

import json
import os

import numpy as np

from sgpo.store import Store


def fill_profile(store: Store, name: str = "synthetic", n: int = 240, samples: int = 8, seed: int = 0,
                 status: str = "done", dataset_spec: str = "builtin:train") -> dict:
    """A profile over n built-in train queries spread over all tasks, harder with difficulty (p_hat 0..1)."""
    from sgpo.data import load_dataset

    frame = None
    if dataset_spec.startswith("builtin:"):  # every n-th query, so every task family appears
        frame = load_dataset(dataset_spec).frame
        frame = frame.iloc[:: max(1, len(frame) // n)].head(n)
    ids = frame["id"].tolist() if frame is not None else [f"q{i}" for i in range(n)]
    tasks = frame["task"].tolist() if frame is not None else ["t"] * n
    levels = frame["difficulty"].astype(int).tolist() if frame is not None else [1] * n
    rng = np.random.default_rng(seed)
    pid = store.create_profile({
        "name": name, "key": f"k-{name}", "status": status, "dataset_hash": "d", "dataset_spec": dataset_spec,
        "model_spec": "starter", "model_hash": "m", "n_params": 1_780_032, "backend": "hf", "samples": samples,
        "queries_total": n, "queries_done": 0, "flops": 0.0, "seconds": 0.0})
    rows = []
    for i in range(n):
        p = max(0.0, 1.0 - levels[i] / 8 + rng.normal(0, 0.2))
        successes = int(rng.binomial(samples, min(p, 1.0)))
        examples = [{"text": f"{ids[i]}-ok", "reward": 1.0}] * min(successes, 2) + \
                   [{"text": f"{ids[i]}-bad", "reward": 0.0}] * min(samples - successes, 2)
        rows.append({"position": i, "query_id": ids[i], "task": tasks[i], "difficulty": levels[i],
                     "samples": samples, "successes": successes, "p_hat": successes / samples,
                     "prompt_tokens": 12, "completion_tokens_total": 8 * samples, "completion_tokens_mean": 8.0,
                     "examples": json.dumps(examples)})
    store.add_profile_batch(pid, rows, {"queries_done": n, "flops": 1e9, "seconds": 3.0,
                                        "tokens_prompt": 12 * samples * n, "tokens_completion": 64 * n})
    return store.find_profile(pid)


def fill_run(store: Store, name: str, strategy: str = "grpo", steps: int = 20, eval_every: int = 5,
             profile_id: int | None = None, speed: float = 1.0, status: str = "finished", phases=(8, 14)) -> int:
    """A run as the trainer writes it: a step-0 row (totals, initial eval), then `steps` metric rows with
    the trainer's names, an eval every `eval_every`; `speed` scales accuracy gained per step."""
    run = store.create_run(name=name, strategy=strategy, config={"steps": steps}, profile_id=profile_id)
    # a running run is owned by a live process (this one), or it would be shown as interrupted
    store.update_run(run, status=status, pid=os.getpid() if status == "running" else None)
    profile_flops = 1e9 if strategy == "sgpo" else 0.0
    rollouts = wasted = 0

    def eval_row(step, total):
        acc = min(0.9, 0.3 + 0.02 * step * speed)
        return {"flops_total": total, "accuracy": acc,
                "data": {"by_difficulty": {"1": min(1.0, acc + 0.2), "2": acc, "3": max(0.0, acc - 0.2)}}}

    store.log_step(run, 0, 0, 0.0, {"flops_profile": profile_flops, "flops_rollout": 0.0, "flops_train": 0.0,
                                    "flops_total": profile_flops, "run_wasted_fraction": None, "initial": True},
                   eval_row(0, profile_flops))
    for step in range(1, steps + 1):
        phase = int(np.searchsorted(phases, step, side="right")) if strategy == "sgpo" else 0
        flops_rollout, flops_train = 2e8 * step, 4e8 * step
        total = profile_flops + flops_rollout + flops_train
        rollouts, wasted = rollouts + 64, wasted + max(0, 48 - 2 * step)
        data = {"reward_mean": step / steps, "rollouts": 64, "wasted_rollouts": max(0, 48 - 2 * step),
                "groups": 8, "informative_groups": min(8, step), "flops_profile": profile_flops,
                "flops_rollout": flops_rollout, "flops_train": flops_train, "flops_total": total, "phase": phase,
                "step_wasted_fraction": max(0, 48 - 2 * step) / 64, "step_informative_fraction": min(8, step) / 8,
                "run_wasted_fraction": wasted / rollouts}
        store.log_step(run, step, phase, 0.1 * step, data, eval_row(step, total) if step % eval_every == 0 else None)
    return run


def fill_big_profile(store: Store, n: int) -> None:
    rng = np.random.default_rng(0)
    pid = store.create_profile({"name": "big", "key": "big", "status": "done", "dataset_spec": "builtin:train",
                                "model_spec": "starter", "n_params": 1_780_032, "samples": 8,
                                "queries_total": n, "queries_done": n, "flops": 1e12})
    succ = rng.binomial(8, rng.beta(0.6, 0.6, n))
    rows = [{"position": i, "query_id": f"q{i:06d}", "task": "t" + str(i % 4), "difficulty": int(i % 7),
             "samples": 8, "successes": int(s), "p_hat": s / 8, "prompt_tokens": 12, "completion_tokens_total": 80,
             "completion_tokens_mean": 10.0, "examples": "[]"} for i, s in enumerate(succ)]
    store.add_profile_batch(pid, rows, {"queries_done": n})
