"""Charts that can be read: accuracy axes fit the data, phase labels never overlap, Compare draws the seeds of
one setting as a mean line with a band (seeds on a toggle) and measures against a finished GRPO run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.synthetic import fill_long_run, fill_run
from dashboard import run_figures
from dashboard.analysis import default_baseline
from dashboard.curves import Series
from sgpo.store import Store
from tests.apps import app, chart, no_exception, values


def evals(acc, step=None):
    step = np.arange(len(acc)) * 10 if step is None else step
    return pd.DataFrame({"step": step, "flops_total": step * 1e9, "accuracy": acc})


def test_an_accuracy_axis_fits_a_few_points_of_difference_instead_of_0_to_100():
    a = Series("a", evals([0.41, 0.43, 0.45]))
    a.evals, a.metrics = a.metrics, pd.DataFrame({"step": [0, 10, 20]})
    fig = run_figures.accuracy_figure([a, Series("b", evals=evals([0.40, 0.42, 0.44]), color="#f00")], "step")
    lo, hi = fig.layout.yaxis.range
    assert 0.3 < lo < 0.40 and 0.45 < hi < 0.55  # the data, padded, not [0, 1.02]


def test_the_fitted_range_stays_inside_0_and_1_and_is_never_too_narrow():
    assert run_figures.fit_range([0.0, 0.02])[0] < 0 < 0.1 <= run_figures.fit_range([0.0, 0.02])[1]
    lo, hi = run_figures.fit_range([0.97, 1.0])
    assert hi > 1.0 and lo >= 0.85
    lo, hi = run_figures.fit_range([0.5])
    assert hi - lo >= 0.1
    assert run_figures.fit_range([np.nan]) is None


def test_phase_labels_closer_than_a_label_are_staggered_then_left_out():
    rows = run_figures.label_rows([0, 1, 2, 3, 50, 100], span=100)
    assert rows == [0, 1, 2, None, 0, 0]
    placed = [(x, r) for x, r in zip([0, 1, 2, 3, 50, 100], rows) if r is not None]
    for i, (x, r) in enumerate(placed):  # no two labels of one row closer than a label's width
        assert all(abs(x - y) >= run_figures.LABEL_WIDTH * 100 for y, q in placed[i + 1 :] if q == r)


def test_short_phases_draw_every_line_but_only_labels_that_fit(app_env):
    s = Store(app_env)
    fill_run(s, "r", "sgpo", steps=60, phases=(2, 3, 4, 5, 6, 30))
    fig = run_figures.reward_figure([Series("r", metrics=s.metrics_frame(1))], "step")
    lines = [sh for sh in fig.layout.shapes if sh.x0 == sh.x1]
    labels = [a for a in fig.layout.annotations if str(a.text).startswith("phase")]
    assert len(lines) == 6 and 0 < len(labels) < 6
    boxes = {}
    for a in labels:  # labels of one row stay a label's width apart
        boxes.setdefault(a.y, []).append(a.x)
    for xs in boxes.values():
        assert all(b - a >= run_figures.LABEL_WIDTH * 59 for a, b in zip(sorted(xs), sorted(xs)[1:]))


def seeded(s, name, strategy, seed, speed):
    fill_long_run(
        s,
        name,
        strategy,
        steps=40,
        eval_every=10,
        seed=seed,
        config={"strategy": strategy, "lr": 5e-5, "seed": seed, "steps": 40},
    )
    s.db.execute("UPDATE evals SET accuracy = accuracy + ? WHERE run_id = ?", [speed, s.find_run(name)["id"]])
    s.db.conn.commit()


def test_compare_draws_the_seeds_of_a_setting_as_a_mean_with_a_band_and_each_on_a_toggle(app_env):
    s = Store(app_env)
    seeded(s, "g-s0", "grpo", 0, 0.0)
    seeded(s, "g-s1", "grpo", 1, 0.02)
    seeded(s, "s-s0", "sgpo", 0, 0.04)
    at = app("compare", compare_runs=["g-s0", "g-s1", "s-s0"])
    no_exception(at)
    fig = chart(at, "chart_accuracy_flops")
    names = [t.get("name") for t in fig["data"] if t.get("showlegend") is not False]
    assert names == ["g-s0 (mean of 2 seeds)", "s-s0"]
    band = next(t for t in fig["data"] if t.get("fill") == "toself")
    ys = values(band, "y")
    assert (ys[: len(ys) // 2] >= ys[len(ys) // 2 :][::-1] - 1e-9).all()  # high above low
    at.toggle(key="compare_seeds").set_value(True).run()
    names = [t.get("name") for t in chart(at, "chart_accuracy_flops")["data"]]
    assert {"g-s0", "g-s1", "s-s0"} <= set(names)


def test_the_default_baseline_is_a_finished_grpo_run_not_a_running_one(app_env):
    runs = [
        {"name": "old", "strategy": "grpo", "status": "finished"},
        {"name": "new", "strategy": "grpo", "status": "running"},
        {"name": "s", "strategy": "sgpo", "status": "finished"},
    ]
    assert default_baseline(runs) == "old"
    assert default_baseline(runs[1:]) == "new"  # no finished one: the newest GRPO run
    assert default_baseline(runs[2:]) is None
    s = Store(app_env)
    fill_run(s, "done", "grpo", steps=10)
    fill_run(s, "going", "grpo", steps=5, status="running")
    fill_run(s, "mine", "sgpo", steps=10)
    at = app("compare", compare_runs=["going", "done", "mine"])
    no_exception(at)
    assert at.selectbox(key="compare_baseline").value == "done"
