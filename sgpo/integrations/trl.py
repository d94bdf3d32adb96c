"""Watch any TRL GRPOTrainer run in the dashboard: one line in your own training script.

    from sgpo.integrations.trl import SgpoCallback
    trainer = GRPOTrainer(..., callbacks=[SgpoCallback("runs/sgpo.db", name="my-run")])

Every optimizer step becomes a step of the run in the store, whatever `logging_steps` is: the callback counts
steps from the trainer's step hooks and its state (`on_step_end`, `state.global_step`, and the tokens the step
processed from `state.num_input_tokens_seen`), and what TRL reports only in its logs (reward, reward std, the
share of groups whose rewards were all equal, entropy, completion lengths, clip ratios) is attached to every
step the log covers (TRL averages the steps between two logs). The rows are sgpo.train.metrics.trl_step's, as
for `--engine trl`, under the same names as a native run (sgpo/vocab.py): rollouts, wasted rollouts (the
all-equal share x the step's rollouts), informative groups, tokens, FLOPs with TRL's accounting
(sgpo/accounting.py: every completion is trained, 2 x params x tokens to generate, 6 x to train, + 2 x for the
reference forward when beta > 0), and the run priced as if zero-advantage groups had been skipped
(`flops_total_skip`: TRL gives no tokens per group, so the informative groups' tokens are taken as tokens x
(1 - the all-equal share)). Rows reach the store when TRL logs, so with logging_steps=10 the dashboard moves ten
steps at a time.

A name already in the store is a choice made before training starts: `if_exists="fail"` (the default) refuses
it in one line, when the callback is made and again when training begins; `if_exists="suffix"` stores this run
as NAME-2 (NAME-3, ...). Without a name the run is called trl-DATE-TIME, suffixed if that is taken.

The run ends `finished`, or `failed` with the exception's message. To see an exception that ends the
script, the callback puts its own sys.excepthook and an atexit hook in place when training begins, and
puts back what was there when training ends or fails. Only the main process writes. A run that wastes every
rollout for 20 steps in a row says so (sgpo/train/recorder.py), as a native run does.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

from transformers import TrainerCallback

from sgpo.accounting import Counters
from sgpo.errors import ConfigError, StoreError
from sgpo.store import Store, check_name, default_path
from sgpo.train.metrics import trl_step
from sgpo.train.recorder import Recorder
from sgpo.train.trl_callback import GroupCapture
from sgpo.vocab import FAILED, FINISHED

IF_EXISTS = ("fail", "suffix")  # what a name already in the store does: refuse it, or store NAME-2, NAME-3, ...
CONFIG_FIELDS = (  # the GRPOConfig fields a run records
    "num_generations",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "logging_steps",
    "learning_rate",
    "beta",
    "max_steps",
    "temperature",
    "seed",
    "loss_type",
)


class SgpoCallback(TrainerCallback):
    def __init__(
        self,
        db: str | os.PathLike | None = None,
        *,
        name: str | None = None,
        strategy: str = "grpo",
        if_exists: str = "fail",
    ):
        if if_exists not in IF_EXISTS:
            raise ConfigError(f"SgpoCallback(if_exists={if_exists!r}): choose {' or '.join(map(repr, IF_EXISTS))}")
        self.path = default_path(db)
        self.name = check_name(name, "run", "SgpoCallback(name=...)") if name else None
        self.strategy, self.if_exists = strategy, if_exists
        if self.name and if_exists == "fail" and self.path.exists():  # said now, before the model is even loaded
            self._run_name(Store(self.path, readonly=True))
        self.store: Store | None = None
        self.run_id: int | None = None
        self.recorder: Recorder | None = None
        self.counters, self.n_params, self.beta = Counters(), 0, 0.0
        self.pending: list[tuple[int, float, float]] = []  # (step, tokens, seconds) of the steps no log covered yet
        self.tokens_seen, self.step_began = 0.0, time.perf_counter()
        self._replaced: tuple | None = None  # (our excepthook, the one it replaced) while training runs

    def _run_name(self, store: Store) -> str:
        """The name this run is stored under: the one given (refused when taken and if_exists="fail"), or the
        first free NAME-2, NAME-3, ... (a default name is always suffixed)."""
        wanted = self.name or f"trl-{time.strftime('%Y%m%d-%H%M%S')}"
        taken = {r["name"] for r in store.runs()}
        if wanted not in taken:
            return wanted
        free = next(f"{wanted}-{k}" for k in range(2, len(taken) + 3) if f"{wanted}-{k}" not in taken)
        if self.name and self.if_exists == "fail":
            raise StoreError(
                f"a run named {wanted!r} already exists in {self.path}: pass SgpoCallback another name=, or "
                f"if_exists='suffix' to store this run as {free!r}"
            )
        return free

    # lifecycle --------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self.store = Store(self.path)
        name = self._run_name(self.store)
        self.n_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) if model else 0
        self.beta = float(getattr(args, "beta", 0.0) or 0.0)
        config = {
            "engine": "trl-callback",
            "model": getattr(getattr(model, "config", None), "_name_or_path", None),
            **{k: getattr(args, k, None) for k in CONFIG_FIELDS},
        }
        self.run_id = self.store.create_run(name=name, strategy=self.strategy, config=config)
        self.name = name
        self.recorder = Recorder(self.store, self.run_id, log=lambda message: print(message, file=sys.stderr))
        self.recorder.running()
        self.recorder.event("start", f"TRL GRPOTrainer run streamed by SgpoCallback ({self.n_params:,} parameters)")
        self.counters = Counters()
        self.tokens_seen = float(getattr(state, "num_input_tokens_seen", 0) or 0)
        self.recorder.step(0, {**self.counters.totals(), "initial": True}, None, 0.0)
        self._watch_exceptions()

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """Every optimizer step, logged or not: its number, the tokens it processed and its time."""
        if self.run_id is None:
            return
        seen = float(getattr(state, "num_input_tokens_seen", 0) or 0)
        tokens, self.tokens_seen = max(0.0, seen - self.tokens_seen), seen
        self.pending.append((int(state.global_step), tokens, time.perf_counter() - self.step_began))

    def on_log(self, args, state, control, logs=None, **kwargs):
        """A log of TRL's covers the steps since the one before: each of them is stored with its own tokens and
        time, and the log's averages."""
        if self.run_id is None or "frac_reward_zero_std" not in (logs or {}):
            return
        self._flush(args, logs or {})

    def _flush(self, args, logs: dict) -> None:
        assert self.recorder is not None
        g = int(args.num_generations)
        world = max(1, int(getattr(args, "world_size", 1) or 1))
        rollouts = args.per_device_train_batch_size * world * args.gradient_accumulation_steps
        pending, self.pending = self.pending, []
        for step, tokens, seconds in pending:
            data, flops = trl_step(
                logs, group_size=g, prompts=max(1, rollouts // g), tokens=tokens, n_params=self.n_params, beta=self.beta
            )
            data["step_seconds"] = seconds
            if "frac_reward_zero_std" not in logs:  # no log covered it (training ended without one): not known
                data.update(wasted_rollouts=None, informative_groups=None, step_wasted_fraction=None)
                data.update(step_informative_fraction=None)
            row = self.counters.add(data, flops=flops, seconds=seconds)
            self.recorder.step(step, row, None, self.counters["wall_seconds"])

    def on_train_end(self, args, state, control, **kwargs):
        if self.run_id is None:
            return
        if self.pending:  # steps after the last log (TRL logs when training ends too: rarely any)
            self._flush(args, {})
        self._end(FINISHED, f"finished at step {state.global_step}", step=int(state.global_step))

    # endings ------------------------------------------------------------------------------------------
    def _end(self, status: str, message: str, step: int | None = None) -> None:
        self._restore_hooks()
        if self.run_id is None or self.recorder is None:
            return
        result = {"run_id": self.run_id, "status": status, "steps": step, **self.counters.totals()}
        if status == FAILED:
            self.recorder.failed(message)
            self.recorder.store.update_run(self.run_id, result=result)
        else:
            self.recorder.ended(result)
        self.run_id = None

    def _watch_exceptions(self) -> None:
        """An exception that ends the script marks the run failed with its message; so does an exit
        before training ended. Both hooks are removed again when the run ends (_restore_hooks)."""
        previous = sys.excepthook

        def hook(kind, exc, tb):
            self._end(FAILED, f"{kind.__name__}: {exc}")
            previous(kind, exc, tb)

        self._replaced = (hook, previous)
        sys.excepthook = hook
        atexit.register(self._exited_early)

    def _exited_early(self) -> None:
        self._end(FAILED, "the process exited before training ended")

    def _restore_hooks(self) -> None:
        """Put back the excepthook we replaced (unless someone replaced ours since) and drop our atexit hook."""
        if self._replaced is None:
            return
        hook, previous = self._replaced
        if sys.excepthook is hook:
            sys.excepthook = previous
        atexit.unregister(self._exited_early)
        self._replaced = None


# opt-in: every group's rewards and some completions too ----------------------------------------------------
class SgpoRolloutsCallback(SgpoCallback):
    """SgpoCallback that also stores each step's groups (rewards, completion lengths, the texts of
    `keep_completions` groups a step), shown on the dashboard's Rollouts page. TRL hands a callback no
    rollouts (on_log receives averaged metrics only), so your reward function hands them over: wrap it.

        callback = SgpoRolloutsCallback("runs/sgpo.db", name="my-run", keep_completions=2)
        trainer = GRPOTrainer(..., reward_funcs=callback.wrap(my_reward), callbacks=[callback])

    Wrap the reward whose values you want stored (with several reward functions, wrap one that returns
    their weighted sum, or the one that says success: a reward above 0.5 counts as one). A query is known by
    the dataset's `id` column when it has one, else by its prompt. The groups scored between two logged steps
    are stored with the later one, in their own transaction after its metrics row; only the main process's
    groups are stored."""

    def __init__(self, *args, keep_completions: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_completions = int(keep_completions)
        self.captures: list = []
        self.keys: dict[str, int] = {}  # a query's id (or prompt) -> its number in this run

    def wrap(self, reward_fn):
        """`reward_fn` (TRL's form, f(prompts, completions, **columns) -> list[float]) as it was, plus its
        groups kept for the next logged step."""
        capture = GroupCapture(reward_fn, group_size=2, keep=self.keep_completions, seed=0, query=self._query)
        self.captures.append(capture)
        return capture.reward_fn()

    def _query(self, columns: dict, i: int, prompt: str) -> tuple[int, dict]:
        ids = columns.get("id")
        name = str(ids[i]) if ids is not None else prompt
        key = self.keys.setdefault(name, len(self.keys))
        task = columns.get("task")
        return key, {
            "query": key,
            "query_id": name if ids is not None else f"prompt-{key}",
            "task": None if task is None else str(task[i]),
            "difficulty": None,
            "prompt": prompt,
        }

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        super().on_train_begin(args, state, control, model=model, **kwargs)
        for capture in self.captures:
            capture.group_size = int(args.num_generations)
            capture.seed = int(getattr(args, "seed", 0) or 0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        run_id = self.run_id
        before = self.store.find_run(run_id)["step"] if run_id is not None and self.store is not None else None
        out = super().on_log(args, state, control, logs=logs, **kwargs)
        if before is None or self.store is None:
            return out
        step = self.store.find_run(run_id)["step"]
        if step != before:  # the parent wrote a step: its groups go with it
            for capture in self.captures:
                groups = capture.take(step, None)
                if groups is not None and groups["groups"]:
                    self.store.log_groups(run_id, step, groups["groups"], groups["queries"])
        return out
