"""Bad input is refused before anything is written, with a message naming the option."""

from __future__ import annotations

import json

import pytest

from sgpo.errors import ConfigError, SgpoError
from sgpo.runs import resume, train
from sgpo.store import Store
from sgpo.train import TrainConfig
from sgpo.train.setup import prepare
from tests.toys import tiny_model_dir, toy_config, toy_profile


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "db" / "sgpo.db")


def _refused(store, cfg, match, name="bad"):
    with pytest.raises(SgpoError, match=match):
        train(cfg(), store, name=name)
    assert store.runs() == [] or all(r["name"] != name for r in store.runs())
    assert not (store.path.parent / "checkpoints" / name).exists()


def test_profile_of_another_dataset_is_refused(toy, store, tmp_path):
    pid = toy_profile(store, toy)
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"prompt": "a0=", "answer": "x", "id": f"o{i}"}) + "\n" for i in range(3)))
    _refused(
        store, lambda: toy_config(toy, strategy="sgpo", profile=str(pid), dataset=str(other)), r"--profile .*--dataset"
    )


def test_profile_of_another_model_is_refused(toy, store, tmp_path):
    pid = toy_profile(store, toy)
    other = tiny_model_dir(tmp_path / "other", seed=5)
    _refused(
        store, lambda: toy_config(toy, strategy="sgpo", profile=str(pid), model=str(other)), r"--profile .*--model"
    )


def test_a_plan_that_keeps_nothing_is_refused(toy, store):
    pid = toy_profile(store, toy)
    cfg = toy_config(toy, strategy="sgpo", profile=str(pid), plan={"trivial_threshold": 0.01, "unsolved_keep": 0.0})
    _refused(store, lambda: cfg, r"keeps no query.*--trivial-threshold")


def test_sgpo_needs_a_profile_and_an_unknown_one_is_named(toy, store):
    _refused(store, lambda: toy_config(toy, strategy="sgpo"), r"--profile")
    _refused(store, lambda: toy_config(toy, strategy="sgpo", profile="nope"), r"--profile nope")


@pytest.mark.parametrize(
    "knob,value,option",
    [
        ("steps", 0, "--steps"),
        ("flops_budget", 0.0, "--flops-budget"),
        ("batch_rollouts", 0, "--batch-rollouts"),
        ("strategy", "ppo", "--strategy"),
        ("temperature", 0.0, "--temperature"),
    ],
)
def test_out_of_range_knobs_name_their_option(toy, store, knob, value, option):
    _refused(store, lambda: toy_config(toy, **{knob: value}), option)


def test_a_flops_budget_spent_by_profiling_is_refused(toy, store):
    pid = toy_profile(store, toy)
    _refused(
        store,
        lambda: toy_config(toy, strategy="sgpo", profile=str(pid), steps=None, flops_budget=1.0),
        r"--flops-budget .*profiling",
    )


def test_run_names_are_unique(toy, store):
    train(toy_config(toy, steps=1, eval_every=0), store, name="once")
    with pytest.raises(ConfigError, match="--name 'once'"):
        prepare(toy_config(toy), store, name="once")
    assert len(store.runs()) == 1


def test_resume_of_a_finished_or_unknown_run_is_refused(toy, store):
    train(toy_config(toy, steps=1, eval_every=0), store, name="done")
    with pytest.raises(ConfigError, match="run .done. finished"):
        resume("done", store)
    with pytest.raises(SgpoError, match="no run 'ghost'"):
        resume("ghost", store)


def test_config_round_trips_and_lists_its_knobs():
    cfg = TrainConfig(strategy="dapo", steps=7, plan={"g_max": 4})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    names = {k.name for k in TrainConfig.specs()}
    assert {"strategy", "batch_rollouts", "refresh", "eval_every", "backend"} <= names
    with pytest.raises(ConfigError, match="unknown option"):
        TrainConfig.from_dict({"stepz": 3})
    assert TrainConfig().max_steps == 100 and TrainConfig(flops_budget=1e12).max_steps is None


def test_a_profile_sampled_unlike_training_is_named_in_a_warning_and_the_run_events(toy, store):
    pid = toy_profile(store, toy, temperature=0.7)
    prep = prepare(toy_config(toy, strategy="sgpo", profile=str(pid), steps=1, eval_every=0), store, name="w")
    assert len(prep.warnings) == 1 and "temperature=0.7 but training uses 1" in prep.warnings[0]
    same = prepare(
        toy_config(toy, strategy="sgpo", profile=str(pid), temperature=0.7, steps=1, eval_every=0), store, name="w2"
    )
    assert same.warnings == []
    train(toy_config(toy, strategy="sgpo", profile=str(pid), steps=1, eval_every=0), store, name="w3")
    run = store.find_run("w3")
    assert any(e["kind"] == "warning" and "temperature=0.7" in e["message"] for e in store.events(run["id"]))


def test_profiling_and_training_sample_alike_by_default():
    from sgpo.profile import ProfileConfig

    assert ProfileConfig().max_new_tokens == TrainConfig().max_new_tokens
    assert ProfileConfig().temperature == TrainConfig().temperature


def test_a_new_run_never_picks_up_another_stores_checkpoints(toy, tmp_path):
    first, second = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")  # one folder, so one checkpoints/
    train(toy_config(toy, steps=2), first, name="same")
    with pytest.raises(ConfigError, match=r"already holds checkpoints.*choose another name"):
        train(toy_config(toy, steps=2), second, name="same")
    assert second.runs() == []


def test_the_run_trains_exactly_the_plan_that_sgpo_plan_shows(toy, store, cli):
    """One Phase from planner to trainer: the phases `sgpo plan --json` lists are the ones the run stores
    and the sampler draws from (ids, group sizes, pacing), and the plan is not remade when the run starts."""
    from sgpo import runs
    from sgpo.train import setup
    from sgpo.train.loop import Trainer

    pid = toy_profile(store, toy)
    cfg = toy_config(toy, strategy="sgpo", profile=str(pid), plan={"group_rule": "pow2", "curriculum": "steps"})
    this_run = ["--run-steps", str(cfg.max_steps), "--run-batch-rollouts", str(cfg.batch_rollouts)]  # its forecast
    code, out, err = cli(
        "plan", pid, "--db", store.path, "--json", "--group-rule", "pow2", "--curriculum", "steps", *this_run
    )
    assert code == 0, err
    shown = json.loads(out)
    run = runs.create(cfg, store, name="exact")
    assert run["plan"]["counts"] == shown["counts"] and run["plan"]["forecast"] == shown["forecast"]
    prep = setup.load(store.find_run("exact"), store)
    ids = prep.profile_frame["id"].to_numpy()
    code, out, _ = cli(
        "plan",
        pid,
        "--db",
        store.path,
        "--json",
        "--group-rule",
        "pow2",
        "--curriculum",
        "steps",
        "--export-trl",
        store.path.parent / "trl",
    )  # the export lists each phase's queries
    manifest = json.loads((store.path.parent / "trl" / "manifest.json").read_text())
    assert [ph.group_size for ph in prep.phases] == [p["group_size"] for p in shown["phases"]]
    assert [ph.pacing for ph in prep.phases] == [p["pacing"] for p in shown["phases"]]
    for ph, exported in zip(prep.phases, manifest["phases"]):
        rows = [json.loads(line)["id"] for line in (store.path.parent / "trl" / exported["file"]).open()]
        assert ids[ph.positions].tolist() == rows
    trainer = Trainer(prep, store, run["id"], log=lambda msg: None)
    assert trainer.engine.sampler.phases is prep.phases  # the sampler runs these very objects


def test_the_old_run_name_option_still_works_with_a_deprecation_notice(toy, cli, db_path):
    from tests.toys import toy_cli_args

    code, out, err = cli(
        "train",
        "--strategy",
        "grpo",
        "--steps",
        1,
        "--eval-every",
        0,
        "--run-name",
        "legacy",
        "--db",
        db_path,
        *toy_cli_args(toy),
    )
    assert code == 0, err
    assert "--run-name is deprecated, use --name" in err
    assert Store(db_path).find_run("legacy")["status"] == "finished"
