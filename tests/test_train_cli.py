"""`sgpo train` and `sgpo runs` as a user runs them (in-process), errors included."""

from __future__ import annotations

import json

from tests.toys import toy_cli_args, toy_profile


def test_train_json_prints_one_object_with_the_run_summary(cli, toy, db_path):
    code, out, err = cli(
        "train",
        "--strategy",
        "grpo",
        "--steps",
        2,
        "--eval-every",
        2,
        "--name",
        "c",
        "--db",
        db_path,
        "--json",
        *toy_cli_args(toy),
    )
    assert code == 0, err
    result = json.loads(out)
    assert {"run_id", "steps", "flops_total", "run_wasted_fraction", "eval_accuracy"} <= set(result)
    assert result["steps"] == 2 and result["status"] == "finished"
    code, out, _ = cli("runs", "--db", db_path, "--json")
    runs = json.loads(out)["runs"]
    assert code == 0 and [r["name"] for r in runs] == ["c"] and runs[0]["status"] == "finished"
    code, out, _ = cli("runs", "--db", db_path)
    assert code == 0 and "c" in out and "finished" in out


def test_sgpo_takes_plan_knobs_by_their_plan_names(cli, toy, db_path):
    from sgpo.store import Store

    pid = toy_profile(Store(db_path), toy)
    code, out, err = cli(
        "train",
        "--strategy",
        "sgpo",
        "--profile",
        pid,
        "--steps",
        1,
        "--eval-every",
        0,
        "--trivial-threshold",
        0.6,
        "--curriculum",
        "steps",
        "--steps-per-phase",
        3,
        "--db",
        db_path,
        "--json",
        *toy_cli_args(toy),
    )
    assert code == 0, err
    config = Store(db_path).find_run(json.loads(out)["run_id"])["config"]
    assert config["plan"]["trivial_threshold"] == 0.6 and config["plan"]["curriculum"] == "steps"


def test_bad_input_exits_2_with_the_option_named(cli, toy, db_path):
    code, out, err = cli("train", "--strategy", "sgpo", "--db", db_path, *toy_cli_args(toy))
    assert code == 2 and "--profile" in err and out == ""
    code, _, err = cli("train", "--steps", 0, "--db", db_path, *toy_cli_args(toy))
    assert code == 2 and "--steps" in err
    assert not db_path.exists()  # refused before the store was created
    from sgpo.store import Store

    Store(db_path).close()
    code, _, err = cli("train", "--resume", "ghost", "--db", db_path)
    assert code == 2 and "ghost" in err
    code, _, err = cli("runs", "stop", "ghost", "--db", db_path)
    assert code == 2 and "ghost" in err


def test_help_lists_training_and_plan_knobs(cli):
    code, out, _ = cli("train", "--help")
    for flag in (
        "--strategy",
        "--batch-rollouts",
        "--flops-budget",
        "--refresh",
        "--detach",
        "--resume",
        "--trivial-threshold",
        "--group-rule",
        "--curriculum",
    ):
        assert flag in out


def test_a_truncation_warning_is_said_once_and_stored_once_though_train_and_eval_are_one_file(cli, toy, tmp_path):
    from sgpo.store import Store

    rows = [json.loads(line) for line in toy.data.read_text().splitlines()]
    long = tmp_path / "long.jsonl"  # prompts longer than the toy model's 64 positions
    long.write_text("".join(json.dumps({**r, "prompt": "x" * 70 + r["prompt"]}) + "\n" for r in rows))
    args = toy_cli_args(toy)
    args[args.index("--dataset") + 1] = args[args.index("--eval-dataset") + 1] = str(long)
    db = tmp_path / "s.db"
    code, out, err = cli(
        "train", "--strategy", "grpo", "--steps", 1, "--eval-every", 1, "--truncate-prompts", "--db", db, *args
    )
    assert code == 0, err
    said = [line for line in err.splitlines() if line.startswith("warning:") and "longer than the model" in line]
    assert len(said) == 1, err
    run = Store(db).runs()[0]
    assert len([e for e in Store(db).events(run["id"]) if e["kind"] == "warning"]) == 1
