"""The README's own-data section runs as written: in an empty folder holding a mine.jsonl with fields of its own,
every `sgpo` line of its block, in order, with no option added."""

import json
import re
import shlex
import subprocess
import sys

import pytest

from sgpo.data import load_dataset
from sgpo.store import Store
from tests.conftest import ROOT

MARK = "<!-- example:own-data -->"


def readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = re.search(re.escape(MARK) + r"\s*```bash\n(.*?)```", text, re.S)
    assert block, f"README.md has no bash block after {MARK}"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def write_mine(folder) -> None:
    """200 reversal and sorting queries of the built-in train split, under the field names the README uses."""
    frame = load_dataset("builtin:train").frame
    frame = frame[frame["task"].isin(["rev", "sort"])].sample(200, random_state=0)
    rows = [
        {"uid": f"u-{r.id}", "Question Text": r.prompt, "gold_label": r.answer, "family": r.task}
        for r in frame.itertuples()
    ]
    (folder / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_the_readme_block_names_each_field_once_and_runs_only_sgpo():
    commands = readme_commands()
    assert commands and all(c[0] == "sgpo" for c in commands)
    named = [c for c in commands if "--prompt-field" in c]
    assert [c[1] for c in named] == ["data", "profile"]  # then never again
    assert not [c for c in commands[2:] if any(a.endswith("-field") or a == "--reward" for a in c)]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_own_data_section_runs_as_written(tmp_path):
    write_mine(tmp_path)
    said = []
    for args in readme_commands():
        done = subprocess.run(
            [sys.executable, "-m", "sgpo", *args[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        )
        assert done.returncode == 0, f"{shlex.join(args)}\n{done.stderr[-3000:]}"
        said.append(done.stdout + done.stderr)
    assert "reward exact" in said[0] and "mapping prompt <- Question Text" in said[0]
    assert "mine-plan" in said[-1]
    assert (tmp_path / "verl-plan" / "manifest.json").exists() and (tmp_path / "trl-plan" / "manifest.json").exists()
    store = Store(tmp_path / "runs" / "sgpo.db")
    first, again = store.find_run("first"), store.find_run("again")
    assert first["status"] == again["status"] == "finished" and first["step"] == again["step"] == 10
    assert first["held_out"]["kind"] == "split" and first["held_out"]["held_out"] == 20
    assert first["config"]["dataset"] == str((tmp_path / "mine.jsonl").resolve())
