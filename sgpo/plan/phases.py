"""Curriculum phases: the one `Phase` the planner builds, `sgpo plan --json` shows and the trainer runs.

A phase is a list of profile positions in training order, the group size of each, and how the trainer
moves on (`pacing`). The trainer's sampler reads exactly these objects (sgpo/train/batches.py), and a
run stores them with `to_dict()` (its checkpoints too), so what the plan shows is what is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sgpo.plan.config import PHASED, PlanConfig


@dataclass
class Phase:
    """One stage of the curriculum, in training order. positions index rows of the profile frame."""

    index: int
    group_size: int  # the phase's G; 0 when members have different G (sorted / none curricula)
    positions: np.ndarray  # int64 rows of the profile frame, in training order
    group_sizes: np.ndarray  # int64 G of each member, aligned with positions
    # how the trainer advances: {"advance": "pass" | "steps" | "plateau", "order": "shuffled" | "planned",
    # plus "steps" or "patience" / "min_delta"}
    pacing: dict
    # the frame's id column, shared: set by the planner (a phase read back with from_dict has none)
    all_ids: pd.api.extensions.ExtensionArray | np.ndarray | None = field(repr=False, default=None)

    @property
    def count(self) -> int:
        return int(self.positions.size)

    @property
    def rollouts(self) -> int:
        return int(self.group_sizes.sum())

    @property
    def ordered(self) -> bool:
        """Train in the plan's order (curriculum=sorted) instead of reshuffling each pass."""
        return self.pacing.get("order") == "planned"

    @property
    def ids(self) -> np.ndarray:
        """The members' query ids, in training order (built on demand: O(count))."""
        assert self.all_ids is not None, "only the planner's phases know their ids"
        return np.asarray(self.all_ids.take(self.positions), dtype=object)

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "group_size": self.group_size,
            "positions": self.positions.tolist(),
            "group_sizes": self.group_sizes.tolist(),
            "pacing": self.pacing,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Phase:
        return cls(
            int(d["index"]),
            int(d["group_size"]),
            np.asarray(d["positions"], dtype=np.int64),
            np.asarray(d["group_sizes"], dtype=np.int64),
            dict(d["pacing"]),
        )


def pacing(config: PlanConfig) -> dict:
    order = {"order": "planned" if config.curriculum == "sorted" else "shuffled"}
    if config.curriculum == "steps":
        return {"advance": "steps", "steps": config.steps_per_phase, **order}
    if config.curriculum == "plateau":
        return {
            "advance": "plateau",
            "patience": config.plateau_patience,
            "min_delta": config.plateau_min_delta,
            **order,
        }
    return {"advance": "pass", **order}


def unsolved_group_size(config: PlanConfig) -> int:
    """G of kept unsolved queries where no phase G applies: what the group rule gives as p -> 0."""
    return config.fixed_group_size if config.group_rule == "fixed" else config.g_max


def build_phases(learn, unsolved, group_size, p_hat, config: PlanConfig, rng) -> list[Phase]:
    """One phase per G bucket, small G first, kept unsolved in each (phased curricula); else one phase."""
    pace = pacing(config)
    if config.curriculum in PHASED:
        if not learn.size:
            g_unsolved = unsolved_group_size(config)
            return [Phase(0, g_unsolved, unsolved, np.full(unsolved.size, g_unsolved, dtype=np.int64), pace)]
        g_learn = group_size[learn]
        by_g = np.bincount(g_learn)
        buckets = np.flatnonzero(by_g)
        # G <= 64 fits a byte, and numpy sorts bytes with a stable radix sort: O(n), input order kept
        ordered = learn[np.argsort(g_learn.astype(np.uint8), kind="stable")]
        phases = []
        for i, (g, members) in enumerate(zip(buckets, np.split(ordered, np.cumsum(by_g[buckets])[:-1]))):
            members = np.concatenate([members, unsolved])
            phases.append(Phase(i, int(g), members, np.full(members.size, g, dtype=np.int64), dict(pace)))
        return phases
    kept = np.sort(np.concatenate([learn, unsolved]))
    if config.curriculum == "sorted":
        order = kept[np.argsort(-p_hat[kept], kind="stable")]
    else:
        order = rng.permutation(kept)
    sizes = group_size[order]
    sizes[p_hat[order] == 0] = unsolved_group_size(config)
    common = int(sizes[0]) if sizes.min() == sizes.max() else 0
    return [Phase(0, common, order, sizes, pace)]
