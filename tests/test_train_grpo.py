"""The GRPO update on groups of different sizes: advantages, masks, skipping, micro-batching."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpo.train.grpo import LossConfig, accumulate_gradients, group_advantages, pack
from tests.toys import grads_of, tiny_model_dir, toy_groups


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from sgpo.model import load_model

    return load_model(tiny_model_dir(tmp_path_factory.mktemp("m"), head_scale=4.0))


def test_advantages_are_normalised_within_each_group_of_any_size():
    rewards = torch.tensor([1.0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    sizes = torch.tensor([2, 4, 8])
    adv, std = group_advantages(rewards, sizes)
    start = 0
    for g in sizes.tolist():
        r = rewards[start : start + g]
        expected = (r - r.mean()) / (r.std() + 1e-4)
        torch.testing.assert_close(adv[start : start + g], expected)
        start += g
    assert std[1] > 0 and std[0] > 0


def test_zero_variance_group_has_zero_advantage_and_scaling_can_be_turned_off():
    rewards = torch.tensor([1.0, 1, 1, 1, 1.0, 0])
    adv, std = group_advantages(rewards, torch.tensor([4, 2]), scale=False)
    assert torch.all(adv[:4] == 0) and std[0] == 0
    torch.testing.assert_close(adv[4:], torch.tensor([0.5, -0.5]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 1), min_size=2, max_size=16), min_size=1, max_size=8))
def test_advantages_sum_to_zero_per_group(groups):
    rewards = torch.tensor([float(r) for g in groups for r in g])
    adv, _ = group_advantages(rewards, torch.tensor([len(g) for g in groups]))
    start = 0
    for g in groups:
        assert abs(float(adv[start : start + len(g)].sum())) < 1e-4
        start += len(g)


def test_pack_masks_exactly_the_completion_tokens_end_token_included():
    ids, mask = pack([([1, 10, 11], [20, 2]), ([1, 10], [21, 22, 23])], pad_id=0)
    assert ids.tolist() == [[1, 10, 11, 20, 2], [1, 10, 21, 22, 23]]
    targets = ids[:, 1:]
    assert targets[0][mask[0]].tolist() == [20, 2]
    assert targets[1][mask[1]].tolist() == [21, 22, 23]


@pytest.mark.parametrize("aggregation", ["token-mean", "sequence-mean"])
def test_skipping_zero_advantage_groups_leaves_the_gradient_unchanged(model, aggregation):
    groups = toy_groups([2, 4, 8, 4], equal=(1, 3))
    full, skip = copy.deepcopy(model), copy.deepcopy(model)
    s_full = accumulate_gradients(
        full, groups, LossConfig(aggregation=aggregation, skip_zero_advantage=False), pad_id=0
    )
    s_skip = accumulate_gradients(skip, groups, LossConfig(aggregation=aggregation), pad_id=0)
    assert s_skip.trained_sequences == 10 and s_full.trained_sequences == 18
    assert s_skip.trained_tokens < s_full.trained_tokens
    g_full, g_skip = grads_of(full), grads_of(skip)
    for name in g_full:
        torch.testing.assert_close(g_skip[name], g_full[name], rtol=1e-4, atol=1e-7)


def test_micro_batch_size_does_not_change_the_gradient(model):
    groups = toy_groups([2, 8, 4])
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    accumulate_gradients(a, groups, LossConfig(micro_batch=3), pad_id=0)
    accumulate_gradients(b, groups, LossConfig(micro_batch=100), pad_id=0)
    ga, gb = grads_of(a), grads_of(b)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=1e-4, atol=1e-7)


def test_a_batch_with_no_signal_trains_nothing(model):
    m = copy.deepcopy(model)
    stats = accumulate_gradients(m, toy_groups([4, 4], equal=(0, 1)), LossConfig(), pad_id=0)
    assert stats.trained_sequences == 0 and stats.trained_tokens == 0
    assert all(p.grad is None for p in m.parameters())


def test_loss_is_taken_over_completion_tokens_only(model):
    from sgpo.train.grpo import token_logprobs

    groups = toy_groups([2])
    m = copy.deepcopy(model)
    stats = accumulate_gradients(m, groups, LossConfig(), pad_id=0)
    ids, mask = pack([(groups[0].prompt_ids, c) for c in groups[0].completions], pad_id=0)
    assert int(mask.sum()) == stats.completion_tokens == groups[0].completion_tokens
    logps, _ = token_logprobs(m, ids, mask)
    assert logps.shape[0] == groups[0].completion_tokens
