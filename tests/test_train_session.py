"""The session, the step sink both engines report to: it counts steps and totals, keeps the budget and the
stop flag, and runs what follows each step."""

from __future__ import annotations

import pytest

from sgpo.accounting import Counters, step_flops
from sgpo.train import TrainConfig
from sgpo.train.session import Session

N = 1_000_000  # parameters


def _step(tokens: int = 100, informative: int = 60) -> tuple[dict, dict]:
    data = {"rollouts": 8, "wasted_rollouts": 4, "groups": 2, "informative_groups": 1, "tokens_prompt": tokens}
    return data, step_flops(N, generated=tokens, trained=informative, informative=informative, every=tokens)


def record(session: Session, seconds: float = 0.0) -> dict:
    data, flops = _step()
    return session.record(data, flops=flops, seconds=seconds)


def test_record_counts_the_step_returns_it_with_the_run_totals_and_runs_what_follows():
    seen = []
    session = Session(
        TrainConfig(steps=5), Counters(flops_profile=10.0), after_step=lambda s, row: seen.append((s, row))
    )
    data, flops = _step()
    row = session.record(data, flops=flops, seconds=0.5)
    assert session.step == 1 and seen == [(1, row)] and session.last_data is row
    assert row["rollouts_total"] == 8 and row["run_wasted_fraction"] == 0.5
    assert row["flops_total"] == pytest.approx(10.0 + 2 * N * 100 + 6 * N * 60)
    assert row["flops_total_skip"] == row["flops_total"]
    assert row["flops_total_train_all"] == pytest.approx(10.0 + 2 * N * 100 + 6 * N * 100)
    assert session.counters["wall_seconds"] == 0.5


def test_the_step_budget_stops_before_the_next_step():
    session = Session(TrainConfig(steps=2), Counters())
    assert session.steps_left() == 2 and not session.should_stop()
    for _ in range(2):
        record(session)
    assert session.steps_left() == 0 and session.should_stop() and not session.stop_requested  # finished, not stopped


def test_a_flops_budget_is_checked_before_each_step_so_the_last_may_overshoot():
    per_step = 2 * N * 100 + 6 * N * 60
    session = Session(TrainConfig(steps=None, flops_budget=1.5 * per_step), Counters())
    assert session.steps_left() is None
    record(session)
    assert not session.should_stop()
    record(session)
    assert session.should_stop() and session.counters.totals()["flops_total"] > 1.5 * per_step


def test_a_requested_stop_ends_the_run_stopped_with_budget_left():
    session = Session(TrainConfig(steps=10), Counters())
    session.request_stop()
    assert session.should_stop() and session.stop_requested and session.budget_left()


def test_its_state_round_trips_through_a_checkpoint():
    a = Session(TrainConfig(steps=10), Counters(flops_profile=3.0))
    record(a, seconds=0.25)
    state = {**a.state_dict(), "step": a.step}
    b = Session(TrainConfig(steps=10), Counters(flops_profile=3.0))
    b.load_state_dict(state)
    assert b.step == 1 and b.last_data == a.last_data and b.counters.totals() == a.counters.totals()
