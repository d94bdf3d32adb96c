"""The TRL engine's callback: each GRPOTrainer log becomes one step of the shared loop.

It runs on every rank (TRL logs metrics already gathered across processes); the loop writes the store
on the main process only, and a stop request (SIGTERM on the main process, a spent budget, or the
plateau rule) is all-reduced so that every rank leaves training at the same step.
"""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback

from sgpo.train.trl_engine import step_metrics, trl_flops


class PhaseCallback(TrainerCallback):
    def __init__(self, trainer, engine, group_size: int, prompts: int, phase: dict):
        self.trainer, self.engine, self.g, self.prompts, self.phase = trainer, engine, group_size, prompts, phase
        self.last_tokens, self.best, self.bad = 0.0, -math.inf, 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "frac_reward_zero_std" not in logs:  # the summary line TRL logs when training ends
            return control
        t = self.trainer
        tokens = float(logs.get("num_tokens", self.last_tokens)) - self.last_tokens
        self.last_tokens = float(logs.get("num_tokens", self.last_tokens))
        data = step_metrics(logs, group_size=self.g, prompts=self.prompts, tokens=tokens)
        self.engine.cursor["phase_steps"] += 1
        t.step += 1
        row = t.counters.add(
            {**data, "phase": self.engine.cursor["phase"], "cycle": self.engine.cursor["cycle"]},
            seconds=data["step_seconds"] or 0.0,
            **trl_flops(tokens, t.n_params, t.cfg.beta),
        )
        t.after_step(row)
        if self._plateaued(data.get("reward_mean")) or self._stop(t):
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

    @staticmethod
    def _stop(t) -> bool:
        stop = t.stop_requested or not t.budget_left()
        if t.world_size > 1 and torch.distributed.is_initialized():  # every rank leaves at the same step
            on = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
            flag = torch.tensor([float(stop)], device=on)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
            t.stop_requested = t.stop_requested or stop and t.budget_left()
        return stop
