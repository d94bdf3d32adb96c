"""math-verify behind a hard time limit that works in any thread.

    verify("\\frac{\\pi}{2}", "\\pi/2")  -> 1.0     verify("1", "10^{10^{10}}") -> 0.0 (refused, counted)

math-verify's own timeouts use SIGALRM, which only works in the main thread (Streamlit pages and
trainer threads are not), and sympy can spend minutes or all memory on `10^{10^{10}}`. So comparisons
run in one long-lived child process (`verify_worker.py`, fed JSON lines), one at a time. Each gets
TIME_LIMIT_S seconds; one that overruns scores 0, is counted and logged, and its worker is killed (the
next comparison starts a fresh one). Answers that are obviously astronomical never reach sympy.
A plain subprocess rather than multiprocessing: nothing is pickled and the parent's `__main__` is
never re-imported, so it is safe from scripts, notebooks, Streamlit and threads alike.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from sgpo.errors import SgpoError

TIME_LIMIT_S = 5.0  # per comparison, as math-verify's own default
START_LIMIT_S = 120.0  # importing sympy on a loaded machine
WORKER = Path(__file__).with_name("verify_worker.py")

log = logging.getLogger("sgpo.rewards")
_stats: Counter = Counter()  # timeouts, crashes, too_large, worker_calls, worker_starts
_lock = threading.Lock()
_worker: _Worker | None = None

# A power whose exponent is itself a power or factorial, a factorial of a power, a 5-digit exponent or
# factorial, a 1000-digit number: 9^9^9, 9^{99}^{99}, 10^{10^{10}}, (10^{10})!, 2^{100000}, 1e99999,
# 99999!. 2^{10}, (2+3)! and 20! pass.
_POWER = r"(?:\^|\*\*)\s*"
_TOO_LARGE = re.compile(
    rf"{_POWER}(?:\{{[^{{}}]*[\^!]|\([^()]*[\^!]|[\w.]+\s*(?:\^|\*\*|!)"
    rf"|\{{[^{{}}]*\}}\s*(?:\^|\*\*|!))"
    rf"|\([^()]*\^[^()]*\)\s*!|\{{[^{{}}]*\^[^{{}}]*\}}\s*!"
    rf"|{_POWER}[{{(]?\s*-?\d{{5,}}|\d[eE][+-]?\d{{5,}}|\d{{5,}}\s*!|\d{{1000,}}|\\uparrow"
)


class _Worker:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True, name="sgpo-verify-reader").start()
        if self.reply(START_LIMIT_S) != "ready":
            self.kill()
            raise SgpoError(
                f"the math reward's checker ({WORKER}) did not start within {START_LIMIT_S:.0f} s "
                f"(exit code {self.proc.returncode}): check that math-verify is installed "
                f"(pip install math-verify) and see the messages above"
            )

    def _read(self):
        with self.proc.stdout:  # closed here, at end of file, never under the reading thread
            for line in self.proc.stdout:
                self.lines.put(line.strip())
        self.lines.put(None)  # end of file: the worker exited

    def reply(self, timeout: float) -> str | None:
        """The next line; None when the worker died, "timeout" when it took longer than `timeout` seconds."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return "timeout"

    def ask(self, gold: str, answer: str) -> str | None:
        try:
            self.proc.stdin.write(json.dumps([gold, answer]) + "\n")
            self.proc.stdin.flush()
        except OSError:  # the worker died between two requests
            return None
        return self.reply(TIME_LIMIT_S)

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(OSError):  # a broken pipe to the dead worker
            self.proc.stdin.close()


def too_large(answer: str) -> bool:
    """True for power towers, factorials of powers and 5-digit exponents: sympy could run for hours."""
    return bool(_TOO_LARGE.search(answer))


def verify(gold: str, answer: str) -> float | None:
    """1.0 when math-verify finds `answer` equal to `gold` (both LaTeX without delimiters), else 0.0.

    None when math-verify cannot read the gold (the caller compares text instead). Takes at most
    TIME_LIMIT_S once the worker runs: on a timeout or a crash the answer scores 0, counted in `stats()`."""
    if too_large(answer):
        with _lock:
            _stats["too_large"] += 1
        log.debug("math reward: %r is too large to check; scored 0", answer[:80])
        return 0.0
    global _worker
    with _lock:
        if _worker is None or _worker.proc.poll() is not None:  # not started yet, or died while idle
            _worker = _Worker()
            _stats["worker_starts"] += 1
        _stats["worker_calls"] += 1
        reply = _worker.ask(gold, answer)
        if reply in ("1", "0", "?"):
            return {"1": 1.0, "0": 0.0, "?": None}[reply]
        _worker.kill()
        _worker = None
        problem = "timeouts" if reply == "timeout" else "crashes"
        _stats[problem] += 1
    what = f"took over {TIME_LIMIT_S:g} s" if problem == "timeouts" else "crashed"
    log.warning(
        "math reward: math-verify %s on answer %r (gold %r); scored 0 (%d %s so far)",
        what,
        answer[:80],
        gold[:40],
        _stats[problem],
        problem,
    )
    return 0.0


def stats() -> dict[str, int]:
    """Counts since start-up: timeouts, crashes, too_large (refused), worker_calls, worker_starts."""
    with _lock:
        return {k: _stats[k] for k in ("timeouts", "crashes", "too_large", "worker_calls", "worker_starts")}


def _shutdown():
    if _worker is not None:
        _worker.kill()


def _forget_worker_after_fork():
    global _worker, _lock
    _worker, _lock = None, threading.Lock()  # a forked child must not share its parent's pipes or held lock


atexit.register(_shutdown)
os.register_at_fork(after_in_child=_forget_worker_after_fork)
