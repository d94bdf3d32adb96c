"""TRL's GRPOTrainer as the second engine: the plan runs on it one phase at a time.

    sgpo train --engine trl --strategy sgpo --profile P ...         # the plan, phase by phase
    sgpo train --engine trl --strategy grpo ...                     # TRL's plain GRPO: fixed G, shuffled
    accelerate launch --multi_gpu --num_processes 2 -m sgpo train --engine trl ...

TRL takes one `num_generations` per trainer (per-prompt G is not supported, trl issue 2941), and every
phase of a plan has one G, so each phase gets its own GRPOTrainer over the same model and optimizer
(their state carries from phase to phase; a LambdaLR keeps the warmup global). A phase holds its
members in the plan's order (TRL shuffles them unless the plan orders them, `shuffle_dataset=False`),
padded with its own first members to whole generation batches: TRL's RepeatSampler silently drops an
incomplete last batch. A phase smaller than one batch trains all its queries each step
(sgpo/train/trl_config.py). Kept unsolved queries are members of every phase, as the plan says.

The seam is the same as our engine's (sgpo/train/engine.py): `train(session)` runs phases until the
session says stop, and the callback (sgpo/train/trl_callback.py) records each step TRL logs, in our
metric schema with TRL's accounting (every completion is trained; sgpo/train/metrics.py). Where the run
is in the plan (phase, cycle, steps into the phase) is this engine's state, kept in checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset as HFDataset
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.utils import logging as hf_logging

from sgpo.data import Dataset
from sgpo.generate.hf import HFGenerator
from sgpo.model import load_model, load_tokenizer
from sgpo.train.checkpoint import load_engine, save_engine
from sgpo.train.config import TrainConfig
from sgpo.train.engine import Session, warmup_factor
from sgpo.train.trl_callback import GroupCapture, PhaseCallback, capture_rows
from sgpo.train.trl_config import grpo_args, trl_classes

PHASE_SEED = 1009  # TRL's seed for a phase: seed + PHASE_SEED * cycle + phase


class TRLEngine:
    """The policy, its optimizer and a generator for evaluations; `train` runs the phases on GRPOTrainer."""

    def __init__(
        self,
        cfg: TrainConfig,
        model_path: Path,
        *,
        weights: Path,
        device: str,
        dtype: torch.dtype,
        phases: list[dict],
        dataset: Dataset,
        n_params: int,
        output_dir: Path,
        world: int = 1,
    ):
        hf_logging.disable_progress_bar()
        self.cfg, self.device, self.dtype, self.world = cfg, device, dtype, world
        self.tokenizer, self.model = load_tokenizer(model_path), load_model(weights).to(device)
        self.tokenizer.padding_side = "left"
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.generator = HFGenerator(model=self.model, tokenizer=self.tokenizer, batch_size=256)
        self.phases, self.dataset, self.n_params, self.output_dir = phases, dataset, n_params, output_dir
        self.cursor = {"phase": 0, "cycle": 0, "phase_steps": 0}  # where in the plan the run is

    # the seam ----------------------------------------------------------------------------------------
    def train(self, session: Session) -> None:
        """Run phases, cycling through the plan, until the session says stop."""
        while not session.should_stop():
            i = self.cursor["phase"]
            self._run_phase(session, self.phases[i])
            if session.should_stop():
                return
            self.cursor = {
                "phase": (i + 1) % len(self.phases),
                "cycle": self.cursor["cycle"] + (i + 1 == len(self.phases)),
                "phase_steps": 0,
            }

    def save(self, folder: Path) -> None:
        save_engine(folder, self.model, self.tokenizer, self.optimizer)

    def load(self, folder: Path) -> None:
        load_engine(folder, self.optimizer)
        old = folder / "trl_cursor.json"  # where checkpoints written before the cursor moved to state.json keep it
        if old.exists():
            self.cursor = json.loads(old.read_text())

    def state_dict(self) -> dict:
        return {"trl_cursor": dict(self.cursor)}

    def load_state_dict(self, state: dict) -> None:
        if "trl_cursor" in state:
            self.cursor = dict(state["trl_cursor"])

    # one phase ---------------------------------------------------------------------------------------
    def _count_step(self) -> dict:
        """A step of the current phase was logged: count it; the labels of its metrics row."""
        self.cursor["phase_steps"] += 1
        return {"phase": self.cursor["phase"], "cycle": self.cursor["cycle"]}

    def _run_phase(self, session: Session, phase: dict) -> None:
        cfg, g, prompts = self.cfg, int(phase["group_size"]), int(phase["prompts"])
        rows = np.asarray(phase["rows"])
        pad = (-len(rows)) % prompts  # whole generation batches: TRL would drop the rest silently
        rows = np.concatenate([rows, np.resize(rows, pad)]) if pad else rows
        if phase["advance"] == "steps":
            steps = int(phase["steps"])
        elif phase["advance"] == "plateau":
            steps = 10**9  # ended by the plateau rule (PhaseCallback)
        else:
            steps = len(rows) // prompts
        steps -= self.cursor["phase_steps"]  # a resumed phase runs what it had left
        left = session.steps_left()
        if left is not None:
            steps = min(steps, left)
        if steps <= 0:
            return
        frame = self.dataset.frame
        data = HFDataset.from_dict(
            {
                "prompt": frame["prompt"].to_numpy()[rows].tolist(),
                "answer": frame["answer"].to_numpy()[rows].tolist(),
                "row": rows.tolist(),
                # TRL hands every column to the reward: a user's function sees what our engine passes it
                **{c: frame[c].to_numpy()[rows].tolist() for c in ("id", "task", "difficulty")},
            }
        )
        GRPOConfig, GRPOTrainer = trl_classes()
        args = GRPOConfig(
            **grpo_args(
                cfg,
                group_size=g,
                prompts=prompts,
                world=self.world,
                steps=steps,
                shuffle=phase["shuffle"],
                seed=cfg.seed + PHASE_SEED * self.cursor["cycle"] + self.cursor["phase"],
                output_dir=str(self.output_dir),
                device=self.device,
                dtype=self.dtype,
            )
        )
        offset = session.step
        schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda k: warmup_factor(offset + k + 1, cfg.warmup_steps)
        )
        capture = GroupCapture(  # what our reward function scored, group by group, stored with each step
            self.dataset.reward_fn(), group_size=g, keep=cfg.keep_completions, seed=cfg.seed, query=capture_rows(frame)
        )
        callback = PhaseCallback(
            session,
            phase=phase,
            prompts=prompts,
            n_params=self.n_params,
            beta=cfg.beta,
            count_step=self._count_step,
            capture=capture,
        )
        grpo = GRPOTrainer(
            model=self.model,
            args=args,
            train_dataset=data,
            processing_class=self.tokenizer,
            reward_funcs=capture.reward_fn(),
            optimizers=(self.optimizer, schedule),
            callbacks=[callback],
        )
        for quiet in (PrinterCallback, ProgressCallback):  # the run logs each step itself
            grpo.remove_callback(quiet)
        grpo.train()
