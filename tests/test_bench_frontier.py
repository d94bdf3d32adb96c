"""bench/frontier.py: the frontier's --quick variant end to end (a real profile, real runs on a batch x lr grid,
an ablation at sgpo's best cell), the report's numbers against the one reduction-factor definition, and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import frontier  # noqa: E402
from sgpo.accounting import reduction_factor  # noqa: E402
from sgpo.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def bench(*args):
    return subprocess.run(
        [sys.executable, "bench/frontier.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=1500
    )


@pytest.mark.slow
def test_quick_frontier_trains_the_grid_picks_each_strategys_best_cell_and_reports_both_behaviours(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{frontier.README_START}\nold\n{frontier.README_END}\nafter\n")
    out, docs, db = tmp_path / "results", tmp_path / "docs", tmp_path / "f.db"
    proc = bench("--quick", "--db", str(db), "--out", str(out), "--docs", str(docs), "--readme", str(readme))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "frontier-quick.json").read_text())
    cell = result["regimes"]["0.8"]
    assert set(cell["strategies"]) == {"grpo", "sgpo", "sgpo-keep0"}
    runs = pd.read_csv(out / "frontier-quick.csv")
    # the grid: two batches x two learning rates for each strategy, plus the ablation at sgpo's best cell
    grid = runs[runs.strategy.isin(["grpo", "sgpo"])]
    assert len(grid) == 8 and set(grid.batch) == {64, 128} and grid.groupby("strategy").size().tolist() == [4, 4]
    for name in ("grpo", "sgpo"):
        best = cell["strategies"][name]
        part = grid[grid.strategy == name]
        top = part.sort_values("final2", ascending=False).iloc[0]
        assert (best["batch"], best["lr"]) == (top.batch, top.lr)  # the best cell by its last two evaluations
    sgpo = cell["strategies"]["sgpo"]
    ablation = runs[runs.strategy == "sgpo-keep0"].iloc[0]
    assert (ablation.batch, ablation.lr) == (sgpo["batch"], sgpo["lr"])  # ablations run at sgpo's best cell
    assert sgpo["profile_share"] > 0 and cell["strategies"]["grpo"]["profile_share"] == 0
    # the factors are sgpo.accounting.reduction_factor's, read off the stored runs
    store = Store(db, readonly=True)
    df = frontier.load_runs(store)
    best = {s: frontier.best_cell(df, "0.8", s, 1) for s in ("grpo", "sgpo")}
    for b in ("skip", "train_all"):
        r = reduction_factor(list(best["grpo"]["evals"]), list(best["sgpo"]["evals"]), behaviour=b)
        assert sgpo[b]["reduction"] == (pytest.approx(r.factor) if r.factor is not None else None)
        assert cell["strategies"]["grpo"][b]["reduction"] == pytest.approx(1.0)  # GRPO reaches its own end
        # training every rollout never costs less than skipping the zero-advantage ones
        assert sgpo["train_all"]["flops_final"] >= sgpo["skip"]["flops_final"]
    assert set(sgpo["by_band"]) == {"solved", "middle", "unsolved"} and sgpo["by_task"]
    gauge = cell["gauge"]["grpo"]
    assert gauge["steps"] > 0 and gauge["best_batch"] == cell["strategies"]["grpo"]["batch"]
    assert (docs / "frontier-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = readme.read_text()
    assert "old" not in text and "| 0.8 (" in text and "| sgpo-keep0 |" in text and text.endswith("after\n")
    assert "0.8 train_all >= 1.5x" in result["targets"]


@pytest.mark.parametrize(
    "args, option",
    [
        (["--batches", "4096"], "--batches"),  # too few steps to read at that batch
        (["--batches", "abc"], "--batches"),
        (["--budget", "1e10"], "--budget"),  # the profile alone would take half of it
        (["--strategies", "sgpo"], "grpo missing"),
        (["--ablations", "sgpo-nonsense"], "sgpo-nonsense"),
        (["--seeds", "0"], "--seeds"),
        (["--regimes", "1.5"], "--regimes"),
    ],
)
def test_bad_input_is_one_line_naming_the_option_and_writes_nothing(tmp_path, args, option):
    db = tmp_path / "f.db"
    proc = bench("--db", str(db), "--out", str(tmp_path / "out"), "--docs", str(tmp_path / "docs"), *args)
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert option in message, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not db.exists() and not (tmp_path / "out").exists()
