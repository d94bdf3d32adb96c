"""Real processes: kill -9 at arbitrary moments then `--resume` gives the uninterrupted run's metrics
(no gap, no duplicate step) and bit-identical final weights; `--detach` + `sgpo runs stop` stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from sgpo.store import Store
from tests.toys import toy_cli_args

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--strategy", "grpo", "--steps", 16, "--eval-every", 5, "--checkpoint-every", 3, "--name", "k"]


def sgpo(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "sgpo", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw
    )


def _step(db: Path) -> int:
    if not db.exists():
        return -1
    try:
        rows = Store(db, readonly=True).runs()
    except Exception:  # the schema is being created
        return -1
    return rows[0]["step"] if rows else -1


def _kill_when(proc, db: Path, at_step: int, timeout=120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if _step(db) >= at_step:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return _step(db)
        time.sleep(0.01)
    raise AssertionError(f"the run ended before step {at_step}: {proc.communicate()[1].decode()[-2000:]}")


def _weights(result):
    return load_file(str(Path(result["checkpoint"]) / "model.safetensors"))


@pytest.mark.slow
def test_kill_9_twice_then_resume_matches_an_uninterrupted_run(toy, tmp_path, cli):
    db_a, db_b = tmp_path / "a" / "sgpo.db", tmp_path / "b" / "sgpo.db"
    for db in (db_a, db_b):  # --db names a database in a folder that exists
        db.parent.mkdir()
    code, out, err = cli("train", *ARGS, *toy_cli_args(toy), "--db", db_a, "--json")  # same code, in-process
    assert code == 0, err
    expected = json.loads(out)

    first = sgpo("train", *ARGS, *toy_cli_args(toy), "--db", db_b)
    killed_at = [_kill_when(first, db_b, 4)]
    assert Store(db_b).find_run("k")["status"] == "running"  # killed: nobody updated it
    again = sgpo("train", "--resume", "k", "--db", db_b)
    killed_at.append(_kill_when(again, db_b, 11))
    final = sgpo("train", "--resume", "k", "--db", db_b, "--json")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)
    assert result["status"] == "finished" and result["steps"] == 16, killed_at

    wa, wb = _weights(expected), _weights(result)
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    ma, mb = Store(db_a).metrics_frame(1), Store(db_b).metrics_frame(1)
    assert mb["step"].tolist() == list(range(17))  # no gap, no duplicate
    cols = ["reward_mean", "loss", "grad_norm", "flops_total", "wasted_rollouts", "run_wasted_fraction", "entropy"]
    np.testing.assert_array_equal(ma[cols].to_numpy(float), mb[cols].to_numpy(float))
    ea, eb = Store(db_a).evals_frame(1), Store(db_b).evals_frame(1)
    assert eb["step"].tolist() == [0, 5, 10, 15, 16]
    np.testing.assert_array_equal(ea["accuracy"].to_numpy(), eb["accuracy"].to_numpy())
    assert result["flops_total"] == expected["flops_total"]
    kinds = [e["kind"] for e in Store(db_b).events(1)]
    assert kinds.count("resume") == 2


@pytest.mark.slow
def test_detach_then_runs_stop_finishes_the_step_and_checkpoints(toy, tmp_path, cli):
    db = tmp_path / "sgpo.db"
    code, out, err = cli("train", *ARGS, "--steps", 400, *toy_cli_args(toy), "--db", db, "--detach", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["pid"] and Path(info["log_path"]).parent == tmp_path / "logs"
    deadline = time.time() + 120
    while _step(db) < 2 and time.time() < deadline:
        time.sleep(0.05)
    code, out, _ = cli("runs", "--db", db, "--json")
    runs = json.loads(out)["runs"]
    assert runs[0]["status"] == "running" and runs[0]["alive"] and runs[0]["pid"] == info["pid"]
    code, out, err = cli("runs", "stop", "k", "--db", db, "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "stopped"
    run = Store(db).find_run("k")
    assert run["status"] == "stopped" and run["pid"] is None and 2 <= run["step"] < 400
    ckpt = (tmp_path / "checkpoints" / "k" / "latest").read_text().strip()
    assert ckpt == f"step-{run['step']:06d}"  # it finished its step and checkpointed there
    assert "signal SIGTERM" in Path(info["log_path"]).read_text()
    code, _, err = cli("runs", "stop", "k", "--db", db)
    assert code == 2 and "not running" in err
