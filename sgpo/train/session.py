"""The session: what an engine's steps report to (the shared side of the engine seam, sgpo/train/engine.py).

    session = Session(cfg, Counters(flops_profile), after_step=lambda step, row: ...)
    while not session.should_stop():                        # what an engine's loop looks like
        data, flops, seconds = one_step(session.step + 1)
        row = session.record(data, flops=flops, seconds=seconds)   # the step with the run's totals so far

It keeps the step count, the run totals (sgpo.accounting.Counters), the budget (--steps, --flops-budget,
checked before each step, so the last step may overshoot a FLOPs budget) and the stop flag that a signal
sets (sgpo/train/signals.py). `after_step` is what the run does after each recorded step: evaluation, the
metrics row, a checkpoint (sgpo/train/loop.py). Under several processes `should_stop` agrees across ranks
(sgpo.distributed.any_rank), so every rank leaves at the same step, and a stop asked of one rank stops all.
"""

from __future__ import annotations

from collections.abc import Callable

from sgpo.accounting import Counters
from sgpo.distributed import any_rank
from sgpo.train.config import TrainConfig


class Session:
    def __init__(self, cfg: TrainConfig, counters: Counters, *, after_step: Callable[[int, dict], None] | None = None):
        self.cfg, self.counters = cfg, counters
        self.after_step = after_step or (lambda step, row: None)
        self.step = 0  # steps recorded so far
        self.stop_requested = False
        self.last_data: dict | None = None  # the latest step's row (totals included)

    def budget_left(self) -> bool:
        cfg = self.cfg
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return False
        return cfg.flops_budget is None or self.counters.totals()["flops_total"] < cfg.flops_budget

    def steps_left(self) -> int | None:
        """Steps the step budget still allows; None when only a FLOPs budget bounds the run."""
        return None if self.cfg.max_steps is None else max(0, self.cfg.max_steps - self.step)

    def request_stop(self) -> None:
        """Finish the step in flight, then stop (the run ends `stopped`, checkpointed)."""
        self.stop_requested = True

    def should_stop(self) -> bool:
        """Stop before the next step: one was requested (on any rank), or the budget is spent."""
        stop = any_rank(self.stop_requested or not self.budget_left())
        if stop and self.budget_left():  # asked of another rank: this one ends `stopped` too
            self.stop_requested = True
        return stop

    def record(self, data: dict, *, flops: dict, seconds: float) -> dict:
        """A finished step (counts in the vocabulary's names, `flops` from sgpo.accounting.step_flops):
        counted, then `after_step`; returns the step's row with the run's totals so far."""
        row = self.counters.add(data, flops=flops, seconds=seconds or 0.0)
        self.step += 1
        self.last_data = row
        self.after_step(self.step, row)
        return row

    def state_dict(self) -> dict:
        return {"counters": self.counters.state_dict(), "last_data": self.last_data}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.counters.load_state_dict(state["counters"])
        self.last_data = state.get("last_data")
