"""Held-out accuracy: k samples per query at the training temperature (plus greedy), overall, per task,
per difficulty, and per band of the initial policy.

    bands = assign_bands(first_eval_success)          # once, under the initial policy, with its own seed
    result = evaluate(gen, frame, score, samples=4, temperature=1.0, max_new_tokens=20, seed=7, n_params=n,
                      bands=bands)
    result["accuracy"], result["by_band"]["middle"], result["flops"]

Bands: "solved" (every sample right), "middle" (some right), "unsolved" (none). They are assigned once
from a separate sampling pass, and accuracy is then measured with fresh samples, so regression to the
mean cannot pass for learning. Evaluation FLOPs (2 * n_params * tokens) are reported apart from training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BANDS = ("solved", "middle", "unsolved")


def sample_success(
    gen, frame: pd.DataFrame, score, *, samples: int, temperature: float, max_new_tokens: int, seed: int
) -> tuple[np.ndarray, int]:
    """Per-query success rate over `samples` samples, and the tokens processed (prompt once per sample)."""
    outs = gen.generate(
        frame["prompt"].tolist(), n=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    rates, tokens = np.zeros(len(frame)), 0
    for i, (g, answer) in enumerate(zip(outs, frame["answer"])):
        rates[i] = np.mean([score(s.text, answer) for s in g.samples])
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
    result = {"queries": len(frame), "samples": samples, "accuracy": float(acc.mean())}
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
    result["flops"] = 2.0 * n_params * tokens
    return result


def _means(values: np.ndarray, keys: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in pd.Series(values).groupby(keys.to_numpy()).mean().items()}
