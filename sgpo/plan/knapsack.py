"""Knapsack group sizes: spend a fixed rollout budget where it buys the most informative groups.

Query q with success probability p_q gets an integer group size G_q in [g_min, g_max]. The value of a
choice is the expected number of informative groups, P_inf(p, G) = 1 - p^G - (1 - p)^G; its cost is G
rollouts. We maximise sum_q P_inf(p_q, G_q) subject to sum_q G_q <= budget.

Why taking the largest marginal gains is exact. Growing a group by one rollout gains

    d(p, G) = P_inf(p, G + 1) - P_inf(p, G) = p^G (1 - p) + (1 - p)^G p,

and both terms shrink as G grows, so d is non-increasing in G: P_inf is concave in integer G. Every
allocation is g_min per query plus, for each query, a *prefix* of its increments d(p, g_min),
d(p, g_min + 1), ...; each increment costs exactly one rollout. The R = budget - n * g_min largest
positive increments therefore bound the value of any allocation from above, and they are attainable:
a query's earlier increments are at least as large as its later ones, so whenever a later one is among
the R largest the earlier ones are too (ties are broken smaller G first, then in query order).
Hence the allocation "take every increment above a threshold" is optimal, not just a heuristic
(tests/test_plan.py checks it against brute force). Written here rather than taken from a solver
library because the closed form is a dozen vectorised lines and a solver would be far slower on 1e6
queries.
"""

from __future__ import annotations

import numpy as np

from sgpo.plan.groups import int_power


def marginal_gains(p, g_min: int, g_max: int) -> np.ndarray:
    """(g_max - g_min, n) array: row k is P_inf(p, g_min + k + 1) - P_inf(p, g_min + k).

    One row per step keeps every write contiguous; repeated multiplication is cheaper than pow on 1e6
    values. Rows are forced non-increasing so float rounding can never break the prefix property."""
    p = np.asarray(p, dtype=float)
    q = 1.0 - p
    gains = np.empty((g_max - g_min, p.size))
    pk, qk = int_power(p, g_min), int_power(q, g_min)
    for k in range(g_max - g_min):
        np.add(pk * q, qk * p, out=gains[k])
        if k:
            np.minimum(gains[k], gains[k - 1], out=gains[k])
        pk *= p
        qk *= q
    return gains


def knapsack_group_sizes(p, budget: int, g_min: int, g_max: int) -> np.ndarray:
    """Integer group sizes in [g_min, g_max] maximising sum P_inf(p, G) with sum G <= budget (exact).

    Rollouts are spent only where they gain something: a query with p in {0, 1} stays at g_min, and the
    budget may be left partly unused when every positive gain is already taken.
    Raises ValueError when budget < len(p) * g_min (the caller names the knob to move)."""
    p = np.asarray(p, dtype=float)
    n = p.size
    spare = int(budget) - n * g_min
    if spare < 0:
        raise ValueError(f"budget {budget} is below g_min x queries = {n * g_min}")
    sizes = np.full(n, g_min, dtype=np.int64)
    if n == 0 or spare == 0 or g_max == g_min:
        return sizes
    gains = marginal_gains(p, g_min, g_max)
    flat = gains.ravel()
    positive = int(np.count_nonzero(flat > 0))
    if spare >= positive:
        take = gains > 0
    else:
        # The spare-th largest gain is the threshold lambda: take all gains above it, then ties in order.
        threshold = np.partition(flat, flat.size - spare)[flat.size - spare]
        take = gains > threshold
        missing = spare - int(np.count_nonzero(take))
        if missing > 0:
            take.ravel()[np.flatnonzero(flat == threshold)[:missing]] = True
    return sizes + take.sum(axis=0)
