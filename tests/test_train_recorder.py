"""Every store write of a run goes through its recorder, which only the main process has; the other ranks'
store is read-only at the SQLite level, so no write method can slip through."""

from __future__ import annotations

import sqlite3

import pytest

from sgpo.errors import StoreError
from sgpo.store import Store
from sgpo.train.loop import Trainer
from sgpo.train.recorder import Recorder
from sgpo.train.setup import prepare
from tests.toys import toy_config


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "sgpo.db")


def _run(store) -> int:
    return store.create_run(name="r", strategy="grpo", config={})


def test_the_status_machine_running_then_finished_or_stopped(store):
    logged = []
    rec = Recorder(store, _run(store), logged.append)
    rec.running()
    assert store.find_run("r")["status"] == "running" and store.find_run("r")["pid"]
    assert not rec.started_before()
    rec.event("start", "grpo run started")
    assert rec.started_before()
    rec.warn("a warning")
    rec.step(1, {"phase": 2, "reward_mean": 0.5}, {"flops_total": 1.0, "accuracy": 0.3, "data": {}}, 4.0)
    rec.step(1, {"phase": 2, "reward_mean": 0.75}, None, 5.0)  # a replayed step overwrites its row
    m = store.metrics_frame(1)
    assert m["step"].tolist() == [1] and m["reward_mean"].tolist() == [0.75] and m["phase"].tolist() == [2]
    rec.ended({"status": "stopped", "steps": 1})
    run = store.find_run("r")
    assert run["status"] == "stopped" and run["pid"] is None and run["finished"] is None
    rec.ended({"status": "finished", "steps": 1})
    assert store.find_run("r")["finished"] is not None
    kinds = [(e["kind"], e["message"]) for e in store.events(1)]
    assert kinds == [
        ("start", "grpo run started"),
        ("warning", "a warning"),
        ("stopped", "stopped at step 1"),
        ("finished", "finished at step 1"),
    ]
    assert logged == ["warning: a warning"]


def test_a_failure_is_marked_with_its_reason_or_logged_when_the_store_is_what_failed(store, tmp_path):
    logged = []
    rec = Recorder(store, _run(store), logged.append)
    rec.failed("RuntimeError: boom")
    assert store.find_run("r")["status"] == "failed" and store.events(1)[-1]["message"] == "RuntimeError: boom"
    Recorder(Store(store.path, readonly=True), 1, logged.append).failed("disk full")
    assert len(logged) == 1 and "could not mark the run failed" in logged[0] and logged[0].endswith("disk full")


def test_a_read_only_store_refuses_a_write_through_any_method(store):
    run_id = _run(store)
    ro = Store(store.path, readonly=True)
    assert ro.find_run("r")["id"] == run_id  # reads work
    writes = [  # none of these was on the old wrapper's list of write methods
        lambda: ro.record_dataset(hash="h", spec="s", path="p", rows=1, fields=["prompt"]),
        lambda: ro.save_plan(name="p", profile_id=1, config={}, counts={}, forecast={}),
        lambda: ro.db["runs"].update(run_id, {"status": "failed"}),  # even past the Store's own methods
        lambda: ro.db.execute("DELETE FROM runs"),
    ]
    for write in writes:
        with pytest.raises((StoreError, sqlite3.OperationalError), match="readonly database"):
            write()
    assert store.find_run("r")["status"] == "created" and store.plans() == []


def test_a_non_main_rank_has_no_recorder_and_a_store_that_cannot_write(toy, store, monkeypatch):
    prep = prepare(toy_config(toy, eval_every=2), store, name="ranked")
    run_id = store.create_run(**prep.run_row())
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    trainer = Trainer(prep, store, run_id, log=lambda msg: None)
    assert trainer.recorder is None and trainer.evaluator is None  # the main process writes and evaluates
    with pytest.raises(StoreError, match="could not write"):
        trainer.store.record_dataset(hash="h", spec="s", path="p", rows=1, fields=["prompt"])
    with pytest.raises(StoreError, match="could not write"):
        trainer.store.update_run(run_id, status="failed")
    assert trainer.store.find_run(run_id)["status"] == "created"
