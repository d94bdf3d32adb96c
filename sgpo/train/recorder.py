"""Every write a training run makes to the store, in one unit: its status, events and metric rows.

    recorder = Recorder(store, run_id, log=print)     # the main process only (sgpo/train/loop.py)
    recorder.running()                                 # created/stopped/failed -> running, with this pid
    recorder.event("start", "grpo run started"); recorder.warn("...")
    recorder.step(3, row, eval_row, wall_seconds)      # one step's metrics (and evaluation, and groups), by step
    recorder.first_epoch(5, made)                      # a first epoch's profile and plan (what step() does with them)
    recorder.ended(result)                             # -> finished or stopped, with the result
    recorder.failed("RuntimeError: ...")               # -> failed, the reason as an event

The status machine: a run is `created`, then `running` while a process trains it, then `finished` (its
budget spent), `stopped` (a stop was asked for; it can resume) or `failed` (the reason is its last event).
Only the main process has a recorder; other ranks open the store read-only (Store(readonly=True)), so a
write from them fails whatever method it goes through. Steps are upserted by step number: a step
replayed after a resume overwrites its row, never duplicates it. A step's groups (sgpo/train/rollouts.py:
rewards, lengths, the kept completion texts) ride in its row under ROLLOUTS_KEY; `step` takes them out of the
row (they go neither into the metrics JSON nor into a checkpoint's state) and writes them in the same
transaction as the row, replacing the step's earlier ones. The step at which a --plan-from-first-epoch run
switches to its plan carries the profile and plan its first epoch made (sgpo/train/first_epoch.py) under
FIRST_EPOCH_KEY: `first_epoch` stores them once (a replayed step finds its profile by key).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from sgpo.errors import StoreError
from sgpo.store import Store
from sgpo.train.batches import FIRST_EPOCH_KEY
from sgpo.train.rollouts import ROLLOUTS_KEY
from sgpo.vocab import FAILED, FINISHED, PROFILE_DONE, RUNNING

# A run that wastes every rollout (every group's rewards equal) for WASTED_STREAK steps in a row says so once,
# in its log and as a WASTED_EVENT event the Train page shows. Why 20: a step of the default 256 rollouts holds
# 32 groups of 8, and if even 10% of groups were informative, a fully wasted step would come by chance 3% of the
# time (0.9^32) and 20 in a row about once in 10^30 runs: a streak of 20 means nothing is learnable, not bad
# luck. And 20 steps are a fifth of the default 100: the user hears it while most of the budget is unspent.
WASTED_STREAK = 20
WASTED_EVENT = "all_wasted"
FIRST_EPOCH_EVENT = "first_epoch"  # a --plan-from-first-epoch run's profile and plan were made (Recorder.first_epoch)


class Recorder:
    def __init__(self, store: Store, run_id: int, log: Callable[[str], None]):
        self.store, self.run_id, self.log = store, run_id, log
        self.wasted_since: int | None = None  # first step of the current streak of fully wasted steps
        self.last_step = 0  # the latest step counted (a step recorded again, with its evaluation, counts once)

    def running(self) -> None:
        self.store.update_run(self.run_id, status=RUNNING, pid=os.getpid())

    def started_before(self) -> bool:
        """A start event exists: this start is a restart from step 0 (no checkpoint was kept)."""
        return any(e["kind"] == "start" for e in self.store.events(self.run_id))

    def event(self, kind: str, message: str) -> None:
        self.store.event(self.run_id, kind, message)

    def warn(self, message: str) -> None:
        self.store.event(self.run_id, "warning", message)
        self.log(f"warning: {message}")

    def step(self, step: int, row: dict, eval_row: dict | None, wall_seconds: float) -> None:
        rollouts = row.pop(ROLLOUTS_KEY, None) or {}  # absent (a re-recorded last step): its groups stay
        made = row.pop(FIRST_EPOCH_KEY, None)
        self.store.log_step(self.run_id, step, int(row.get("phase", 0) or 0), wall_seconds, row, eval_row, **rollouts)
        if made:
            self.first_epoch(step, made)
        self._count_waste(step, row)

    def first_epoch(self, step: int, made: dict) -> None:
        """--plan-from-first-epoch's switch (sgpo/train/first_epoch.py): the first epoch's counts stored as a profile
        of the run (once: a step replayed after a resume finds it by its key), the plan made from them stored with
        the run (its profile_id and plan, as a run created from a profile has them), and the words as an event."""
        store = self.store
        store.record_dataset(**made["dataset"])
        found = store.profile_by_key(made["profile"]["key"])
        profile_id = found["id"] if found is not None else store.create_profile(made["profile"])
        if not store.profiled_positions(profile_id):
            store.add_profile_batch(profile_id, made["queries"], {"status": PROFILE_DONE})
        store.update_run(self.run_id, profile_id=profile_id, plan=json.dumps(made["plan"], default=float))
        self.event(FIRST_EPOCH_EVENT, f"step {step}: {made['words']}")

    def _count_waste(self, step: int, row: dict) -> None:
        """Say once when WASTED_STREAK steps in a row wasted every rollout (see WASTED_STREAK)."""
        if step <= self.last_step or row.get("initial"):
            return
        self.last_step = step
        rollouts = row.get("rollouts") or 0
        if not rollouts or (row.get("wasted_rollouts") or 0) < rollouts:
            self.wasted_since = None
            return
        self.wasted_since = self.wasted_since or step
        if step - self.wasted_since + 1 == WASTED_STREAK:
            message = (
                f"every rollout of the last {WASTED_STREAK} steps ({self.wasted_since}-{step}) was wasted: in every "
                f"group all rewards were equal, so nothing is being learned; stop the run, and plan on data "
                f"nearer the model's level (sgpo plan shows how many queries are learnable)"
            )
            self.store.event(self.run_id, WASTED_EVENT, message)
            self.log(f"warning: {message}")

    def ended(self, result: dict) -> None:
        """`finished` or `stopped` (result["status"]), the result stored, the pid cleared."""
        status = result["status"]
        self.store.update_run(
            self.run_id,
            status=status,
            result=result,
            pid=None,
            **({"finished": time.time()} if status == FINISHED else {}),
        )
        self.store.event(self.run_id, status, f"{status} at step {result['steps']}")

    def failed(self, message: str) -> None:
        """Status `failed` with the reason as an event; when the store is what failed, the log only."""
        try:
            self.store.update_run(self.run_id, status=FAILED, pid=None)
            self.store.event(self.run_id, FAILED, message)
        except StoreError as exc:
            self.log(f"could not mark the run failed ({exc}): {message}")
