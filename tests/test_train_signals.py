"""SIGTERM and Ctrl-C during a run: the first asks the session to stop after the step in flight, a second
stops at once; the previous handlers come back afterwards; a run in another thread installs nothing."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from sgpo.accounting import Counters
from sgpo.train import TrainConfig
from sgpo.train.session import Session
from sgpo.train.signals import stop_on_signals


def test_the_first_signal_asks_for_a_stop_and_a_second_stops_at_once():
    session, logged = Session(TrainConfig(steps=10), Counters()), []
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with stop_on_signals(session, logged.append):
        os.kill(os.getpid(), signal.SIGTERM)
        assert session.stop_requested and session.budget_left()
        assert logged == ["signal SIGTERM: finishing step 1, then checkpointing"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_run_in_another_thread_installs_no_handler():
    session, seen = Session(TrainConfig(steps=10), Counters()), {}
    before = signal.getsignal(signal.SIGTERM)

    def work():
        with stop_on_signals(session, print):
            seen["handler"] = signal.getsignal(signal.SIGTERM)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen["handler"] is before and not session.stop_requested
