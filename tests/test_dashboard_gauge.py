"""The critical-batch gauge on the dashboard: the Train page charts B_simple against the step's rollouts and says
each run's verdict in words (TRL runs say why they have none); the Plan page recommends a batch from a run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.synthetic import fill_profile
from dashboard.run_figures import gauge_figure
from sgpo.store import Store
from sgpo.train import TrainConfig
from tests.apps import app, chart, no_exception, values


def _gauged_run(store: Store, name: str, *, b_informative: float, steps: int = 30, engine: str = "native") -> int:
    """A run whose steps logged the gauge: 256 rollouts a step, half of them informative, B_simple as given."""
    run = store.create_run(name=name, strategy="grpo", config=TrainConfig(strategy="grpo", engine=engine).to_dict())
    store.update_run(run, status="finished")
    store.log_step(run, 0, 0, 0.0, {"initial": True, "flops_total": 0.0})
    for step in range(1, steps + 1):
        row = {"rollouts": 256, "wasted_rollouts": 128, "flops_total": 1e9 * step}
        if engine == "native":
            b = math.inf if step == 1 else b_informative  # unresolved at first: logged inf, not drawn
            row |= {"noise_g2": 1.0, "noise_trace": b_informative, "noise_informative_share": 0.5}
            row |= {"noise_scale_informative": b, "noise_scale_rollouts": 2 * b}
        store.log_step(run, step, 0, 0.1 * step, row)
    return run


def test_the_gauge_chart_draws_the_critical_batch_against_the_steps_rollouts_on_a_log_axis():
    steps = np.arange(1, 31)
    metrics = pd.DataFrame(
        {
            "step": steps,
            "rollouts": 256,
            "wasted_rollouts": 128,
            "noise_scale_rollouts": np.where(steps == 1, np.inf, 80.0),
        }
    )
    fig = gauge_figure(metrics).to_plotly_json()
    assert fig["layout"]["yaxis"]["type"] == "log"
    by_name = {t["name"]: t for t in fig["data"]}
    assert set(by_name) == {"critical batch B_simple", "rollouts a step", "informative rollouts a step"}
    b = values(by_name["critical batch B_simple"], "y")
    assert np.isnan(b[0]) and np.allclose(b[1:], 80.0)  # inf (unresolved) is left out, never drawn at the top
    assert np.allclose(values(by_name["informative rollouts a step"], "y"), 128)


def test_the_train_page_says_each_runs_verdict_and_why_a_trl_run_has_none(app_env):
    s = Store(app_env)
    fill_profile(s, "prof", n=16)
    _gauged_run(s, "trl-run", b_informative=40.0, engine="trl")
    _gauged_run(s, "native", b_informative=40.0)
    at = app("train", train_run="native", train_overlay=["trl-run"])
    no_exception(at)
    words = {c.value for c in at.caption}
    assert any(w.startswith("critical batch of native: step-limited: a step holds 128 informative") for w in words)
    assert any("critical batch of trl-run: the TRL engine does not expose per-micro-batch" in w for w in words)
    fig = chart(at, "chart_gauge")
    assert fig["layout"]["yaxis"]["type"] == "log"
    assert any(np.nanmax(values(t, "y")) == 80.0 for t in fig["data"] if t["name"].startswith("native"))


def test_the_plan_page_recommends_a_batch_from_the_gauge_of_a_chosen_run(app_env):
    s = Store(app_env)
    fill_profile(s, "prof", n=120)
    _gauged_run(s, "baseline", b_informative=40.0)
    at = app("plan")
    at.selectbox(key="plan_pilot_run").set_value("baseline").run()
    no_exception(at)
    metric = next(m for m in at.metric if m.label == "recommended rollouts a step")
    assert int(metric.value.replace(",", "")) > 40
    assert any("under a FLOP budget" in c.value and "within 10% of the least compute" in c.value for c in at.caption)
    assert not at.error
