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

from sgpo.runs import checkpoint_root
from sgpo.train import batches, checkpoint
from sgpo.train.engine import NativeEngine
from sgpo.train.evaluate import assign_bands, evaluate, sample_success
from sgpo.train.grpo import Group
from sgpo.train.setup import Prepared
from sgpo.vocab import FAILED, FINISHED, RUNNING, STOPPED, fraction

STEP_SEED = 1000003
EVAL_SEED, BAND_SEED = 17, 29  # added to seed * STEP_SEED: fixed across evals, so evals differ by the model only
COUNTERS = ("queries", "rollouts", "wasted_rollouts", "groups", "informative_groups", "tokens_prompt",
            "tokens_completion", "tokens_trained", "flops_rollout", "flops_train", "flops_eval", "wall_seconds")


class Trainer:
    def __init__(self, prep: Prepared, store, run_id: int, *, log=None):
        from sgpo.tasks.rewards import SCORERS

        self.prep, self.cfg, self.store, self.run_id = prep, prep.config, store, run_id
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        torch.set_num_threads(self.cfg.num_threads)
        self.n_params = prep.model.n_params
        self.ckpt_root = checkpoint_root(store, prep.run_name)
        self.resume_from = checkpoint.latest_checkpoint(self.ckpt_root)
        self.engine = NativeEngine(self.cfg, prep.model.path, weights=self.resume_from or prep.model.path,
                                   live_dir=self.ckpt_root / "live")
        self.frame = prep.dataset.frame
        self.score = SCORERS[prep.dataset.reward]
        # the held-out set is scored by its own rule: math answers by math-verify even if training is exact-match
        self.eval_score = SCORERS[prep.eval_dataset.reward] if prep.eval_dataset is not None else None
        self.sampler = self._make_sampler()
        self.counters = dict.fromkeys(COUNTERS, 0.0)
        self.step, self.bands, self.last_eval = 0, None, None
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
            return batches.DAPOSampler(len(self.frame), cfg.group_size, cfg.batch_rollouts, cfg.seed,
                                       cfg.dapo_max_rounds)
        pf = prep.profile_frame
        return batches.SGPOSampler(prep.phases, prep.rows, cfg.batch_rollouts, cfg.seed,
                                   successes=pf["successes"].to_numpy(), samples=pf["samples"].to_numpy(),
                                   replan=self._replan if cfg.refresh else None, refresh_every=cfg.refresh_every,
                                   refresh_decay=cfg.refresh_decay)

    def _replan(self, successes: np.ndarray, samples: np.ndarray):
        from sgpo.errors import ConfigError
        from sgpo.plan import make_plan

        frame = self.prep.profile_frame.copy()
        frame["successes"], frame["samples"] = successes, samples
        frame["p_hat"] = np.clip(successes / np.maximum(samples, 1e-9), 0.0, 1.0)
        try:
            plan = make_plan(frame, self.prep.plan_config, n_params=self.n_params,
                             flops_profile=self.prep.flops_profile)
        except ConfigError:  # nothing left to keep: the sampler goes on with the plan it has
            return None
        return plan.phases

    def _eval_frame(self):
        if self.prep.eval_dataset is None:
            return None
        frame = self.prep.eval_dataset.frame
        if self.cfg.eval_limit and self.cfg.eval_limit < len(frame):
            pick = np.sort(np.random.default_rng([self.cfg.seed, 4242]).permutation(len(frame))[:self.cfg.eval_limit])
            frame = frame.iloc[pick].reset_index(drop=True)
        return frame

    # one step ----------------------------------------------------------------------------------
    def rollout(self, rows: list[int], sizes: list[int], seed: int) -> list[Group]:
        """Generate and score one group per row; prompts of equal G share one generate call."""
        groups: list[Group | None] = [None] * len(rows)
        prompts, answers = self.frame["prompt"].to_numpy(), self.frame["answer"].to_numpy()
        for g in sorted(set(sizes)):
            idx = [i for i, s in enumerate(sizes) if s == g]
            outs = self.generator.generate([prompts[rows[i]] for i in idx], n=g, temperature=self.cfg.temperature,
                                           max_new_tokens=self.cfg.max_new_tokens, seed=seed + 104729 * g)
            for i, out in zip(idx, outs):
                rewards = np.array([self.score(s.text, answers[rows[i]]) for s in out.samples], dtype=float)
                groups[i] = Group(query=rows[i], prompt_ids=list(out.prompt_ids),
                                  completions=[list(s.token_ids) for s in out.samples], rewards=rewards)
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
        for event in getattr(self.sampler, "events", []):
            self.store.event(self.run_id, "plan", f"step {step}: {event}")
            self.log(f"step {step}: {event}")
        return self._account(batch, update, lr, t_gen, time.perf_counter() - t0)

    def _account(self, batch, update, lr, t_gen, seconds) -> dict:
        c, n = self.counters, self.n_params
        generated = batch.generated
        rollouts = sum(g.size for g in generated)
        informative = [g.informative for g in generated]  # Group.informative takes the rewards' spread: once each
        wasted = sum(g.size for g, inf in zip(generated, informative) if not inf)
        n_informative = int(sum(informative))
        tok_p = sum(g.prompt_tokens for g in generated)
        tok_c = sum(g.completion_tokens for g in generated)
        train_factor = 6 + (2 if self.cfg.beta else 0)
        c["queries"] += len(batch.groups)
        c["rollouts"] += rollouts
        c["wasted_rollouts"] += wasted
        c["groups"] += len(generated)
        c["informative_groups"] += n_informative
        c["tokens_prompt"] += tok_p
        c["tokens_completion"] += tok_c
        c["tokens_trained"] += update.trained_tokens
        c["flops_rollout"] += 2.0 * n * (tok_p + tok_c)
        c["flops_train"] += float(train_factor) * n * update.trained_tokens
        c["wall_seconds"] += seconds
        by_g: dict[str, list[float]] = {}
        for g in batch.groups:
            by_g.setdefault(str(g.size), []).extend(g.rewards.tolist())
        all_rewards = np.concatenate([g.rewards for g in batch.groups]) if batch.groups else np.zeros(0)
        data = {
            "queries": len(batch.groups), "rollouts": rollouts, "groups": len(generated),
            "informative_groups": n_informative, "wasted_rollouts": wasted,
            "step_wasted_fraction": fraction(wasted, rollouts),
            "step_informative_fraction": fraction(n_informative, len(generated)),
            "group_size": batch.group_size, "reward_mean": float(all_rewards.mean()) if len(all_rewards) else None,
            "reward_by_group_size": {k: float(np.mean(v)) for k, v in sorted(by_g.items(), key=lambda kv: int(kv[0]))},
            "tokens_prompt": tok_p, "tokens_completion": tok_c, "tokens_trained": update.trained_tokens,
            "trained_sequences": update.trained_sequences, "loss": update.loss, "kl": update.kl,
            "entropy": update.entropy, "grad_norm": update.grad_norm, "lr": lr, "step_seconds": seconds,
            "generation_seconds": t_gen, "phase": batch.phase, **batch.info,
        }
        return {**data, **self.totals()}

    def totals(self) -> dict:
        c = self.counters
        total = self.prep.flops_profile + c["flops_rollout"] + c["flops_train"]
        return {"flops_profile": self.prep.flops_profile, "flops_rollout": c["flops_rollout"],
                "flops_train": c["flops_train"], "flops_total": total, "flops_eval": c["flops_eval"],
                "rollouts_total": c["rollouts"], "wasted_rollouts_total": c["wasted_rollouts"],
                "groups_total": c["groups"], "informative_groups_total": c["informative_groups"],
                "run_wasted_fraction": fraction(c["wasted_rollouts"], c["rollouts"]),
                "run_informative_fraction": fraction(c["informative_groups"], c["groups"]),
                "queries_total": c["queries"], "tokens_total": c["tokens_prompt"] + c["tokens_completion"]}

    # eval --------------------------------------------------------------------------------------
    def run_eval(self) -> dict:
        cfg, kw = self.cfg, dict(temperature=self.cfg.temperature, max_new_tokens=self.cfg.max_new_tokens)
        base = cfg.seed * STEP_SEED
        if self.bands is None:  # once, under the initial policy, with samples of its own
            success, tokens = sample_success(self.generator, self.eval_frame, self.eval_score,
                                             samples=max(8, cfg.eval_samples), seed=base + BAND_SEED, **kw)
            self.bands = assign_bands(success)
            self.counters["flops_eval"] += 2.0 * self.n_params * tokens
        result = evaluate(self.generator, self.eval_frame, self.eval_score, samples=cfg.eval_samples, seed=base + EVAL_SEED,
                          n_params=self.n_params, greedy=cfg.eval_greedy, bands=self.bands, **kw)
        self.counters["flops_eval"] += result["flops"]
        self.last_eval = result
        return result

    def _eval_row(self, result: dict) -> dict:
        return {"flops_total": self.totals()["flops_total"], "accuracy": result["accuracy"],
                "data": {**result, "flops_eval_total": self.counters["flops_eval"]}}

    # the loop ----------------------------------------------------------------------------------
    def _budget_left(self) -> bool:
        cfg = self.cfg
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return False
        return cfg.flops_budget is None or self.totals()["flops_total"] < cfg.flops_budget

    def _save(self) -> Path:
        state = {"counters": self.counters, "sampler": self.sampler.state_dict(),
                 "bands": None if self.bands is None else self.bands.tolist(), "last_eval": self.last_eval}
        return checkpoint.save_checkpoint(self.ckpt_root, self.step, self.engine, state)

    def _restore(self) -> None:
        pace = self.prep.phases[0].pacing if self.prep.phases else None
        state = checkpoint.load_checkpoint(self.resume_from, self.engine, pace)
        self.step = int(state["step"])
        self.counters = {**self.counters, **state["counters"]}
        self.sampler.load_state_dict(state["sampler"])
        self.bands = None if state["bands"] is None else np.asarray(state["bands"])
        self.last_eval = state["last_eval"]

    def run(self) -> dict:
        cfg = self.cfg
        in_main = threading.current_thread() is threading.main_thread()  # signals can only be caught there
        previous = {s: signal.signal(s, self._request_stop) for s in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
        self.store.update_run(self.run_id, status=RUNNING, pid=os.getpid())
        try:
            if self.resume_from is not None:
                self._restore()
                self.store.event(self.run_id, "resume", f"resumed from {self.resume_from.name} (step {self.step})")
                self.log(f"resumed from {self.resume_from} at step {self.step}")
            else:
                self.store.event(self.run_id, "start", f"{cfg.strategy} run started")
                for warning in self.prep.warnings:
                    self.store.event(self.run_id, "warning", warning)
                    self.log(f"warning: {warning}")
                eval_row = self._eval_row(self.run_eval()) if self.eval_frame is not None else None
                self.store.log_step(self.run_id, 0, 0, 0.0, {**self.totals(), "initial": True}, eval_row)
            data, saved, last_eval_step = None, self.step, None
            while not self.stop_requested and self._budget_left():
                self.step += 1
                data = self.train_step(self.step)
                eval_row = None
                if self.eval_frame is not None and cfg.eval_every and self.step % cfg.eval_every == 0:
                    eval_row, last_eval_step = self._eval_row(self.run_eval()), self.step
                self.store.log_step(self.run_id, self.step, int(data.get("phase", 0) or 0), self.counters["wall_seconds"],
                                    data, eval_row)
                self._progress(data, eval_row)
                if self.step % cfg.checkpoint_every == 0:
                    self._save()
                    saved = self.step
            finished = not self.stop_requested
            if finished and data is not None and self.eval_frame is not None and last_eval_step != self.step:
                self.store.log_step(self.run_id, self.step, int(data.get("phase", 0) or 0),
                                    self.counters["wall_seconds"], data, self._eval_row(self.run_eval()))
            latest = checkpoint.latest_checkpoint(self.ckpt_root)
            path = latest if saved == self.step and latest is not None else self._save()
            result = self.result(FINISHED if finished else STOPPED, path)
            self.store.update_run(self.run_id, status=result["status"], result=result, pid=None,
                                  **({"finished": time.time()} if finished else {}))
            self.store.event(self.run_id, result["status"], f"{result['status']} at step {self.step}")
            return result
        except BaseException as exc:
            self.store.update_run(self.run_id, status=FAILED, pid=None)
            self.store.event(self.run_id, FAILED, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _request_stop(self, signum, frame) -> None:
        if self.stop_requested:  # a second signal: stop now, without the checkpoint
            raise KeyboardInterrupt
        self.stop_requested = True
        self.log(f"signal {signal.Signals(signum).name}: finishing step {self.step + 1}, then checkpointing")

    def _progress(self, data: dict, eval_row: dict | None) -> None:
        every = max(1, (self.cfg.max_steps or 100) // 20)
        if self.step % every == 0 or eval_row is not None or self.step == 1:
            line = (f"step {self.step}: reward {data['reward_mean'] if data['reward_mean'] is not None else float('nan'):.3f}"
                    f" wasted {data['wasted_rollouts']}/{data['rollouts']} loss {data['loss']:.4f} "
                    f"flops {data['flops_total']:.3g} {data['step_seconds']:.2f}s")
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
            "run_id": self.run_id, "run_name": self.prep.run_name, "status": status, "strategy": self.cfg.strategy,
            "steps": self.step, **self.totals(), "wall_seconds": self.counters["wall_seconds"],
            "eval_accuracy": ev.get("accuracy"), "eval_greedy_accuracy": ev.get("greedy_accuracy"),
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
