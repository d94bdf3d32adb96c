"""A user's own reward, MODULE:FUNCTION with TRL's signature: loaded, probed, and one-line errors naming --reward."""

import json
import textwrap

import pytest

from sgpo.data import load_dataset, reward_columns
from sgpo.errors import RewardError
from sgpo.tasks.rewards import SCORERS, resolve_reward

GOOD = """
def score(completions, answer, **columns):
    return [float(c.strip().lower() == a.lower()) for c, a in zip(completions, answer)]

def by_task(completions, answer, task, **columns):
    return [0.5 if t == "half" else float(c == a) for c, a, t in zip(completions, answer, task)]
"""
BAD = """
def raises(completions, answer, **columns):
    return [columns["missing"] for _ in completions]

def short(completions, answer, **columns):
    return [1.0]

def words(completions, answer, **columns):
    return ["yes" for _ in completions]

def nan(completions, answer, **columns):
    return [float("nan") for _ in completions]

def scalar(completions, answer, **columns):
    return 1.0

not_a_function = 3
"""


@pytest.fixture
def rewards_file(tmp_path):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent(GOOD))
    (tmp_path / "bad_rewards.py").write_text(textwrap.dedent(BAD))
    return tmp_path


def test_a_file_reward_is_named_by_its_absolute_path_and_both_forms_call_it(rewards_file):
    reward = resolve_reward(f"{rewards_file / 'my_rewards.py'}:score")
    assert reward.name == f"{rewards_file / 'my_rewards.py'}:score"
    assert reward.trl(["Cba ", "abc"], answer=["cba", "cba"]) == [1.0, 0.0]
    assert reward.score("Cba", "cba") == 1.0 and SCORERS[reward.name]("abc", "cba") == 0.0
    assert reward.trl.__name__ == "score"  # TRL logs rewards/score/mean


def test_a_module_on_the_path_and_a_file_in_the_current_folder_both_load(rewards_file, monkeypatch):
    monkeypatch.chdir(rewards_file)
    local = resolve_reward("my_rewards:score")  # not on sys.path: found as ./my_rewards.py, named absolutely
    assert local.name == f"{rewards_file / 'my_rewards.py'}:score"
    monkeypatch.syspath_prepend(str(rewards_file))
    assert resolve_reward("bad_rewards:short").name == "bad_rewards:short"


def test_the_columns_reach_the_function_from_the_per_query_form_too(rewards_file):
    reward = resolve_reward(f"{rewards_file / 'my_rewards.py'}:by_task")
    assert reward.score("x", "y", task="half") == 0.5 and reward.score("y", "y", task="full") == 1.0


@pytest.mark.parametrize(
    "name, message",
    [
        ("nowhere_at_all:score", r"cannot import nowhere_at_all .*PYTHONPATH, or give the file"),
        ("{dir}/my_rewards.py:scor", r"has no 'scor' \(its functions: by_task, score\)"),
        ("{dir}/bad_rewards.py:not_a_function", r"is a int, not a function"),
        ("{dir}/absent.py:score", r"reward file .*absent\.py does not exist"),
        ("{dir}/my_rewards.py:", r"a custom reward is written MODULE:FUNCTION"),
        ("my_rewards.py", r"choose exact, math, math-lenient, or MODULE:FUNCTION"),
        ("{dir}/bad_rewards.py:raises", r"raised KeyError: 'missing' \(at bad_rewards\.py:3\).*TRL's signature"),
        ("{dir}/bad_rewards.py:short", r"returned 1 values for 2 completions"),
        ("{dir}/bad_rewards.py:words", r"returned 'yes' \(str\) for completion 0, not a finite number"),
        ("{dir}/bad_rewards.py:nan", r"returned nan \(float\) for completion 0"),
        ("{dir}/bad_rewards.py:scalar", r"returned float, not a list of 2 floats"),
    ],
)
def test_a_bad_custom_reward_is_refused_on_load_in_one_line_naming_the_option(rewards_file, name, message):
    probe = {"completions": ["a", ""], "answer": ["a", "a"], "prompts": ["q", "q"]}
    with pytest.raises(RewardError, match=r"^--reward .*" + message) as caught:
        resolve_reward(name.format(dir=rewards_file), probe=probe)
    assert "\n" not in str(caught.value)


def test_a_module_that_fails_to_import_says_so(tmp_path):
    (tmp_path / "broken.py").write_text("import sys\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(
        RewardError, match=r"importing .*broken\.py raised RuntimeError: no GPU here \(at broken\.py:2\)"
    ):
        resolve_reward(f"{tmp_path / 'broken.py'}:score")


def test_load_dataset_probes_a_custom_reward_with_the_datasets_own_columns(rewards_file, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"r {w[::-1]}=", "answer": w, "task": "half"}) + "\n" for w in ["ab", "cd"])
    )
    ds = load_dataset(str(path), reward=f"{rewards_file / 'my_rewards.py'}:by_task")
    assert ds.reward.endswith("my_rewards.py:by_task") and ds.reward_fn()(["x", "y"], **reward_columns(ds.frame)) == [
        0.5,
        0.5,
    ]
    with pytest.raises(RewardError, match=r"^--reward .*raises.*KeyError: 'missing'"):
        load_dataset(str(path), reward=f"{rewards_file / 'bad_rewards.py'}:raises")


def test_a_failing_reward_during_training_is_a_reward_error_not_a_traceback(rewards_file):
    reward = resolve_reward(f"{rewards_file / 'bad_rewards.py'}:raises")
    with pytest.raises(RewardError, match=r"raised KeyError: 'missing' \(at bad_rewards\.py:3\) on 3 completions"):
        reward.trl(["a", "b", "c"], answer=["a"] * 3)
