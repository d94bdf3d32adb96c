"""Plain functions over the store's frames that the pages show: no Streamlit, no I/O, tested directly."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from sgpo import units
from sgpo.vocab import DECISIONS


# audit -------------------------------------------------------------------------------------------
def with_decisions(profile: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    """The profile table with the plan's per-query decision, group size and phase (plan.queries keeps
    the profile frame's index, so this is a column copy, not a join on ids)."""
    return profile.assign(**{c: queries[c].to_numpy() for c in ("decision", "group_size", "phase")})


def mark_examples(examples) -> str:
    """Sample completions in one cell, each marked right (✓) or wrong (✗)."""
    if not isinstance(examples, list):
        return ""
    return "  ".join(("✓ " if e.get("reward", 0) > 0 else "✗ ") + repr(str(e.get("text", ""))) for e in examples)


def filter_queries(frame: pd.DataFrame, *, search: str = "", tasks=None, decisions=None,
                   p_range: tuple[float, float] = (0.0, 1.0), difficulties=None) -> pd.DataFrame:
    """Rows matching every filter; `search` is a case-insensitive substring of id, prompt or answer."""
    keep = frame["p_hat"].between(p_range[0], p_range[1])
    if tasks:
        keep &= frame["task"].isin(tasks)
    if decisions and "decision" in frame:
        keep &= frame["decision"].isin(decisions)
    if difficulties:
        keep &= frame["difficulty"].isin(difficulties)
    if search:
        hit = pd.Series(False, index=frame.index)
        for col in ("id", "prompt", "answer"):
            if col in frame:
                hit |= frame[col].astype(str).str.contains(search, case=False, regex=False)
        keep &= hit
    return frame[keep]


def export_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """What a filtered dataset is exported as: the dataset's fields plus what profiling learned."""
    cols = [c for c in ("id", "prompt", "answer", "task", "difficulty", "p_hat", "samples", "successes",
                        "decision", "group_size", "phase") if c in frame.columns]
    return frame[cols].reset_index(drop=True)


def to_jsonl(frame: pd.DataFrame) -> bytes:
    return frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")


def to_parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


# plan ----------------------------------------------------------------------------------------------
def decision_counts(queries: pd.DataFrame) -> pd.DataFrame:
    """Queries per decision (rows) and group-size bucket (columns), with totals; dropped rows have G 0."""
    g = queries["group_size"].fillna(0).astype(int)
    table = pd.crosstab(queries["decision"], g.rename("G"), margins=True, margins_name="total")
    order = [d for d in DECISIONS if d in table.index] + ["total"]
    table = table.reindex(order)
    table.columns = [c if c == "total" else f"G={c}" if c else "not trained" for c in table.columns]
    return table


def forecast_metrics(forecast: dict) -> list[tuple[str, str, str, str | None]]:
    """(key, label, value, delta against fixed-G GRPO) for the Plan page's st.metric row. None -> n/a."""
    plan, base, ratio = forecast["plan"], forecast["baseline"], forecast.get("ratio")
    wasted, wasted_base = plan.get("forecast_wasted_fraction"), base.get("forecast_wasted_fraction")
    return [
        ("forecast_rollouts", "rollouts", units.count(plan["rollouts"]),
         f"{plan['rollouts'] - base['rollouts']:+,.0f} vs GRPO"),
        ("forecast_flops", "FLOPs (profiling included)", units.flops(plan.get("flops")),
         f"GRPO {units.flops(base.get('flops'))}"),
        ("forecast_wasted", "expected wasted fraction", units.percent(wasted),
         None if wasted is None or wasted_base is None else f"{(wasted - wasted_base) * 100:+.1f} pts vs GRPO"),
        ("forecast_ratio", "compute ratio GRPO / plan", units.factor(ratio), None),
    ]


FORECAST_ROWS = [("rollouts", units.count), ("flops", units.flops), ("flops_rollout", units.flops),
                 ("flops_train", units.flops), ("forecast_informative_fraction", units.percent),
                 ("expected_wasted_rollouts", units.count), ("forecast_wasted_fraction", units.percent)]


def forecast_rows(forecast: dict) -> pd.DataFrame:
    """forecast.plan and forecast.baseline side by side (one row per quantity), in human units."""
    return pd.DataFrame({side: [fmt(forecast.get(side, {}).get(k)) for k, fmt in FORECAST_ROWS]
                         for side in ("plan", "baseline")}, index=[k for k, _ in FORECAST_ROWS])


# train -------------------------------------------------------------------------------------------
def phase_changes(metrics: pd.DataFrame) -> list[tuple[int, int]]:
    """(step, new phase) wherever the phase differs from the step before (the first phase excluded)."""
    if metrics.empty or "phase" not in metrics:
        return []
    phase = metrics["phase"].fillna(-1).astype(int).to_numpy()
    steps = metrics["step"].to_numpy()
    idx = np.flatnonzero(phase[1:] != phase[:-1]) + 1
    return [(int(steps[i]), int(phase[i])) for i in idx]


def accuracy_by_difficulty(evals: pd.DataFrame) -> pd.DataFrame:
    """Long table step, flops_total, difficulty, accuracy from the evals' expanded `by_difficulty.*` columns.

    Accepts `by_difficulty.3` or `difficulty.3` (a number, or a dict with an `accuracy` field)."""
    rows = []
    for col in evals.columns:
        parts = col.split(".")
        if parts[0] not in ("by_difficulty", "difficulty") or len(parts) < 2:
            continue
        if len(parts) == 3 and parts[2] != "accuracy":
            continue
        level = parts[1]
        part = evals[["step", "flops_total"]].assign(difficulty=level, accuracy=evals[col])
        rows.append(part)
    if not rows:
        return pd.DataFrame(columns=["step", "flops_total", "difficulty", "accuracy"])
    out = pd.concat(rows, ignore_index=True).dropna(subset=["accuracy"])
    key = pd.to_numeric(out["difficulty"], errors="coerce")
    return out.assign(_k=key).sort_values(["_k", "difficulty", "step"]).drop(columns="_k")


# compare -------------------------------------------------------------------------------------------
def first_reach(evals: pd.DataFrame, target: float, tol: float = 1e-9) -> float | None:
    """FLOPs (total, profiling included) at the first eval whose accuracy reaches `target`; None if never."""
    if evals.empty or target is None or (isinstance(target, float) and math.isnan(target)):
        return None
    ordered = evals.sort_values("flops_total")
    hit = ordered[ordered["accuracy"] >= target - tol]
    return float(hit["flops_total"].iloc[0]) if len(hit) else None


def compute_reduction(baseline: pd.DataFrame, other: pd.DataFrame) -> float | None:
    """Compute-reduction factor at matched accuracy.

    FLOPs the baseline needs to first reach its final accuracy, divided by the FLOPs the other run needs to
    first reach that same accuracy. Above 1: the other run is cheaper. None if the other never gets there
    (or either run has no evals)."""
    if baseline.empty or other.empty:
        return None
    target = float(baseline.sort_values("step")["accuracy"].iloc[-1])
    base, mine = first_reach(baseline, target), first_reach(other, target)
    if base is None or mine is None or mine <= 0:
        return None
    return base / mine


def default_comparison(runs: list[dict], k: int = 4) -> list[str]:
    """The runs Compare opens on: the newest k, with the newest fixed-G GRPO run put first when none of
    them is one, so the compute-reduction factor has its natural baseline."""
    names = [r["name"] for r in runs][-k:]
    grpo = [r["name"] for r in runs if r["strategy"] == "grpo"]
    if grpo and grpo[-1] not in names:
        names = [grpo[-1]] + names[1:]
    return names


def compare_table(runs: list[dict], evals: dict[str, pd.DataFrame], metrics: dict[str, pd.DataFrame],
                  baseline: str | None) -> pd.DataFrame:
    """One row per run: strategy, status, steps, final accuracy, total FLOPs, wasted fraction, and the
    compute-reduction factor against `baseline` (None where it cannot be matched)."""
    rows = []
    base = evals.get(baseline, pd.DataFrame()) if baseline else pd.DataFrame()
    for run in runs:
        name = run["name"]
        ev = evals.get(name, pd.DataFrame())
        m = metrics.get(name, pd.DataFrame())
        rows.append({
            "run": name, "strategy": run.get("strategy"), "status": run.get("status"), "step": run.get("step"),
            "final_accuracy": float(ev.sort_values("step")["accuracy"].iloc[-1]) if len(ev) else None,
            "flops_total": float(ev["flops_total"].max()) if len(ev) else None,
            "run_wasted_fraction": float(m["wasted_rollouts"].sum() / m["rollouts"].sum())
            if {"wasted_rollouts", "rollouts"} <= set(m) and m["rollouts"].sum() > 0 else None,
            "compute_reduction": compute_reduction(base, ev) if baseline else None,
        })
    return pd.DataFrame(rows)


def format_factor(factor) -> str:
    """'2.53x', or 'never matched' where the factor is None / NaN."""
    return "never matched" if factor is None or pd.isna(factor) else units.factor(factor)


def long_evals(evals: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All runs' evals in one table with a `run` column: what the CSV download holds."""
    parts = [e.assign(run=name) for name, e in evals.items() if len(e)]
    if not parts:
        return pd.DataFrame(columns=["run", "step", "flops_total", "accuracy"])
    out = pd.concat(parts, ignore_index=True)
    return out[["run"] + [c for c in out.columns if c != "run"]]


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")

