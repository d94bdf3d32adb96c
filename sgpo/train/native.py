"""Our engine: per-query group sizes in one batch, zero-advantage groups left out of the backward pass,
rollouts from the policy itself (transformers) or a colocated vLLM engine.

    engine = NativeEngine(cfg, model_path, weights=path, live_dir=folder, sampler=make_sampler(prep),
                          dataset=prep.dataset, n_params=n)
    engine.train(session)                 # the seam (sgpo/train/engine.py): steps until the session says stop
    data, flops, seconds = engine.step(7) # one step: batch, rollouts, rewards, update; nothing recorded
    update = engine.update(groups, lr=5e-5)

A step: the strategy's sampler (sgpo/train/batches.py) picks the queries and their G and asks for their
rollouts (sgpo/train/rollouts.py, seeded by seed * STEP_SEED + step), one update from the batch's groups
(the loss is sgpo/train/grpo.py), then the sampler sees the scored groups (DAPO refills, GRESO's skip
statistics, sgpo's posterior and phase pacing). Built without a sampler and dataset it only updates: that
is how the tests and bench/train_step.py compare its update with TRL's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as hf_logging

from sgpo.data import Dataset
from sgpo.device import autocast
from sgpo.generate import Generator
from sgpo.generate.backends import make_generator
from sgpo.generate.hf import HFGenerator
from sgpo.model import load_model, load_tokenizer
from sgpo.train.checkpoint import load_engine, save_engine
from sgpo.train.config import TrainConfig
from sgpo.train.engine import STEP_SEED, Session, Update, warmup_factor
from sgpo.train.grpo import Group, LossConfig, accumulate_gradients
from sgpo.train.metrics import native_step
from sgpo.train.noise import NoiseScale
from sgpo.train.rollouts import ROLLOUTS_KEY, Rollouts, native_groups


class NativeEngine:
    """The policy, its optimizer, a generator, and the loss in sgpo/train/grpo.py."""

    def __init__(
        self,
        cfg: TrainConfig,
        model_path: Path,
        *,
        weights: Path,
        live_dir: Path,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        sampler=None,
        dataset: Dataset | None = None,
        n_params: int | None = None,
    ):
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
            gauge_chunks=cfg.gauge,
        )
        self.gauge = NoiseScale()  # the critical-batch gauge's smoothed state (sgpo/train/noise.py)
        self.generator: Generator
        if cfg.backend == "vllm":
            # colocated with training on one GPU: vLLM takes a memory fraction, training the rest
            gpu = (
                {"gpu_memory_utilization": cfg.gpu_memory_utilization, "tensor_parallel_size": cfg.tensor_parallel_size}
                if device == "cuda"
                else {}
            )
            self.vllm: Any = make_generator("vllm", weights, seed=cfg.seed, **gpu)  # reloads weights in place
            self.generator = self.vllm
        else:
            self.generator = Autocast(
                HFGenerator(model=self.model, tokenizer=self.tokenizer, batch_size=256), device, dtype
            )
        self.n_params = n_params or sum(p.numel() for p in self.model.parameters())
        self.sampler, self.frame = sampler, dataset.frame if dataset is not None else None
        self.rollouts = (
            Rollouts(self.generator, dataset, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
            if dataset is not None
            else None
        )

    # the seam ----------------------------------------------------------------------------------------
    def train(self, session: Session) -> None:
        while not session.should_stop():
            data, flops, seconds = self.step(session.step + 1)
            session.record(data, flops=flops, seconds=seconds)

    def step(self, step: int) -> tuple[dict, dict, float]:
        """Step `step` (1-based): its metrics row, its FLOPs (sgpo.accounting.step_flops) and its seconds."""
        t0 = time.perf_counter()
        batch = self.sampler.next_batch(step, self.rollouts, self.cfg.seed * STEP_SEED + step)
        t_gen = time.perf_counter() - t0
        lr = self.cfg.lr * warmup_factor(step, self.cfg.warmup_steps)
        update = self.update(batch.groups, lr=lr)
        self.sampler.observe(batch)
        seconds = time.perf_counter() - t0
        data, flops = native_step(
            batch, update, n_params=self.n_params, beta=self.cfg.beta, lr=lr, seconds=seconds, generation_seconds=t_gen
        )
        if self.loss_cfg.gauge_chunks:  # informative rollouts over every generated one (DAPO's dropped included)
            informative = data["rollouts"] - data["wasted_rollouts"]
            data.update(self.gauge.update(*update.chunks, informative=informative, rollouts=data["rollouts"]))
        if self.sampler.events:  # on the step's own row: a step replayed after a resume rewrites them, never twice
            data["plan_events"] = [f"step {step}: {e}" for e in self.sampler.events]
        data[ROLLOUTS_KEY] = native_groups(  # the recorder stores them beside the row (sgpo/train/recorder.py)
            batch,
            step=step,
            seed=self.cfg.seed,
            keep=self.cfg.keep_completions,
            skip_zero_advantage=self.cfg.skip_zero_advantage,
            frame=self.frame,
            decode=lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True),
        )
        return data, flops, seconds

    def save(self, folder: Path) -> None:
        """A model folder (config, tokenizer, safetensors) plus optimizer.pt: loadable by --model and vLLM."""
        save_engine(folder, self.model, self.tokenizer, self.optimizer)

    def load(self, folder: Path) -> None:
        """The optimizer and torch's RNG (the weights were loaded from `folder` at construction)."""
        load_engine(folder, self.optimizer)

    def state_dict(self) -> dict:
        """Where the run is in its data (the sampler's cursor, phase and posterior) and the gauge's smoothed state."""
        out = {"gauge": self.gauge.state_dict()}
        return {**out, "sampler": self.sampler.state_dict()} if self.sampler is not None else out

    def load_state_dict(self, state: dict) -> None:
        if self.sampler is not None:
            self.sampler.load_state_dict(state["sampler"])
        if "gauge" in state:  # a checkpoint from before the gauge: it starts afresh
            self.gauge.load_state_dict(state["gauge"])

    # the update --------------------------------------------------------------------------------------
    def update(self, groups: list[Group], *, lr: float) -> GaugedUpdate:
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
            self.vllm.update_weights(self.live_dir)
        return GaugedUpdate(
            stats.trained_sequences,
            stats.trained_tokens,
            stats.loss,
            stats.kl,
            stats.entropy,
            grad_norm,
            chunks=(stats.chunk_sq, stats.chunk_rollouts, stats.sum_sq),
        )


@dataclass
class GaugedUpdate(Update):
    """Our engine's update, with what the critical-batch gauge read off it: the chunks' squared mean-gradient
    norms, their informative rollouts and |the sum of the chunks' means|^2 (empty when the gauge is off or the step
    had fewer than two informative groups)."""

    chunks: tuple[list[float], list[int], float] = field(default_factory=lambda: ([], [], math.nan))


class Autocast:
    """A generator whose calls run under the engine's autocast (bf16 sampling from fp32 master weights)."""

    def __init__(self, inner, device: str, dtype):
        self.inner, self.device, self.dtype, self.backend = inner, device, dtype, inner.backend

    def generate(self, *args, **kwargs):
        with autocast(self.device, self.dtype):
            return self.inner.generate(*args, **kwargs)
