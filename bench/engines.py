"""Our engine against TRL's GRPOTrainer, and what a TRL user saves by adding the plan.

    .venv/bin/python bench/engines.py [--steps 20] [--seeds 3] [--budget 1.5e12] [--quick]

Part 1, side by side in one run: the starter policy, the same builtin:train queries, the same batch
(256 rollouts at G = 8), `sgpo train --strategy grpo` with `--engine native` and with `--engine trl`:
seconds per step and rollouts per second (evaluation off, checkpoints at the end only).
Part 2: `--engine trl` with `--strategy sgpo` (the plan, phase by phase) against `--strategy grpo`
(TRL's plain GRPO), 64 rollouts a step, under one budget of total FLOPs (profiling counted for sgpo), `--seeds` seeds,
held-out accuracy (builtin:eval, a fixed subset) against total FLOPs; the profile covers a seeded random
1,000 of the train queries (256 with --quick), so that profiling leaves most of the budget to training.
(It used to take the first 1,000: builtin:train is stored family by family, so those were all additions,
and sgpo trained on one task of four while the held-out set has all four.) Prints one JSON object.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit  # noqa: E402
from bench.common import speed as bench_speed  # noqa: E402
from sgpo import runs  # noqa: E402
from sgpo.data import load_dataset  # noqa: E402
from sgpo.model import resolve_model  # noqa: E402
from sgpo.profile import ProfileConfig, run_profile  # noqa: E402
from sgpo.store import Store  # noqa: E402
from sgpo.train import TrainConfig  # noqa: E402


def speed(store: Store, steps: int, threads: int) -> dict:
    out = {}
    for engine in ("native", "trl"):
        cfg = TrainConfig(
            strategy="grpo",
            engine=engine,
            steps=steps,
            batch_rollouts=256,
            group_size=8,
            eval_every=0,
            checkpoint_every=10**6,
            threads=threads,
            seed=0,
        )
        t0 = time.perf_counter()
        runs.train(cfg, store, name=f"speed-{engine}")
        out[engine] = {
            **bench_speed(runs.metrics(f"speed-{engine}", store)),
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }
    out["native_over_trl_rollouts_per_s"] = round(out["native"]["rollouts_per_s"] / out["trl"]["rollouts_per_s"], 2)
    return out


def savings(store: Store, profile: str, seeds: int, budget: float, eval_limit: int, threads: int) -> dict:
    out = {}
    for strategy in ("grpo", "sgpo"):
        finals, curves = [], []
        for seed in range(seeds):
            name = f"trl-{strategy}-s{seed}"
            cfg = TrainConfig(
                strategy=strategy,
                engine="trl",
                profile=profile if strategy == "sgpo" else None,
                flops_budget=budget,
                batch_rollouts=64,
                group_size=8,
                eval_every=10,
                eval_limit=eval_limit,
                checkpoint_every=10**6,
                threads=threads,
                seed=seed,
            )
            result = runs.train(cfg, store, name=name)
            e = runs.evals(name, store)
            finals.append(result["eval_accuracy"])
            curves.append(e[["flops_total", "accuracy"]].round(4).values.tolist())
        out[strategy] = {
            "final_accuracy_mean": round(statistics.mean(finals), 4),
            "final_accuracy_std": round(statistics.pstdev(finals), 4),
            "curves": curves,
        }
    target = out["grpo"]["final_accuracy_mean"]
    for strategy in ("grpo", "sgpo"):
        reach = [next((f for f, a in c if a >= target), None) for c in out[strategy]["curves"]]
        hit = [f for f in reach if f is not None]
        out[strategy]["flops_to_grpo_final"] = statistics.mean(hit) if hit else None
        out[strategy]["seeds_reaching"] = len(hit)
    g, s = out["grpo"]["flops_to_grpo_final"], out["sgpo"]["flops_to_grpo_final"]
    out["reduction_factor"] = round(g / s, 3) if g and s else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, help="part 1 steps (20; --quick 3)")
    ap.add_argument("--seeds", type=int, help="part 2 seeds (3; --quick 1)")
    ap.add_argument("--budget", type=float, help="part 2 total FLOPs per run (2e12; --quick 4e11)")
    ap.add_argument("--eval-limit", type=int, help="held-out queries (200; --quick 50)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="3 steps, 1 seed, a small budget: checks the path")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    for name, full, quick in (("steps", 20, 3), ("seeds", 3, 1), ("budget", 2e12, 4e11), ("eval_limit", 200, 50)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "engines.db")
        result = {"speed": speed(store, args.steps, args.threads)}
        print(f"speed: {result['speed']}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        run_profile(
            load_dataset("builtin:train"),
            resolve_model("starter"),
            ProfileConfig(samples=8, queries=256 if args.quick else 1000),
            store,
            name="train-profile",
            progress=False,
        )
        result["profile_seconds"] = round(time.perf_counter() - t0, 1)
        result["savings"] = savings(store, "train-profile", args.seeds, args.budget, args.eval_limit, args.threads)
    emit(result, args.out)


if __name__ == "__main__":
    main()
