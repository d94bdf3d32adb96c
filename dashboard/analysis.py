"""Plain functions over the store's frames that the pages show: no Streamlit, no I/O, tested directly."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from sgpo import compare, units
from sgpo.vocab import DECISIONS, FINISHED


# audit -------------------------------------------------------------------------------------------
def with_decisions(profile: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    """The profile table with the plan's per-query decision, group size and phase (plan.queries keeps
    the profile frame's index, so this is a column copy, not a join on ids)."""
    return profile.assign(**{c: queries[c].to_numpy() for c in ("decision", "group_size", "phase")})


def filter_queries(
    frame: pd.DataFrame,
    *,
    search: str = "",
    tasks=None,
    decisions=None,
    p_range: tuple[float, float] = (0.0, 1.0),
    difficulties=None,
) -> pd.DataFrame:
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
    """What a filtered dataset is exported as: the dataset's fields plus what profiling learned (and, when
    compared with an earlier profile, both p_hats and both buckets, sgpo.drift)."""
    cols = [
        c
        for c in (
            "id",
            "prompt",
            "answer",
            "task",
            "difficulty",
            "p_hat",
            "samples",
            "successes",
            "decision",
            "group_size",
            "phase",
            "p_hat_before",
            "p_hat_after",
            "bucket_before",
            "bucket_after",
        )
        if c in frame.columns
    ]
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
    too_few = (forecast.get("basis") or {}).get("too_few")
    wasted, wasted_base = plan.get("forecast_wasted_fraction"), base.get("forecast_wasted_fraction")
    return [
        (
            "forecast_rollouts",
            "rollouts",
            units.count(plan["rollouts"]),
            f"{signed_count(plan['rollouts'] - base['rollouts'])} vs GRPO",
        ),
        (
            "forecast_flops",
            "FLOPs (profiling included)",
            units.flops(plan.get("flops")),
            f"GRPO {units.flops(base.get('flops'))}",
        ),
        (
            "forecast_wasted",
            "expected wasted fraction",
            units.percent(wasted),
            None if wasted is None or wasted_base is None else f"{(wasted - wasted_base) * 100:+.1f} pts vs GRPO",
        ),
        (
            "forecast_ratio",
            "compute ratio GRPO / plan",
            "too few learnable" if too_few else units.factor(ratio),  # a ratio resting on a handful of queries
            None,
        ),
    ]


FORECAST_ROWS = [
    ("rollouts", "rollouts", units.count),
    ("flops", "total compute (profiling included)", units.flops),
    ("flops_rollout", "rollout generation", units.flops),
    ("flops_train", "training updates", units.flops),
    ("forecast_informative_fraction", "informative groups", units.percent),
    ("expected_wasted_rollouts", "expected wasted rollouts", units.count),
    ("forecast_wasted_fraction", "expected wasted fraction", units.percent),
]


def forecast_rows(forecast: dict) -> pd.DataFrame:
    """forecast.plan and forecast.baseline side by side (one row per quantity), in human units."""
    return pd.DataFrame(
        {side: [fmt(forecast.get(side, {}).get(k)) for k, _, fmt in FORECAST_ROWS] for side in ("plan", "baseline")},
        index=[label for _, label, _ in FORECAST_ROWS],
    )


def signed_count(x) -> str:
    """'+1,234' / '-56' / '+3.42 M'."""
    return ("-" if x < 0 else "+") + units.count(abs(x))


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
        part = evals[[c for c in ("step", "flops_total") if c in evals]].assign(difficulty=level, accuracy=evals[col])
        rows.append(part)
    if not rows:
        return pd.DataFrame(columns=["step", "flops_total", "difficulty", "accuracy"])
    out = pd.concat(rows, ignore_index=True).dropna(subset=["accuracy"])
    key = pd.to_numeric(out["difficulty"], errors="coerce")
    return out.assign(_k=key).sort_values(["_k", "difficulty", "step"]).drop(columns="_k")


def runs_table(rows: list[dict]) -> pd.DataFrame:
    """The Train page's list of every run: id, name, strategy, status, step, profile, pid, last update."""
    cols = ["id", "name", "strategy", "status", "step", "profile_id", "pid"]
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in cols if c in frame]]
    if "pid" in frame:  # a process id is a label, not a quantity
        frame["pid"] = frame["pid"].map(lambda p: "" if pd.isna(p) else str(int(p)))
    return frame.assign(
        updated=pd.to_datetime(pd.Series([r.get("updated") for r in rows]), unit="s").dt.strftime("%H:%M:%S").to_numpy()
    )


def watch_signature(rows: list[dict], shown: list[str]) -> tuple:
    """What the Train page's controls depend on: the runs there are and the status of those shown. The
    live view reruns the whole page when it changes (a new run to list, Stop or Resume to enable)."""
    return tuple(r["name"] for r in rows), tuple(sorted((r["name"], r["status"]) for r in rows if r["name"] in shown))


# compare (the table and its factors: sgpo.compare) ---------------------------------------------------
def default_comparison(runs: list[dict], k: int = 4) -> list[str]:
    """The runs Compare opens on: the newest k, with the default baseline (default_baseline) put first when
    none of them is a GRPO run, so the compute-reduction factor has its natural baseline."""
    names = [r["name"] for r in runs][-k:]
    base = default_baseline(runs)
    if base is not None and not any(r["strategy"] == "grpo" for r in runs if r["name"] in names):
        names = [base] + names[1:]
    return names


def default_baseline(runs: list[dict]) -> str | None:
    """The baseline a comparison starts from: the newest finished fixed-G GRPO run (its final accuracy is
    the target: a running one's still moves), else the newest GRPO run, else None."""
    grpo = [r for r in runs if r.get("strategy") == "grpo"]
    finished = [r for r in grpo if r.get("status") == FINISHED]
    return (finished or grpo)[-1]["name"] if grpo else None


COMPARE_COLUMNS = {
    "run": str,
    "strategy": str,
    "status": str,
    "step": units.count,
    "final_accuracy": units.percent,
    "flops_total": units.flops,
    "run_wasted_fraction": units.percent,
    "forecast_wasted_fraction": units.percent,
    "reduction": str,
    "forecast_reduction": units.factor,
}
COMPARE_LABELS = {
    "step": "at step",
    "final_accuracy": "final accuracy",
    "flops_total": "total compute",
    "run_wasted_fraction": "wasted rollouts",
    "forecast_wasted_fraction": "wasted (forecast)",
    "reduction": "compute reduction",
    "forecast_reduction": "reduction vs GRPO (forecast)",
}


def human_table(table: pd.DataFrame, knobs: pd.DataFrame | None = None) -> pd.DataFrame:
    """sgpo.compare's table as shown: every number in its unit, then the knobs that differ between the runs."""
    out = pd.DataFrame(
        {COMPARE_LABELS.get(c, c): table[c].map(fmt) for c, fmt in COMPARE_COLUMNS.items() if c in table}
    )
    if knobs is not None and len(knobs.columns):
        out = out.join(knobs.reindex(table["run"]).map(knob_text).reset_index(drop=True), suffixes=("", " (knob)"))
    return out


# knobs: what differs between runs ---------------------------------------------------------------------
def flatten(config: dict, prefix: str = "") -> dict:
    """{"plan": {"trivial_threshold": 0.6}} -> {"plan.trivial_threshold": 0.6}; lists become text."""
    out = {}
    for k, v in (config or {}).items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = str(v) if isinstance(v, (list, tuple)) else v
    return out


def run_knobs(configs: dict[str, dict], plan_defaults: dict | None = None) -> pd.DataFrame:
    """One row per run (by name), one column per config knob, flattened. A run that trains a plan and
    left a plan knob at its default gets the default (its config keeps only what differs); other runs
    have no value for it. Runs from elsewhere may have any keys, or none."""
    rows = {}
    for name, cfg in configs.items():
        cfg = dict(cfg or {})
        if plan_defaults and cfg.get("strategy") == "sgpo":
            cfg["plan"] = {**plan_defaults, **(cfg.get("plan") or {})}
        rows[name] = flatten(cfg)
    return pd.DataFrame.from_dict(rows, orient="index") if rows else pd.DataFrame()


def knob_text(value) -> str:
    """A knob value as shown and filtered on: '—' when absent, numbers at four significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer() and abs(value) < 1e6
    ):
        return units.count(value)
    if isinstance(value, (float, np.floating)):
        return units.number(value)
    return str(value)


def differing_knobs(knobs: pd.DataFrame, skip=("strategy",)) -> list[str]:
    """The knobs set to more than one value among the runs that set them (a plan knob does not differ
    because a GRPO run has none; strategy has its own filter)."""
    if knobs.empty:
        return []
    text = knobs.map(knob_text)
    return [c for c in knobs.columns if c not in skip and text[c][text[c] != "—"].nunique() > 1]


def filter_runs(runs: list[dict], knobs: pd.DataFrame, strategies=None, wanted: dict | None = None) -> list[dict]:
    """The runs whose strategy is among `strategies` and whose knob values (as knob_text shows them) are
    among `wanted[knob]`, for every knob given (an empty choice filters nothing)."""
    text = knobs.map(knob_text) if not knobs.empty else knobs
    out = []
    for r in runs:
        if strategies and r.get("strategy") not in strategies:
            continue
        if any(
            values and (r["name"] not in text.index or text.at[r["name"], k] not in values)
            for k, values in (wanted or {}).items()
            if k in text
        ):
            continue
        out.append(r)
    return out


def group_table(table: pd.DataFrame, knobs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Runs grouped by strategy or a knob: how many, final accuracy mean ± std, mean wasted fraction, mean
    total compute and the best compute reduction, in human units."""
    key = (
        table["strategy"]
        if by == "strategy"
        else table["run"].map(knobs[by].map(knob_text))
        if by in knobs
        else table["run"]
    )
    rows = []
    for value, part in table.groupby(key.fillna("—").to_numpy(), sort=True):
        acc = part["final_accuracy"].dropna()
        best = part["compute_reduction"].dropna()
        rows.append(
            {
                by: value,
                "runs": units.count(len(part)),
                "final accuracy": "n/a"
                if acc.empty
                else units.percent(acc.mean()) + (f" ± {acc.std() * 100:.1f} pts" if len(acc) > 1 else ""),
                "wasted rollouts": units.percent(part["run_wasted_fraction"].dropna().mean()),
                "total compute": units.flops(part["flops_total"].dropna().mean()),
                "best reduction": units.factor(best.max()) if len(best) else "n/a",
            }
        )
    return pd.DataFrame(rows)


def long_evals(evals: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All runs' evals in one table with a `run` column: what the CSV download holds."""
    parts = [e.assign(run=name) for name, e in evals.items() if len(e)]
    if not parts:
        return pd.DataFrame(columns=["run", "step", "flops_total", "accuracy"])
    out = pd.concat(parts, ignore_index=True)
    return out[["run"] + [c for c in out.columns if c != "run"]]


def to_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


# the run forecast (sgpo.plan.forecast: forecast["run"]) --------------------------------------------------
BEHAVIOURS = {
    "skip": "our engine (zero-advantage groups skip the backward pass)",
    "train_all": "TRL / verl (every rollout trained)",
}


def run_forecast_metrics(run: dict) -> list[tuple[str, str, str, str]]:
    """(key, label, value, help) of the Plan page's headline: what the planned run delivers, the reduction
    factor under both engine behaviours and the step at which profiling has paid for itself (None when the
    forecast rests on too few learnable queries: the page says its reason instead)."""
    if (run.get("basis") or {}).get("too_few"):
        return []
    skip, train_all = run.get("skip") or {}, run.get("train_all") or {}
    step = skip.get("break_even_step")
    return [
        (
            "run_reduction_skip",
            "reduction, our engine",
            units.factor(skip.get("reduction_factor")),
            "FLOPs per informative rollout of fixed-G GRPO over the plan's, over the planned run, profiling "
            "included, zero-advantage groups skipping the backward pass (sgpo.plan.forecast)",
        ),
        (
            "run_reduction_train_all",
            "reduction, TRL / verl",
            units.factor(train_all.get("reduction_factor")),
            "the same with every rollout trained, as TRL's GRPOTrainer and verl do",
        ),
        (
            "run_break_even",
            "profiling paid back at step",
            "never" if step is None else units.count(step),
            "the first step at which the plan has spent no more FLOPs per informative rollout than fixed-G "
            "GRPO, profiling included (our engine)",
        ),
    ]


PLAN_KNOB_GROUPS = {  # the Plan page's knobs, in groups; the rest of each group folds under "advanced"
    "selection": (("trivial_threshold", "unsolved_keep"), ("seed",)),
    "group sizes": (
        ("group_rule", "informative_target", "g_min", "g_max"),
        ("fixed_group_size", "success_estimate", "prior_a", "prior_b", "rollout_budget"),
    ),
    "curriculum": (("curriculum", "steps_per_phase"), ("plateau_patience", "plateau_min_delta")),
    "forecast": (("run_steps", "run_batch_rollouts"), ("run_flops", "drift", "forecast_prior")),
}


def plan_knob_groups(names: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """{group: (shown knobs, advanced knobs)} for the knobs `names` (PlanConfig's); a knob no group names
    (a new one) is shown among the advanced ones of the last group, so every knob has a widget."""
    out = {
        g: ([n for n in shown if n in names], [n for n in advanced if n in names])
        for g, (shown, advanced) in PLAN_KNOB_GROUPS.items()
    }
    placed = {n for shown, advanced in out.values() for n in shown + advanced}
    last = list(out)[-1]
    out[last][1].extend(n for n in names if n not in placed)
    return out


def train_values(knobs: dict) -> dict:
    """The Train page's knobs that a plan sets: the planned run's steps, rollouts a step and seed."""
    return {
        "steps": knobs.get("run_steps"),
        "batch_rollouts": knobs.get("run_batch_rollouts"),
        "seed": knobs.get("seed"),
    }


def run_forecast_rows(run: dict) -> pd.DataFrame:
    """Both engine behaviours over the planned run, in human units: FLOPs per informative rollout for the
    plan and for fixed-G GRPO, the profile's share, the break-even step and the reduction factor. A forecast
    resting on too few learnable queries (its `basis`) gives one row, the reason, and no numbers."""
    basis = run.get("basis") or {}
    if basis.get("too_few"):
        return pd.DataFrame({label: {"forecast": basis["reason"]} for label in BEHAVIOURS.values()})
    rows = {}
    for key, label in BEHAVIOURS.items():
        side = run.get(key) or {}
        plan, base = side.get("plan", {}), side.get("baseline", {})
        step = side.get("break_even_step")
        rows[label] = {
            "FLOPs per informative rollout (plan)": units.flops(plan.get("flops_per_informative_rollout")),
            "FLOPs per informative rollout (GRPO)": units.flops(base.get("flops_per_informative_rollout")),
            "profiling's share": units.percent(side.get("flops_profile_share")),
            "profiling paid back at step": "never" if step is None else units.count(step),
            "reduction factor": units.factor(side.get("reduction_factor")),
            "forecast wasted (plan / GRPO)": f"{units.percent(plan.get('forecast_wasted_fraction'))} / "
            f"{units.percent(base.get('forecast_wasted_fraction'))}",
        }
    return pd.DataFrame(rows)


def forecast_beside_measured(planned: dict | None, metrics: pd.DataFrame) -> pd.DataFrame:
    """The run forecast made before training (sgpo.compare.planned) beside what the run has measured so far,
    in human units: one row per quantity. Empty without a forecast."""
    if not planned:
        return pd.DataFrame(columns=["quantity", "forecast", "measured"])
    m = metrics[metrics["step"] > 0] if "step" in metrics else metrics.iloc[0:0]
    rollouts = float(m["rollouts"].sum()) if "rollouts" in m else 0.0
    wasted = float(m["wasted_rollouts"].sum()) if "wasted_rollouts" in m else 0.0
    last = m.iloc[-1] if len(m) else {}
    first = m[m["phase"] == m["phase"].iloc[0]] if len(m) and "phase" in m else m
    groups = float(first["groups"].sum()) if "groups" in first else 0.0
    flops = _number(last.get("flops_total")) if len(m) else None
    profile = _number(last.get("flops_profile")) if len(m) else None
    rows = [
        ("wasted rollouts", units.percent(planned.get("wasted")), units.percent(compare.wasted_fraction(m))),
        (
            "informative groups, first phase",
            units.percent(planned.get("first_phase_informative")),
            units.percent(float(first["informative_groups"].sum()) / groups if groups else None),
        ),
        (
            "FLOPs per informative rollout",
            units.flops(planned.get("flops_per_informative_rollout")),
            units.flops(flops / (rollouts - wasted) if flops and rollouts > wasted else None),
        ),
        ("steps", units.count(planned.get("steps")), units.count(int(last["step"]) if len(m) else None)),
    ]
    if planned.get("profile_share") is not None:
        rows.append(
            (
                "profiling's share of the FLOPs",
                units.percent(planned["profile_share"]),
                units.percent(profile / flops if flops and profile is not None else None),
            )
        )
    return pd.DataFrame(rows, columns=["quantity", "forecast", "measured"])


def _number(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)
