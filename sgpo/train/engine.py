"""The engine seam: what a training engine does, apart from what every engine shares.

An engine owns the model: it generates rollouts, applies one update from a batch of scored groups, and
saves and loads its own state (weights, tokenizer, optimizer, RNG). Everything else is shared and lives
in sgpo/train/loop.py: the run lifecycle, which queries each step trains (the samplers), rewards, the
metric schema, FLOPs accounting, held-out evaluation, store writes, checkpoint bookkeeping, stop and
resume. docs/ARCHITECTURE.md draws the seam.

    engine = NativeEngine(config, model_ref, weights=checkpoint_or_model_path)
    outs = engine.generator.generate(prompts, n=8, temperature=1.0, max_new_tokens=20, seed=s)
    update = engine.update(groups, lr=5e-5)        # Update(trained_sequences, trained_tokens, loss, ...)
    engine.save(folder); engine.load(folder)

`NativeEngine` is ours: per-query group sizes in one batch, zero-advantage groups left out of the
backward pass, rollouts from the policy itself (transformers) or a colocated vLLM engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from sgpo.device import autocast
from sgpo.generate import Generator
from sgpo.train.config import TrainConfig
from sgpo.train.grpo import Group, LossConfig, accumulate_gradients


@dataclass
class Update:
    """What one update did: the shared loop turns it into metrics and training FLOPs."""

    trained_sequences: int  # rollouts that went through forward/backward
    trained_tokens: int  # prompt + completion tokens of those (training FLOPs are counted on these)
    loss: float
    kl: float
    entropy: float
    grad_norm: float  # nan when nothing was trained (every group had zero advantage)


class Engine(Protocol):
    generator: Generator  # rollouts and held-out evaluation, always with the current weights

    def update(self, groups: list[Group], *, lr: float) -> Update: ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...


class NativeEngine:
    """Our GRPO engine: the policy, its optimizer, a generator, and the loss in sgpo/train/grpo.py."""

    def __init__(
        self,
        cfg: TrainConfig,
        model_path: Path,
        *,
        weights: Path,
        live_dir: Path,
        device: str = "cpu",
        dtype=torch.float32,
    ):
        from transformers.utils import logging as hf_logging

        from sgpo.model import load_model, load_tokenizer

        hf_logging.disable_progress_bar()  # per-checkpoint save/load bars would flood the log
        self.cfg, self.live_dir, self.device, self.dtype = cfg, live_dir, device, dtype
        # fp32 master weights on the device; bf16 runs forward and backward under autocast (sgpo/device.py)
        self.tokenizer, self.model = load_tokenizer(model_path), load_model(weights).to(device)
        self.ref_model = load_model(model_path).to(device).eval() if cfg.beta else None
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.loss_cfg = LossConfig(
            epsilon_low=cfg.epsilon,
            epsilon_high=cfg.epsilon_high,
            beta=cfg.beta,
            scale_rewards=cfg.scale_rewards,
            aggregation=cfg.loss_aggregation,
            skip_zero_advantage=cfg.skip_zero_advantage,
            temperature=cfg.temperature,
            micro_batch=cfg.micro_batch,
        )
        if cfg.backend == "vllm":
            from sgpo.generate import make_generator

            # colocated with training on one GPU: vLLM takes a memory fraction, training the rest
            gpu = (
                {"gpu_memory_utilization": cfg.gpu_memory_utilization, "tensor_parallel_size": cfg.tensor_parallel_size}
                if device == "cuda"
                else {}
            )
            self.generator = make_generator("vllm", weights, seed=cfg.seed, **gpu)
        else:
            from sgpo.generate.hf import HFGenerator

            self.generator = Autocast(
                HFGenerator(model=self.model, tokenizer=self.tokenizer, batch_size=256), device, dtype
            )

    def update(self, groups: list[Group], *, lr: float) -> Update:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        with autocast(self.device, self.dtype):
            stats = accumulate_gradients(
                self.model, groups, self.loss_cfg, pad_id=self.tokenizer.pad_token_id, ref_model=self.ref_model
            )
        grad_norm = math.nan
        if stats.trained_sequences:
            max_norm = self.cfg.max_grad_norm or math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        elif stats.sequences:
            # every group skipped: a full pass would give zero gradients and Adam would still step (its
            # momentum moves the weights); do the same, so skipping stays a pure saving
            for param in self.model.parameters():
                param.grad = torch.zeros_like(param)
        if stats.sequences:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.cfg.backend == "vllm" and stats.sequences:
            self.model.save_pretrained(self.live_dir, safe_serialization=True)
            self.generator.update_weights(self.live_dir)
        return Update(stats.trained_sequences, stats.trained_tokens, stats.loss, stats.kl, stats.entropy, grad_norm)

    def save(self, folder: Path) -> None:
        """A model folder (config, tokenizer, safetensors) plus optimizer.pt: loadable by --model and vLLM."""
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, folder / "optimizer.pt"
        )

    def load(self, folder: Path) -> None:
        """The optimizer and torch's RNG (the weights were loaded from `folder` at construction)."""
        blob = torch.load(folder / "optimizer.pt", weights_only=True)
        self.optimizer.load_state_dict(blob["optimizer"])
        torch.set_rng_state(blob["torch_rng"])


class Autocast:
    """A generator whose calls run under the engine's autocast (bf16 sampling from fp32 master weights)."""

    def __init__(self, inner, device: str, dtype):
        self.inner, self.device, self.dtype, self.backend = inner, device, dtype, inner.backend

    def generate(self, *args, **kwargs):
        with autocast(self.device, self.dtype):
            return self.inner.generate(*args, **kwargs)
