"""Training curves (dashboard/curves.py) and the run charts built on them (dashboard/run_figures.py):
x-axes, smoothing, spike-keeping downsampling, one colour per run, the plan's forecast line."""

import json

import numpy as np
import pandas as pd
import pytest

from dashboard import analysis, curves, run_figures
from dashboard.curves import Series
from sgpo import compare
from tests.apps import values


def metrics(steps=10, seed=0, tokens=True):
    """A run's metrics as the trainer logs them, step 0 included."""
    rng = np.random.default_rng(seed)
    s = np.arange(0, steps + 1)
    wasted = rng.integers(0, 64, len(s))
    frame = pd.DataFrame(
        {
            "step": s,
            "phase": np.searchsorted([steps // 2], s, side="right"),
            "wall_seconds": 1.5 * s,
            "reward_mean": rng.random(len(s)),
            "rollouts": 64,
            "wasted_rollouts": wasted,
            "groups": 16,
            "informative_groups": 16 - wasted // 4,
            "step_wasted_fraction": wasted / 64,
            "run_wasted_fraction": np.cumsum(wasted) / (64 * np.maximum(s, 1)),
            "flops_profile": 1e12,
            "flops_rollout": 1e9 * s,
            "flops_train": 2e9 * s,
            "flops_total": 1e12 + 3e9 * s,
        }
    )
    if tokens:
        frame = frame.assign(tokens_prompt=100, tokens_completion=50, tokens_total=150 * s)
    return frame


def tensorboard(y, w):
    """TensorBoard's smoothing loop, written out."""
    last, n, out = 0.0, 0, []
    for v in y:
        if np.isnan(v):
            out.append(v)
            continue
        last, n = last * w + (1 - w) * v, n + 1
        out.append(last / (1 - w**n))
    return np.array(out)


def test_smoothing_is_tensorboards_debiased_moving_average():
    y = np.random.default_rng(1).random(200)
    y[[3, 50]] = np.nan
    for w in (0.3, 0.6, 0.99):
        assert np.allclose(curves.smooth(y, w), tensorboard(y, w), equal_nan=True)
    assert curves.smooth(y, 0.6)[0] == pytest.approx(y[0])  # debiased: the start is not pulled towards 0
    assert np.array_equal(curves.smooth(y, 0.0), y, equal_nan=True)


def test_downsampling_keeps_every_spike_and_bounds_the_points():
    y = np.random.default_rng(2).normal(0, 0.01, 20_001)
    y[[777, 12_345]], y[19_000] = 5.0, -5.0  # one-step spikes and a dip
    keep = curves.minmax_indices(y)
    assert len(keep) <= 2 * curves.BUCKETS + 2
    assert {0, 777, 12_345, 19_000, 20_000} <= set(keep.tolist())
    assert np.all(np.diff(keep) > 0)  # in order, no duplicates
    assert np.array_equal(curves.minmax_indices(y[:1000]), np.arange(1000))  # short runs are drawn whole


def test_x_axes_read_the_trainers_columns():
    m = metrics()
    assert np.array_equal(curves.x_values(m, "step"), m["step"])
    assert np.array_equal(curves.x_values(m, "FLOPs"), m["flops_total"])
    assert np.array_equal(curves.x_values(m, "tokens"), m["tokens_total"])
    assert np.array_equal(curves.x_values(m, "wall time"), m["wall_seconds"])
    per_step = m.drop(columns="tokens_total")  # the cumulative count is rebuilt from the per-step one
    assert np.array_equal(curves.x_values(per_step, "tokens"), np.cumsum([150] * 11))
    assert curves.x_values(m[["step", "reward_mean"]], "FLOPs") is None
    e = pd.DataFrame({"step": [0, 5, 10], "flops_total": [1e12, 1.1e12, 1.2e12], "accuracy": [0.1, 0.2, 0.3]})
    assert np.array_equal(curves.eval_x(e, m, "wall time"), [0, 7.5, 15])
    assert np.array_equal(curves.eval_x(e, m, "FLOPs"), e["flops_total"])
    assert curves.wall_unit(90) == ("s", 1.0)
    assert curves.wall_unit(3000)[0] == "min" and curves.wall_unit(9000)[0] == "h"


def test_each_run_keeps_its_colour_whatever_is_shown_with_it():
    a, b, k = {"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 11, "name": "k"}
    both = curves.run_colors([a, b])
    assert both == {"a": curves.PALETTE[0], "b": curves.PALETTE[1]}
    assert curves.run_colors([b]) == {"b": both["b"]}
    clash = curves.run_colors([a, k])  # id 11 would take id 1's colour: it gets the next free one
    assert clash["a"] == both["a"] and clash["k"] != clash["a"]
    assert len(set(curves.run_colors([{"id": i, "name": str(i)} for i in range(1, 9)]).values())) == 8


def test_the_forecast_is_the_plans_for_sgpo_and_the_baselines_for_grpo():
    plan = {"forecast": {"plan": {"forecast_wasted_fraction": 0.38}, "baseline": {"forecast_wasted_fraction": 0.55}}}
    assert curves.forecast_of({"strategy": "sgpo", "plan": plan}) == 0.38
    assert curves.forecast_of({"strategy": "grpo", "plan": plan}) == 0.55
    assert curves.forecast_of({"strategy": "dapo", "plan": plan}) is None
    assert curves.forecast_of({"strategy": "trl-grpo", "plan": plan}) == 0.38  # a run from elsewhere with a plan
    assert curves.forecast_of({"strategy": "grpo", "plan": None}) is None
    assert curves.forecast_of({"strategy": "sgpo"}) is None


def series(n=2, steps=10):
    return [
        Series(
            f"run{i}",
            curves.PALETTE[i],
            metrics(steps, seed=i),
            pd.DataFrame({"step": [0, steps], "flops_total": [1e12, 1e12 + 3e9 * steps], "accuracy": [0.2, 0.5]}),
            forecast=0.3 + 0.1 * i,
        )
        for i in range(n)
    ]


def chart(fig) -> dict:
    return json.loads(fig.to_json())


def test_every_chart_overlays_every_run_in_its_own_colour():
    runs = series(2)
    for fig in (
        run_figures.reward_figure(runs, smooth=0.6),
        run_figures.wasted_figure(runs, smooth=0.6),
        run_figures.informative_figure(runs),
        run_figures.flops_figure(runs),
        run_figures.accuracy_figure(runs),
    ):
        data = chart(fig)["data"]
        colours = {}
        for t in data:
            colours.setdefault(t["legendgroup"], set()).add(t["line"]["color"])
        assert colours == {"run0": {curves.PALETTE[0]}, "run1": {curves.PALETTE[1]}}
        assert {t["name"] for t in data if t.get("showlegend", True)} == {"run0", "run1"}  # one legend entry a run


def test_smoothing_draws_the_raw_values_faint_behind_the_smoothed_line():
    m = metrics(50)
    data = chart(run_figures.reward_figure(m, smooth=0.9))["data"]
    raw, smoothed = data
    assert raw["opacity"] == run_figures.RAW_OPACITY and raw["hoverinfo"] == "skip" and "opacity" not in smoothed
    assert np.allclose(values(raw, "y"), m["reward_mean"])
    assert np.allclose(values(smoothed, "y"), curves.smooth(m["reward_mean"], 0.9))
    assert len(chart(run_figures.reward_figure(m, smooth=0.0))["data"]) == 1  # no smoothing: the raw line alone


@pytest.mark.parametrize(
    "axis, title, column",
    [
        ("FLOPs", "FLOP", "flops_total"),
        ("tokens", "tokens", "tokens_total"),
        ("wall time", "wall time (s)", "wall_seconds"),
        ("step", "training step", "step"),
    ],
)
def test_the_x_axis_choice_moves_every_chart_and_says_its_unit(axis, title, column):
    m = metrics()
    for fig in (
        run_figures.reward_figure(m, axis),
        run_figures.wasted_figure(m, axis),
        run_figures.flops_figure(m, axis),
    ):
        spec = chart(fig)
        assert title in spec["layout"]["xaxis"]["title"]["text"]
        assert np.allclose(values(spec["data"][0], "x"), m[column])
        assert spec["layout"]["yaxis"]["title"]["text"]  # every chart says what its y-axis counts


def test_a_run_that_did_not_log_the_chosen_axis_is_left_out_not_drawn_at_zero():
    bare = Series("ext", metrics=pd.DataFrame({"step": [0, 1, 2], "reward_mean": [0.1, 0.2, 0.3]}))
    fig = chart(run_figures.reward_figure([bare, *series(1)], "FLOPs"))
    assert {t["legendgroup"] for t in fig["data"]} == {"run0"}
    assert "nothing logged" in chart(run_figures.reward_figure([bare], "FLOPs"))["layout"]["annotations"][0]["text"]


def test_the_wasted_chart_draws_each_plans_forecast_as_a_reference_line():
    runs = series(2)
    layout = chart(run_figures.wasted_figure(runs))["layout"]
    lines = [s for s in layout["shapes"] if s["y0"] == s["y1"]]
    assert sorted((s["y0"], s["line"]["color"]) for s in lines) == [(0.3, curves.PALETTE[0]), (0.4, curves.PALETTE[1])]
    assert any(a["text"] == "run1 forecast 40.0%" for a in layout["annotations"])
    assert "plan forecast" in layout["title"]["subtitle"]["text"]
    runs[1].forecast = None
    assert len([s for s in chart(run_figures.wasted_figure(runs))["layout"]["shapes"] if s["y0"] == s["y1"]]) == 1


def test_a_run_of_20000_steps_reaches_the_browser_as_at_most_1602_points_a_line_spikes_kept():
    m = metrics(20_000)
    m.loc[4321, "reward_mean"] = 7.0
    for build in (
        run_figures.reward_figure,
        run_figures.wasted_figure,
        run_figures.informative_figure,
        run_figures.flops_figure,
    ):
        for trace in chart(build(m, "step", 0.6) if build is not run_figures.flops_figure else build(m))["data"]:
            assert len(values(trace, "x")) <= 2 * curves.BUCKETS + 2
    raw = chart(run_figures.reward_figure(m, "step", 0.6))["data"][0]
    assert 7.0 in values(raw, "y") and 4321 in values(raw, "x")


def test_the_run_forecast_is_read_under_the_behaviour_the_run_trained_with():
    def behaviour(reduction, wasted):
        side = {"forecast_wasted_fraction": wasted, "steps": 100, "flops_per_informative_rollout": 2e9}
        return {
            "plan": side,
            "baseline": {**side, "forecast_wasted_fraction": 0.6},
            "reduction_factor": reduction,
            "flops_profile_share": 0.2,
            "verdict": "words",
        }

    plan = {
        "forecast": {
            "plan": {"forecast_wasted_fraction": 0.38},
            "baseline": {"forecast_wasted_fraction": 0.55},
            "run": {
                "skip": behaviour(0.8, 0.41),
                "train_all": behaviour(1.6, 0.43),
                "phases": [{"phase": 0, "forecast_informative_fraction": 0.7}],
            },
        }
    }
    native = {"strategy": "sgpo", "plan": plan, "config": {"engine": "native", "skip_zero_advantage": True}}
    planned = compare.planned(native)
    assert planned["behaviour"] == "skip" and planned["reduction_factor"] == 0.8 and planned["wasted"] == 0.41
    assert planned["first_phase_informative"] == 0.7 and planned["profile_share"] == 0.2
    assert curves.forecast_of(native) == 0.41  # the run forecast, not the one-pass 0.38
    for config in ({"engine": "trl"}, {"engine": "native", "skip_zero_advantage": False}):
        assert compare.planned({**native, "config": config})["reduction_factor"] == 1.6
    grpo = compare.planned({**native, "strategy": "grpo"})
    assert grpo["wasted"] == 0.6 and grpo["reduction_factor"] is None  # GRPO is what the factor is against
    assert compare.planned({**native, "strategy": "greso"}) is None
    assert curves.forecast_of({**native, "strategy": "greso"}) is None


def test_forecast_beside_measured_reads_the_run_so_far():
    planned = {
        "behaviour": "skip",
        "wasted": 0.4,
        "first_phase_informative": 0.7,
        "flops_per_informative_rollout": 2e9,
        "steps": 10,
        "profile_share": 0.25,
        "reduction_factor": 1.2,
    }
    m = pd.DataFrame(
        {
            "step": [0, 1, 2, 3],
            "phase": [0, 0, 0, 1],
            "rollouts": [0, 100, 100, 100],
            "wasted_rollouts": [0, 50, 30, 40],
            "groups": [0, 10, 10, 10],
            "informative_groups": [0, 5, 7, 6],
            "flops_total": [1e11, 2e11, 3e11, 4e11],
            "flops_profile": [1e11] * 4,
        }
    )
    table = analysis.forecast_beside_measured(planned, m).set_index("quantity")
    assert table.loc["wasted rollouts"].tolist() == ["40.0%", "40.0%"]  # 120 of 300
    assert table.loc["informative groups, first phase"].tolist() == ["70.0%", "60.0%"]  # 12 of 20 in phase 0
    assert table.loc["FLOPs per informative rollout", "measured"] == "2.22 GFLOP"  # 4e11 / 180
    assert table.loc["steps"].tolist() == ["10", "3"]
    assert table.loc["profiling's share of the FLOPs", "measured"] == "25.0%"
    assert analysis.forecast_beside_measured(None, m).empty
