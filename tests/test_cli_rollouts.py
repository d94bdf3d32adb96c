"""`sgpo runs rollouts | history | heatmap`: the CLI faces of sgpo.rollouts print what the library returns,
write CSV / Parquet, and refuse bad options naming them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.synthetic import fill_groups, fill_profile, fill_run
from sgpo import rollouts
from sgpo.store import Store


@pytest.fixture
def db(tmp_path):
    s = Store(tmp_path / "sgpo.db")
    p = fill_profile(s, "init", n=40)
    fill_run(s, "r", "sgpo", steps=10, profile_id=p["id"])
    fill_groups(s, "r", 10, per_step=8, group_size=4, profile="init")
    fill_profile(s, "r-at-5", n=40, seed=3, skill=0.3, model_spec="run:r@5")
    return tmp_path / "sgpo.db"


def test_rollouts_prints_the_last_steps_groups_and_json_holds_the_librarys(cli, db):
    code, out, err = cli("runs", "rollouts", "r", "--db", db)
    assert code == 0, err
    assert "step 10: 8 groups" in out and "outcome" in out
    code, out, err = cli("runs", "rollouts", "r", "--steps", "3:4", "--db", db, "--json")
    shown = json.loads(out)["groups"]
    expected = rollouts.groups("r", Store(db), steps=(3, 4))
    assert [g["query_id"] for g in shown] == expected["query_id"].tolist() and len(shown) == 16


def test_per_step_says_how_hardness_was_judged(cli, db):
    code, out, err = cli("runs", "rollouts", "r", "--per-step", "--db", db, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert "p_hat" in data["hardest_by"] and [s["step"] for s in data["steps"]] == list(range(1, 11))
    assert {"all_correct", "all_wrong", "hardest_10", "hardest_25", "hardest_50"} <= set(data["steps"][0])


def test_history_shows_the_initial_and_checkpoint_p_hat_and_exports(cli, db, tmp_path):
    query = rollouts.groups("r", Store(db), steps=(1, 10))["query_id"].iloc[0]
    code, out, err = cli("runs", "history", "r", query, "--db", db, "--out", tmp_path / "h.parquet")
    assert code == 0, err
    assert "initial profile init" in out and "at step 5 (checkpoint profile r-at-5)" in out
    back = pd.read_parquet(tmp_path / "h.parquet")
    assert (back["query_id"] == query).all() and len(back) >= 1


def test_heatmap_lists_learned_and_writes_one_row_per_query_and_bin(cli, db, tmp_path):
    code, out, err = cli("runs", "heatmap", "r", "--bins", "5", "--db", db, "--out", tmp_path / "m.csv")
    assert code == 0, err
    # 40 queries, 8 groups a step: bins of 5 steps, so a query shows up in most of them (not 5 bins of 2)
    assert "2 bins of 5 steps, ordered by initial p_hat" in out
    back = pd.read_csv(tmp_path / "m.csv")
    assert list(back.columns) == ["query_id", "first_step", "last_step", "pass_rate"]
    assert set(back["first_step"]) <= {1, 6} and set(back["last_step"] - back["first_step"]) == {4}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("runs", "rollouts", "r", "--steps", "9-3"), "--steps"),
        (("runs", "rollouts", "r", "--step", "3", "--steps", "1:2"), "not both"),
        (("runs", "history", "r", "nope"), "no group of query 'nope'"),
        (("runs", "heatmap", "r", "--bins", "0"), "--bins"),
        (("runs", "heatmap", "r", "--min-change", "2"), "--min-change"),
        (("runs", "rollouts", "r", "--out", "x.json"), ".csv or .parquet"),
        (("runs", "rollouts", "gone"), "no run 'gone'"),
    ],
)
def test_bad_options_are_refused_in_one_line_naming_them(cli, db, args, said):
    code, out, err = cli(*args, "--db", db)
    assert code == 2 and said in err and err.count("\n") == 1, err
