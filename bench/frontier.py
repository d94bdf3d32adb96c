"""The frontier: each strategy at its best rollouts per step and learning rate, and what sGPO saves there.

    python bench/frontier.py                 # 3 regimes, a batch x lr grid, 3 seeds at the best settings, ablations
    python bench/frontier.py --quick         # one regime, a 2-cell grid, one seed (the test suite's run, ~3 min)
    python bench/frontier.py --keep          # keep the store: finished runs are not trained again
    python bench/frontier.py --report-only   # redraw JSON, CSV, plot and README section from the stored runs

Why: every earlier comparison (bench/regimes.py, bench/compute_efficiency.py) held the rollouts per step and the
learning rate fixed. With Adam the learning rate sets the step size, so a strategy's saving means something only
once the batch and the learning rate are tuned for each strategy alike. Here every strategy gets the same grid.

Datasets come from bench/regimes.py: tilted mixes of the built-in families holding about 80% and 60% trivial +
unsolved queries under the starter, and a random sample of builtin:train (`train`), each with a disjoint held-out
set. sgpo runs pay for their N=8 profile (counted in their FLOPs from step 0).

How the grid is searched (sized to fit about 2 hours on 2 cores; say so if you change it):
1. Grid, seed 0: grpo, greso and sgpo at 32 / 64 / 128 / 256 rollouts a step, dapo at 64 / 128 (its over-sampling
   makes smaller steps as expensive as larger ones), each at two learning rates that follow the batch
   (LEARNING_RATES: 2.5e-5 and 5e-5 at 32 rollouts a step, 5e-5 and 1e-4 above; in the pilot behind this
   benchmark, 2e-4 lost in every cell and 1e-4 at 32 rollouts a step lost to 5e-5). Warmup is a tenth of the
   run's expected steps and evaluations every eighth of them, so every run is read at the same points of its
   budget whatever its batch.
2. Seeds: each strategy's two best cells (by the mean of their last two evaluations, which halves sampling
   noise) get the remaining seeds; a strategy's best setting is the cell with the highest mean over seeds.
3. Ablations at sgpo's best cell, every seed: steps sized by expected informative rollouts (--batch-informative),
   the plan made from the first epoch's own rollouts (no separate profile), an --adaptive profile, near-trivial
   queries kept (--trivial-threshold 0.9), no unsolved query kept (--unsolved-keep 0), no curriculum.

Reported, per regime: each strategy's best setting and final held-out accuracy (mean +- std over seeds), by band
of the initial policy (solved / middle / unsolved) and by task; its reduction factor against the best GRPO
setting under both engine behaviours (sgpo.accounting.reduction_factor, the one definition: target = the final
accuracy of the best GRPO setting's mean curve over seeds), with the per-seed spread and how many seeds reach it;
sgpo against the GRESO-style baseline; and what the critical-batch gauge (sgpo/gauge.py) measured, the batch it
recommends, and the best batch the grid found. Outputs: bench/results/frontier.json and .csv, docs/frontier.png,
and the README section between the bench:frontier markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bands_text, sgpo_json, write_section  # noqa: E402
from bench.regimes import parse_regimes, profile_once, regime_datasets, trivial_or_unsolved  # noqa: E402
from sgpo import compare, gauge, paths  # noqa: E402
from sgpo.accounting import ENGINE_BEHAVIOURS, mean_curve, reduction_factor  # noqa: E402
from sgpo.store import Store  # noqa: E402
from sgpo.vocab import BANDS  # noqa: E402

README_START, README_END = "<!-- bench:frontier:start -->", "<!-- bench:frontier:end -->"
BASE = {  # strategy -> (sgpo train arguments, the profile it trains from: None or "fixed")
    "grpo": (["--strategy", "grpo"], None),
    "greso": (["--strategy", "greso"], None),
    "dapo": (["--strategy", "dapo"], None),
    "sgpo": (["--strategy", "sgpo"], "fixed"),
}
ABLATIONS = {  # run at sgpo's best cell of each regime: (arguments, profile: None, "fixed" or "adaptive")
    "sgpo-informative": (["--strategy", "sgpo"], "fixed"),  # + --batch-informative N (see ablation_args)
    "sgpo-first-epoch": (["--strategy", "sgpo", "--plan-from-first-epoch"], None),
    "sgpo-adaptive": (["--strategy", "sgpo"], "adaptive"),
    "sgpo-near-trivial": (["--strategy", "sgpo", "--trivial-threshold", "0.9"], "fixed"),
    "sgpo-keep0": (["--strategy", "sgpo", "--unsolved-keep", "0"], "fixed"),
    "sgpo-shuffled": (["--strategy", "sgpo", "--curriculum", "none"], "fixed"),
}
LEARNING_RATES = {32: (2.5e-5, 5e-5), 64: (5e-5, 1e-4), 128: (5e-5, 1e-4), 256: (5e-5, 1e-4)}
DAPO_BATCHES = (64, 128)
ROLLOUT_FLOPS = 1.1e8  # FLOPs of one training rollout on the starter (generation + its trained share), measured
SAMPLE_FLOPS = 7.1e7  # FLOPs of one profiling sample on the starter (generation only), measured
MIN_STEPS, MAX_STEPS = 12, 3000  # a cell outside these cannot be read at eight evaluations, or takes too long
FULL = {
    "regimes": "0.8,0.6,train",
    "batches": "32,64,128,256",
    "seeds": 3,
    "top": 2,
    "budget": 1.2e12,
    "queries": 600,
    "eval_queries": 200,
    "ablations": ",".join(ABLATIONS),
    "strategies": ",".join(BASE),
    "calibration_queries": None,
}
QUICK = {
    "regimes": "0.8",
    "batches": "64,128",
    "seeds": 1,
    "top": 1,
    "budget": 3e11,
    "queries": 160,
    "eval_queries": 40,
    "ablations": "sgpo-keep0",
    "strategies": "grpo,sgpo",
    "calibration_queries": 400,
}


class FrontierError(SystemExit):
    """Bad input: one line naming the option, and nothing written."""


@dataclass(frozen=True)
class Cell:
    regime: str
    strategy: str
    batch: int
    lr: float
    seed: int
    extra: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        return f"{self.regime}-{self.strategy}-b{self.batch}-lr{self.lr:g}-s{self.seed}"


# the grid ---------------------------------------------------------------------------------------------------
def grid(regime: str, batches: list[int], strategies: list[str]) -> list[Cell]:
    """Stage 1: every (strategy, batch, lr) cell of a regime at seed 0."""
    return [
        Cell(regime, s, b, lr, 0)
        for s in strategies
        for b in batches
        if s != "dapo" or b in DAPO_BATCHES
        for lr in learning_rates(b)
    ]


def learning_rates(batch: int) -> tuple[float, ...]:
    """The two learning rates tried at a batch: those of the nearest batch in LEARNING_RATES."""
    return LEARNING_RATES[min(LEARNING_RATES, key=lambda b: abs(math.log(b / batch)))]


def expected_steps(budget: float, profile_flops: float, batch: int) -> float:
    return (budget - profile_flops) / (ROLLOUT_FLOPS * batch)


def check_fits(settings: dict, batches: list[int]) -> None:
    """Every cell must fit the budget: a profile it cannot pay, or a cell too short to read at eight
    evaluations or too long to train, is refused here, naming the option, before anything is written."""
    budget = settings["budget"]
    profile = 8 * settings["queries"] * SAMPLE_FLOPS
    if profile >= 0.5 * budget:
        raise FrontierError(
            f"--budget {budget:.3g}: the profile of {settings['queries']} queries x 8 samples (about {profile:.3g} "
            f"FLOPs) would take half of it or more: raise --budget or lower --queries"
        )
    for batch in batches:
        steps = expected_steps(budget, profile, batch)
        if steps < MIN_STEPS:
            raise FrontierError(
                f"--batches {batch}: a run of --budget {budget:.3g} FLOPs takes about {steps:.0f} steps at {batch} "
                f"rollouts a step, fewer than the {MIN_STEPS} needed to read it: raise --budget or drop that batch"
            )
        if steps > MAX_STEPS:
            raise FrontierError(
                f"--batches {batch}: a run of --budget {budget:.3g} FLOPs takes about {steps:.0f} steps at {batch} "
                f"rollouts a step, more than {MAX_STEPS}: lower --budget or drop that batch"
            )


def run_args(cell: Cell, settings: dict, datasets: dict, profiles: dict) -> list[str]:
    """`sgpo train` arguments of a cell: its strategy, profile, batch, lr, seed, and a warmup and evaluation
    schedule scaled to its expected steps."""
    extra, source = {**BASE, **ABLATIONS}[cell.strategy]
    paid = profiles[cell.regime][source]["flops"] if source else 0.0
    steps = expected_steps(settings["budget"], paid, cell.batch)
    args = list(extra) + (["--profile", profiles[cell.regime][source]["name"]] if source else [])
    return [
        *args,
        *cell.extra,
        "--dataset", datasets[cell.regime]["train"],
        "--eval-dataset", datasets[cell.regime]["eval"],
        "--no-eval-greedy",
        "--flops-budget", f"{settings['budget']:.6g}",
        # steps sized by informative rollouts may reach twice the cell's rollouts; the cell's batch is nominal
        "--batch-rollouts", str(2 * cell.batch if "--batch-informative" in cell.extra else cell.batch),
        "--lr", f"{cell.lr:g}",
        "--warmup-steps", str(max(1, round(0.1 * steps))),
        "--eval-every", str(max(1, round(steps / 8))),
        "--checkpoint-every", "100000",
        "--seed", str(cell.seed),
        "--threads", "1",
        "--name", cell.name,
        "--db", str(settings["db"]),
    ]  # fmt: skip


def train_cells(cells: list[Cell], settings: dict, datasets: dict, profiles: dict, jobs: int, t0: float) -> None:
    """Train the cells not yet finished in the store, `jobs` at a time (one torch thread each)."""
    store = Store(settings["db"])
    finished = {r["name"] for r in store.runs() if r["status"] == "finished"}
    todo = [c for c in dict.fromkeys(cells) if c.name not in finished]
    stale = {r["name"]: r["id"] for r in store.runs() if r["status"] != "finished"}
    for cell in todo:  # a half-done run of an earlier attempt would block its name
        if cell.name in stale:
            store.delete_run(stale[cell.name])
        shutil.rmtree(paths.checkpoint_root(store, cell.name), ignore_errors=True)
    store.close()

    def one(cell: Cell) -> None:
        started = time.time()
        res = sgpo_json("train", *run_args(cell, settings, datasets, profiles))
        print(
            f"{cell.name:<44} {res['steps']:>4} steps, acc {res['eval_accuracy_initial']:.3f} -> "
            f"{res['eval_accuracy']:.3f}, wasted {res['run_wasted_fraction']:.2f}, {time.time() - started:.0f} s "
            f"(at {time.time() - t0:.0f} s)",
            flush=True,
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # threads only wait on the subprocesses
        list(pool.map(one, todo))


# reading the runs ---------------------------------------------------------------------------------------------
def load_runs(store: Store) -> pd.DataFrame:
    """One row per finished run of the benchmark: its cell, final accuracy (and by band and task), waste, steps,
    profile share, the gauge's columns, wall time, and its evaluations on both FLOPs axes (`evals`)."""
    rows = []
    for r in store.runs():
        if r["status"] != "finished":
            continue
        run = store.find_run(r["id"])
        cfg = run["config"]
        regime, rest = r["name"].split("-", 1)
        strategy = rest.rsplit("-b", 1)[0]
        batch = int(rest.rsplit("-b", 1)[1].split("-")[0])
        metrics = store.metrics_frame(run["id"])
        steps = metrics[metrics["step"] > 0]
        ev = compare.run_evals(run, store, metrics)
        last = ev.iloc[-1]
        rows.append({
            "name": r["name"], "regime": regime, "strategy": strategy, "batch": batch, "lr": float(cfg["lr"]),
            "seed": int(cfg["seed"]), "steps": len(steps),
            "initial": float(ev["accuracy"].iloc[0]), "final": float(last["accuracy"]),
            "final2": float(ev["accuracy"].iloc[-2:].mean()),
            "wasted": compare.wasted_fraction(steps),
            "informative_per_step": float((steps["rollouts"] - steps["wasted_rollouts"]).mean()),
            "rollouts_per_step": float(steps["rollouts"].mean()),
            "profile_share": float(steps["flops_profile"].iloc[-1] / steps["flops_total"].iloc[-1]),
            **{f"flops_{b}": float(ev[f"flops_total_{b}"].iloc[-1]) for b in ENGINE_BEHAVIOURS},
            **{f"band_{k.split('.', 1)[1]}": float(last[k]) for k in ev.columns if k.startswith("by_band.")},
            **{f"task_{k.split('.', 1)[1]}": float(last[k]) for k in ev.columns if k.startswith("by_task.")},
            "wall_seconds": float((run.get("finished") or 0) - (run.get("created") or 0)),
            "evals": ev, "metrics": steps,
        })  # fmt: skip
    return pd.DataFrame(rows)


def seeds_ranked(df: pd.DataFrame, regime: str, strategy: str, top: int) -> list[tuple[int, float]]:
    """The `top` best (batch, lr) cells of a strategy by its seed-0 runs' mean of the last two evaluations."""
    part = df[(df.regime == regime) & (df.strategy == strategy) & (df.seed == 0)]
    return [tuple(x) for x in part.sort_values("final2", ascending=False)[["batch", "lr"]].head(top).to_numpy()]


def best_cell(df: pd.DataFrame, regime: str, strategy: str, seeds: int) -> pd.DataFrame:
    """The runs of a strategy's best cell: the highest mean over seeds of the last two evaluations, among
    the cells trained with every seed (all cells when there is one seed)."""
    part = df[(df.regime == regime) & (df.strategy == strategy)]
    full = part.groupby(["batch", "lr"]).filter(lambda g: g["seed"].nunique() >= seeds)
    if full.empty:
        return full
    score = full.groupby(["batch", "lr"])["final2"].mean()
    batch, lr = score.idxmax()
    return full[(full.batch == batch) & (full.lr == lr)].sort_values("seed")


# the report ----------------------------------------------------------------------------------------------------
def summarise(df: pd.DataFrame, regime: str, settings: dict, store: Store) -> dict:
    seeds = settings["seeds"]
    names = [s for s in BASE if s in settings["strategies"]] + [a for a in settings["ablations"]]
    best = {s: best_cell(df, regime, s, seeds) for s in names}
    grpo = best["grpo"]
    profile = store.find_profile(f"{regime}-profile")
    share = float(trivial_or_unsolved(store.profile_frame(profile["id"])).mean())
    out: dict = {"trivial_unsolved_share": share, "profile_flops": profile["flops"], "strategies": {}}
    for s, runs in best.items():
        if runs.empty:
            continue
        entry = {
            "batch": int(runs["batch"].iloc[0]), "lr": float(runs["lr"].iloc[0]), "seeds": len(runs),
            "final_mean": float(runs["final"].mean()), "final_std": float(runs["final"].std(ddof=0)),
            "initial_mean": float(runs["initial"].mean()), "wasted": float(runs["wasted"].mean()),
            "profile_share": float(runs["profile_share"].mean()), "steps": float(runs["steps"].mean()),
            "informative_per_step": float(runs["informative_per_step"].mean()),
            "rollouts_per_step": float(runs["rollouts_per_step"].mean()),
            "wall_seconds": float(runs["wall_seconds"].mean()),
            "by_band": {b: _mean(runs, f"band_{b}") for b in BANDS},
            "by_task": {c[5:]: _mean(runs, c) for c in runs.columns if c.startswith("task_")},
        }  # fmt: skip
        for b in ENGINE_BEHAVIOURS:
            r = reduction_factor(list(grpo["evals"]), list(runs["evals"]), behaviour=b)
            entry[b] = {"reduction": r.factor, "reading": compare.reading(r), "spread": r.spread, "reached": r.reached,
                        "flops_final": float(runs[f"flops_{b}"].mean())}  # fmt: skip
            greso = best.get("greso")
            if s.startswith("sgpo") and greso is not None and not greso.empty:
                vs = reduction_factor(list(greso["evals"]), list(runs["evals"]), behaviour=b)
                entry[b]["vs_greso"] = {"reduction": vs.factor, "reading": compare.reading(vs), "reached": vs.reached}
        out["strategies"][s] = entry
    if not grpo.empty:
        out["target"] = reduction_factor(list(grpo["evals"]), list(grpo["evals"])).target
    out["gauge"] = gauge_report(df, regime, out)
    return out


def _mean(runs: pd.DataFrame, column: str) -> float | None:
    return float(runs[column].mean()) if column in runs and runs[column].notna().any() else None


def gauge_report(df: pd.DataFrame, regime: str, summary: dict) -> dict:
    """What the gauge measured over every grpo and sgpo run of the regime (pooled over their steps), the batch it
    recommends for each, and the best batch the grid found."""
    out = {}
    for s in ("grpo", "sgpo"):
        runs = df[(df.regime == regime) & (df.strategy == s)]
        entry = summary["strategies"].get(s)
        if runs.empty or entry is None:
            continue
        pooled = gauge.pooled(list(runs["metrics"]))
        best = entry["batch"]
        recommended = pooled.get("critical_rollouts")
        best_runs = runs[(runs.batch == best) & (runs.lr == entry["lr"])]
        said = gauge.verdict(best_runs.iloc[0]["metrics"], best) if len(best_runs) else {}
        within = least = below = None
        if recommended and math.isfinite(recommended):
            within = bool(0.5 <= recommended / best <= 2.0)
            least = gauge.LEAST_COMPUTE * recommended  # within 10% of the least compute: what a FLOP budget wants
            below = bool(best <= least)
        out[s] = {**pooled, "best_batch": best, "recommended_within_2x": within, "least_compute_rollouts": least,
                  "best_at_or_below_least_compute": below, "verdict_at_best": said.get("state"),
                  "words_at_best": said.get("words")}  # fmt: skip
    return out


def report(settings: dict) -> dict:
    store = Store(settings["db"], readonly=True)
    df = load_runs(store)
    if df.empty:
        raise FrontierError(f"--db {settings['db']}: no finished runs to report: run the benchmark first")
    cells = {regime: summarise(df, regime, settings, store) for regime in settings["regimes"]}
    meta_path = Path(str(settings["db"]) + "-meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    result = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()},
        "runs": len(df),
        "total_seconds": meta.get("total_seconds"),
        "regimes": cells,
        "targets": targets(cells),
    }
    out, docs = settings["out"], settings["docs"]
    out.mkdir(parents=True, exist_ok=True)
    stem = settings["stem"]
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    columns = [c for c in df.columns if c not in ("evals", "metrics")]
    df[columns].sort_values(["regime", "strategy", "batch", "lr", "seed"]).to_csv(out / f"{stem}.csv", index=False)
    docs.mkdir(parents=True, exist_ok=True)
    plot(df, cells, settings, docs / f"{stem}.png")
    if settings.get("readme"):
        write_section(settings["readme"], README_START, README_END, table(result))
    print(json.dumps({"runs": len(df), "targets": result["targets"]}, default=float))
    return result


def targets(cells: dict) -> dict:
    """The issue's targets, each measured: met, missed, or not measured, with the numbers."""
    out: dict = {}
    c80 = cells.get("0.8", {}).get("strategies", {}).get("sgpo")
    if c80:
        out["0.8 train_all >= 1.5x"] = c80["train_all"]["reduction"]
        out["0.8 skip >= 1.2x"] = c80["skip"]["reduction"]
    vs = {
        r: (c["strategies"].get("sgpo") or {}).get("skip", {}).get("vs_greso", {}).get("reduction")
        for r, c in cells.items()
    }
    out["sgpo >= greso (skip), regimes"] = {r: v for r, v in vs.items()}
    vs_all = {
        r: (c["strategies"].get("sgpo") or {}).get("train_all", {}).get("vs_greso", {}).get("reduction")
        for r, c in cells.items()
    }
    out["sgpo >= greso (train_all), regimes"] = vs_all
    gaps = {}
    for r, c in cells.items():
        s, g = c["strategies"].get("sgpo"), c["strategies"].get("grpo")
        if s and g:
            gaps[r] = {b: _gap(s["by_band"].get(b), g["by_band"].get(b)) for b in BANDS}
    out["band gap sgpo - grpo (>= -0.01)"] = gaps
    out["gauge within 2x of the best batch"] = {
        r: {s: e.get("recommended_within_2x") for s, e in c.get("gauge", {}).items()} for r, c in cells.items()
    }
    out["best batch at or below the gauge's least-compute batch"] = {
        r: {s: e.get("best_at_or_below_least_compute") for s, e in c.get("gauge", {}).items()} for r, c in cells.items()
    }
    return out


def _gap(a, b):
    return None if a is None or b is None else round(a - b, 4)


def _factor(entry: dict, seeds: int) -> str:
    """'1.42x (1.20-1.61, 2/3 seeds)': the factor, the per-seed spread and how many seeds reach the target. The
    runs are finished, so a mean curve that does not reach the target reads 'never'."""
    reached = f"{entry['reached']}/{seeds} seeds"
    if entry["reduction"] is None:
        reading = "never" if entry["reading"] == compare.READINGS["not reached"] else entry["reading"]
        return f"{reading} ({reached})"
    spread = entry.get("spread")
    span = f"{spread[0]:.2f}-{spread[1]:.2f}, " if spread else ""
    return f"{entry['reduction']:.2f}x ({span}{reached})"


def table(result: dict) -> str:
    lines = [
        "| regime (trivial+unsolved) | strategy | best rollouts/step, lr | final accuracy | solved / middle / unsolved "
        "| wasted | profile share | skip: reduction vs best GRPO | train-all: reduction vs best GRPO | sgpo vs greso "
        "(skip / train-all) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for regime, cell in result["regimes"].items():
        for name, e in cell["strategies"].items():
            bands = bands_text(e["by_band"])
            vs = " / ".join(
                _factor(e[b]["vs_greso"], e["seeds"]) if "vs_greso" in e[b] else "" for b in ENGINE_BEHAVIOURS
            ).strip(" /")
            lines.append(
                f"| {regime} ({cell['trivial_unsolved_share']:.2f}) | {name} | {e['batch']}, {e['lr']:g} | "
                f"{e['final_mean']:.3f} ± {e['final_std']:.3f} | {bands} | {e['wasted']:.2f} | "
                f"{e['profile_share']:.0%} | {_factor(e['skip'], e['seeds'])} | {_factor(e['train_all'], e['seeds'])} | {vs} |"
            )
    lines.append("")
    lines.append(
        "| regime | task | " + " | ".join(result["regimes"][next(iter(result["regimes"]))]["strategies"]) + " |"
    )
    first = next(iter(result["regimes"].values()))
    lines.append("|---|---|" + "---|" * len(first["strategies"]))
    for regime, cell in result["regimes"].items():
        tasks = sorted({t for e in cell["strategies"].values() for t in e["by_task"]})
        for task in tasks:
            values = [e["by_task"].get(task) for e in cell["strategies"].values()]
            lines.append(
                f"| {regime} | {task} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in values) + " |"
            )
    lines.append("")
    lines.append("| regime | gauge over | B_simple, informative rollouts (80% interval) | recommended rollouts/step (B_simple) "
                 "| least-compute rollouts/step (0.1 x) | best measured | within 2x | best at or below least-compute "
                 "| verdict at the best cell |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for regime, cell in result["regimes"].items():
        for s, g in cell.get("gauge", {}).items():
            lines.append(
                f"| {regime} | {s} ({g.get('steps', 0)} steps) | {_num(g.get('critical_informative'))} "
                f"({_num(g.get('low_informative'))}-{_num(g.get('high_informative'))}) | "
                f"{_num(g.get('critical_rollouts'))} | {_num(g.get('least_compute_rollouts'))} | {g['best_batch']} | "
                f"{g.get('recommended_within_2x')} | {g.get('best_at_or_below_least_compute')} | {g.get('verdict_at_best')} |"
            )
    s = result["settings"]
    minutes = f"{result['total_seconds'] / 60:.0f} min" if result.get("total_seconds") else "n/a"
    grid = ", ".join(f"{b} ({' / '.join(f'{lr:g}' for lr in learning_rates(b))})" for b in s["batches"])
    lines.append("")
    lines.append(
        f"Grid at seed 0: rollouts a step (learning rates) {grid}; strategies {', '.join(s['strategies'])} (dapo "
        f"at {' / '.join(map(str, DAPO_BATCHES))} only); ablations at sgpo's best cell: "
        f"{', '.join(s['ablations']) or 'none'}. "
        f"{s['queries']} training and {s['eval_queries']} held-out queries per regime, {s['budget']:.3g} FLOPs per run "
        f"(profiling included for sgpo), {result['runs']} runs, {s['seeds']} seed(s) at each strategy's "
        f"{'best cell' if s['top'] == 1 else str(s['top']) + ' best cells'}, {s['jobs']} runs side by side with one torch thread each: {minutes} in all. Reduction = FLOPs "
        f"at which the best GRPO setting's mean curve reaches its own final accuracy / FLOPs at which the strategy's "
        f"mean curve does (sgpo.accounting.reduction_factor); spread = the factors of the seeds that reach it on their "
        f"own; seeds = how many do (so a mean curve held back by one seed can read below its spread, or never)."
    )
    return "\n".join(lines)


def _num(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "unresolved" if math.isinf(x) else f"{x:,.0f}"


def plot(df: pd.DataFrame, cells: dict, settings: dict, path: Path) -> None:
    """Held-out accuracy against total FLOPs (profiling included) of each strategy's best setting, the mean over
    its seeds with their min-max band; one column per regime, one row per engine behaviour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = list(cells)
    fig, axes = plt.subplots(2, len(regimes), figsize=(5.2 * len(regimes), 8), squeeze=False)
    names = [s for s in BASE if s in settings["strategies"]]
    for col, regime in enumerate(regimes):
        for row, b in enumerate(ENGINE_BEHAVIOURS):
            ax = axes[row, col]
            for i, s in enumerate(names):
                runs = best_cell(df, regime, s, settings["seeds"])
                if runs.empty:
                    continue
                curve = mean_curve(list(runs["evals"]), f"flops_total_{b}")
                label = f"{s} ({int(runs['batch'].iloc[0])}/step, lr {runs['lr'].iloc[0]:g})"
                ax.plot(curve.iloc[:, 0], curve["accuracy"], color=f"C{i}", label=label)
                ax.fill_between(curve.iloc[:, 0], curve["low"], curve["high"], color=f"C{i}", alpha=0.15)
            target = cells[regime].get("target")
            if target is not None:
                ax.axhline(target, color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"{regime}: {'zero-advantage groups skipped' if b == 'skip' else 'every rollout trained'}")
            ax.set_xlabel("total FLOPs (profiling included)")
            ax.set_ylabel("held-out accuracy")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# main ----------------------------------------------------------------------------------------------------------
def ablation_cells(df: pd.DataFrame, regime: str, settings: dict) -> list[Cell]:
    """The ablations at sgpo's best cell of the regime, every seed."""
    runs = best_cell(df, regime, "sgpo", settings["seeds"])
    if runs.empty:
        return []
    batch, lr = int(runs["batch"].iloc[0]), float(runs["lr"].iloc[0])
    cells = []
    for name in settings["ablations"]:
        extra: tuple[str, ...] = ()
        if name == "sgpo-informative":  # the informative rollouts sgpo's best cell held, a step at most twice its size
            informative = max(1, round(float(runs["informative_per_step"].mean())))
            extra = ("--batch-informative", str(informative))
        cells += [Cell(regime, name, batch, lr, seed, extra) for seed in range(settings["seeds"])]
    return cells


def parse(argv: list[str] | None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one regime, a 2-cell grid, one seed (the suite's run)")
    ap.add_argument("--regimes", default=None, help="comma-separated trivial+unsolved shares and/or train")
    ap.add_argument("--batches", default=None, help="rollouts per step of the grid, comma-separated")
    ap.add_argument("--strategies", default=None, help="of " + ", ".join(BASE) + " (grpo is required)")
    ap.add_argument("--ablations", default=None, help="of " + ", ".join(ABLATIONS) + " ('' for none)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--top", type=int, default=None, help="cells per strategy that get every seed")
    ap.add_argument("--budget", type=float, default=None, help="total FLOPs per run, profiling included")
    ap.add_argument("--queries", type=int, default=None, help="training queries per regime")
    ap.add_argument("--eval-queries", type=int, default=None, help="held-out queries per regime")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs trained side by side")
    ap.add_argument("--db", type=Path, default=None, help="the store (default bench/results/frontier.db)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    ap.add_argument("--readme", type=Path, default=None, help="default README.md; --quick: none")
    ap.add_argument("--keep", action="store_true", help="keep the store and skip runs already finished in it")
    ap.add_argument("--report-only", action="store_true", help="train nothing: report the runs in --db")
    args = ap.parse_args(argv)
    s = dict(QUICK if args.quick else FULL)
    for key in ("regimes", "batches", "seeds", "top", "budget", "queries", "eval_queries", "ablations", "strategies"):
        if getattr(args, key) is not None:
            s[key] = getattr(args, key)
    for option, value in (("--seeds", s["seeds"]), ("--top", s["top"]), ("--queries", s["queries"]),
                          ("--eval-queries", s["eval_queries"]), ("--jobs", args.jobs)):  # fmt: skip
        if value < 1:
            raise FrontierError(f"{option}: {value} must be at least 1")
    if not s["budget"] > 0 or not math.isfinite(s["budget"]):
        raise FrontierError(f"--budget: {s['budget']:g} must be a positive number of FLOPs")
    try:
        batches = sorted({int(b) for b in str(s["batches"]).split(",") if b.strip()})
    except ValueError:
        raise FrontierError(f"--batches: {s['batches']!r} must be whole numbers of rollouts, e.g. 32,64,128") from None
    if not batches or min(batches) < 8:
        raise FrontierError(f"--batches: {s['batches']!r}: give rollouts per step of at least 8 (one group of 8)")
    strategies = [x.strip() for x in str(s["strategies"]).split(",") if x.strip()]
    ablations = [x.strip() for x in str(s["ablations"]).split(",") if x.strip()]
    unknown = [x for x in strategies if x not in BASE] + [x for x in ablations if x not in ABLATIONS]
    if unknown or "grpo" not in strategies:
        raise FrontierError(
            f"--strategies/--ablations: {', '.join(unknown) or 'grpo missing'}: strategies are "
            f"{', '.join(BASE)} (grpo is what every factor is measured against), ablations {', '.join(ABLATIONS)}"
        )
    if ablations and "sgpo" not in strategies:
        raise FrontierError("--ablations: they run at sgpo's best cell, so --strategies must include sgpo")
    s["regimes"] = parse_regimes(s["regimes"]) if isinstance(s["regimes"], str) else s["regimes"]
    stem = "frontier-quick" if args.quick else "frontier"
    s.update(
        batches=batches, strategies=strategies, ablations=ablations, jobs=args.jobs, keep=args.keep,
        report_only=args.report_only, stem=stem, db=args.db or ROOT / "bench" / "results" / f"{stem}.db",
        out=args.out, docs=args.docs, readme=args.readme or (None if args.quick else ROOT / "README.md"),
    )  # fmt: skip
    check_fits(s, batches)
    return s


def main(argv: list[str] | None = None) -> dict:
    s = parse(argv)
    if s["report_only"]:
        return report(s)
    db: Path = s["db"]
    t0 = time.time()
    store, dbarg, datasets = regime_datasets(db, s, keep=s["keep"], also=("-meta.json",))
    profiles: dict = {}
    for regime in s["regimes"]:
        profiles[regime] = {"fixed": {"name": f"{regime}-profile"}}
        profiles[regime]["fixed"].update(flops=_profile(store, dbarg, f"{regime}-profile", datasets[regime]["train"]))
        if "sgpo-adaptive" in s["ablations"]:
            flops = _profile(store, dbarg, f"{regime}-adaptive", datasets[regime]["train"], adaptive=True)
            profiles[regime]["adaptive"] = {"name": f"{regime}-adaptive", "flops": flops}
    store.close()
    print(f"datasets and profiles ready ({time.time() - t0:.0f} s)", flush=True)
    stage1 = [c for regime in s["regimes"] for c in grid(regime, s["batches"], s["strategies"])]
    train_cells(stage1, s, datasets, profiles, s["jobs"], t0)
    if s["seeds"] > 1:
        df = load_runs(Store(db, readonly=True))
        stage2 = [
            Cell(regime, strategy, int(batch), float(lr), seed)
            for regime in s["regimes"]
            for strategy in s["strategies"]
            for batch, lr in seeds_ranked(df, regime, strategy, s["top"])
            for seed in range(1, s["seeds"])
        ]
        train_cells(stage2, s, datasets, profiles, s["jobs"], t0)
    if s["ablations"]:
        df = load_runs(Store(db, readonly=True))
        stage3 = [c for regime in s["regimes"] for c in ablation_cells(df, regime, s)]
        train_cells(stage3, s, datasets, profiles, s["jobs"], t0)
    meta_path = Path(str(db) + "-meta.json")
    earlier = json.loads(meta_path.read_text()).get("total_seconds", 0.0) if s["keep"] and meta_path.exists() else 0.0
    meta_path.write_text(json.dumps({"total_seconds": earlier + time.time() - t0, "datasets": datasets}, indent=2))
    return report(s)


def _profile(store: Store, dbarg: list[str], name: str, dataset: str, *, adaptive: bool = False) -> float:
    profile_once(store, dbarg, name, dataset, adaptive=adaptive)
    return float(store.find_profile(name)["flops"] or 0.0)


if __name__ == "__main__":
    try:
        main()
    except FrontierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
