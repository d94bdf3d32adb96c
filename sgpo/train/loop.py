"""One run in this process, from its start (or its latest checkpoint) to the end of its budget or a stop:
the units of sgpo/train wired together. `sgpo.runs.work` is the entry point.

    result = Trainer(setup.load(run, store), store, run["id"]).run()

    engine      sgpo/train/native.py, trl_engine.py   the model; drives its steps (the seam: engine.py)
    session     sgpo/train/session.py                 step count, run totals, budget, stop flag: the step sink
    evaluator   sgpo/train/evaluate.py                held-out accuracy when due (main process)
    recorder    sgpo/train/recorder.py                every store write: status, events, metric rows (main)
    checkpoints sgpo/train/checkpoint.py              every part's state, atomically (main)
    signals     sgpo/train/signals.py                 SIGTERM / Ctrl-C: finish the step, checkpoint, `stopped`

Each step's generation seed is `seed * STEP_SEED + step`, and every other source of randomness is either
keyed by position (data order) or restored from the checkpoint, so a run killed at any moment and resumed
replays the lost steps exactly: same metrics (upserted by step, so no gap and no duplicate) and, on CPU,
bit-identical final weights. Accounting (docs/METHOD.md) is sgpo/accounting.py's: rollouts 2 x params x
tokens, training 6 x (+ 2 x for the reference forward when beta > 0), profiling counted from step 0,
evaluation kept apart. Under `accelerate launch` every process trains; only the main one evaluates, writes
the store and checkpoints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from sgpo import paths
from sgpo.accounting import Counters
from sgpo.device import resolve_device, resolve_dtype
from sgpo.distributed import rank_and_world
from sgpo.errors import StoreError
from sgpo.store import Store
from sgpo.train import checkpoint
from sgpo.train.engine import Engine
from sgpo.train.evaluate import Evaluator
from sgpo.train.metrics import eval_row, progress_line
from sgpo.train.native import NativeEngine
from sgpo.train.recorder import Recorder
from sgpo.train.sampling import make_sampler, trl_phases
from sgpo.train.session import Session
from sgpo.train.setup import Prepared
from sgpo.train.signals import stop_on_signals
from sgpo.train.trl_engine import TRLEngine
from sgpo.vocab import FINISHED, STOPPED


def make_engine(prep: Prepared, *, weights: Path, root: Path, device: str, dtype, world: int = 1) -> Engine:
    """The run's engine, starting from `weights` (the model, or the checkpoint it resumes from)."""
    cfg, model = prep.config, prep.model
    if cfg.engine == "trl":
        return TRLEngine(
            cfg,
            model.path,
            weights=weights,
            device=device,
            dtype=dtype,
            phases=trl_phases(prep, world),
            dataset=prep.dataset,
            n_params=model.n_params,
            output_dir=root / "trl",
            world=world,
        )
    return NativeEngine(
        cfg,
        model.path,
        weights=weights,
        live_dir=root / "live",
        device=device,
        dtype=dtype,
        sampler=make_sampler(prep),
        dataset=prep.dataset,
        n_params=model.n_params,
    )


class Trainer:
    def __init__(self, prep: Prepared, store: Store, run_id: int, *, log=None):
        cfg = prep.config
        self.prep, self.cfg, self.run_id = prep, cfg, run_id
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        rank, world = rank_and_world()
        self.is_main = rank == 0
        # only the main process writes: the others read a store opened read-only, and have no recorder
        self.store = store if self.is_main else Store(store.path, readonly=True)
        self.recorder = Recorder(store, run_id, self.log) if self.is_main else None
        torch.set_num_threads(cfg.num_threads)
        self.root = paths.checkpoint_root(store, prep.run_name)
        self.checkpoint_warnings: list[str] = []  # a truncated or corrupt latest checkpoint, passed over
        self.resume_from = checkpoint.latest_checkpoint(self.root, warn=self.checkpoint_warnings.append)
        device = resolve_device(cfg.device)
        weights = self.resume_from or prep.model.path
        self.engine = make_engine(
            prep, weights=weights, root=self.root, device=device, dtype=resolve_dtype(cfg.dtype, device), world=world
        )
        self.counters = Counters(prep.flops_profile)
        self.session = Session(cfg, self.counters, after_step=self.after_step)
        self.evaluator = (
            Evaluator(cfg, prep.eval_dataset, self.engine.generator, self.counters, prep.model.n_params)
            if prep.eval_dataset is not None and self.is_main
            else None
        )
        self.saved_step = 0

    @property
    def parts(self) -> list:
        """What a checkpoint holds besides the engine's files: every part's state."""
        return [p for p in (self.session, self.evaluator, self.engine) if p is not None]

    # the run -----------------------------------------------------------------------------------------
    def run(self) -> dict:
        with stop_on_signals(self.session, self.log):
            if self.recorder:
                self.recorder.running()
            try:
                self._begin()
                self.engine.train(self.session)
                return self._end()
            except (StoreError, checkpoint.CheckpointError) as exc:  # full disk, read-only store: keep the checkpoint
                kept = checkpoint.latest_checkpoint(self.root, warn=self.log)
                name = self.prep.run_name
                message = (
                    f"run {name!r} stopped at step {self.session.step}: {exc}. Once the disk or store is writable "
                    f"again, `sgpo runs resume {name}` continues from {kept.name if kept else 'step 0'}, intact"
                )
                self._fail(message)
                raise type(exc)(message) from exc
            except BaseException as exc:
                self._fail(f"{type(exc).__name__}: {exc}")
                raise

    def _begin(self) -> None:
        """Running; from the latest checkpoint, or from step 0 with the evaluation before training."""
        rec, cfg = self.recorder, self.cfg
        if rec:
            for warning in self.checkpoint_warnings:
                rec.warn(warning)
        if self.resume_from is not None:
            pace = self.prep.phases[0].pacing if self.prep.phases else None
            step = checkpoint.restore_run(self.resume_from, self.engine, self.parts, pace)
            self.saved_step = step
            if rec:
                rec.event("resume", f"resumed from {self.resume_from.name} (step {step})")
                self.log(f"resumed from {self.resume_from} at step {step}; {self.prep.start_words()}")
            return
        torch.manual_seed(cfg.seed)  # torch's own RNG (dropout, if a model has it): seeded, so reproducible
        if rec:
            again = rec.started_before()
            said = (
                f"{cfg.strategy} run {'started again from step 0' if again else 'started'}: {self.prep.start_words()}"
            )
            rec.event("restart" if again else "start", said)
            self.log(said)
            for warning in self.prep.warnings:  # stored as the run's events when it was created (sgpo.runs.create)
                self.log(f"warning: {warning}")
            row = eval_row(self.evaluator.evaluate(0), self.counters) if self.evaluator else None
            rec.step(0, {**self.counters.totals(), "initial": True}, row, 0.0)

    def after_step(self, step: int, row: dict) -> None:
        """What every engine's step ends with: an evaluation when due, the metrics row, a checkpoint when due."""
        if not self.recorder:
            return
        for event in row.get("plan_events", []):
            self.log(event)
        evaluated = None
        if self.evaluator and self.evaluator.due(step):
            evaluated = eval_row(self.evaluator.evaluate(step), self.counters)
        self.recorder.step(step, row, evaluated, self.counters["wall_seconds"])
        every = max(1, (self.cfg.max_steps or 100) // 20)
        if step % every == 0 or evaluated is not None or step == 1:
            self.log(progress_line(step, row, evaluated))
        if step % self.cfg.checkpoint_every == 0:
            self._save(step)

    def _save(self, step: int) -> Path:
        path = checkpoint.save_run(self.root, step, self.engine, self.parts)
        self.saved_step = step
        return path

    def _end(self) -> dict:
        """The final evaluation (unless the last step had one), the final checkpoint, the result."""
        session, step = self.session, self.session.step
        finished = not session.stop_requested
        last, owed = session.last_data, self.evaluator is not None and self.evaluator.last_step != step
        if finished and owed and last is not None and self.evaluator and self.recorder:
            evaluated = eval_row(self.evaluator.evaluate(step), self.counters)
            self.recorder.step(step, last, evaluated, self.counters["wall_seconds"])
        latest = checkpoint.latest_checkpoint(self.root)
        if not self.is_main or (self.saved_step == step and latest is not None):
            path = latest
        else:
            path = self._save(step)
        result = self.result(FINISHED if finished else STOPPED, path)
        if self.recorder:
            self.recorder.ended(result)
        return result

    def _fail(self, message: str) -> None:
        if self.recorder:
            self.recorder.failed(message)

    def result(self, status: str, path: Path | None) -> dict:
        last = self.evaluator.last if self.evaluator and self.evaluator.last else {}
        first = self.store.evals_frame(self.run_id)
        initial = first.iloc[0] if len(first) else None
        return {
            "run_id": self.run_id,
            "run_name": self.prep.run_name,
            "status": status,
            "strategy": self.cfg.strategy,
            "steps": self.session.step,
            **self.counters.totals(),
            "wall_seconds": self.counters["wall_seconds"],
            "eval_accuracy": last.get("accuracy"),
            "eval_greedy_accuracy": last.get("greedy_accuracy"),
            "eval_middle_accuracy": last.get("by_band", {}).get("middle"),
            "eval_accuracy_initial": float(initial["accuracy"]) if initial is not None else None,
            "eval_middle_accuracy_initial": _get(initial, "by_band.middle"),
            "checkpoint": str(path) if path else None,
        }


def _get(row, key):
    if row is None or key not in row.index:
        return None
    value = row[key]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
