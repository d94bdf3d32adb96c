"""The GRPO update for a batch of groups of any sizes: group-normalised advantages, the clipped ratio
objective, an optional KL penalty to a reference model, and token- or sequence-mean aggregation.

    groups = [Group(query=3, prompt_ids=[1, 40], completions=[[41, 2], [42, 2]], rewards=[1.0, 0.0]), ...]
    stats = accumulate_gradients(model, groups, LossConfig(), pad_id=0)   # .backward() done, no optimizer step

The formulas are TRL's GRPOTrainer ones (tests/test_train_trl.py checks advantages, loss and gradients
against TRL itself on equal-size groups): advantage = (r - mean_group) / (std_group + 1e-4) with the
unbiased std; per-token loss = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A) + beta * KL
with KL the k3 estimator exp(ref - logp) - (ref - logp) - 1, times the ratio by default (TRL's
`use_bias_correction_kl`). Only completion tokens (EOS included) count.

Groups whose rewards are all equal have zero advantage. With `skip_zero_advantage` they are left out of
the forward/backward pass, but still counted in the normaliser (tokens or sequences), so with beta = 0
the gradient is exactly the one a full pass would give: skipping is a pure saving. (With beta > 0 a
skipped group also skips its KL term; turn the knob off to keep it.)

With `gauge_chunks` >= 2 the informative groups are split into that many chunks of whole groups, each run as its
own length-sorted micro-batches, and the gradient norms read between chunks feed the critical-batch gauge
(sgpo/train/noise.py). The gradient is the same: only the order of the micro-batches changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sgpo.train.config import AGGREGATIONS
from sgpo.train.noise import ChunkNorms, split_chunks

STD_EPS = 1e-4  # TRL's epsilon in (r - mean) / (std + eps)


@dataclass
class Group:
    """One query's rollouts: the prompt, G completions (token ids, end token included) and their rewards."""

    query: int  # row of the training dataset
    prompt_ids: list[int]
    completions: list[list[int]]
    rewards: np.ndarray  # (G,) floats
    position: int = -1  # profile position (sgpo), for the posterior

    @property
    def size(self) -> int:
        return len(self.completions)

    @property
    def informative(self) -> bool:
        """At least two different rewards, so a non-zero advantage somewhere."""
        return bool(np.ptp(self.rewards) > 0) if self.size else False

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids) * self.size

    @property
    def completion_tokens(self) -> int:
        return sum(len(c) for c in self.completions)


@dataclass
class LossConfig:
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0
    scale_rewards: bool = True  # divide by the group's std (Dr. GRPO turns this off)
    aggregation: str = "token-mean"
    skip_zero_advantage: bool = True
    kl_bias_correction: bool = True  # KL * ratio: the unbiased reverse-KL gradient (TRL's default)
    temperature: float = 1.0  # logits are divided by the sampling temperature, as TRL does
    micro_batch: int = 64  # sequences per forward/backward
    gauge_chunks: int = 0  # >= 2: informative groups split into this many chunks for the gauge (sgpo/train/noise.py)


@dataclass
class StepStats:
    loss: float = 0.0
    kl: float = float("nan")
    entropy: float = float("nan")  # mean over the completion tokens trained on
    sequences: int = 0  # rollouts in the batch
    trained_sequences: int = 0  # rollouts that went through forward/backward
    trained_tokens: int = 0  # prompt + completion tokens of those (for training FLOPs)
    completion_tokens: int = 0
    advantages: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # the critical-batch gauge (gauge_chunks >= 2, two informative groups or more): squared norms of each chunk's
    # own mean gradient (over its informative rollouts), the chunks' informative rollouts, and |sum of the means|^2
    chunk_sq: list[float] = field(default_factory=list)
    chunk_rollouts: list[int] = field(default_factory=list)
    sum_sq: float = float("nan")


def group_advantages(
    rewards: torch.Tensor, sizes: torch.Tensor, *, scale: bool = True, eps: float = STD_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages for rewards laid out group after group (group i holds sizes[i] of them).

    Returns (advantages, std per group). A group of size 1 has std 0 and advantage 0."""
    rewards = rewards.double()  # the group sums must not depend on float32 summation order
    index = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    n = sizes.to(rewards.dtype)
    mean = torch.zeros(len(sizes), dtype=rewards.dtype).index_add_(0, index, rewards) / n
    centred = rewards - mean[index]
    sq = torch.zeros(len(sizes), dtype=rewards.dtype).index_add_(0, index, centred**2)
    std = torch.where(n > 1, (sq / (n - 1).clamp(min=1)).sqrt(), torch.zeros_like(n))
    adv = centred / (std[index] + eps) if scale else centred
    return adv.float(), std.float()


def pack(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded prompt+completion ids (B, T) and the mask of targets that are completion tokens (B, T-1).

    Right padding keeps every real token at its natural position, as in generation."""
    length = max(len(p) + len(c) for p, c in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length - 1), dtype=torch.bool)
    for i, (p, c) in enumerate(sequences):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c, dtype=torch.long)
        mask[i, len(p) - 1 : len(p) + len(c) - 1] = True
    return ids, mask


def token_logprobs(
    model, ids: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities of the masked target tokens, flattened in mask order (and their entropies).

    The LM head runs on the masked positions only: prompt and padding logits are never built."""
    hidden = model.base_model(input_ids=ids).last_hidden_state[:, :-1]
    logits = model.get_output_embeddings()(hidden[mask]).float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    logps = logp_all.gather(-1, ids[:, 1:][mask].unsqueeze(-1)).squeeze(-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logps, entropy


def per_token_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    cfg: LossConfig,
    ref_logps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The clipped surrogate (+ beta * k3 KL) per token; all tensors are flat over completion tokens."""
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - cfg.epsilon_low, 1 + cfg.epsilon_high)
    loss = -torch.min(ratio * advantages, clipped * advantages)
    kl = None
    if cfg.beta != 0.0 and ref_logps is not None:
        kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
        if cfg.kl_bias_correction:  # value unchanged on-policy (ratio = 1), gradient gains kl * dlogp
            kl = kl * ratio
        loss = loss + cfg.beta * kl
    return loss, kl


def accumulate_gradients(
    model,
    groups: list[Group],
    cfg: LossConfig,
    *,
    pad_id: int,
    ref_model=None,
    old_logps: list[torch.Tensor] | None = None,
) -> StepStats:
    """Forward/backward over the batch in length-sorted micro-batches; gradients accumulate in .grad.

    `old_logps` (per sequence, flat over its completion) are the sampling policy's; None means the
    batch was sampled by the current weights (one update per batch), so the ratio is exactly 1."""
    if cfg.aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}")
    seqs = [(g.prompt_ids, c) for g in groups for c in g.completions]
    stats = StepStats(sequences=len(seqs))
    if not seqs:
        return stats
    sizes = torch.tensor([g.size for g in groups])
    rewards = torch.tensor(np.concatenate([np.asarray(g.rewards, dtype=np.float64) for g in groups]))
    adv, std = group_advantages(rewards, sizes, scale=cfg.scale_rewards)
    stats.advantages = adv.numpy()
    comp_len = torch.tensor([len(c) for _, c in seqs])
    stats.completion_tokens = int(comp_len.sum())
    has_advantage = (~torch.isclose(std, torch.zeros_like(std))).tolist()
    informative = torch.repeat_interleave(torch.tensor(has_advantage, dtype=torch.bool), sizes)
    starts = np.cumsum([0, *sizes.tolist()]).tolist()
    trained = [j for j in range(len(groups)) if has_advantage[j] or not cfg.skip_zero_advantage]
    # one length-sorted run of micro-batches, or (the critical-batch gauge) one run per chunk of whole groups
    chunks = split_chunks(
        [list(range(starts[j], starts[j + 1])) for j in trained], [has_advantage[j] for j in trained], cfg.gauge_chunks
    )
    # normalisers span the whole batch, skipped sequences included (see the module docstring)
    total_tokens = max(stats.completion_tokens, 1)
    total_seqs = len(seqs)
    token_mean = cfg.aggregation == "token-mean"
    probe = ChunkNorms(model, total_tokens if token_mean else total_seqs) if len(chunks) > 1 else None
    loss_sum, kl_sum, ent_sum, tok_sum = 0.0, 0.0, 0.0, 0
    for chunk in chunks:
        chunk.sort(key=lambda i: len(seqs[i][0]) + len(seqs[i][1]))  # similar lengths share a micro-batch
        for start in range(0, len(chunk), cfg.micro_batch):
            idx = chunk[start : start + cfg.micro_batch]
            ids, mask = pack([seqs[i] for i in idx], pad_id)
            logps, entropy = token_logprobs(model, ids, mask, cfg.temperature, with_entropy=True)
            assert entropy is not None  # asked for
            lens = comp_len[idx]
            seq_of_token = torch.repeat_interleave(torch.arange(len(idx)), lens)
            token_adv = adv[idx][seq_of_token]
            old = logps.detach() if old_logps is None else torch.cat([old_logps[i] for i in idx])
            ref = None
            if cfg.beta != 0.0 and ref_model is not None:
                with torch.no_grad():
                    ref, _ = token_logprobs(ref_model, ids, mask, cfg.temperature)
            loss_tok, kl = per_token_loss(logps, old, token_adv, cfg, ref)
            if token_mean:
                loss = loss_tok.sum() / total_tokens
            else:
                per_seq = torch.zeros(len(idx)).index_add(0, seq_of_token, loss_tok) / lens.clamp(min=1)
                loss = per_seq.sum() / total_seqs
            loss.backward()
            loss_sum += float(loss.detach())
            ent_sum += float(entropy.sum())
            kl_sum += float(kl.detach().sum()) if kl is not None else 0.0
            tok_sum += int(lens.sum())
            stats.trained_tokens += sum(len(seqs[i][0]) + len(seqs[i][1]) for i in idx)
        if probe is not None:
            mine = [i for i in chunk if informative[i]]
            probe.chunk_done(len(mine), int(comp_len[mine].sum()) if token_mean else len(mine))
    chosen = [i for chunk in chunks for i in chunk]
    if probe is not None:
        probe.step_done()
        stats.chunk_sq, stats.chunk_rollouts, stats.sum_sq = probe.chunk_sq, probe.chunk_rollouts, probe.sum_sq
    stats.trained_sequences = len(chosen)
    stats.loss = loss_sum
    if tok_sum:
        stats.entropy = ent_sum / tok_sum
        if cfg.beta != 0.0:
            stats.kl = kl_sum / tok_sum
    return stats
