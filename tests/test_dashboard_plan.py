"""Plan page: knob widgets generated from PlanConfig, live counts and forecast, save, errors."""

import shlex
import sqlite3

import pytest
from streamlit.testing.v1 import AppTest
from typer.main import get_command

from bench.synthetic import fill_big_profile, fill_profile
from dashboard import state
from sgpo.cli.main import app as cli
from sgpo.plan import PlanConfig
from sgpo.plan.forecast import READING
from sgpo.store import Store
from tests.apps import APP, app, errors, no_exception, raw_numbers


def forecast(at) -> dict:
    return {m.label: m.value for m in at.metric}


def bounded_float_knob():
    """The trivial threshold if the planner has one, else the first bounded float knob."""
    specs = [
        k for k in PlanConfig.specs() if k.min is not None and k.max is not None and k.type == "float" and not k.choices
    ]
    return next((k for k in specs if "trivial" in k.name), specs[0])


def test_every_knob_gets_a_widget_of_the_right_kind(app_env):
    fill_profile(Store(app_env))
    at = app("plan")
    no_exception(at)
    for k in PlanConfig.specs():
        key = state.knob_key(k.name)
        if k.choices:
            assert at.selectbox(key=key).options == [str(c) for c in k.choices], k
        elif k.min is not None and k.max is not None and k.type != "bool":
            widget = at.slider(key=key)
            assert widget.value == pytest.approx(k.default) and widget.max == pytest.approx(k.max), k
            assert widget.min == pytest.approx(k.min) or (k.open_min and widget.min > k.min), k
        else:
            assert at.number_input(key=key).value == k.default, k


def test_moving_a_knob_changes_counts_forecast_and_cli_line(app_env):
    fill_profile(Store(app_env))
    at = app("plan")
    knob = bounded_float_knob()
    before, counts_before = forecast(at), at.dataframe[0].value.copy()
    new = round(knob.min + 0.3 * (knob.max - knob.min), 2)
    at.slider(key=state.knob_key(knob.name)).set_value(new).run()
    no_exception(at)
    assert forecast(at) != before
    assert not at.dataframe[0].value.equals(counts_before)
    flag = "--" + knob.name.replace("_", "-")
    line = at.code[0].value
    assert flag in line and line.startswith("sgpo plan synthetic")
    make = get_command(cli).commands["plan"].commands["make"]  # `sgpo plan PROFILE ...` runs `sgpo plan make`
    params = make.make_context("plan", shlex.split(line)[2:]).params
    assert params[knob.name] == pytest.approx(new)  # the line is a valid `sgpo plan` command


def test_forecast_metrics_compare_to_fixed_g_grpo(app_env):
    """The page's first numbers are the run forecast (issue 22), then the one-pass forecast below it."""
    fill_profile(Store(app_env))
    at = app("plan")
    labels = list(forecast(at))
    assert labels == [
        "reduction, our engine",
        "reduction, TRL / verl",
        "profiling paid back at step",
        "rollouts",
        "FLOPs (profiling included)",
        "expected wasted fraction",
        "compute ratio GRPO / plan",
    ]
    assert forecast(at)["compute ratio GRPO / plan"].endswith("x")
    assert forecast(at)["reduction, our engine"].endswith("x")
    assert len(at.get("plotly_chart")) == 1  # the phase timeline


def test_save_plan_stores_it_and_a_second_save_under_the_same_name_is_refused(app_env):
    fill_profile(Store(app_env))
    at = app("plan")
    at.text_input(key="plan_name").input("mine")
    at.button(key="save_plan_button").click().run()
    assert not errors(at) and any("saved plan mine" in s.value for s in at.success)
    saved = Store(app_env).find_plan("mine")
    assert saved["profile_id"] == 1 and saved["forecast"]["plan"]["rollouts"] > 0
    at.button(key="save_plan_button").click().run()
    assert any("already exists" in e for e in errors(at)), errors(at)


def test_a_read_only_store_shows_an_error_and_loses_nothing(app_env, monkeypatch):
    fill_profile(Store(app_env))
    at = app("plan")
    knob = bounded_float_knob()
    value = round(knob.min + 0.4 * (knob.max - knob.min), 2)
    at.slider(key=state.knob_key(knob.name)).set_value(value).run()
    at.text_input(key="plan_name").input("kept")
    real_store = state.store

    def read_only():
        cm = real_store()
        s = cm.__enter__()
        s.db.execute("PRAGMA query_only = 1")  # what a read-only file does to writes, even for root
        return _Wrap(cm, s)

    monkeypatch.setattr(state, "store", read_only)
    at.button(key="save_plan_button").click().run()
    no_exception(at)
    assert any("could not write" in e for e in errors(at)), errors(at)
    assert at.text_input(key="plan_name").value == "kept"
    assert at.slider(key=state.knob_key(knob.name)).value == pytest.approx(value)
    monkeypatch.setattr(state, "store", real_store)
    at.button(key="save_plan_button").click().run()
    assert not errors(at) and Store(app_env).find_plan("kept")["config"][knob.name] == pytest.approx(value)


class _Wrap:
    def __init__(self, cm, s):
        self.cm, self.s = cm, s

    def __enter__(self):
        return self.s

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


def test_a_locked_store_shows_an_error_instead_of_hanging(app_env, monkeypatch):
    fill_profile(Store(app_env))
    monkeypatch.setattr(state, "BUSY_TIMEOUT_MS", 200)
    at = app("plan")
    at.text_input(key="plan_name").input("later")
    blocker = sqlite3.connect(app_env, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        at.button(key="save_plan_button").click().run()
    finally:
        blocker.rollback()
        blocker.close()
    no_exception(at)
    assert any("locked" in e for e in errors(at)), errors(at)
    at.button(key="save_plan_button").click().run()
    assert not errors(at)


def test_a_missing_profile_in_the_url_is_an_error(app_env):
    fill_profile(Store(app_env))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["profile"] = "nope"
    at.run()
    no_exception(at)
    assert any("no profile 'nope'" in e for e in errors(at)), errors(at)


def test_no_profile_yet_points_to_the_data_page(app_env):
    at = app("plan")
    no_exception(at)
    assert any("No profile yet" in i.value for i in at.info)


@pytest.mark.slow
def test_a_knob_change_at_100k_queries_replans_the_whole_profile(app_env):
    """The functional half; how long it takes is measured by bench/dashboard_latency.py."""
    fill_big_profile(Store(app_env), 100_000)
    at = app("plan")
    no_exception(at)
    knob = bounded_float_knob()
    seen = []
    for value in (0.45, 0.6, 0.7):  # p_hat is k/8: each step crosses one value
        at.slider(key=state.knob_key(knob.name)).set_value(value).run()
        no_exception(at)
        counts = at.dataframe[0].value
        assert int(counts.loc["total", "total"]) == 100_000
        seen.append(int(counts.loc["trivial", "total"]))
    assert seen[0] > seen[1] > seen[2]  # a higher threshold leaves fewer trivial queries


def test_every_number_on_the_plan_page_is_in_human_units(app_env):
    fill_big_profile(Store(app_env), 20_000)
    at = app("plan")
    no_exception(at)
    assert not raw_numbers(at), raw_numbers(at)
    forecast = at.dataframe[1].value
    assert forecast.loc["total compute (profiling included)", "plan"].endswith("FLOP")
    assert forecast.loc["rollouts", "baseline"].replace(",", "").replace(" M", "").replace(".", "").isdigit()
    counts = at.dataframe[0].value
    assert int(counts.loc["total", "total"]) == 20_000  # numbers stay numbers; the table shows them localized


def test_the_page_says_in_words_whether_the_plan_pays_under_both_engine_behaviours(app_env):
    fill_profile(Store(app_env))
    at = app("plan")
    no_exception(at)
    said = [m.value for m in at.success] + [m.value for m in at.warning]
    assert any("our engine" in s for s in said) and any("TRL / verl" in s for s in said), said
    table = at.dataframe[-1].value  # the run forecast, after the decision counts and the one-pass forecast
    assert "reduction factor" in table.index and all(
        str(v).endswith("x") or v == "n/a" for v in table.loc["reduction factor"]
    )


def test_nothing_learnable_is_said_in_words(app_env):
    s = Store(app_env)
    fill_profile(s, "hard", n=40)
    s.db.execute("UPDATE profile_queries SET successes = 0, p_hat = 0.0")
    s.db.conn.commit()
    at = app("plan")
    no_exception(at)
    assert any("nothing learnable" in w.value for w in at.warning), [w.value for w in at.warning]


def test_the_verdicts_come_with_how_to_read_the_reduction_factor(app_env):
    fill_profile(Store(app_env), "p", n=64)
    at = app("plan")
    no_exception(at)
    assert READING in [c.value for c in at.caption]
