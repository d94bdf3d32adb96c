"""The README's Python API example runs as written: profile -> plan -> start -> watch -> stop -> resume."""

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

MARK = "<!-- example:python-api -->"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(re.escape(MARK) + r"\s*```python\n(.*?)```", text, re.S)
    assert block, f"README.md has no python block after {MARK}"
    return block.group(1)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_python_api_example_runs_as_written(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "'status': 'stopped'" in out or "'status': 'stopping'" in out, out
    assert re.search(r"^finished 60 0\.\d+ 0\.\d+$", out, re.M), out
    from sgpo.store import Store

    store = Store(tmp_path / "runs" / "example.db")
    run = store.find_run("example-run")
    assert run["status"] == "finished" and run["step"] == 60
    events = [e["kind"] for e in store.events(run["id"])]
    assert "stopped" in events and "resume" in events  # it really was stopped and resumed
    metrics = store.metrics_frame(run["id"])
    assert metrics["step"].tolist() == list(range(61))  # no step lost or duplicated across the stop
