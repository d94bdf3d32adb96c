"""`sgpo dashboard`: serve the Streamlit dashboard on 127.0.0.1 unless told otherwise.

The dashboard is the top-level package `dashboard`, installed beside `sgpo` (an editable install maps it to
the checkout's dashboard/): its app.py is found through the import system, wherever that put it.

Safe to expose: bound to anything but loopback, the server asks every session for a token (--token, else
$SGPO_DASHBOARD_TOKEN, else a new one printed here once, in the URL to open, as Jupyter does; checked by
dashboard/access.py before any page runs). Local dataset and model paths typed into it must lie inside the
--allow-root folders (default: the folder it is started in; sgpo.paths.check_spec_allowed).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from sgpo.cli.common import DbOption, db_path
from sgpo.errors import ConfigError, SgpoError
from sgpo.paths import ALLOWED_ROOTS_ENV
from sgpo.store import Store

DASHBOARD_PACKAGE = "dashboard"
TOKEN_ENV = "SGPO_DASHBOARD_TOKEN"  # the token the server asks of every session (dashboard/access.py reads it)


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
    token: Annotated[
        str | None,
        typer.Option(
            help=f"the token every session must bring (?token=...); default ${TOKEN_ENV}, else a new one printed "
            "once when --address is not loopback (on loopback none is asked unless given)"
        ),
    ] = None,
    allow_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-root",
            help="a folder that local dataset and model paths typed into the dashboard may point into "
            "(repeatable; default: the folder the dashboard is started in)",
        ),
    ] = None,
) -> None:
    """Serve the dashboard (profile, audit, plan, train, rollouts, compare) in the browser."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535 (got {port})")
    check_address(address)
    roots = allowed_roots(allow_root)
    app = app_path()
    path = db_path(db)
    if path.exists():  # an existing store must open (the dashboard creates a missing one itself)
        Store(path).close()
    token = check_token(token if token is not None else os.environ.get(TOKEN_ENV))
    printed = token is None and not is_loopback(address)
    if printed:
        token = new_token()
    env = {**os.environ, "SGPO_DB": str(path), ALLOWED_ROOTS_ENV: os.pathsep.join(map(str, roots))}
    env.pop(TOKEN_ENV, None)
    if token:
        env[TOKEN_ENV] = token
    url = f"http://{address}:{port}/" + (f"?token={token}" if printed else "")
    asked = " (every session must bring the token: open the URL above)" if printed else " (token required)"
    typer.echo(
        f"sGPO Studio on {url}  (store {path}; local paths inside {', '.join(map(str, roots))})"
        + (asked if token else ""),
        err=True,
    )
    os.execve(sys.executable, streamlit_argv(app, address, port), env)


def allowed_roots(given: list[Path] | None) -> list[Path]:
    """The --allow-root folders, resolved (default: the working directory); each must be an existing folder."""
    roots = [Path(p).expanduser().resolve() for p in given] if given else [Path.cwd().resolve()]
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"--allow-root {root}: not an existing folder; give folders the dashboard may read")
    return roots


def check_token(token: str | None) -> str | None:
    """A token given with --token or $SGPO_DASHBOARD_TOKEN: at least 16 characters, none of them spaces."""
    if token is None or token == "":
        return None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError(
            f"--token (or ${TOKEN_ENV}): give at least 16 characters without spaces, or none to have one made"
        )
    return token


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def is_loopback(address: str) -> bool:
    """Whether binding `address` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


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
