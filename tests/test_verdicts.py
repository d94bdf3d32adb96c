"""Verdicts that hold on near-empty plans: one lucky query and an all-unsolved profile read the same in `sgpo plan`
(text and JSON), the dashboard's forecast rows and Plan page, and `sgpo train` (one line, unless --force); and a
live run that wastes every rollout for 20 steps in a row says so in its log, as an event, and on the Train page."""

from __future__ import annotations

import json
import re

import pytest

from bench.synthetic import fill_run
from dashboard import analysis
from sgpo import plans
from sgpo.plan import MIN_LEARNABLE_QUERIES
from sgpo.store import Store
from sgpo.train.recorder import WASTED_EVENT, WASTED_STREAK, Recorder
from tests.apps import app, no_exception
from tests.toys import toy_config, toy_profile

REASON = {"lucky": "too few learnable queries to forecast", "unsolved": "nothing learnable"}


def profile_of(db, name: str, successes: list[int]) -> int:
    """A stored profile of len(successes) queries at N=8, as `sgpo profile` writes it."""
    store = Store(db)
    pid = store.create_profile(
        {"name": name, "key": name, "status": "done", "dataset_spec": "mine.jsonl", "samples": 8}
        | {"n_params": 1_790_208, "flops": 4e10, "model_spec": "starter", "dataset_hash": "h", "model_hash": "m"}
    )
    rows = [
        {
            "position": i,
            "query_id": f"q{i}",
            "task": "gsm8k",
            "difficulty": 0,
            "samples": 8,
            "successes": s,
            "p_hat": s / 8,
            "prompt_tokens": 60,
            "completion_tokens_total": 160,
            "completion_tokens_mean": 20.0,
            "examples": "[]",
        }
        for i, s in enumerate(successes)
    ]
    store.add_profile_batch(pid, rows, {"queries_done": len(rows), "queries_total": len(rows)})
    return pid


@pytest.fixture(params=["lucky", "unsolved"])
def near_empty(request, db_path):
    """200 GSM8K-like queries under the starter: one lucky success (a lenient grader's '2odnoci'), or none."""
    successes = [0] * 200
    if request.param == "lucky":
        successes[17] = 1
    profile_of(db_path, request.param, successes)
    return db_path, request.param


def test_sgpo_plan_gives_the_reason_and_no_number_that_contradicts_it(cli, near_empty):
    db, kind = near_empty
    code, out, err = cli("plan", kind, "--db", db)
    assert code == 0, err
    assert REASON[kind] in out
    labels = ("compute ratio GRPO / plan:", "break-even step  ", "reduction factor (GRPO", "FLOPs / informative")
    assert not [label for label in labels if label in out], out  # no row of numbers beside the reason
    assert not re.search(r"\d\.\d\dx", out), out  # no factor anywhere
    plan = json.loads(cli("plan", kind, "--db", db, "--json")[1])
    basis, run = plan["forecast"]["basis"], plan["forecast"]["run"]
    assert basis["too_few"] and basis["learnable_queries"] == (1 if kind == "lucky" else 0)
    for behaviour in ("skip", "train_all"):
        side = run[behaviour]
        assert side["pays"] is False and side["reduction_factor"] is None and side["break_even_step"] is None
        assert REASON[kind] in side["verdict"]


def test_the_dashboard_gives_the_same_reason_in_its_rows_its_ratio_tile_and_its_plan_page(near_empty, monkeypatch):
    db, kind = near_empty
    made = plans.make(kind, None, Store(db))
    forecast = made.plan.to_json(ids=False)["forecast"]
    rows = analysis.run_forecast_rows(forecast["run"])
    assert rows.index.tolist() == ["forecast"] and all(REASON[kind] in v for v in rows.loc["forecast"])
    ratio = {key: value for key, _, value, _ in analysis.forecast_metrics(forecast)}["forecast_ratio"]
    assert ratio == "too few learnable"
    monkeypatch.setenv("SGPO_DB", str(db))
    monkeypatch.setenv("SGPO_AUTOPROFILE", "0")
    at = app("plan")
    no_exception(at)
    tables = [d.value for d in at.dataframe]
    assert [t for t in tables if t.index.tolist() == ["forecast"] and REASON[kind] in str(t.iloc[0, 0])], tables
    said = " ".join(w.value for w in at.warning)
    assert REASON[kind] in said and not at.success  # no verdict box says it pays


def test_a_plan_with_enough_learnable_queries_keeps_its_numbers(cli, db_path):
    profile_of(db_path, "enough", [1 + i % 6 for i in range(MIN_LEARNABLE_QUERIES)] + [0] * 20)
    code, out, _ = cli("plan", "enough", "--db", db_path)
    assert code == 0 and "compute ratio GRPO / plan:" in out and "reduction factor" in out


def test_sgpo_train_on_a_plan_with_nothing_or_almost_nothing_learnable_stops_in_one_line_unless_forced(
    cli, capsys, toy, db_path, one_thread
):
    store = Store(db_path)
    pid = toy_profile(store, toy)
    with store.transaction():  # every query unsolved but one: what the starter gets on GSM8K
        store.db.conn.execute("UPDATE profile_queries SET successes = 0, p_hat = 0 WHERE profile_id = ?", [pid])
        store.db.conn.execute("UPDATE profile_queries SET successes = 1, p_hat = 0.125 WHERE position = 3")
    args = ["train", "--strategy", "sgpo", "--profile", pid, "--model", toy.model, "--db", db_path]
    args += ["--eval-every", "0", "--max-new-tokens", "1", "--batch-rollouts", "32", "--threads", "1"]
    capsys.readouterr()  # what profiling printed
    code, out, err = cli(*args, "--steps", "2")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "too few learnable queries: 1 of 40" in err and "--force" in err
    assert store.runs() == []  # nothing created
    code, out, err = cli(*args, "--steps", "2", "--force", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "finished" and store.runs()[0]["status"] == "finished"


def test_the_library_refuses_the_same_plan_and_force_lets_it_through(toy, db_path, one_thread):
    from sgpo.errors import ConfigError
    from sgpo.train.setup import prepare

    store = Store(db_path)
    pid = toy_profile(store, toy)
    with store.transaction():
        store.db.conn.execute("UPDATE profile_queries SET successes = 0, p_hat = 0 WHERE profile_id = ?", [pid])
    cfg = toy_config(toy, strategy="sgpo", profile=str(pid), plan={"unsolved_keep": 0.5})
    with pytest.raises(ConfigError, match="nothing learnable: 0 of 40"):
        prepare(cfg, store, name="refused")
    assert prepare(
        toy_config(toy, strategy="sgpo", profile=str(pid), plan={"unsolved_keep": 0.5}, force=True),
        store,
        name="forced",
    )


# a live run that learns nothing --------------------------------------------------------------------------------
def step_row(wasted: int, rollouts: int = 32) -> dict:
    return {"rollouts": rollouts, "wasted_rollouts": wasted, "phase": 0}


def test_twenty_fully_wasted_steps_in_a_row_are_said_once_in_the_log_and_as_an_event(tmp_path):
    store = Store(tmp_path / "s.db")
    run = store.create_run(name="r", strategy="grpo", config={})
    said: list[str] = []
    rec = Recorder(store, run, log=said.append)
    rec.step(0, {"initial": True}, None, 0.0)
    for step in range(1, WASTED_STREAK):  # 19 wasted steps: not yet
        rec.step(step, step_row(32), None, 0.0)
    rec.step(WASTED_STREAK - 1, step_row(32), {"flops_total": 1.0, "accuracy": 0.0}, 0.0)  # the same step again
    assert not [e for e in store.events(run) if e["kind"] == WASTED_EVENT] and not said
    rec.step(WASTED_STREAK, step_row(32), None, 0.0)
    for step in range(WASTED_STREAK + 1, 2 * WASTED_STREAK + 5):  # the streak goes on: said once
        rec.step(step, step_row(32), None, 0.0)
    events = [e for e in store.events(run) if e["kind"] == WASTED_EVENT]
    assert len(events) == 1 and f"last {WASTED_STREAK} steps (1-{WASTED_STREAK})" in events[0]["message"]
    assert said == [f"warning: {events[0]['message']}"]
    step = 2 * WASTED_STREAK + 5
    rec.step(step, step_row(24), None, 0.0)  # one informative group ends the streak
    for k in range(1, WASTED_STREAK + 1):
        rec.step(step + k, step_row(32), None, 0.0)
    assert len([e for e in store.events(run) if e["kind"] == WASTED_EVENT]) == 2


def test_the_train_page_shows_the_wasted_warning_of_the_watched_run(app_env):
    store = Store(app_env)
    fill_run(store, "healthy", steps=4)
    stuck = fill_run(store, "stuck", steps=25)
    store.event(stuck, WASTED_EVENT, "every rollout of the last 20 steps (1-20) was wasted: in every group ...")
    at = app("train", train_run="stuck")
    no_exception(at)
    assert [w.value for w in at.warning if "every rollout of the last 20 steps" in w.value]
    at = app("train", train_run="healthy")
    assert not [w for w in at.warning if "every rollout" in w.value]
