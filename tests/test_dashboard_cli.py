"""`sgpo dashboard`: the server command it execs, the address it binds, the store it hands over."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from sgpo.cli import dashboard
from tests.conftest import ROOT


@pytest.fixture
def execs(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    return calls


def test_binds_127_0_0_1_with_usage_stats_and_file_watcher_off_by_default(cli, execs, db_path):
    code, _, err = cli("dashboard", "--db", db_path)
    assert code == 0, err
    path, argv, env = execs[0]
    assert path == sys.executable and argv[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert argv[4].endswith("dashboard/app.py")
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8501"
    assert flags["--browser.gatherUsageStats"] == "false" and flags["--server.headless"] == "true"
    assert flags["--server.fileWatcherType"] == "none"
    assert env["SGPO_DB"] == str(db_path.resolve())


def test_address_and_port_are_passed_through_as_arguments_not_a_shell(cli, execs, db_path):
    cli("dashboard", "--db", db_path, "--address", "0.0.0.0", "--port", "9000")
    argv = execs[0][1]
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0" and argv[argv.index("--server.port") + 1] == "9000"
    assert all(isinstance(a, str) for a in argv)


def test_without_db_the_store_is_sgpo_db_or_runs_sgpo_db(cli, execs, monkeypatch, tmp_path):
    monkeypatch.setenv("SGPO_DB", str(tmp_path / "env.db"))
    cli("dashboard")
    assert execs[0][2]["SGPO_DB"] == str(tmp_path / "env.db")
    monkeypatch.delenv("SGPO_DB")
    monkeypatch.chdir(tmp_path)
    cli("dashboard")
    assert execs[1][2]["SGPO_DB"] == str(tmp_path / "runs" / "sgpo.db")


def test_a_bad_port_is_refused(cli, execs):
    code, _, err = cli("dashboard", "--port", "70000")
    assert code == 2 and not execs and "--port must be between 1 and 65535" in err


def test_the_app_is_the_installed_dashboard_packages_not_a_path_beside_sgpo(cli, execs, db_path):
    installed = Path(importlib.util.find_spec("dashboard").submodule_search_locations[0]) / "app.py"
    assert dashboard.app_path() == installed.resolve()
    assert installed.resolve() == (ROOT / "dashboard" / "app.py").resolve()  # a checkout maps the package here
    cli("dashboard", "--db", db_path)
    assert execs[0][1][4] == str(installed.resolve())


def test_a_missing_dashboard_is_one_line_saying_to_reinstall_and_nothing_starts(cli, execs, db_path, monkeypatch):
    monkeypatch.setattr(dashboard, "DASHBOARD_PACKAGE", "sgpo_dashboard_not_installed")
    code, _, err = cli("dashboard", "--db", db_path)
    assert code == 2 and not execs and not db_path.exists()
    assert err.strip().count("\n") == 0 and "the dashboard is missing (not installed): reinstall sgpo" in err
    monkeypatch.setattr(dashboard, "DASHBOARD_PACKAGE", "sgpo.plan")  # a package, but not the dashboard
    code, _, err = cli("dashboard", "--db", db_path)
    assert code == 2 and not execs and "has no app.py" in err and str(ROOT / "sgpo" / "plan") in err
