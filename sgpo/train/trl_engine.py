"""TRL's GRPOTrainer as the second engine: the plan runs on it one phase at a time.

    sgpo train --engine trl --strategy sgpo --profile P ...         # the plan, phase by phase
    sgpo train --engine trl --strategy grpo ...                     # TRL's plain GRPO: fixed G, shuffled
    accelerate launch --num_processes 2 -m sgpo train --engine trl ...

TRL takes one `num_generations` per trainer (per-prompt G is not supported, trl issue 2941), and every
phase of a plan has one G, so each phase gets its own GRPOTrainer over the same model and optimizer
(their state carries from phase to phase; a LambdaLR keeps the warmup global). A phase holds its
members in the plan's order (TRL shuffles them unless the plan orders them, `shuffle_dataset=False`),
padded with its own first members to whole generation batches: TRL's RepeatSampler silently drops
an incomplete last batch. Kept unsolved queries are members of every phase, as the plan says.

The shared loop (sgpo/train/loop.py) keeps everything else: every TRL log becomes one step of our
metric schema (`frac_reward_zero_std` gives the wasted rollouts; TRL trains every completion, so
training FLOPs are 6 x params x every token, plus 2 x for the reference forward when beta > 0),
evaluations, checkpoints, stop and resume. Only the main process writes the store; a stop request
is all-reduced so that every rank stops at the same step.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from sgpo.errors import ConfigError
from sgpo.train.config import TrainConfig

LOSS_TYPES = {"token-mean": "dapo", "sequence-mean": "grpo"}  # our aggregation -> TRL's loss_type


def grpo_config_fields() -> set[str]:
    import dataclasses

    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig)}


def check_trl_options(options: dict) -> None:
    """Unknown GRPOConfig fields are refused by name (`--trl KEY=VALUE`), before anything is written."""
    unknown = sorted(set(options) - grpo_config_fields())
    if unknown:
        raise ConfigError(
            f"--trl {unknown[0]}=...: GRPOConfig has no field {unknown[0]!r} (see `python -c "
            f'"from trl import GRPOConfig; help(GRPOConfig)"`)'
        )


def check_grpo_config(cfg: TrainConfig, device: str) -> None:
    """A trial GRPOConfig with the run's own settings and --trl fields: a value GRPOConfig rejects is a
    ConfigError naming the --trl fields, before the run exists."""
    import tempfile

    from trl import GRPOConfig

    from sgpo.distributed import rank_and_world

    g, world = cfg.group_size, rank_and_world()[1]
    trial = dict(
        output_dir=tempfile.gettempdir(),
        report_to="none",
        use_cpu=device == "cpu",
        num_generations=g,
        per_device_train_batch_size=g,
        generation_batch_size=g * world,
        max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature,
        beta=cfg.beta,
        learning_rate=cfg.lr,
        max_steps=1,
        loss_type=LOSS_TYPES[cfg.loss_aggregation],
    )
    try:
        GRPOConfig(**{**trial, **cfg.trl})
    except (ValueError, TypeError) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in cfg.trl.items()) or "(none)"
        raise ConfigError(f"--trl {given}: GRPOConfig refused these settings: {str(exc).splitlines()[0]}") from None


class TRLEngine:
    """The policy, its optimizer and a generator for evaluations; `drive` runs the phases on GRPOTrainer."""

    def __init__(self, cfg: TrainConfig, model_path: Path, *, weights: Path, device: str, dtype):
        from transformers.utils import logging as hf_logging

        from sgpo.generate.hf import HFGenerator
        from sgpo.model import load_model, load_tokenizer

        hf_logging.disable_progress_bar()
        self.cfg, self.device = cfg, device
        self.tokenizer, self.model = load_tokenizer(model_path), load_model(weights).to(device)
        self.tokenizer.padding_side = "left"
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = HFGenerator(model=self.model, tokenizer=self.tokenizer, batch_size=256)
        self.dtype = dtype
        self.cursor = {"phase": 0, "cycle": 0, "phase_steps": 0}  # where in the plan the run is

    def update(self, groups, *, lr):
        raise NotImplementedError("TRL's GRPOTrainer drives its own steps: the loop calls drive()")

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, folder / "optimizer.pt"
        )
        (folder / "trl_cursor.json").write_text(json.dumps(self.cursor))

    def load(self, folder: Path) -> None:
        blob = torch.load(folder / "optimizer.pt", weights_only=True)
        self.optimizer.load_state_dict(blob["optimizer"])
        torch.set_rng_state(blob["torch_rng"])
        self.cursor = json.loads((folder / "trl_cursor.json").read_text())

    # the phases ---------------------------------------------------------------------------------------
    def phases(self, trainer) -> list[dict]:
        """[{"group_size", "rows" (dataset rows, plan order), "shuffle", "advance", ...pacing}] of the run."""
        cfg, prep = self.cfg, trainer.prep
        if cfg.strategy == "grpo":
            rows = np.arange(len(prep.dataset))
            return [{"group_size": cfg.group_size, "rows": rows, "shuffle": True, "advance": "pass"}]
        out = []
        for ph in prep.phases:
            if not ph.group_size:
                raise ConfigError(
                    f"--engine trl needs one group size per phase, and the plan's {ph.pacing} phase "
                    f"mixes several: use a phased curriculum (--curriculum sequential, steps or plateau)"
                )
            out.append(
                {"group_size": ph.group_size, "rows": prep.rows[ph.positions], "shuffle": not ph.ordered, **ph.pacing}
            )
        return out

    def drive(self, trainer) -> None:
        """Run phases, cycling through the plan, until the run's budget is spent or a stop is requested."""
        phases = self.phases(trainer)
        while trainer.budget_left() and not trainer.stop_requested:
            i = self.cursor["phase"]
            self._run_phase(trainer, phases[i])
            if trainer.stop_requested or not trainer.budget_left():
                return
            self.cursor = {
                "phase": (i + 1) % len(phases),
                "cycle": self.cursor["cycle"] + (i + 1 == len(phases)),
                "phase_steps": 0,
            }

    def _run_phase(self, trainer, phase: dict) -> None:
        from datasets import Dataset
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
        from trl import GRPOConfig, GRPOTrainer

        cfg, g = self.cfg, int(phase["group_size"])
        world = trainer.world_size
        prompts_per_step = max(1, cfg.batch_rollouts // g)
        if (prompts_per_step * g) % world:
            raise ConfigError(
                f"--batch-rollouts {cfg.batch_rollouts} gives {prompts_per_step * g} completions per "
                f"step at G={g}, which {world} processes cannot share evenly: use a multiple of "
                f"{g * world}"
            )
        rows = np.asarray(phase["rows"])
        pad = (-len(rows)) % prompts_per_step  # whole generation batches: TRL would drop the rest silently
        rows = np.concatenate([rows, np.resize(rows, pad)]) if pad else rows
        if phase["advance"] == "steps":
            steps = int(phase["steps"])
        elif phase["advance"] == "plateau":
            steps = 10**9  # ended by the plateau rule (PlanCallback)
        else:
            steps = len(rows) // prompts_per_step
        steps -= self.cursor["phase_steps"]  # a resumed phase runs what it had left
        if trainer.cfg.max_steps is not None:
            steps = min(steps, trainer.cfg.max_steps - trainer.step)
        if steps <= 0:
            return
        frame = trainer.frame
        data = Dataset.from_dict(
            {
                "prompt": frame["prompt"].to_numpy()[rows].tolist(),
                "answer": frame["answer"].to_numpy()[rows].tolist(),
                "row": rows.tolist(),
            }
        )
        args = GRPOConfig(**self._trl_args(trainer, g, prompts_per_step, world, steps, phase["shuffle"]))
        offset = trainer.step
        warmup = cfg.warmup_steps
        schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda k: min(1.0, (offset + k + 1) / warmup) if warmup else 1.0
        )
        from sgpo.train.trl_callback import PhaseCallback

        grpo = GRPOTrainer(
            model=self.model,
            args=args,
            train_dataset=data,
            processing_class=self.tokenizer,
            reward_funcs=trainer.prep.dataset.reward_fn(),
            optimizers=(self.optimizer, schedule),
            callbacks=[PhaseCallback(trainer, self, g, prompts_per_step, phase)],
        )
        for quiet in (PrinterCallback, ProgressCallback):  # our loop logs each step itself
            grpo.remove_callback(quiet)
        grpo.train()

    def _trl_args(self, trainer, g: int, prompts: int, world: int, steps: int, shuffle: bool) -> dict:
        cfg = self.cfg
        args = dict(
            output_dir=str(trainer.ckpt_root / "trl"),
            report_to="none",
            use_cpu=self.device == "cpu",
            bf16=self.dtype == torch.bfloat16,
            num_generations=g,
            per_device_train_batch_size=prompts * g // world,
            generation_batch_size=prompts * g,
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
            seed=cfg.seed + 1009 * self.cursor["cycle"] + self.cursor["phase"],
            shuffle_dataset=shuffle,
            disable_tqdm=True,
            log_level="error",
            gradient_accumulation_steps=1,
        )
        return {**args, **cfg.trl}


def step_metrics(logs: dict, *, group_size: int, prompts: int, tokens: float) -> dict:
    """One TRL log line (one optimizer step) in our metric schema (sgpo/vocab.py). `tokens`: the prompt and
    completion tokens this step processed (TRL's cumulative `num_tokens`, differenced)."""
    frac = float(logs.get("frac_reward_zero_std", math.nan))
    informative = int(round(prompts * (1 - frac))) if not math.isnan(frac) else 0
    rollouts = prompts * group_size
    completion = float(logs.get("completions/mean_length", 0.0)) * rollouts
    return {
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


def trl_flops(tokens: float, n_params: int, beta: float) -> dict:
    """TRL trains every completion, zero-advantage ones included: generation 2 x params x tokens, training
    6 x (+2 x for the reference forward when beta > 0)."""
    return {"flops_rollout": 2.0 * n_params * tokens, "flops_train": (6.0 + (2.0 if beta else 0.0)) * n_params * tokens}
