"""Regime map: in which datasets does sGPO pay, under both engine behaviours, and does the forecast say so?

    python bench/regimes.py                 # 4 regimes x 10 strategies x 3 seeds: 65 min on 2 cores
    python bench/regimes.py --quick         # one regime, one seed, a tiny budget: about 2 minutes (in the suite)
    python bench/regimes.py --keep          # keep the store: finished runs are not trained again
    python bench/regimes.py --report-only   # redraw JSON, CSV, plot and README section from the stored runs

Datasets are built from the built-in task families by task and difficulty level, never by a query's own
p_hat: a calibration profile of builtin:train under the starter gives each (task, level) cell its share
of trivial + unsolved queries, and each regime draws fresh instances from the cells, weighted by an
exponential tilt w_c ~ exp(lambda * share_c) with lambda chosen so that the mix holds the target share
(`--regimes 0.4,0.6,0.8`), plus `train`, a random sample of builtin:train as it is. Every regime gets a
held-out set drawn the same way (disjoint prompts). Its share under the starter is then measured by the
regime's own N=8 profile, which the sgpo runs use (and pay for).

Strategies: grpo, dapo, greso (online skip of zero-variance prompts, no profile), sgpo (default plan),
sgpo-paper (G ~ 1/p), sgpo-adaptive (the default plan on an `--adaptive` profile), sgpo-keep0 (no
unsolved query kept: `--unsolved-keep 0`), sgpo-keep0-t0.9 (also `--trivial-threshold 0.9`: only queries
seen to succeed every time are trivial); grpo-b128 and sgpo-b128 (128 rollouts a step instead of 256:
twice the optimizer steps for the same FLOPs). One FLOP budget per
regime, `--seeds` seeds each. Both engine behaviours come from the same runs: at beta = 0 the loss
normaliser spans the whole batch, so leaving zero-advantage groups out of the backward pass changes the
cost, not the gradient (tests/test_train_grpo.py checks the gradients are equal). Each run trains with
skipping (the budget is counted that way) and logs `tokens_update`, the tokens an engine that trains every
rollout would train, so its FLOPs under that behaviour are profile + generation + 6 x params x those
tokens (tests/test_train_loop.py runs both behaviours side by side: same samples, same losses, and the
priced FLOPs equal the other run's). A step whose groups all have zero advantage still steps Adam (with
zero gradients) under both, as a full pass would; the report counts such steps.

Reduction factor (per behaviour): sgpo.compare's, the one definition (sgpo.accounting.reduction_factor)
that `sgpo compare` and the dashboard's Compare page show: each strategy's seeds averaged into one
accuracy-vs-FLOPs curve, target = the final accuracy of GRPO's mean curve, factor = the FLOPs where GRPO's
mean curve first reaches it / the FLOPs where the strategy's does (linear between evaluations); spread = the
same per seed. Ceiling = what removing all of GRPO's measured waste w allows (sgpo.accounting.waste_ceiling,
docs/METHOD.md): 1/(1-w) when every rollout is trained, (2/(1-w) + 6)/8 when zero-advantage groups are
skipped. Forecast = `forecast["run"][behaviour]["reduction_factor"]` stored with each sgpo run (its plan,
made before training, for its FLOP budget). Outputs: bench/results/regimes.json and .csv,
docs/regimes.png, and the README section between the bench:regimes markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
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
from sgpo.accounting import ENGINE_BEHAVIOURS as BEHAVIOURS  # noqa: E402
from sgpo.accounting import flops_column, reduction_factor, waste_ceiling  # noqa: E402
from sgpo.errors import StoreError  # noqa: E402
from sgpo.paths import checkpoint_root  # noqa: E402
from sgpo.store import Store  # noqa: E402
from sgpo.tasks.builtin import DATA_DIR  # noqa: E402
from sgpo.tasks.families import FAMILIES  # noqa: E402

STRATEGIES = {  # name -> (extra `sgpo train` arguments, the profile it trains from: None, "fixed" or "adaptive")
    "grpo": (["--strategy", "grpo"], None),
    "dapo": (["--strategy", "dapo"], None),
    "greso": (["--strategy", "greso"], None),
    "sgpo": (["--strategy", "sgpo"], "fixed"),
    "sgpo-paper": (["--strategy", "sgpo", "--group-rule", "pow2"], "fixed"),
    "sgpo-adaptive": (["--strategy", "sgpo"], "adaptive"),
    "sgpo-keep0": (["--strategy", "sgpo", "--unsolved-keep", "0"], "fixed"),  # no unsolved query kept
    # ... and queries seen to succeed 7 times in 8 kept too (only 8 in 8 is trivial)
    "sgpo-keep0-t0.9": (["--strategy", "sgpo", "--unsolved-keep", "0", "--trivial-threshold", "0.9"], "fixed"),
    # half the rollouts a step: more optimizer steps for the same FLOPs, for both
    "grpo-b128": (["--strategy", "grpo", "--batch-rollouts", "128"], None),
    "sgpo-b128": (["--strategy", "sgpo", "--batch-rollouts", "128"], "fixed"),
}
TILT_TOLERANCE = 0.02  # a regime's calibrated share must come within this of its target
README_START, README_END = "<!-- bench:regimes:start -->", "<!-- bench:regimes:end -->"
FULL = {
    "seeds": 3,
    "budget": 2.5e12,
    "queries": 600,
    "eval_queries": 200,
    "eval_every": 10,
    "regimes": "0.4,0.6,0.8,train",
    "calibration_queries": None,
}
QUICK = {
    "seeds": 1,
    "budget": 4e11,
    "queries": 150,
    "eval_queries": 60,
    "eval_every": 4,
    "regimes": "0.6",
    "calibration_queries": 600,
}


class RegimeError(SystemExit):
    """Bad input: one line naming the option."""


# datasets -------------------------------------------------------------------------------------------
def parse_regimes(text: str) -> list[str]:
    regimes = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item != "train":
            try:
                share = float(item)
            except ValueError:
                raise RegimeError(
                    f"--regimes: {item!r} is neither a share of trivial + unsolved queries "
                    f"(a number between 0 and 1) nor 'train'"
                ) from None
            if not 0.0 < share < 1.0 or not math.isfinite(share):
                raise RegimeError(f"--regimes: {item} is not a share strictly between 0 and 1")
        regimes.append(item)
    if not regimes:
        raise RegimeError("--regimes: give at least one regime, e.g. 0.4,0.6,0.8,train")
    return regimes


def trivial_or_unsolved(frame: pd.DataFrame) -> pd.Series:
    """Per profiled query: every sample succeeded, or none did."""
    return (frame["successes"] == 0) | (frame["successes"] == frame["samples"])


def cell_shares(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (task, difficulty) cell of a profile: queries and share of trivial + unsolved ones."""
    cells = frame.assign(zv=trivial_or_unsolved(frame).astype(float)).groupby(["task", "difficulty"])
    out = cells.agg(queries=("zv", "size"), share=("zv", "mean")).reset_index()
    return out[out.queries >= 4]  # a cell seen fewer times says too little about its share


def tilt(cells: pd.DataFrame, target: float) -> np.ndarray:
    """Cell weights w_c ~ exp(lambda * share_c) whose weighted mean share is `target` (bisection on lambda)."""
    share = cells["share"].to_numpy(dtype=float)
    lo_share, hi_share = float(share.min()), float(share.max())
    if not lo_share + TILT_TOLERANCE <= target <= hi_share - TILT_TOLERANCE:
        raise RegimeError(
            f"--regimes: {target:g} trivial + unsolved is beyond what the built-in families produce "
            f"under the starter (their cells span {lo_share:.2f} to {hi_share:.2f}): choose a share "
            f"between {lo_share + TILT_TOLERANCE:.2f} and {hi_share - TILT_TOLERANCE:.2f}"
        )

    def weights(lam: float) -> np.ndarray:
        w = np.exp(lam * (share - share.max()))
        return w / w.sum()

    lo, hi = -200.0, 200.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if float(weights(mid) @ share) < target:
            lo = mid
        else:
            hi = mid
    return weights((lo + hi) / 2)


def draw(
    cells: pd.DataFrame, weights: np.ndarray, n: int, rng: random.Random, seen: set[str], split: str, regime: str
) -> list[dict]:
    """n fresh instances whose (task, level) follows `weights`, prompts unseen so far (added to `seen`)."""
    keys = list(zip(cells["task"], cells["difficulty"].astype(int)))
    rows, tries = [], 0
    while len(rows) < n:
        tries += 1
        if tries > 200 * n:
            raise RegimeError(f"--regimes: could not draw {n} distinct queries for regime {regime}")
        task, level = rng.choices(keys, weights=weights)[0]
        prompt, answer = FAMILIES[task].make(rng, level)
        if prompt in seen:
            continue
        seen.add(prompt)
        rows.append(
            {
                "id": f"{regime}-{split}-{len(rows):05d}",
                "prompt": prompt,
                "answer": answer,
                "task": task,
                "difficulty": level,
            }
        )
    return rows


def sample_builtin(name: str, n: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in (DATA_DIR / f"{name}.jsonl").read_text().splitlines()]
    pick = sorted(random.Random(seed).sample(range(len(rows)), min(n, len(rows))))
    return [rows[i] for i in pick]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def build_datasets(
    regimes: list[str], cells: pd.DataFrame, queries: int, eval_queries: int, directory: Path
) -> dict[str, dict]:
    tilts = {r: tilt(cells, float(r)) for r in regimes if r != "train"}  # every regime checked before a file is written
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, regime in enumerate(regimes):
        if regime == "train":
            train, held_out = sample_builtin("train", queries, 11), sample_builtin("eval", eval_queries, 12)
            calibrated = None
        else:
            weights = tilts[regime]
            rng, seen = random.Random(1000 + i), set()
            held_out = draw(cells, weights, eval_queries, rng, seen, "eval", f"r{regime}")
            train = draw(cells, weights, queries, rng, seen, "train", f"r{regime}")
            calibrated = float(weights @ cells["share"].to_numpy(dtype=float))
        paths = {"train": directory / f"{regime}-train.jsonl", "eval": directory / f"{regime}-eval.jsonl"}
        write_jsonl(paths["train"], train)
        write_jsonl(paths["eval"], held_out)
        out[regime] = {"train": str(paths["train"]), "eval": str(paths["eval"]), "calibrated_share": calibrated}
    return out


# running ---------------------------------------------------------------------------------------------
def run_name(regime: str, strategy: str, seed: int) -> str:
    return f"{regime}-{strategy}-s{seed}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one regime, one seed, a tiny budget (the test suite's run)")
    ap.add_argument(
        "--regimes",
        default=None,
        help="comma-separated shares of trivial + unsolved queries under the "
        "starter, and/or 'train' (default 0.4,0.6,0.8,train; --quick: 0.6)",
    )
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--budget", type=float, default=None, help="total FLOPs per run, profiling included")
    ap.add_argument("--queries", type=int, default=None, help="training queries per regime")
    ap.add_argument("--eval-queries", type=int, default=None, help="held-out queries per regime")
    ap.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs trained side by side, one torch thread each"
    )
    ap.add_argument("--db", type=Path, default=None, help="the store (default bench/results/regimes.db)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    ap.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="file whose bench:regimes section is regenerated (default README.md; --quick: none)",
    )
    ap.add_argument("--baseline", default="grpo", help="the fixed-G run every factor is measured against (grpo)")
    ap.add_argument("--keep", action="store_true", help="keep the store and skip runs already finished in it")
    ap.add_argument("--report-only", action="store_true", help="train nothing: report the runs in --db")
    args = ap.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    for key in ("seeds", "budget", "queries", "eval_queries"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    for option, value in (
        ("--seeds", settings["seeds"]),
        ("--queries", settings["queries"]),
        ("--eval-queries", settings["eval_queries"]),
        ("--jobs", args.jobs),
    ):
        if value < 1:
            raise RegimeError(f"{option}: {value} must be at least 1")
    if not settings["budget"] > 0 or not math.isfinite(settings["budget"]):
        raise RegimeError(f"--budget: {settings['budget']:g} must be a positive number of FLOPs")
    regimes = parse_regimes(args.regimes or settings["regimes"])
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or args.baseline not in strategies:
        raise RegimeError(
            f"--strategies: {', '.join(unknown) or args.baseline + ' missing'}: choose from "
            f"{', '.join(STRATEGIES)} (--baseline {args.baseline} is what every factor is measured against)"
        )
    if not args.baseline.startswith("grpo"):
        raise RegimeError(f"--baseline: {args.baseline} is not a fixed-G strategy: choose grpo or grpo-b128")
    db = args.db or (ROOT / "bench" / "results" / ("regimes-quick.db" if args.quick else "regimes.db"))
    settings.update(regimes=regimes, strategies=strategies, db=db, baseline=args.baseline)
    if args.report_only:
        return report(args, settings)
    train(args, settings)
    report(args, settings)


def regime_datasets(
    db: Path, settings: dict, *, keep: bool, also: tuple[str, ...] = ()
) -> tuple[Store, list[str], dict]:
    """The benchmark's store (emptied first unless `keep`, so the figures come from this run alone; `also`: more
    suffixes of files beside it to remove then), its --db argument, and each of `settings["regimes"]`'s training
    and held-out datasets, drawn from the cells of a calibration profile of builtin:train (kept in the store)."""
    if not keep and db.exists():
        for suffix in ("", "-wal", "-shm", *also):
            Path(str(db) + suffix).unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    dbarg = ["--db", str(db)]
    calibration = profile_once(store, dbarg, "calibration", "builtin:train", settings["calibration_queries"])
    cells = cell_shares(store.profile_frame(calibration["profile_id"]))
    datasets = build_datasets(
        settings["regimes"], cells, settings["queries"], settings["eval_queries"], db.parent / (db.stem + "-data")
    )
    return store, dbarg, datasets


def train(args, settings: dict) -> None:
    db, regimes, strategies = settings["db"], settings["regimes"], settings["strategies"]
    t0 = time.time()
    store, dbarg, datasets = regime_datasets(db, settings, keep=args.keep)
    profiles = {}
    for regime in regimes:
        profiles[regime] = {
            "fixed": profile_once(store, dbarg, f"{regime}-profile", datasets[regime]["train"]),
            "adaptive": profile_once(store, dbarg, f"{regime}-adaptive", datasets[regime]["train"], adaptive=True),
        }
        print(f"regime {regime}: profiles ready ({time.time() - t0:.0f} s)", flush=True)
    finished = {r["name"] for r in store.runs() if r["status"] == "finished"}
    jobs = [
        (regime, name, seed)
        for seed in range(settings["seeds"])
        for regime in regimes
        for name in strategies
        if run_name(regime, name, seed) not in finished
    ]
    stale = {r["name"]: r["id"] for r in store.runs() if r["status"] != "finished"}
    for regime, name, seed in jobs:  # a half-done run of an earlier attempt would block the name
        name = run_name(regime, name, seed)
        if name in stale:
            store.delete_run(stale[name])
        shutil.rmtree(checkpoint_root(store, name), ignore_errors=True)

    def one(job: tuple[str, str, int]) -> None:
        regime, name, seed = job
        extra, source = STRATEGIES[name]
        if source:
            extra = extra + ["--profile", str(profiles[regime][source]["profile_id"])]
        started = time.time()
        res = sgpo_json(
            "train",
            *extra,
            "--dataset",
            datasets[regime]["train"],
            "--flops-budget",
            f"{settings['budget']:.6g}",
            "--eval-dataset",
            datasets[regime]["eval"],
            "--eval-every",
            str(settings["eval_every"]),
            "--seed",
            str(seed),
            "--threads",
            "1",
            "--name",
            run_name(regime, name, seed),
            *dbarg,
        )
        print(
            f"{regime:>5} {name:<14} seed {seed}: {res['steps']} steps, acc {res['eval_accuracy']:.3f}, wasted "
            f"{res['run_wasted_fraction']:.2f}, {time.time() - started:.0f} s (at {time.time() - t0:.0f} s)",
            flush=True,
        )

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # threads only wait on the subprocesses
        list(pool.map(one, jobs))
    meta_path = db.parent / (db.stem + "-meta.json")
    earlier = json.loads(meta_path.read_text()).get("total_seconds", 0.0) if args.keep and meta_path.exists() else 0.0
    meta = {"total_seconds": earlier + time.time() - t0, "datasets": datasets}  # --keep: the time of every part
    meta_path.write_text(json.dumps(meta, indent=2))


def profile_once(
    store: Store, dbarg: list[str], name: str, dataset: str, queries: int | None = None, *, adaptive: bool = False
) -> dict:
    """A finished profile of that name, or a new one."""
    try:
        row = store.find_profile(name)
        if row["queries_done"] == row["queries_total"]:
            return {"profile_id": row["id"]}
    except StoreError:  # not there yet
        pass
    extra = (["--queries", str(queries)] if queries else []) + (["--adaptive"] if adaptive else [])
    res = profile_json(dataset, name, *extra, *dbarg)
    print(f"profile {name}: {res['queries']} queries, {res['flops']:.3g} FLOPs, {res['seconds']:.0f} s", flush=True)
    return res


# reporting -------------------------------------------------------------------------------------------
def curve(evals: pd.DataFrame) -> pd.DataFrame:
    """A run's evaluations on both FLOPs axes (sgpo.compare.run_evals prices them): step, accuracy, and the
    total FLOPs under each behaviour in columns named after it (what the CSV holds)."""
    axes = {flops_column(b): b for b in BEHAVIOURS}
    return evals[["step", "accuracy", *axes]].rename(columns=axes)


def collect(store: Store, settings: dict) -> tuple[pd.DataFrame, dict]:
    by_name = {r["name"]: r for r in store.runs()}
    points, cells = [], {}
    for regime in settings["regimes"]:
        prof = store.find_profile(f"{regime}-profile")
        frame = store.profile_frame(prof["id"])
        zero_variance = float(trivial_or_unsolved(frame).mean())
        adaptive = store.find_profile(f"{regime}-adaptive")
        runs = {}
        for name in settings["strategies"]:
            for seed in range(settings["seeds"]):
                row = by_name.get(run_name(regime, name, seed))
                if row is None or row["status"] != "finished":
                    raise SystemExit(
                        f"run {run_name(regime, name, seed)} is missing or unfinished in "
                        f"{settings['db']}: run the benchmark without --report-only"
                    )
                run = store.find_run(row["id"])
                metrics = store.metrics_frame(run["id"])
                evals = compare.run_evals(run, store, metrics)
                runs[(name, seed)] = {
                    "run": run,
                    "evals": evals,
                    "curve": curve(evals),
                    "metrics": metrics[metrics.step > 0],
                }
                points.append(runs[(name, seed)]["curve"].assign(regime=regime, strategy=name, seed=seed))
        cells[regime] = summarise(regime, runs, settings, zero_variance, prof, adaptive)
    return pd.concat(points, ignore_index=True), cells


def wasted_fraction(run: dict) -> float:
    return compare.wasted_fraction(run["metrics"])


def informative_rollouts(run: dict) -> float:
    m = run["metrics"]
    return float(m["rollouts"].sum() - m["wasted_rollouts"].sum())


def run_forecast(run: dict) -> dict:
    """forecast["run"] of the plan stored with the run ({} without one)."""
    return ((run["run"].get("plan") or {}).get("forecast") or {}).get("run") or {}


def summarise(regime: str, runs: dict, settings: dict, zero_variance: float, prof: dict, adaptive: dict) -> dict:
    seeds = range(settings["seeds"])
    grpo = [runs[(settings["baseline"], s)] for s in seeds]
    waste = float(np.mean([wasted_fraction(r) for r in grpo]))
    own = reduction_factor([r["evals"] for r in grpo], [r["evals"] for r in grpo])  # GRPO against itself: its target
    out = {
        "trivial_unsolved_share": zero_variance,
        "target_accuracy": own.target,  # the final accuracy of GRPO's mean curve
        "grpo_wasted_fraction": waste,
        "profile_flops": prof["flops"],
        "adaptive_profile_flops": adaptive["flops"],
        "initial_accuracy": float(grpo[0]["curve"]["accuracy"].iloc[0]),
        "ceiling": {b: waste_ceiling(waste, b) for b in BEHAVIOURS},
        "strategies": {},
    }
    grpo_final = {b: float(np.mean([r["curve"][b].iloc[-1] for r in grpo])) for b in BEHAVIOURS}
    grpo_informative = float(np.mean([informative_rollouts(r) for r in grpo]))
    for name in settings["strategies"]:
        group = [runs[(name, s)] for s in seeds]
        finals = [r["curve"]["accuracy"].iloc[-1] for r in group]
        planned = run_forecast(group[0]) if STRATEGIES[name][1] else {}
        informative = float(np.mean([informative_rollouts(r) for r in group]))
        entry = {
            "final_accuracy_mean": float(np.mean(finals)),
            "final_accuracy_std": float(np.std(finals)),
            **final_breakdown([r["evals"] for r in group]),
            "wasted_fraction": float(np.mean([wasted_fraction(r) for r in group])),
            "steps_mean": float(np.mean([len(r["metrics"]) for r in group])),
            "wall_seconds_mean": float(np.mean([r["run"]["finished"] - r["run"]["created"] for r in group])),
            # steps where every trained group had zero advantage: the only place the two behaviours
            # could part (an engine that trains them still moves Adam's momentum)
            "steps_without_informative_group": int(sum((r["metrics"]["informative_groups"] == 0).sum() for r in group)),
        }
        for b in BEHAVIOURS:
            # the one definition (sgpo.accounting.reduction_factor), as `sgpo compare --seeds` reads it
            r = reduction_factor([g["evals"] for g in grpo], [g["evals"] for g in group], behaviour=b)
            spread = r.spread
            final_flops = float(np.mean([g["curve"][b].iloc[-1] for g in group]))
            forecast = (planned.get(b) or {}).get("reduction_factor")
            # informative rollouts per FLOP against GRPO's: what the forecast models (learning aside)
            per_flop = informative / final_flops / (grpo_informative / grpo_final[b])
            entry[b] = {
                "reduction_factor": r.factor,
                "reduction": compare.reading(r),
                "target_accuracy": r.target,
                "seeds_reaching": r.reached,
                "reduction_min": spread[0] if spread else None,
                "reduction_max": spread[1] if spread else None,
                "of_ceiling": (r.factor / out["ceiling"][b]) if r.factor else None,
                "final_flops_mean": final_flops,
                "informative_rollouts_mean": informative,
                "forecast_reduction_factor": forecast,
                "informative_per_flop_vs_grpo": per_flop,
            }
            if forecast and r.factor:
                entry[b]["forecast_error"] = forecast / r.factor - 1.0
            if forecast:  # against the ratio the forecast models
                entry[b]["forecast_error_informative"] = forecast / per_flop - 1.0
        if STRATEGIES[name][1]:
            skip = planned.get("skip") or {}
            entry["forecast_wasted_fraction"] = (skip.get("plan") or {}).get("forecast_wasted_fraction")
            entry["grpo_forecast_wasted_fraction"] = (skip.get("baseline") or {}).get("forecast_wasted_fraction")
        out["strategies"][name] = entry
    return out


def report(args, settings: dict) -> None:
    store = Store(settings["db"])
    points, cells = collect(store, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    args.docs.mkdir(parents=True, exist_ok=True)
    meta_path = settings["db"].parent / (settings["db"].stem + "-meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    stem = "regimes-quick" if args.quick else "regimes"
    result = {
        "quick": args.quick,
        "baseline": settings["baseline"],
        "seeds": settings["seeds"],
        "budget_flops": settings["budget"],
        "queries": settings["queries"],
        "eval_queries": settings["eval_queries"],
        "eval_every_steps": settings["eval_every"],
        "jobs": args.jobs,
        "total_seconds": meta.get("total_seconds"),
        "regimes": cells,
    }
    points.to_csv(args.out / f"{stem}.csv", index=False)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=float))
    plot(cells, args.docs / f"{stem}.png")
    readme = args.readme or (None if args.quick else ROOT / "README.md")
    if readme is not None:
        write_section(readme, README_START, README_END, table(result))
    print(table(result), flush=True)


def plot(cells: dict, path: Path) -> None:
    """Top: reduction factor at GRPO's final accuracy against the regime, per behaviour, with the ceiling
    (a strategy that never reaches the target is drawn as a hollow triangle at 0.9). Bottom: informative
    rollouts per FLOP against GRPO's, measured (solid) and forecast before training (dotted, sgpo variants)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.4), sharex=True)
    order = sorted(cells, key=lambda r: cells[r]["trivial_unsolved_share"])
    x = np.array([cells[r]["trivial_unsolved_share"] for r in order])
    names = list(cells[order[0]]["strategies"])
    colors = {name: f"C{i}" for i, name in enumerate(names)}
    for col, b in enumerate(BEHAVIOURS):
        top, bottom = axes[0, col], axes[1, col]
        for name in names:
            entries = [cells[r]["strategies"][name][b] for r in order]
            y = np.array([e["reduction_factor"] or np.nan for e in entries], dtype=float)
            lo = np.array([e["reduction_min"] or np.nan for e in entries], dtype=float)
            hi = np.array([e["reduction_max"] or np.nan for e in entries], dtype=float)
            top.errorbar(
                x,
                y,
                yerr=[np.nan_to_num(np.maximum(0, y - lo)), np.nan_to_num(np.maximum(0, hi - y))],
                marker="o",
                capsize=3,
                color=colors[name],
                label=name,
            )
            never = np.isnan(y)
            top.scatter(x[never], np.full(never.sum(), 0.9), marker="v", facecolors="none", edgecolors=colors[name])
            bottom.plot(
                x, [e["informative_per_flop_vs_grpo"] for e in entries], marker="o", color=colors[name], label=name
            )
            if STRATEGIES[name][1]:
                bottom.plot(
                    x,
                    [e.get("forecast_reduction_factor") or np.nan for e in entries],
                    ":",
                    marker="x",
                    color=colors[name],
                )
        top.plot(x, [cells[r]["ceiling"][b] for r in order], "k--", label="ceiling (GRPO's waste removed)")
        for ax in (top, bottom):
            ax.axhline(1.0, color="grey", lw=0.8)
        top.set_title(
            ("zero-advantage groups skipped (ours)" if b == "skip" else "every rollout trained (TRL, verl)"),
            fontsize=10,
        )
        bottom.set_xlabel("trivial + unsolved share under the starter (N=8 profile)")
    axes[0, 0].set_ylabel("reduction at GRPO's final accuracy\n(triangle at 0.9: never reached)")
    axes[1, 0].set_ylabel("informative rollouts per FLOP / GRPO's\n(solid: measured, dotted: forecast)")
    axes[0, 1].legend(fontsize=7)
    fig.suptitle(
        "Regime map: FLOPs GRPO spends / FLOPs to reach its final held-out accuracy (bars: min-max over "
        "seeds), and what the forecast predicts",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close("all")


def table(result: dict) -> str:
    def rf(x):
        return "never" if x is None else f"{x:.2f}x"

    lines = [
        "| regime (trivial+unsolved) | strategy | final accuracy | solved / middle / unsolved | wasted | skip: reduction "
        "(spread, seeds) | skip: informative/FLOP vs GRPO, measured / forecast | train-all: reduction (spread, seeds) | "
        "train-all: informative/FLOP vs GRPO, measured / forecast |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for regime, cell in result["regimes"].items():
        label = f"{regime} ({cell['trivial_unsolved_share']:.2f})"
        for name, s in cell["strategies"].items():
            parts = []
            for b in BEHAVIOURS:
                e = s[b]
                spread = "" if e["reduction_min"] is None else f" ({e['reduction_min']:.2f}-{e['reduction_max']:.2f}"
                spread += f"{', ' if spread else ' ('}{e['seeds_reaching']}/{result['seeds']})"
                forecast = f" / {rf(e.get('forecast_reduction_factor'))}" if STRATEGIES[name][1] else ""
                shown = e.get("reduction") or ""  # a reason in words where there is no factor ("n/a: ...")
                shown = rf(e["reduction_factor"]) if e["reduction_factor"] or not shown.startswith("n/a") else shown
                parts += [shown + spread, f"{e['informative_per_flop_vs_grpo']:.2f}x{forecast}"]
            lines.append(
                f"| {label} | {name} | {s['final_accuracy_mean']:.3f} ± {s['final_accuracy_std']:.3f} | "
                f"{bands_text(s.get('by_band') or {})} | {s['wasted_fraction']:.2f} | " + " | ".join(parts) + " |"
            )
        lines.append(
            f"| {label} | ceiling (GRPO wastes {cell['grpo_wasted_fraction']:.2f}) | | | | "
            f"{cell['ceiling']['skip']:.2f}x | | {cell['ceiling']['train_all']:.2f}x | |"
        )
    lines.append("")
    lines += task_table(
        [
            (regime, name, s.get("by_task") or {})
            for regime, cell in result["regimes"].items()
            for name, s in cell["strategies"].items()
        ]
    )
    lines.append("")
    minutes = (
        "" if result.get("total_seconds") is None else f" The whole map took {result['total_seconds'] / 60:.0f} min."
    )
    lines.append(
        f"{result['queries']} training and {result['eval_queries']} held-out queries per regime, "
        f"{result['budget_flops']:.3g} FLOPs per run (profiling included for the sgpo variants), {result['seeds']} "
        f"seed(s), evaluated every {result['eval_every_steps']} steps, {result['jobs']} runs side by side, one torch "
        f"thread each.{minutes} Reduction = FLOPs where GRPO's mean curve (seeds averaged) first reaches its final "
        f"accuracy / FLOPs where the strategy's mean curve does, linear between evaluations (`sgpo compare --seeds` "
        f"gives the same number); spread = per seed, min-max; seeds = how many seeds reach it. Informative/FLOP = informative rollouts per FLOP over the run "
        f"divided by GRPO's; forecast = the reduction factor the run's own plan forecast before training, which "
        f"models exactly that ratio."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
