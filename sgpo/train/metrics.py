"""Each step's metrics row in the vocabulary's names (sgpo/vocab.py), whichever engine trained it, and what
the step cost (the FLOPs rules are sgpo/accounting.py's; this module says which tokens are which).

    data, flops = native_step(batch, update, n_params=n, beta=0.0, lr=5e-5, seconds=0.4, generation_seconds=0.3)
    data, flops = trl_step(logs, group_size=8, prompts=32, tokens=9000.0, n_params=n, beta=0.0)
    row = counters.add(data, flops=flops, seconds=data["step_seconds"])   # the session does this
    eval_row(result, counters)                                             # an evals row at the run's FLOPs

Tokens (prompt + completion): `tokens_prompt` and `tokens_completion` of every rollout generated,
`tokens_trained` what the engine trained, `tokens_informative` those of the groups with an advantage (what
an engine that skips zero-advantage groups trains) and `tokens_update` every rollout the update saw (what
an engine that trains every rollout, TRL or verl, trains). The last two price the step under both engine
behaviours, so every row carries the run's `flops_total_skip` and `flops_total_train_all` beside what it
actually spent, `flops_total`.
"""

from __future__ import annotations

import math

import numpy as np

from sgpo.accounting import Counters, step_flops
from sgpo.train.batches import Batch
from sgpo.train.engine import Update
from sgpo.vocab import fraction


def native_step(
    batch: Batch, update: Update, *, n_params: float, beta: float, lr: float, seconds: float, generation_seconds: float
) -> tuple[dict, dict]:
    """Our engine's step: counts from the groups it generated (dropped ones included) and trained."""
    generated = batch.generated
    informative = [g.informative for g in generated]  # Group.informative takes the rewards' spread: once each
    rollouts = sum(g.size for g in generated)
    wasted = sum(g.size for g, inf in zip(generated, informative) if not inf)
    n_informative = int(sum(informative))
    tok_p = sum(g.prompt_tokens for g in generated)
    tok_c = sum(g.completion_tokens for g in generated)
    tok_informative = sum(g.prompt_tokens + g.completion_tokens for g, inf in zip(generated, informative) if inf)
    tok_update = sum(g.prompt_tokens + g.completion_tokens for g in batch.groups)
    by_g: dict[str, list[float]] = {}
    for g in batch.groups:
        by_g.setdefault(str(g.size), []).extend(g.rewards.tolist())
    rewards = np.concatenate([g.rewards for g in batch.groups]) if batch.groups else np.zeros(0)
    data = {
        "queries": len(batch.groups),
        "rollouts": rollouts,
        "groups": len(generated),
        "informative_groups": n_informative,
        "wasted_rollouts": wasted,
        "step_wasted_fraction": fraction(wasted, rollouts),
        "step_informative_fraction": fraction(n_informative, len(generated)),
        "group_size": batch.group_size,
        "reward_mean": float(rewards.mean()) if len(rewards) else None,
        "reward_by_group_size": {k: float(np.mean(v)) for k, v in sorted(by_g.items(), key=lambda kv: int(kv[0]))},
        "tokens_prompt": tok_p,
        "tokens_completion": tok_c,
        "tokens_trained": update.trained_tokens,
        "tokens_informative": tok_informative,
        "tokens_update": tok_update,
        "trained_sequences": update.trained_sequences,
        "loss": update.loss,
        "kl": update.kl,
        "entropy": update.entropy,
        "grad_norm": update.grad_norm,
        "lr": lr,
        "step_seconds": seconds,
        "generation_seconds": generation_seconds,
        "phase": batch.phase,
        **batch.info,
    }
    flops = step_flops(
        n_params,
        generated=tok_p + tok_c,
        trained=update.trained_tokens,
        informative=tok_informative,
        every=tok_update,
        beta=beta,
    )
    return data, flops


def trl_step(
    logs: dict, *, group_size: int, prompts: int, tokens: float, n_params: float, beta: float
) -> tuple[dict, dict]:
    """One TRL log line (one optimizer step). `tokens`: the prompt and completion tokens the step processed
    (TRL's cumulative `num_tokens`, differenced). TRL trains every completion, and gives no tokens per
    group: the informative groups' tokens are priced as tokens x (1 - frac_reward_zero_std)."""
    frac = float(logs.get("frac_reward_zero_std", math.nan))
    share = 0.0 if math.isnan(frac) else 1.0 - frac
    informative = int(round(prompts * share))
    rollouts = prompts * group_size
    completion = float(logs.get("completions/mean_length", 0.0)) * rollouts
    data = {
        "queries": prompts,
        "rollouts": rollouts,
        "groups": prompts,
        "informative_groups": informative,
        "wasted_rollouts": (prompts - informative) * group_size,
        "group_size": group_size,
        "step_wasted_fraction": frac,
        "step_informative_fraction": informative / prompts,
        "reward_mean": logs.get("reward"),
        "reward_std": logs.get("reward_std"),
        "tokens_prompt": max(0.0, tokens - completion),
        "tokens_completion": completion,
        "tokens_trained": tokens,
        "tokens_informative": tokens * share,
        "tokens_update": tokens,
        "trained_sequences": rollouts,
        "loss": logs.get("loss"),
        "kl": logs.get("kl"),
        "entropy": logs.get("entropy"),
        "grad_norm": logs.get("grad_norm"),
        "lr": logs.get("learning_rate"),
        "completion_mean_length": logs.get("completions/mean_length"),
        "clip_ratio_low": logs.get("clip_ratio/low_mean"),
        "clip_ratio_high": logs.get("clip_ratio/high_mean"),
        "step_seconds": logs.get("step_time"),
    }
    flops = step_flops(n_params, generated=tokens, trained=tokens, informative=tokens * share, every=tokens, beta=beta)
    return data, flops


def eval_row(result: dict, counters: Counters) -> dict:
    """An evals row: accuracy at the FLOPs spent so far, with the run's totals under both engine behaviours
    (sgpo.accounting.reduction_factor reads them) and the evaluation FLOPs so far."""
    totals = counters.totals()
    return {
        "flops_total": totals["flops_total"],
        "accuracy": result["accuracy"],
        "data": {
            **result,
            "flops_eval_total": counters["flops_eval"],
            "flops_total_skip": totals["flops_total_skip"],
            "flops_total_train_all": totals["flops_total_train_all"],
        },
    }


def progress_line(step: int, data: dict, eval_row: dict | None) -> str:
    """The log line of a step: reward, waste, loss, FLOPs and time, and the evaluation if one ran."""
    reward, loss = data.get("reward_mean"), data.get("loss")
    line = (
        f"step {step}: reward {reward if reward is not None else math.nan:.3f}"
        f" wasted {data['wasted_rollouts']}/{data['rollouts']} loss "
        f"{loss if loss is not None else math.nan:.4f} flops {data['flops_total']:.3g} "
        f"{data.get('step_seconds') or 0.0:.2f}s"
    )
    if eval_row is not None:
        line += f" | eval {eval_row['accuracy']:.3f}"
        if "by_band" in eval_row["data"]:
            line += f" middle {eval_row['data']['by_band'].get('middle', math.nan):.3f}"
    return line
