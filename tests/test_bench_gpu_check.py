"""bench/gpu_check.py --smoke runs the GPU check's whole path on CPU with a tiny model and prints its figures."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_gpu_check_smoke_prints_one_json_summary():
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["device"] == "cpu" and summary["n_params"] > 0
    assert summary["profile"]["completions_per_s"] > 0
    for engine in ("native", "trl"):
        assert summary[engine]["step_seconds"] > 0 and summary[engine]["rollouts_per_s"] > 0
