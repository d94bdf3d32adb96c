"""Compute-efficiency benchmark: does sGPO reach fixed-G GRPO's held-out accuracy with fewer total FLOPs?

    python bench/compute_efficiency.py                # 6 strategies x 3 seeds, 8e12 FLOPs each: 36 min on 2 cores
    python bench/compute_efficiency.py --quick        # sort task, 1 seed, 1.2e12 FLOPs: about 2 minutes
    python bench/compute_efficiency.py --report-only  # redraw JSON, CSV, plots and table from the stored runs

On the built-in train split with the starter policy, every strategy gets one total FLOP budget
(profiling counted for the sGPO variants) and is evaluated on the held-out split every few steps.
Outputs (regenerated from scratch by this one command): bench/results/compute_efficiency.json and
.csv (every evaluation point), docs/*.png plots, and the table between the bench markers in README.md.
The runs live in the store too (--db), so the dashboard's Compare page shows them.

The reduction factor is sgpo.compare's, the one definition (sgpo.accounting.reduction_factor) that
`sgpo compare --seeds` and the dashboard's Compare page show: each strategy's seeds averaged into one
accuracy-vs-FLOPs curve; target accuracy = the final accuracy of GRPO's mean curve; flops_to_target = where a
strategy's mean curve first reaches it (linear between evaluations; null if it never does); reduction_factor =
GRPO's flops_to_target / the strategy's (GRPO's own is 1). Runs train `--jobs` at a time with one torch thread each; wall time per
run is the store's created -> finished. Nothing here looks at held-out data to tune.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bands_text, final_breakdown, profile_json, sgpo_json, task_table, write_section  # noqa: E402
from sgpo import compare  # noqa: E402
from sgpo.accounting import reduction_factor  # noqa: E402
from sgpo.paths import checkpoint_root  # noqa: E402
from sgpo.plan import PlanConfig, make_plan, p_informative  # noqa: E402
from sgpo.store import Store  # noqa: E402

STRATEGIES = {  # name -> extra `sgpo train` arguments
    "grpo": ["--strategy", "grpo"],
    "dapo": ["--strategy", "dapo"],
    "sgpo": ["--strategy", "sgpo"],
    "sgpo-refresh": ["--strategy", "sgpo", "--refresh"],
    "sgpo-paper": ["--strategy", "sgpo", "--group-rule", "pow2"],  # the paper's G ~ 1/p
    "sgpo-knapsack": ["--strategy", "sgpo", "--group-rule", "knapsack"],
}
SGPO_FAMILY = {name for name, extra in STRATEGIES.items() if "sgpo" in extra}
README_START, README_END = "<!-- bench:compute_efficiency:start -->", "<!-- bench:compute_efficiency:end -->"


def run_name(strategy: str, seed: int) -> str:
    return f"bench-{strategy}-s{seed}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, small budget, the sort task only")
    ap.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="runs trained side by side, one torch thread each (default: 2, or 1 on one core)",
    )
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--budget", type=float, default=None, help="total FLOPs per run")
    ap.add_argument("--db", type=Path, default=ROOT / "bench" / "results" / "compute_efficiency.db")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--dataset", default=None, help="train split (default builtin:train; --quick: builtin:sort-train)")
    ap.add_argument(
        "--eval-dataset", default=None, help="held-out split (default builtin:eval; --quick: builtin:sort-eval)"
    )
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: rebuild the JSON, CSV, plots and README table from the runs already in --db",
    )
    args = ap.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    budget = args.budget or (1.2e12 if args.quick else 8e12)  # full: about 170 grpo steps of 256 rollouts
    eval_every, eval_limit = (5, 100) if args.quick else (20, 400)
    strategies = args.strategies.split(",")
    if args.report_only:
        return report(args, Store(args.db), strategies, seeds, budget, eval_every, eval_limit)
    if args.db.exists():  # from scratch: the figures must come from this run alone
        for suffix in ("", "-wal", "-shm"):
            Path(str(args.db) + suffix).unlink(missing_ok=True)
    store = Store(args.db)  # the report reads this same store once the runs are in
    for seed in range(seeds):  # and the checkpoints of the deleted store's runs, which would block the names
        for name in strategies:
            shutil.rmtree(checkpoint_root(store, run_name(name, seed)), ignore_errors=True)
    db = ["--db", str(args.db)]
    dataset = args.dataset or ("builtin:sort-train" if args.quick else "builtin:train")
    eval_dataset = args.eval_dataset or ("builtin:sort-eval" if args.quick else "builtin:eval")

    t0 = time.time()
    prof = profile_json(dataset, "bench-profile", *db)
    print(f"profile: {prof['queries']} queries, {prof['flops']:.3g} FLOPs, {prof['seconds']:.0f} s", flush=True)

    def train(job: tuple[int, str]) -> dict:
        seed, name = job
        extra = STRATEGIES[name] + (["--profile", str(prof["profile_id"])] if name in SGPO_FAMILY else [])
        started = time.time()
        res = sgpo_json(
            "train",
            *extra,
            "--dataset",
            dataset,
            "--flops-budget",
            f"{budget:.6g}",
            "--eval-dataset",
            eval_dataset,
            "--eval-every",
            str(eval_every),
            "--eval-limit",
            str(eval_limit),
            "--seed",
            str(seed),
            "--threads",
            "1",
            "--name",
            run_name(name, seed),
            *db,
        )
        print(
            f"{name:<16} seed {seed}: {res['steps']} steps, acc {res['eval_accuracy']:.3f}, wasted "
            f"{res['run_wasted_fraction']:.2f}, {time.time() - started:.0f} s",
            flush=True,
        )

    jobs = [(seed, name) for seed in range(seeds) for name in strategies]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # threads only wait on the subprocesses
        list(pool.map(train, jobs))
    report(args, store, strategies, seeds, budget, eval_every, eval_limit, total_seconds=time.time() - t0)


def report(
    args,
    store: Store,
    strategies: list[str],
    seeds: int,
    budget: float,
    eval_every: int,
    eval_limit: int,
    total_seconds: float | None = None,
) -> None:
    """Everything published, from the store alone: so --report-only redraws without retraining."""
    args.out.mkdir(parents=True, exist_ok=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    prof = store.find_profile("bench-profile")
    runs = load_runs(store, strategies, seeds)
    plan_frame = store.profile_frame(prof["id"])
    points, summary = collect(store, runs, plan_frame)
    points.to_csv(args.out / "compute_efficiency.csv", index=False)
    dataset, eval_dataset = runs[0]["config"]["dataset"], runs[0]["config"]["eval_dataset"]
    previous = args.out / "compute_efficiency.json"
    if total_seconds is None and previous.exists():
        total_seconds = json.loads(previous.read_text()).get("total_seconds")
    forecast = make_plan(plan_frame, PlanConfig(), n_params=prof["n_params"])
    result = {
        "dataset": dataset,
        "eval_dataset": eval_dataset,
        "budget_flops": budget,
        "seeds": seeds,
        "jobs": args.jobs,
        "eval_every_steps": eval_every,
        "eval_queries": eval_limit,
        "profile": {"queries": prof["queries_total"], "flops": prof["flops"], "seconds": prof["seconds"]},
        "planner_forecast_informative_fraction": forecast.forecast["plan"]["forecast_informative_fraction"],
        "grpo_forecast_informative_fraction": forecast.forecast["baseline"]["forecast_informative_fraction"],
        "strategies": summary,
        "total_seconds": total_seconds,
        "quick": args.quick,
    }
    previous.write_text(json.dumps(result, indent=2, default=float))
    plot(points, runs, args.docs)
    write_section(args.readme, README_START, README_END, table(result))
    print(json.dumps({k: v for k, v in result.items() if k != "strategies"}, default=float))
    print(table(result))


def load_runs(store: Store, strategies: list[str], seeds: int) -> list[dict]:
    """Every run of the benchmark, finished, with what the report reads of it (SystemExit naming a run that
    is missing or unfinished)."""
    by_name = {r["name"]: r for r in store.runs()}
    runs = []
    for seed in range(seeds):
        for name in strategies:
            row = by_name.get(run_name(name, seed))
            if row is None or row["status"] != "finished":
                raise SystemExit(
                    f"run {run_name(name, seed)} is missing or unfinished in {store.path}: run the "
                    f"benchmark without --report-only"
                )
            run = store.find_run(row["id"])
            metrics = store.metrics_frame(row["id"])
            runs.append(
                {
                    "strategy": name,
                    "seed": seed,
                    "run_id": row["id"],
                    "name": row["name"],
                    "config": run["config"],
                    "result": run["result"],
                    "evals": compare.run_evals(run, store, metrics),
                    "steps": metrics[metrics.step > 0],
                    "wall_seconds": row["finished"] - row["created"],
                }
            )
    return runs


def first_phase_forecast(config: dict, frame: pd.DataFrame) -> float:
    """The planner's forecast of the informative-group fraction in a run's first phase, from the profile's
    p_hat and the run's stored config (grpo and dapo: their fixed G on every query, all run long)."""
    p = frame["p_hat"].to_numpy(dtype=float)
    if config["strategy"] != "sgpo":
        return float(p_informative(p, config["group_size"]).mean())
    plan = make_plan(
        frame, PlanConfig.from_dict({**config["plan"], "seed": config["plan"].get("seed", config["seed"])})
    )
    phase = plan.phases[0]
    return float(p_informative(p[phase.positions], phase.group_sizes).mean())


def collect(store: Store, runs: list[dict], plan_frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Every eval point, and per strategy the summary published in the JSON and the README table."""
    frames = [
        r["evals"][["step", "flops_total", "accuracy"]].assign(
            strategy=r["strategy"], seed=r["seed"], run_id=r["run_id"]
        )
        for r in runs
    ]
    points = pd.concat(frames, ignore_index=True)
    finals = points.sort_values("step").groupby(["strategy", "seed"]).tail(1)
    grpo = [r["evals"] for r in runs if r["strategy"] == "grpo"]
    summary = {}
    for name in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r for r in runs if r["strategy"] == name]
        # the one definition (sgpo.accounting.reduction_factor), as `sgpo compare --seeds` reads it
        reduction = reduction_factor(grpo, [r["evals"] for r in mine]) if grpo else None
        reached = reduction.flops if reduction is not None else None
        profile_flops, first_phase, walls, wasted, middle = [], [], [], [], []
        for r in mine:
            profile_flops.append(float(r["result"].get("flops_profile") or 0.0))
            steps = r["steps"]
            if len(steps):
                first = steps[steps.phase == steps.phase.iloc[0]]  # the first phase (all steps for grpo/dapo)
                first_phase.append(float(first["informative_groups"].sum() / max(1, first["groups"].sum())))
                wasted.append(compare.wasted_fraction(steps))
            walls.append(r["wall_seconds"])
            if r["result"].get("eval_middle_accuracy") is not None:
                middle.append((r["result"]["eval_middle_accuracy_initial"], r["result"]["eval_middle_accuracy"]))
        fin = finals[finals.strategy == name]
        summary[name] = {
            "flops_to_target": reached,
            "seeds_reaching_target": reduction.reached if reduction is not None else 0,
            "flops_to_target_without_profile": (reached - float(np.mean(profile_flops))) if reached else None,
            "reduction_factor": reduction.factor if reduction is not None else None,
            "reduction": compare.reading(reduction),
            "reduction_min": reduction.spread[0] if reduction is not None and reduction.spread else None,
            "reduction_max": reduction.spread[1] if reduction is not None and reduction.spread else None,
            "final_accuracy_mean": float(fin["accuracy"].mean()),
            "final_accuracy_std": float(fin["accuracy"].std(ddof=0)),
            **final_breakdown([r["evals"] for r in mine]),
            "final_flops_mean": float(fin["flops_total"].mean()),
            "run_wasted_fraction": float(np.mean(wasted)),
            "first_phase_informative_fraction": float(np.mean(first_phase)) if first_phase else None,
            "first_phase_informative_forecast": first_phase_forecast(mine[0]["config"], plan_frame),
            "middle_accuracy_initial": float(np.mean([m[0] for m in middle])) if middle else None,
            "middle_accuracy_final_mean": float(np.mean([m[1] for m in middle])) if middle else None,
            "middle_accuracy_final_std": float(np.std([m[1] for m in middle])) if middle else None,
            "wall_seconds_mean": float(np.mean(walls)),
            "target_accuracy": reduction.target if reduction is not None else None,
        }
    return points, summary


def plot(points: pd.DataFrame, runs: list[dict], docs: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, group in points.groupby("strategy", sort=False):
        grid = np.linspace(group.flops_total.min(), group.flops_total.max(), 40)
        curves = [
            np.interp(grid, g.sort_values("flops_total").flops_total, g.sort_values("flops_total").accuracy)
            for _, g in group.groupby("seed")
        ]
        mean, lo, hi = np.mean(curves, 0), np.min(curves, 0), np.max(curves, 0)
        ax.plot(grid, mean, label=name)
        ax.fill_between(grid, lo, hi, alpha=0.2)
    ax.set_xlabel("total FLOPs (profiling included)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Accuracy against compute (band: min-max over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(docs / "accuracy_vs_flops.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    splits, wasted = {}, {}
    for r in runs:
        m = r["steps"]
        # cumulative wasted fraction so far: smooth, and its last value is the table's figure
        wasted.setdefault(r["strategy"], []).append(
            (m["flops_total"].to_numpy(), (m["wasted_rollouts"].cumsum() / m["rollouts"].cumsum()).to_numpy())
        )
        last = m.iloc[-1]
        splits.setdefault(r["strategy"], []).append(
            [last.get("flops_profile", 0), last.get("flops_rollout", 0), last.get("flops_train", 0)]
        )
    for name, curves in wasted.items():
        grid = np.linspace(max(c[0][0] for c in curves), min(c[0][-1] for c in curves), 60)
        ys = [np.interp(grid, x, y) for x, y in curves]
        ax.plot(grid, np.mean(ys, 0), label=name)
        ax.fill_between(grid, np.min(ys, 0), np.max(ys, 0), alpha=0.2)
    ax.set_xlabel("total FLOPs (profiling included)")
    ax.set_ylabel("wasted-rollout fraction so far")
    ax.set_title("Rollouts in zero-advantage groups, cumulative (band: min-max over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(docs / "wasted_vs_flops.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    names = list(splits)
    parts = np.array([np.mean(splits[n], 0) for n in names])
    bottom = np.zeros(len(names))
    for i, label in enumerate(("profiling", "rollout", "training")):
        ax.bar(names, parts[:, i], bottom=bottom, label=label)
        bottom += parts[:, i]
    ax.tick_params(axis="x", labelrotation=20)
    ax.set_ylabel("FLOPs at the end of the run")
    ax.set_title("Where the compute went")
    ax.legend()
    fig.tight_layout()
    fig.savefig(docs / "flops_split.png", dpi=110)
    plt.close("all")


def table(result: dict) -> str:
    def fl(x):
        return "never" if x is None else f"{x:.3g}"

    def two(x):
        return "n/a" if x is None else f"{x:.2f}"

    lines = [
        "| strategy | total FLOPs to GRPO's final accuracy | reduction vs GRPO | final accuracy (mean ± std) | "
        "solved / middle / unsolved | middle band: before -> after | wasted rollouts | first-phase informative "
        "groups: forecast / measured | wall time / run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["strategies"].items():
        red = f"{s['reduction_factor']:.2f}x" if s["reduction_factor"] is not None else s.get("reduction") or "n/a"
        red = "n/a" if red.startswith("not") else red  # never reached: no factor (other reasons are spelt out)
        mid = (
            "n/a"
            if s.get("middle_accuracy_initial") is None
            else f"{s['middle_accuracy_initial']:.3f} -> {s['middle_accuracy_final_mean']:.3f} ± "
            f"{s['middle_accuracy_final_std']:.3f}"
        )
        lines.append(
            f"| {name} | {fl(s['flops_to_target'])} ({s['seeds_reaching_target']}/{result['seeds']} seeds) | "
            f"{red} | {s['final_accuracy_mean']:.3f} ± {s['final_accuracy_std']:.3f} | "
            f"{bands_text(s.get('by_band') or {})} | {mid} | "
            f"{s['run_wasted_fraction']:.2f} | {two(s.get('first_phase_informative_forecast'))} / "
            f"{two(s['first_phase_informative_fraction'])} | {s['wall_seconds_mean']:.0f} s |"
        )
    lines.append("")
    lines += task_table([(result["dataset"], name, s.get("by_task") or {}) for name, s in result["strategies"].items()])
    lines.append("")
    lines.append(
        f"{result['dataset']} -> {result['eval_dataset']} ({result['eval_queries']} held-out queries, evaluated every "
        f"{result['eval_every_steps']} steps). Budget {result['budget_flops']:.3g} FLOPs per run, {result['seeds']} "
        f"seed(s); profiling ({result['profile']['flops']:.3g} FLOPs, {result['profile']['queries']} queries x 8 "
        f"samples) is counted in every sGPO run. Target = the final accuracy of GRPO's mean curve (seeds averaged); "
        f"FLOPs to it = where each strategy's mean curve first reaches it, linear between evaluations; reduction = "
        f"GRPO's FLOPs to it / the strategy's (`sgpo compare --seeds` gives the same number). Middle band = held-out queries with 0 < p < 1 under the initial policy. "
        f"The planner forecasts an informative-group fraction of "
        f"{result['planner_forecast_informative_fraction']:.2f} for one pass of the default plan against "
        f"{result['grpo_forecast_informative_fraction']:.2f} for GRPO (G=8). Runs were trained "
        f"{result.get('jobs', 1)} at a time, one torch thread each; wall time is per run under that load."
    )
    lines.append("")
    lines.append(
        "Strategies: "
        + "; ".join(
            f"`{name}` = `sgpo train {' '.join(STRATEGIES[name])}`"
            for name in result["strategies"]
            if name in STRATEGIES
        )
        + "."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
