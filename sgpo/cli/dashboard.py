"""`sgpo dashboard`: serve the Streamlit dashboard on 127.0.0.1 unless told otherwise.

The dashboard is the top-level package `dashboard`, installed beside `sgpo` (an editable install maps it to
the checkout's dashboard/): its app.py is found through the import system, wherever that put it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from sgpo.cli.common import DbOption, db_path
from sgpo.errors import ConfigError, SgpoError
from sgpo.store import Store

DASHBOARD_PACKAGE = "dashboard"


def app_path() -> Path:
    """The installed dashboard's app.py (found without importing the package); SgpoError when it is not there."""
    spec = importlib.util.find_spec(DASHBOARD_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    app = next((Path(f) / "app.py" for f in folders if (Path(f) / "app.py").is_file()), None)
    if app is None:
        found = (
            f"the package {DASHBOARD_PACKAGE!r} at {', '.join(folders)} has no app.py" if folders else "not installed"
        )
        raise SgpoError(
            f"the dashboard is missing ({found}): reinstall sgpo (`pip install sgpo`, or `pip install -e .` in a checkout)"
        )
    return app.resolve()


def streamlit_argv(app: Path, address: str, port: int) -> list[str]:
    """The server command as an argument list: headless, no usage statistics (they call out to the
    internet), no file watcher (nothing to reload in production)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
    ]


def dashboard(
    db: DbOption = None,
    address: Annotated[str, typer.Option(help="interface to bind; 0.0.0.0 exposes it to the network")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
) -> None:
    """Serve the dashboard (profile, audit, plan, train, compare) in the browser."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535 (got {port})")
    check_address(address)
    app = app_path()
    path = db_path(db)
    if path.exists():  # an existing store must open (the dashboard creates a missing one itself)
        Store(path).close()
    env = {**os.environ, "SGPO_DB": str(path)}
    typer.echo(f"sGPO Studio on http://{address}:{port}  (store {path})", err=True)
    os.execve(sys.executable, streamlit_argv(app, address, port), env)


def check_address(address: str) -> None:
    """An interface this machine can bind, checked here so the server never starts on a bad one: a
    probe socket on a free port (the chosen port's availability is the server's own clear error)."""
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            address, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(sockaddr)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(
            f"--address {address!r} cannot be bound on this machine ({exc}): use 127.0.0.1 "
            f"(this machine only) or 0.0.0.0 (every interface)"
        ) from None


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
