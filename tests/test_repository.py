"""The repository stands on its own: nothing tracked reads or names the developers' folder beside it."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

# files allowed to spell the forbidden path: this test, which has to name what it looks for
FIXTURES = {"tests/test_repository.py"}
FORBIDDEN = "../" + "shared"
LINTED = ["sgpo", "dashboard", "bench", "tests"]  # what `make test` lints and format-checks (Makefile)


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_no_tracked_file_names_the_developers_shared_folder():
    offenders = []
    for name in tracked_files():
        if name in FIXTURES:
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):  # binary files (weights, images) and deletions
            continue
        offenders += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if FORBIDDEN in line]
    assert not offenders, f"tracked files name {FORBIDDEN}: {offenders}"


def test_vendored_gsm8k_carries_its_licence_and_source():
    folder = ROOT / "data" / "gsm8k"
    assert (folder / "test.jsonl").is_file() and "MIT License" in (folder / "LICENSE").read_text()
    assert "grade-school-math" in (folder / "README.md").read_text()
    assert sum(1 for _ in (folder / "test.jsonl").open()) == 1319


def checker(*args: str) -> subprocess.CompletedProcess:
    """A checker run as `make test` runs it: a module of this interpreter (the venv's), from the repository root."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing_to_fix():
    result = checker("ruff", "check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_file_is_formatted_as_ruff_formats_it():
    result = checker("ruff", "format", "--check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # about a minute with a cold cache; seconds once .mypy_cache is there
def test_mypy_passes_on_the_package():
    result = checker("mypy")  # files and options: [tool.mypy] in pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr
