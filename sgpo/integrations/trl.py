"""Watch any TRL GRPOTrainer run in the dashboard: one line in your own training script.

    from sgpo.integrations.trl import SgpoCallback
    trainer = GRPOTrainer(..., callbacks=[SgpoCallback("runs/sgpo.db", name="my-run")])

Every logged step becomes a step of the run in the store, under the same names as a native run
(sgpo/vocab.py; the row is sgpo.train.metrics.trl_step's, as for `--engine trl`): reward, reward std,
wasted rollouts (TRL's `frac_reward_zero_std` x the step's rollouts), informative groups, tokens (TRL's
cumulative `num_tokens`, differenced), FLOPs with TRL's accounting (sgpo/accounting.py: every completion is
trained, 2 x params x tokens to generate, 6 x to train, + 2 x for the reference forward when beta > 0),
entropy, completion lengths, clip ratios and step time. Each row also prices the run as if zero-advantage
groups had been skipped (`flops_total_skip`): TRL gives no tokens per group, so the informative groups'
tokens are taken as tokens x (1 - frac_reward_zero_std).

The run ends `finished`, or `failed` with the exception's message. To see an exception that ends the
script, the callback puts its own sys.excepthook and an atexit hook in place when training begins, and
puts back what was there when training ends or fails. Only the main process writes. Set
`logging_steps=1` to get every step (TRL averages the steps between two logs otherwise).
"""

from __future__ import annotations

import atexit
import os
import sys
import time

from transformers import TrainerCallback

from sgpo.accounting import Counters
from sgpo.store import Store, check_name, default_path
from sgpo.train.metrics import trl_step
from sgpo.train.trl_callback import GroupCapture
from sgpo.vocab import FAILED, FINISHED, RUNNING


class SgpoCallback(TrainerCallback):
    def __init__(self, db: str | os.PathLike | None = None, *, name: str | None = None, strategy: str = "grpo"):
        self.path = default_path(db)
        self.name = check_name(name, "run") if name else None
        self.strategy = strategy
        self.store = self.run_id = None
        self.counters, self.last_tokens, self.n_params, self.beta = None, 0.0, 0, 0.0
        self._replaced: tuple | None = None  # (our excepthook, the one it replaced) while training runs

    # lifecycle --------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self.store = Store(self.path)
        self.n_params = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) if model else 0
        self.beta = float(getattr(args, "beta", 0.0) or 0.0)
        name = self.name or f"trl-{time.strftime('%Y%m%d-%H%M%S')}"
        config = {
            "engine": "trl-callback",
            "model": getattr(getattr(model, "config", None), "_name_or_path", None),
            **{
                k: getattr(args, k, None)
                for k in (
                    "num_generations",
                    "per_device_train_batch_size",
                    "gradient_accumulation_steps",
                    "learning_rate",
                    "beta",
                    "max_steps",
                    "temperature",
                    "seed",
                    "loss_type",
                )
            },
        }
        self.run_id = self.store.create_run(name=name, strategy=self.strategy, config=config)
        self.store.update_run(self.run_id, status=RUNNING, pid=os.getpid())
        self.store.event(
            self.run_id, "start", f"TRL GRPOTrainer run streamed by SgpoCallback ({self.n_params:,} parameters)"
        )
        self.counters = Counters()
        self.store.log_step(self.run_id, 0, 0, 0.0, {**self.counters.totals(), "initial": True})
        self._watch_exceptions()

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if self.run_id is None or "frac_reward_zero_std" not in logs:
            return
        g = int(args.num_generations)
        world = max(1, int(getattr(args, "world_size", 1) or 1))
        rollouts = args.per_device_train_batch_size * world * args.gradient_accumulation_steps
        tokens = float(logs.get("num_tokens", self.last_tokens)) - self.last_tokens
        self.last_tokens = float(logs.get("num_tokens", self.last_tokens))
        data, flops = trl_step(
            logs, group_size=g, prompts=max(1, rollouts // g), tokens=tokens, n_params=self.n_params, beta=self.beta
        )
        row = self.counters.add(data, flops=flops, seconds=data["step_seconds"] or 0.0)
        self.store.log_step(self.run_id, int(state.global_step), 0, self.counters["wall_seconds"], row)

    def on_train_end(self, args, state, control, **kwargs):
        if self.run_id is None:
            return
        self._end(FINISHED, f"finished at step {state.global_step}", step=int(state.global_step))

    # endings ------------------------------------------------------------------------------------------
    def _end(self, status: str, message: str, step: int | None = None) -> None:
        self._restore_hooks()
        if self.run_id is None:
            return
        result = {"run_id": self.run_id, "status": status, "steps": step, **self.counters.totals()}
        self.store.update_run(
            self.run_id,
            status=status,
            pid=None,
            result=result,
            **({"finished": time.time()} if status == FINISHED else {}),
        )
        self.store.event(self.run_id, status, message)
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
