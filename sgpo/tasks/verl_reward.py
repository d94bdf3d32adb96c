"""verl's custom reward function for data sgpo exports: the same Reward the profiler and trainers use.

verl loads this file by path and calls `compute_score` once per response. The manifest of
`sgpo plan --export-verl` puts these lines in each phase's command (`command_lines()`):

    custom_reward_function.path=/.../site-packages/sgpo/tasks/verl_reward.py
    custom_reward_function.name=compute_score

Each exported row names its reward in `extra_info["reward"]` (exact, math, math-lenient or
MODULE:FUNCTION; `row_info()` writes it), so one function serves every dataset. Rows made elsewhere
can name one for the whole run instead: `+custom_reward_function.reward_kwargs.reward=math`. verl's
batch reward manager (`reward_model.reward_manager=batch`) takes `compute_score_batch` by the same path.
The Python that runs verl needs sgpo installed (this file imports it); a MODULE:FUNCTION reward must be
importable there too (a file reward is named by its absolute path).

    compute_score("mine", "The answer is 18.", "18", {"reward": "math"})   # 1.0
"""

from __future__ import annotations

from pathlib import Path

from sgpo.errors import RewardError
from sgpo.tasks.rewards import NAMES, resolve_reward

PATH = Path(__file__).resolve()
REWARD_KEY = "reward"  # extra_info's key naming the reward
COLUMNS = ("id", "task", "difficulty")  # passed on to a user's reward function, as TRL passes them


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float:
    """verl's custom reward signature: the score of one response under the reward its row names."""
    info = dict(extra_info or {})
    name = info.get(REWARD_KEY) or kwargs.get(REWARD_KEY)
    if not name:
        raise RewardError(
            f"verl row of data source {data_source!r} names no reward: export it with `sgpo plan --export-verl`, "
            f"which writes extra_info['reward'], or add +custom_reward_function.reward_kwargs.reward=NAME "
            f"({', '.join(NAMES)} or MODULE:FUNCTION) to the verl command"
        )
    columns = {k: info[k] for k in COLUMNS if k in info}
    if "prompt" in info:
        columns["prompts"] = info["prompt"]
    return resolve_reward(name).score(solution_str, ground_truth, **columns)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs) -> list[float]:
    """The same for verl's batch reward manager: lists in, one score per response out."""
    infos = extra_infos if extra_infos is not None else [None] * len(solution_strs)
    return [compute_score(*row, **kwargs) for row in zip(data_sources, solution_strs, ground_truths, infos)]


def command_lines(function: str = "compute_score") -> list[str]:
    """The verl command-line overrides that hook this module up (for the export manifest's commands)."""
    return [f"custom_reward_function.path={PATH}", f"custom_reward_function.name={function}"]


def row_info(reward: str, query: dict) -> dict:
    """What an exported row's extra_info adds for compute_score: the reward's name, the query's id, task and
    difficulty, and its prompt when the reward is a user's function (the named rules never read it)."""
    out = {REWARD_KEY: reward, **{k: query[k] for k in COLUMNS if k in query}}
    if reward not in NAMES and "prompt" in query:
        out["prompt"] = query["prompt"]
    return out
