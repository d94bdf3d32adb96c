"""The training loop, what every engine shares: rollouts -> rewards -> the engine's update -> metrics,
evals and checkpoints. The engine (sgpo/train/engine.py) owns the model; this module owns the rest.

    result = Trainer(setup.load(run, store), store, run["id"]).run()    # sgpo.runs.start does this

Each step's generation seed is `seed * 1000003 + step`, and every other source of randomness is either
keyed by position (data order) or restored from the checkpoint, so a run killed at any moment and
resumed replays the lost steps exactly: same metrics (upserted by step, so no gap and no duplicate)
and, on CPU, bit-identical final weights. SIGTERM (`sgpo runs stop`) and Ctrl-C finish the step in
flight, checkpoint and leave status 'stopped'.

Accounting (docs/METHOD.md): rollout FLOPs = 2 * n_params * (prompt + completion tokens) per
rollout; training FLOPs = 6 * n_params * tokens of the sequences trained on (+ 2 * n_params * tokens
for the reference forward when beta > 0); skipped groups cost no training FLOPs; sgpo's profiling
FLOPs count from step 0. Eval FLOPs are kept apart: they are not training compute.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from sgpo.errors import StoreError
from sgpo.runs import checkpoint_root
from sgpo.train import batches, checkpoint
from sgpo.train.accounting import Counters
from sgpo.train.engine import NativeEngine
from sgpo.train.evaluate import assign_bands, evaluate, sample_success
from sgpo.train.grpo import Group
from sgpo.train.setup import Prepared
from sgpo.vocab import FAILED, FINISHED, RUNNING, STOPPED, fraction

STEP_SEED = 1000003
EVAL_SEED, BAND_SEED = 17, 29  # added to seed * STEP_SEED: fixed across evals, so evals differ by the model only


class Trainer:
    def __init__(self, prep: Prepared, store, run_id: int, *, log=None):
        from sgpo.device import resolve_device, resolve_dtype
        from sgpo.distributed import rank_and_world
        from sgpo.tasks.rewards import SCORERS

        self.prep, self.cfg, self.run_id = prep, prep.config, run_id
        self.rank, self.world_size = rank_and_world()
        self.is_main = self.rank == 0
        self.store = store if self.is_main else ReadOnly(store)  # only the main process writes the store
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        torch.set_num_threads(self.cfg.num_threads)
        self.n_params = prep.model.n_params
        self.ckpt_root = checkpoint_root(store, prep.run_name)
        self.checkpoint_warnings: list[str] = []  # a truncated or corrupt latest checkpoint, passed over
        self.resume_from = checkpoint.latest_checkpoint(self.ckpt_root, warn=self.checkpoint_warnings.append)
        device = resolve_device(self.cfg.device)
        dtype = resolve_dtype(self.cfg.dtype, device)
        weights = self.resume_from or prep.model.path
        if self.cfg.engine == "trl":
            from sgpo.train.trl_engine import TRLEngine

            self.engine = TRLEngine(self.cfg, prep.model.path, weights=weights, device=device, dtype=dtype)
        else:
            self.engine = NativeEngine(
                self.cfg, prep.model.path, weights=weights, live_dir=self.ckpt_root / "live", device=device, dtype=dtype
            )
        self.frame = prep.dataset.frame
        self.score = SCORERS[prep.dataset.reward]
        # the held-out set is scored by its own rule: math answers by math-verify even if training is exact-match
        self.eval_score = SCORERS[prep.eval_dataset.reward] if prep.eval_dataset is not None else None
        self.sampler = self._make_sampler()
        self.counters = Counters(prep.flops_profile)
        self.step, self.bands, self.last_eval = 0, None, None
        self.saved_step, self.last_eval_step, self.last_data = 0, None, None
        self.eval_frame = self._eval_frame()
        self.stop_requested = False

    @property
    def generator(self):
        return self.engine.generator

    # setup -------------------------------------------------------------------------------------
    def _make_sampler(self):
        cfg, prep = self.cfg, self.prep
        if cfg.strategy == "grpo":
            return batches.GRPOSampler(len(self.frame), cfg.group_size, cfg.batch_rollouts, cfg.seed)
        if cfg.strategy == "dapo":
            return batches.DAPOSampler(
                len(self.frame), cfg.group_size, cfg.batch_rollouts, cfg.seed, cfg.dapo_max_rounds
            )
        if cfg.strategy == "greso":
            return batches.GRESOSampler(
                len(self.frame),
                cfg.group_size,
                cfg.batch_rollouts,
                cfg.seed,
                explore=cfg.greso_explore,
                target=cfg.greso_target,
            )
        pf = prep.profile_frame
        return batches.SGPOSampler(
            prep.phases,
            prep.rows,
            cfg.batch_rollouts,
            cfg.seed,
            successes=pf["successes"].to_numpy(),
            samples=pf["samples"].to_numpy(),
            replan=self._replan if cfg.refresh else None,
            refresh_every=cfg.refresh_every,
            refresh_decay=cfg.refresh_decay,
        )

    def _replan(self, successes: np.ndarray, samples: np.ndarray):
        from sgpo.errors import ConfigError
        from sgpo.plan import make_plan

        frame = self.prep.profile_frame.copy()
        frame["successes"], frame["samples"] = successes, samples
        frame["p_hat"] = np.clip(successes / np.maximum(samples, 1e-9), 0.0, 1.0)
        try:
            plan = make_plan(
                frame, self.prep.plan_config, n_params=self.n_params, flops_profile=self.prep.flops_profile
            )
        except ConfigError:  # nothing left to keep: the sampler goes on with the plan it has
            return None
        return plan.phases

    def _eval_frame(self):
        if self.prep.eval_dataset is None:
            return None
        frame = self.prep.eval_dataset.frame
        if self.cfg.eval_limit and self.cfg.eval_limit < len(frame):
            pick = np.sort(np.random.default_rng([self.cfg.seed, 4242]).permutation(len(frame))[: self.cfg.eval_limit])
            frame = frame.iloc[pick].reset_index(drop=True)
        return frame

    # one step ----------------------------------------------------------------------------------
    def rollout(self, rows: list[int], sizes: list[int], seed: int) -> list[Group]:
        """Generate and score one group per row; prompts of equal G share one generate call."""
        groups: list[Group | None] = [None] * len(rows)
        prompts, answers = self.frame["prompt"].to_numpy(), self.frame["answer"].to_numpy()
        for g in sorted(set(sizes)):
            idx = [i for i, s in enumerate(sizes) if s == g]
            outs = self.generator.generate(
                [prompts[rows[i]] for i in idx],
                n=g,
                temperature=self.cfg.temperature,
                max_new_tokens=self.cfg.max_new_tokens,
                seed=seed + 104729 * g,
            )
            for i, out in zip(idx, outs):
                rewards = np.array([self.score(s.text, answers[rows[i]]) for s in out.samples], dtype=float)
                groups[i] = Group(
                    query=rows[i],
                    prompt_ids=list(out.prompt_ids),
                    completions=[list(s.token_ids) for s in out.samples],
                    rewards=rewards,
                )
        return groups

    def lr_at(self, step: int) -> float:
        """Linear warmup over `warmup_steps` (step 1 gets lr / warmup), then constant."""
        w = self.cfg.warmup_steps
        return self.cfg.lr * min(1.0, step / w) if w else self.cfg.lr

    def train_step(self, step: int) -> dict:
        t0 = time.perf_counter()
        batch = self.sampler.next_batch(step, self.rollout, self.cfg.seed * STEP_SEED + step)
        t_gen = time.perf_counter() - t0
        lr = self.lr_at(step)
        update = self.engine.update(batch.groups, lr=lr)
        self.sampler.observe(batch)
        events = [f"step {step}: {e}" for e in getattr(self.sampler, "events", [])]
        for event in events:
            self.log(event)
        data = self._account(batch, update, lr, t_gen, time.perf_counter() - t0)
        # plan events ride on the step's metrics row: a step replayed after a resume rewrites them, never twice
        return {**data, "plan_events": events} if events else data

    def _account(self, batch, update, lr, t_gen, seconds) -> dict:
        n = self.n_params
        generated = batch.generated
        rollouts = sum(g.size for g in generated)
        informative = [g.informative for g in generated]  # Group.informative takes the rewards' spread: once each
        wasted = sum(g.size for g, inf in zip(generated, informative) if not inf)
        n_informative = int(sum(informative))
        tok_p = sum(g.prompt_tokens for g in generated)
        tok_c = sum(g.completion_tokens for g in generated)
        train_factor = 6 + (2 if self.cfg.beta else 0)
        by_g: dict[str, list[float]] = {}
        for g in batch.groups:
            by_g.setdefault(str(g.size), []).extend(g.rewards.tolist())
        all_rewards = np.concatenate([g.rewards for g in batch.groups]) if batch.groups else np.zeros(0)
        data = {
            "queries": len(batch.groups),
            "rollouts": rollouts,
            "groups": len(generated),
            "informative_groups": n_informative,
            "wasted_rollouts": wasted,
            "step_wasted_fraction": fraction(wasted, rollouts),
            "step_informative_fraction": fraction(n_informative, len(generated)),
            "group_size": batch.group_size,
            "reward_mean": float(all_rewards.mean()) if len(all_rewards) else None,
            "reward_by_group_size": {k: float(np.mean(v)) for k, v in sorted(by_g.items(), key=lambda kv: int(kv[0]))},
            "tokens_prompt": tok_p,
            "tokens_completion": tok_c,
            "tokens_trained": update.trained_tokens,
            # what an engine that trains every rollout (TRL, verl) would train: the update's whole batch
            "tokens_update": sum(g.prompt_tokens + g.completion_tokens for g in batch.groups),
            "trained_sequences": update.trained_sequences,
            "loss": update.loss,
            "kl": update.kl,
            "entropy": update.entropy,
            "grad_norm": update.grad_norm,
            "lr": lr,
            "step_seconds": seconds,
            "generation_seconds": t_gen,
            "phase": batch.phase,
            **batch.info,
        }
        return self.counters.add(
            data,
            flops_rollout=2.0 * n * (tok_p + tok_c),
            flops_train=float(train_factor) * n * update.trained_tokens,
            seconds=seconds,
        )

    def totals(self) -> dict:
        return self.counters.totals()

    # eval --------------------------------------------------------------------------------------
    def run_eval(self) -> dict:
        cfg, kw = self.cfg, dict(temperature=self.cfg.temperature, max_new_tokens=self.cfg.max_new_tokens)
        base = cfg.seed * STEP_SEED
        if self.bands is None:  # once, under the initial policy, with samples of its own
            success, tokens = sample_success(
                self.generator,
                self.eval_frame,
                self.eval_score,
                samples=max(8, cfg.eval_samples),
                seed=base + BAND_SEED,
                **kw,
            )
            self.bands = assign_bands(success)
            self.counters["flops_eval"] += 2.0 * self.n_params * tokens
        result = evaluate(
            self.generator,
            self.eval_frame,
            self.eval_score,
            samples=cfg.eval_samples,
            seed=base + EVAL_SEED,
            n_params=self.n_params,
            greedy=cfg.eval_greedy,
            bands=self.bands,
            **kw,
        )
        self.counters["flops_eval"] += result["flops"]
        self.last_eval = result
        return result

    def _eval_row(self, result: dict) -> dict:
        return {
            "flops_total": self.totals()["flops_total"],
            "accuracy": result["accuracy"],
            "data": {**result, "flops_eval_total": self.counters["flops_eval"]},
        }

    # the loop ----------------------------------------------------------------------------------
    def budget_left(self) -> bool:
        cfg = self.cfg
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return False
        return cfg.flops_budget is None or self.totals()["flops_total"] < cfg.flops_budget

    def _save(self) -> Path:
        state = {
            "counters": self.counters.state_dict(),
            "sampler": self.sampler.state_dict(),
            "bands": None if self.bands is None else self.bands.tolist(),
            "last_eval": self.last_eval,
            "last_eval_step": self.last_eval_step,
            "last_data": self.last_data,
        }
        return checkpoint.save_checkpoint(self.ckpt_root, self.step, self.engine, state)

    def _restore(self) -> None:
        pace = self.prep.phases[0].pacing if self.prep.phases else None
        state = checkpoint.load_checkpoint(self.resume_from, self.engine, pace)
        self.step = int(state["step"])
        self.counters.load_state_dict(state["counters"])
        self.sampler.load_state_dict(state["sampler"])
        self.bands = None if state["bands"] is None else np.asarray(state["bands"])
        self.last_eval = state["last_eval"]
        # a kill after the last checkpoint but before the final evaluation: the resumed run still owes it
        self.last_eval_step, self.last_data = state.get("last_eval_step"), state.get("last_data")

    def run(self) -> dict:
        cfg = self.cfg
        in_main = threading.current_thread() is threading.main_thread()  # signals can only be caught there
        previous = {s: signal.signal(s, self._request_stop) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
        self.store.update_run(self.run_id, status=RUNNING, pid=os.getpid())
        try:
            for warning in self.checkpoint_warnings:
                self.store.event(self.run_id, "warning", warning)
                self.log(f"warning: {warning}")
            if self.resume_from is not None:
                self._restore()
                self.store.event(self.run_id, "resume", f"resumed from {self.resume_from.name} (step {self.step})")
                self.log(f"resumed from {self.resume_from} at step {self.step}")
            else:
                torch.manual_seed(cfg.seed)  # torch's own RNG (dropout, if a model has it): seeded, so reproducible
                started = any(e["kind"] == "start" for e in self.store.events(self.run_id))
                self.store.event(
                    self.run_id,
                    "restart" if started else "start",
                    f"{cfg.strategy} run {'started again from step 0' if started else 'started'}",
                )
                for warning in self.prep.warnings:
                    self.store.event(self.run_id, "warning", warning)
                    self.log(f"warning: {warning}")
                eval_row = self._eval_row(self.run_eval()) if self.eval_frame is not None and self.is_main else None
                self.store.log_step(self.run_id, 0, 0, 0.0, {**self.totals(), "initial": True}, eval_row)
            self.saved_step = self.step
            if hasattr(self.engine, "drive"):  # an engine that runs its own steps (TRL) calls after_step
                self.engine.drive(self)
            else:
                while not self.stop_requested and self.budget_left():
                    self.step += 1
                    self.after_step(self.train_step(self.step))
            finished = not self.stop_requested
            data = self.last_data
            if (
                finished
                and self.is_main
                and data is not None
                and self.eval_frame is not None
                and self.last_eval_step != self.step
            ):
                self.store.log_step(
                    self.run_id,
                    self.step,
                    int(data.get("phase", 0) or 0),
                    self.counters["wall_seconds"],
                    data,
                    self._eval_row(self.run_eval()),
                )
            latest = checkpoint.latest_checkpoint(self.ckpt_root)
            path = latest if (self.saved_step == self.step and latest is not None) or not self.is_main else self._save()
            result = self.result(FINISHED if finished else STOPPED, path)
            self.store.update_run(
                self.run_id,
                status=result["status"],
                result=result,
                pid=None,
                **({"finished": time.time()} if finished else {}),
            )
            self.store.event(self.run_id, result["status"], f"{result['status']} at step {self.step}")
            return result
        except (StoreError, checkpoint.CheckpointError) as exc:  # full disk, read-only store: stop, keep the checkpoint
            kept = checkpoint.latest_checkpoint(self.ckpt_root, warn=self.log)
            name = self.prep.run_name
            message = (
                f"run {name!r} stopped at step {self.step}: {exc}. Once the disk or store is writable "
                f"again, `sgpo runs resume {name}` continues from {kept.name if kept else 'step 0'}, intact"
            )
            self._mark_failed(message)
            raise type(exc)(message) from exc
        except BaseException as exc:
            self._mark_failed(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def after_step(self, data: dict) -> None:
        """What every engine's step ends with: an evaluation when due, the metrics row, a checkpoint when
        due (the main process does the evaluation and the writes)."""
        cfg, eval_row = self.cfg, None
        self.last_data = data
        if self.is_main and self.eval_frame is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
            eval_row, self.last_eval_step = self._eval_row(self.run_eval()), self.step
        self.store.log_step(
            self.run_id, self.step, int(data.get("phase", 0) or 0), self.counters["wall_seconds"], data, eval_row
        )
        if self.is_main:
            self._progress(data, eval_row)
        if self.step % cfg.checkpoint_every == 0 and self.is_main:
            self._save()
            self.saved_step = self.step

    def _mark_failed(self, message: str) -> None:
        """Status `failed` with the reason as an event; when the store is what failed, the log only."""
        try:
            self.store.update_run(self.run_id, status=FAILED, pid=None)
            self.store.event(self.run_id, FAILED, message)
        except StoreError as exc:
            self.log(f"could not mark the run failed ({exc}): {message}")

    def _request_stop(self, signum, frame) -> None:
        if self.stop_requested:  # a second signal: stop now, without the checkpoint
            raise KeyboardInterrupt
        self.stop_requested = True
        self.log(f"signal {signal.Signals(signum).name}: finishing step {self.step + 1}, then checkpointing")

    def _progress(self, data: dict, eval_row: dict | None) -> None:
        every = max(1, (self.cfg.max_steps or 100) // 20)
        if self.step % every == 0 or eval_row is not None or self.step == 1:
            reward, loss = data.get("reward_mean"), data.get("loss")
            line = (
                f"step {self.step}: reward {reward if reward is not None else float('nan'):.3f}"
                f" wasted {data['wasted_rollouts']}/{data['rollouts']} loss "
                f"{loss if loss is not None else float('nan'):.4f} flops {data['flops_total']:.3g} "
                f"{data.get('step_seconds') or 0.0:.2f}s"
            )
            if eval_row is not None:
                line += f" | eval {eval_row['accuracy']:.3f}"
                if "by_band" in eval_row["data"]:
                    line += f" middle {eval_row['data']['by_band'].get('middle', float('nan')):.3f}"
            self.log(line)

    def result(self, status: str, path: Path | None) -> dict:
        ev = self.last_eval or {}
        first = self.store.evals_frame(self.run_id)
        initial = first.iloc[0] if len(first) else None
        return {
            "run_id": self.run_id,
            "run_name": self.prep.run_name,
            "status": status,
            "strategy": self.cfg.strategy,
            "steps": self.step,
            **self.totals(),
            "wall_seconds": self.counters["wall_seconds"],
            "eval_accuracy": ev.get("accuracy"),
            "eval_greedy_accuracy": ev.get("greedy_accuracy"),
            "eval_middle_accuracy": ev.get("by_band", {}).get("middle"),
            "eval_accuracy_initial": float(initial["accuracy"]) if initial is not None else None,
            "eval_middle_accuracy_initial": _get(initial, "by_band.middle"),
            "checkpoint": str(path) if path else None,
        }


def _get(row, key):
    if row is None or key not in row.index:
        return None
    value = row[key]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


class ReadOnly:
    """What a non-main rank sees of the store: reads go through, writes belong to the main process."""

    WRITES = ("update_run", "event", "log_step", "create_run")

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        if name in self.WRITES:
            return lambda *args, **kwargs: None
        return getattr(self._store, name)
