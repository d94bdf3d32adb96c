"""The verl-compatible compute_score: the same scores as our engine, dispatched on the reward each row names."""

import importlib.util
import json
import sys

import pytest

from sgpo.errors import RewardError
from sgpo.tasks import verl_reward
from sgpo.tasks.rewards import resolve_reward


def load_as_verl_does():
    """verl.trainer.ppo.reward.get_custom_reward_fn: spec_from_file_location on custom_reward_function.path."""
    lines = dict(line.split("=", 1) for line in verl_reward.command_lines())
    spec = importlib.util.spec_from_file_location("custom_module", lines["custom_reward_function.path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_module"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["custom_module"]
    return getattr(module, lines["custom_reward_function.name"])


@pytest.mark.parametrize(
    "response, gold, reward",
    [
        ("The answer is 18.", "18", "math"),
        ("she makes 18", "18", "math"),
        ("she makes 18", "18", "math-lenient"),
        ("01346", "01346", "exact"),
        ("1,346", "01346", "exact"),
    ],
)
def test_compute_score_loaded_by_path_scores_as_our_engine_does(response, gold, reward):
    compute_score = load_as_verl_does()
    info = verl_reward.row_info(reward, {"id": "q1", "task": "sort", "difficulty": 3, "prompt": "s 31064="})
    json.dumps(info)  # a parquet struct column
    score = compute_score(data_source="mine", solution_str=response, ground_truth=gold, extra_info=info)
    assert score == resolve_reward(reward).score(response, gold) and isinstance(score, float)


def test_a_users_function_gets_the_rows_columns_and_a_run_wide_reward_can_be_named(tmp_path):
    (tmp_path / "r.py").write_text(
        "def by_task(completions, answer, task, prompts, **kw):\n"
        "    return [float(t == 'sort' and p.startswith('s ')) for t, p in zip(task, prompts)]\n"
    )
    name = f"{tmp_path / 'r.py'}:by_task"
    info = verl_reward.row_info(name, {"id": "q1", "task": "sort", "difficulty": 3, "prompt": "s 31064="})
    assert info["prompt"] == "s 31064=" and "prompt" not in verl_reward.row_info("math", {"prompt": "x"})
    assert verl_reward.compute_score("mine", "x", "y", info) == 1.0
    assert verl_reward.compute_score("mine", "#### 18", "18", {"id": "q"}, reward="math") == 1.0  # reward_kwargs
    scores = verl_reward.compute_score_batch(["m", "m"], ["#### 18", "17"], ["18", "18"], [{"reward": "math"}] * 2)
    assert scores == [1.0, 0.0]


def test_a_row_without_a_reward_is_one_line_saying_how_to_name_one():
    with pytest.raises(
        RewardError, match=r"verl row of data source 'gsm8k' names no reward: .*reward_kwargs.reward=NAME"
    ):
        verl_reward.compute_score("gsm8k", "18", "18", {"id": "q"})
