"""Every command, walked with bad values: exit code 2, one line on stderr (or typer's usage error), no
traceback, nothing on stdout, and nothing created or written (files, folders, stores, rows).

`{name}` in a case stands for a path of the `world` fixture: a tiny model and a toy dataset, broken
copies of both, a store that holds one finished profile, and paths that do not exist; `{new_db}` is a
store path of the test's own, which must still not exist afterwards."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest

from tests.toys import tiny_model_dir, toy_dataset

TABLES = ("datasets", "profiles", "profile_queries", "plans", "runs", "metrics", "evals", "events")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from sgpo.data import load_dataset
    from sgpo.model import resolve_model
    from sgpo.profile import ProfileConfig, run_profile
    from sgpo.store import Store

    root = tmp_path_factory.mktemp("world")
    model = tiny_model_dir(root / "model")
    data = toy_dataset(root / "toy.jsonl", model)
    broken = {}
    for name in ("garbage", "cut", "unknown", "badjson"):
        broken[name] = root / name
        shutil.copytree(model, broken[name])
    (broken["garbage"] / "model.safetensors").write_bytes(b"not safetensors at all" * 10)
    weights = (model / "model.safetensors").read_bytes()
    (broken["cut"] / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    config = json.loads((model / "config.json").read_text())
    (broken["unknown"] / "config.json").write_text(json.dumps({**config, "model_type": "nosuchmodel"}))
    (broken["badjson"] / "config.json").write_text("{not json")
    (root / "notes.txt").write_text("a file, not a folder or a database\n")
    (root / "broken.jsonl").write_text('{"prompt": "a=", "answer": "b"}\n{"prompt": \n')
    (root / "folder").mkdir()
    store = Store(root / "sgpo.db")
    run_profile(
        load_dataset(str(data)),
        resolve_model(str(model)),
        ProfileConfig(samples=2, max_new_tokens=1),
        store,
        name="toy",
        progress=False,
    )
    store.close()
    paths = {
        "model": model,
        "data": data,
        "db": root / "sgpo.db",
        "root": root,  # a folder of the user's own files
        "file": root / "notes.txt",
        "folder": root / "folder",
        "missing": root / "missing.jsonl",
        "broken_data": root / "broken.jsonl",
        **broken,
    }
    return root, {k: str(v) for k, v in paths.items()}


def _grpo(*extra):
    return [
        "train",
        "--strategy",
        "grpo",
        "--model",
        "{model}",
        "--dataset",
        "{data}",
        "--eval-every",
        "0",
        "--db",
        "{db}",
        *extra,
    ]


def _profile(*extra):
    return ["profile", "{data}", "--model", "{model}", "--db", "{new_db}", "--samples", "2", *extra]


CASES = {
    # tasks and data: read-only
    "tasks unknown option": ["tasks", "--bogus"],
    "tasks unknown subcommand": ["tasks", "nope"],
    "data inspect missing file": ["data", "inspect", "{missing}"],
    "data inspect folder": ["data", "inspect", "{folder}"],
    "data inspect unknown format": ["data", "inspect", "{file}"],
    "data inspect broken line": ["data", "inspect", "{broken_data}"],
    "data inspect unknown field": ["data", "inspect", "{data}", "--prompt-field", "nope"],
    "data inspect unknown builtin": ["data", "inspect", "builtin:nope"],
    "tasks build seed negative": ["tasks", "build", "--seed", "-1"],
    "tasks build out is a file": ["tasks", "build", "--out", "{file}"],
    "starter train max steps zero": ["starter", "train", "--max-steps", "0", "--out", "{folder}/starter"],
    "starter train out under a file": ["starter", "train", "--out", "{file}/starter"],
    "starter check corrupt safetensors": ["starter", "check", "--model", "{garbage}"],
    "starter check unknown model_type": ["starter", "check", "--model", "{unknown}"],
    "starter check steps zero": ["starter", "check", "--steps", "0"],
    "starter check lr nan": ["starter", "check", "--lr", "nan"],
    # profile: knobs, data, model, context, store
    "profile temperature nan": _profile("--temperature", "nan"),
    "profile temperature inf": _profile("--temperature", "inf"),
    "profile temperature negative": _profile("--temperature", "-1"),
    "profile samples zero": _profile("--samples", "0"),
    "profile samples huge": _profile("--samples", "100000"),
    "profile samples not a number": _profile("--samples", "many"),
    "profile max new tokens zero": _profile("--max-new-tokens", "0"),
    "profile max new tokens huge": _profile("--max-new-tokens", "1000000000"),
    "profile batch size zero": _profile("--batch-size", "0"),
    "profile batch size huge": _profile("--batch-size", "100000"),
    "profile limit negative": _profile("--limit", "-3"),
    "profile seed negative": _profile("--seed", "-1"),
    "profile examples huge": _profile("--examples", "1000"),
    "profile unknown backend": _profile("--backend", "tgi"),
    "profile name only digits": _profile("--name", "42"),
    "profile name with spaces": _profile("--name", "my profile"),
    "profile missing dataset": ["profile", "{missing}", "--model", "{model}", "--db", "{new_db}"],
    "profile dataset is a folder": ["profile", "{folder}", "--model", "{model}", "--db", "{new_db}"],
    "profile missing model": ["profile", "{data}", "--model", "{folder}/nowhere", "--db", "{new_db}"],
    "profile model is a file": ["profile", "{data}", "--model", "{file}", "--db", "{new_db}"],
    "profile model folder without weights": ["profile", "{data}", "--model", "{folder}", "--db", "{new_db}"],
    "profile corrupt safetensors": ["profile", "{data}", "--model", "{garbage}", "--db", "{new_db}"],
    "profile cut safetensors": ["profile", "{data}", "--model", "{cut}", "--db", "{new_db}"],
    "profile unknown model_type": ["profile", "{data}", "--model", "{unknown}", "--db", "{new_db}"],
    "profile config not json": ["profile", "{data}", "--model", "{badjson}", "--db", "{new_db}"],
    "profile prompt beyond the context": _profile("--max-new-tokens", "61"),
    "profile no room for a prompt": _profile("--max-new-tokens", "64", "--truncate-prompts"),
    "profile db is a folder": ["profile", "{data}", "--model", "{model}", "--db", "{folder}", "--samples", "2"],
    "profile db is not a database": ["profile", "{data}", "--model", "{model}", "--db", "{file}", "--samples", "2"],
    "profile db under a file": ["profile", "{data}", "--model", "{model}", "--db", "{file}/sgpo.db", "--samples", "2"],
    "profile show unknown profile": ["profile", "show", "ghost", "--db", "{db}"],
    "profile show no store": ["profile", "show", "1", "--db", "{new_db}"],
    "profile show db is a folder": ["profile", "show", "1", "--db", "{folder}"],
    "profile list no store": ["profile", "list", "--db", "{new_db}"],
    "profile list not a database": ["profile", "list", "--db", "{file}"],
    "profile resume unknown profile": ["profile", "resume", "ghost", "--db", "{db}"],
    "profile resume no store": ["profile", "resume", "toy", "--db", "{new_db}"],
    "profile resume a finished profile": ["profile", "resume", "toy", "--db", "{db}"],
    "profile checkpoint without a step": ["profile", "checkpoint", "ghost", "--db", "{db}"],
    "profile checkpoint step not a number": ["profile", "checkpoint", "ghost@last", "--db", "{db}"],
    "profile checkpoint unknown run": ["profile", "checkpoint", "ghost@4", "--db", "{db}"],
    "profile checkpoint no store": ["profile", "checkpoint", "run:ghost@4", "--db", "{new_db}"],
    "profile drift unknown profile": ["profile", "drift", "toy", "ghost", "--db", "{db}"],
    "profile drift min change nan": ["profile", "drift", "toy", "toy", "--db", "{db}", "--min-change", "nan"],
    "profile drift no store": ["profile", "drift", "toy", "toy", "--db", "{new_db}"],
    # plan
    "plan unknown profile": ["plan", "ghost", "--db", "{db}"],
    "plan make unknown profile": ["plan", "make", "ghost", "--db", "{db}"],
    "plan list no store": ["plan", "list", "--db", "{new_db}"],
    "plan show unknown plan": ["plan", "show", "ghost", "--db", "{db}"],
    "plan show no store": ["plan", "show", "p", "--db", "{new_db}"],
    "plan no store": ["plan", "toy", "--db", "{new_db}"],
    "plan save into no store": ["plan", "toy", "--db", "{new_db}", "--save", "p"],
    "plan threshold nan": ["plan", "toy", "--db", "{db}", "--trivial-threshold", "nan"],
    "plan threshold inf": ["plan", "toy", "--db", "{db}", "--trivial-threshold", "inf"],
    "plan threshold negative": ["plan", "toy", "--db", "{db}", "--trivial-threshold", "-0.5"],
    "plan unsolved keep huge": ["plan", "toy", "--db", "{db}", "--unsolved-keep", "7"],
    "plan g-min zero": ["plan", "toy", "--db", "{db}", "--g-min", "0"],
    "plan unknown curriculum": ["plan", "toy", "--db", "{db}", "--curriculum", "nope"],
    "plan save name only digits": ["plan", "toy", "--db", "{db}", "--save", "42"],
    "plan export onto a file": ["plan", "toy", "--db", "{db}", "--export-trl", "{file}"],
    "plan export under a file": ["plan", "toy", "--db", "{db}", "--export-trl", "{file}/trl"],
    "plan export missing dataset": [
        "plan",
        "toy",
        "--db",
        "{db}",
        "--export-trl",
        "{folder}/trl",
        "--dataset",
        "{missing}",
    ],
    # train and runs
    "train lr nan, no store yet": ["train", "--strategy", "grpo", "--lr", "nan", "--db", "{new_db}"],
    "train lr inf": _grpo("--lr", "inf"),
    "train steps zero": _grpo("--steps", "0"),
    "train steps negative, no store yet": ["train", "--strategy", "grpo", "--steps", "-5", "--db", "{new_db}"],
    "train batch rollouts huge": _grpo("--batch-rollouts", "1000000000000"),
    "train group size zero": _grpo("--group-size", "0"),
    "train unknown strategy": _grpo("--strategy", "ppo"),
    "train steps not a number": _grpo("--steps", "ten"),
    "train missing dataset": _grpo("--dataset", "{missing}"),
    "train corrupt safetensors": _grpo("--model", "{garbage}"),
    "train unknown model_type": _grpo("--model", "{unknown}"),
    "train sgpo unknown profile": _grpo("--strategy", "sgpo", "--profile", "ghost"),
    "train sgpo without profile": _grpo("--strategy", "sgpo"),
    "train resume unknown run": ["train", "--resume", "ghost", "--db", "{db}"],
    "train resume, no store": ["train", "--resume", "ghost", "--db", "{new_db}"],
    "runs no store": ["runs", "--db", "{new_db}"],
    "runs db is a folder": ["runs", "--db", "{folder}"],
    "runs status unknown run": ["runs", "status", "ghost", "--db", "{db}"],
    "runs status no store": ["runs", "status", "ghost", "--db", "{new_db}"],
    "runs start unknown run": ["runs", "start", "ghost", "--db", "{db}"],
    "runs start no store": ["runs", "start", "ghost", "--db", "{new_db}"],
    "runs resume unknown run": ["runs", "resume", "ghost", "--db", "{db}"],
    "runs resume no store": ["runs", "resume", "ghost", "--db", "{new_db}"],
    "runs stop unknown run": ["runs", "stop", "ghost", "--db", "{db}"],
    "runs stop no store": ["runs", "stop", "ghost", "--db", "{new_db}"],
    "runs stop wait nan": ["runs", "stop", "ghost", "--db", "{db}", "--wait", "nan"],
    "runs stop wait negative": ["runs", "stop", "ghost", "--db", "{db}", "--wait", "-1"],
    "runs metrics unknown run": ["runs", "metrics", "ghost", "--db", "{db}"],
    "runs metrics no store": ["runs", "metrics", "ghost", "--db", "{new_db}"],
    "runs metrics csv under a file": ["runs", "metrics", "ghost", "--db", "{db}", "--csv", "{file}/m.csv"],
    "runs metrics csv is a folder": ["runs", "metrics", "ghost", "--db", "{db}", "--csv", "{folder}"],
    "runs rollouts unknown run": ["runs", "rollouts", "ghost", "--db", "{db}"],
    "runs history unknown run": ["runs", "history", "ghost", "q-1", "--db", "{db}"],
    "runs heatmap unknown run": ["runs", "heatmap", "ghost", "--db", "{db}"],
    # compare
    "compare unknown run": ["compare", "ghost", "--db", "{db}"],
    "compare no store": ["compare", "ghost", "--db", "{new_db}"],
    "compare unknown behaviour": ["compare", "ghost", "--db", "{db}", "--behaviour", "sometimes"],
    "compare no run given": ["compare", "--db", "{db}"],
    # dashboard: refused before the server is started
    "dashboard port zero": ["dashboard", "--db", "{db}", "--port", "0"],
    "dashboard port huge": ["dashboard", "--db", "{db}", "--port", "70000"],
    "dashboard port negative": ["dashboard", "--db", "{db}", "--port", "-1"],
    "dashboard port not a number": ["dashboard", "--db", "{db}", "--port", "nan"],
    "dashboard address not a host": ["dashboard", "--db", "{db}", "--address", "bad host!"],
    "dashboard address not this machine": ["dashboard", "--db", "{db}", "--address", "192.0.2.1"],
    "dashboard db is a folder": ["dashboard", "--db", "{folder}"],
    "dashboard db is not a database": ["dashboard", "--db", "{file}"],
    "dashboard db under a file": ["dashboard", "--db", "{file}/sgpo.db"],
    "profile db in a missing folder": _profile("--db", "{folder}/nowhere/sgpo.db"),
    "train db in a missing folder": ["train", "--strategy", "grpo", "--db", "{folder}/nowhere/sgpo.db"],
    # the own-data options
    "profile unknown reward": _profile("--reward", "fuzzy"),
    "profile reward module missing": _profile("--reward", "no_such_module_here:score"),
    "profile unknown task field": _profile("--task-field", "nope"),
    "data inspect unknown reward": ["data", "inspect", "{data}", "--reward", "fuzzy"],
    "data inspect unknown difficulty field": ["data", "inspect", "{data}", "--difficulty-field", "nope"],
    "plan export unknown reward": ["plan", "toy", "--db", "{db}", "--export-trl", "{folder}/trl", "--reward", "fuzzy"],
    "plan export verl into a folder of other files": ["plan", "toy", "--db", "{db}", "--export-verl", "{root}"],
    "train unknown reward": _grpo("--reward", "fuzzy"),
    "train held out share too large": _grpo("--held-out-share", "0.9"),
    "train unknown saved plan": _grpo("--plan", "ghost"),
    "train saved plan, no store": ["train", "--plan", "ghost", "--db", "{new_db}"],
}


# what the one line must name, where the case is about one option, file or folder
NAMED = {
    "profile temperature nan": "--temperature",
    "profile samples huge": "--samples",
    "profile corrupt safetensors": "garbage",
    "profile cut safetensors": "cut",
    "profile unknown model_type": "nosuchmodel",
    "profile config not json": "config.json",
    "profile prompt beyond the context": "query 'toy-000'",
    "profile no room for a prompt": "--max-new-tokens",
    "profile db is a folder": "is a folder",
    "profile db under a file": "notes.txt is a file",
    "plan save into no store": "does not exist",
    "profile resume a finished profile": "nothing to resume",
    "profile checkpoint without a step": "RUN@STEP",
    "profile checkpoint step not a number": "whole number",
    "profile drift min change nan": "--min-change",
    "plan show unknown plan": "no plan 'ghost'",
    "runs metrics csv under a file": "--csv",
    "runs metrics csv is a folder": "--csv",
    "compare unknown behaviour": "--behaviour",
    "plan export onto a file": "--export-trl",
    "plan export under a file": "--export-trl",
    "train lr nan, no store yet": "--lr",
    "train corrupt safetensors": "garbage",
    "train unknown model_type": "nosuchmodel",
    "runs stop wait nan": "--wait",
    "runs stop wait negative": "--wait",
    "dashboard address not a host": "--address",
    "dashboard address not this machine": "--address",
    "dashboard db is a folder": "is a folder",
    "starter check lr nan": "--lr",
    "tasks build out is a file": "--out",
    "profile db in a missing folder": "--db",
    "train db in a missing folder": "--db",
    "profile unknown reward": "--reward 'fuzzy'",
    "profile reward module missing": "--reward",
    "profile unknown task field": "--task-field",
    "data inspect unknown reward": "--reward",
    "data inspect unknown difficulty field": "--difficulty-field",
    "plan export unknown reward": "--reward",
    "plan export verl into a folder of other files": "--export-verl",
    "train unknown reward": "--reward",
    "train held out share too large": "--held-out-share",
    "train unknown saved plan": "no plan 'ghost'",
}


def _tree(root) -> dict[str, tuple]:
    """Every path under root, files with size and modification time. SQLite's -wal/-shm side files are
    left out, and a store is compared by its rows (`_rows`): closing a connection may checkpoint into it."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if not name.endswith(("-wal", "-shm")):
                st = os.stat(path)
                out[path] = (st.st_size, st.st_mtime_ns) if name in files and not name.endswith(".db") else ()
    return out


def _rows(db) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_and_creates_nothing(cli, world, case, monkeypatch, tmp_path):
    root, paths = world
    paths = {**paths, "new_db": str(tmp_path / "new.db")}  # a store that does not exist (yet), in a folder that does
    execs = []
    monkeypatch.setattr(os, "execve", lambda *a: execs.append(a))  # a dashboard that got through would exec here
    monkeypatch.setenv("SGPO_DB", str(tmp_path / "default" / "sgpo.db"))
    monkeypatch.chdir(tmp_path)
    before, rows = (_tree(root), _tree(tmp_path)), _rows(paths["db"])

    code, out, err = cli(*[a.format(**paths) for a in CASES[case]])

    assert code == 2, err
    assert out == "" and "Traceback" not in err and not execs
    lines = err.strip().splitlines()
    usage = any(line.startswith("Usage:") for line in lines) and any("Error:" in line for line in lines)
    assert usage or (len(lines) == 1 and lines[0].startswith("error: ")), err
    assert NAMED.get(case, "") in err
    assert (_tree(root), _tree(tmp_path)) == before  # no store, folder or file created or changed
    assert _rows(paths["db"]) == rows  # nothing written into the existing store


def _command_paths(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _command_paths(command, (*prefix, name))


def test_the_table_walks_every_command():
    """A new command needs rows in CASES: each command of the CLI is walked by at least one."""
    import typer

    from sgpo.cli.main import app

    known = set(_command_paths(typer.main.get_command(app)))
    walked = set()
    for args in CASES.values():
        path = ()
        for word in args:
            if (*path, word) not in known:
                break
            path = (*path, word)
        default = {("profile",): ("profile", "run"), ("plan",): ("plan", "make")}  # `sgpo profile DATASET` runs `run`
        walked.add(default.get(path, path))
    groups = {("data",), ("starter",), ("profile",), ("plan",)}  # groups without a command of their own
    assert known - groups - walked == set()
    assert set(NAMED) <= set(CASES)


def test_a_refused_train_on_a_new_store_path_creates_nothing(cli, tmp_path):
    """Checks that need the data or the model (inside the run's preparation) run before the store exists."""
    db = tmp_path / "new.db"
    for args in (
        ["--dataset", tmp_path / "missing.jsonl"],
        ["--model", tmp_path / "no-model"],
        ["--strategy", "sgpo", "--profile", "p"],
    ):
        code, out, err = cli("train", "--strategy", "grpo", *args, "--db", db)
        assert code == 2 and err.startswith("error:") and "Traceback" not in err, err
        assert not db.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["profile", "builtin:train", "--queries", "4"],
        ["train", "--strategy", "grpo"],
        ["plan", "1"],
        ["plan", "1", "--save", "p"],
        ["profile", "list"],
        ["runs"],
        ["dashboard"],
        ["data", "inspect", "builtin:train"],
    ],
)
def test_a_db_in_a_folder_that_does_not_exist_is_refused_naming_db_and_no_folder_is_made(cli, tmp_path, command):
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    code, out, err = cli(*command, "--db", db)
    assert code == 2 and out == "" and err.startswith("error: --db ") and len(err.strip().splitlines()) == 1, err
    assert "does not exist" in err and not (tmp_path / "nonexistent").exists()
