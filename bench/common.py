"""What the benchmark scripts share: printing their one JSON summary, a run's speed from its metrics, running
the CLI for its JSON (a profile under the starter policy among them), held-out accuracy by band and by task
for the benchmark tables, and regenerating a README section between markers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sgpo.vocab import BANDS

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


def final_breakdown(evals: list) -> dict:
    """Held-out accuracy at the last evaluation by band of the initial policy (solved / middle / unsolved) and by
    task, each the mean over `evals` (one evaluation frame per seed, from sgpo.compare.run_evals):
    {"by_band": {band: accuracy}, "by_task": {task: accuracy}}; a band or task no run measured is left out."""
    out: dict = {"by_band": {}, "by_task": {}}
    for key in out:
        columns = sorted({c for ev in evals for c in ev.columns if c.startswith(key + ".")})
        for column in columns:
            values = [float(ev[column].iloc[-1]) for ev in evals if column in ev and ev[column].notna().iloc[-1]]
            if values:
                out[key][column.split(".", 1)[1]] = sum(values) / len(values)
    return out


def bands_text(by_band: dict) -> str:
    """'0.957 / 0.634 / 0.039': solved / middle / unsolved, '-' for a band with no query."""
    return " / ".join("-" if by_band.get(b) is None else f"{by_band[b]:.3f}" for b in BANDS)


def task_table(rows: list[tuple[str, str, dict]]) -> list[str]:
    """Markdown lines of held-out accuracy by task: one row per (label, strategy, by_task), a column per task."""
    tasks = sorted({t for _, _, by_task in rows for t in by_task})
    lines = ["| | strategy | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for label, name, by_task in rows:
        values = ["-" if by_task.get(t) is None else f"{by_task[t]:.3f}" for t in tasks]
        lines.append(f"| {label} | {name} | " + " | ".join(values) + " |")
    return lines
