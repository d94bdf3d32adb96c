"""`sgpo` itself: the options before any command (--version, --vllm-python)."""

from __future__ import annotations

import importlib.metadata
import os

import sgpo
from sgpo.generate import vllm as vllm_backend


def test_version_prints_the_installed_distributions_version_and_runs_no_command(cli):
    code, out, err = cli("--version")
    assert code == 0 and not err
    assert out == f"sgpo {importlib.metadata.version('sgpo')}\n" == f"sgpo {sgpo.__version__}\n"


def test_vllm_python_option_sets_the_variable_that_reruns_and_dashboard_workers_inherit(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("SGPO_VLLM_PYTHON", "")  # restored afterwards: the option writes os.environ
    code, _, err = cli("--vllm-python", tmp_path / "python", "tasks")
    assert code == 0, err
    assert os.environ["SGPO_VLLM_PYTHON"] == str(tmp_path / "python")


def test_a_vllm_python_without_vllm_stops_a_vllm_profile_in_one_line_before_any_store(cli, monkeypatch, tmp_path):
    lacking = tmp_path / "python"
    lacking.write_text("#!/bin/sh\nexit 3\n")
    lacking.chmod(0o755)
    monkeypatch.setenv("SGPO_VLLM_PYTHON", "")
    monkeypatch.setattr(vllm_backend, "vllm_importable", lambda: False)
    db = tmp_path / "sgpo.db"
    code, out, err = cli("--vllm-python", lacking, "profile", "builtin:train", "--backend", "vllm", "--db", db)
    assert code == 2 and not out and not db.exists()
    assert err.count("\n") == 1 and f"--vllm-python / $SGPO_VLLM_PYTHON={lacking} cannot import vllm" in err
