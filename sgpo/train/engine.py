"""The engine seam: one interface both engines implement in full, and the session their steps report to.

An engine owns the model and drives its own steps; the shared code (sgpo/train/loop.py) owns the rest of
the run and hands the engine a session, the step sink (sgpo/train/session.py):

    engine.train(session)                   # steps until session.should_stop(); each one -> session.record
    engine.generator.generate(prompts, ...) # the current weights: held-out evaluation (our engine's rollouts too)
    engine.save(folder); engine.load(folder)            # weights, tokenizer, optimizer, torch's RNG
    engine.state_dict(); engine.load_state_dict(state)  # where it is in its data (JSON, kept in state.json)

    session.step                            # steps done so far: the engine's next step is session.step + 1
    session.should_stop()                   # a stop was asked for (a signal, another rank) or the budget is spent
    session.steps_left()                    # what the step budget still allows (None: a FLOPs budget only)
    session.record(data, flops=..., seconds=...)   # a finished step (sgpo/train/metrics.py builds both dicts):
                                            # evaluation, the metrics row and checkpoints follow, then it returns

Two engines, neither reaching into the other side:
- NativeEngine (sgpo/train/native.py), ours: its loop asks the strategy's sampler (sgpo/train/batches.py) for a
  batch, rolls it out and scores it (sgpo/train/rollouts.py), applies one update (per-query G in one batch,
  zero-advantage groups left out of the backward pass) and records the step.
- TRLEngine (sgpo/train/trl_engine.py): TRL's GRPOTrainer runs the plan one phase at a time (one G each); its
  callback turns every step TRL logs into the same record and asks the same session whether to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sgpo.generate import Generator

STEP_SEED = 1000003  # step k's generation seed is seed * STEP_SEED + k: a resumed run replays it exactly


@dataclass
class Update:
    """What one update of our engine did: sgpo/train/metrics.py turns it into metrics and training FLOPs."""

    trained_sequences: int  # rollouts that went through forward/backward
    trained_tokens: int  # prompt + completion tokens of those (training FLOPs are counted on these)
    loss: float
    kl: float
    entropy: float
    grad_norm: float  # nan when nothing was trained (every group had zero advantage)


class Session(Protocol):
    """The step sink the shared code gives an engine (sgpo/train/session.py implements it)."""

    @property
    def step(self) -> int: ...

    def should_stop(self) -> bool: ...

    def steps_left(self) -> int | None: ...

    def record(self, data: dict, *, flops: dict, seconds: float) -> dict: ...


class Engine(Protocol):
    @property
    def generator(self) -> Generator:
        """Rollouts and held-out evaluation, always with the current weights."""
        ...

    def train(self, session: Session) -> None: ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The learning rate's share at `step` (1-based): linear warmup over `warmup_steps`, then 1. Both
    engines use it, so the warmup is global across a TRL run's phases."""
    return min(1.0, step / warmup_steps) if warmup_steps else 1.0
