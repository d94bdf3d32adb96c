import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sgpo.errors import SgpoError
from sgpo.launch import pid_alive
from sgpo.store import Store

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT / "data" / "gsm8k" / "test.jsonl"  # vendored, MIT (data/gsm8k/README.md)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "sgpo.db"


@pytest.fixture
def cli(capsys):
    """Run the sgpo CLI in-process: returns (exit code, stdout, stderr)."""
    from sgpo.cli.main import main

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def require_gsm8k():
    """The vendored GSM8K test split: part of the repository, so a missing file is a failure, never a skip."""
    assert GSM8K.is_file(), f"GSM8K test split missing at {GSM8K}: it is vendored in the repository"
    return GSM8K


def require_browser():
    from bench.browser import browser_problem

    problem = browser_problem()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)


def vllm_interpreter() -> str:
    from sgpo.generate.vllm import VLLM_VENV_PYTHON, vllm_importable, vllm_python

    if vllm_importable():
        return sys.executable
    python = vllm_python()
    if python:
        return python
    message = f"vLLM is not installed: {VLLM_VENV_PYTHON} is missing (run `make setup-vllm`)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


# shared fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine two OpenMP threads spin-wait on each other and tiny
    models generate 10-20x slower. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A tiny model and a toy dataset on which it succeeds about half the time."""
    from tests.toys import tiny_model_dir, toy_dataset

    d = tmp_path_factory.mktemp("toy")
    model = tiny_model_dir(d / "m")
    return SimpleNamespace(dir=d, model=model, data=toy_dataset(d / "toy.jsonl", model))


@pytest.fixture(scope="session")
def stop_after():
    """stop_after(trainer, step): the run is asked to stop once step `step` is recorded, as SIGTERM would
    ask it (it finishes that step, checkpoints and ends `stopped`)."""

    def arm(trainer, step: int):
        session, record = trainer.session, trainer.session.record

        def recording(*args, **kwargs):
            row = record(*args, **kwargs)
            if session.step == step:
                session.request_stop()
            return row

        session.record = recording
        return trainer

    return arm


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """A tmp store behind $SGPO_DB, no automatic first profile, local paths allowed in tmp_path and the checkout
    (sgpo.paths.allowed_roots). Afterwards, any worker the store records
    as alive (a profile or run the test started for real) is killed: the store, not the dashboard, knows them."""
    db = tmp_path / "sgpo.db"
    monkeypatch.setenv("SGPO_DB", str(db))
    monkeypatch.setenv("SGPO_AUTOPROFILE", "0")
    monkeypatch.setenv("SGPO_ALLOWED_ROOTS", os.pathsep.join([str(tmp_path), str(ROOT)]))  # the test's files
    yield db
    try:
        s = Store(db, readonly=True)
    except SgpoError:  # none was made, or the test broke it on purpose
        return
    rows = s.profiles() + s.runs()
    s.close()
    for row in rows:
        if row.get("pid") and row["pid"] != os.getpid() and pid_alive(row["pid"]):
            os.kill(row["pid"], signal.SIGKILL)
