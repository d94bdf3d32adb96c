"""Synthetic stores for tests and benchmarks: profiles and runs written through the Store API exactly as
`sgpo profile` and the trainer write them, without a model. Nothing here is product code.

    fill_profile(store, "p", n=240)        # a profile over built-in train queries, harder with difficulty
    fill_big_profile(store, 100_000)       # a 100,000-query profile, for the planner and the Plan page
    fill_run(store, "r", "sgpo", steps=20) # a run: step-0 row, per-step metrics, an eval every 5 steps
    fill_long_run(store, "long", steps=20_000)  # a noisy run with every metric the trainer logs, written in bulk
    fill_checkpoint(store, "r", 20)        # a checkpoint folder (the starter's weights) the dashboard lists
    fill_groups(store, "r", 20, profile="p")    # each step's groups and kept completions, as the trainer stores them
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile

import numpy as np

from sgpo.data import load_dataset
from sgpo.model import STARTER_DIR
from sgpo.paths import checkpoint_root
from sgpo.profile import ProfileConfig
from sgpo.store import Store


def fill_profile(
    store: Store,
    name: str = "synthetic",
    n: int = 240,
    samples: int = 8,
    seed: int = 0,
    status: str = "done",
    dataset_spec: str = "builtin:train",
    *,
    skill: float = 0.0,
    model_spec: str = "starter",
    dataset_hash: str = "d",
) -> dict:
    """A profile over n built-in train queries spread over all tasks, harder with difficulty (p_hat 0..1).
    `skill` lifts every query's success rate (a later checkpoint of the same policy: same dataset_hash)."""
    frame = None
    if dataset_spec.startswith("builtin:"):  # every n-th query, so every task family appears
        frame = load_dataset(dataset_spec).frame
        frame = frame.iloc[:: max(1, len(frame) // n)].head(n)
    ids = frame["id"].tolist() if frame is not None else [f"q{i}" for i in range(n)]
    tasks = frame["task"].tolist() if frame is not None else ["t"] * n
    levels = frame["difficulty"].astype(int).tolist() if frame is not None else [1] * n
    rng = np.random.default_rng(seed)
    pid = store.create_profile(
        {
            "name": name,
            "key": f"k-{name}",
            "status": status,
            "dataset_hash": dataset_hash,
            "dataset_spec": dataset_spec,
            "model_spec": model_spec,
            "model_hash": "m",
            "n_params": 1_780_032,
            "backend": "hf",
            "samples": samples,
            "temperature": 1.0,
            "max_new_tokens": ProfileConfig().max_new_tokens,
            "seed": seed,
            "batch_size": ProfileConfig().batch_size,
            "queries_total": n,
            "queries_done": 0,
            "flops": 0.0,
            "seconds": 0.0,
        }
    )
    rows = []
    for i in range(n):
        p = max(0.0, 1.0 - levels[i] / 8 + skill + rng.normal(0, 0.2))
        successes = int(rng.binomial(samples, min(p, 1.0)))
        examples = [{"text": f"{ids[i]}-{model_spec}-ok", "reward": 1.0}] * min(successes, 2) + [
            {"text": f"{ids[i]}-{model_spec}-bad", "reward": 0.0}
        ] * min(samples - successes, 2)
        rows.append(
            {
                "position": i,
                "query_id": ids[i],
                "task": tasks[i],
                "difficulty": levels[i],
                "samples": samples,
                "successes": successes,
                "p_hat": successes / samples,
                "prompt_tokens": 12,
                "completion_tokens_total": 8 * samples,
                "completion_tokens_mean": 8.0,
                "examples": json.dumps(examples),
            }
        )
    store.add_profile_batch(
        pid,
        rows,
        {
            "queries_done": n,
            "flops": 1e9,
            "seconds": 3.0,
            "tokens_prompt": 12 * samples * n,
            "tokens_completion": 64 * n,
        },
    )
    return store.find_profile(pid)


def fill_run(
    store: Store,
    name: str,
    strategy: str = "grpo",
    steps: int = 20,
    eval_every: int = 5,
    profile_id: int | None = None,
    speed: float = 1.0,
    status: str = "finished",
    phases=(8, 14),
) -> int:
    """A run as the trainer writes it: a step-0 row (totals, initial eval), then `steps` metric rows with
    the trainer's names, an eval every `eval_every`; `speed` scales accuracy gained per step."""
    run = store.create_run(name=name, strategy=strategy, config={"steps": steps}, profile_id=profile_id)
    # a running run is owned by a live process (this one), or it would be shown as interrupted
    store.update_run(run, status=status, pid=os.getpid() if status == "running" else None)
    profile_flops = 1e9 if strategy == "sgpo" else 0.0
    rollouts = wasted = 0

    def eval_row(step, total):
        acc = min(0.9, 0.3 + 0.02 * step * speed)
        return {
            "flops_total": total,
            "accuracy": acc,
            "data": {"by_difficulty": {"1": min(1.0, acc + 0.2), "2": acc, "3": max(0.0, acc - 0.2)}},
        }

    store.log_step(
        run,
        0,
        0,
        0.0,
        {
            "flops_profile": profile_flops,
            "flops_rollout": 0.0,
            "flops_train": 0.0,
            "flops_total": profile_flops,
            "run_wasted_fraction": None,
            "initial": True,
        },
        eval_row(0, profile_flops),
    )
    for step in range(1, steps + 1):
        phase = int(np.searchsorted(phases, step, side="right")) if strategy == "sgpo" else 0
        flops_rollout, flops_train = 2e8 * step, 4e8 * step
        total = profile_flops + flops_rollout + flops_train
        rollouts, wasted = rollouts + 64, wasted + max(0, 48 - 2 * step)
        data = {
            "reward_mean": step / steps,
            "rollouts": 64,
            "wasted_rollouts": max(0, 48 - 2 * step),
            "groups": 8,
            "informative_groups": min(8, step),
            "flops_profile": profile_flops,
            "flops_rollout": flops_rollout,
            "flops_train": flops_train,
            "flops_total": total,
            "phase": phase,
            "step_wasted_fraction": max(0, 48 - 2 * step) / 64,
            "step_informative_fraction": min(8, step) / 8,
            "run_wasted_fraction": wasted / rollouts,
        }
        store.log_step(run, step, phase, 0.1 * step, data, eval_row(step, total) if step % eval_every == 0 else None)
    return run


def fill_big_profile(store: Store, n: int) -> None:
    rng = np.random.default_rng(0)
    pid = store.create_profile(
        {
            "name": "big",
            "key": "big",
            "status": "done",
            "dataset_spec": "builtin:train",
            "model_spec": "starter",
            "n_params": 1_780_032,
            "samples": 8,
            "queries_total": n,
            "queries_done": n,
            "flops": 1e12,
        }
    )
    succ = rng.binomial(8, rng.beta(0.6, 0.6, n))
    rows = [
        {
            "position": i,
            "query_id": f"q{i:06d}",
            "task": "t" + str(i % 4),
            "difficulty": int(i % 7),
            "samples": 8,
            "successes": int(s),
            "p_hat": s / 8,
            "prompt_tokens": 12,
            "completion_tokens_total": 80,
            "completion_tokens_mean": 10.0,
            "examples": "[]",
        }
        for i, s in enumerate(succ)
    ]
    store.add_profile_batch(pid, rows, {"queries_done": n})


def fill_long_run(
    store: Store,
    name: str,
    strategy: str = "sgpo",
    steps: int = 20_000,
    *,
    seed: int = 0,
    eval_every: int = 100,
    profile_id: int | None = None,
    status: str = "finished",
    forecast: float | None = 0.38,
    config: dict | None = None,
    pid: int | None = None,
    start: int = 0,
    length: int | None = None,
) -> int:
    """A long run with every per-step metric the trainer logs (sgpo/train/loop.py), noise and rare spikes
    included, written in bulk (one transaction) so that 20,000 steps take seconds. sgpo runs get three
    phases and a stored plan whose forecast is `forecast`. `start` > 0 appends steps start+1..steps to an
    existing run named `name` (a live run growing towards `length` steps); `pid` marks it owned by that
    process."""
    rng = np.random.default_rng(seed)
    if start == 0:
        plan = None
        if strategy == "sgpo" and forecast is not None:
            side = {
                "rollouts": 10_000,
                "flops": 5e12,
                "forecast_wasted_fraction": forecast,
                "forecast_informative_fraction": 1 - forecast,
            }
            base = {**side, "forecast_wasted_fraction": 0.55}
            run_side = {
                "steps": steps,
                "forecast_wasted_fraction": forecast,
                "flops_per_informative_rollout": 2.1e9,
                "forecast_informative_fraction": 1 - forecast,
            }
            behaviour = {
                "plan": run_side,
                "baseline": {**run_side, "forecast_wasted_fraction": 0.55},
                "pays": True,
                "reduction_factor": 1.31,
                "flops_profile_share": 0.12,
                "break_even_step": 40,
                "verdict": "sGPO pays with zero-advantage groups skipped (this engine's default): 1.31x",
            }
            plan = {
                "config": {},
                "counts": {},
                "phases": [],
                "forecast": {
                    "plan": side,
                    "baseline": base,
                    "ratio": 1.3,
                    "run": {
                        "skip": behaviour,
                        "train_all": {**behaviour, "reduction_factor": 2.02},
                        "phases": [{"phase": 0, "steps": 10, "forecast_informative_fraction": 0.66}],
                    },
                },
            }
        config = (
            {
                "steps": steps,
                "strategy": strategy,
                "lr": 5e-5,
                "seed": seed,
                "dataset": "builtin:train",
                "model": "starter",
            }
            if config is None
            else config
        )
        run = store.create_run(name=name, strategy=strategy, config=config, plan=plan, profile_id=profile_id)
    else:
        run = store.find_run(name)["id"]
    store.update_run(run, status=status, pid=pid)
    n_params, profile_flops = 1_790_208, (2.35e12 if strategy == "sgpo" else 0.0)
    total_steps = length or max(steps, start + 1)
    step = np.arange(start + 1, steps + 1)
    progress = step / total_steps
    phase = (
        np.searchsorted([total_steps // 3, 2 * total_steps // 3], step, side="right")
        if strategy == "sgpo"
        else np.zeros_like(step)
    )
    rollouts = np.full(len(step), 256)
    level = 0.55 - 0.2 * progress if strategy != "sgpo" else 0.4 - 0.1 * progress + 0.05 * phase
    wasted = np.clip(rng.binomial(256, np.clip(level, 0, 1)) + (rng.random(len(step)) < 0.002) * 120, 0, 256)
    groups = np.full(len(step), 32)
    informative = np.clip(np.round(32 * (1 - wasted / 256)), 0, 32).astype(int)
    reward = np.clip(
        0.2 + 0.5 * progress + rng.normal(0, 0.05, len(step)) - (rng.random(len(step)) < 0.002) * 0.3, 0, 1
    )
    tok_p, tok_c = rollouts * 12, rng.integers(1500, 2500, len(step))
    seconds = rng.gamma(20, 0.025, len(step))
    previous = store.metrics_frame(run, after_step=start - 1) if start else None
    base = previous.iloc[-1] if previous is not None and len(previous) else None

    def cumulative(values, column):
        return np.cumsum(values) + (float(base[column]) if base is not None and column in base else 0.0)

    flops_rollout = cumulative(2.0 * n_params * (tok_p + tok_c), "flops_rollout")
    flops_train = cumulative(6.0 * n_params * tok_c * (1 - wasted / 256), "flops_train")
    rollouts_total, wasted_total = cumulative(rollouts, "rollouts_total"), cumulative(wasted, "wasted_rollouts_total")
    groups_total = cumulative(groups, "groups_total")
    informative_total = cumulative(informative, "informative_groups_total")
    tokens_total, wall = cumulative(tok_p + tok_c, "tokens_total"), cumulative(seconds, "wall_seconds")
    flops_total = profile_flops + flops_rollout + flops_train
    accuracy = np.clip(0.3 + 0.25 * progress + rng.normal(0, 0.01, len(step)), 0, 1)
    metric_rows, eval_rows = [], []
    if start == 0:
        totals = {
            "flops_profile": profile_flops,
            "flops_rollout": 0.0,
            "flops_train": 0.0,
            "flops_total": profile_flops,
            "flops_eval": 0.0,
            "rollouts_total": 0,
            "wasted_rollouts_total": 0,
            "groups_total": 0,
            "informative_groups_total": 0,
            "run_wasted_fraction": None,
            "run_informative_fraction": None,
            "queries_total": 0,
            "tokens_total": 0,
            "initial": True,
        }
        metric_rows.append({"run_id": run, "step": 0, "phase": 0, "wall_seconds": 0.0, "data": json.dumps(totals)})
        eval_rows.append(
            {
                "run_id": run,
                "step": 0,
                "flops_total": profile_flops,
                "accuracy": 0.3,
                "data": json.dumps({"by_difficulty": {"1": 0.5, "2": 0.3, "3": 0.1}}),
            }
        )
    for i, s in enumerate(step.tolist()):
        data = {
            "queries": 32,
            "rollouts": 256,
            "groups": 32,
            "informative_groups": int(informative[i]),
            "wasted_rollouts": int(wasted[i]),
            "step_wasted_fraction": wasted[i] / 256,
            "step_informative_fraction": informative[i] / 32,
            "group_size": 8,
            "reward_mean": float(reward[i]),
            "reward_by_group_size": {"8": float(reward[i])},
            "tokens_prompt": int(tok_p[i]),
            "tokens_completion": int(tok_c[i]),
            "tokens_trained": int(tok_c[i]),
            "trained_sequences": 200,
            "loss": float(rng.normal(0, 0.01)),
            "kl": 0.0,
            "entropy": 1.2,
            "grad_norm": 0.8,
            "lr": 5e-5,
            "step_seconds": float(seconds[i]),
            "generation_seconds": float(seconds[i]) * 0.6,
            "phase": int(phase[i]),
            "epoch": s // 125,
            "flops_profile": profile_flops,
            "flops_rollout": float(flops_rollout[i]),
            "flops_train": float(flops_train[i]),
            "flops_total": float(flops_total[i]),
            "flops_eval": 0.0,
            "rollouts_total": int(rollouts_total[i]),
            "wasted_rollouts_total": int(wasted_total[i]),
            "groups_total": int(groups_total[i]),
            "informative_groups_total": int(informative_total[i]),
            "run_wasted_fraction": wasted_total[i] / rollouts_total[i],
            "run_informative_fraction": informative_total[i] / groups_total[i],
            "queries_total": int(32 * s),
            "tokens_total": int(tokens_total[i]),
        }
        metric_rows.append(
            {"run_id": run, "step": s, "phase": int(phase[i]), "wall_seconds": float(wall[i]), "data": json.dumps(data)}
        )
        if s % eval_every == 0:
            acc = float(accuracy[i])
            eval_rows.append(
                {
                    "run_id": run,
                    "step": s,
                    "flops_total": float(flops_total[i]),
                    "accuracy": acc,
                    "data": json.dumps({"by_difficulty": {"1": min(1, acc + 0.2), "2": acc, "3": max(0, acc - 0.2)}}),
                }
            )
    with store.transaction():  # the rows log_step writes, in one transaction instead of one per step
        store.db["metrics"].upsert_all(metric_rows, pk=("run_id", "step"))
        if eval_rows:
            store.db["evals"].upsert_all(eval_rows, pk=("run_id", "step"))
        store.db["runs"].update(run, {"step": int(step[-1]) if len(step) else start})
    return run


def fill_checkpoint(store: Store, run_name: str, step: int):
    """A complete checkpoint folder of the run at `step`, as sgpo/train/checkpoint.py lays it out (state.json,
    safetensors weights, a zip optimizer.pt), whose model is the starter policy (its files copied): listed,
    offered for profiling, and loadable as a model (`run:NAME@STEP`)."""
    folder = checkpoint_root(store, run_name) / f"step-{step:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    for part in STARTER_DIR.iterdir():
        if part.suffix in (".json", ".safetensors") and part.name != "starter.json":
            shutil.copy2(part, folder / part.name)
    (folder / "state.json").write_text(json.dumps({"step": step}))
    with zipfile.ZipFile(folder / "optimizer.pt", "w") as z:
        z.writestr("optimizer/data.pkl", b"")
    (folder.parent / "latest").write_text(folder.name)
    return folder


def fill_groups(
    store: Store,
    run_name: str,
    steps: int,
    *,
    start: int = 0,
    per_step: int = 32,
    group_size: int = 8,
    keep: int = 2,
    seed: int = 0,
    profile: str | int | None = None,
    n_queries: int = 240,
    learn: float = 0.4,
    length: int | None = None,
    texts=None,
) -> None:
    """Groups for steps start+1..steps of run `run_name`, as the trainer stores them (sgpo.store.Store.log_step):
    `per_step` groups of `group_size` a step over the queries of `profile` (else `n_queries` made up ones),
    each query's success rate rising by `learn` from its p_hat over `length` steps (default `steps`), the
    completion texts of `keep` groups a step (`texts`: a list to draw them from). Written in one transaction:
    20,000 steps take seconds. A step's draws depend only on (seed, step), so a live run can be grown."""
    run = store.find_run(run_name)
    if profile is not None:
        pf = store.profile_frame(store.find_profile(profile)["id"])
        ids, tasks, p0 = pf["id"].tolist(), pf["task"].tolist(), pf["p_hat"].to_numpy(dtype=float)
        levels = pf["difficulty"].tolist()
    else:
        ids, tasks = [f"q{i:05d}" for i in range(n_queries)], ["t"] * n_queries
        p0, levels = np.random.default_rng(seed).beta(0.7, 0.7, n_queries), [1] * n_queries
    total = length or steps
    queries = [
        {"query": i, "query_id": ids[i], "task": tasks[i], "difficulty": int(levels[i]), "prompt": f"{ids[i]}?"}
        for i in range(len(ids))
    ]
    with store.transaction():
        for step in range(start + 1, steps + 1):
            rng = np.random.default_rng([seed, step])
            rows = rng.choice(len(ids), size=min(per_step, len(ids)), replace=False)
            kept = set(rng.choice(len(rows), size=min(keep, len(rows)), replace=False).tolist()) if keep else set()
            p = np.clip(p0[rows] + learn * step / total, 0.0, 1.0)
            rewards = (rng.random((len(rows), group_size)) < p[:, None]).astype(float)
            lengths = rng.integers(3, 20, (len(rows), group_size))
            groups = []
            for slot, (row, r, n) in enumerate(zip(rows, rewards, lengths)):
                informative = bool(np.ptp(r) > 0)
                groups.append(
                    {
                        "query": int(row),
                        "phase": 0,
                        "rewards": r.tolist(),
                        "successes": int(r.sum()),
                        "informative": informative,
                        "trained": informative,
                        "lengths": n.tolist(),
                        "completions": (
                            [
                                (texts[(step + slot + k) % len(texts)] if texts else f"{ids[row]} sample {k}")
                                for k in range(group_size)
                            ]
                            if slot in kept
                            else None
                        ),
                    }
                )
            store._write_groups(run["id"], step, groups, [queries[int(r)] for r in rows])
