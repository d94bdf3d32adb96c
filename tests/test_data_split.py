"""The held-out set: a user's own dataset is split once, seeded and disjoint; built-in data keeps builtin:eval."""

import json
import random

import pytest

from sgpo.data import load_dataset
from sgpo.data_split import MIN_HELD_OUT, held_out_for, resplit, split_held_out
from sgpo.errors import ConfigError, DataError


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_dataset(str(path))


def own_rows(n, repeats=0):
    rows = [{"id": f"q{i}", "prompt": f"r {i:04d}=", "answer": f"{i:04d}"[::-1]} for i in range(n)]
    return rows + [{**rows[i], "id": f"again{i}"} for i in range(repeats)]  # the same prompt under another id


def test_an_own_dataset_is_split_disjoint_by_prompt_at_the_stated_share(tmp_path):
    ds = write_rows(tmp_path / "mine.jsonl", own_rows(400, repeats=50))
    split = held_out_for(ds)
    train, held = split.train.frame, split.held_out.frame
    assert not set(train["prompt"]) & set(held["prompt"])  # a repeated prompt is never on both sides
    assert len(train) + len(held) == 450 and set(train["id"]) | set(held["id"]) == set(ds.frame["id"])
    assert held["prompt"].nunique() == 40  # 10% of the 400 distinct prompts
    record = json.loads(json.dumps(split.record))
    assert record["kind"] == "split" and record["share"] == 0.1 and record["seed"] == 0 and record["hash"] == ds.hash
    assert "held out" in split.words and "disjoint by prompt" in split.words
    assert split.held_out_ids.tolist() == held["id"].tolist()


def test_the_split_is_seeded_and_does_not_depend_on_the_order_of_the_rows(tmp_path):
    rows = own_rows(300)
    ds = write_rows(tmp_path / "a.jsonl", rows)
    random.Random(1).shuffle(rows)
    shuffled = write_rows(tmp_path / "b.jsonl", rows)
    ids = set(split_held_out(ds).held_out.frame["id"])
    assert ids == set(split_held_out(shuffled).held_out.frame["id"])
    assert (
        ids
        == set(split_held_out(ds, seed=0).held_out.frame["id"])
        != set(split_held_out(ds, seed=1).held_out.frame["id"])
    )


def test_a_small_dataset_holds_out_the_minimum_and_a_tiny_one_is_refused_in_one_line(tmp_path):
    small = split_held_out(write_rows(tmp_path / "s.jsonl", own_rows(2 * MIN_HELD_OUT)))
    assert len(small.held_out) == len(small.train) == MIN_HELD_OUT
    with pytest.raises(
        DataError, match=r"t\.jsonl has 39 distinct prompts: too few to hold out 20 .*--eval-dataset"
    ) as e:
        split_held_out(write_rows(tmp_path / "t.jsonl", own_rows(2 * MIN_HELD_OUT - 1)))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="--held-out-share=0.6"):
        split_held_out(small.train, share=0.6)


def test_built_in_data_keeps_builtin_eval_and_a_named_eval_dataset_wins(tmp_path):
    builtin = held_out_for(load_dataset("builtin:rev-train"))
    assert (
        builtin.record["kind"] == "builtin" and builtin.held_out.spec == "builtin:eval" and builtin.held_out_ids.empty
    )
    assert len(builtin.train) == 1000  # nothing taken from the training data
    own = write_rows(tmp_path / "mine.jsonl", own_rows(100))
    named = held_out_for(own, "builtin:rev-eval")
    assert named.record == {
        "kind": "dataset",
        "spec": "builtin:rev-eval",
        "hash": named.held_out.hash,
        "reward": "exact",
    }
    assert len(named.train) == 100 and named.words == "evaluated on --eval-dataset builtin:rev-eval"


def test_the_recorded_split_is_made_again_and_a_changed_file_is_refused(tmp_path):
    path = tmp_path / "mine.jsonl"
    ds = write_rows(path, own_rows(200))
    split = split_held_out(ds, share=0.2, seed=7)
    again = resplit(load_dataset(str(path)), split.record)
    assert again.record == split.record and again.held_out.frame.equals(split.held_out.frame)
    write_rows(path, own_rows(201))
    with pytest.raises(DataError, match="now holds other rows .* when its held-out part was split off"):
        resplit(load_dataset(str(path)), split.record)
    assert resplit(ds, held_out_for(ds, "builtin:eval").record).held_out.spec == "builtin:eval"
