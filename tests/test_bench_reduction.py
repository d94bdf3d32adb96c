"""One reduction factor: the benchmarks' reports (bench/regimes.py, bench/compute_efficiency.py: the README's
tables) give, for the same runs, the number sgpo.compare gives (`sgpo compare --seeds`, the Compare page), under
both engine behaviours; and the FLOPs of the behaviour a run did not train with are derived in one place."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import compute_efficiency, regimes  # noqa: E402
from bench.synthetic import fill_long_run, fill_profile  # noqa: E402
from sgpo import compare  # noqa: E402
from sgpo.accounting import ENGINE_BEHAVIOURS, flops_train  # noqa: E402
from sgpo.store import Store  # noqa: E402

SEEDS = 2


def finished(store: Store, name: str, strategy: str, seed: int, *, name_of, speed: float = 1.0) -> int:
    """A finished synthetic run with a realistic config; `speed` scales its evals' steps (a faster learner)."""
    config = {"strategy": strategy, "seed": seed, "lr": 5e-5, "dataset": "d.jsonl", "eval_dataset": "e.jsonl"}
    if strategy.startswith("sgpo"):
        config["plan"] = {}
    config["group_size"] = 8
    run = fill_long_run(
        store, name_of(strategy, seed), strategy.split("-")[0], steps=150, seed=seed, eval_every=10, config=config
    )
    created = store.find_run(run)["created"]
    store.update_run(
        run,
        finished=created + 60.0,
        result={"flops_profile": 2.35e12 if strategy.startswith("sgpo") else 0.0},
    )
    if speed != 1.0:  # evaluations reach their accuracies sooner: the same curve, stretched along the steps
        with store.transaction():
            store.db.conn.execute(
                "UPDATE evals SET accuracy = MIN(1.0, 0.3 + (accuracy - 0.3) * ?) WHERE run_id = ?", [speed, run]
            )
    return run


@pytest.fixture
def regime_store(tmp_path):
    store = Store(tmp_path / "r.db")
    fill_profile(store, "0.6-profile", n=40)
    fill_profile(store, "0.6-adaptive", n=40, seed=1)
    for seed in range(SEEDS):
        for strategy, speed in (("grpo", 1.0), ("sgpo", 1.6), ("dapo", 0.5)):
            finished(store, strategy, strategy, seed, name_of=lambda s, k: regimes.run_name("0.6", s, k), speed=speed)
    return store


def test_the_regime_maps_factor_is_sgpo_compares_for_the_same_runs(regime_store):
    store = regime_store
    settings = {"regimes": ["0.6"], "strategies": ["grpo", "sgpo", "dapo"], "seeds": SEEDS, "baseline": "grpo"}
    settings["db"] = store.path
    points, cells = regimes.collect(store, settings)
    cell = cells["0.6"]
    names = [regimes.run_name("0.6", s, k) for s in settings["strategies"] for k in range(SEEDS)]
    for behaviour in ENGINE_BEHAVIOURS:
        table = compare.by_setting(store, names, regimes.run_name("0.6", "grpo", 0), behaviour=behaviour)
        for strategy in settings["strategies"]:
            row = table[table["runs"].map(lambda r, s=strategy: r[0] == regimes.run_name("0.6", s, 0))].iloc[0]
            entry = cell["strategies"][strategy][behaviour]
            assert row["seeds"] == SEEDS and entry["seeds_reaching"] == row["reached"], strategy
            for mine, theirs in (
                (entry["reduction_factor"], row["compute_reduction"]),
                (entry["reduction_min"], row["reduction_min"]),
                (entry["reduction_max"], row["reduction_max"]),
                (entry["target_accuracy"], row["target_accuracy"]),
            ):
                if mine is None:
                    assert theirs is None or pd.isna(theirs), (strategy, behaviour)
                else:
                    assert mine == pytest.approx(theirs, rel=1e-12), (strategy, behaviour)
    sgpo = cell["strategies"]["sgpo"]
    assert abs(sgpo["skip"]["reduction_factor"] - 1.0) > 0.01  # a real factor was compared, not a tie
    assert cell["strategies"]["grpo"]["skip"]["reduction_factor"] == pytest.approx(1.0)  # GRPO against itself
    # the README line prints that same number
    result = {
        "regimes": cells,
        "seeds": SEEDS,
        "queries": 1,
        "eval_queries": 1,
        "budget_flops": 1.0,
        "eval_every_steps": 10,
        "jobs": 1,
    }
    line = next(ln for ln in regimes.table(result).splitlines() if "| sgpo |" in ln)
    assert (
        f"{sgpo['skip']['reduction_factor']:.2f}x" in line and f"{sgpo['train_all']['reduction_factor']:.2f}x" in line
    )
    assert {"skip", "train_all"} <= set(points.columns)


def test_the_compute_efficiency_factor_is_sgpo_compares_for_the_same_runs(tmp_path):
    store = Store(tmp_path / "ce.db")
    fill_profile(store, "bench-profile", n=40)
    strategies = ["grpo", "sgpo", "dapo"]
    for seed in range(SEEDS):
        for strategy, speed in zip(strategies, (1.0, 1.6, 0.5)):
            finished(store, strategy, strategy, seed, name_of=compute_efficiency.run_name, speed=speed)
    runs = compute_efficiency.load_runs(store, strategies, SEEDS)
    _, summary = compute_efficiency.collect(store, runs, store.profile_frame(store.find_profile("bench-profile")["id"]))
    names = [compute_efficiency.run_name(s, k) for s in strategies for k in range(SEEDS)]
    table = compare.by_setting(store, names, compute_efficiency.run_name("grpo", 0)).set_index("strategy")
    for strategy in strategies:
        entry, row = summary[strategy], table.loc[strategy]
        if entry["reduction_factor"] is None:  # never reached: no number on either side
            assert pd.isna(row["compute_reduction"]) and entry["reduction"] == row["reduction"], strategy
        else:
            assert entry["reduction_factor"] == pytest.approx(row["compute_reduction"], rel=1e-12), strategy
        assert entry["seeds_reaching_target"] == row["reached"] and entry["target_accuracy"] == row["target_accuracy"]
    assert abs(summary["sgpo"]["reduction_factor"] - 1.0) > 0.01 and summary["grpo"][
        "reduction_factor"
    ] == pytest.approx(1.0)
    assert f"{summary['sgpo']['reduction_factor']:.2f}x" in compute_efficiency.table(
        {
            "strategies": summary,
            "seeds": SEEDS,
            "dataset": "d",
            "eval_dataset": "e",
            "eval_queries": 1,
            "eval_every_steps": 10,
            "budget_flops": 1.0,
            "profile": {"flops": 1.0, "queries": 40},
            "planner_forecast_informative_fraction": 0.5,
            "grpo_forecast_informative_fraction": 0.4,
        }
    )


def test_an_older_runs_train_all_flops_are_derived_from_its_tokens_update():
    """A run that skipped zero-advantage groups and logged no behaviour totals in its evals: its train_all total
    is flops_total - flops_train + 6 x params x tokens_update so far; eval rows that carry both are kept."""
    n = 1_000_000
    trained, update = np.array([100, 0, 300, 200]), np.array([400, 400, 400, 400])
    metrics = pd.DataFrame(
        {
            "step": [0, 1, 2, 3, 4],
            "tokens_trained": [np.nan, *trained],
            "tokens_update": [np.nan, *update],
            "flops_train": [0.0, *[flops_train(n, t) for t in np.cumsum(trained)]],
            "flops_total": [
                5.0,
                *[5.0 + 2 * n * 500 * (i + 1) + flops_train(n, t) for i, t in enumerate(np.cumsum(trained))],
            ],
        }
    )
    evals = pd.DataFrame(
        {"step": [0, 2, 4], "accuracy": [0.1, 0.2, 0.3], "flops_total": metrics["flops_total"][[0, 2, 4]].to_numpy()}
    )
    out = compare.priced(evals, metrics, "skip")
    expected = (
        metrics["flops_total"] - metrics["flops_train"] + flops_train(n, 1) * np.concatenate([[0], np.cumsum(update)])
    )
    assert out["flops_total_skip"].tolist() == evals["flops_total"].tolist()
    assert out["flops_total_train_all"].to_numpy() == pytest.approx(expected[[0, 2, 4]].to_numpy(), rel=1e-12)
    logged = evals.assign(flops_total_skip=[1.0, 2.0, 3.0], flops_total_train_all=[1.0, 20.0, 30.0])
    assert compare.priced(logged, metrics, "skip")["flops_total_train_all"].tolist() == [1.0, 20.0, 30.0]
    # a run that trained every rollout: its skip total is unknown after step 0 (its informative tokens were not logged)
    every = compare.priced(evals, metrics, "train_all")
    assert every["flops_total_train_all"].tolist() == evals["flops_total"].tolist()
    assert (
        every["flops_total_skip"].iloc[0] == evals["flops_total"].iloc[0] and every["flops_total_skip"][1:].isna().all()
    )


def test_behaviour_of_reads_how_the_run_trained():
    assert compare.behaviour_of({"config": {"strategy": "grpo"}}) == "skip"
    assert compare.behaviour_of({"config": {"engine": "trl"}}) == "train_all"
    assert compare.behaviour_of({"config": {"skip_zero_advantage": False}}) == "train_all"
    assert compare.behaviour_of({"config": {}}) == "train_all"  # streamed in by the TRL callback


def test_seeds_of_one_setting_group_and_the_others_do_not(tmp_path):
    store = Store(tmp_path / "s.db")
    for seed in range(2):
        for strategy in ("grpo", "sgpo"):
            finished(store, strategy, strategy, seed, name_of=lambda s, k: f"{s}-s{k}")
    finished(store, "grpo", "grpo", 5, name_of=lambda s, k: "grpo-lr", speed=1.0)
    store.update_run(store.find_run("grpo-lr")["id"], config={"strategy": "grpo", "seed": 5, "lr": 1e-3})
    groups = compare.settings([store.find_run(n) for n in ("grpo-s0", "sgpo-s0", "grpo-s1", "grpo-lr", "sgpo-s1")])
    assert [[r["name"] for r in g] for g in groups] == [["grpo-s0", "grpo-s1"], ["sgpo-s0", "sgpo-s1"], ["grpo-lr"]]
    table = compare.by_setting(store, ["grpo-s0", "grpo-s1", "sgpo-s0", "sgpo-s1"], "grpo-s1")
    assert table["reduction"].tolist()[0] == "baseline" and table["seeds"].tolist() == [2, 2]
