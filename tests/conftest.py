import os
from pathlib import Path

import pytest

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
