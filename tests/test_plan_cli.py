import json

import numpy as np
import pytest

from sgpo.data import load_dataset
from sgpo.model import resolve_model
from sgpo.store import Store


@pytest.fixture
def profiled(db_path):
    """A stored profile of builtin:rev-train with binomial successes (N=8), as `sgpo profile` writes it."""
    ds, model = load_dataset("builtin:rev-train"), resolve_model("starter")
    store = Store(db_path)
    pid = store.create_profile(
        {
            "name": "rev",
            "key": "k",
            "status": "done",
            "dataset_hash": ds.hash,
            "dataset_spec": ds.spec,
            "model_spec": "starter",
            "model_hash": model.weights_hash,
            "n_params": model.n_params,
            "samples": 8,
            "flops": 1e12,
        }
    )
    rng = np.random.default_rng(0)
    successes = rng.binomial(8, rng.beta(0.6, 0.6, len(ds)))
    rows = [
        {
            "position": i,
            "query_id": r.id,
            "task": r.task,
            "difficulty": r.difficulty,
            "samples": 8,
            "successes": int(s),
            "p_hat": s / 8,
            "prompt_tokens": len(r.prompt) + 1,
            "completion_tokens_total": 8 * (len(r.answer) + 1),
            "completion_tokens_mean": len(r.answer) + 1.0,
            "examples": "[]",
        }
        for i, (r, s) in enumerate(zip(ds.frame.itertuples(), successes))
    ]
    store.add_profile_batch(pid, rows, {"queries_done": len(rows), "queries_total": len(rows)})
    return db_path, pid, successes


def test_plan_json_holds_counts_phases_and_forecast_side_by_side(cli, profiled):
    db, pid, successes = profiled
    code, out, _ = cli("plan", pid, "--db", db, "--json")
    plan = json.loads(out)
    assert code == 0
    assert plan["counts"]["trivial"] == int((successes > 6).sum())
    assert plan["counts"]["unsolved_kept"] + plan["counts"]["unsolved_dropped"] == int((successes == 0).sum())
    assert [p["group_size"] for p in plan["phases"]] == sorted(p["group_size"] for p in plan["phases"])
    for side in ("plan", "baseline"):
        assert {"rollouts", "flops", "forecast_informative_fraction"} <= set(plan["forecast"][side])
    assert plan["forecast"]["baseline"]["rollouts"] == 8 * len(successes)


def test_plan_knobs_change_the_plan_and_bad_knobs_name_the_option(cli, profiled):
    db, pid, _ = profiled
    loose = json.loads(cli("plan", pid, "--db", db, "--json", "--trivial-threshold", "1.0")[1])
    strict = json.loads(cli("plan", pid, "--db", db, "--json", "--trivial-threshold", "0.5")[1])
    assert loose["counts"]["trivial"] < strict["counts"]["trivial"]
    code, out, err = cli("plan", pid, "--db", db, "--g-min", "9")
    assert code == 2 and "--g-min" in err and out == ""
    code, _, err = cli("plan", "nope", "--db", db)
    assert code == 2 and "no profile 'nope'" in err


def test_saved_plan_is_stored_with_its_config(cli, profiled):
    db, pid, _ = profiled
    code, out, _ = cli("plan", pid, "--db", db, "--save", "paper", "--unsolved-keep", "0.2", "--json")
    saved = Store(db).find_plan("paper")
    assert code == 0 and saved["config"]["unsolved_keep"] == 0.2
    assert saved["counts"]["learnable"] == json.loads(out)["counts"]["learnable"]


@pytest.mark.slow
def test_exported_phases_load_with_datasets_and_train_with_unmodified_trl(cli, profiled, tmp_path):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from sgpo.model import load_model, load_tokenizer
    from sgpo.tasks.rewards import exact_match_reward

    db, pid, _ = profiled
    code, out, _ = cli("plan", pid, "--db", db, "--export-trl", tmp_path / "trl", "--group-rule", "pow2", "--json")
    manifest = json.loads((tmp_path / "trl" / "manifest.json").read_text())
    assert code == 0 and [p["num_generations"] for p in manifest["phases"]] == [2, 4, 8]
    plan = json.loads(out)
    for phase, entry in zip(plan["phases"], manifest["phases"]):
        ds = datasets.load_dataset("json", data_files=str(tmp_path / "trl" / entry["file"]), split="train")
        assert len(ds) == phase["count"] and {"prompt", "answer"} <= set(ds.column_names)
    first = manifest["phases"][0]
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "trl" / first["file"]), split="train")
    model = resolve_model("starter").path
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        use_cpu=True,
        report_to="none",
        max_steps=1,
        num_generations=first["num_generations"],
        per_device_train_batch_size=16,
        max_completion_length=20,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=load_model(model),
        args=args,
        train_dataset=ds,
        reward_funcs=exact_match_reward,
        processing_class=load_tokenizer(model),
    )
    assert trainer.train().global_step == 1


def _profile(db, name, p_hats, **row):
    """A stored profile with the given p_hat per query (N=8), as `sgpo profile` writes it."""
    store = Store(db)
    pid = store.create_profile(
        {
            "name": name,
            "key": name,
            "status": "done",
            "dataset_spec": "toy",
            "samples": 8,
            "n_params": 1000,
            "flops": 1e9,
            **row,
        }
    )
    rows = [
        {
            "position": i,
            "query_id": f"q{i}",
            "task": "t",
            "difficulty": 1,
            "samples": 8,
            "successes": int(p * 8),
            "p_hat": p,
            "prompt_tokens": 5,
            "completion_tokens_total": 16,
            "completion_tokens_mean": 2.0,
            "examples": "[]",
        }
        for i, p in enumerate(p_hats)
    ]
    store.add_profile_batch(pid, rows, {"queries_done": len(rows)})
    return pid


def test_plan_json_always_carries_warnings(cli, profiled):
    db, pid, _ = profiled
    code, out, err = cli("plan", pid, "--db", db, "--json")
    assert code == 0 and json.loads(out)["warnings"] == [] and "warning" not in err


def test_plan_on_an_unfinished_profile_warns_loudly(cli, db_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid = _profile(db_path, "half", [0.25, 0.5, 0.0, 1.0], status="running", queries_total=10, pid=dead.pid)
    code, out, err = cli("plan", pid, "--db", db_path, "--json")
    [warning] = json.loads(out)["warnings"]
    assert code == 0 and "profile 'half' is unfinished (4 of 10 queries, its process is gone)" in warning
    assert "same `sgpo profile` command" in warning
    assert f"warning: {warning}" in err
    code, out, err = cli("plan", pid, "--db", db_path)
    assert code == 0 and "warning: profile 'half' is unfinished" in err
    assert "compute ratio: none: too few learnable queries to forecast" in out  # 2 learnable queries


def test_a_plan_with_nothing_learnable_says_so_instead_of_a_ratio(cli, db_path):
    pid = _profile(db_path, "extremes", [0.0] * 6 + [1.0] * 4)
    code, out, err = cli("plan", pid, "--db", db_path, "--unsolved-keep", "0.5")
    assert code == 0 and "nothing learnable" in out and "compute ratio GRPO / plan" not in out
    assert "warning: nothing learnable" in err
    assert "skip: nothing learnable" in out and "train_all: nothing learnable" in out
    plan = json.loads(cli("plan", pid, "--db", db_path, "--unsolved-keep", "0.5", "--json")[1])
    assert plan["counts"]["learnable"] == 0 and plan["counts"]["unsolved_kept"] == 3
    assert [w for w in plan["warnings"] if w.startswith("nothing learnable")]
    assert all(plan["forecast"]["run"][b]["verdict"].startswith("nothing learnable") for b in ("skip", "train_all"))


def test_plan_writes_nothing_it_was_not_asked_to(cli, profiled, tmp_path):
    db, pid, _ = profiled
    code, _, err = cli("plan", pid, "--db", tmp_path / "new" / "x.db", "--save", "p")
    assert code == 2 and "does not exist" in err and not (tmp_path / "new").exists()
    taken = cli("plan", pid, "--db", db, "--save", "taken")
    assert taken[0] == 0
    code, _, err = cli("plan", pid, "--db", db, "--save", "taken", "--export-trl", tmp_path / "trl")
    assert code == 2 and "'taken' already exists" in err and not (tmp_path / "trl").exists()
    (tmp_path / "file.json").write_text("keep me")
    code, out, err = cli("plan", pid, "--db", db, "--export-trl", tmp_path / "file.json")
    assert code == 2 and out == "" and "is a file" in err and (tmp_path / "file.json").read_text() == "keep me"
    code, _, err = cli("plan", pid, "--db", db, "--export-trl", tmp_path / "file.json" / "sub")
    assert code == 2 and err.startswith("error: --export-trl") and "Traceback" not in err


def test_plan_json_forecasts_the_planned_run_under_both_engine_behaviours(cli, profiled):
    db, pid, _ = profiled
    code, out, _ = cli("plan", pid, "--db", db, "--json", "--run-steps", "300", "--run-batch-rollouts", "128")
    run = json.loads(out)["forecast"]["run"]
    assert code == 0 and run["steps"] == 300 and run["batch_rollouts"] == 128 and run["flops"] is None
    for behaviour in ("skip", "train_all"):
        b = run[behaviour]
        assert b["plan"]["steps"] == b["baseline"]["steps"] == 300
        assert b["plan"]["rollouts"] <= 300 * 128 and b["baseline"]["rollouts"] == 300 * 128
        assert {"flops_per_informative_rollout", "forecast_informative_fraction"} <= set(b["plan"])
        assert isinstance(b["pays"], bool) and "sGPO" in b["verdict"]
    budget = json.loads(cli("plan", pid, "--db", db, "--json", "--run-flops", "5e12")[1])["forecast"]["run"]
    assert budget["flops"] == 5e12 and budget["steps"] is None


def test_plan_text_says_in_words_under_which_engine_behaviour_sgpo_will_not_pay(cli, db_path):
    pid = _profile(db_path, "costly", [0.25, 0.5, 0.75, 0.0, 1.0] * 20, flops=1e15)  # profiling dwarfs the run
    code, out, _ = cli("plan", pid, "--db", db_path)
    assert code == 0
    assert "skip: sGPO will not pay with zero-advantage groups skipped" in out
    assert "train_all: sGPO will not pay with every rollout trained" in out
    assert "break-even step" in out and "reduction factor" in out
    run = json.loads(cli("plan", pid, "--db", db_path, "--json")[1])["forecast"]["run"]
    assert run["skip"]["pays"] is False and run["train_all"]["pays"] is False


@pytest.mark.parametrize(
    "option, value",
    [
        ("--run-steps", "0"),
        ("--run-flops", "0"),
        ("--run-batch-rollouts", "0"),
        ("--drift", "-1"),
        ("--forecast-prior", "flat"),
    ],
)
def test_a_bad_planned_run_is_a_one_line_error_naming_the_option(cli, profiled, option, value):
    db, pid, _ = profiled
    code, out, err = cli("plan", pid, "--db", db, option, value)
    assert code == 2 and out == "" and option in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_verdicts_come_with_how_to_read_the_reduction_factor(cli, db_path):
    from bench.synthetic import fill_profile
    from sgpo.plan.forecast import READING
    from sgpo.store import Store

    fill_profile(Store(db_path), "p", n=64)
    code, out, err = cli("plan", "p", "--db", str(db_path))
    assert code == 0, err
    assert "skip: " in out and "train_all: " in out and READING in " ".join(out.split())
