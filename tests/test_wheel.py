"""The wheel, installed apart from the checkout, runs everything a user needs: the version, a profile of
built-in queries with the shipped starter, and the dashboard.

The wheel is built from a copy of what the repository ships (pyproject.toml, README.md, sgpo/, dashboard/),
so no build/ folder of the checkout can slip stale files into it, and pip runs with --no-index (no network).
It is installed, not editable, into a scratch venv whose only link to the checkout's .venv is a .pth line
naming its site-packages: the dependencies are reused, while .venv's own .pth files (the editable install's
finder) are not run, so the checkout is not importable. Every command runs from a folder outside the
repository with PYTHONPATH cleared. Never skipped: a package that does not install is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

import sgpo as sgpo_package
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SHIPPED = ("pyproject.toml", "README.md", "sgpo", "dashboard")
TIMEOUT = 300  # seconds for any one step; the whole module takes about 40 s on idle cores, 70 s on busy ones


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, an outside working folder, the environment every command runs with)."""
    tmp = tmp_path_factory.mktemp("wheel")
    assert not tmp.resolve().is_relative_to(ROOT.resolve()), f"{tmp} must lie outside the checkout {ROOT}"
    src, dist, venv, outside = tmp / "src", tmp / "dist", tmp / "venv", tmp / "elsewhere"
    src.mkdir()
    outside.mkdir()
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, src], cwd=tmp)
    (wheel,) = dist.glob("sgpo-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=outside).strip())
    deps = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))  # .venv's, in order
    (site / "checkout-venv-deps.pth").write_text("".join(f"{path}\n" for path in deps))
    run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], cwd=tmp)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "SGPO_DB", "VIRTUAL_ENV")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        PYTHONNOUSERSITE="1",
        SGPO_AUTOPROFILE="0",
        OMP_NUM_THREADS="1",
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return venv, outside, env


def run(argv, *, cwd, env=None) -> str:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def sgpo(installed, *args) -> str:
    """stdout of the installed `sgpo ARGS`, run from the outside folder."""
    venv, outside, env = installed
    return run([venv / "bin" / "sgpo", *args], cwd=outside, env=env)


def test_the_installed_packages_are_the_wheels_and_the_checkout_is_not_importable(installed):
    venv, outside, env = installed
    probe = (
        "import importlib.util, json, sys, sgpo, dashboard; "
        "print(json.dumps({'sgpo': sgpo.__file__, 'dashboard': dashboard.__file__, 'path': sys.path, "
        "'bench': importlib.util.find_spec('bench') is not None, 'tests': importlib.util.find_spec('tests') is not None}))"
    )
    seen = json.loads(run([venv / "bin" / "python", "-c", probe], cwd=outside, env=env))
    for package in ("sgpo", "dashboard"):
        assert Path(seen[package]).resolve().is_relative_to(venv.resolve()), seen[package]
    assert not seen["bench"] and not seen["tests"]  # in the checkout only
    assert str(ROOT) not in seen["path"] and str(ROOT.resolve()) not in seen["path"]


def test_sgpo_version_prints_the_installed_distributions_version(installed):
    assert sgpo(installed, "--version").strip() == f"sgpo {sgpo_package.__version__}"


def test_the_shipped_starter_profiles_50_builtin_queries_from_outside_the_checkout(installed):
    venv, outside, _ = installed
    db = outside / "runs" / "sgpo.db"
    db.parent.mkdir(exist_ok=True)  # --db names a database in a folder that exists
    summary = json.loads(
        sgpo(installed, "profile", "builtin:train", "--queries", 50, "--samples", 4, "--db", db, "--json")
    )
    assert summary["queries"] == 50 and 0 <= summary["mean_p_hat"] <= 1
    shown = json.loads(sgpo(installed, "profile", "show", summary["profile_id"], "--db", db, "--json"))
    assert shown["model"]["spec"] == "starter"
    assert Path(shown["model"]["path"]).resolve().is_relative_to(venv.resolve())  # the wheel's package data
    assert not (outside / "starter-policy").exists() and not (outside / "tasks").exists()


def test_sgpo_dashboard_serves_the_installed_app_and_answers_its_health_endpoint(installed):
    venv, outside, env = installed
    with socket.socket() as probe:  # a free port of 127.0.0.1, released for the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [venv / "bin" / "sgpo", "dashboard", "--port", port, "--db", outside / "dash.db"]
    log = outside / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(a) for a in argv], cwd=outside, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        health = wait_for_health(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
        assert health == "ok"
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")  # sgpo execs streamlit in place
        app = Path(next(a.decode() for a in cmdline if a.endswith(b"app.py")))
        assert app.resolve().is_relative_to(venv.resolve()) and app.parent.name == "dashboard", app
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_installed_dashboard_renders_its_first_page_without_the_checkout(installed):
    """The health endpoint answers before any page runs: run the installed app once, as a browser would."""
    venv, outside, env = installed
    script = (
        "from pathlib import Path\n"
        "import dashboard\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file(str(Path(dashboard.__file__).parent / 'app.py'), default_timeout=120).run()\n"
        "assert not at.exception, [e.message for e in at.exception]\n"
        "print(at.title[0].value)\n"
    )
    out = run([venv / "bin" / "python", "-c", script], cwd=outside, env={**env, "SGPO_DB": str(outside / "render.db")})
    assert out.strip().splitlines()[-1] == "Data & profiles"


def wait_for_health(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sgpo dashboard exited {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"no answer from {url} in {timeout:.0f} s:\n{log.read_text(errors='replace')}")
