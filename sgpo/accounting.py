"""What compute costs, and how much less of it a run needed: every FLOPs rule and the one compute-reduction
factor, owned here and called by the trainer, the TRL engine and callback, the planner's forecast, the CLI,
the dashboard and the benchmarks.

    flops_generate(n_params, tokens)                 # 2 x params x tokens: profiling, rollouts, evaluation
    flops_train(n_params, tokens, beta=0.0)          # 6 x params x tokens (+ 2 x for a reference forward)
    counters = Counters(flops_profile=2.3e12)
    row = counters.add(step, flops=step_flops(n_params, generated=900, trained=400, informative=400, every=900))
    row["flops_total"], row["flops_total_train_all"], row["run_wasted_fraction"]
    waste_ceiling(0.7, "skip")                        # 1.625: the most that removing all waste can save
    reduction_factor([grpo_evals], [sgpo_evals])     # Reduction(factor=1.4, target=0.41, ...)

Accounting (docs/METHOD.md): generation costs a forward per prompt and generated token, 2 x params x
tokens; a trained sequence costs forward + backward, 6 x params x its tokens, plus 2 x for the reference
model's forward when beta > 0. Three buckets are kept apart, `flops_profile`, `flops_rollout` and
`flops_train`; `flops_total` is their sum, and evaluation (`flops_eval`) is never training compute.

Two engine behaviours price the same run: `skip` leaves zero-advantage groups out of the backward pass
(our engine's default; the gradient is the same at beta = 0) and `train_all` trains every rollout (TRL,
verl). Each step is priced both ways (`flops_total_skip`, `flops_total_train_all`), whichever the run used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from sgpo.vocab import fraction

GENERATE = 2.0  # FLOPs per parameter per token of a forward pass (generation, a reference forward)
TRAIN = 6.0  # forward + backward
ENGINE_BEHAVIOURS = ("skip", "train_all")  # zero-advantage groups left out of training, or trained too


# FLOPs rules -----------------------------------------------------------------------------------------
def flops_generate(n_params: float, tokens: float) -> float:
    """Generation (profiling, rollouts, evaluation): a forward per prompt and generated token."""
    return GENERATE * float(n_params) * float(tokens)


def train_factor(beta: float = 0.0) -> float:
    """FLOPs per parameter per trained token: forward + backward, plus a reference forward when beta > 0."""
    return TRAIN + (GENERATE if beta else 0.0)


def flops_train(n_params: float, tokens: float, beta: float = 0.0) -> float:
    """Training on sequences of `tokens` tokens (prompt + completion)."""
    return train_factor(beta) * float(n_params) * float(tokens)


def step_flops(
    n_params: float, *, generated: float, trained: float, informative: float, every: float, beta: float = 0.0
) -> dict:
    """One step's FLOPs: `generated` tokens of rollouts, `trained` the tokens the engine trained, and the
    step priced under both behaviours: `informative` (tokens of groups with an advantage) and `every`
    (tokens of every rollout the update saw)."""
    return {
        "flops_rollout": flops_generate(n_params, generated),
        "flops_train": flops_train(n_params, trained, beta),
        "flops_train_skip": flops_train(n_params, informative, beta),
        "flops_train_train_all": flops_train(n_params, every, beta),
    }


def waste_ceiling(wasted_fraction: float, behaviour: str) -> float:
    """The most that removing all of a baseline's waste w can save, profiling not counted (docs/METHOD.md):
    1 / (1 - w) when every rollout is trained, (2 / (1 - w) + 6) / 8 when zero-advantage groups are skipped."""
    w = float(wasted_fraction)
    if w >= 1.0:
        return math.inf
    if behaviour == "train_all":
        return 1.0 / (1.0 - w)
    return (GENERATE / (1.0 - w) + TRAIN) / (GENERATE + TRAIN)


# run totals ------------------------------------------------------------------------------------------
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
    "flops_train_skip",
    "flops_train_train_all",
    "flops_eval",
    "wall_seconds",
)
_STEP_COUNTS = COUNTERS[:8]


class Counters:
    """Run totals so far, the same for every engine and for TRL runs streamed in by callback."""

    def __init__(self, flops_profile: float = 0.0):
        self.flops_profile = float(flops_profile)
        self.values = dict.fromkeys(COUNTERS, 0.0)

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def add(self, step: dict, *, flops: dict, seconds: float) -> dict:
        """Add one step (counts in the vocabulary's names, `flops` from step_flops); returns the step with
        the run's totals so far."""
        c = self.values
        for key in _STEP_COUNTS:
            c[key] += step.get(key) or 0
        for key in ("flops_rollout", "flops_train", "flops_train_skip", "flops_train_train_all"):
            c[key] += float(flops.get(key, flops["flops_train"] if key.startswith("flops_train") else 0.0))
        c["wall_seconds"] += seconds or 0.0
        return {**step, **self.totals()}

    def add_eval(self, n_params: float, tokens: float) -> float:
        """Count an evaluation's generation (kept apart from training); returns its FLOPs."""
        flops = flops_generate(n_params, tokens)
        self.values["flops_eval"] += flops
        return flops

    def totals(self) -> dict:
        c, profile = self.values, self.flops_profile
        return {
            "flops_profile": profile,
            "flops_rollout": c["flops_rollout"],
            "flops_train": c["flops_train"],
            "flops_total": profile + c["flops_rollout"] + c["flops_train"],
            "flops_total_skip": profile + c["flops_rollout"] + c["flops_train_skip"],
            "flops_total_train_all": profile + c["flops_rollout"] + c["flops_train_train_all"],
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
        """From a checkpoint; one written before the behaviour buckets existed prices both as the run trained."""
        values = dict(values)
        for key in ("flops_train_skip", "flops_train_train_all"):
            values.setdefault(key, values.get("flops_train", 0.0))
        self.values = {**self.values, **values}


def flops_column(behaviour: str | None) -> str:
    """The metrics/evals column holding total FLOPs under `behaviour` (None: as the run trained)."""
    if behaviour is None:
        return "flops_total"
    if behaviour not in ENGINE_BEHAVIOURS:
        raise ValueError(f"engine behaviour {behaviour!r}: one of {', '.join(ENGINE_BEHAVIOURS)}")
    return f"flops_total_{behaviour}"


# the compute-reduction factor ------------------------------------------------------------------------
@dataclass
class Reduction:
    """How much less compute `candidate` needed than `baseline` to reach the baseline's final accuracy.

    factor = baseline FLOPs / candidate FLOPs to the target, each read off its mean accuracy-vs-FLOPs
    curve (seeds averaged on a common FLOPs grid; linear between evaluations). Above 1: the candidate
    is cheaper. None when it means nothing, with `reason` saying why."""

    factor: float | None
    reason: str  # "1.42x", "not reached", "n/a: baseline has not improved", ...
    target: float | None = None  # accuracy: the final point of the baseline's mean curve
    baseline_flops: float | None = None  # where the baseline's mean curve first reaches the target
    flops: float | None = None  # where the candidate's mean curve first reaches it
    seed_factors: list[float | None] = field(default_factory=list)  # baseline_flops / each candidate seed's own
    reached: int = 0  # candidate seeds whose own curve reaches the target
    seeds: int = 0

    @property
    def spread(self) -> tuple[float, float] | None:
        """(min, max) of the per-seed factors over the seeds that reach the target."""
        hits = [f for f in self.seed_factors if f is not None]
        return (min(hits), max(hits)) if hits else None


def _curve(evals: pd.DataFrame, axis: str) -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, accuracy) of one run's evaluations, ordered by FLOPs, duplicate FLOPs keeping the latest."""
    if axis not in evals:
        raise KeyError(f"evaluations have no {axis!r} column")
    frame = evals[[axis, "accuracy"] + (["step"] if "step" in evals else [])].dropna(subset=[axis, "accuracy"])
    frame = frame.sort_values(["step"] if "step" in frame else [axis]).drop_duplicates(axis, keep="last")
    frame = frame.sort_values(axis)
    return frame[axis].to_numpy(float), frame["accuracy"].to_numpy(float)


def mean_curve(curves: list[pd.DataFrame], axis: str = "flops_total") -> pd.DataFrame:
    """Seeds averaged: accuracy interpolated onto the union of their FLOPs points, over the range every
    seed covers (columns `axis`, `accuracy`, `low`, `high` = the seeds' min and max there)."""
    pairs = [c for c in (_curve(e, axis) for e in curves) if len(c[0])]
    if not pairs:
        return pd.DataFrame({axis: [], "accuracy": [], "low": [], "high": []})
    lo, hi = max(x[0] for x, _ in pairs), min(x[-1] for x, _ in pairs)
    grid = np.unique(np.concatenate([x[(x >= lo) & (x <= hi)] for x, _ in pairs]))
    if not len(grid):  # the seeds' ranges do not overlap: nothing can be averaged
        return pd.DataFrame({axis: [], "accuracy": [], "low": [], "high": []})
    ys = np.vstack([np.interp(grid, x, y) for x, y in pairs])
    return pd.DataFrame({axis: grid, "accuracy": ys.mean(0), "low": ys.min(0), "high": ys.max(0)})


def crossing(flops: np.ndarray, accuracy: np.ndarray, target: float) -> float | None:
    """FLOPs at which the curve first reaches `target`, linear between evaluations; None if it never does."""
    hit = np.flatnonzero(np.asarray(accuracy) >= target - 1e-12)
    if not hit.size:
        return None
    i = int(hit[0])
    if i == 0 or accuracy[i] == accuracy[i - 1]:
        return float(flops[i])
    return float(
        flops[i - 1] + (target - accuracy[i - 1]) / (accuracy[i] - accuracy[i - 1]) * (flops[i] - flops[i - 1])
    )


def reduction_factor(
    baseline: list[pd.DataFrame], candidate: list[pd.DataFrame], *, behaviour: str | None = None
) -> Reduction:
    """The compute-reduction factor of `candidate` (its seeds' evaluations) against `baseline` (its seeds').

    Target: the final accuracy of the baseline's mean curve. Each side's FLOPs: where its mean curve first
    reaches the target (profiling included, as every eval's FLOPs are). One run against one run is the
    one-seed case. `behaviour` reads the FLOPs as if every run had trained that way (ENGINE_BEHAVIOURS;
    None: as each run trained). Meaningless cases give factor None and a reason: no evaluations, a
    baseline that did not improve on where it started, a candidate that starts at the target."""
    axis = flops_column(behaviour)
    base, mine = mean_curve(baseline, axis), mean_curve(candidate, axis)
    seeds = len(candidate)
    if base.empty or mine.empty:
        return Reduction(None, "no evaluations yet", seeds=seeds)
    target = float(base["accuracy"].iloc[-1])
    starts = [s for s in map(_start, baseline) if s is not None]
    if len(starts) == len(baseline) and target <= float(np.mean(starts)):
        return Reduction(None, "n/a: baseline has not improved", target=target, seeds=seeds)
    mine_starts = [s for s in map(_start, candidate) if s is not None]
    if len(mine_starts) == len(candidate) and float(np.mean(mine_starts)) >= target:
        return Reduction(None, "n/a: starts at the target", target=target, seeds=seeds)
    base_flops = crossing(base[axis].to_numpy(), base["accuracy"].to_numpy(), target)
    flops = crossing(mine[axis].to_numpy(), mine["accuracy"].to_numpy(), target)
    per_seed = [crossing(*_curve(e, axis), target) for e in candidate]
    seed_factors = [base_flops / f if (f and base_flops) else None for f in per_seed]
    reached = sum(f is not None for f in per_seed)
    not_reached = Reduction(
        None,
        "not reached",
        target=target,
        baseline_flops=base_flops,
        seed_factors=seed_factors,
        reached=reached,
        seeds=seeds,
    )
    if flops is None:
        return not_reached
    if not base_flops or flops <= 0:
        return replace(not_reached, reason="n/a", flops=flops)
    factor = base_flops / flops
    return replace(not_reached, factor=factor, reason=f"{factor:.2f}x", flops=flops)


def _start(evals: pd.DataFrame) -> float | None:
    """Accuracy before training (the step-0 evaluation), if the run logged one."""
    if "step" not in evals:
        return None
    start = evals[evals["step"] == 0]["accuracy"].dropna()
    return float(start.iloc[0]) if len(start) else None
