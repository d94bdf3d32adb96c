"""The compute forecast: one pass over the plan against fixed-G GRPO on the whole dataset.

    forecast(plan.phases, p_est, tokens, config, n_params, flops_profile)["ratio"]

Each side reports groups, rollouts, rollout tokens, FLOPs by bucket, and what P_inf expects:
`expected_informative_groups`, `expected_wasted_rollouts`, and the fractions
`forecast_informative_fraction` / `forecast_wasted_fraction` (names: sgpo/vocab.py).
"""

from __future__ import annotations

import numpy as np

from sgpo.plan.config import PlanConfig
from sgpo.plan.groups import p_informative
from sgpo.plan.phases import Phase
from sgpo.vocab import fraction


def forecast(phases: list[Phase], p_est: np.ndarray, tokens: np.ndarray, config: PlanConfig,
             n_params: int | None, flops_profile: float = 0.0) -> dict:
    """One pass of the plan against fixed-G GRPO on the whole dataset, as JSON-ready numbers.

    tokens: prompt + mean completion tokens per query. A rollout costs a forward over its tokens
    (2 * n_params * tokens) and trains with forward + backward (6 * n_params * tokens); beta = 0, so
    there is no reference-model forward. The plan's `flops` includes flops_profile; `ratio` is baseline
    FLOPs / (plan + profiling), `ratio_without_profile` leaves profiling out. n_params cancels in the
    latter, so it is given even when n_params is None (and `ratio` too when flops_profile is 0)."""
    chunks = []  # (p, tokens, G) with one G per chunk, so powers are a few multiplications
    for ph in phases:
        for g in ([ph.group_size] if ph.group_size else np.flatnonzero(np.bincount(ph.group_sizes))):
            pos = ph.positions if ph.group_size else ph.positions[ph.group_sizes == g]
            chunks.append((p_est[pos], tokens[pos], int(g)))
    plan = _side(chunks, n_params)
    base = _side([(p_est, tokens, config.fixed_group_size)], n_params)
    plan["flops_profile"] = float(flops_profile)
    if plan["flops"] is not None:
        plan["flops"] += float(flops_profile)
    ratio_bare = base["tokens"] / plan["tokens"] if plan["tokens"] > 0 else None
    if n_params is not None:
        ratio = base["flops"] / plan["flops"] if plan["flops"] > 0 else None
    else:
        ratio = ratio_bare if flops_profile == 0 else None
    return {"plan": plan, "baseline": base, "flops_profile": float(flops_profile), "ratio": ratio,
            "ratio_without_profile": ratio_bare}


def _side(chunks, n_params) -> dict:
    """Totals over (p, tokens, G) chunks: groups, rollouts, rollout tokens, informative and wasted."""
    groups = rollouts = 0
    rollout_tokens = informative = wasted = 0.0
    for p, tokens, g in chunks:
        p_inf = float(p_informative(p, g).sum())
        groups, rollouts = groups + p.size, rollouts + g * p.size
        rollout_tokens += g * float(tokens.sum())
        informative += p_inf
        wasted += g * (p.size - p_inf)
    flops_rollout = None if n_params is None else 2.0 * n_params * rollout_tokens
    flops_train = None if n_params is None else 6.0 * n_params * rollout_tokens
    return {"groups": groups, "rollouts": rollouts, "tokens": rollout_tokens,
            "flops": None if n_params is None else flops_rollout + flops_train,
            "flops_rollout": flops_rollout, "flops_train": flops_train,
            "expected_informative_groups": informative, "expected_wasted_rollouts": wasted,
            "forecast_informative_fraction": fraction(informative, groups),
            "forecast_wasted_fraction": fraction(wasted, rollouts)}
