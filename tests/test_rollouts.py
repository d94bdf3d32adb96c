"""Rollouts stored with every step (sgpo/store.py, sgpo/train/recorder.py) and read back (sgpo/rollouts.py): a
step's groups land in its own transaction and a replayed step overwrites them; the library's summaries,
histories and success matrix say what the stored groups say."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from bench.synthetic import fill_groups, fill_profile, fill_run
from sgpo import rollouts
from sgpo.store import Store
from sgpo.train.rollouts import group_record, kept_slots


def group(query, rewards, *, trained=True, texts=None, phase=0):
    return group_record(
        query=query, rewards=rewards, lengths=[3] * len(rewards), phase=phase, trained=trained, texts=texts
    )


def query(i, task="t"):
    return {"query": i, "query_id": f"q{i}", "task": task, "difficulty": 1, "prompt": f"prompt {i}"}


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "sgpo.db")


def test_a_steps_groups_are_written_with_its_metrics_row_and_a_replay_replaces_them(store):
    run = store.create_run(name="r", strategy="grpo", config={})
    store.log_step(
        run, 1, 0, 1.0, {"groups": 2}, groups=[group(0, [1, 0]), group(1, [1, 1])], queries=[query(0), query(1)]
    )
    store.log_step(run, 1, 0, 1.0, {"groups": 1}, groups=[group(2, [0, 0])], queries=[query(2), query(0)])
    frame = store.groups_frame(run)
    assert frame["query"].tolist() == [2] and frame["step"].tolist() == [1]  # the replay's groups, not both
    assert store.run_queries_frame(run)["query_id"].tolist() == ["q0", "q1", "q2"]  # each query once
    store.log_step(run, 1, 0, 1.0, {"groups": 1})  # a row without groups (the final re-record) keeps them
    assert len(store.groups_frame(run)) == 1


def test_a_failed_step_write_leaves_neither_its_row_nor_its_groups(store):
    run = store.create_run(name="r", strategy="grpo", config={})
    with pytest.raises(KeyError):
        store.log_step(run, 1, 0, 1.0, {"groups": 1}, groups=[{"query": 0}])  # no rewards: the write fails
    assert store.metrics_frame(run).empty and store.groups_frame(run).empty


def test_rewards_and_lengths_are_stored_as_compact_json(store):
    run = store.create_run(name="r", strategy="grpo", config={})
    store.log_step(run, 1, 0, 1.0, {}, groups=[group(0, [1.0, 0.0, 0.25])], queries=[query(0)])
    raw = store.db.execute("SELECT rewards, lengths, completions FROM rollout_groups").fetchone()
    assert raw == ("[1,0,0.25]", "[3,3,3]", None)
    assert store.groups_frame(run)["rewards"].iloc[0] == [1.0, 0.0, 0.25]


def test_the_kept_groups_are_a_seeded_choice_of_the_steps_groups():
    assert kept_slots(32, 2, seed=0, step=7) == kept_slots(32, 2, seed=0, step=7)
    assert len(kept_slots(32, 2, seed=0, step=7)) == 2 and kept_slots(32, 0, seed=0, step=7) == set()
    assert kept_slots(3, 8, seed=0, step=1) == {0, 1, 2}
    assert len({frozenset(kept_slots(32, 2, seed=0, step=s)) for s in range(20)}) > 1  # steps differ


def test_groups_carry_outcome_status_advantages_band_and_filter_on_them(store):
    p = fill_profile(store, "p", n=12)
    run = store.create_run(name="r", strategy="sgpo", config={"scale_rewards": True}, profile_id=p["id"])
    pf = store.profile_frame(p["id"])
    qs = [{**query(i), "query_id": pf["id"][i], "task": pf["task"][i]} for i in range(3)]
    store.log_step(
        run,
        1,
        0,
        1.0,
        {},
        groups=[group(0, [1, 1]), group(1, [1, 0, 0, 0], texts=list("abcd")), group(2, [0, 0], trained=False)],
        queries=qs,
    )
    g = rollouts.groups("r", store)
    assert g["outcome"].tolist() == ["all-correct", "mixed", "all-wrong"]
    assert g["status"].tolist() == ["trained", "trained", "skipped"]
    mixed = g.iloc[1]
    r = np.array([1.0, 0, 0, 0])
    expected = (r - r.mean()) / (r.std(ddof=1) + 1e-4)  # the trainer's (and TRL's) advantage
    assert mixed["advantages"] == pytest.approx(expected.tolist(), abs=1e-4)
    assert mixed["pass_rate"] == 0.25 and mixed["p_hat"] == pf["p_hat"][1]
    assert g["band"].tolist() == list(rollouts.band_of(pf["p_hat"][:3]))
    assert rollouts.groups("r", store, outcome=["mixed"])["query_id"].tolist() == [pf["id"][1]]
    assert rollouts.groups("r", store, status=["skipped"])["query_id"].tolist() == [pf["id"][2]]
    shown = rollouts.samples(mixed)
    assert shown["completion"].tolist() == list("abcd") and shown["success"].tolist() == [True, False, False, False]


def test_the_hardest_shares_are_ranked_by_the_profiles_p_hat(store):
    p = fill_profile(store, "p", n=20)
    run = store.create_run(name="r", strategy="sgpo", config={}, profile_id=p["id"])
    pf = store.profile_frame(p["id"])
    order = np.argsort(pf["p_hat"].to_numpy(), kind="stable")
    hardest, easiest = int(order[0]), int(order[-1])
    qs = [{**query(i), "query_id": pf["id"][i]} for i in range(20)]
    # the 10 hardest queries fail, the 10 easiest succeed: hardest 10% and 50% pass 0, overall 0.5
    gs = [group(int(q), [0, 0] if rank < 10 else [1, 1]) for rank, q in enumerate(order)]
    store.log_step(run, 1, 0, 1.0, {}, groups=gs, queries=qs)
    summary = rollouts.step_summary("r", store)
    row = summary.frame.iloc[0]
    assert row["hardest_10"] == 0.0 and row["hardest_50"] == 0.0 and row["pass_rate"] == 0.5
    assert row["all_correct"] == 0.5 and row["all_wrong"] == 0.5 and "p_hat" in summary.basis
    assert hardest != easiest


def test_without_a_profile_hardness_is_the_runs_own_history_and_reading_in_parts_gives_the_same(store):
    run = store.create_run(name="r", strategy="grpo", config={})
    rng = np.random.default_rng(0)

    def steps(first, last):
        for step in range(first, last + 1):
            gs = [group(int(q), rng.integers(0, 2, 4).tolist()) for q in rng.choice(10, 5, replace=False)]
            store.log_step(run, step, 0, 1.0, {}, groups=gs, queries=[query(q) for q in range(10)])

    steps(1, 4)
    early = rollouts.step_summary("r", store)  # what a live view has read so far
    steps(5, 8)
    whole = rollouts.step_summary("r", store)
    assert "history" in whole.basis and whole.frame["step"].tolist() == list(range(1, 9))
    later = rollouts.step_summary("r", store, since=early)  # only steps 5-8 read
    pd.testing.assert_frame_equal(later.frame.reset_index(drop=True), whole.frame.reset_index(drop=True))
    assert whole.frame["hardest_10"].notna().all()


def test_a_querys_history_has_its_groups_and_the_initial_and_checkpoint_p_hat(store):
    p = fill_profile(store, "init", n=30)
    run = fill_run(store, "r", "sgpo", steps=12, profile_id=p["id"])
    fill_groups(store, "r", 12, per_step=10, group_size=4, profile="init")
    fill_profile(store, "at-8", n=30, seed=1, skill=0.3, model_spec="run:r@8")
    fill_profile(store, "other", n=30, seed=2, model_spec="run:elsewhere@8")
    some = rollouts.groups("r", store, steps=(1, 12))["query_id"].value_counts().index[0]
    h = rollouts.history("r", some, store)
    assert len(h.groups) >= 1 and (h.groups["query_id"] == some).all()
    assert h.groups["step"].is_monotonic_increasing
    assert h.marks["kind"].tolist() == ["initial", "checkpoint"] and h.marks["step"].tolist() == [0, 8]
    assert h.marks["profile"].tolist() == ["init", "at-8"]  # not the profile of another run's checkpoint
    assert h.query["prompt"].startswith(some) and run


def test_the_success_matrix_orders_by_initial_p_hat_and_lists_learned_and_forgotten(store):
    run = store.create_run(name="r", strategy="grpo", config={})
    # q0 learns (0 -> 1), q1 forgets (1 -> 0), q2 stays mixed
    for step in range(1, 5):
        late = step > 2
        gs = [group(0, [1, 1] if late else [0, 0]), group(1, [0, 0] if late else [1, 1]), group(2, [1, 0])]
        store.log_step(run, step, 0, 1.0, {}, groups=gs, queries=[query(0), query(1), query(2)])
    m = rollouts.success_matrix("r", store, bins=2, min_change=0.5)
    assert m.bin_steps == 2 and list(m.frame.columns) == [1, 3]
    assert m.frame.loc["q0"].tolist() == [0.0, 1.0] and m.frame.loc["q1"].tolist() == [1.0, 0.0]
    assert list(m.frame.index) == ["q0", "q2", "q1"]  # no profile: ordered by the first half of its groups
    per = m.queries.set_index("query_id")
    assert per.loc["q0", "learned"] and per.loc["q1", "forgotten"] and not per.loc["q2", ["learned", "forgotten"]].any()
    long = rollouts.matrix_long(m)
    assert set(long.columns) == {"query_id", "first_step", "last_step", "pass_rate"} and len(long) == 6


def test_search_finds_queries_by_id_or_prompt(store):
    run = store.create_run(name="r", strategy="grpo", config={})
    store.log_step(run, 1, 0, 1.0, {}, groups=[group(0, [1, 0]), group(7, [0, 0])], queries=[query(0), query(7)])
    assert rollouts.search("r", "Q7", store)["query_id"].tolist() == ["q7"]
    assert rollouts.search("r", "prompt 0", store)["query_id"].tolist() == ["q0"]
    assert rollouts.search("r", "", store).empty


def test_exports_write_csv_and_parquet_and_refuse_other_suffixes(store, tmp_path):
    run = store.create_run(name="r", strategy="grpo", config={})
    hostile = "<script>x</script>\n**bold**"
    store.log_step(run, 1, 0, 1.0, {}, groups=[group(0, [1, 0], texts=[hostile, "b"])], queries=[query(0)])
    frame = rollouts.groups("r", store)
    back = pd.read_parquet(rollouts.export(frame, tmp_path / "g.parquet"))
    assert list(back["completions"].iloc[0]) == [hostile, "b"]
    text = rollouts.export(frame, tmp_path / "g.csv").read_text()
    assert json.loads(pd.read_csv(io.StringIO(text))["completions"].iloc[0]) == [hostile, "b"]
    with pytest.raises(Exception, match="csv or .parquet"):
        rollouts.export(frame, tmp_path / "g.json")
