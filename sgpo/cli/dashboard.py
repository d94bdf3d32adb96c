"""`sgpo dashboard`: serve the Streamlit dashboard (dashboard/app.py) on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from sgpo.cli.common import DbOption
from sgpo.errors import ConfigError, SgpoError
from sgpo.store import DEFAULT_PATH

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def streamlit_argv(address: str, port: int) -> list[str]:
    """The server command as an argument list: headless, no usage statistics (they call out to the
    internet), no file watcher (nothing to reload in production)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
            "--server.address", address, "--server.port", str(port), "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]


def dashboard(db: DbOption = None,
              address: Annotated[str, typer.Option(help="interface to bind; 0.0.0.0 exposes it to the network")] = "127.0.0.1",
              port: Annotated[int, typer.Option(help="port to serve on")] = 8501) -> None:
    """Serve the dashboard (profile, audit, plan, train, compare) in the browser."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535 (got {port})")
    if not APP.is_file():
        raise SgpoError(f"the dashboard is missing from {APP}: run from a source checkout (pip install -e .)")
    path = Path(db or os.environ.get("SGPO_DB") or DEFAULT_PATH).expanduser().resolve()
    env = {**os.environ, "SGPO_DB": str(path)}
    typer.echo(f"sGPO Studio on http://{address}:{port}  (store {path})", err=True)
    os.execve(sys.executable, streamlit_argv(address, port), env)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
