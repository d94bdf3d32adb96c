"""The planner: a profile table and a PlanConfig in, a Plan out. Pure: no files, no database.

    from sgpo.plan import PlanConfig, make_plan
    plan = make_plan(store.profile_frame(profile_id), PlanConfig(trivial_threshold=0.6), n_params=1.5e9)
    plan.counts["learnable"], plan.phases[0].group_size, plan.forecast["ratio"]
    plan.too_few_learnable()      # None, or why `sgpo train` should not train it (too_few_learnable(record))

Modules, in the order a plan is made: config (the knobs), groups (P_inf and the per-query group-size
rules), knapsack (the budgeted rule), phases (the curriculum), forecast (one pass against fixed-G GRPO),
basis (what the forecast rests on), planner (make_plan: decisions, then the rest).
"""

from sgpo.plan.basis import MIN_LEARNABLE_QUERIES
from sgpo.plan.config import CURRICULA, ESTIMATES, GROUP_RULES, PHASED, PlanConfig
from sgpo.plan.forecast import forecast
from sgpo.plan.groups import group_size_for, p_informative
from sgpo.plan.knapsack import knapsack_group_sizes
from sgpo.plan.phases import Phase
from sgpo.plan.planner import COLUMNS, Plan, make_plan, success_estimate, too_few_learnable
from sgpo.vocab import DECISIONS

__all__ = [
    "CURRICULA",
    "COLUMNS",
    "DECISIONS",
    "ESTIMATES",
    "GROUP_RULES",
    "MIN_LEARNABLE_QUERIES",
    "PHASED",
    "Phase",
    "Plan",
    "PlanConfig",
    "forecast",
    "group_size_for",
    "knapsack_group_sizes",
    "make_plan",
    "p_informative",
    "success_estimate",
    "too_few_learnable",
]
