"""What the benchmark scripts share: printing their one JSON summary, a run's speed from its metrics, running
the CLI for its JSON (a profile under the starter policy among them), and regenerating a README section
between markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def emit(result: dict, out: Path | None = None, *, indent: int | None = None) -> None:
    """Print the summary as one JSON object on stdout, and write it to `out` too when given."""
    text = json.dumps(result, indent=indent, default=float)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def speed(metrics) -> dict:
    """Median seconds per step and rollouts per second over a run's training steps (step 0 left out)."""
    m = metrics[metrics["step"] > 0]
    return {
        "step_seconds": round(float(m["step_seconds"].median()), 3),
        "rollouts_per_s": round(float(m["rollouts"].sum() / m["step_seconds"].sum()), 1),
    }


def sgpo_json(*args: str) -> dict:
    """Run the CLI (an argument list, no shell) with --json and parse its one JSON object; exit with its
    stderr on failure."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")  # spinning OpenMP threads starve the parallel jobs
    proc = subprocess.run(
        [sys.executable, "-m", "sgpo", *args, "--json"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(f"sgpo {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def profile_json(dataset: str, name: str, *args: str) -> dict:
    """`sgpo profile DATASET --name NAME` under the starter policy with the benchmarks' sampling (8 samples, 20
    new tokens: what they train with), for its JSON summary; `args`: more options (--db, --queries, ...)."""
    return sgpo_json(
        "profile", dataset, "--model", "starter", "--samples", "8", "--max-new-tokens", "20", "--name", name, *args
    )


def write_section(readme: Path, start: str, end: str, body: str) -> None:
    """Replace what stands between the markers `start` and `end` in `readme` with `body` (appended, markers
    and all, when the markers are not there yet)."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{start}\n{body}\n{end}"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text += "\n" + block + "\n"
    readme.write_text(text)
