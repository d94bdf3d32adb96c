"""Group sizes: how likely a group of G rollouts is to teach something, and the per-query rules.

    p_informative(0.5, 2)      # 0.5: a group of two at p = 0.5 is mixed half the time
    group_size_for(p, PlanConfig(group_rule="pow2"))

P_inf(p, G) = 1 - p^G - (1 - p)^G is the chance that a group holds a success and a failure, so that its
advantages are not all zero. Every rule, the knapsack and the forecast are built on it.
"""

from __future__ import annotations

import numpy as np

from sgpo.errors import ConfigError
from sgpo.plan.config import PlanConfig

_TOL = 1e-9  # 1/p this close (relative) to an integer or power of two counts as it: p = 1/49 gives 49


def p_informative(p, g):
    """P_inf(p, G) = 1 - p^G - (1 - p)^G: the chance that a group of G rollouts holds a success and a failure."""
    p = np.asarray(p, dtype=float)
    return 1.0 - int_power(p, g) - int_power(1.0 - p, g)


def int_power(x: np.ndarray, g) -> np.ndarray:
    """x ** g; for an integer scalar g by repeated squaring, some 20x faster than np.power on 1e6 values."""
    if np.ndim(g) or int(g) != g or g < 0:
        return np.power(x, g)
    g, out, base = int(g), None, x
    while g:
        if g & 1:
            out = base if out is None else out * base
        g >>= 1
        if g:
            base = base * base
    return np.ones_like(x) if out is None else out


def group_size_for(p, config: PlanConfig) -> np.ndarray:
    """G per query under the pow2, inverse or fixed rule (knapsack needs the whole set: see make_plan).

    pow2: smallest power of two >= 1/p; inverse: ceil(1/p); both clipped to [g_min, g_max]; p = 0
    gives g_max (the limit as p -> 0). informative: the smallest of g_min, the powers of two between,
    and g_max whose P_inf(p, G) = 1 - p^G - (1-p)^G reaches informative_target, else g_max."""
    p = np.asarray(p, dtype=float)
    if config.group_rule == "fixed":
        return np.full(p.shape, config.fixed_group_size, dtype=np.int64)
    if config.group_rule == "informative":
        return informative_group_sizes(p, config)
    with np.errstate(divide="ignore"):
        need = np.minimum(1.0 / p, 2.0 * config.g_max) * (1 - _TOL)  # capped: p = 0 gives g_max
    if config.group_rule == "pow2":
        _, exponent = np.frexp(need)  # need = m * 2^e with 0.5 <= m < 1, so 2^e is the next power
        raw = np.ldexp(1.0, exponent)
    elif config.group_rule == "inverse":
        raw = np.ceil(need)
    else:
        raise ConfigError(f"group_rule={config.group_rule!r} has no per-query formula: use make_plan")
    return np.clip(raw, config.g_min, config.g_max).astype(np.int64)


def informative_group_sizes(p: np.ndarray, config: PlanConfig) -> np.ndarray:
    powers = [2**k for k in range(1, 8) if config.g_min < 2**k < config.g_max]
    out = np.full(p.shape, config.g_max, dtype=np.int64)
    undecided = np.ones(p.shape, dtype=bool)
    for g in [config.g_min, *powers]:  # ascending; P_inf grows with G, so the first that reaches wins
        hit = undecided & (p_informative(p, g) >= config.informative_target - _TOL)
        out[hit] = g
        undecided &= ~hit
    return out
