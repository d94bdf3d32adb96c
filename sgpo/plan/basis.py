"""What a forecast rests on: how many learnable queries, and how many samples and successes among them.

    b = basis(phases, successes, samples)     # {"learnable_queries": 1, "samples": 8, "successes": 1, ...}
    b["too_few"], b["reason"]                 # True, "too few learnable queries to forecast: ..."

A learnable query is a planned one whose profile saw a success (kept unsolved ones never did). Below
MIN_LEARNABLE_QUERIES of them the forecast is refused rather than given: no reduction factor, break-even
step or "pays" comes out of it (sgpo/plan/forecast.py), and `sgpo train` stops on such a plan unless told
--force (sgpo.plan.too_few_learnable).

Why 20. The forecast's saving is the informative fraction it expects, a mean over the learnable queries of
numbers in [0, 1]; its standard error can reach 0.5 / sqrt(n): 0.11 at n = 20, 0.16 at 10, 0.5 at one
query, so below 20 two standard errors pass 0.2 and the verdict is mostly noise. And fewer than 20
learnable queries do not fill one step of the default 256 rollouts even at G = 8 (32 groups): a run would
re-sample the same few prompts step after step. The all-unsolved starter-on-GSM8K profile (0) and the one
where a lenient grader found one lucky query (1) are far below it.
"""

from __future__ import annotations

import numpy as np

MIN_LEARNABLE_QUERIES = 20


def basis(phases, successes: np.ndarray, samples: np.ndarray | None) -> dict:
    """The learnable queries among the phases' members (successes > 0; without profile counts, `successes`
    is the plan's p estimate and samples are unknown), with their samples and successes in all."""
    members = np.unique(np.concatenate([ph.positions for ph in phases])) if phases else np.zeros(0, np.int64)
    successes = np.asarray(successes, dtype=float)
    learnable = members[successes[members] > 0]
    n = int(learnable.size)
    out: dict = {
        "learnable_queries": n,
        "samples": None if samples is None else float(np.asarray(samples, dtype=float)[learnable].sum()),
        "successes": None if samples is None else float(successes[learnable].sum()),
        "min_learnable_queries": MIN_LEARNABLE_QUERIES,
        "too_few": n < MIN_LEARNABLE_QUERIES,
    }
    out["reason"] = reason(out) if out["too_few"] else None
    return out


def reason(b: dict) -> str:
    """Why there is no forecast, in one sentence."""
    if b["learnable_queries"] == 0:
        return "nothing learnable: no planned query was ever solved in its profile"
    queries = "query" if b["learnable_queries"] == 1 else "queries"
    seen = "" if b["samples"] is None else f" ({b['successes']:,.0f} successes in {b['samples']:,.0f} samples)"
    return (
        f"too few learnable queries to forecast: the plan rests on {b['learnable_queries']} learnable {queries}"
        f"{seen}, under the {b['min_learnable_queries']} a forecast needs"
    )
