"""A user's own dataset through the library seams the CLI wires up, with no option repeated after the first load:
unusual field names and a custom reward named once, recorded, recalled, split for evaluation, planned without the
held-out queries, checked before training, and scored the same way by our engine, TRL's form and verl's."""

import json

import numpy as np
import pandas as pd
import pytest

from sgpo.data import DatasetSpec, load_dataset, profiled_dataset, recall, reward_columns
from sgpo.data_split import held_out_for, resplit
from sgpo.errors import DataError
from sgpo.plan import make_plan, too_few_learnable
from sgpo.store import Store
from sgpo.tasks import verl_reward

REWARD = """
def lenient_case(completions, answer, **columns):
    return [float(c.strip().casefold() == a.casefold()) for c, a in zip(completions, answer)]
"""


@pytest.fixture
def own(tmp_path):
    words = [f"w{i:03d}x" for i in range(300)]
    rows = [
        {"uid_str": f"u{i}", "Question Text": f"reverse {w}", "gold_label": w[::-1], "family": "rev" + str(i % 3)}
        for i, w in enumerate(words)
    ]
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "my_rewards.py").write_text(REWARD)
    return data, f"{tmp_path / 'my_rewards.py'}:lenient_case", Store(tmp_path / "sgpo.db")


def profile_of(ds, rng) -> pd.DataFrame:
    """What a profile of `ds` stores (the planner's columns), with made-up success counts."""
    successes = rng.binomial(8, rng.beta(0.5, 0.5, len(ds)))
    return pd.DataFrame(
        {
            "id": ds.frame["id"],
            "task": ds.frame["task"],
            "difficulty": ds.frame["difficulty"],
            "samples": 8,
            "successes": successes,
            "p_hat": successes / 8,
            "prompt_tokens": 12,
            "completion_tokens_mean": 6.0,
        }
    )


def test_an_own_dataset_goes_from_mapping_to_plan_to_every_reward_form_named_once(own):
    data, reward, store = own
    first = load_dataset(
        DatasetSpec(str(data), prompt_field="Question Text", answer_field="gold_label", id_field="uid_str"),
        task_field="family",
        reward=reward,
    )
    store.record_dataset(**first.record())  # `sgpo profile` records it with the profile
    profile_row = {"name": "mine8", "dataset_hash": first.hash, "dataset_spec": first.spec}

    # later commands name only the file (or only the profile)
    again, by_profile = load_dataset(recall(store, str(data))), profiled_dataset(store, profile_row)
    assert again.hash == by_profile.hash == first.hash and again.reward == by_profile.reward == first.reward
    assert first.reward.endswith("my_rewards.py:lenient_case")
    assert sorted(again.frame["task"].unique()) == ["rev0", "rev1", "rev2"]

    # evaluation on a held-out part of the user's own data, recorded and made again identically
    split = held_out_for(again)
    assert split.record["kind"] == "split" and len(split.held_out) == 30 and len(split.train) == 270
    assert resplit(by_profile, json.loads(json.dumps(split.record))).held_out.frame.equals(split.held_out.frame)

    # the plan covers the training part only, and is worth training on
    frame = profile_of(again, np.random.default_rng(0))
    trained = frame[~frame["id"].isin(split.held_out_ids)].reset_index(drop=True)
    plan = make_plan(trained, n_params=10**6)
    planned = set(np.concatenate([ph.ids for ph in plan.phases]))
    assert not planned & set(split.held_out_ids) and too_few_learnable(plan.to_record()) is None

    # one reward, three callers
    rows = split.held_out.frame.head(4)
    completions = [a.upper() for a in rows["answer"][:2]] + ["wrong", ""]
    ours = [again.scorer()(c, a, task=t) for c, a, t in zip(completions, rows["answer"], rows["task"])]
    trl = again.reward_fn()(completions, **reward_columns(rows))
    verl = [
        verl_reward.compute_score("mine", c, a, verl_reward.row_info(again.reward, r))
        for c, a, r in zip(completions, rows["answer"], rows.to_dict("records"))
    ]
    assert ours == trl == verl == [1.0, 1.0, 0.0, 0.0]


# the same walk through the command line ------------------------------------------------------------------
FIELDS = ["--prompt-field", "Question Text", "--answer-field", "gold_label", "--id-field", "Query ID"]
FIELDS += ["--task-field", "family", "--difficulty-field", "Level", "--reward", "my_rewards:lenient_case"]


@pytest.fixture
def mine(toy, tmp_path, monkeypatch):
    """80 toy queries under field names of their own, a reward module in the working folder, a store."""
    from tests.toys import toy_dataset

    monkeypatch.chdir(tmp_path)
    source = toy_dataset(tmp_path / "toy80.jsonl", toy.model, n=80)
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    renamed = [
        {
            "Query ID": r["id"],
            "Question Text": r["prompt"],
            "gold_label": r["answer"],
            "family": r["task"],
            "Level": f"Level {r['difficulty']}",
        }
        for r in rows
    ]
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in renamed))
    (tmp_path / "my_rewards.py").write_text(REWARD)
    return tmp_path / "mine.jsonl", tmp_path / "sgpo.db"


def test_a_file_with_its_own_field_names_goes_from_profile_to_evaluated_training_named_once(
    cli, capsys, toy, mine, tmp_path, one_thread
):
    import pyarrow.parquet as pq

    from sgpo.train.setup import load

    data, db = mine
    code, _, err = cli(
        "profile", "mine.jsonl", "--model", toy.model, "--samples", 8, "--max-new-tokens", 1, "--name", "mine8",
        "--db", db, *FIELDS,
    )  # fmt: skip
    assert code == 0, err
    assert f"reward {tmp_path / 'my_rewards.py'}:lenient_case: named with --reward" in err
    later: list[tuple] = []

    def run(*args) -> str:
        later.append(args)
        code, out, err = cli(*args, "--db", db)
        assert code == 0, err
        return out

    inspected = json.loads(run("data", "inspect", "mine.jsonl", "--json"))
    assert (
        inspected["mapping"]["prompt_field"] == "Question Text" and inspected["mapping"]["difficulty_field"] == "Level"
    )
    assert inspected["reward"] == f"{tmp_path / 'my_rewards.py'}:lenient_case"

    plan = json.loads(run("plan", "mine8", "--save", "mine-plan", "--json"))
    assert plan["counts"]["total"] == 80 and not plan["forecast"]["basis"]["too_few"]

    out = run("plan", "mine8", "--export-trl", "trl", "--export-verl", "verl")
    assert str(tmp_path / "trl" / "manifest.json") in out and str(tmp_path / "verl" / "phase-0.parquet") in out
    trl = json.loads((tmp_path / "trl" / "manifest.json").read_text())
    assert trl["reward"] == inspected["reward"]
    first = [json.loads(line) for line in (tmp_path / "trl" / "phase-0.jsonl").read_text().splitlines()][0]
    assert first["id"].startswith("toy-") and first["task"] in ("toy", "toy2") and isinstance(first["difficulty"], int)
    verl = json.loads((tmp_path / "verl" / "manifest.json").read_text())
    assert verl["data_source"] == f"{tmp_path.name}/mine"
    assert f"custom_reward_function.path={verl_reward.PATH}" in verl["phases"][0]["command"]
    rows = pq.read_table(tmp_path / "verl" / "phase-0.parquet").to_pylist()
    info = rows[0]["extra_info"]
    assert info["reward"] == inspected["reward"] and info["id"].startswith("toy-") and info["prompt"]
    gold = rows[0]["reward_model"]["ground_truth"]
    assert verl_reward.compute_score(rows[0]["data_source"], gold.upper(), gold, info) == 1.0

    result = json.loads(
        run("train", "--profile", "mine8", "--steps", 2, "--batch-rollouts", 32, "--eval-every", 2, "--eval-samples", 2,
            "--max-new-tokens", 1, "--lr", 3e-3, "--warmup-steps", 0, "--threads", 1, "--name", "walk", "--json")
    )  # fmt: skip
    assert result["status"] == "finished" and result["eval_accuracy"] is not None
    store = Store(db)
    trained = store.find_run("walk")
    assert trained["config"]["dataset"] == str(data.resolve()) and trained["config"]["model"] == str(toy.model)
    held = trained["held_out"]
    assert held["kind"] == "split" and (held["held_out"], held["train"], held["share"]) == (20, 60, 0.1)
    started = next(e["message"] for e in store.events(trained["id"]) if e["kind"] == "start")
    assert "held out 20 of 80 queries" in started and "my_rewards.py:lenient_case" in started
    evals = store.evals_frame(trained["id"])
    assert evals["queries"].tolist() == [20, 20]  # before training and at step 2: the held-out part

    # the stored run, read back as resuming it does: the same held-out queries, none of them trained or planned
    prep = load(trained, store)
    held_ids = set(prep.eval_dataset.frame["id"])
    assert len(held_ids) == 20 and not held_ids & set(prep.dataset.frame["id"])
    assert not held_ids & set(prep.profile_frame["id"]) and len(prep.profile_frame) == 60
    planned = {prep.dataset.frame["id"].iloc[r] for ph in prep.phases for r in prep.rows[ph.positions]}
    assert planned and not planned & held_ids

    # the saved plan trains as saved; an option against it is refused in one line
    assert json.loads(run("train", "--plan", "mine-plan", "--steps", 1, "--eval-every", 0, "--batch-rollouts", 32,
                          "--max-new-tokens", 1, "--threads", 1, "--name", "from-plan", "--json"))["status"] == "finished"  # fmt: skip
    code, _, err = cli("train", "--plan", "mine-plan", "--trivial-threshold", "0.5", "--db", db)
    assert code == 2 and "--trivial-threshold 0.5 contradicts saved plan 'mine-plan'" in err

    assert not [a for args in later for a in map(str, args) if a.endswith("-field") or a == "--reward"]

    # the data changed under the run: its held-out set cannot be made again, and it says so
    data.write_text(data.read_text().replace('"Level 0"', '"Level 9"', 1))
    with pytest.raises(DataError, match="run 'walk' trained on"):
        load(trained, store)
