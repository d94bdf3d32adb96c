"""Before against after: two profiles of the same dataset (the initial policy and a checkpoint, say), query
by query. Pure functions over profile frames, shared by `sgpo profile drift` and the dashboard's Audit page:

    both = pair(before.assign(bucket=buckets(before)), after.assign(bucket=buckets(after)))
    counts = transition_matrix(both)         # bucket before (rows) x bucket after (columns)
    drift(both, "task")                      # mean p_hat before, after and the change per task
    moved(both, 0.5, up=True)                # queries learned: p_hat up by at least 0.5, completions marked

A query's bucket (sgpo.vocab) is the plan's decision for it, with learnable queries split by the group size
the plan gives them: `trivial`, `G=2`, `G=4`, ... (harder further right), `unsolved` (p_hat 0, kept or
dropped alike: whether the planner keeps one is a sampling choice, not a difficulty). `before` and `after`
are profile frames with the plan's `decision` and `group_size` columns (sgpo.profiles.drift adds them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sgpo import units
from sgpo.vocab import BUCKET_TRIVIAL, BUCKET_UNSOLVED, bucket_order

__all__ = ["bucket_order", "buckets", "drift", "human", "mark_examples", "moved", "pair", "row_shares", "summary"]


def buckets(queries: pd.DataFrame) -> pd.Series:
    """Each query's bucket from the plan's `decision` and `group_size` columns.

    >>> buckets(pd.DataFrame({"decision": ["trivial", "learnable", "unsolved_kept"], "group_size": [0, 4, 8]})).tolist()
    ['trivial', 'G=4', 'unsolved']
    """
    g = queries["group_size"].fillna(0).astype(int).astype(str)
    bucket = np.where(
        queries["decision"] == "trivial",
        BUCKET_TRIVIAL,
        np.where(queries["decision"] == "learnable", "G=" + g, BUCKET_UNSOLVED),
    )
    return pd.Series(bucket, index=queries.index)


def mark_examples(examples) -> str:
    """Sample completions in one cell, each marked right (✓) or wrong (✗); shown as text, never as HTML.

    >>> mark_examples([{"text": "42", "reward": 1.0}, {"text": "41", "reward": 0.0}])
    "✓ '42'  ✗ '41'"
    """
    if not isinstance(examples, list):
        return ""
    return "  ".join(("✓ " if e.get("reward", 0) > 0 else "✗ ") + repr(str(e.get("text", ""))) for e in examples)


def pair(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The queries both profiles hold, matched by id, in the after profile's order: task, difficulty,
    p_hat and bucket before and after, the change in p_hat, and the examples (if the frames have them)."""
    sides = [c for c in ("p_hat", "bucket", "examples") if c in after and c in before]
    fields = [c for c in ("id", "task", "difficulty", "prompt", "answer") if c in after]
    a = after[fields + sides].rename(columns={c: f"{c}_after" for c in sides})
    b = before[["id", *sides]].rename(columns={c: f"{c}_before" for c in sides})
    out = a.merge(b, on="id", how="inner")
    return out.assign(change=out["p_hat_after"] - out["p_hat_before"])


def transition_matrix(both: pd.DataFrame) -> pd.DataFrame:
    """Queries per (bucket before, bucket after), every bucket in both directions, easiest first."""
    order = bucket_order(set(both["bucket_before"]) | set(both["bucket_after"]))
    counts = pd.crosstab(both["bucket_before"], both["bucket_after"])
    return counts.reindex(index=order, columns=order, fill_value=0).rename_axis(index="before", columns="after")


def row_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Each bucket-before row as shares of its queries (0 where a bucket held none)."""
    total = counts.sum(axis=1).replace(0, np.nan)
    return counts.div(total, axis=0).fillna(0.0)


def drift(both: pd.DataFrame, by) -> pd.DataFrame:
    """Per group (task, difficulty, or both): queries, mean p_hat before and after, the mean change, and
    how many rose or fell by at least half (p_hat is a rate, so half is a large move)."""
    grouped = both.groupby(by, sort=True)
    return pd.DataFrame(
        {
            "queries": grouped.size(),
            "p_hat_before": grouped["p_hat_before"].mean(),
            "p_hat_after": grouped["p_hat_after"].mean(),
            "change": grouped["change"].mean(),
            "learned": grouped["change"].apply(lambda c: int((c >= 0.5).sum())),
            "forgotten": grouped["change"].apply(lambda c: int((c <= -0.5).sum())),
        }
    )


def moved(both: pd.DataFrame, min_change: float, up: bool = True) -> pd.DataFrame:
    """Queries learned (p_hat rose by at least `min_change`) or forgotten (fell by at least that much),
    largest moves first, with each side's sample completions marked right or wrong."""
    hit = both[both["change"] >= min_change] if up else both[both["change"] <= -min_change]
    hit = hit.sort_values("change", ascending=not up, kind="stable")
    for side in ("before", "after"):
        if f"examples_{side}" in hit:
            hit = hit.assign(**{f"completions_{side}": hit[f"examples_{side}"].map(mark_examples)})
    return hit


def summary(both: pd.DataFrame, counts: pd.DataFrame) -> list[tuple[str, str, str, str | None]]:
    """(key, label, value, delta) in human units: queries in both, mean p_hat after, the share that changed
    bucket, and how many were learned and forgotten (the Audit page's st.metric row, `sgpo profile drift`)."""
    n = len(both)
    stayed = sum(counts.at[b, b] for b in counts.index) if n else 0
    before, after = (float(both["p_hat_before"].mean()), float(both["p_hat_after"].mean())) if n else (0.0, 0.0)
    return [
        ("audit_shared", "queries in both", units.count(n), None),
        (
            "audit_mean",
            "mean p_hat after",
            units.number(after, 3) if n else "n/a",
            None if not n else f"{after - before:+.3f} from {units.number(before, 3)}",
        ),
        ("audit_moved", "changed bucket", units.percent(1 - stayed / n) if n else "n/a", None),
        ("audit_n_learned", "p_hat up by 0.5 or more", units.count(int((both["change"] >= 0.5).sum())), None),
        ("audit_n_forgotten", "p_hat down by 0.5 or more", units.count(int((both["change"] <= -0.5).sum())), None),
    ]


def human(table: pd.DataFrame) -> pd.DataFrame:
    """A drift table as shown: counts with separators, p_hat at three decimals, the change signed."""
    return pd.DataFrame(
        {
            "queries": table["queries"].map(units.count),
            "p_hat before": table["p_hat_before"].map("{:.3f}".format),
            "p_hat after": table["p_hat_after"].map("{:.3f}".format),
            "change": table["change"].map("{:+.3f}".format),
            "learned": table["learned"].map(units.count),
            "forgotten": table["forgotten"].map(units.count),
        },
        index=table.index,
    )
