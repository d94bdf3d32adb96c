"""The verbs that only the dashboard had: `sgpo compare`, `sgpo runs metrics`, `sgpo plan list|show`,
`sgpo profile drift`, each printing what the library call returns (sgpo.compare, sgpo.runs, sgpo.plans,
sgpo.profiles)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.synthetic import fill_profile, fill_run
from sgpo import compare, plans, profiles
from sgpo.store import Store


@pytest.fixture
def store(db_path):
    s = Store(db_path)
    fill_profile(s, "before", n=40)
    fill_profile(s, "after", n=40, skill=0.3)  # a later checkpoint of the same policy: the same data
    fill_run(s, "grpo-1", "grpo", steps=20, speed=1.0)
    fill_run(s, "sgpo-1", "sgpo", steps=20, speed=3.0)
    fill_run(s, "dapo-1", "dapo", steps=10, speed=0.5)
    return s


def test_compare_prints_the_factor_sgpo_compare_computes(cli, store, db_path):
    code, out, err = cli("compare", "sgpo-1", "grpo-1", "dapo-1", "--db", db_path, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["baseline"] == "grpo-1"  # the grpo run given, though listed second
    rows = {r["run"]: r for r in shown["rows"]}
    table = compare.table(store, ["sgpo-1", "grpo-1", "dapo-1"], "grpo-1").set_index("run")
    # grpo ends at 0.7 after 12e9 FLOPs; sgpo's evals (every 5 steps, 0.3 + 0.06 * step, 1e9 of profiling
    # first) cross 0.7 between step 5 (4e9 FLOPs, 0.6) and step 10 (7e9, 0.9): at 5e9
    assert rows["sgpo-1"]["compute_reduction"] == pytest.approx(12e9 / 5e9) == table.loc["sgpo-1", "compute_reduction"]
    assert rows["sgpo-1"]["reduction"] == "2.40x" and rows["grpo-1"]["reduction"] == "baseline"
    assert rows["dapo-1"]["reduction"] == "not yet reached" and rows["dapo-1"]["compute_reduction"] is None
    code, out, _ = cli("compare", "sgpo-1", "grpo-1", "--db", db_path)
    assert code == 0 and "2.40x" in out and "target: 70.0%" in out
    code, out, _ = cli("compare", "sgpo-1", "grpo-1", "--db", db_path, "--baseline", "sgpo-1", "--json")
    assert {r["run"]: r["reduction"] for r in json.loads(out)["rows"]}["sgpo-1"] == "baseline"


def test_compare_seeds_groups_runs_that_differ_only_in_seed(cli, store, db_path):
    code, out, err = cli("compare", "grpo-1", "sgpo-1", "--db", db_path, "--seeds", "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["runs"] for r in rows] == [["grpo-1"], ["sgpo-1"]]
    assert rows[1]["compute_reduction"] == pytest.approx(2.4) and rows[1]["reached"] == 1


def test_runs_metrics_prints_every_step_and_writes_the_csv(cli, store, db_path, tmp_path):
    code, out, err = cli("runs", "metrics", "sgpo-1", "--db", db_path, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["run"] == "sgpo-1" and [m["step"] for m in shown["metrics"]] == list(range(21))
    code, out, _ = cli("runs", "metrics", "sgpo-1", "--db", db_path)
    assert code == 0 and out.splitlines()[0].split()[:2] == ["step", "phase"] and len(out.splitlines()) == 22
    code, out, _ = cli("runs", "metrics", "sgpo-1", "--db", db_path, "--csv", tmp_path / "out" / "m.csv")
    frame = pd.read_csv(tmp_path / "out" / "m.csv")
    assert code == 0 and len(frame) == 21 and {"step", "flops_total", "run_wasted_fraction"} <= set(frame.columns)


def test_plan_list_and_show_read_saved_plans_back(cli, store, db_path):
    code, _, err = cli("plan", "before", "--db", db_path, "--save", "first-plan", "--trivial-threshold", "0.6")
    assert code == 0, err
    code, out, _ = cli("plan", "list", "--db", db_path, "--json")
    [listed] = json.loads(out)["plans"]
    assert (listed["name"], listed["profile"]) == ("first-plan", "before")
    code, out, _ = cli("plan", "show", "first-plan", "--db", db_path, "--json")
    shown = json.loads(out)
    assert shown["config"]["trivial_threshold"] == 0.6 and shown["counts"] == plans.load("first-plan", store)["counts"]
    code, out, _ = cli("plan", "show", "first-plan", "--db", db_path)
    assert code == 0 and "plan 1 'first-plan' (profile 'before')" in out and "phases" in out


def test_profile_drift_counts_moves_between_buckets(cli, store, db_path):
    code, out, err = cli("profile", "drift", "before", "after", "--db", db_path, "--json")
    assert code == 0, err
    shown = json.loads(out)
    both = profiles.drift("before", "after", store)
    assert shown["queries"] == len(both) == 40
    assert sum(sum(row.values()) for row in shown["transitions"].values()) == 40
    assert list(shown["transitions"]) == [
        "trivial",
        *sorted([b for b in shown["transitions"] if b.startswith("G=")], key=lambda b: int(b[2:])),
        "unsolved",
    ]
    assert sorted(shown["learned"]) == sorted(both[both["change"] >= 0.5]["id"]) and shown["learned"]
    code, out, _ = cli("profile", "drift", "before", "after", "--db", db_path)
    assert code == 0 and "queries by bucket, before (rows) -> after (columns)" in out and "by task" in out
