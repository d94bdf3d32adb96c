"""Held-out accuracy: k samples per query at the training temperature (plus greedy), overall, per task,
per difficulty, and per band of the initial policy.

    bands = assign_bands(first_eval_success)          # once, under the initial policy, with its own seed
    result = evaluate(gen, frame, score, samples=4, temperature=1.0, max_new_tokens=20, seed=7, n_params=n,
                      bands=bands)
    result["accuracy"], result["by_band"]["middle"], result["flops"]

    evaluator = Evaluator(cfg, eval_dataset, engine.generator, counters, n_params)   # what a run uses
    evaluator.due(step), evaluator.evaluate(step)

Bands (sgpo.vocab.BANDS): "solved" (every sample right), "middle" (some right), "unsolved" (none). They are
assigned once from a separate sampling pass, and accuracy is then measured with fresh samples, so regression
to the mean cannot pass for learning. Evaluation FLOPs (sgpo.accounting.flops_generate) are kept apart from
training: the run's `flops_eval`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sgpo.accounting import Counters, flops_generate
from sgpo.data import Dataset, query_columns
from sgpo.generate import Generator
from sgpo.train.config import TrainConfig
from sgpo.train.engine import STEP_SEED
from sgpo.vocab import BANDS

EVAL_SEED, BAND_SEED = 17, 29  # added to seed * STEP_SEED: fixed across evals, so evals differ by the model only
SUBSET_SEED = 4242  # --eval-limit's subset: fixed by the run's seed


def sample_success(
    gen, frame: pd.DataFrame, score, *, samples: int, temperature: float, max_new_tokens: int, seed: int
) -> tuple[np.ndarray, int]:
    """Per-query success rate over `samples` samples, and the tokens processed (prompt once per sample)."""
    outs = gen.generate(
        frame["prompt"].tolist(), n=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    rates, tokens = np.zeros(len(frame)), 0
    for i, (g, answer, columns) in enumerate(zip(outs, frame["answer"], query_columns(frame))):
        rates[i] = np.mean([score(s.text, answer, **columns) for s in g.samples])
        tokens += sum(g.prompt_tokens + s.completion_tokens for s in g.samples)
    return rates, tokens


def assign_bands(success: np.ndarray) -> np.ndarray:
    return np.select([success >= 1.0, success > 0.0], ["solved", "middle"], default="unsolved")


def evaluate(
    gen,
    frame: pd.DataFrame,
    score,
    *,
    samples: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    n_params: int,
    greedy: bool = True,
    bands: np.ndarray | None = None,
) -> dict:
    acc, tokens = sample_success(
        gen, frame, score, samples=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    result: dict[str, Any] = {"queries": len(frame), "samples": samples, "accuracy": float(acc.mean())}
    if greedy:
        greedy_acc, greedy_tokens = sample_success(
            gen, frame, score, samples=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed
        )
        tokens += greedy_tokens
        result["greedy_accuracy"] = float(greedy_acc.mean())
    result["by_task"] = _means(acc, frame["task"].astype(str))
    result["by_difficulty"] = _means(acc, frame["difficulty"].astype(str))
    result["by_task_difficulty"] = _means(acc, frame["task"].astype(str) + "/" + frame["difficulty"].astype(str))
    if bands is not None:
        result["by_band"] = _means(acc, pd.Series(bands))
        result["band_queries"] = {b: int((bands == b).sum()) for b in BANDS}
    result["tokens"] = tokens
    result["flops"] = flops_generate(n_params, tokens)
    return result


def _means(values: np.ndarray, keys: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in pd.Series(values).groupby(keys.to_numpy()).mean().items()}


def eval_subset(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """A fixed random `limit` queries of the held-out set (all of it when limit is 0 or covers it)."""
    if not limit or limit >= len(frame):
        return frame
    pick = np.sort(np.random.default_rng([seed, SUBSET_SEED]).permutation(len(frame))[:limit])
    return frame.iloc[pick].reset_index(drop=True)


class Evaluator:
    """A run's held-out evaluations: a fixed subset (--eval-limit), bands under the initial policy, seeds
    that make two evaluations differ by the weights alone, and their FLOPs added to `counters.flops_eval`.
    Its state (bands, last result and step) goes into checkpoints."""

    def __init__(self, cfg: TrainConfig, dataset: Dataset, generator: Generator, counters: Counters, n_params: int):
        self.cfg, self.generator, self.counters, self.n_params = cfg, generator, counters, n_params
        self.frame = eval_subset(dataset.frame, cfg.eval_limit, cfg.seed)
        # the held-out set is scored by its own rule: math answers by math-verify even if training is exact-match
        self.score = dataset.scorer()
        self.bands: np.ndarray | None = None
        self.last: dict | None = None  # the latest result
        self.last_step: int | None = None  # the step it was measured at (None: only before training)

    def due(self, step: int) -> bool:
        """Every --eval-every steps."""
        return bool(self.cfg.eval_every) and step % self.cfg.eval_every == 0

    def evaluate(self, step: int) -> dict:
        cfg = self.cfg
        kw: dict[str, Any] = dict(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
        base = cfg.seed * STEP_SEED
        if self.bands is None:  # once, under the initial policy, with samples of its own
            success, tokens = sample_success(
                self.generator, self.frame, self.score, samples=max(8, cfg.eval_samples), seed=base + BAND_SEED, **kw
            )
            self.bands = assign_bands(success)
            self.counters.add_eval(self.n_params, tokens)
        result = evaluate(
            self.generator,
            self.frame,
            self.score,
            samples=cfg.eval_samples,
            seed=base + EVAL_SEED,
            n_params=self.n_params,
            greedy=cfg.eval_greedy,
            bands=self.bands,
            **kw,
        )
        self.counters.add_eval(self.n_params, result["tokens"])
        self.last = result
        if step:
            self.last_step = step
        return result

    def state_dict(self) -> dict:
        return {
            "bands": None if self.bands is None else self.bands.tolist(),
            "last_eval": self.last,
            "last_eval_step": self.last_step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.bands = None if state.get("bands") is None else np.asarray(state["bands"])
        self.last = state.get("last_eval")
        # a kill after the last checkpoint but before the final evaluation: the resumed run still owes it
        self.last_step = state.get("last_eval_step")
