"""The training loop on a tiny model: metrics every step, FLOPs accounting, strategies, stop and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from sgpo.accounting import reduction_factor
from sgpo.model import resolve_model
from sgpo.runs import resume, train
from sgpo.store import Store
from sgpo.train.loop import Trainer
from sgpo.train.setup import prepare
from tests.toys import toy_config, toy_profile


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "db" / "sgpo.db")


def _weights(path):
    return load_file(str(next(iter(sorted(path.glob("*.safetensors"))))))


def test_grpo_logs_every_step_and_accounts_flops_by_the_book(toy, store):
    result = train(toy_config(toy, steps=4), store, name="g")
    m = store.metrics_frame(result["run_id"])
    assert m["step"].tolist() == [0, 1, 2, 3, 4]
    n = resolve_model(str(toy.model)).n_params
    last = m.iloc[-1]
    assert last["flops_rollout"] == pytest.approx(
        2 * n * m["tokens_prompt"].sum() + 2 * n * m["tokens_completion"].sum()
    )
    assert last["flops_train"] == pytest.approx(6 * n * m["tokens_trained"].sum())
    assert last["flops_total"] == pytest.approx(last["flops_rollout"] + last["flops_train"])
    assert last["flops_profile"] == 0
    assert m["rollouts"].iloc[1:].eq(32).all() and m["queries"].iloc[1:].eq(8).all()
    wasted = m["wasted_rollouts"].iloc[1:].sum()
    assert result["run_wasted_fraction"] == pytest.approx(wasted / 128)
    # skipped groups cost no training FLOPs: trained tokens only come from informative groups
    informative_rollouts = (m["informative_groups"].iloc[1:] * 4).sum()
    assert m["trained_sequences"].iloc[1:].sum() == informative_rollouts == 128 - wasted
    e = store.evals_frame(result["run_id"])
    assert e["step"].tolist() == [0, 2, 4] and e["flops"].gt(0).all()
    # every evaluation holds the run's totals under both engine behaviours, as its step's metrics row does
    at = m.set_index("step").loc[e["step"]]
    for column in ("flops_total_skip", "flops_total_train_all", "flops_total"):
        assert e[column].tolist() == pytest.approx(at[column].tolist()), column
    for behaviour in ("skip", "train_all"):  # what the one reduction factor reads off evaluations
        assert reduction_factor([e], [e], behaviour=behaviour).target == pytest.approx(e["accuracy"].iloc[-1])
    assert result["eval_accuracy"] == pytest.approx(e["accuracy"].iloc[-1])
    assert {"run_id", "steps", "flops_total", "run_wasted_fraction", "eval_accuracy"} <= set(result)
    assert store.find_run("g")["status"] == "finished"


def test_grpo_moves_the_policy_towards_reward(toy, store):
    result = train(toy_config(toy, steps=6, eval_every=6), store, name="learn")
    assert result["eval_accuracy"] > result["eval_accuracy_initial"]


def test_dapo_trains_on_informative_groups_only_and_counts_dropped_ones(toy, store):
    result = train(toy_config(toy, strategy="dapo", steps=3, eval_every=0), store, name="d")
    m = store.metrics_frame(result["run_id"]).iloc[1:]
    assert (m["groups"] >= m["queries"]).all()
    assert (m["trained_sequences"] == m["queries"] * 4).all()  # every kept group is informative
    assert (m["rollouts"] == m["groups"] * 4).all() and m["wasted_rollouts"].sum() > 0
    assert m["dapo_rounds"].ge(1).all()


def test_sgpo_counts_profiling_from_step_zero_and_trains_the_plan_easy_first(toy, store):
    pid = toy_profile(store, toy)
    flops_profile = store.find_profile(pid)["flops"]
    cfg = toy_config(
        toy,
        strategy="sgpo",
        profile=str(pid),
        steps=3,
        eval_every=0,
        plan={"trivial_threshold": 0.6, "group_rule": "pow2"},
    )  # the paper's buckets 2, 4, 8
    result = train(cfg, store, name="s")
    m = store.metrics_frame(result["run_id"])
    assert m["flops_profile"].eq(flops_profile).all()
    assert m["flops_total"].iloc[0] == pytest.approx(flops_profile)
    assert result["flops_total"] == pytest.approx(flops_profile + result["flops_rollout"] + result["flops_train"])
    first = m.iloc[1]
    assert first["group_size"] == 2 and first["rollouts"] <= 32 and first["phase"] == 0
    assert m["group_size"].iloc[1:].is_monotonic_increasing


def test_sgpo_refresh_replans_from_the_posterior(toy, store):
    pid = toy_profile(store, toy)
    cfg = toy_config(
        toy,
        strategy="sgpo",
        profile=str(pid),
        steps=4,
        eval_every=0,
        refresh=True,
        refresh_every=2,
        plan={"trivial_threshold": 0.6},
    )
    result = train(cfg, store, name="r")
    m = store.metrics_frame(result["run_id"])
    events = [e for row in m.get("plan_events", []) if isinstance(row, list) for e in row]
    assert any("re-plan" in e for e in events)  # on the step's own row: a replayed step cannot repeat them
    assert m["replans"].max() >= 1


def test_kl_adds_a_reference_forward_to_training_flops(toy, store):
    result = train(toy_config(toy, steps=2, eval_every=0, beta=0.1), store, name="kl")
    m = store.metrics_frame(result["run_id"]).iloc[1:]
    n = result["flops_train"] / m["tokens_trained"].sum()
    assert n == pytest.approx(
        8 * (result["flops_rollout"] / (2 * m[["tokens_prompt", "tokens_completion"]].sum().sum()))
    )
    assert m["kl"].notna().any()


def test_same_seed_same_weights(toy, tmp_path):
    a = train(toy_config(toy, steps=3, eval_every=0), Store(tmp_path / "a" / "db"), name="x")
    b = train(toy_config(toy, steps=3, eval_every=0), Store(tmp_path / "b" / "db"), name="x")
    wa, wb = _weights(Path(a["checkpoint"])), _weights(Path(b["checkpoint"]))
    assert all((wa[k] == wb[k]).all() for k in wa)


def test_stop_checkpoints_then_resume_matches_an_uninterrupted_run(toy, tmp_path, stop_after):
    cfg = dict(steps=5, eval_every=2, checkpoint_every=2)
    straight = train(toy_config(toy, **cfg), Store(tmp_path / "a" / "db"), name="x")
    store = Store(tmp_path / "b" / "db")
    prep = prepare(toy_config(toy, **cfg), store, name="x")
    stopped = stop_after(Trainer(prep, store, store.create_run(**prep.run_row())), 3).run()
    assert stopped["status"] == "stopped" and stopped["steps"] == 3
    assert Path(stopped["checkpoint"]).name == "step-000003"
    assert store.find_run("x")["status"] == "stopped"
    done = resume("x", store)
    assert done["status"] == "finished" and done["steps"] == 5
    wa, wb = _weights(Path(straight["checkpoint"])), _weights(Path(done["checkpoint"]))
    assert all((wa[k] == wb[k]).all() for k in wa)
    ma, mb = Store(tmp_path / "a" / "db").metrics_frame(1), store.metrics_frame(1)
    assert mb["step"].tolist() == list(range(6))
    cols = ["reward_mean", "loss", "flops_total", "wasted_rollouts", "run_wasted_fraction"]
    np.testing.assert_allclose(ma[cols].to_numpy(float), mb[cols].to_numpy(float), equal_nan=True)
    assert done["flops_total"] == pytest.approx(straight["flops_total"])
    assert done["eval_accuracy"] == straight["eval_accuracy"]


def test_a_run_in_a_worker_thread_trains_without_signal_handlers(toy, store):
    import threading

    out = {}
    worker = threading.Thread(target=lambda: out.update(train(toy_config(toy, steps=1, eval_every=0), store, name="t")))
    worker.start()
    worker.join(120)
    assert out["status"] == "finished" and out["steps"] == 1


def test_flops_budget_stops_at_the_first_step_that_reaches_it(toy, store):
    one = train(toy_config(toy, steps=2, eval_every=0), store, name="probe")
    per_step = one["flops_total"] / 2
    budget = 2.5 * per_step
    result = train(toy_config(toy, steps=None, flops_budget=budget, eval_every=0), store, name="budget")
    totals = store.metrics_frame(result["run_id"])["flops_total"].tolist()
    assert result["status"] == "finished" and result["steps"] >= 3
    assert totals[-2] < budget <= totals[-1]  # checked before each step: the last one may overshoot


def test_the_held_out_set_is_scored_by_its_own_reward_rule(toy, store, tmp_path):
    import json

    from sgpo.tasks.rewards import SCORERS

    gsm = tmp_path / "gsm.jsonl"  # GSM8K's format: math-verify scores it, whatever the training set uses
    gsm.write_text("".join(json.dumps({"question": f"{i}+1=", "answer": f"so #### {i + 1}"}) + "\n" for i in range(4)))
    prep = prepare(toy_config(toy, eval_dataset=str(gsm)), store, name="mixed")
    assert prep.dataset.reward == "exact" and prep.eval_dataset.reward == "math"
    trainer = Trainer(prep, store, store.create_run(**prep.run_row()), log=lambda msg: None)
    score, eval_score = trainer.engine.rollouts.score, trainer.evaluator.score
    assert score is SCORERS["exact"] and eval_score is SCORERS["math"]
    assert eval_score("the answer is 3", "3") == 1.0 and score("the answer is 3", "3") == 0.0


def test_skipping_zero_advantage_groups_changes_the_cost_not_the_run(toy, store):
    """What bench/regimes.py relies on to read both engine behaviours off one run: at beta = 0 a run that
    skips zero-advantage groups samples and scores exactly what a run that trains them does, and its
    `tokens_update` prices the second behaviour (profile + generation + 6 x params x tokens_update); every
    row and every evaluation carries both prices, flops_total_skip and flops_total_train_all."""
    skip = train(toy_config(toy, steps=3, eval_every=0), store, name="skip")
    full = train(toy_config(toy, steps=3, eval_every=0, skip_zero_advantage=False), store, name="full")
    a, b = store.metrics_frame(skip["run_id"]).iloc[1:], store.metrics_frame(full["run_id"]).iloc[1:]
    assert a["wasted_rollouts"].sum() > 0  # there were groups to skip
    for column in ("rollouts", "wasted_rollouts", "reward_mean", "tokens_prompt", "tokens_completion", "tokens_update"):
        assert a[column].tolist() == pytest.approx(b[column].tolist()), column
    assert (a["tokens_trained"] < a["tokens_update"]).any() and (b["tokens_trained"] == b["tokens_update"]).all()
    n = resolve_model(str(toy.model)).n_params
    priced = a["flops_total"] - a["flops_train"] + 6 * n * a["tokens_update"].cumsum()
    assert priced.tolist() == pytest.approx(b["flops_total"].tolist())
    assert a["loss"].tolist() == pytest.approx(b["loss"].tolist(), rel=1e-4, abs=1e-7)
    # every row prices its run both ways: each run's other behaviour is the other run's actual spend
    assert a["flops_total_train_all"].tolist() == pytest.approx(b["flops_total"].tolist())
    assert b["flops_total_skip"].tolist() == pytest.approx(a["flops_total"].tolist())
    assert a["flops_total_skip"].tolist() == pytest.approx(a["flops_total"].tolist())
    assert b["flops_total_train_all"].tolist() == pytest.approx(b["flops_total"].tolist())
    assert (a["tokens_informative"] == a["tokens_trained"]).all()  # what skipping trains: the informative groups
    assert a["tokens_informative"].tolist() == b["tokens_informative"].tolist()
