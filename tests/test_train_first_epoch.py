"""A profile that pays for itself (sgpo --plan-from-first-epoch): GRPO over the first epoch, its groups stored as
the run's profile, the plan made from them trained from then on, and resume exact across the switch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from sgpo.errors import ConfigError
from sgpo.plan import make_plan
from sgpo.runs import resume, train
from sgpo.store import Store
from sgpo.train import TrainConfig
from sgpo.train.batches import COUNTS, FirstEpochSampler, SGPOSampler
from sgpo.train.first_epoch import planner
from sgpo.train.loop import Trainer
from sgpo.train.recorder import FIRST_EPOCH_EVENT
from sgpo.train.setup import prepare, run_plan_config
from tests.test_train_batches import fake_rollout, phase
from tests.toys import toy_config

KNOBS = dict(strategy="sgpo", plan_from_first_epoch=True, eval_every=0, force=True, plan={"trivial_threshold": 0.6})
EPOCH = 5  # the toy's 40 queries, 8 a step at G = 4 (32 rollouts a step)
COLS = ["reward_mean", "loss", "flops_total", "wasted_rollouts", "rollouts", "phase", "first_epoch"]


def test_the_first_epoch_is_grpo_over_everything_then_the_plan_made_from_its_groups_takes_over():
    made = []

    def plan(counts):
        made.append(counts.copy())
        c = dict(zip(COUNTS, counts))
        learnable = np.flatnonzero((c["successes"] > 0) & (c["successes"] < c["samples"]))
        sampler = SGPOSampler(
            [phase(4, learnable, np.full(len(learnable), 4))],
            np.arange(6),
            8,
            0,
            successes=c["successes"],
            samples=c["samples"],
        )
        return sampler, {"words": "planned"}

    success = {0: 1.0, 1: 0.0, 2: 0.5, 3: 0.5, 4: 1.0, 5: 0.0}
    s, roll = FirstEpochSampler(6, 8, 16, 0, plan), fake_rollout(success)
    first = []
    for step in range(3):  # 6 queries, 2 a step at G = 8
        batch = s.next_batch(step, roll, step)
        assert batch.info["first_epoch"] and batch.group_size == 8
        first += [g.query for g in batch.groups]
        s.observe(batch)
    assert sorted(first) == list(range(6)) and len(made) == 1 and s.events == ["planned"]
    c = dict(zip(COUNTS, made[0]))
    assert c["samples"].tolist() == [8] * 6 and c["successes"].tolist() == [8, 0, 4, 4, 8, 0]
    assert c["prompt_tokens"].tolist() == [1] * 6 and c["completion_tokens"].tolist() == [16] * 6
    assert batch.info["first_epoch_profile"] == {"words": "planned"}  # the recorder stores it with the step
    batch = s.next_batch(3, roll, 3)
    assert not batch.info["first_epoch"] and sorted(g.query for g in batch.groups) == [2, 3]
    s.observe(batch)
    again = FirstEpochSampler(6, 8, 16, 0, plan)
    again.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert again.plan is not None and again.state_dict() == s.state_dict()


@pytest.fixture(scope="module")
def straight(toy, tmp_path_factory):
    """An uninterrupted run that switches to its plan after the first epoch."""
    store = Store(tmp_path_factory.mktemp("straight") / "sgpo.db")
    result = train(toy_config(toy, steps=8, checkpoint_every=4, **KNOBS), store, name="e1")
    return store, result


def test_the_run_trains_grpo_for_one_epoch_then_its_plan_with_no_profiling_flops(straight):
    store, result = straight
    m = store.metrics_frame(result["run_id"]).iloc[1:]
    assert result["flops_profile"] == 0 and m["flops_profile"].eq(0).all()
    assert m["first_epoch"].tolist() == [True] * EPOCH + [False] * (8 - EPOCH)
    assert m["group_size"].iloc[:EPOCH].eq(4).all()
    events = [e for e in store.events(result["run_id"]) if e["kind"] == FIRST_EPOCH_EVENT]
    assert len(events) == 1 and events[0]["message"].startswith(f"step {EPOCH}: first epoch done")


def test_the_first_epoch_becomes_a_real_profile_of_the_run_and_its_plan_is_stored_with_it(straight, toy):
    store, result = straight
    run = store.find_run("e1")
    profile = store.find_profile("e1-epoch1")
    assert run["profile_id"] == profile["id"] and profile["status"] == "done" and profile["flops"] == 0
    assert json.loads(profile["settings"])["first_epoch_of"] == "e1"
    frame = store.profile_frame(profile["id"])
    assert len(frame) == 40 and frame["samples"].ge(4).all() and frame["samples"].sum() == EPOCH * 32
    groups = store.groups_frame(result["run_id"])
    first = groups[groups["step"] <= EPOCH]
    assert frame["successes"].sum() == first["successes"].sum()  # the profile is the first epoch's groups
    # the stored plan is the planner's own plan of that profile at the run's knobs, as `sgpo plan` makes it
    plan = json.loads(run["plan"]) if isinstance(run["plan"], str) else run["plan"]
    again = make_plan(frame, run_plan_config(TrainConfig.from_dict(run["config"])), n_params=profile["n_params"])
    assert plan["counts"] == json.loads(json.dumps(again.to_json(ids=False)["counts"]))
    assert [p["positions"] for p in plan["phases"]] == [ph.positions.tolist() for ph in again.phases]


def test_sgpo_trains_from_the_first_epochs_profile_like_any_profile(straight, toy):
    store, _ = straight
    again = train(
        toy_config(toy, strategy="sgpo", profile="e1-epoch1", steps=2, eval_every=0, force=True, plan=KNOBS["plan"]),
        store,
        name="from-e1",
    )
    assert again["status"] == "finished" and again["flops_profile"] == 0


def _weights(result) -> dict:
    return load_file(str(Path(result["checkpoint"]) / "model.safetensors"))


@pytest.mark.parametrize("stop_at", [EPOCH - 1, EPOCH, EPOCH + 1])
def test_stopped_and_resumed_across_the_switch_it_ends_as_the_uninterrupted_run(
    straight, toy, tmp_path, stop_after, stop_at
):
    store_a, done_a = straight
    store = Store(tmp_path / "sgpo.db")
    prep = prepare(toy_config(toy, steps=8, checkpoint_every=4, **KNOBS), store, name="e1")
    stopped = stop_after(Trainer(prep, store, store.create_run(**prep.run_row()), log=lambda m: None), stop_at).run()
    assert stopped["status"] == "stopped" and stopped["steps"] == stop_at
    done = resume("e1", store)
    assert done["status"] == "finished" and done["steps"] == 8
    wa, wb = _weights(done_a), _weights(done)
    assert all((wa[k] == wb[k]).all() for k in wa)
    ma, mb = store_a.metrics_frame(done_a["run_id"]), store.metrics_frame(done["run_id"])
    assert mb["step"].tolist() == list(range(9))
    np.testing.assert_allclose(ma[COLS].to_numpy(float), mb[COLS].to_numpy(float), equal_nan=True)
    assert store.find_run("e1")["plan"] == store_a.find_run("e1")["plan"]
    assert len(store.profiles()) == 1  # written once, whether or not the switch was replayed


def test_a_crash_after_the_switch_replays_it_and_keeps_one_profile(straight, toy, tmp_path):
    """Killed after the switch step was recorded but before its checkpoint: the resumed run replays the switch from
    the checkpoint at step 4, finds the profile it wrote by its key, and ends as the uninterrupted run."""
    store_a, done_a = straight
    store = Store(tmp_path / "sgpo.db")
    prep = prepare(toy_config(toy, steps=8, checkpoint_every=4, **KNOBS), store, name="e1")
    trainer = Trainer(prep, store, store.create_run(**prep.run_row()), log=lambda m: None)
    record = trainer.session.record

    def crash(*args, **kwargs):
        row = record(*args, **kwargs)
        if trainer.session.step == EPOCH + 1:
            raise KeyboardInterrupt  # as kill -9 would: no checkpoint after step 4
        return row

    trainer.session.record = crash
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert store.find_run("e1")["profile_id"] is not None  # the switch at step 5 was stored
    done = resume("e1", store)
    assert _weights(done).keys() == _weights(done_a).keys()
    assert all((_weights(done)[k] == _weights(done_a)[k]).all() for k in _weights(done))
    assert len(store.profiles()) == 1 and store.find_run("e1")["plan"] == store_a.find_run("e1")["plan"]


@pytest.mark.parametrize(
    "knobs, words",
    [
        ({"strategy": "grpo"}, "--plan-from-first-epoch makes an sgpo plan"),
        ({"engine": "trl"}, "--plan-from-first-epoch switches from GRPO"),
        ({"profile": "p"}, "--plan-from-first-epoch makes the run's profile"),
        ({"batch_rollouts": 4, "group_size": 8, "gauge_chunks": 0}, "--plan-from-first-epoch: the first epoch"),
    ],
)
def test_planning_from_the_first_epoch_is_refused_where_it_cannot_run(knobs, words):
    with pytest.raises(ConfigError, match=words) as err:
        TrainConfig(**{"strategy": "sgpo", "plan_from_first_epoch": True, **knobs})
    assert "\n" not in str(err.value)


def test_a_taken_profile_name_is_refused_before_the_run_exists(toy, tmp_path):
    from sgpo.data import load_dataset
    from sgpo.model import resolve_model
    from sgpo.profile import ProfileConfig, run_profile

    store = Store(tmp_path / "sgpo.db")
    config = ProfileConfig(samples=2, max_new_tokens=1, limit=4)
    run_profile(load_dataset(str(toy.data)), resolve_model(str(toy.model)), config, store, name="z-epoch1")
    with pytest.raises(ConfigError, match="--plan-from-first-epoch: a profile named 'z-epoch1' already exists"):
        prepare(toy_config(toy, steps=2, **KNOBS), store, name="z")
    assert store.runs() == []


def test_a_first_epoch_that_leaves_nothing_learnable_stops_the_run_naming_the_option(toy, tmp_path):
    store = Store(tmp_path / "sgpo.db")
    prep = prepare(toy_config(toy, steps=8, **{**KNOBS, "force": False}), store, name="flat")
    plan = planner(prep, lambda frame: None)
    counts = np.zeros((len(COUNTS), 40))
    counts[COUNTS.index("samples")] = counts[COUNTS.index("successes")] = 4  # every query solved every time
    with pytest.raises(ConfigError, match="--plan-from-first-epoch: the first epoch's profile keeps no query"):
        plan(counts)
    counts[COUNTS.index("successes"), :3] = 2  # three learnable queries: too few to plan on, unless --force
    with pytest.raises(ConfigError, match="--plan-from-first-epoch: the first epoch's profile has too few"):
        plan(counts)


@pytest.mark.slow
def test_kill_9_after_the_switch_then_resume_matches_an_uninterrupted_run(toy, tmp_path, cli):
    """A real process killed with SIGKILL between checkpoints, after the first epoch's switch: `--resume` replays
    from the checkpoint before it and ends with the uninterrupted run's metrics, plan and weights."""
    from tests.test_train_resume import _kill_when, sgpo
    from tests.toys import toy_cli_args

    args = ["--strategy", "sgpo", "--plan-from-first-epoch", "--force", "--trivial-threshold", 0.6]
    args += ["--steps", 10, "--eval-every", 0, "--checkpoint-every", 4, "--name", "k", *toy_cli_args(toy)]
    db_a, db_b = tmp_path / "a" / "sgpo.db", tmp_path / "b" / "sgpo.db"
    db_a.parent.mkdir(), db_b.parent.mkdir()  # apart: each store keeps its checkpoints beside it
    code, out, err = cli("train", *args, "--db", db_a, "--json")
    assert code == 0, err
    expected = json.loads(out)
    killed_at = _kill_when(sgpo("train", *args, "--db", db_b), db_b, EPOCH + 1)
    final = sgpo("train", "--resume", "k", "--db", db_b, "--json")
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)
    assert result["status"] == "finished" and result["steps"] == 10, killed_at
    wa, wb = _weights(expected), _weights(result)
    assert all((wa[k] == wb[k]).all() for k in wa)
    a, b = Store(db_a), Store(db_b)
    ma, mb = a.metrics_frame(1), b.metrics_frame(1)
    assert mb["step"].tolist() == list(range(11))
    np.testing.assert_array_equal(ma[COLS].to_numpy(float), mb[COLS].to_numpy(float))
    assert a.find_run("k")["plan"] == b.find_run("k")["plan"] and len(b.profiles()) == 1
