"""SIGTERM (`sgpo runs stop`) and Ctrl-C during a run: finish the step in flight, checkpoint, end `stopped`.

    with stop_on_signals(session, log):     # handlers while the run trains, the previous ones after
        engine.train(session)

The first signal asks the session to stop (session.request_stop); a second one stops at once, without the
checkpoint (KeyboardInterrupt). Python delivers signals to the main thread only, so a run trained in
another thread (a dashboard, a test) installs nothing and is stopped through its session.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sgpo.train.session import Session

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(session: Session, log: Callable[[str], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame) -> None:
        if session.stop_requested:  # a second signal: stop now, without the checkpoint
            raise KeyboardInterrupt
        session.request_stop()
        log(f"signal {signal.Signals(signum).name}: finishing step {session.step + 1}, then checkpointing")

    previous = {s: signal.signal(s, handle) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
