"""Every planner knob with its default, range and help: the CLI options and the Plan page's sliders."""

from __future__ import annotations

from dataclasses import dataclass

from sgpo.errors import ConfigError
from sgpo.knobs import Knobs, knob

GROUP_RULES = ("pow2", "inverse", "informative", "fixed", "knapsack")
ESTIMATES = ("raw", "posterior")
FORECAST_PRIORS = ("fitted", "plan")
CURRICULA = ("sequential", "steps", "plateau", "sorted", "none")
PHASED = ("sequential", "steps", "plateau")  # one phase per G bucket, small G first


@dataclass
class PlanConfig(Knobs):
    trivial_threshold: float = knob(
        0.75,
        "t in (0, 1]: queries with p_hat > t are trivial and removed (paper: 0.75)",
        min=0.0,
        max=1.0,
        open_min=True,
    )
    unsolved_keep: float = knob(
        0.10,
        "alpha in [0, 1]: fraction of unsolved queries (p_hat = 0) kept, exactly round(alpha * n) "
        "chosen with the seed (paper: 0.10)",
        min=0.0,
        max=1.0,
    )
    group_rule: str = knob(
        "informative",
        "group size per query: informative (default) = smallest power-of-two G whose group "
        "holds a success and a failure with chance >= informative_target; pow2 = smallest power of two "
        ">= 1/p clipped to [g_min, g_max] (the paper's rule); inverse = ceil(1/p) clipped; fixed = "
        "fixed_group_size; knapsack = integer G in [g_min, g_max] maximising expected informative groups "
        "under rollout_budget",
        choices=GROUP_RULES,
    )
    informative_target: float = knob(
        0.75,
        "group_rule=informative: the chance 1 - p^G - (1-p)^G that a group is informative (has a "
        "non-zero advantage) that G must reach; queries that reach it at no G <= g_max get g_max",
        min=0.0,
        max=1.0,
        open_min=True,
    )
    g_min: int = knob(2, "smallest group size (>= 2: a group of one has no advantage)", min=2, max=64)
    g_max: int = knob(8, "largest group size (paper: 8)", min=2, max=64)
    fixed_group_size: int = knob(
        8,
        "G of the fixed-G GRPO baseline in the forecast, and of every query under group_rule=fixed (TRL default: 8)",
        min=2,
        max=64,
    )
    success_estimate: str = knob(
        "raw",
        "p used for group sizes: raw = p_hat; posterior = Beta(prior_a, prior_b) posterior mean "
        "(successes + a) / (samples + a + b), default Beta(1, 1). Keep/drop decisions always use raw p_hat; "
        "the forecast uses it only under forecast_prior=plan",
        choices=ESTIMATES,
    )
    prior_a: float = knob(
        1.0, "Beta prior pseudo-successes a (success_estimate=posterior)", min=0.0, max=20.0, open_min=True
    )
    prior_b: float = knob(
        1.0, "Beta prior pseudo-failures b (success_estimate=posterior)", min=0.0, max=20.0, open_min=True
    )
    curriculum: str = knob(
        "sequential",
        "training order: sequential = one phase per G bucket, smallest G first, one pass each "
        "(paper; under pow2 that is easy -> hard, under informative the G=4 middle comes before G=8); "
        "steps = same phases, steps_per_phase steps each; plateau = same phases, advance when the phase's "
        "reward stops rising; sorted = one pass ordered by p_hat, easy first; none = one shuffled phase, "
        "mixed G",
        choices=CURRICULA,
    )
    steps_per_phase: int = knob(50, "optimizer steps per phase (curriculum=steps)", min=1)
    plateau_patience: int = knob(10, "steps without a reward gain before the next phase (curriculum=plateau)", min=1)
    plateau_min_delta: float = knob(
        0.01, "smallest mean-reward rise that counts as a gain (curriculum=plateau)", min=0.0, max=1.0
    )
    rollout_budget: int = knob(
        0,
        "rollouts per pass that the knapsack rule shares among the learnable queries (kept unsolved "
        "ride on top at their phase's G); 0 = what pow2 would give the same queries",
        min=0,
    )
    run_steps: int = knob(
        100,
        "planned run length in optimizer steps, for the forecast (sgpo train's default); run_flops replaces it",
        min=1,
    )
    run_flops: float | None = knob(
        None,
        "planned run length in total FLOPs, profiling included for the plan (as sgpo train "
        "--flops-budget counts it); replaces run_steps",
        min=0.0,
        open_min=True,
    )
    run_batch_rollouts: int = knob(
        256, "rollouts per optimizer step in the forecast (sgpo train --batch-rollouts)", min=1
    )
    drift: float = knob(
        1.0,
        "how fast training moves the policy, for the forecast: 1 = as measured on the starter policy at "
        "lr 5e-5 (success logits shift up by 0.65 ln(1 + t/10) and spread apart by 0.83 ln(1 + t/10) after t "
        "steps; sgpo/plan/beliefs.py), 0 = the policy stands still, 2 = twice as fast",
        min=0.0,
        max=10.0,
    )
    forecast_prior: str = knob(
        "fitted",
        "success rates the forecast assumes: fitted = each query's posterior under a prior fitted "
        "to the whole profile (empirical Bayes: undoes the regression to the mean of selecting on a noisy "
        "p_hat); plan = the plan's p estimate (success_estimate) taken as exact",
        choices=FORECAST_PRIORS,
    )
    seed: int = knob(0, "seed for choosing the kept unsolved queries and for curriculum=none's shuffle", min=0)

    def check(self) -> None:
        if self.g_min > self.g_max:
            raise ConfigError(f"--g-min={self.g_min} is above --g-max={self.g_max}: lower --g-min or raise --g-max")
