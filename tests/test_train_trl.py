"""Agreement with TRL: on a batch of equal-size groups, our advantages, loss and gradients equal what
TRL's own GRPOTrainer computes (its `_generate_and_score_completions` and `compute_loss`, fed fixed
completions through its `rollout_func` hook), for token-mean (TRL "dapo") and sequence-mean (TRL "grpo")
aggregation, with and without the KL term."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from sgpo.model import load_model, load_tokenizer
from sgpo.train.grpo import Group, LossConfig, accumulate_gradients, group_advantages
from tests.toys import tiny_model_dir

G = 4
PROMPTS = ["r abc=", "s 312=", "c a ab=", "9+4=  "]  # equal lengths: both sides see identical positions


def _batch(tok, seed=0):
    rng = np.random.default_rng(seed)
    groups = []
    for q, prompt in enumerate(PROMPTS):
        pids = tok(prompt)["input_ids"]
        comps = []
        for _ in range(G):
            n = int(rng.integers(1, 6))
            body = rng.integers(4, 60, size=n).tolist()
            comps.append(body + [tok.eos_token_id] if rng.random() < 0.7 else body)
        rewards = rng.integers(0, 2, size=G).astype(float)
        if q == 2:
            rewards[:] = 1.0  # one zero-variance group: skipped by us, zero advantage in TRL
        groups.append(Group(query=q, prompt_ids=pids, completions=comps, rewards=rewards))
    return groups


def _trl_step(model_dir, policy, tok, groups, *, loss_type, beta, tmp_path):
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    rewards = np.concatenate([g.rewards for g in groups]).tolist()
    rows = [{"prompt": PROMPTS[g.query], "answer": "x"} for g in groups for _ in range(G)]

    def rollout_func(prompts, trainer):
        return {
            "prompt_ids": [g.prompt_ids for g in groups for _ in range(G)],
            "completion_ids": [c for g in groups for c in g.completions],
            "logprobs": None,
        }

    def reward(completions, **kw):
        return rewards

    args = GRPOConfig(
        output_dir=str(tmp_path / "trl"),
        use_cpu=True,
        report_to="none",
        num_generations=G,
        per_device_train_batch_size=len(rows),
        max_completion_length=8,
        temperature=1.0,
        beta=beta,
        loss_type=loss_type,
        scale_rewards="group",
        learning_rate=1e-3,
        save_strategy="no",
        seed=0,
        bf16=False,
        logging_steps=1,
    )
    trainer = GRPOTrainer(
        model=policy,
        args=args,
        train_dataset=Dataset.from_list(rows),
        reward_funcs=reward,
        processing_class=tok,
        rollout_func=rollout_func,
    )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which we do not run
    inputs = trainer._generate_and_score_completions(rows)
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return inputs["advantages"].detach(), float(loss.detach()), grads


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss_type,aggregation,beta",
    [("dapo", "token-mean", 0.0), ("grpo", "sequence-mean", 0.0), ("dapo", "token-mean", 0.1)],
)
def test_advantages_loss_and_gradients_match_trl(tmp_path, loss_type, aggregation, beta):
    model_dir = tiny_model_dir(tmp_path / "m", head_scale=4.0)
    tok = load_tokenizer(model_dir)
    groups = _batch(tok)
    policy = load_model(model_dir)
    if beta:  # move the policy away from the saved weights TRL and we both use as the reference
        torch.manual_seed(1)
        with torch.no_grad():
            for p in policy.parameters():
                p.add_(0.05 * torch.randn_like(p))
    ours_model = copy.deepcopy(policy)  # TRL patches the forward of the model it is given
    trl_adv, trl_loss, trl_grads = _trl_step(
        model_dir, policy, tok, groups, loss_type=loss_type, beta=beta, tmp_path=tmp_path
    )

    ref = load_model(model_dir) if beta else None
    cfg = LossConfig(beta=beta, aggregation=aggregation, skip_zero_advantage=beta == 0.0, micro_batch=5)
    ours_model.train()
    stats = accumulate_gradients(ours_model, groups, cfg, pad_id=tok.pad_token_id, ref_model=ref)

    np.testing.assert_allclose(stats.advantages, trl_adv.numpy(), rtol=1e-5, atol=1e-6)
    assert stats.loss == pytest.approx(trl_loss, rel=1e-4, abs=1e-6)
    ours = dict(ours_model.named_parameters())
    assert set(trl_grads) == {n for n, p in ours.items() if p.grad is not None}
    for name, g in trl_grads.items():
        torch.testing.assert_close(ours[name].grad, g, rtol=2e-4, atol=1e-6, msg=name)
    assert stats.trained_sequences == (len(PROMPTS) - 1) * G if beta == 0.0 else len(PROMPTS) * G


def test_group_advantages_match_trl_formula_on_equal_groups():
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1])
    adv, std = group_advantages(rewards, torch.tensor([4, 4, 4]))
    grouped = rewards.view(-1, 4)
    expected = (grouped - grouped.mean(1, keepdim=True)) / (nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    torch.testing.assert_close(adv, expected.flatten())
    assert std[1] == 0
