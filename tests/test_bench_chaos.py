"""The fault and load benches at their --quick size: SIGKILL at random moments loses, duplicates and changes
nothing; a truncated checkpoint and a full disk are survived; dashboard readers never meet a lock."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _bench(*args: str) -> dict:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode in (0, 1), out.stderr[-3000:]  # 1: the bench ran and found something, shown below
    return json.loads(out.stdout)


@pytest.mark.slow
def test_profiler_and_trainer_killed_at_random_moments_end_as_an_uninterrupted_run():
    summary = _bench("bench/chaos.py", "--quick")
    assert summary["mismatches"] == 0, json.dumps(summary, indent=1)
    # kill moments are drawn from the uninterrupted reference's timing; on a loaded machine a short job can
    # finish before its kill lands, so the test asks for some kills, not for every one
    assert summary["kills"]["profile"] + summary["kills"]["train"] >= 1, json.dumps(summary["kills"])
    disk = summary["faults"]["full_disk"]
    assert disk["exit_code"] == 2 and disk["error"].startswith("error: run 'f' stopped at step")
    assert disk["latest_intact"] and disk["latest_after"] == disk["latest_before"]
    assert summary["faults"]["corrupt_latest"]["warning_event"]


@pytest.mark.slow
def test_dashboard_sessions_polling_a_writing_trainer_meet_no_lock():
    summary = _bench("bench/store_load.py", "--quick")
    assert summary["lock_errors"] == 0 and summary["errors"] == 0, json.dumps(summary, indent=1)
    assert summary["writer"]["steps_per_s_alone"] > 0 and summary["writer"]["steps_per_s_with_readers"] > 0
    assert summary["dashboard"]["lag_s"]["n"] > 0
