"""What the benchmark scripts share: printing their one JSON summary, and a run's speed from its metrics."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, out: Path | None = None, *, indent: int | None = None) -> None:
    """Print the summary as one JSON object on stdout, and write it to `out` too when given."""
    text = json.dumps(result, indent=indent, default=float)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def speed(metrics) -> dict:
    """Median seconds per step and rollouts per second over a run's training steps (step 0 left out)."""
    m = metrics[metrics["step"] > 0]
    return {"step_seconds": round(float(m["step_seconds"].median()), 3),
            "rollouts_per_s": round(float(m["rollouts"].sum() / m["step_seconds"].sum()), 1)}
