"""The TRL engine's callback: every step GRPOTrainer logs is recorded in the session, like any engine's.

It runs on every rank (TRL logs metrics already gathered across processes), calls nothing but the session
(record, should_stop; sgpo/train/engine.py) and the engine's own step counter, and ends the phase when the
session says stop (a signal, a spent budget; agreed across ranks) or the phase's plateau rule says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from transformers import TrainerCallback

from sgpo.train.engine import Session
from sgpo.train.metrics import trl_step


class PhaseCallback(TrainerCallback):
    def __init__(
        self,
        session: Session,
        *,
        phase: dict,
        prompts: int,
        n_params: int,
        beta: float,
        count_step: Callable[[], dict],
    ):
        """`count_step()`: the engine counts a step of its phase and returns the labels of the step's row
        (`phase`, `cycle`)."""
        self.session, self.phase, self.prompts, self.count_step = session, phase, prompts, count_step
        self.group_size, self.n_params, self.beta = int(phase["group_size"]), n_params, beta
        self.last_tokens, self.best, self.bad = 0.0, -math.inf, 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "frac_reward_zero_std" not in logs:  # the summary line TRL logs when training ends
            return control
        tokens = float(logs.get("num_tokens", self.last_tokens)) - self.last_tokens
        self.last_tokens = float(logs.get("num_tokens", self.last_tokens))
        g, n = self.group_size, self.n_params
        data, flops = trl_step(logs, group_size=g, prompts=self.prompts, tokens=tokens, n_params=n, beta=self.beta)
        labels = self.count_step()
        self.session.record({**data, **labels}, flops=flops, seconds=data["step_seconds"] or 0.0)
        plateaued = self._plateaued(data.get("reward_mean"))
        if self.session.should_stop() or plateaued:  # should_stop first: every rank must call it each step
            control.should_training_stop = True
        return control

    def _plateaued(self, reward) -> bool:
        if self.phase.get("advance") != "plateau" or reward is None:
            return False
        if reward > self.best + self.phase.get("min_delta", 0.0):
            self.best, self.bad = reward, 0
        else:
            self.bad += 1
        return self.bad >= self.phase["patience"]
