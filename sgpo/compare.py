"""Comparing runs: the compute-reduction factor at matched accuracy, per run and per setting over seeds.
`sgpo compare`, the dashboard's Compare page and the benchmarks (bench/regimes.py, bench/compute_efficiency.py)
all call these, so the README's factors and the page's are the same number for the same runs.

    from sgpo import compare
    ev = compare.evals(["grpo-s0", "sgpo-s0"], store)    # {name: evals, FLOPs under both engine behaviours}
    compare.reduction("grpo-s0", "sgpo-s0", store).factor                 # one run against one run
    compare.reduction(["grpo-s0", "grpo-s1"], ["sgpo-s0", "sgpo-s1"], store, behaviour="train_all")  # seeds
    compare.table(store, ["grpo-s0", "sgpo-s0"], "grpo-s0")          # per run, what the Compare page shows
    compare.by_setting(store, ["grpo-s0", "grpo-s1", "sgpo-s0", "sgpo-s1"], "grpo-s0")   # seeds grouped

The definition is sgpo.accounting.reduction_factor, and only there: each side's accuracy-vs-FLOPs curve
(seeds averaged on a common FLOPs grid), target = the baseline mean curve's final accuracy, each side's
FLOPs = where its mean curve first reaches the target (linear between evaluations); factor = baseline FLOPs /
candidate FLOPs, above 1 when the candidate is cheaper. `behaviour` prices every run as if it had trained
that way (`skip`: zero-advantage groups left out of the backward pass; `train_all`: every rollout trained;
None: as each run trained). Runs trained since evaluations carried both prices have them in their eval
rows; for older runs `priced` derives them from the metrics, here and nowhere else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sgpo import runs as lifecycle
from sgpo import units
from sgpo.accounting import ENGINE_BEHAVIOURS, Reduction, flops_column, reduction_factor
from sgpo.store import Store

SEED_KEYS = ("seed", "plan.seed")  # config keys in which seeds of one setting differ
READINGS = {"not reached": "not yet reached"}  # how a factor's reason reads where it is shown


# the runs' evaluations, priced under both engine behaviours ----------------------------------------------
def behaviour_of(run: dict) -> str:
    """The engine behaviour a run trained under: `skip` (ours, zero-advantage groups left out of the backward
    pass) or `train_all` (the TRL engine, --no-skip-zero-advantage, or a run streamed by the TRL callback,
    which stores no engine config).

    >>> compare.behaviour_of(store.find_run("grpo-s0"))     # 'skip'
    """
    config = run.get("config") or {}
    if config.get("engine", "native") != "native" or config.get("skip_zero_advantage") is False:
        return "train_all"
    return "skip" if config else "train_all"


def priced(evals: pd.DataFrame, metrics: pd.DataFrame, trained: str) -> pd.DataFrame:
    """`evals` with `flops_total_skip` and `flops_total_train_all` filled where the eval rows lack them: the
    behaviour the run `trained` under costs its flops_total; the other is derived from the metrics. A run that
    skipped zero-advantage groups logged `tokens_update` (what training every rollout would have trained), so
    its train_all total is flops_total - flops_train + (its FLOPs per trained token) x those tokens so far
    (the per-token price read off the run itself: 6 x params, 8 x with a reference model). A run that trained
    every rollout did not log its informative tokens: its skip total stays unknown (NaN) after step 0.

    >>> compare.priced(store.evals_frame(1), store.metrics_frame(1), "skip")["flops_total_train_all"]
    """
    ev = evals.copy()
    columns = [flops_column(b) for b in ENGINE_BEHAVIOURS]
    for column in columns:
        if column not in ev:
            ev[column] = np.nan
    if ev.empty:
        return ev
    own, other = flops_column(trained), flops_column(next(b for b in ENGINE_BEHAVIOURS if b != trained))
    ev[own] = ev[own].fillna(ev["flops_total"])
    start = ev["step"] == 0 if "step" in ev else pd.Series(False, index=ev.index)
    ev.loc[start, other] = ev.loc[start, other].fillna(ev.loc[start, "flops_total"])  # profiling only: the same
    m = metrics[metrics["step"] > 0].sort_values("step") if "step" in metrics else metrics.iloc[0:0]
    if trained != "skip" or not ev[other].isna().any() or not {"tokens_trained", "flops_train"} <= set(m) or m.empty:
        return ev
    trained_tokens = m["tokens_trained"].fillna(0).cumsum()
    update = m["tokens_update"] if "tokens_update" in m else m["tokens_trained"]
    update_tokens = update.fillna(m["tokens_trained"]).fillna(0).cumsum()
    if not trained_tokens.iloc[-1] > 0:
        return ev
    per_token = float(m["flops_train"].iloc[-1]) / float(trained_tokens.iloc[-1])
    extra = pd.DataFrame(
        {"step": m["step"].to_numpy(), "_extra": (per_token * update_tokens - m["flops_train"]).to_numpy()}
    )
    ev = ev.merge(extra, on="step", how="left")
    ev[other] = ev[other].fillna(ev["flops_total"] + ev["_extra"])
    return ev.drop(columns="_extra")


def run_evals(run: dict, store: Store, metrics: pd.DataFrame | None = None) -> pd.DataFrame:
    """One run's evaluations (step, flops_total, accuracy, ...) priced under both behaviours (`priced`).
    `metrics`: the run's metrics when the caller holds them already; read only when needed otherwise.

    >>> compare.run_evals(store.find_run("sgpo-s0"), store)[["step", "accuracy", "flops_total_train_all"]]
    """
    ev = store.evals_frame(run["id"])
    columns = [flops_column(b) for b in ENGINE_BEHAVIOURS]
    if ev.empty or (set(columns) <= set(ev) and not ev[columns].isna().any().any()):
        return priced(ev, pd.DataFrame(), behaviour_of(run))
    return priced(ev, store.metrics_frame(run["id"]) if metrics is None else metrics, behaviour_of(run))


def evals(refs, store: Store) -> dict[str, pd.DataFrame]:
    """{run name: run_evals} for runs given by id or name, in their order.

    >>> compare.evals(["grpo-s0", "sgpo-s0"], store)["sgpo-s0"]
    """
    runs = [store.find_run(r) for r in _listed(refs)]
    return {run["name"]: run_evals(run, store) for run in runs}


# the factor ------------------------------------------------------------------------------------------------
def reduction(baseline, candidate, store: Store, *, behaviour: str | None = None) -> Reduction:
    """The compute-reduction factor of `candidate` against `baseline` (sgpo.accounting.reduction_factor):
    each a run (id or name) or a list of runs, the seeds of one setting.

    >>> r = compare.reduction("grpo-s0", "sgpo-s0", store)
    >>> r.factor, r.reason, r.target, r.spread
    """
    base, mine = evals(baseline, store), evals(candidate, store)
    return reduction_factor(list(base.values()), list(mine.values()), behaviour=behaviour)


def reading(r: Reduction | None) -> str:
    """How a factor reads: '1.42x', 'not yet reached', 'n/a: baseline has not improved', ...

    >>> compare.reading(compare.reduction("grpo-s0", "sgpo-s0", store))
    """
    if r is None:
        return "n/a"
    return units.factor(r.factor) if r.factor is not None else READINGS.get(r.reason, r.reason)


# what a run measured and what its plan forecast ---------------------------------------------------------------
def wasted_fraction(metrics: pd.DataFrame) -> float | None:
    """Rollouts in zero-advantage groups over all rollouts, over the run so far (None before any).

    >>> compare.wasted_fraction(store.metrics_frame(1))
    """
    if not {"wasted_rollouts", "rollouts"} <= set(metrics) or metrics["rollouts"].sum() <= 0:
        return None
    return float(metrics["wasted_rollouts"].sum() / metrics["rollouts"].sum())


def planned(run: dict) -> dict | None:
    """What the run's plan forecast for the run itself (sgpo.plan.forecast: forecast["run"], under the
    behaviour it trained with): wasted and first-phase informative fractions, FLOPs per informative rollout,
    steps, profiling's share, reduction factor and verdict. The fixed-G side for a GRPO run; None without a
    plan, for DAPO and GRESO (whose sampling the forecast does not model), and for plans made before the run
    forecast existed.

    >>> compare.planned(store.find_run("sgpo-s0"))["reduction_factor"]
    """
    if run.get("strategy") not in ("sgpo", "grpo"):
        return None
    run_fc = ((run.get("plan") or {}).get("forecast") or {}).get("run") or {}
    behaviour = behaviour_of(run)
    side_of = run_fc.get(behaviour) or {}
    side = side_of.get("baseline" if run.get("strategy") == "grpo" else "plan") or {}
    if not side:
        return None
    phases = run_fc.get("phases") or []
    sgpo = run.get("strategy") == "sgpo"
    return {
        "behaviour": behaviour,
        "wasted": side.get("forecast_wasted_fraction"),
        "first_phase_informative": (
            phases[0].get("forecast_informative_fraction")
            if sgpo and phases
            else side.get("forecast_informative_fraction")
        ),
        "flops_per_informative_rollout": side.get("flops_per_informative_rollout"),
        "steps": side.get("steps"),
        "profile_share": side_of.get("flops_profile_share") if sgpo else None,
        "reduction_factor": side_of.get("reduction_factor") if sgpo else None,
        "verdict": side_of.get("verdict") if sgpo else None,
    }


def final_accuracy(ev: pd.DataFrame) -> float | None:
    """The accuracy of the run's latest evaluation (None before any).

    >>> compare.final_accuracy(compare.evals("sgpo-s0", store)["sgpo-s0"])
    """
    return float(ev.sort_values("step")["accuracy"].iloc[-1]) if len(ev) else None


def total_flops(ev: pd.DataFrame, metrics: pd.DataFrame) -> float | None:
    """The run's total FLOPs so far (profiling included): its latest metrics row, else its latest evaluation.

    >>> compare.total_flops(store.evals_frame(1), store.metrics_frame(1))
    """
    if "flops_total" in metrics and metrics["flops_total"].notna().any():
        return float(metrics["flops_total"].max())
    if len(ev) and "flops_total" in ev:
        return float(ev["flops_total"].max())
    return None


# tables -----------------------------------------------------------------------------------------------------
def table_of(
    runs: list[dict],
    evals: dict[str, pd.DataFrame],
    metrics: dict[str, pd.DataFrame],
    baseline: str | None,
    *,
    behaviour: str | None = None,
    planned: dict[str, dict | None] | None = None,
) -> pd.DataFrame:
    """`table` from frames the caller already holds (the dashboard caches them): `runs` are run rows, `evals`
    and `metrics` by run name (evals priced under both behaviours when `behaviour` is given, see run_evals),
    `planned` the runs' forecasts by name (default: none).

    >>> run = store.find_run("grpo-s0")
    >>> compare.table_of([run], {"grpo-s0": compare.run_evals(run, store)}, {"grpo-s0": store.metrics_frame(run["id"])}, "grpo-s0")
    """
    rows, planned = [], planned or {}
    base = evals.get(baseline, pd.DataFrame()) if baseline else pd.DataFrame()
    for run in runs:
        name = run["name"]
        ev, m = evals.get(name, pd.DataFrame()), metrics.get(name, pd.DataFrame())
        if name == baseline:
            r, text = None, "baseline"
        elif baseline:
            r = reduction_factor([base], [ev], behaviour=behaviour)
            text = reading(r)
        else:
            r, text = None, "n/a"
        rows.append(
            {
                "run": name,
                "strategy": run.get("strategy"),
                "status": run.get("status"),
                "step": run.get("step"),
                "final_accuracy": final_accuracy(ev),
                "flops_total": total_flops(ev, m),
                "run_wasted_fraction": wasted_fraction(m),
                "forecast_wasted_fraction": (planned.get(name) or {}).get("wasted"),
                "compute_reduction": None if r is None else r.factor,
                "reduction": text,
                "forecast_reduction": (planned.get(name) or {}).get("reduction_factor"),
                "target_accuracy": None if r is None else r.target,
            }
        )
    return pd.DataFrame(rows)


def table(store: Store, refs, baseline: str | int | None, *, behaviour: str | None = None) -> pd.DataFrame:
    """One row per run, raw numbers: strategy, status, step, final accuracy, total FLOPs, wasted fraction,
    the compute-reduction factor against `baseline` with its reading ("1.42x", "baseline", "not yet
    reached", ...) and the target accuracy, and beside them the run's own forecast (wasted fraction,
    reduction factor) where its plan made one. What the Compare page shows and `sgpo compare` prints.

    >>> compare.table(store, ["grpo-s0", "sgpo-s0"], "grpo-s0")[["run", "reduction"]]
    """
    runs = [lifecycle.status(r, store) for r in _listed(refs)]  # shown status: interrupted when its process is gone
    base_name = store.find_run(baseline)["name"] if baseline is not None else None
    metrics = {r["name"]: store.metrics_frame(r["id"]) for r in runs}
    ev = {r["name"]: run_evals(r, store, metrics[r["name"]]) for r in runs}
    if base_name is not None and base_name not in ev:
        base_run = store.find_run(base_name)
        ev[base_name] = run_evals(base_run, store)
    return table_of(runs, ev, metrics, base_name, behaviour=behaviour, planned={r["name"]: planned(r) for r in runs})


def setting_key(run: dict) -> str:
    """What decides a run apart from its seed: its strategy and its config without the seed keys.

    >>> compare.setting_key(store.find_run("sgpo-s0")) == compare.setting_key(store.find_run("sgpo-s1"))
    """
    flat = _flatten(run.get("config") or {})
    kept = {k: v for k, v in flat.items() if k not in SEED_KEYS}
    return repr((run.get("strategy"), sorted((k, repr(v)) for k, v in kept.items())))


def settings(runs: list[dict]) -> list[list[dict]]:
    """Runs grouped by setting (setting_key), groups in the order of their first run, runs in theirs.

    >>> [[r["name"] for r in g] for g in compare.settings([store.find_run(n) for n in ("grpo-s0", "sgpo-s0", "grpo-s1")])]
    """
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(setting_key(run), []).append(run)
    return list(groups.values())


def by_setting(store: Store, refs, baseline: str | int, *, behaviour: str | None = None) -> pd.DataFrame:
    """One row per setting (runs whose configs differ only in seed), the factor of its seeds against the
    seeds of `baseline`'s setting among `refs` (sgpo.accounting.reduction_factor over seeds): runs, seeds,
    final accuracy mean and std, mean total FLOPs, mean wasted fraction, the factor with its reading, the
    per-seed spread, how many seeds reach the target, and the target.

    >>> compare.by_setting(store, ["grpo-s0", "grpo-s1", "sgpo-s0", "sgpo-s1"], "grpo-s0")
    """
    runs = [store.find_run(r) for r in _listed(refs)]
    base_run = store.find_run(baseline)
    if base_run["name"] not in {r["name"] for r in runs}:
        runs = [base_run, *runs]
    metrics = {r["name"]: store.metrics_frame(r["id"]) for r in runs}
    ev = {r["name"]: run_evals(r, store, metrics[r["name"]]) for r in runs}
    groups = settings(runs)
    base_group = next(g for g in groups if base_run["name"] in {r["name"] for r in g})
    base_evals = [ev[r["name"]] for r in base_group]
    rows = []
    for group in groups:
        names = [r["name"] for r in group]
        finals = [a for a in (final_accuracy(ev[n]) for n in names) if a is not None]
        flops = [f for f in (total_flops(ev[n], metrics[n]) for n in names) if f is not None]
        wasted = [w for w in (wasted_fraction(metrics[n]) for n in names) if w is not None]
        r = reduction_factor(base_evals, [ev[n] for n in names], behaviour=behaviour)
        spread = r.spread
        rows.append(
            {
                "setting": names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} seeds)",
                "strategy": group[0].get("strategy"),
                "runs": names,
                "seeds": len(names),
                "final_accuracy_mean": float(np.mean(finals)) if finals else None,
                "final_accuracy_std": float(np.std(finals)) if finals else None,
                "flops_total_mean": float(np.mean(flops)) if flops else None,
                "run_wasted_fraction": float(np.mean(wasted)) if wasted else None,
                "compute_reduction": r.factor,
                "reduction": "baseline" if group is base_group else reading(r),
                "reduction_min": spread[0] if spread else None,
                "reduction_max": spread[1] if spread else None,
                "reached": r.reached,
                "target_accuracy": r.target,
            }
        )
    return pd.DataFrame(rows)


def _listed(refs) -> list:
    return list(refs) if isinstance(refs, (list, tuple)) else [refs]


def _flatten(config: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out
