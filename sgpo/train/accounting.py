"""Run totals and FLOPs accounting, the same for every engine and for TRL runs streamed in by callback.

    counters = Counters(flops_profile=2.3e12)
    row = counters.add(step, flops_rollout=2 * n * tokens, flops_train=6 * n * trained, seconds=0.4)
    row["run_wasted_fraction"], row["flops_total"]

`step` holds one step's counts in the vocabulary's names (sgpo/vocab.py); `add` returns it with the
run totals so far. Accounting (docs/METHOD.md): generation costs 2 x params x tokens (prompt + completion,
each sample), a trained sequence 6 x params x its tokens (+ 2 x for a reference forward); profiling
FLOPs count from step 0; evaluation FLOPs are kept apart.
"""

from __future__ import annotations

from sgpo.vocab import fraction

COUNTERS = (
    "queries",
    "rollouts",
    "wasted_rollouts",
    "groups",
    "informative_groups",
    "tokens_prompt",
    "tokens_completion",
    "tokens_trained",
    "flops_rollout",
    "flops_train",
    "flops_eval",
    "wall_seconds",
)


class Counters:
    def __init__(self, flops_profile: float = 0.0):
        self.flops_profile = float(flops_profile)
        self.values = dict.fromkeys(COUNTERS, 0.0)

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def __setitem__(self, key: str, value: float) -> None:
        self.values[key] = value

    def add(self, step: dict, *, flops_rollout: float, flops_train: float, seconds: float) -> dict:
        c = self.values
        for key in (
            "queries",
            "rollouts",
            "wasted_rollouts",
            "groups",
            "informative_groups",
            "tokens_prompt",
            "tokens_completion",
            "tokens_trained",
        ):
            c[key] += step.get(key) or 0
        c["flops_rollout"] += flops_rollout
        c["flops_train"] += flops_train
        c["wall_seconds"] += seconds or 0.0
        return {**step, **self.totals()}

    def totals(self) -> dict:
        c = self.values
        return {
            "flops_profile": self.flops_profile,
            "flops_rollout": c["flops_rollout"],
            "flops_train": c["flops_train"],
            "flops_total": self.flops_profile + c["flops_rollout"] + c["flops_train"],
            "flops_eval": c["flops_eval"],
            "rollouts_total": c["rollouts"],
            "wasted_rollouts_total": c["wasted_rollouts"],
            "groups_total": c["groups"],
            "informative_groups_total": c["informative_groups"],
            "run_wasted_fraction": fraction(c["wasted_rollouts"], c["rollouts"]),
            "run_informative_fraction": fraction(c["informative_groups"], c["groups"]),
            "queries_total": c["queries"],
            "tokens_total": c["tokens_prompt"] + c["tokens_completion"],
        }

    def state_dict(self) -> dict:
        return dict(self.values)

    def load_state_dict(self, values: dict) -> None:
        self.values = {**self.values, **values}
