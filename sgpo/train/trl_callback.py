"""The TRL engine's callback: every step GRPOTrainer logs is recorded in the session, like any engine's.

It runs on every rank (TRL logs metrics already gathered across processes), calls nothing but the session
(record, should_stop; sgpo/train/engine.py) and the engine's own step counter, and ends the phase when the
session says stop (a signal, a spent budget; agreed across ranks) or the phase's plateau rule says so.

TRL gives a callback no rollouts (on_log receives averaged metrics only), but it calls our reward function
with each step's prompts, completions, completion token ids and dataset columns, each prompt's G completions
one after the other. GroupCapture wraps the reward function, hands TRL the rewards unchanged, and keeps what
it scored group by group; the callback puts them in the step's row (sgpo/train/rollouts.py, ROLLOUTS_KEY),
so they are stored with it. Under several processes each rank scores its own share: the main one's is kept.

    capture = GroupCapture(reward_fn, group_size=8, keep=2, seed=0, query=capture_rows(frame))
    GRPOTrainer(..., reward_funcs=capture.reward_fn(), callbacks=[PhaseCallback(..., capture=capture)])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from transformers import TrainerCallback

from sgpo.distributed import rank_and_world
from sgpo.train.engine import Session
from sgpo.train.metrics import trl_step
from sgpo.train.rollouts import ROLLOUTS_KEY, group_record, kept_slots, query_record, step_groups

QueryOf = Callable[[dict, int, str], tuple[int, dict]]  # (reward kwargs, sample index, prompt) -> (key, query row)


def capture_rows(frame) -> QueryOf:
    """Queries named by the dataset row TRL passes back in our `row` column (sgpo/train/trl_engine.py)."""

    def query(columns: dict, i: int, prompt: str) -> tuple[int, dict]:
        row = int(columns["row"][i])
        return row, query_record(frame, row)

    return query


def completion_text(completion) -> str:
    """A completion as text: plain text as is; a conversational one (a list of messages) as its contents."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in completion)
    return str(completion)


class GroupCapture:
    """A TRL reward function's calls, kept group by group until the step they belong to is logged."""

    def __init__(self, reward_fn, *, group_size: int, keep: int, seed: int, query: QueryOf):
        self.inner, self.group_size, self.keep, self.seed, self.query = reward_fn, group_size, keep, seed, query
        self.active = rank_and_world()[0] == 0  # only the main process stores anything
        self.pending: list[tuple[int, dict, list[float], list[int], list[str]]] = []

    def reward_fn(self):
        """The reward function to hand TRL: the wrapped one, whose name it keeps (TRL logs rewards by name)."""
        inner = self.inner

        @functools.wraps(inner)
        def reward(prompts=None, completions=None, completion_ids=None, **columns):
            rewards = inner(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns)
            if self.active and completions is not None:
                self._keep(prompts or [""] * len(completions), completions, completion_ids, columns, rewards)
            return rewards

        return reward

    def _keep(self, prompts, completions, completion_ids, columns, rewards) -> None:
        g = self.group_size
        for start in range(0, len(completions) - g + 1, g):  # an incomplete tail group (never in training) is left
            span = range(start, start + g)
            key, row = self.query(columns, start, completion_text(prompts[start]))
            lengths = [len(completion_ids[i]) for i in span] if completion_ids is not None else [0] * g
            scored = [math.nan if rewards[i] is None else float(rewards[i]) for i in span]
            self.pending.append((key, row, scored, lengths, [completion_text(completions[i]) for i in span]))

    def take(self, step: int, phase: int | None) -> dict | None:
        """The groups scored since the last take, for `step` (TRL trains every completion: all trained), with
        the texts of `keep` of them; None on a process that does not store."""
        if not self.active:
            return None
        pending, self.pending = self.pending, []
        texts = kept_slots(len(pending), self.keep, seed=self.seed, step=step)
        records = [
            group_record(
                query=key, rewards=rewards, lengths=lengths, phase=phase, trained=True, texts=t if i in texts else None
            )
            for i, (key, _, rewards, lengths, t) in enumerate(pending)
        ]
        queries = list({key: row for key, row, *_ in pending}.values())
        return step_groups(records, queries)


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
        capture: GroupCapture | None = None,
    ):
        """`count_step()`: the engine counts a step of its phase and returns the labels of the step's row
        (`phase`, `cycle`); `capture`: the reward function's groups, stored with each step."""
        self.session, self.phase, self.prompts, self.count_step = session, phase, prompts, count_step
        self.capture = capture
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
        groups = self.capture.take(self.session.step + 1, labels.get("phase")) if self.capture else None
        if groups is not None:
            data[ROLLOUTS_KEY] = groups
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
