"""What the Rollouts page's tables and choices show: plain functions over sgpo.rollouts frames, tested
directly. Every cell stays text or a number: lists of rewards read "1 0 1 1", completions stay strings."""

from __future__ import annotations

import pandas as pd

from sgpo import units

GROUP_COLUMNS = [
    "step",
    "query_id",
    "task",
    "band",
    "p_hat",
    "group_size",
    "pass_rate",
    "outcome",
    "status",
    "rewards",
    "advantages",
    "tokens",
    "kept",
]


def numbers(values) -> str:
    """[1.0, 0.0, 0.5] -> '1 0 0.5' (four significant digits at most)."""
    return " ".join(f"{float(v):.4g}" for v in values or [])


def group_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per group, as the page lists them: rewards, advantages and completion lengths as text, and
    whether its completions were kept."""
    if frame.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    out = frame.assign(
        rewards=frame["rewards"].map(numbers),
        advantages=frame["advantages"].map(lambda a: " ".join(f"{x:+.2f}" for x in a or [])),
        tokens=frame["lengths"].map(numbers),
        kept=frame["completions"].notna() if "completions" in frame else False,
    )
    return out[GROUP_COLUMNS].reset_index(drop=True)


def group_label(row: dict) -> str:
    """How a group is offered for a closer look: 'step 40 · add-train-00001 · 3/8 right · texts kept'."""
    kept = " · texts kept" if row.get("completions") is not None else ""
    return f"step {row['step']} · {row['query_id']} · {row['successes']}/{row['group_size']} right{kept}"


def step_caption(frame: pd.DataFrame, steps: tuple[int, int]) -> str:
    """'step 40: 32 groups, 5 all-correct, 10 all-wrong, 17 mixed; texts kept for 2'."""
    where = f"step {steps[0]:,}" if steps[0] == steps[1] else f"steps {steps[0]:,}-{steps[1]:,}"
    if frame.empty:
        return f"{where}: no group matches"
    counts = frame["outcome"].value_counts()
    kept = int(frame["completions"].notna().sum()) if "completions" in frame else 0
    return (
        f"{where}: {units.count(len(frame))} groups, "
        + ", ".join(f"{units.count(int(counts.get(o, 0)))} {o}" for o in ("all-correct", "all-wrong", "mixed"))
        + f"; completions kept for {units.count(kept)}"
    )


def history_table(groups: pd.DataFrame) -> pd.DataFrame:
    """A query's groups: step, phase, G, successes, pass rate, status, rewards (text)."""
    cols = ["step", "phase", "group_size", "successes", "pass_rate", "status", "rewards"]
    if groups.empty:
        return pd.DataFrame(columns=cols)
    return groups.assign(rewards=groups["rewards"].map(numbers))[cols].reset_index(drop=True)
