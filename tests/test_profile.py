"""Profiling end to end: p_hat and cost bookkeeping, resume after kill -9, reuse, and refusals that
write nothing. The coin model answers 'x' * k with P(k) = 2^-(k+1), so the answer 'x' has p = 1/4."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from sgpo.data import load_dataset
from sgpo.errors import ConfigError
from sgpo.model import resolve_model
from sgpo.profile import ProfileConfig, describe, run_profile
from sgpo.store import Store
from tests.conftest import ROOT
from tests.toys import make_coin_model, make_tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # see one_thread


def write_jsonl(path, n):
    answers = ["x", "xx", "xxx"]
    with open(path, "w") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "prompt": f"say {i}=",
                        "answer": answers[i % 3],
                        "task": ["one", "two", "three"][i % 3],
                        "difficulty": i % 3 + 1,
                    }
                )
                + "\n"
            )
    return path


@pytest.fixture(scope="module")
def coin_dir(tmp_path_factory):
    return make_coin_model(tmp_path_factory.mktemp("coin"))


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "queries.jsonl", 24)


def _profile_args(data, model, db, *extra):
    return [
        "profile",
        data,
        "--model",
        model,
        "--db",
        db,
        "--samples",
        8,
        "--max-new-tokens",
        6,
        "--batch-size",
        5,
        *extra,
    ]


def _rows(db):
    return Store(db).profiles() if os.path.exists(db) else []


def test_profile_stores_p_hat_and_exact_cost_per_query(cli, coin_dir, data, db_path):
    code, out, err = cli(*_profile_args(data, coin_dir, db_path, "--json"))
    assert code == 0, err
    summary = json.loads(out)
    store = Store(db_path)
    frame = store.profile_frame(summary["profile_id"], examples=True)
    row = store.find_profile(summary["profile_id"])
    assert summary["queries"] == len(frame) == 24 and row["status"] == "done"
    assert frame["position"].tolist() == list(range(24))
    assert (frame["p_hat"] == frame["successes"] / frame["samples"]).all() and (frame["samples"] == 8).all()
    assert summary["p_hat"] == frame["p_hat"].tolist()
    assert 0.1 < frame.loc[frame["task"] == "one", "p_hat"].mean() < 0.45  # p = 1/4 for the answer 'x'
    # cost: prompt tokens once per sample (BOS included), completions as generated, 2 * n_params per token
    ref = resolve_model(str(coin_dir))
    assert (frame["prompt_tokens"] == [len(f"say {i}=") + 1 for i in range(24)]).all()
    tokens_prompt = int((frame["prompt_tokens"] * frame["samples"]).sum())
    tokens_completion = int(frame["completion_tokens_total"].sum())
    assert (row["tokens_prompt"], row["tokens_completion"]) == (tokens_prompt, tokens_completion)
    assert summary["tokens"] == {
        "prompt": tokens_prompt,
        "completion": tokens_completion,
        "total": tokens_prompt + tokens_completion,
    }
    assert row["flops"] == summary["flops"] == 2 * ref.n_params * (tokens_prompt + tokens_completion)
    assert row["n_params"] == ref.n_params and summary["seconds"] > 0 and summary["backend"] == "hf"
    for examples, answer in zip(frame["examples"], frame["id"].map(lambda q: ["x", "xx", "xxx"][int(q[1:]) % 3])):
        assert 1 <= len(examples) <= 4
        assert all(e["reward"] == float(e["text"] == answer) for e in examples)


def test_same_command_again_returns_the_finished_profile_without_work(cli, coin_dir, data, db_path):
    first = json.loads(cli(*_profile_args(data, coin_dir, db_path, "--json"))[1])
    code, out, _ = cli(*_profile_args(data, coin_dir, db_path, "--json"))
    again = json.loads(out)
    assert code == 0 and again["reused"] and again["profile_id"] == first["profile_id"]
    assert again["seconds"] == first["seconds"] and again["p_hat"] == first["p_hat"]
    # a different seed is a different profile
    other = json.loads(cli(*_profile_args(data, coin_dir, db_path, "--json", "--seed", 1))[1])
    assert other["profile_id"] != first["profile_id"] and len(_rows(db_path)) == 2


def test_resume_after_kill_9_loses_nothing_and_repeats_nothing(cli, tmp_path, coin_dir):
    data = write_jsonl(tmp_path / "many.jsonl", 100)
    db = tmp_path / "killed.db"
    args = [str(a) for a in _profile_args(data, coin_dir, db, "--batch-size", 2)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sgpo", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ONE_THREAD,
    )
    try:
        deadline = time.time() + 120
        while _stored(db) == 0 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = _stored(db)
    assert 0 < partial < 100, f"the kill came at {partial} of 100 stored queries: expected part-way"
    assert Store(db).profiles()[0]["status"] == "running"

    subprocess.run([sys.executable, "-m", "sgpo", *args], cwd=ROOT, check=True, capture_output=True, env=ONE_THREAD)
    store = Store(db)
    [row] = store.profiles()
    frame = store.profile_frame(row["id"])
    assert frame["position"].tolist() == list(range(100))  # none missing, none twice
    assert row["status"] == "done" and row["queries_done"] == 100
    assert row["tokens_prompt"] == int((frame["prompt_tokens"] * frame["samples"]).sum())
    assert row["tokens_completion"] == int(frame["completion_tokens_total"].sum())
    assert row["flops"] == 2 * row["n_params"] * (row["tokens_prompt"] + row["tokens_completion"])

    code, out, err = cli(*_profile_args(data, coin_dir, tmp_path / "whole.db", "--batch-size", 2, "--json"))
    assert code == 0, err
    assert json.loads(out)["p_hat"] == frame["p_hat"].tolist()


def _stored(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM profile_queries").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


@pytest.mark.parametrize(
    "extra,option",
    [
        (["--samples", 0], "--samples"),
        (["--max-new-tokens", 0], "--max-new-tokens"),
        (["--temperature", -1], "--temperature"),
        (["--limit", 0], "--limit"),
        (["--limit", -3], "--limit"),
        (["--backend", "tgi"], "--backend"),
        (["--batch-size", 0], "--batch-size"),
        (["--name", "42"], "--name"),
    ],
)
def test_bad_options_exit_2_naming_the_option_and_write_nothing(cli, coin_dir, data, db_path, extra, option):
    code, out, err = cli(*_profile_args(data, coin_dir, db_path, *extra))
    assert code == 2 and option in err and out == ""
    assert _rows(db_path) == []


def test_bad_data_or_model_exit_2_and_write_nothing(cli, tmp_path, coin_dir, data, db_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    no_tok = tmp_path / "no-tokenizer"
    make_tiny_model(no_tok)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / f).unlink()
    pickled = tmp_path / "pickled"
    make_tiny_model(pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    cases = [
        (empty, coin_dir, "empty"),
        (data, tmp_path / "nowhere", "nowhere"),
        (data, no_tok, "tokenizer"),
        (data, pickled, "pickle"),
    ]
    for dataset, model, words in cases:
        code, _, err = cli(*_profile_args(dataset, model, db_path))
        assert code == 2 and words in err, err
        assert _rows(db_path) == []


def test_a_name_taken_by_different_settings_is_refused(cli, coin_dir, data, db_path):
    assert cli(*_profile_args(data, coin_dir, db_path, "--name", "mine"))[0] == 0
    code, _, err = cli(*_profile_args(data, coin_dir, db_path, "--name", "mine", "--samples", 4))
    assert code == 2 and "--name" in err and "mine" in err
    assert len(_rows(db_path)) == 1
    code, _, _ = cli(*_profile_args(data, coin_dir, db_path, "--name", "mine"))  # same settings: reused
    assert code == 0 and len(_rows(db_path)) == 1


def test_show_and_list_read_profiles_back(cli, coin_dir, data, db_path):
    pid = json.loads(cli(*_profile_args(data, coin_dir, db_path, "--json", "--name", "coin"))[1])["profile_id"]
    code, out, _ = cli("profile", "show", "coin", "--db", db_path, "--json")
    view = json.loads(out)
    assert code == 0 and view["profile_id"] == pid
    assert sum(b["count"] for b in view["histogram"]) == 24 == sum(view["decisions"].values())
    assert {r["task"] for r in view["by_task"]} == {"one", "two", "three"}
    assert [r["difficulty"] for r in view["by_difficulty"]] == [1, 2, 3]
    code, out, _ = cli("profile", "show", pid, "--db", db_path)
    assert code == 0 and "p_hat histogram" in out and "█" in out and "FLOP" in out
    code, out, _ = cli("profile", "list", "--db", db_path, "--json")
    assert code == 0 and [p["name"] for p in json.loads(out)["profiles"]] == ["coin"]
    code, out, _ = cli("profile", "list", "--db", db_path)
    assert code == 0 and "coin" in out
    code, _, err = cli("profile", "show", "absent", "--db", db_path)
    assert code == 2 and "absent" in err


def test_profile_help_lists_the_subcommands(cli):
    code, out, _ = cli("profile", "--help")
    assert code == 0 and "show" in out and "list" in out


def test_profile_help_shows_the_documented_forms_options_and_the_subcommands(cli):
    code, out, _ = cli("profile", "--help")
    assert code == 0 and "sgpo profile [OPTIONS] {dataset}" in out
    for option in ("--model", "--samples", "--adaptive", "--temperature", "--name", "--detach", "--db"):
        assert option in out, option
    for command in ("run", "show", "list", "resume", "checkpoint", "drift"):
        assert f"\n  {command} " in out, command


def test_a_detached_profile_killed_with_kill_9_lists_interrupted_and_resume_finishes_it(cli, tmp_path, coin_dir):
    from sgpo import profiles

    data = write_jsonl(tmp_path / "many.jsonl", 100)
    db = tmp_path / "detached.db"
    config = ProfileConfig(samples=4, max_new_tokens=4, batch_size=2)
    job = profiles.start(str(data), str(coin_dir), config, db, name="bg", detach=True)
    assert job["status"] == "started" and job["log_path"].endswith("logs/profile-bg.log")
    try:
        deadline = time.time() + 120
        while _stored(db) == 0 and time.time() < deadline:
            time.sleep(0.01)
    finally:
        os.kill(job["pid"], signal.SIGKILL)
    deadline = time.time() + 10
    while profiles.list_profiles(Store(db))[0]["alive"] and time.time() < deadline:  # until it is reaped
        time.sleep(0.05)
    [row] = profiles.list_profiles(Store(db))
    assert 0 < row["queries_done"] < 100, f"the kill came at {row['queries_done']} of 100: expected part-way"
    assert (row["status"], row["stored_status"], row["alive"]) == ("interrupted", "running", False)
    assert profiles.status("bg", Store(db))["status"] == "interrupted"
    assert " interrupted " in cli("profile", "list", "--db", db)[1]

    code, out, err = cli("profile", "resume", "bg", "--db", db, "--json")  # with the settings it recorded
    assert code == 0, err
    summary = json.loads(out)
    assert summary["resumed"] and summary["status"] == "done" and summary["queries"] == 100
    frame = Store(db).profile_frame(summary["profile_id"])
    assert frame["position"].tolist() == list(range(100))  # none missing, none twice
    code, _, err = cli("profile", "resume", "bg", "--db", db)
    assert code == 2 and "nothing to resume" in err


def test_library_run_counts_decisions_that_add_up(tmp_path, coin_dir, data):
    ds, ref = load_dataset(str(data)), resolve_model(str(coin_dir))
    summary = run_profile(
        ds, ref, ProfileConfig(samples=4, max_new_tokens=4, limit=10), Store(tmp_path / "lib.db"), progress=False
    )
    assert summary["queries"] == 10 and len(summary["p_hat"]) == 10
    store = Store(tmp_path / "lib.db")
    view = describe(store.find_profile(summary["profile_id"]), store.profile_frame(summary["profile_id"]))
    assert sum(view["decisions"].values()) == 10


@pytest.mark.parametrize(
    "field,value",
    [
        ("samples", 0),
        ("max_new_tokens", -1),
        ("temperature", -0.1),
        ("limit", 0),
        ("backend", "x"),
        ("batch_size", 0),
        ("examples", -1),
        ("temperature", float("nan")),
        ("truncate_prompts", "yes"),
    ],
)
def test_config_validate_names_the_option(field, value):
    with pytest.raises(ConfigError, match="--" + field.replace("_", "-").replace("examples-kept", "examples")):
        ProfileConfig(**{field: value}).validate()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_prompt_too_long_for_the_context_is_refused_naming_it_before_anything_is_written(cli, tmp_path, coin_dir):
    data = write_jsonl(tmp_path / "long.jsonl", 6)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    rows[4]["prompt"] = "say " + "x" * 150 + "="  # 156 tokens with BOS; the coin model's context is 128
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = cli(*_profile_args(data, coin_dir, db_path := tmp_path / "p.db"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "query 'q4'" in err and "156 tokens" in err and "128" in err and "--truncate-prompts" in err
    assert not db_path.exists()  # refused before the store was created
    code, out, err = cli(*_profile_args(data, coin_dir, db_path, "--truncate-prompts", "--json"))
    assert code == 0, err
    assert "warning: 1 of 6 prompts" in err and "'q4'" in err
    frame = Store(db_path).profile_frame(json.loads(out)["profile_id"])
    assert frame["prompt_tokens"].tolist() == [7, 7, 7, 7, 128 - 6, 7]  # cut to the context less 6 new tokens


def test_a_profile_whose_process_is_gone_shows_interrupted_and_the_same_command_resumes_it(cli, tmp_path, coin_dir):
    data = write_jsonl(tmp_path / "q.jsonl", 12)
    ds, ref, db = load_dataset(str(data)), resolve_model(str(coin_dir)), tmp_path / "i.db"
    config = ProfileConfig(samples=4, max_new_tokens=4, batch_size=5)
    pids = []

    class Crashing:  # generates one batch, then dies as a killed process would
        backend, calls = "hf", 0

        def generate(self, prompts, **kw):
            pids.append(Store(db).profiles()[0]["pid"])
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return real.generate(prompts, **kw)

    from sgpo.generate.backends import make_generator

    real = make_generator("hf", coin_dir, batch_size=5)
    with pytest.raises(KeyboardInterrupt):
        run_profile(ds, ref, config, Store(db), name="crash", progress=False, generator=Crashing())
    assert pids == [os.getpid(), os.getpid()]  # the profiling process is recorded while it works
    store = Store(db)
    [row] = store.profiles()
    assert row["status"] == "running" and row["pid"] is None and row["queries_done"] == 5
    store.update_profile(row["id"], pid=_dead_pid())  # as if it had been killed -9 (no cleanup ran)
    code, out, _ = cli("profile", "list", "--db", db, "--json")
    [listed] = json.loads(out)["profiles"]
    assert code == 0 and (listed["status"], listed["stored_status"]) == ("interrupted", "running")
    code, out, _ = cli("profile", "show", "crash", "--db", db)
    assert code == 0 and "[interrupted]" in out and "same `sgpo profile` command" in out
    assert "interrupted" in cli("profile", "list", "--db", db)[1]

    code, out, err = cli(
        *_profile_args(data, coin_dir, db, "--samples", 4, "--max-new-tokens", 4, "--name", "crash", "--json")
    )
    summary = json.loads(out)
    assert code == 0, err
    assert summary["resumed"] and summary["status"] == summary["stored_status"] == "done" and summary["queries"] == 12
    assert Store(db).find_profile("crash")["pid"] is None


def test_a_profile_being_written_by_a_live_process_is_not_written_twice(cli, tmp_path, coin_dir, data, db_path):
    assert cli(*_profile_args(data, coin_dir, db_path, "--name", "busy"))[0] == 0
    store = Store(db_path)
    store.update_profile(store.find_profile("busy")["id"], status="running", pid=os.getppid())  # alive, not us
    code, out, err = cli(*_profile_args(data, coin_dir, db_path, "--name", "busy"))
    assert code == 2 and out == "" and f"process {os.getppid()}" in err
    assert json.loads(cli("profile", "list", "--db", db_path, "--json")[1])["profiles"][0]["status"] == "running"


# adaptive profiling and subsets -------------------------------------------------------------------
class Scripted:
    """A generator whose samples follow each prompt's script, continued across rounds: the prompt
    'PATTERN k=' answers 'x' (a success) where PATTERN has '1', else 'y'. It records every call."""

    backend = "hf"

    def __init__(self):
        self.drawn, self.calls = {}, []

    def generate(self, prompts, *, n, temperature, max_new_tokens, seed):
        from sgpo.generate import Generation, Sample

        self.calls.append({"prompts": list(prompts), "n": n, "seed": seed})
        out = []
        for p in prompts:
            pattern, start = p.split()[0], self.drawn.get(p, 0)
            self.drawn[p] = start + n
            texts = ["x" if pattern[(start + j) % len(pattern)] == "1" else "y" for j in range(n)]
            out.append(
                Generation(
                    prompt=p,
                    prompt_ids=list(range(len(p) + 1)),
                    samples=[Sample(text=t, token_ids=[7, 2], finished=True) for t in texts],
                )
            )
        return out


def write_scripted(path, patterns):
    with open(path, "w") as f:
        for i, pattern in enumerate(patterns):
            f.write(json.dumps({"id": f"{pattern}-{i}", "prompt": f"{pattern} {i}=", "answer": "x"}) + "\n")
    return path


@pytest.mark.parametrize(
    "confidence,expected",
    [
        # always right: trivial (> 0.75) is certain at 8 once the rest cannot pull it to 6/8; after 4 of 4 the
        # Beta(5, 1) predictive gives P(>= 3 of the 4 left) = 5/9 + 5/18 = 5/6 >= 0.8. Always wrong: P(no success
        # in all 8 | n failures) = (n + 1) / 9 >= 0.8 at n = 7. Alternating: 3 of 6 leaves 3..5 of 8, all G = 4.
        # One in three (0.33, by the G = 4 | G = 8 edge at 0.3) never settles: it stops at the cap.
        (0.8, {"1": 4, "0": 7, "10": 6, "001": 8}),
        # certainty: always right needs 7 of 7 (then >= 7 of 8 whatever comes); always wrong all 8
        (1.0, {"1": 7, "0": 8, "10": 6, "001": 8}),
    ],
)
def test_adaptive_stops_each_query_once_its_bucket_is_settled(tmp_path, coin_dir, confidence, expected):
    data = write_scripted(tmp_path / "s.jsonl", list(expected))
    config = ProfileConfig(
        adaptive=True, samples=8, first_round=2, round_size=1, confidence=confidence, max_new_tokens=4
    )
    gen = Scripted()
    summary = run_profile(
        load_dataset(str(data)),
        resolve_model(str(coin_dir)),
        config,
        Store(tmp_path / "a.db"),
        progress=False,
        generator=gen,
    )
    frame = Store(tmp_path / "a.db").profile_frame(summary["profile_id"])
    assert dict(zip(frame["id"].str.split("-").str[0], frame["samples"])) == expected
    assert (frame["p_hat"] == frame["successes"] / frame["samples"]).all()
    # rounds: 2 samples for everyone, then 1 more for the unsettled only, batched across them
    assert gen.calls[0]["n"] == 2 and len(gen.calls[0]["prompts"]) == 4
    assert all(c["n"] == 1 for c in gen.calls[1:])
    live = [sum(n > drawn for n in expected.values()) for drawn in range(2, 8)]
    assert [len(c["prompts"]) for c in gen.calls] == [4] + [k for k in live if k]
    assert summary["samples_per_query"] == {"mean": sum(expected.values()) / 4, "min": min(expected.values()), "max": 8}


def test_adaptive_round_seeds_and_the_first_round_is_the_fixed_profile_of_that_size(tmp_path, coin_dir):
    from sgpo.profile import batch_seed

    data = write_scripted(tmp_path / "s.jsonl", ["001", "1"])
    gen, ref = Scripted(), resolve_model(str(coin_dir))
    run_profile(
        load_dataset(str(data)),
        ref,
        ProfileConfig(adaptive=True, samples=4, first_round=2, seed=3),
        Store(tmp_path / "a.db"),
        progress=False,
        generator=gen,
    )
    seeds = [c["seed"] for c in gen.calls]
    assert seeds[0] == batch_seed(3, 0) and len(set(seeds)) == len(seeds)  # round 0: a fixed N=2 profile's seed


def test_adaptive_counts_every_sample_generated_in_tokens_and_flops(cli, tmp_path, coin_dir, db_path):
    data = write_jsonl(tmp_path / "q.jsonl", 30)
    ds, ref = load_dataset(str(data)), resolve_model(str(coin_dir))
    from sgpo.generate.backends import make_generator

    real = make_generator("hf", coin_dir, batch_size=7)
    drawn = {"samples": 0, "prompt": 0, "completion": 0}

    class Counting:
        backend = "hf"

        def generate(self, prompts, **kw):
            outs = real.generate(prompts, **kw)
            for g in outs:
                drawn["samples"] += len(g.samples)
                drawn["prompt"] += g.prompt_tokens * len(g.samples)
                drawn["completion"] += sum(s.completion_tokens for s in g.samples)
            return outs

    config = ProfileConfig(adaptive=True, samples=12, first_round=2, max_new_tokens=6, batch_size=7)
    summary = run_profile(ds, ref, config, Store(db_path), progress=False, generator=Counting())
    store = Store(db_path)
    row, frame = store.find_profile(summary["profile_id"]), store.profile_frame(summary["profile_id"])
    assert frame["samples"].nunique() > 1 and frame["samples"].max() <= 12 and frame["samples"].min() >= 2
    assert summary["completions"] == int(frame["samples"].sum()) == drawn["samples"]
    assert (row["tokens_prompt"], row["tokens_completion"]) == (drawn["prompt"], drawn["completion"])
    assert row["tokens_prompt"] == int((frame["prompt_tokens"] * frame["samples"]).sum())
    assert row["flops"] == 2 * ref.n_params * (drawn["prompt"] + drawn["completion"])
    assert row["samples"] == 12 and "adaptiveN12" in row["name"]
    # the planner takes variable N: the posterior estimate uses each query's own samples
    from sgpo.plan import PlanConfig, make_plan
    from sgpo.plan.planner import success_estimate

    plan = make_plan(frame, PlanConfig(success_estimate="posterior"), n_params=ref.n_params, flops_profile=row["flops"])
    assert plan.counts["total"] == 30
    est = success_estimate(frame, PlanConfig(success_estimate="posterior"))
    assert est.tolist() == ((frame["successes"] + 1) / (frame["samples"] + 2)).tolist()
    # the command line says the samples varied
    code, out, err = cli(
        "profile",
        data,
        "--model",
        coin_dir,
        "--db",
        db_path,
        "--adaptive",
        "--samples",
        12,
        "--max-new-tokens",
        6,
        "--batch-size",
        7,
    )
    assert code == 0 and "samples on average" in out and "at most 12" in out, err
    code, out, _ = cli("profile", "show", summary["profile_id"], "--db", db_path)
    assert code == 0 and f"N={frame['samples'].min()}..12 (mean " in out


def test_adaptive_settings_enter_the_profile_key(tmp_path, coin_dir):
    from sgpo.profile import profile_key

    keys = {
        profile_key("d", "m", ProfileConfig(**kw))
        for kw in (
            {},
            {"adaptive": True},
            {"adaptive": True, "confidence": 0.9},
            {"adaptive": True, "first_round": 4},
            {"adaptive": True, "round_size": 2},
            {"adaptive": True, "samples": 16},
        )
    }
    assert len(keys) == 6
    # knobs of the rounds do not matter to a fixed profile: its key is the one it always had
    assert profile_key("d", "m", ProfileConfig(first_round=4, confidence=0.5)) == profile_key("d", "m", ProfileConfig())


def test_an_adaptive_profile_resumed_after_a_crash_equals_an_uninterrupted_one(tmp_path, coin_dir):
    data = write_jsonl(tmp_path / "q.jsonl", 15)
    ds, ref = load_dataset(str(data)), resolve_model(str(coin_dir))
    config = ProfileConfig(adaptive=True, samples=10, first_round=2, max_new_tokens=4, batch_size=6)
    from sgpo.generate.backends import make_generator

    real = make_generator("hf", coin_dir, batch_size=6)

    class Crashing:  # dies in a later round of the second batch, as a killed process would
        backend, calls = "hf", 0

        def generate(self, prompts, **kw):
            self.calls += 1
            if Store(tmp_path / "crash.db").profiles()[0]["queries_done"] == 6 and self.calls > 3:
                raise KeyboardInterrupt
            return real.generate(prompts, **kw)

    with pytest.raises(KeyboardInterrupt):
        run_profile(ds, ref, config, Store(tmp_path / "crash.db"), progress=False, generator=Crashing())
    [row] = Store(tmp_path / "crash.db").profiles()
    assert row["status"] == "running" and row["queries_done"] == 6  # the first batch, all its rounds, only
    resumed = run_profile(ds, ref, config, Store(tmp_path / "crash.db"), progress=False, generator=real)
    whole = run_profile(ds, ref, config, Store(tmp_path / "whole.db"), progress=False, generator=real)
    assert resumed["resumed"] and resumed["status"] == "done"
    a, b = (Store(tmp_path / f"{n}.db").profile_frame(1) for n in ("crash", "whole"))
    cols = ["position", "id", "samples", "successes", "p_hat", "prompt_tokens", "completion_tokens_total"]
    assert a[cols].equals(b[cols])
    for key in ("tokens", "flops", "completions", "p_hat"):
        assert resumed[key] == whole[key]


@pytest.mark.parametrize(
    "extra,options",
    [
        (["--adaptive", "--samples", 2, "--first-round", 4], ["--samples", "--first-round"]),
        (["--adaptive", "--first-round", 0], ["--first-round"]),
        (["--round-size", 0], ["--round-size"]),
        (["--confidence", 0], ["--confidence"]),
        (["--confidence", 1.5], ["--confidence"]),
        (["--fraction", 0], ["--fraction"]),
        (["--fraction", 1.2], ["--fraction"]),
        (["--queries", 0], ["--queries"]),
        (["--fraction", 0.5, "--queries", 3], ["--fraction", "--queries"]),
    ],
)
def test_bad_adaptive_and_subset_knobs_exit_2_in_one_line_naming_the_options(
    cli, coin_dir, data, db_path, extra, options
):
    code, out, err = cli(*_profile_args(data, coin_dir, db_path, *extra))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert all(o in err for o in options), err
    assert _rows(db_path) == []


def test_first_round_above_samples_is_fine_without_adaptive():
    assert ProfileConfig(samples=2, first_round=4).samples == 2
    with pytest.raises(ConfigError, match="--samples=2 is below --first-round=4"):
        ProfileConfig(samples=2, first_round=4, adaptive=True)


def test_fraction_and_queries_profile_a_seeded_nested_subset_of_the_right_size(cli, coin_dir, data, db_path):
    def profile(*extra):
        code, out, err = cli(*_profile_args(data, coin_dir, db_path, "--json", *extra))
        assert code == 0, err
        summary = json.loads(out)
        return summary, Store(db_path).profile_frame(summary["profile_id"])

    quarter, qf = profile("--fraction", 0.25)
    assert quarter["queries"] == quarter["queries_total"] == 6 == len(qf)
    positions = qf["position"].tolist()
    assert positions == sorted(positions) and set(positions) <= set(range(24)) and positions != list(range(6))
    assert qf["id"].tolist() == [f"q{p}" for p in positions]  # stored at their place in the dataset
    # the same seed picks the same subset; --queries of that size is the same profile
    budget, _ = profile("--queries", 6)
    assert budget["reused"] and budget["profile_id"] == quarter["profile_id"]
    half, hf = profile("--fraction", 0.5)
    assert len(hf) == 12 and set(positions) <= set(hf["position"])  # nested
    other, of = profile("--fraction", 0.25, "--seed", 1)
    assert len(of) == 6 and of["position"].tolist() != positions
    everything, ef = profile("--queries", 100)  # a budget above the dataset is all of it: the plain profile
    assert len(ef) == 24 and everything["name"].count("sub") == 0
    assert "sub6" in quarter["name"] and not Store(db_path).find_profile(quarter["profile_id"])["query_limit"]
    from sgpo.plan import make_plan

    assert make_plan(qf).counts["total"] == 6


def test_settle_probability_of_an_unsolved_query_is_the_chance_that_all_n_samples_fail():
    import numpy as np

    from sgpo.adaptive import settle_probability

    for n in (1, 4, 15):  # P(no success in all 16 | n failures, uniform prior) = (n + 1) / 17
        assert settle_probability(np.array([0]), n, 16)[0] == pytest.approx((n + 1) / 17)
    assert settle_probability(np.array([0, 3, 7]), 7, 7).tolist() == [1.0, 1.0, 1.0]  # nothing left to draw
