"""bench/regimes.py: the regime map's --quick variant end to end (real profiles, real runs), its dataset
construction, and its bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import regimes  # noqa: E402
from sgpo.accounting import crossing, waste_ceiling  # noqa: E402
from sgpo.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def bench(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "bench/regimes.py", *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_quick_map_builds_its_regime_trains_every_strategy_and_reports_both_behaviours(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{regimes.README_START}\nold\n{regimes.README_END}\nafter\n")
    out, docs, db = tmp_path / "results", tmp_path / "docs", tmp_path / "r.db"
    proc = bench("--quick", "--db", str(db), "--out", str(out), "--docs", str(docs), "--readme", str(readme))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "regimes-quick.json").read_text())
    cell = result["regimes"]["0.6"]
    # built by task and level, the regime holds about the share it was built for under the starter
    assert abs(cell["trivial_unsolved_share"] - 0.6) < 0.12
    assert set(cell["strategies"]) == set(regimes.STRATEGIES)
    assert cell["adaptive_profile_flops"] < cell["profile_flops"]  # adaptive stops settled queries early
    w = cell["grpo_wasted_fraction"]
    assert cell["ceiling"]["train_all"] == pytest.approx(1 / (1 - w))
    assert cell["ceiling"]["skip"] == pytest.approx((2 / (1 - w) + 6) / 8) and cell["ceiling"]["skip"] <= 1 / (1 - w)
    grpo = cell["strategies"]["grpo"]
    for b in regimes.BEHAVIOURS:
        assert grpo[b]["seeds_reaching"] == 1 and grpo[b]["reduction_factor"] >= 1.0  # it reaches its own end
    for name, s in cell["strategies"].items():
        # training every rollout never costs less than skipping the zero-advantage ones
        assert s["train_all"]["final_flops_mean"] >= s["skip"]["final_flops_mean"] - 1.0, name
        assert s["skip"]["final_flops_mean"] >= result["budget_flops"], name  # each run spent its budget
        has_forecast = s["skip"]["forecast_reduction_factor"] is not None
        # held-out accuracy by band of the initial policy and by task, every table (issue 21 item 4)
        assert set(s["by_band"]) <= {"solved", "middle", "unsolved"} and s["by_band"], name
        assert all(0.0 <= v <= 1.0 for v in [*s["by_band"].values(), *s["by_task"].values()]) and s["by_task"], name
        assert has_forecast == name.startswith("sgpo"), name  # the plan's forecast, stored with the run
    points = pd.read_csv(out / "regimes-quick.csv")
    assert {"regime", "strategy", "seed", "step", "skip", "train_all", "accuracy"} <= set(points.columns)
    sgpo_first = points[points.strategy == "sgpo"].sort_values("step").iloc[0]
    assert sgpo_first["skip"] == pytest.approx(cell["profile_flops"])  # profiling is on the sGPO axis
    assert (docs / "regimes-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = readme.read_text()
    assert "old" not in text and "| 0.6 (" in text and "| sgpo-adaptive |" in text and text.endswith("after\n")
    assert "solved / middle / unsolved" in text
    assert "| | strategy | " + " | ".join(sorted(cell["strategies"]["sgpo"]["by_task"])) + " |" in text
    # the datasets are new draws, disjoint from their held-out sets; the runs are in the store
    data = db.parent / "r-data"
    train = {json.loads(x)["prompt"] for x in (data / "0.6-train.jsonl").read_text().splitlines()}
    held = {json.loads(x)["prompt"] for x in (data / "0.6-eval.jsonl").read_text().splitlines()}
    assert len(train) == result["queries"] and len(held) == result["eval_queries"] and not train & held
    assert {f"0.6-{name}-s0" for name in regimes.STRATEGIES} <= {r["name"] for r in Store(db).runs()}


def test_tilt_hits_the_target_share_and_refuses_what_the_cells_cannot_make():
    cells = pd.DataFrame(
        {"task": ["a", "b", "c"], "difficulty": [1, 2, 3], "queries": [10, 10, 10], "share": [0.1, 0.5, 0.95]}
    )
    for target in (0.2, 0.6, 0.9):
        assert float(regimes.tilt(cells, target) @ cells["share"]) == pytest.approx(target, abs=1e-6)
    with pytest.raises(SystemExit, match=r"--regimes: 0.97 .* between 0.12 and 0.93"):
        regimes.tilt(cells, 0.97)


def test_crossing_interpolates_between_evaluations():
    # the benchmark's crossing and ceiling are sgpo.accounting's (the one owner of the factor's rules)
    flops, accuracy = np.array([0.0, 10.0, 20.0]), np.array([0.2, 0.3, 0.5])
    assert crossing(flops, accuracy, 0.4) == pytest.approx(15.0)
    assert crossing(flops, accuracy, 0.2) == 0.0
    assert crossing(flops, accuracy, 0.6) is None
    assert np.isclose(waste_ceiling(0.55, "train_all"), 1 / 0.45)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--regimes", "0.6,abc"], "--regimes: 'abc' is neither"),
        (["--regimes", "1.5"], "--regimes: 1.5 is not a share strictly between 0 and 1"),
        (["--strategies", "grpo,ppo"], "--strategies: ppo"),
        (["--strategies", "sgpo"], "--strategies: grpo missing"),
        (["--seeds", "0"], "--seeds: 0 must be at least 1"),
        (["--budget", "0"], "--budget: 0 must be a positive number"),
    ],
)
def test_bad_options_are_one_line_naming_the_option_and_write_nothing(tmp_path, args, message):
    proc = bench("--quick", "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "out"), *args)
    assert proc.returncode != 0 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_regime_the_families_cannot_produce_is_refused_before_any_dataset_is_written(tmp_path):
    proc = bench("--quick", "--regimes", "0.6,0.999", "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "out"))
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("--regimes: 0.999 trivial + unsolved is beyond what the built-in families")
    assert not (tmp_path / "r-data").exists()  # the calibration profile is all the store holds
