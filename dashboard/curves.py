"""Training curves as the charts draw them: which x-axis, smoothing, and downsampling that keeps spikes.

Plain functions over a run's metrics frame (one row per logged step, sgpo/vocab.py names), no Streamlit
and no plotly, so the Train and Compare pages and the tests share them:

    x = x_values(metrics, "FLOPs")                # total FLOPs (profiling included) at each step, or None
    y = smooth(metrics["reward_mean"], 0.6)        # debiased exponential moving average
    keep = minmax_indices(y, buckets=800)          # at most 2 x 800 points, every bucket's min and max kept
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sgpo import compare

# x-axis choices, as the control, the URL (?train_x=FLOPs) and the code name them -> the axis title with its unit
X_AXES = {
    "step": "training step",
    "FLOPs": "total compute, profiling included (FLOP)",
    "tokens": "tokens generated, prompt + completion",
    "wall time": "wall time",  # in s, min or h: wall_unit
}
BUCKETS = 800  # per trace: at most 2 x BUCKETS points reach the browser, whatever the run's length
# Tableau 10: distinct on white, readable as thin lines
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


@dataclass
class Series:
    """One run as every chart draws it: its name and colour, per-step metrics, evaluations, and the plan's
    forecast of its wasted-rollout fraction (None when the run has no plan)."""

    name: str
    color: str = PALETTE[0]
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    evals: pd.DataFrame = field(default_factory=pd.DataFrame)
    forecast: float | None = None
    planned: dict | None = None  # sgpo.compare.planned(run): the run forecast, shown beside what it measured


def run_colors(runs: list[dict]) -> dict[str, str]:
    """One colour per run, the same on every page: the run's id picks it, and a run whose colour is taken
    by an earlier one in `runs` gets the next free one (past ten runs, colours repeat)."""
    out, used = {}, set()
    for r in runs:
        i = (int(r.get("id") or 1) - 1) % len(PALETTE)
        if len(used) < len(PALETTE):
            while i in used:
                i = (i + 1) % len(PALETTE)
        used.add(i)
        out[r["name"]] = PALETTE[i]
    return out


def forecast_of(run: dict) -> float | None:
    """The wasted-rollout fraction forecast for the run as planned (sgpo.compare.planned); for plans made before
    the run forecast existed, the one-pass forecast: the fixed-G side for a GRPO run, the plan's side for
    any other run that stored a plan; None without a plan, and for DAPO and GRESO."""
    planned = compare.planned(run)
    if planned is not None and planned["wasted"] is not None:
        return float(planned["wasted"])
    if run.get("strategy") in ("dapo", "greso"):
        return None
    forecast = (run.get("plan") or {}).get("forecast") or {}
    side = forecast.get("baseline" if run.get("strategy") == "grpo" else "plan") or {}
    value = side.get("forecast_wasted_fraction")
    return float(value) if isinstance(value, (int, float)) else None


# x-axis ------------------------------------------------------------------------------------------
def x_values(metrics: pd.DataFrame, axis: str) -> np.ndarray | None:
    """The x coordinate of each metrics row on `axis`; None when the run did not log what it needs."""
    if axis == "step" and "step" in metrics:
        return metrics["step"].to_numpy(dtype=float)
    if axis == "FLOPs" and "flops_total" in metrics:
        return metrics["flops_total"].to_numpy(dtype=float)
    if axis == "wall time" and "wall_seconds" in metrics:
        return metrics["wall_seconds"].fillna(0.0).to_numpy(dtype=float)
    if axis == "tokens":
        if "tokens_total" in metrics:
            return metrics["tokens_total"].ffill().fillna(0.0).to_numpy(dtype=float)
        if {"tokens_prompt", "tokens_completion"} <= set(metrics):
            per_step = metrics["tokens_prompt"].fillna(0) + metrics["tokens_completion"].fillna(0)
            return per_step.cumsum().to_numpy(dtype=float)
    return None


def eval_x(evals: pd.DataFrame, metrics: pd.DataFrame, axis: str) -> np.ndarray | None:
    """The x coordinate of each evaluation: its own step or FLOPs, else the metrics row of the same step."""
    if evals.empty:
        return None
    if axis == "step":
        return evals["step"].to_numpy(dtype=float)
    if axis == "FLOPs" and "flops_total" in evals:
        return evals["flops_total"].to_numpy(dtype=float)
    x = x_values(metrics, axis) if "step" in metrics else None
    if x is None:
        return None
    by_step = pd.Series(x, index=metrics["step"].to_numpy()).groupby(level=0).last()
    return by_step.reindex(evals["step"].to_numpy()).to_numpy(dtype=float)


WALL_UNITS = (("h", 3600.0), ("min", 60.0), ("s", 1.0))


def wall_unit(largest: float) -> tuple[str, float]:
    """Seconds, minutes or hours for a wall-time axis whose largest value is `largest` seconds."""
    return next((unit, scale) for unit, scale in WALL_UNITS if largest >= 2 * scale or unit == "s")


# smoothing and downsampling ---------------------------------------------------------------------------
def smooth(values, weight: float) -> np.ndarray:
    """Debiased exponential moving average, as TensorBoard draws it: s_t = w s_{t-1} + (1 - w) y_t from
    s_0 = 0, divided by 1 - w^t so the start is not pulled to zero. Missing values are skipped (they stay
    missing); weight 0 returns the values unchanged."""
    y = pd.Series(np.asarray(values, dtype=float))
    if weight <= 0 or y.empty:
        return y.to_numpy()
    # pandas' adjusted EWM is exactly the debiased average: sum w^i y_(t-i) / sum w^i
    out = y.ewm(alpha=1.0 - min(float(weight), 0.999), adjust=True, ignore_na=True).mean()
    return out.where(y.notna()).to_numpy()


def minmax_indices(y, buckets: int = BUCKETS) -> np.ndarray:
    """Row positions to draw: all of them for a short series; for a long one, the first and last, and each
    of `buckets` equal slices' minimum and maximum, so a one-step spike survives any length."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n <= 2 * buckets:
        return np.arange(n)
    size = -(-n // buckets)  # ceil: every slice but the last holds `size` rows
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    block = padded.reshape(buckets, size)
    finite = ~np.isnan(block)
    lo = np.where(finite, block, np.inf).argmin(axis=1)
    hi = np.where(finite, block, -np.inf).argmax(axis=1)
    offsets = np.arange(buckets) * size
    keep = np.concatenate([[0, n - 1], lo + offsets, hi + offsets])
    return np.unique(keep[keep < n])


def curve(x, y, weight: float = 0.0, buckets: int = BUCKETS) -> dict:
    """{"x", "raw", "smooth"} for one line: the raw values and (if weight > 0) their smoothed values, both
    downsampled to the same positions (chosen on the raw values: spikes stay where they happened). As
    float32: seven digits are plenty on a chart, and the browser gets half the bytes."""
    raw = np.asarray(y, dtype=float)
    smoothed = smooth(raw, weight) if weight > 0 else None
    keep = minmax_indices(raw, buckets)
    return {
        "x": np.asarray(x, dtype=float)[keep].astype(np.float32),
        "raw": raw[keep].astype(np.float32),
        "smooth": None if smoothed is None else smoothed[keep].astype(np.float32),
    }


def phase_marks(metrics: pd.DataFrame, x: np.ndarray) -> list[tuple[float, int]]:
    """(x, new phase) wherever the logged phase changes (the first phase excluded)."""
    if metrics.empty or "phase" not in metrics:
        return []
    phase = metrics["phase"].fillna(-1).astype(int).to_numpy()
    idx = np.flatnonzero(phase[1:] != phase[:-1]) + 1
    return [(float(x[i]), int(phase[i])) for i in idx]
