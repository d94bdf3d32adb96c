"""Metric rows: each engine's step in the vocabulary's names, with the tokens that price it under both
engine behaviours, and evaluation rows that carry the run's totals both ways."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sgpo.accounting import Counters
from sgpo.train.batches import Batch
from sgpo.train.engine import Update
from sgpo.train.grpo import Group
from sgpo.train.metrics import eval_row, native_step, progress_line, trl_step

N = 1000  # parameters


def group(query: int, rewards: list[float], prompt: int = 3, completion: int = 2) -> Group:
    return Group(
        query=query,
        prompt_ids=list(range(prompt)),
        completions=[[7] * completion for _ in rewards],
        rewards=np.array(rewards, dtype=float),
    )


def test_a_native_step_counts_what_it_generated_and_prices_skip_and_train_all_from_the_same_groups():
    learn, solved, failed = group(0, [1, 0, 1, 0]), group(1, [1, 1, 1, 1]), group(2, [0, 0, 0, 0], completion=5)
    batch = Batch(groups=[learn, solved], dropped=[failed], group_size=4, info={"epoch": 0})
    skipped = Update(trained_sequences=4, trained_tokens=20, loss=0.1, kl=math.nan, entropy=0.5, grad_norm=1.0)
    data, flops = native_step(batch, skipped, n_params=N, beta=0.0, lr=1e-3, seconds=1.0, generation_seconds=0.5)
    assert data["rollouts"] == 12 and data["groups"] == 3 and data["queries"] == 2
    assert data["informative_groups"] == 1 and data["wasted_rollouts"] == 8
    assert data["tokens_prompt"] == 36 and data["tokens_completion"] == 8 + 8 + 20
    assert data["tokens_informative"] == 20  # the one group with an advantage: 4 x (3 + 2)
    assert data["tokens_update"] == 40  # the groups the update saw (a dropped group is generated, not trained)
    assert data["reward_by_group_size"] == {"4": 0.75} and data["epoch"] == 0
    assert flops["flops_rollout"] == pytest.approx(2 * N * 72)
    assert flops["flops_train"] == pytest.approx(6 * N * 20) == flops["flops_train_skip"]
    assert flops["flops_train_train_all"] == pytest.approx(6 * N * 40)
    _, with_kl = native_step(batch, skipped, n_params=N, beta=0.1, lr=1e-3, seconds=1.0, generation_seconds=0.5)
    assert with_kl["flops_train"] == pytest.approx(8 * N * 20)  # + a reference forward


def test_a_trl_step_prices_informative_tokens_as_tokens_times_the_share_of_groups_with_an_advantage():
    logs = {"frac_reward_zero_std": 0.25, "reward": 0.5, "completions/mean_length": 2.0, "step_time": 0.3, "loss": 0.0}
    data, flops = trl_step(logs, group_size=4, prompts=8, tokens=1000.0, n_params=N, beta=0.0)
    assert data["rollouts"] == 32 and data["informative_groups"] == 6 and data["wasted_rollouts"] == 8
    assert data["tokens_completion"] == 64 and data["tokens_prompt"] == 936
    assert data["tokens_informative"] == pytest.approx(750) and data["tokens_trained"] == data["tokens_update"] == 1000
    assert flops["flops_train"] == pytest.approx(6 * N * 1000) == flops["flops_train_train_all"]  # TRL trains all
    assert flops["flops_train_skip"] == pytest.approx(6 * N * 750)
    assert flops["flops_rollout"] == pytest.approx(2 * N * 1000)
    unknown, _ = trl_step({"frac_reward_zero_std": math.nan}, group_size=4, prompts=8, tokens=100.0, n_params=N, beta=0)
    assert unknown["tokens_informative"] == 0 and unknown["informative_groups"] == 0


def test_an_eval_row_holds_the_run_totals_under_both_behaviours():
    counters = Counters(flops_profile=5.0)
    _, flops = trl_step({"frac_reward_zero_std": 0.5}, group_size=2, prompts=4, tokens=100.0, n_params=N, beta=0.0)
    counters.add({"rollouts": 8}, flops=flops, seconds=0.1)
    counters.add_eval(N, 50)
    row = eval_row({"accuracy": 0.4, "flops": 1.0}, counters)
    totals = counters.totals()
    assert row["flops_total"] == totals["flops_total"] and row["accuracy"] == 0.4
    assert row["data"]["flops_total_skip"] == totals["flops_total_skip"] < totals["flops_total"]
    assert row["data"]["flops_total_train_all"] == totals["flops_total_train_all"] == totals["flops_total"]
    assert row["data"]["flops_eval_total"] == pytest.approx(2 * N * 50)


def test_the_progress_line_names_the_step_and_the_evaluation():
    row = {"reward_mean": 0.5, "loss": None, "wasted_rollouts": 3, "rollouts": 8, "flops_total": 1e9}
    line = progress_line(4, row, {"accuracy": 0.25, "data": {"by_band": {"middle": 0.5}}})
    assert line.startswith("step 4: reward 0.500 wasted 3/8 loss nan flops 1e+09") and line.endswith("middle 0.500")
