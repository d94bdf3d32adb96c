"""The dashboard's profile and plan figures, and the plain functions behind its numbers (no Streamlit).
Training-run charts and their curves: tests/test_dashboard_curves.py."""

import numpy as np
import pandas as pd
import pytest

from dashboard import analysis, figures, run_figures
from dashboard.curves import Series
from sgpo import compare, drift, units
from tests.apps import NUMBER, too_precise, values


def profile(n=400, samples=8, seed=0):
    rng = np.random.default_rng(seed)
    successes = rng.integers(0, samples + 1, n)
    p = successes / samples
    decision = np.select([p > 0.75, p > 0], ["trivial", "learnable"], "unsolved_kept")
    return pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(n)],
            "task": rng.choice(["add", "rev"], n),
            "difficulty": rng.integers(1, 4, n),
            "samples": samples,
            "successes": successes,
            "p_hat": p,
            "decision": decision,
        }
    )


def metrics(steps=10, phase_at=(4, 8)):
    s = np.arange(1, steps + 1)
    wasted = 64 - 4 * s
    return pd.DataFrame(
        {
            "step": s,
            "phase": np.searchsorted(phase_at, s, side="right"),
            "reward_mean": s / steps,
            "rollouts": 64,
            "wasted_rollouts": wasted,
            "groups": 16,
            "informative_groups": s,
            "step_wasted_fraction": wasted / 64,
            "step_informative_fraction": s / 16,
            "run_wasted_fraction": np.cumsum(wasted) / (64 * s),
            "flops_profile": 1e9,
            "flops_rollout": 1e8 * s,
            "flops_train": 2e8 * s,
            "flops_total": 1e9 + 3e8 * s,
        }
    )


def evals(flops, acc):
    return pd.DataFrame({"step": range(1, len(acc) + 1), "flops_total": flops, "accuracy": acc})


def test_histogram_counts_every_query_once_stacked_by_decision():
    frame = profile()
    fig = figures.p_hat_histogram(frame).to_plotly_json()
    assert {t["name"] for t in fig["data"]} == set(frame["decision"])
    assert sum(values(t, "y").sum() for t in fig["data"]) == len(frame)
    assert fig["layout"]["barmode"] == "stack"


def test_histogram_of_100k_distinct_p_hats_sends_binned_counts_not_points():
    frame = pd.DataFrame({"p_hat": np.random.default_rng(1).random(100_000), "decision": "learnable"})
    fig = figures.p_hat_histogram(frame).to_plotly_json()
    assert len(values(fig["data"][0], "x")) <= figures.MAX_BARS
    assert values(fig["data"][0], "y").sum() == 100_000


def test_heatmap_holds_mean_p_hat_per_task_and_difficulty():
    frame = profile()
    z = figures.difficulty_heatmap(frame).to_plotly_json()["data"][0]
    expected = frame.groupby(["task", "difficulty"])["p_hat"].mean().unstack().to_numpy()
    assert np.allclose(values(z, "z"), expected)


def test_empty_inputs_give_a_figure_with_a_message_not_an_error():
    for fig in (
        figures.p_hat_histogram(pd.DataFrame(columns=["p_hat", "decision"])),
        figures.difficulty_heatmap(pd.DataFrame(columns=["task", "difficulty", "p_hat"])),
        figures.phase_timeline([]),
        run_figures.reward_figure(pd.DataFrame()),
        run_figures.flops_figure(pd.DataFrame()),
        run_figures.accuracy_figure(pd.DataFrame()),
        run_figures.accuracy_figure([]),
        run_figures.wasted_figure([]),
        figures.transition_heatmap(pd.DataFrame()),
        figures.drift_heatmap(pd.DataFrame()),
        figures.p_hat_overlay(pd.DataFrame()),
    ):
        assert fig.layout.annotations and not fig.data


def test_phase_timeline_lays_phases_end_to_end_in_rollouts():
    phases = [
        {"phase": 0, "group_size": 2, "count": 10},
        {"phase": 1, "group_size": 4, "count": 5},
        {"phase": 2, "group_size": 8, "count": 3},
    ]
    bars = figures.phase_timeline(phases).to_plotly_json()["data"]
    assert [b["base"][0] for b in bars] == [0, 20, 40]
    assert [b["x"][0] for b in bars] == [20, 20, 24]


def test_training_charts_mark_each_phase_change_with_a_vertical_line():
    m = metrics()
    for build in (
        run_figures.reward_figure,
        run_figures.wasted_figure,
        run_figures.informative_figure,
        run_figures.flops_figure,
    ):
        shapes = build(m).to_plotly_json()["layout"]["shapes"]
        assert [s["x0"] for s in shapes] == [4, 8]


def test_flops_chart_stacks_profiling_rollout_and_training():
    data = run_figures.flops_figure(metrics()).to_plotly_json()["data"]
    assert [t["name"] for t in data] == ["profiling", "rollouts", "training"]
    assert {t["stackgroup"] for t in data} == {"flops"}


def test_wasted_chart_plots_the_step_and_run_fractions_the_trainer_logs():
    m = metrics()
    data = run_figures.wasted_figure(m).to_plotly_json()["data"]
    assert [t["name"] for t in data] == ["this step", "run so far"]
    assert np.allclose(values(data[0], "y"), m["step_wasted_fraction"])
    assert np.allclose(values(data[1], "y"), m["run_wasted_fraction"])


def test_a_step_without_rollouts_has_no_wasted_point():
    """Step 0 (before any rollout) logs run_wasted_fraction None: no point at 0 on the chart."""
    m = pd.concat(
        [pd.DataFrame({"step": [0], "phase": [0], "run_wasted_fraction": [None]}), metrics()], ignore_index=True
    )
    run = run_figures.wasted_figure(m).to_plotly_json()["data"][1]
    assert np.isnan(np.asarray(values(run, "y"), dtype=float)[0])


def test_accuracy_by_difficulty_reads_the_evals_expanded_columns():
    e = evals([1, 2], [0.5, 0.6]).assign(
        **{"by_difficulty.1": [0.9, 1.0], "by_difficulty.10": [0.1, 0.2], "by_task.add": [0.3, 0.4]}
    )
    long = analysis.accuracy_by_difficulty(e)
    assert list(long["difficulty"].unique()) == ["1", "10"]
    fig = run_figures.accuracy_figure([Series("r", evals=e)]).to_plotly_json()["data"]
    assert [t["name"] for t in fig] == ["difficulty 1", "difficulty 10", "overall"]


def reduction(base: pd.DataFrame, other: pd.DataFrame) -> tuple:
    """(factor, reading) of `other` against `base` in the Compare page's table (sgpo.compare.table_of)."""
    table = compare.table_of([{"name": "base"}, {"name": "other"}], {"base": base, "other": other}, {}, "base")
    row = table.set_index("run").loc["other"]
    return (None if pd.isna(row["compute_reduction"]) else row["compute_reduction"]), row["reduction"]


def test_compute_reduction_divides_baseline_flops_by_flops_to_match_its_final_accuracy():
    base = evals([10, 20, 30, 40], [0.2, 0.4, 0.5, 0.5])  # reaches its final 0.5 at 30
    fast = evals([5, 8, 12], [0.3, 0.5, 0.6])  # first reaches 0.5 at 8
    assert reduction(base, fast) == (pytest.approx(30 / 8), "3.75x")
    assert reduction(base, base)[0] == pytest.approx(1.0)


def test_compute_reduction_is_none_when_never_matched_or_no_evals():
    base = evals([10, 20], [0.2, 0.5])
    assert reduction(base, evals([5, 8], [0.3, 0.49])) == (None, "not yet reached")
    assert reduction(base, evals([], [])) == (None, "no evaluations yet")
    assert reduction(evals([], []), base) == (None, "no evaluations yet")


def test_compare_table_has_one_row_per_run_with_its_reduction_factor():
    e = {"g": evals([10, 20], [0.2, 0.5]), "s": evals([4, 10], [0.5, 0.6])}
    m = {"g": metrics(), "s": metrics()}
    runs = [{"name": "g", "strategy": "grpo"}, {"name": "s", "strategy": "sgpo"}]
    table = compare.table_of(runs, e, m, "g").set_index("run")
    assert table.loc["s", "compute_reduction"] == pytest.approx(20 / 4) and table.loc["s", "reduction"] == "5.00x"
    assert table.loc["g", "reduction"] == "baseline" and pd.isna(table.loc["g", "compute_reduction"])
    assert table.loc["g", "final_accuracy"] == 0.5
    assert table.loc["s", "flops_total"] == 1e9 + 3e8 * 10  # the latest step's total, not the latest eval's
    csv = analysis.to_csv(analysis.long_evals(e)).decode()
    assert csv.splitlines()[0].startswith("run,step,flops_total,accuracy") and len(csv.splitlines()) == 5


def test_phase_changes_lists_the_first_step_of_each_new_phase():
    assert analysis.phase_changes(metrics()) == [(4, 1), (8, 2)]
    assert analysis.phase_changes(pd.DataFrame()) == []


def test_filters_combine_and_search_is_a_plain_case_insensitive_substring():
    frame = profile().assign(prompt=lambda d: d["id"] + " (a+b)", answer="x")
    out = analysis.filter_queries(frame, search="Q1 (A+", tasks=["add"], p_range=(0.25, 1.0))
    assert len(out) and out["id"].str.startswith("q1").all() and (out["task"] == "add").all()
    assert (out["p_hat"] >= 0.25).all()
    assert analysis.filter_queries(frame, decisions=["trivial"])["decision"].eq("trivial").all()


def test_exports_round_trip_as_jsonl_and_parquet(tmp_path):
    frame = analysis.export_columns(profile(20).assign(prompt="p", answer="a", examples=None))
    assert "examples" not in frame
    back = pd.read_json(__import__("io").BytesIO(analysis.to_jsonl(frame)), lines=True)
    assert back["id"].tolist() == frame["id"].tolist()
    (tmp_path / "x.parquet").write_bytes(analysis.to_parquet(frame))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "x.parquet"), frame)


def test_completions_are_marked_right_or_wrong():
    cell = drift.mark_examples([{"text": "12", "reward": 1.0}, {"text": "13", "reward": 0.0}])
    assert cell == "✓ '12'  ✗ '13'"
    assert drift.mark_examples(None) == ""


def test_decision_counts_cross_decisions_with_group_size_buckets():
    q = pd.DataFrame({"decision": ["learnable", "learnable", "trivial", "unsolved_kept"], "group_size": [2, 4, 0, 8]})
    table = analysis.decision_counts(q)
    assert table.loc["learnable", "G=2"] == 1 and table.loc["trivial", "not trained"] == 1
    assert table.loc["total", "total"] == 4


def test_forecast_metrics_read_n_a_where_the_planner_gives_none():
    side = {"rollouts": 10, "flops": None, "forecast_wasted_fraction": None}
    rows = analysis.forecast_metrics({"plan": side, "baseline": {**side, "rollouts": 40}, "ratio": None})
    assert [r[2] for r in rows] == ["10", "n/a", "n/a", "n/a"] and rows[0][3] == "-30 vs GRPO"
    big = analysis.forecast_metrics(
        {"plan": {**side, "rollouts": 1_234_567}, "baseline": {**side, "rollouts": 2_000}, "ratio": 2.5}
    )
    assert big[0][2] == "1.23 M" and big[0][3] == "+1.23 M vs GRPO" and big[3][2] == "2.50x"
    assert units.flops(74_286_907_893_760) == "74.3 TFLOP" and units.flops(6_278_280_938_496) == "6.28 TFLOP"


def test_forecast_table_reads_in_human_units():
    side = {
        "rollouts": 12_345,
        "flops": 6_278_280_938_496,
        "flops_rollout": 2.1e12,
        "flops_train": 4.2e12,
        "forecast_informative_fraction": 0.6812,
        "expected_wasted_rollouts": 3_937.4,
        "forecast_wasted_fraction": 0.3188,
    }
    table = analysis.forecast_rows({"plan": side, "baseline": side})
    assert table.loc["total compute (profiling included)", "plan"] == "6.28 TFLOP"
    assert table.loc["rollouts", "plan"] == "12,345" and table.loc["expected wasted fraction", "baseline"] == "31.9%"
    assert not table.map(lambda v: any(ch.isdigit() for ch in v) and len(v.replace(",", "")) > 12).any().any()


def test_reduction_means_something_or_says_why_not():
    def ev(acc, start=None):
        rows = [(0, 1.0, start)] if start is not None else []
        rows += [(i + 1, 10.0 * (i + 1), a) for i, a in enumerate(acc)]
        return pd.DataFrame(rows, columns=["step", "flops_total", "accuracy"])

    base = ev([0.4, 0.6], start=0.3)
    assert reduction(base, ev([0.6, 0.7], start=0.3)) == (pytest.approx(2.0), "2.00x")
    assert reduction(base, ev([0.4, 0.5], start=0.3)) == (None, "not yet reached")
    assert reduction(ev([0.3, 0.2], start=0.3), base)[1] == "n/a: baseline has not improved"
    assert reduction(base, ev([0.7], start=0.65))[1] == "n/a: starts at the target"
    assert reduction(base, ev([]))[1] == "no evaluations yet"
    # the step-0 eval never counts as reaching: profiling alone is not training to the target
    assert reduction(ev([0.6], start=0.3), ev([0.6], start=0.3))[0] == pytest.approx(1.0)


def test_knobs_that_differ_are_found_flattened_and_filterable():
    configs = {
        "a": {"strategy": "sgpo", "lr": 5e-5, "steps": 20_000, "plan": {"trivial_threshold": 0.6}},
        "b": {"strategy": "sgpo", "lr": 1e-4, "steps": 20_000, "plan": {}},
        "g": {"strategy": "grpo", "lr": 5e-5, "steps": 20_000, "plan": {}},
        "ext": {},
    }  # a run from elsewhere: no knobs at all
    knobs = analysis.run_knobs(configs, plan_defaults={"trivial_threshold": 0.75, "g_max": 8})
    assert knobs.loc["b", "plan.trivial_threshold"] == 0.75 and pd.isna(knobs.loc["g", "plan.trivial_threshold"])
    assert analysis.differing_knobs(knobs) == ["lr", "plan.trivial_threshold"]  # steps and g_max agree where set
    assert analysis.knob_text(20_000) == "20,000" and analysis.knob_text(5e-5) == "5e-05"
    assert analysis.knob_text(None) == "—" and analysis.knob_text(True) == "true"
    runs = [{"name": n, "strategy": c.get("strategy", "trl")} for n, c in configs.items()]
    assert [r["name"] for r in analysis.filter_runs(runs, knobs, wanted={"lr": ["5e-05"]})] == ["a", "g"]
    assert [r["name"] for r in analysis.filter_runs(runs, knobs, strategies=["sgpo"], wanted={"lr": []})] == ["a", "b"]
    assert [r["name"] for r in analysis.filter_runs(runs, knobs, strategies=["trl"])] == ["ext"]


def test_compare_table_is_shown_in_human_units_with_the_differing_knobs():
    e = {"g": evals([10e12, 20e12], [0.2, 0.5]), "s": evals([4e12, 10e12], [0.5, 0.61234])}
    m = {"g": metrics(), "s": metrics(steps=12_345)}
    runs = [{"name": "g", "strategy": "grpo", "step": 10}, {"name": "s", "strategy": "sgpo", "step": 12_345}]
    table = compare.table_of(runs, e, m, "g")
    knobs = analysis.run_knobs({"g": {"lr": 5e-5}, "s": {"lr": 1e-4}})
    shown = analysis.human_table(table, knobs[["lr"]]).set_index("run")
    assert shown.loc["s", "final accuracy"] == "61.2%" and shown.loc["s", "at step"] == "12,345"
    assert shown.loc["s", "compute reduction"] == "5.00x" and shown.loc["g", "compute reduction"] == "baseline"
    assert shown.loc["s", "total compute"].endswith("TFLOP") and shown.loc["g", "lr"] == "5e-05"
    assert all(isinstance(v, str) for v in shown.to_numpy().ravel())
    groups = analysis.group_table(table, knobs, "strategy").set_index("strategy")
    assert groups.loc["sgpo", "runs"] == "1" and groups.loc["sgpo", "best reduction"] == "5.00x"
    by_lr = analysis.group_table(table, knobs, "lr")
    assert by_lr["lr"].tolist() == ["0.0001", "5e-05"]


def test_exports_carry_both_p_hats_when_compared():
    frame = profile(10).assign(
        p_hat_before=0.25, p_hat_after=lambda d: d["p_hat"], bucket_before="G=4", bucket_after="trivial"
    )
    out = analysis.export_columns(frame)
    assert {"p_hat", "p_hat_before", "p_hat_after", "bucket_before", "bucket_after"} <= set(out.columns)
    back = pd.read_json(__import__("io").BytesIO(analysis.to_jsonl(out)), lines=True)
    assert back["p_hat_before"].eq(0.25).all() and back["p_hat_after"].tolist() == out["p_hat"].tolist()


def test_the_human_units_check_flags_raw_numbers_only():
    flagged = [t for t in NUMBER.findall("6278280938496 FLOPs, 0.41666 p_hat, step 20000") if too_precise(t)]
    assert flagged == ["6278280938496", "0.41666", "20000"]
    fine = "6.28 TFLOP, 41.7%, step 20,000, 0.4167, 5e-05, 2.35e+12, add-train-00504, 12:05:33"
    assert not [t for t in NUMBER.findall(fine) if too_precise(t)]
