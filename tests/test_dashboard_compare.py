"""Compare page: runs on one FLOPs axis, the compute-reduction factor, and the CSV downloads."""

from sgpo.store import Store
from tests.test_dashboard_helpers import app, app_env, errors, fill_profile, fill_run, no_exception  # noqa: F401


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
    assert metrics["grpo-1: compute reduction vs grpo-1"] == "1.00x"
    # grpo ends at 0.3 + 0.02 * 20 = 0.7, first reached at step 20 (6e8 FLOPs a step, no profiling);
    # sgpo (0.3 + 0.06 * step, evals every 5) first reaches 0.7 at step 10, 1e9 of profiling included
    table = at.dataframe[0].value.set_index("run")
    expected = 20 * 6e8 / (1e9 + 10 * 6e8)
    assert abs(table.loc["sgpo-1", "compute_reduction"] - expected) < 1e-9
    assert metrics["sgpo-1: compute reduction vs grpo-1"] == f"{expected:.2f}x"
    assert len(at.get("plotly_chart")) == 2
    downloads = at.get("download_button")
    assert len(downloads) == 2


def test_a_run_that_never_matches_the_baseline_reads_never_matched(app_env):
    s = Store(app_env)
    fill_run(s, "fast", "grpo", steps=20, speed=3.0)
    fill_run(s, "slow", "dapo", steps=10, speed=0.5)
    at = app("compare")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["slow: compute reduction vs fast"] == "never matched"
    assert not errors(at)


def test_changing_the_baseline_recomputes_the_factors(app_env):
    s = Store(app_env)
    fill_run(s, "a", "grpo", steps=20, speed=1.0)
    fill_run(s, "b", "sgpo", steps=20, speed=3.0)
    at = app("compare")
    at.selectbox(key="compare_baseline").set_value("b").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["b: compute reduction vs b"] == "1.00x"
    assert metrics["a: compute reduction vs b"] == "never matched"


def test_compare_opens_on_the_newest_runs_with_a_grpo_baseline_among_them(app_env):
    from dashboard.analysis import default_comparison

    runs = [{"name": n, "strategy": s} for n, s in [("g", "grpo"), ("a", "sgpo"), ("b", "sgpo"), ("c", "dapo"),
                                                     ("d", "sgpo"), ("e", "sgpo")]]
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
