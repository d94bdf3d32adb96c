"""The run lifecycle, as library calls. `sgpo train`, `sgpo runs ...` and the dashboard only call these.

    from sgpo import runs
    runs.create(TrainConfig(strategy="grpo", steps=50), store, name="baseline")   # checked; the plan stored once
    runs.start("baseline", store, detach=True)      # a worker process with a log; detach=False trains here
    runs.status("baseline", store)["status"]        # created, running, stopped, finished, failed, interrupted
    runs.metrics("baseline", store)                 # one row per logged step, the vocabulary's names
    runs.stop("baseline", store)                    # finish the step in flight, checkpoint, 'stopped'
    runs.resume("baseline", store, detach=True)     # from the latest checkpoint

A run is created once: `create` validates everything and makes the plan, and the process that trains
(`work`) reads both back from the store. `interrupted` is not stored: it is how a run marked running
(or started) whose process is gone is shown, until it is resumed or stopped. Each run keeps its
checkpoints in `checkpoints/NAME/` and its worker log in `logs/NAME.log`, beside the store.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd

from sgpo import launch
from sgpo.distributed import main_reports, on_every_rank, on_main, rank_and_world
from sgpo.errors import BackendError, ConfigError
from sgpo.paths import run_log
from sgpo.store import Store
from sgpo.train.loop import Trainer
from sgpo.train.setup import load, prepare
from sgpo.vocab import ACTIVE_STATUSES, CREATED, FINISHED, INTERRUPTED, RUNNING, STOPPED


def create(config, store: Store | Path, *, name: str | None = None) -> dict:
    """Check a TrainConfig against the store, its data, model and profile, make its plan, and store the
    run (status `created`). Nothing is written when a check fails: given the store's path rather than an
    open Store, a refused run does not even create the database. Returns the run's row, with the warnings
    (also kept as the run's events). Under `accelerate launch` the main process creates the run and every
    process gets its row."""
    if rank_and_world()[1] > 1:
        with main_reports():  # said once, by the main process
            if config.engine != "trl":
                raise ConfigError(
                    "several processes train one run with --engine trl (TRL's GRPOTrainer under "
                    "accelerate); the native engine runs in one process"
                )
        run_id = on_main(lambda: _create(config, store, name)["id"], device=config.device)
        opened = store if isinstance(store, Store) else Store(Path(store), readonly=True)
        return {**opened.find_run(run_id), "warnings": []}
    return _create(config, store, name)


def _create(config, store: Store | Path, name: str | None) -> dict:
    if not isinstance(store, Store):
        path = Path(store)
        prep = prepare(config, Store(path, readonly=True) if path.exists() else None, name=name, db_path=path)
        store = Store(path)
    else:
        prep = prepare(config, store, name=name)
    run_id = store.create_run(**prep.run_row())
    for warning in prep.warnings:
        store.event(run_id, "warning", warning)
    return {**store.find_run(run_id), "warnings": prep.warnings}


def start(ref: str | int, store: Store, *, detach: bool = False, log=None) -> dict:
    """Train a created run: here until its budget is spent (returns the result), or in a detached worker
    (returns run_id, run_name, pid, log_path at once)."""
    run = store.find_run(ref)
    if rank_and_world()[0] > 0:  # another rank of a launch whose main process owns the run's status
        return work(run["id"], store, log=log)
    if run["status"] != CREATED:
        raise ConfigError(
            f"run {run['name']!r} is {shown_status(run)}, not created: `sgpo runs resume {run['name']}` continues it"
        )
    return _launch(run, store, "start", detach, log)


def resume(ref: str | int, store: Store, *, detach: bool = False, log=None) -> dict:
    """Continue a run from its latest checkpoint (from step 0 if it has none): stopped, failed,
    interrupted, or created and never started."""
    run = store.find_run(ref)
    if rank_and_world()[0] > 0:
        return work(run["id"], store, log=log)
    check_resumable(run)
    return _launch(run, store, "resume", detach, log)


def train(config, store: Store, *, name: str | None = None, log=None) -> dict:
    """create + start in this process: the result dict of the finished run."""
    return start(create(config, store, name=name)["id"], store, log=log)


def work(ref: str | int, store: Store, *, log=None) -> dict:
    """Train the run in this process, from its latest checkpoint, to its budget or a stop request. Under
    `accelerate launch` every process does, once every one has loaded the run (sgpo.distributed)."""
    run = store.find_run(ref)
    device = run["config"].get("device", "auto")
    trainer = on_every_rank(lambda: Trainer(load(run, store), store, run["id"], log=log), device=device)
    return trainer.run()


def _launch(run: dict, store: Store, verb: str, detach: bool, log) -> dict:
    python = launch.vllm_rerun_python(run["config"].get("backend", "hf"))
    argv = ["runs", verb, run["id"], "--db", store.path.resolve()]
    if detach:
        path = run_log(store, run["name"])
        proc = launch.detach(launch.sgpo_argv(*argv, python=python), path)
        store.update_run(run["id"], pid=proc.pid, log_path=str(path))
        return {
            "run_id": run["id"],
            "run_name": run["name"],
            "pid": proc.pid,
            "status": "started",
            "log_path": str(path),
        }
    if python:  # train under the interpreter that has vLLM, streaming its output through ours
        code = launch.rerun(python, argv, stdout_to_stderr=True)
        if code:
            raise BackendError(
                f"training under {python} failed (exit code {code}); its error is above. The run "
                f"can continue with `sgpo runs resume {run['name']}`"
            )
        return store.find_run(run["id"])["result"]
    return work(run["id"], store, log=log)


def check_resumable(run: dict) -> None:
    """A finished run cannot resume; a live one must not be run twice."""
    if run["status"] == FINISHED:
        raise ConfigError(
            f"run {run['name']!r} finished at step {run['step']}; start a new run (another --name) to train further"
        )
    pid = run.get("pid")
    if run["status"] in ACTIVE_STATUSES and pid and pid != os.getpid() and launch.pid_alive(pid):
        raise ConfigError(
            f"run {run['name']!r} is running now (pid {pid}); stop it first with `sgpo runs stop {run['name']}`"
        )


def shown_status(run: dict) -> str:
    """The stored status, except that a started run whose process is gone is `interrupted`."""
    started = run["status"] == RUNNING or (run["status"] == CREATED and run.get("pid"))
    if started and not launch.pid_alive(run.get("pid")):
        return INTERRUPTED
    return run["status"]


def status(ref: str | int, store: Store) -> dict:
    """The run's row with its shown status and whether its process is alive."""
    run = store.find_run(ref)
    return {
        **run,
        "status": shown_status(run),
        "stored_status": run["status"],
        "alive": launch.pid_alive(run.get("pid")),
    }


def list_runs(store: Store) -> list[dict]:
    """Every run, oldest first, with shown status and liveness (config and plan left out: they are large)."""
    out = []
    for r in store.runs():
        r = {k: v for k, v in r.items() if k not in ("config", "plan")}
        r["result"] = json.loads(r["result"]) if r.get("result") else None
        out.append(
            {**r, "status": shown_status(r), "stored_status": r["status"], "alive": launch.pid_alive(r.get("pid"))}
        )
    return out


def stop(ref: str | int, store: Store, *, wait: float = 120.0) -> dict:
    """Ask a run to stop: it finishes its step, checkpoints and ends `stopped`. With wait=0 this returns
    at once ('stopping'); a run whose process is gone is marked stopped."""
    run = store.find_run(ref)
    shown = shown_status(run)
    if shown not in ACTIVE_STATUSES + (INTERRUPTED,):
        raise ConfigError(f"run {run['name']!r} is not running (status {shown}); nothing to stop")
    pid = run.get("pid")
    if not pid or not launch.pid_alive(pid):
        store.update_run(run["id"], status=STOPPED, pid=None)
        store.event(run["id"], STOPPED, "marked stopped: its process was gone")
        return {"run_id": run["id"], "run_name": run["name"], "pid": pid, "status": STOPPED}
    os.kill(pid, signal.SIGTERM)
    deadline, state = time.time() + wait, "stopping"
    while wait and time.time() < deadline:
        state = store.find_run(run["id"])["status"]
        if state not in ACTIVE_STATUSES or not launch.pid_alive(pid):
            break
        time.sleep(0.5)
    if wait:
        state = shown_status(store.find_run(run["id"]))
    return {"run_id": run["id"], "run_name": run["name"], "pid": pid, "status": state}


def metrics(ref: str | int, store: Store, *, after_step: int = -1) -> pd.DataFrame:
    """One row per logged step after `after_step` (step 0 is the run's state before training)."""
    return store.metrics_frame(store.find_run(ref)["id"], after_step=after_step)


def evals(ref: str | int, store: Store) -> pd.DataFrame:
    """One row per held-out evaluation: step, flops_total, accuracy and its breakdowns."""
    return store.evals_frame(store.find_run(ref)["id"])
