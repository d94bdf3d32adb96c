"""Shared builders for the dashboard tests (no tests here): a store filled through the Store API with
synthetic profiles and runs, and an AppTest of the whole app pointed at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.synthetic import fill_big_profile, fill_profile, fill_run  # noqa: F401 (re-exported)

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """A tmp store behind $SGPO_DB, no automatic first profile, and a clean job registry."""
    from dashboard import processes

    db = tmp_path / "sgpo.db"
    monkeypatch.setenv("SGPO_DB", str(db))
    monkeypatch.setenv("SGPO_AUTOPROFILE", "0")
    monkeypatch.setattr(processes, "_JOBS", [])
    yield db
    for job in processes._JOBS:
        if job.running:
            job.proc.kill()
            job.proc.wait()


def app(page: str | None = None):
    """A fresh AppTest of the whole app, run once, switched to views/<page>.py if given."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    return at


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def no_exception(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


class Launched(list):
    """Stands in for processes.launch: records (kind, name, argv) and starts nothing."""

    def __call__(self, kind, name, argv):
        self.append((kind, name, argv))
        return None


class Started(list):
    """Stands in for sgpo.runs.start / resume: records (verb, run ref, detach) and starts no worker."""

    def __init__(self, verb):
        super().__init__()
        self.verb = verb

    def __call__(self, ref, store, *, detach=False, log=None):
        self.append((self.verb, ref, detach))
        run = store.find_run(ref)
        return {"run_id": run["id"], "run_name": run["name"], "pid": 0, "status": "started", "log_path": ""}
