"""Our knobs as TRL's GRPOConfig: its fields, its checks, and the batch each plan phase trains. The one
place `trl` is imported (late: it is a heavy import the native engine never needs).

    check_trl_options({"top_k": 3})                     # a field GRPOConfig lacks is refused by name
    check_grpo_config(cfg, device="cpu", world=1)       # a trial GRPOConfig, before the run exists
    prompts_per_step(256, group_size=8, queries=20)     # 20: a small phase trains fewer prompts a step
    GRPOConfig, GRPOTrainer = trl_classes()

TRL generates whole batches of `generation_batch_size` completions, `prompts x G`, and its RepeatSampler
drops an incomplete last batch. A phase with fewer queries than one batch of --batch-rollouts / G prompts
trains fewer prompts a step (all its queries, G kept) instead of repeating its own queries to fill one:
`check_phases` says so for each such phase, and the run keeps the lines as warning events.
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any

import torch

from sgpo.errors import ConfigError

LOSS_TYPES = {"token-mean": "dapo", "sequence-mean": "grpo"}  # our aggregation -> TRL's loss_type


def trl_classes() -> tuple[Any, Any]:
    """(GRPOConfig, GRPOTrainer), imported on first use."""
    from trl import GRPOConfig, GRPOTrainer

    return GRPOConfig, GRPOTrainer


def grpo_config_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(trl_classes()[0])}


def check_trl_options(options: dict) -> None:
    """Unknown GRPOConfig fields are refused by name (`--trl KEY=VALUE`), before anything is written."""
    unknown = sorted(set(options) - grpo_config_fields())
    if unknown:
        raise ConfigError(
            f"--trl {unknown[0]}=...: GRPOConfig has no field {unknown[0]!r} (see `python -c "
            f'"from trl import GRPOConfig; help(GRPOConfig)"`)'
        )


def full_prompts(batch_rollouts: int, group_size: int) -> int:
    """Prompts in one generation batch of --batch-rollouts rollouts at G (at least one)."""
    return max(1, batch_rollouts // group_size)


def prompts_per_step(batch_rollouts: int, group_size: int, queries: int | None = None, world: int = 1) -> int:
    """Prompts TRL generates for each step of a phase of `queries` queries: one full batch, or every query
    of a smaller phase, rounded up so that `world` processes share the completions evenly."""
    prompts = full_prompts(batch_rollouts, group_size)
    if queries is not None and 0 < queries < prompts:
        prompts = queries
        while (prompts * group_size) % world:
            prompts += 1
    return prompts


def check_batch(batch_rollouts: int, group_size: int, world: int) -> None:
    """A full batch must split evenly over the processes: refused before the run exists, naming the option."""
    completions = full_prompts(batch_rollouts, group_size) * group_size
    if completions % world:
        raise ConfigError(
            f"--batch-rollouts {batch_rollouts} gives {completions} completions per step at G={group_size}, "
            f"which {world} processes cannot share evenly: use a multiple of {group_size * world}"
        )


def check_phases(phases, batch_rollouts: int, world: int = 1) -> list[str]:
    """What TRL cannot run is refused (a phase of mixed G, a batch the processes cannot share); returns one
    warning per plan phase (sgpo.plan.Phase) smaller than one generation batch, saying what it trains."""
    out = []
    for ph in phases:
        if not ph.group_size:
            raise ConfigError(
                f"--engine trl needs one group size per phase, and plan phase {ph.index} mixes several: "
                f"use a phased curriculum (--curriculum sequential, steps or plateau)"
            )
        check_batch(batch_rollouts, ph.group_size, world)
        full = full_prompts(batch_rollouts, ph.group_size)
        if ph.count < full:
            prompts = prompts_per_step(batch_rollouts, ph.group_size, ph.count, world)
            out.append(
                f"--engine trl: plan phase {ph.index} (G={ph.group_size}) holds {ph.count} queries, fewer than "
                f"one TRL generation batch of {full} prompts (--batch-rollouts {batch_rollouts}): it trains "
                f"{prompts} prompts ({prompts * ph.group_size} rollouts) a step"
            )
    return out


def grpo_args(
    cfg,
    *,
    group_size: int,
    prompts: int,
    world: int,
    steps: int,
    shuffle: bool,
    seed: int,
    output_dir: str,
    device: str,
    dtype=torch.float32,
) -> dict:
    """GRPOConfig's arguments for one phase: our knobs in TRL's names, then the run's --trl fields."""
    args = dict(
        output_dir=output_dir,
        report_to="none",
        use_cpu=device == "cpu",
        bf16=dtype == torch.bfloat16,
        num_generations=group_size,
        per_device_train_batch_size=prompts * group_size // world,
        generation_batch_size=prompts * group_size,
        max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_k=0,
        top_p=1.0,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        scale_rewards="group" if cfg.scale_rewards else "none",
        loss_type=LOSS_TYPES[cfg.loss_aggregation],
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm or 1e9,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        seed=seed,
        shuffle_dataset=shuffle,
        disable_tqdm=True,
        log_level="error",
        gradient_accumulation_steps=1,
    )
    return {**args, **cfg.trl}


def check_grpo_config(cfg, device: str, world: int = 1) -> None:
    """A trial GRPOConfig with the run's own settings and --trl fields: a value GRPOConfig rejects is a
    ConfigError naming the --trl fields, before the run exists."""
    g = cfg.group_size
    trial = grpo_args(
        cfg,
        group_size=g,
        prompts=world,
        world=world,
        steps=1,
        shuffle=True,
        seed=cfg.seed,
        output_dir=tempfile.gettempdir(),
        device=device,
    )
    try:
        trl_classes()[0](**trial)
    except (ValueError, TypeError) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in cfg.trl.items()) or "(none)"
        raise ConfigError(f"--trl {given}: GRPOConfig refused these settings: {str(exc).splitlines()[0]}") from None
