"""Compare page: runs on one FLOPs axis, the compute-reduction factor where it means something, grouping and
filtering by strategy and knobs, the same x-axis and smoothing choices as Train, and the CSV downloads."""

import pytest

from bench.synthetic import fill_long_run, fill_profile, fill_run
from dashboard.analysis import default_comparison
from sgpo import compare
from sgpo.store import Store
from tests.apps import app, chart, errors, no_exception, raw_numbers


def test_no_runs_says_where_to_start(app_env):
    at = app("compare")
    no_exception(at)
    assert any("No runs yet" in i.value for i in at.info)


def test_reduction_factor_against_the_grpo_baseline_is_shown_per_run(app_env):
    s = Store(app_env)
    p = fill_profile(s, "prof", n=16)
    fill_run(s, "grpo-1", "grpo", steps=20, profile_id=p["id"], speed=1.0)
    fill_run(s, "sgpo-1", "sgpo", steps=20, profile_id=p["id"], speed=3.0)
    at = app("compare")
    no_exception(at)
    assert at.selectbox(key="compare_baseline").value == "grpo-1"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["grpo-1: compute reduction vs grpo-1"] == "baseline"  # never compared with itself
    # grpo ends at 0.3 + 0.02 * 20 = 0.7, first reached at step 20 (6e8 FLOPs a step, no profiling);
    # sgpo (0.3 + 0.06 * step, evals every 5, 1e9 of profiling included) reaches 0.7 a third of the way
    # from step 5 (0.6 at 4e9 FLOPs) to step 10 (0.9 at 7e9): at 5e9 (sgpo.accounting: linear in between)
    expected = 20 * 6e8 / 5e9
    assert metrics["sgpo-1: compute reduction vs grpo-1"] == f"{expected:.2f}x"
    table = at.dataframe[0].value.set_index("run")
    assert table.loc["sgpo-1", "compute reduction"] == f"{expected:.2f}x"
    assert table.loc["grpo-1", "final accuracy"] == "70.0%" and table.loc["grpo-1", "total compute"] == "12.0 GFLOP"
    assert len(at.get("plotly_chart")) == 3
    downloads = at.get("download_button")
    assert len(downloads) == 2


def test_the_pages_factor_is_sgpo_compare_s_the_number_the_readme_benchmarks_report(app_env):
    s = Store(app_env)
    p = fill_profile(s, "prof", n=16)
    fill_run(s, "grpo-1", "grpo", steps=20, profile_id=p["id"], speed=1.0)
    fill_run(s, "sgpo-1", "sgpo", steps=20, profile_id=p["id"], speed=3.0)
    fill_run(s, "dapo-1", "dapo", steps=20, speed=2.0)
    fill_run(s, "slow", "dapo", steps=10, speed=0.5)
    at = app("compare", compare_runs=["grpo-1", "sgpo-1", "dapo-1", "slow"], compare_baseline="grpo-1")
    no_exception(at)
    shown = {m.label.split(":")[0]: m.value for m in at.metric}
    table = at.dataframe[0].value.set_index("run")
    for name in ("sgpo-1", "dapo-1", "slow"):
        r = compare.reduction("grpo-1", name, s)
        assert shown[name] == table.loc[name, "compute reduction"] == compare.reading(r), name
    assert compare.reduction("grpo-1", "sgpo-1", s).factor == pytest.approx(2.4)  # worked out in the test above
    assert shown["slow"] == "not yet reached"


def test_a_run_that_has_not_reached_the_target_reads_not_yet_reached(app_env):
    s = Store(app_env)
    fill_run(s, "fast", "grpo", steps=20, speed=3.0)
    fill_run(s, "slow", "dapo", steps=10, speed=0.5)
    at = app("compare")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["slow: compute reduction vs fast"] == "not yet reached"
    assert not errors(at)


def test_changing_the_baseline_recomputes_the_factors(app_env):
    s = Store(app_env)
    fill_run(s, "a", "grpo", steps=20, speed=1.0)
    fill_run(s, "b", "sgpo", steps=20, speed=3.0)
    at = app("compare")
    at.selectbox(key="compare_baseline").set_value("b").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["b: compute reduction vs b"] == "baseline"
    assert metrics["a: compute reduction vs b"] == "not yet reached"


def test_compare_opens_on_the_newest_runs_with_a_grpo_baseline_among_them(app_env):
    runs = [
        {"name": n, "strategy": s}
        for n, s in [("g", "grpo"), ("a", "sgpo"), ("b", "sgpo"), ("c", "dapo"), ("d", "sgpo"), ("e", "sgpo")]
    ]
    assert default_comparison(runs) == ["g", "c", "d", "e"]
    assert default_comparison(runs[:3]) == ["g", "a", "b"]
    assert default_comparison(runs[1:]) == ["b", "c", "d", "e"]  # no grpo run at all: the newest four
    s = Store(app_env)
    fill_run(s, "grpo-1", "grpo", steps=10, speed=1.0)
    for i in range(4):
        fill_run(s, f"sgpo-{i}", "sgpo", steps=10, speed=2.0)
    at = app("compare")
    no_exception(at)
    assert at.multiselect(key="compare_runs").value == ["grpo-1", "sgpo-1", "sgpo-2", "sgpo-3"]
    assert at.selectbox(key="compare_baseline").value == "grpo-1"


def knobbed(s, name, strategy, lr, seed, **kw):
    return fill_long_run(
        s,
        name,
        strategy,
        steps=40,
        eval_every=10,
        seed=seed,
        config={"strategy": strategy, "lr": lr, "seed": seed, "steps": 40, "plan": kw.get("plan", {})},
    )


def test_runs_filter_by_strategy_and_by_any_knob_that_differs(app_env):
    s = Store(app_env)
    knobbed(s, "g1", "grpo", 5e-5, 0)
    knobbed(s, "s1", "sgpo", 5e-5, 0)
    knobbed(s, "s2", "sgpo", 1e-4, 1, plan={"trivial_threshold": 0.6})
    at = app("compare")
    no_exception(at)
    table = at.dataframe[0].value
    assert {"lr", "seed", "plan.trivial_threshold"} <= set(table.columns) and "steps" not in table.columns
    assert table.set_index("run").loc["s2", "plan.trivial_threshold"] == "0.6"
    at.multiselect(key="compare_strategies").set_value(["sgpo"]).run()
    assert at.multiselect(key="compare_runs").options == ["s1", "s2"]
    assert at.multiselect(key="compare_runs").value == ["s1", "s2"]  # the grpo run, filtered out, left the choice
    at.multiselect(key="compare_knob_lr").set_value(["0.0001"]).run()
    assert at.multiselect(key="compare_runs").options == ["s2"]
    no_exception(at)


def test_runs_grouped_by_a_knob_show_one_row_per_value(app_env):
    s = Store(app_env)
    for i, (strategy, seed) in enumerate([("grpo", 0), ("grpo", 1), ("sgpo", 0), ("sgpo", 1)]):
        knobbed(s, f"r{i}", strategy, 5e-5, seed)
    at = app("compare")
    assert at.selectbox(key="compare_group").options == ["run", "strategy", "seed"]
    at.selectbox(key="compare_group").set_value("strategy").run()
    groups = at.dataframe[1].value.set_index("strategy")
    assert groups.loc["grpo", "runs"] == "2" and "±" in groups.loc["sgpo", "final accuracy"]
    at.selectbox(key="compare_group").set_value("seed").run()
    assert at.dataframe[1].value["seed"].tolist() == ["0", "1"]


def test_compare_has_trains_x_axis_and_smoothing_and_opens_from_its_url(app_env):
    s = Store(app_env)
    fill_long_run(s, "a", "grpo", steps=40, eval_every=10)
    fill_long_run(s, "b", "sgpo", steps=40, eval_every=10)
    at = app("compare")
    assert at.segmented_control(key="compare_x").value == "FLOPs"
    assert "FLOP" in chart(at, "chart_accuracy_flops")["layout"]["xaxis"]["title"]["text"]
    at.segmented_control(key="compare_x").set_value("wall time").run()
    assert chart(at, "chart_wasted_step")["layout"]["xaxis"]["title"]["text"] == "wall time (s)"
    at.slider(key="compare_smooth").set_value(0.0).run()
    assert len(chart(at, "chart_reward_compare")["data"]) == 2  # one raw line a run, nothing faint
    shared = app("compare", compare_runs=["b", "a"], compare_baseline="b", compare_x="tokens", compare_smooth="0.3")
    no_exception(shared)
    assert shared.multiselect(key="compare_runs").value == ["b", "a"]
    assert shared.selectbox(key="compare_baseline").value == "b"
    assert shared.segmented_control(key="compare_x").value == "tokens"
    assert shared.slider(key="compare_smooth").value == 0.3


def test_every_number_on_compare_is_in_human_units(app_env):
    s = Store(app_env)
    fill_long_run(s, "long-a", "grpo", steps=12_345, eval_every=1000)
    fill_long_run(s, "long-b", "sgpo", steps=12_345, eval_every=1000, seed=1)
    at = app("compare", compare_group="strategy")
    no_exception(at)
    assert not raw_numbers(at), raw_numbers(at)


def test_the_runs_own_forecast_stands_beside_what_it_measured(app_env):
    s = Store(app_env)
    fill_long_run(s, "base", "grpo", steps=300, eval_every=50)
    fill_long_run(s, "planned", "sgpo", steps=300, eval_every=50, seed=1, forecast=0.31)
    at = app("compare")
    no_exception(at)
    table = at.dataframe[0].value.set_index("run")
    assert table.loc["planned", "wasted (forecast)"] == "31.0%"  # the plan's forecast of this run
    assert table.loc["planned", "reduction vs GRPO (forecast)"] == "1.31x"  # skip behaviour: a native run
    assert table.loc["base", "wasted (forecast)"] == "n/a"  # no plan stored with it
    measured = table.loc["planned", "wasted rollouts"]
    assert measured.endswith("%") and measured != "n/a"
