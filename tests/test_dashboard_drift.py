"""Before against after (sgpo.drift and the Audit page's figures): plan buckets, the transition matrix, drift per task
and difficulty, the queries learned and forgotten."""

import json

import numpy as np
import pandas as pd

from dashboard import figures
from sgpo import drift
from tests.apps import values


def side(p_hats, g=None, decision=None, task="add"):
    n = len(p_hats)
    p = np.asarray(p_hats, dtype=float)
    decision = decision or ["trivial" if x > 0.75 else "learnable" if x > 0 else "unsolved_kept" for x in p]
    g = g or [0 if d != "learnable" else 2 if x >= 0.5 else 8 for d, x in zip(decision, p)]
    return pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(n)],
            "task": task,
            "difficulty": np.arange(n) % 3 + 1,
            "p_hat": p,
            "decision": decision,
            "group_size": g,
            "examples": [[{"text": f"{i}", "reward": float(x > 0)}] for i, x in enumerate(p)],
        }
    )


def test_buckets_follow_the_plans_decision_and_group_size_easiest_first():
    q = side([1.0, 0.6, 0.2, 0.0], decision=["trivial", "learnable", "learnable", "unsolved_dropped"])
    assert drift.buckets(q).tolist() == ["trivial", "G=2", "G=8", "unsolved"]
    order = drift.bucket_order({"G=16", "unsolved", "G=2", "trivial", "G=4"})
    assert order == ["trivial", "G=2", "G=4", "G=16", "unsolved"]


def test_the_transition_matrix_counts_every_shared_query_once():
    before = side([0.0, 0.0, 0.25, 0.6, 1.0, 0.9])
    after = side([0.0, 0.5, 1.0, 0.6, 0.25, 1.0, 0.5])  # one more query: profiled only after
    both = drift.pair(before.assign(bucket=drift.buckets(before)), after.assign(bucket=drift.buckets(after)))
    assert len(both) == 6 and {"p_hat_before", "p_hat_after", "bucket_before", "bucket_after", "change"} <= set(both)
    counts = drift.transition_matrix(both)
    assert list(counts.index) == list(counts.columns) == ["trivial", "G=2", "G=8", "unsolved"]
    assert counts.to_numpy().sum() == 6
    assert counts.at["unsolved", "unsolved"] == 1 and counts.at["unsolved", "G=2"] == 1
    assert counts.at["G=8", "trivial"] == 1 and counts.at["trivial", "G=8"] == 1
    shares = drift.row_shares(counts)
    assert np.allclose(shares.sum(axis=1), 1.0)
    fig = json.loads(figures.transition_heatmap(counts).to_json())["data"][0]
    assert np.array_equal(values(fig, "customdata"), counts.to_numpy()) and "1<br>50%" in fig["text"][3]


def test_learned_and_forgotten_are_the_large_moves_largest_first_with_both_sides_samples():
    before, after = side([0.0, 0.125, 0.875, 1.0, 0.5]), side([1.0, 0.75, 0.125, 0.875, 0.5])
    both = drift.pair(before.assign(bucket=drift.buckets(before)), after.assign(bucket=drift.buckets(after)))
    learned = drift.moved(both, 0.5, up=True)
    assert learned["id"].tolist() == ["q0", "q1"]
    assert learned["completions_before"].iloc[0] == "✗ '0'" and learned["completions_after"].iloc[0] == "✓ '0'"
    assert drift.moved(both, 0.5, up=False)["id"].tolist() == ["q2"]
    assert drift.moved(both, 0.1, up=False)["id"].tolist() == ["q2", "q3"]


def test_drift_per_task_and_difficulty():
    before = pd.concat([side([0.0, 0.5], task="add"), side([1.0, 1.0], task="rev").assign(id=["r0", "r1"])])
    after = pd.concat([side([1.0, 0.5], task="add"), side([0.0, 1.0], task="rev").assign(id=["r0", "r1"])])
    both = drift.pair(before.assign(bucket=drift.buckets(before)), after.assign(bucket=drift.buckets(after)))
    table = drift.drift(both, "task")
    assert table.loc["add", "change"] == 0.5 and table.loc["rev", "change"] == -0.5
    assert table.loc["add", "learned"] == 1 and table.loc["rev", "forgotten"] == 1
    shown = drift.human(table)
    assert shown.loc["rev", "change"] == "-0.500" and shown.loc["add", "queries"] == "2"
    heat = json.loads(figures.drift_heatmap(both).to_json())["data"][0]
    assert heat["zmid"] == 0 and np.nanmax(np.abs(values(heat, "z"))) == 1.0
    keys = [k for k, *_ in drift.summary(both, drift.transition_matrix(both))]
    assert keys == ["audit_shared", "audit_mean", "audit_moved", "audit_n_learned", "audit_n_forgotten"]


def test_overlaid_histograms_count_the_same_queries_twice_once_a_side():
    before, after = side([0.0, 0.125, 0.5]), side([0.5, 0.5, 1.0])
    both = drift.pair(before.assign(bucket=drift.buckets(before)), after.assign(bucket=drift.buckets(after)))
    data = json.loads(figures.p_hat_overlay(both).to_json())["data"]
    assert [t["name"] for t in data] == ["before", "after"]
    assert [values(t, "y").sum() for t in data] == [3, 3]
