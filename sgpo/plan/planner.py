"""The planner: a profile table and a PlanConfig in, a Plan out. Pure: no files, no database.

    plan = make_plan(store.profile_frame(profile_id), PlanConfig(trivial_threshold=0.6), n_params=1.5e9)
    plan.counts["learnable"], plan.phases[0].group_size, plan.forecast["ratio"]
    plan.too_few_learnable()    # None, or the one line `sgpo train` stops with unless --force

One profiling pass drives three decisions (docs/METHOD.md): which queries to keep (trivial / learnable /
unsolved), how many rollouts each gets (group_size), and in which order they are trained (phases).
Everything is vectorised so the dashboard can re-plan on every slider move: 1e6 queries plan in about
0.1 s (bench/plan_speed.py). Phase membership is kept as numpy position arrays, never lists of ids.

Choices the paper leaves open, made here:
- Kept unsolved queries are mixed into every phase at that phase's G (the paper's rule) under the
  phased curricula (sequential, steps, plateau); their row in `queries` shows the first phase (phase 0
  and its G). Under `sorted` and `none` there is no phase G, so they get g_max (fixed_group_size under
  the fixed rule): what the group rule gives as p -> 0.
- The knapsack rule allocates its budget over the learnable queries only; kept unsolved queries are
  not items (their profile saw no success, so their expected value is ~0) and follow the rule above.
- The forecast is one pass: every phase once, each member once, at its group size.

One choice departs from the paper: the default group rule is `informative`, not the paper's G ~ 1/p
(`pow2`). The paper's rule puts 0.5 <= p <= 0.75 into groups of two, which are informative at most half
the time, so on builtin:train it wastes 46% of its rollouts against 55% for fixed G = 8; the informative
rule wastes 38% with the same gain on the middle band (README, "Compute efficiency"). `--group-rule pow2`
gives the paper's method.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sgpo.errors import ConfigError, DataError
from sgpo.plan.basis import MIN_LEARNABLE_QUERIES
from sgpo.plan.config import PHASED, PlanConfig
from sgpo.plan.forecast import forecast
from sgpo.plan.groups import group_size_for
from sgpo.plan.knapsack import knapsack_group_sizes
from sgpo.plan.phases import Phase, build_phases, unsolved_group_size
from sgpo.vocab import DECISIONS

TRIVIAL, LEARNABLE, UNSOLVED_KEPT, UNSOLVED_DROPPED = range(4)  # codes: index into DECISIONS
COLUMNS = ("id", "task", "difficulty", "samples", "successes", "p_hat", "prompt_tokens", "completion_tokens_mean")


@dataclass
class Plan:
    queries: pd.DataFrame  # id, task, difficulty, p_hat, p_est, decision, group_size, phase; input index
    phases: list[Phase]
    counts: dict  # total, trivial, learnable, unsolved_kept, unsolved_dropped, by_group_size {G: learnable}
    forecast: dict  # plan / baseline sides, flops_profile, ratio, ratio_without_profile (JSON-ready)
    config: PlanConfig

    def to_json(self, *, ids: bool = True) -> dict:
        """Plain JSON values; phases list their query ids unless ids=False."""
        phases = [
            {
                "phase": ph.index,
                "group_size": ph.group_size,
                "count": ph.count,
                "rollouts": ph.rollouts,
                "pacing": ph.pacing,
                **({"queries": ph.ids.tolist()} if ids else {}),
            }
            for ph in self.phases
        ]
        counts = {**self.counts, "by_group_size": {str(g): n for g, n in self.counts["by_group_size"].items()}}
        return {"counts": counts, "phases": phases, "forecast": self.forecast, "config": self.config.to_dict()}

    def too_few_learnable(self) -> str | None:
        """None when the plan has enough learnable queries to forecast and train on; else why not, in one line
        (see too_few_learnable)."""
        return too_few_learnable(self.to_json(ids=False))

    def to_record(self) -> dict:
        """What a run stores and its trainer reads back: to_json's counts, forecast and config, with each
        phase as Phase.to_dict() (positions, group sizes, pacing), so the plan is never remade."""
        return {**self.to_json(ids=False), "phases": [ph.to_dict() for ph in self.phases]}


def make_plan(
    profile_frame: pd.DataFrame,
    config: PlanConfig | None = None,
    *,
    n_params: int | None = None,
    flops_profile: float = 0.0,
) -> Plan:
    """Decisions, group sizes, phases and the one-pass compute forecast for a profile table.

    profile_frame: one row per query with COLUMNS (extra columns are ignored). n_params: the policy's
    parameter count, for FLOPs (None: every FLOPs figure is None, the rest still works). flops_profile:
    the profiling pass's FLOPs, added to the plan's total."""
    config = (config or PlanConfig()).validate()
    missing = [c for c in COLUMNS if c not in profile_frame.columns]
    if missing:
        raise DataError(
            f"profile table lacks column(s) {', '.join(missing)}: profile the dataset with "
            f"`sgpo profile` (its table has {', '.join(COLUMNS)})"
        )
    n = len(profile_frame)
    if n == 0:
        raise ConfigError("the profile has no queries: profile a dataset first (sgpo profile DATASET)")
    p_hat = profile_frame["p_hat"].to_numpy(dtype=float, copy=True)  # copies: the plan never aliases the input
    bad = np.flatnonzero(~((p_hat >= 0) & (p_hat <= 1)))
    if bad.size:
        raise DataError(
            f"p_hat of query {profile_frame['id'].iloc[bad[0]]!r} is {p_hat[bad[0]]}: it must lie "
            f"in [0, 1] (re-run `sgpo profile`)"
        )
    p_est = success_estimate(profile_frame, config)
    rng = np.random.default_rng(config.seed)
    decision = _decide(p_hat, config, rng)
    tally = np.bincount(decision, minlength=4)
    if tally[LEARNABLE] + tally[UNSOLVED_KEPT] == 0:
        raise ConfigError(_nothing_kept(tally, config))

    learn = np.flatnonzero(decision == LEARNABLE)
    unsolved = np.flatnonzero(decision == UNSOLVED_KEPT)
    group_size = np.zeros(n, dtype=np.int64)
    group_size[learn] = learnable_group_sizes(p_est[learn], config)
    ids = profile_frame["id"].array.copy()  # not to_numpy(): that turns arrow strings into 1e6 objects
    phases = build_phases(learn, unsolved, group_size, p_hat, config, rng)
    for ph in phases:
        ph.all_ids = ids

    phase = np.full(n, -1, dtype=np.int64)
    if config.curriculum in PHASED:
        for ph in phases:
            phase[ph.positions] = ph.index
        phase[unsolved] = 0  # also in every later phase
    else:
        phase[phases[0].positions] = 0
    group_size[unsolved] = phases[0].group_size or unsolved_group_size(config)

    by_g = np.bincount(group_size[learn], minlength=1)
    counts = {
        "total": n,
        **{d: int(tally[i]) for i, d in enumerate(DECISIONS)},
        "by_group_size": {int(g): int(by_g[g]) for g in np.flatnonzero(by_g)},
    }
    tokens = profile_frame["prompt_tokens"].to_numpy(dtype=float) + profile_frame["completion_tokens_mean"].to_numpy(
        dtype=float
    )
    queries = pd.DataFrame(
        {
            "id": ids,
            "task": profile_frame["task"].array.copy(),
            "difficulty": profile_frame["difficulty"].to_numpy(copy=True),
            "p_hat": p_hat,
            "p_est": p_est,
            "decision": pd.Categorical.from_codes(decision, DECISIONS),
            "group_size": group_size,
            "phase": phase,
        },
        index=profile_frame.index,
        copy=False,
    )
    observed = (profile_frame["successes"].to_numpy(dtype=float), profile_frame["samples"].to_numpy(dtype=float))
    return Plan(
        queries,
        phases,
        counts,
        forecast(phases, p_est, tokens, config, n_params, flops_profile, counts=observed),
        config,
    )


def too_few_learnable(record: dict) -> str | None:
    """The one-line reason a plan is not worth training on, or None. `record` is a plan as JSON: to_json(),
    to_record() (what a run stores), or a saved plan (Store.find_plan): its counts, config and forecast.

    A plan with fewer than MIN_LEARNABLE_QUERIES learnable queries has no forecast (sgpo/plan/basis.py) and
    little to learn from: nearly every rollout would be wasted. `sgpo train` stops on it unless --force."""
    counts, config = record["counts"], record.get("config") or {}
    basis = (record.get("forecast") or {}).get("basis") or {"learnable_queries": counts["learnable"], "samples": None}
    n = basis["learnable_queries"]
    if n >= MIN_LEARNABLE_QUERIES:
        return None
    threshold = config.get("trivial_threshold", PlanConfig().trivial_threshold)
    seen = (
        ""
        if basis.get("samples") is None
        else f", {basis['successes']:,.0f} successes in {basis['samples']:,.0f} samples"
    )
    return (
        f"{'nothing learnable' if n == 0 else 'too few learnable queries'}: {n} of {counts['total']:,} queries "
        f"{'has' if n == 1 else 'have'} 0 < p_hat <= --trivial-threshold={threshold:g}{seen} (a run needs "
        f"{MIN_LEARNABLE_QUERIES}), so nearly every rollout would be wasted: profile data nearer the model's level "
        f"or a stronger model, or pass --force to train anyway"
    )


def success_estimate(profile_frame: pd.DataFrame, config: PlanConfig) -> np.ndarray:
    """p used for group sizes and the forecast: raw p_hat, or the Beta(a, b) posterior mean."""
    if config.success_estimate == "raw":
        return profile_frame["p_hat"].to_numpy(dtype=float, copy=True)
    s = profile_frame["successes"].to_numpy(dtype=float)
    n = profile_frame["samples"].to_numpy(dtype=float)
    return (s + config.prior_a) / (n + config.prior_a + config.prior_b)


def _decide(p_hat: np.ndarray, config: PlanConfig, rng: np.random.Generator) -> np.ndarray:
    """int8 decision codes (index into DECISIONS); exactly round(alpha * n_unsolved) unsolved are kept."""
    decision = np.full(p_hat.size, LEARNABLE, dtype=np.int8)
    decision[p_hat > config.trivial_threshold] = TRIVIAL
    unsolved = np.flatnonzero(p_hat == 0)
    decision[unsolved] = UNSOLVED_DROPPED
    keep = round(config.unsolved_keep * unsolved.size)  # Python's round: halves go to even
    decision[unsolved[rng.choice(unsolved.size, size=keep, replace=False)]] = UNSOLVED_KEPT
    return decision


def _nothing_kept(tally: np.ndarray, config: PlanConfig) -> str:
    n_trivial, n_unsolved = int(tally[TRIVIAL]), int(tally[UNSOLVED_DROPPED])
    if n_unsolved == 0:
        return (
            f"all {n_trivial} queries are trivial (p_hat > --trivial-threshold={config.trivial_threshold}): "
            f"raise --trivial-threshold (at most 1.0) or profile a harder dataset"
        )
    if n_trivial == 0:
        return (
            f"all {n_unsolved} queries are unsolved and --unsolved-keep={config.unsolved_keep} keeps none: "
            f"raise --unsolved-keep, or profile an easier dataset or a stronger model"
        )
    return (
        f"no query is kept: {n_trivial} are trivial (p_hat > --trivial-threshold={config.trivial_threshold}; "
        f"raise --trivial-threshold) and {n_unsolved} unsolved are dropped (--unsolved-keep="
        f"{config.unsolved_keep}; raise --unsolved-keep)"
    )


def learnable_group_sizes(p: np.ndarray, config: PlanConfig) -> np.ndarray:
    if config.group_rule != "knapsack":
        return group_size_for(p, config)
    budget = config.rollout_budget or int(group_size_for(p, dataclasses.replace(config, group_rule="pow2")).sum())
    if budget < p.size * config.g_min:
        raise ConfigError(
            f"--rollout-budget={budget} cannot give {p.size} learnable queries --g-min={config.g_min} "
            f"rollouts each: raise --rollout-budget to at least {p.size * config.g_min} or lower --g-min"
        )
    return knapsack_group_sizes(p, budget, config.g_min, config.g_max)
