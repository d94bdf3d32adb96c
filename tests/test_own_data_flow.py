"""A user's own dataset through the library seams the CLI wires up, with no option repeated after the first load:
unusual field names and a custom reward named once, recorded, recalled, split for evaluation, planned without the
held-out queries, checked before training, and scored the same way by our engine, TRL's form and verl's."""

import json

import numpy as np
import pandas as pd
import pytest

from sgpo.data import DatasetSpec, load_dataset, profiled_dataset, recall, reward_columns
from sgpo.data_split import held_out_for, resplit
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
