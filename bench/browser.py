"""A dashboard server on a free port of 127.0.0.1 and Debian's chromium driven by Playwright's Python
package (never `playwright install`): shared by the browser tests and the dashboard benchmarks.

    with serve(db) as url, browser_page() as page:
        page.goto(url)
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# headless, and nothing that calls out to the internet (the machine has no network)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_problem() -> str | None:
    """Why no browser test can run here, or None."""
    if not CHROMIUM.exists():
        return f"chromium is missing at {CHROMIUM}: run `make setup-browser` (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is missing: pip install -e '.[dev]'"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(db: Path, log: Path | None = None, timeout: float = 60, *, args: tuple = (), roots: tuple = ()):
    """`sgpo dashboard --db DB` on a free port; yields its URL once /_stcore/health answers. Local paths are
    allowed in the store's folder, the checkout and `roots`; `args` are more options (--token ...)."""
    port = free_port()
    log = log or db.parent / "server.log"
    allowed = [a for root in (db.parent, ROOT, *roots) for a in ("--allow-root", str(root))]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sgpo",
                "dashboard",
                "--db",
                str(db),
                "--port",
                str(port),
                *allowed,
                *map(str, args),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            env={**os.environ, "SGPO_AUTOPROFILE": "0"},
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise RuntimeError(f"the dashboard did not come up: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        try:
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


@contextmanager
def browser_page(width: int = 1500, height: int = 1100):
    """A chromium page; page errors are collected in page.errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(60_000)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        try:
            yield page
        finally:
            browser.close()


def choose(page, key: str, option) -> None:
    """Pick an option of the selectbox with key `key`; retried, since a rerun landing mid-click closes the list."""
    for _ in range(5):
        page.locator(f".st-key-{key} [role=combobox]").click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            return
        except Exception:
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)
    raise AssertionError(f"could not choose {option!r} in {key}")


PROBE_ROW = {"reward_mean": 0.5, "rollouts": 8, "wasted_rollouts": 4, "groups": 2, "informative_groups": 1}


def log_probe_step(store, run_id: int, step: int) -> None:
    """One synthetic step of a live-update probe (the Train page's step metric shows `step` once it is read)."""
    store.log_step(run_id, step, 0, float(step), {**PROBE_ROW, "flops_total": 1e6 * step})
