"""The project's words, defined once and imported everywhere: statuses, strategies, decisions, metrics.

Metric names follow one rule: a count per training step is plain (`wasted_rollouts`), the same count
summed over the run so far ends in `_total` (`wasted_rollouts_total`), and a fraction says its scope
first: `step_` (this step), `run_` (the run so far), `forecast_` (the planner's expectation for one
pass over the plan). FLOPs are kept in three buckets, `flops_profile`, `flops_rollout`, `flops_train`,
with `flops_total` their sum (profiling included) and `flops_eval` apart (evaluation is not training).
"""

from __future__ import annotations

# the run lifecycle (sgpo.runs). `interrupted` is never stored: it is what a `running` row whose
# process is gone is shown as, until it is resumed.
CREATED, RUNNING, STOPPED, FINISHED, FAILED, INTERRUPTED = (
    "created",
    "running",
    "stopped",
    "finished",
    "failed",
    "interrupted",
)
RUN_STATUSES = (CREATED, RUNNING, STOPPED, FINISHED, FAILED)
ACTIVE_STATUSES = (CREATED, RUNNING)  # a process owns the run (or is about to)

# profiles: `running` until every query is stored, then `done`
PROFILE_RUNNING, PROFILE_DONE = "running", "done"

# the plan; fixed-G GRPO; DAPO dynamic sampling; GRESO's pre-rollout skip of zero-variance queries
STRATEGIES = ("sgpo", "grpo", "dapo", "greso")
DECISIONS = ("trivial", "learnable", "unsolved_kept", "unsolved_dropped")

# Where a query stands: two words, one meaning each.
# A profiled query's *bucket* is what the plan does with it at given knobs: `trivial`, learnable with its
# group size (`G=2`, `G=4`, ...: harder further right), or `unsolved` (p_hat 0, kept or dropped alike).
# `sgpo profile --adaptive` samples until a query's bucket is settled (sgpo/adaptive.py); sgpo/drift.py counts
# the moves between buckets from one profile to another.
# A held-out query's *band* is where the initial policy stood on it (sgpo/train/evaluate.py): `solved` (every
# sample right), `middle` (some right), `unsolved` (none).
BUCKET_TRIVIAL, BUCKET_UNSOLVED = "trivial", "unsolved"
BANDS = ("solved", "middle", "unsolved")


def bucket_label(group_size: int) -> str:
    """The bucket of a learnable query with this group size: 'G=4'."""
    return f"G={int(group_size)}"


def bucket_order(labels) -> list[str]:
    """Buckets easiest to hardest: trivial, then G=2, G=4, ... by group size, then unsolved (both ends always)."""
    groups = sorted({str(b) for b in labels if str(b).startswith("G=")}, key=lambda b: int(b[2:]))
    return [BUCKET_TRIVIAL, *groups, BUCKET_UNSOLVED]


# metrics: per step, run totals, and the three fractions of each scope
STEP_COUNTS = ("queries", "rollouts", "groups", "informative_groups", "wasted_rollouts")
RUN_TOTALS = (
    "queries_total",
    "rollouts_total",
    "groups_total",
    "informative_groups_total",
    "wasted_rollouts_total",
    "tokens_total",
)
FLOPS = ("flops_profile", "flops_rollout", "flops_train", "flops_total", "flops_eval")
STEP_FRACTIONS = ("step_wasted_fraction", "step_informative_fraction")
RUN_FRACTIONS = ("run_wasted_fraction", "run_informative_fraction")
FORECAST_FRACTIONS = ("forecast_wasted_fraction", "forecast_informative_fraction")

# per-step metrics that not every run logs, each with its definition (docs/METHOD.md has the method)
METRIC_WORDS = {
    # the critical-batch gauge (sgpo/train/noise.py; sgpo/gauge.py reads it)
    "noise_scale_informative": "critical batch B_simple = tr(Sigma) / |G|^2 in informative rollouts, EMA-smoothed",
    "noise_scale_rollouts": "the same in rollouts a step: noise_scale_informative / noise_informative_share",
    "noise_informative_share": "share of a step's generated rollouts that are informative, EMA-smoothed",
    "noise_g2": "this step's unbiased estimate of |G|^2, the squared norm of the true mean gradient",
    "noise_trace": "this step's unbiased estimate of tr(Sigma), the per-rollout gradient variance",
    # steps sized by what they teach (sgpo --batch-informative)
    "expected_informative_rollouts": "informative rollouts the step's queries were expected to hold when chosen",
    # planning from the first epoch (sgpo --plan-from-first-epoch)
    "first_epoch": "the step trained GRPO over the first epoch, whose groups become the run's profile",
}


def fraction(part, whole):
    """part / whole, or None when whole is 0 (no rollouts yet is not 0% wasted)."""
    return part / whole if whole else None
