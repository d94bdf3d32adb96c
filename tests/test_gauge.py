"""The gauge's verdict in words (sgpo/gauge.py) and the batch it recommends for a plan."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sgpo import gauge


def _metrics(steps=40, *, b_informative=32.0, rollouts=256, wasted=128, estimated=None):
    """A run's metrics frame: step 0, then `steps` steps of `rollouts` rollouts (`wasted` of them wasted) whose
    gauge reads `b_informative` (informative share 1 - wasted / rollouts); `estimated` steps carry an estimate."""
    estimated = steps if estimated is None else estimated
    share = 1 - wasted / rollouts
    rows = [{"step": 0}]
    for s in range(1, steps + 1):
        row = {"step": s, "rollouts": rollouts, "wasted_rollouts": wasted}
        if s > steps - estimated:
            row |= {"noise_g2": 1.0, "noise_trace": b_informative}
            row |= {"noise_scale_informative": b_informative, "noise_scale_rollouts": b_informative / share}
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "b_informative, state",
    [
        (32.0, "step-limited"),
        (200.0, "near the critical batch"),
        (1000.0, "sample-limited"),
        (math.inf, "sample-limited"),
    ],
)
def test_the_verdict_sets_the_steps_informative_rollouts_against_the_critical_batch(b_informative, state):
    v = gauge.verdict(_metrics(b_informative=b_informative))  # a step holds 128 informative rollouts
    assert v["state"] == state and v["words"].startswith(state) and "\n" not in v["words"]
    assert v["informative_per_step"] == 128 and v["rollouts_per_step"] == 256 and v["steps"] == 40
    assert v["critical_informative"] == b_informative


def test_the_thresholds_are_two_and_a_half_times_the_critical_batch():
    assert gauge.verdict(_metrics(b_informative=63.9))["state"] == "step-limited"  # 128 / 63.9 > 2
    assert gauge.verdict(_metrics(b_informative=64.0))["state"] == "near the critical batch"
    assert gauge.verdict(_metrics(b_informative=256.0))["state"] == "near the critical batch"
    assert gauge.verdict(_metrics(b_informative=256.1))["state"] == "sample-limited"


def test_too_few_estimated_steps_give_no_verdict_yet():
    v = gauge.verdict(_metrics(estimated=gauge.MIN_STEPS - 1))
    assert v["state"] == "not enough steps yet" and f"{gauge.MIN_STEPS - 1} of the {gauge.MIN_STEPS}" in v["words"]
    assert gauge.verdict(_metrics(steps=0))["state"] == "not enough steps yet"


def test_a_run_without_gauge_metrics_and_a_trl_run_say_why_there_is_no_verdict():
    plain = _metrics().drop(columns=["noise_g2", "noise_trace", "noise_scale_informative", "noise_scale_rollouts"])
    v = gauge.verdict(plain, 256)
    assert v["state"] == "not measured" and "--gauge-chunks 0" in v["words"] and v["critical_rollouts"] is None
    trl = gauge.verdict(_metrics(), engine="trl")
    assert trl["state"] == "not measured" and trl["words"] == gauge.TRL_WORDS
    assert "does not expose per-micro-batch gradients" in trl["words"] and "pilot" in trl["words"]


def _forecast(plan_share=0.5, grpo_share=0.25):
    side = lambda share: {"rollouts": 1000.0, "expected_informative_rollouts": 1000.0 * share}  # noqa: E731
    return {"run": {"skip": {"plan": side(plan_share), "baseline": side(grpo_share)}}}


def test_the_recommended_batch_is_the_critical_batch_over_each_sides_informative_share():
    rec = gauge.recommend(_forecast(), gauge.verdict(_metrics(b_informative=40.0)), source="pilot")
    assert rec["informative_per_step"] == 40.0
    assert rec["rollouts_per_step"] == 80 and rec["grpo_rollouts_per_step"] == 160
    assert rec["least_compute_rollouts_per_step"] == 8 and rec["least_compute_informative_per_step"] == 4.0
    assert "--batch-rollouts 8 or fewer" in rec["basis"] and "twice the least compute" in rec["basis"]
    assert rec["from"] == "pilot" and rec["steps"] == 40 and "--batch-rollouts 80" in rec["basis"]
    json.dumps(rec, allow_nan=False)  # what `sgpo plan --json` prints: plain JSON


def test_an_unresolved_critical_batch_recommends_nothing_and_says_why():
    rec = gauge.recommend(_forecast(), gauge.verdict(_metrics(b_informative=np.inf)), source="pilot")
    assert rec["rollouts_per_step"] is None and "no finite critical batch" in rec["basis"]
    assert rec["least_compute_rollouts_per_step"] is None
    json.dumps(rec, allow_nan=False)


def test_pooled_is_the_ratio_of_mean_trace_to_mean_g2_with_an_interval_around_it():
    rng = np.random.default_rng(0)
    g2 = 2.0 + rng.normal(0, 0.5, 400)
    trace = 600.0 + rng.normal(0, 100, 400)
    frame = pd.DataFrame({"step": np.arange(1, 401), "noise_g2": g2, "noise_trace": trace,
                          "rollouts": 64, "wasted_rollouts": 48})  # fmt: skip
    out = gauge.pooled([frame.iloc[:200], frame.iloc[200:]])
    assert out["steps"] == 400
    assert out["critical_informative"] == pytest.approx(trace.mean() / g2.mean())
    assert out["informative_share"] == pytest.approx(16 / 64)
    assert out["critical_rollouts"] == pytest.approx(out["critical_informative"] * 4)
    assert out["low_informative"] < out["critical_informative"] < out["high_informative"]


def test_pooled_without_gauge_steps_measures_nothing():
    frame = pd.DataFrame({"step": [1, 2], "rollouts": [64, 64], "wasted_rollouts": [8, 8]})
    out = gauge.pooled([frame])
    assert out["steps"] == 0 and out["critical_informative"] is None
