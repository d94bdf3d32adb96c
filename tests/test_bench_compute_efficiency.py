"""bench/compute_efficiency.py --quick end to end: real profiling, real training runs, real files out."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sgpo.store import Store

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"flops_to_target", "reduction_factor", "final_accuracy_mean", "final_accuracy_std", "run_wasted_fraction"}


@pytest.mark.slow
def test_quick_benchmark_writes_every_output_and_stores_its_runs(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# title\n\nbefore\n<!-- bench:compute_efficiency:start -->\nold table\n"
        "<!-- bench:compute_efficiency:end -->\nafter\n"
    )
    out, docs, db = tmp_path / "results", tmp_path / "docs", tmp_path / "ce.db"
    # a previous bench's store and checkpoints: from scratch means both go, and nothing else in the folder
    Store(db).close()
    (tmp_path / "checkpoints" / "bench-grpo-s0" / "step-5").mkdir(parents=True)
    (tmp_path / "checkpoints" / "mine").mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "bench/compute_efficiency.py",
            "--quick",
            "--strategies",
            "grpo,sgpo,dapo",
            "--db",
            str(db),
            "--out",
            str(out),
            "--docs",
            str(docs),
            "--readme",
            str(readme),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "mine").is_dir()

    result = json.loads((out / "compute_efficiency.json").read_text())
    assert set(result["strategies"]) == {"grpo", "sgpo", "dapo"}
    for name, entry in result["strategies"].items():
        assert set(entry) >= KEYS, name
        assert 0.0 <= entry["final_accuracy_mean"] <= 1.0 and 0.0 <= entry["run_wasted_fraction"] <= 1.0
        assert entry["final_flops_mean"] >= 1.2e12  # every run spent its budget before it stopped
        assert entry["by_band"] and entry["by_task"] and all(0.0 <= v <= 1.0 for v in entry["by_band"].values())
    grpo = result["strategies"]["grpo"]
    assert grpo["flops_to_target"] is not None  # GRPO always reaches its own final accuracy
    assert grpo["flops_to_target"] <= grpo["final_flops_mean"]  # ... where its curve first gets there
    # the one definition (sgpo.accounting.reduction_factor, as `sgpo compare` reads it): GRPO against itself is 1
    assert grpo["reduction_factor"] == pytest.approx(1.0)
    assert result["profile"]["flops"] > 0 and 0 < result["planner_forecast_informative_fraction"] <= 1

    points = pd.read_csv(out / "compute_efficiency.csv")
    assert {"strategy", "seed", "step", "flops_total", "accuracy"} <= set(points.columns)
    assert set(points.strategy) == {"grpo", "sgpo", "dapo"}
    assert (points.groupby("strategy").size() >= 2).all()  # before the first step and at least once after
    sgpo_first = points[points.strategy == "sgpo"].sort_values("step").iloc[0]
    assert sgpo_first.flops_total == pytest.approx(result["profile"]["flops"])  # profiling is on the sGPO axis

    for png in ("accuracy_vs_flops.png", "wasted_vs_flops.png", "flops_split.png"):
        assert (docs / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png

    text = readme.read_text()
    assert "old table" not in text and text.startswith("# title\n\nbefore\n") and text.endswith("after\n")
    assert "| grpo |" in text and "| sgpo |" in text and "| dapo |" in text

    names = {run["name"] for run in Store(db).runs()}  # in the store, so the dashboard's Compare page shows them
    assert {"bench-grpo-s0", "bench-sgpo-s0", "bench-dapo-s0"} <= names
