"""Which queries each step trains, with which G: the strategy's choice, for each engine.

    sampler = make_sampler(prep)        # our engine: GRPO, DAPO, GRESO or the plan (sgpo/train/batches.py)
    phases = trl_phases(prep)           # TRL's engine: the plan's phases as datasets, one G each

An sgpo run with --refresh re-plans from its own rollouts: `replanner` remakes the plan with the
planner's own function and the run's stored plan knobs, from the profile's counts plus every group seen.
An sgpo run with --plan-from-first-epoch trains GRPO over its first epoch and then the plan made from its
groups (sgpo/train/first_epoch.py).
"""

from __future__ import annotations

import numpy as np

from sgpo.errors import ConfigError
from sgpo.plan import Phase, PlanConfig, make_plan
from sgpo.train import batches, first_epoch
from sgpo.train.batches import Replanner
from sgpo.train.setup import Prepared, run_plan_config
from sgpo.train.trl_config import full_prompts, prompts_per_step


def make_sampler(prep: Prepared):
    """The strategy's sampler over the run's dataset (sgpo: over the plan's phases, or the first epoch then the plan
    made from it)."""
    cfg, n = prep.config, len(prep.dataset)
    if cfg.strategy == "grpo":
        return batches.GRPOSampler(n, cfg.group_size, cfg.batch_rollouts, cfg.seed)
    if cfg.strategy == "dapo":
        return batches.DAPOSampler(n, cfg.group_size, cfg.batch_rollouts, cfg.seed, cfg.dapo_max_rounds)
    if cfg.strategy == "greso":
        return batches.GRESOSampler(
            n, cfg.group_size, cfg.batch_rollouts, cfg.seed, explore=cfg.greso_explore, target=cfg.greso_target
        )
    pf, rows = prep.profile_frame, prep.rows
    assert pf is not None and rows is not None  # an sgpo run has its profile attached (setup.load)
    if cfg.plan_from_first_epoch:  # GRPO over the first epoch, then the plan made from its groups
        config, n_params = run_plan_config(cfg), prep.model.n_params
        plan = first_epoch.planner(prep, lambda frame: replanner_over(frame, config, n_params, 0.0))
        return batches.FirstEpochSampler(n, cfg.group_size, cfg.batch_rollouts, cfg.seed, plan)
    return batches.SGPOSampler(
        prep.phases,
        rows,
        cfg.batch_rollouts,
        cfg.seed,
        successes=pf["successes"].to_numpy(),
        samples=pf["samples"].to_numpy(),
        replan=replanner(prep) if cfg.refresh else None,
        refresh_every=cfg.refresh_every,
        refresh_decay=cfg.refresh_decay,
        batch_informative=cfg.batch_informative,
    )


def replanner(prep: Prepared) -> Replanner:
    """(successes, samples) -> the plan's phases remade from those counts, or None when it keeps nothing
    (the sampler then goes on with the plan it has)."""
    profile_frame, plan_config = prep.profile_frame, prep.plan_config
    assert profile_frame is not None and plan_config is not None  # an sgpo run's profile and stored plan
    return replanner_over(profile_frame, plan_config, prep.model.n_params, prep.flops_profile)


def replanner_over(profile_frame, plan_config: PlanConfig, n_params: int | None, flops_profile: float) -> Replanner:
    """replanner over a given profile table and plan knobs."""

    def replan(successes: np.ndarray, samples: np.ndarray) -> list[Phase] | None:
        frame = profile_frame.copy()
        frame["successes"], frame["samples"] = successes, samples
        frame["p_hat"] = np.clip(successes / np.maximum(samples, 1e-9), 0.0, 1.0)
        try:
            plan = make_plan(frame, plan_config, n_params=n_params, flops_profile=flops_profile)
        except ConfigError:
            return None
        return plan.phases

    return replan


def trl_phases(prep: Prepared, world: int = 1) -> list[dict]:
    """[{"group_size", "rows" (dataset rows, plan order), "prompts" (a step's), "shuffle", "advance", ...pacing}]:
    grpo is one phase over the whole dataset, shuffled; sgpo the plan's phases, a small one training all
    its queries a step (sgpo.train.trl_config.prompts_per_step)."""
    cfg = prep.config
    if cfg.strategy == "grpo":
        return [
            {
                "group_size": cfg.group_size,
                "rows": np.arange(len(prep.dataset)),
                "prompts": full_prompts(cfg.batch_rollouts, cfg.group_size),
                "shuffle": True,
                "advance": "pass",
            }
        ]
    rows = prep.rows
    assert rows is not None  # an sgpo run has its profile attached (setup.load)
    out = []
    for ph in prep.phases:  # one G each: sgpo.train.trl_config.check_phases refused any other plan
        out.append(
            {
                "group_size": ph.group_size,
                "rows": rows[ph.positions],
                "prompts": prompts_per_step(cfg.batch_rollouts, ph.group_size, ph.count, world),
                "shuffle": not ph.ordered,
                **ph.pacing,
            }
        )
    return out
