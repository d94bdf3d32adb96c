"""The batch a plan is recommended from a measured critical-batch gauge: `sgpo plan PROFILE --pilot-run RUN` (an
earlier run's gauge) or `--pilot-steps K` (a throwaway pilot), in `sgpo plan --json` as forecast.recommended."""

from __future__ import annotations

import json

import pytest

from bench.synthetic import fill_profile
from sgpo import gauge, plans
from sgpo.errors import ConfigError
from sgpo.paths import checkpoint_root
from sgpo.plan import PlanConfig
from sgpo.store import Store
from sgpo.train import TrainConfig
from tests.toys import toy_profile


def _gauged_run(store: Store, name: str, *, b_informative: float, steps: int = 30, engine: str = "native") -> int:
    """A run whose steps logged the gauge: 256 rollouts a step, half of them informative, B_simple as given."""
    config = TrainConfig(strategy="grpo", engine=engine).to_dict()
    run = store.create_run(name=name, strategy="grpo", config=config)
    store.log_step(run, 0, 0, 0.0, {"initial": True})
    for step in range(1, steps + 1):
        row = {"rollouts": 256, "wasted_rollouts": 128}
        if engine == "native":
            row |= {"noise_g2": 1.0, "noise_trace": b_informative, "noise_informative_share": 0.5}
            row |= {"noise_scale_informative": b_informative, "noise_scale_rollouts": 2 * b_informative}
        store.log_step(run, step, 0, 0.1 * step, row)
    return run


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "sgpo.db")
    fill_profile(s, "p")
    return s


def test_a_run_with_a_gauge_recommends_its_critical_batch_over_the_plans_informative_share(store):
    _gauged_run(store, "baseline", b_informative=40.0)
    made = plans.make("p", PlanConfig(), store)
    rec = plans.recommend(made, store, pilot_run="baseline")
    run = made.plan.forecast["run"]["skip"]
    share = run["plan"]["expected_informative_rollouts"] / run["plan"]["rollouts"]
    grpo_share = run["baseline"]["expected_informative_rollouts"] / run["baseline"]["rollouts"]
    assert rec["informative_per_step"] == 40.0 and rec["from"] == "baseline" and rec["steps"] == 30
    assert rec["rollouts_per_step"] == pytest.approx(40.0 / share, abs=1)
    assert rec["grpo_rollouts_per_step"] == pytest.approx(40.0 / grpo_share, abs=1)
    assert rec["rollouts_per_step"] < rec["grpo_rollouts_per_step"]  # the plan wastes less, so its steps are smaller
    assert made.to_json()["forecast"]["recommended"] == rec  # what `sgpo plan --json` prints and --save keeps


def test_a_run_without_a_gauge_is_refused_naming_the_option(store):
    _gauged_run(store, "trl-run", b_informative=40.0, engine="trl")
    made = plans.make("p", PlanConfig(), store)
    with pytest.raises(ConfigError, match="--pilot-run trl-run: run 'trl-run' logged no critical-batch gauge") as err:
        plans.recommend(made, store, pilot_run="trl-run")
    assert "does not expose per-micro-batch gradients" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="--pilot-run nope: no run 'nope'"):
        plans.recommend(made, store, pilot_run="nope")
    with pytest.raises(ConfigError, match="give one of them"):
        plans.recommend(made, store, pilot_run="trl-run", pilot_steps=30)
    assert "recommended" not in made.plan.forecast


def test_a_profile_with_nothing_learnable_is_refused_naming_the_option(tmp_path):
    store = Store(tmp_path / "sgpo.db")
    fill_profile(store, "hard", skill=-5.0)  # every query unsolved: the plan keeps a tenth of them, none learnable
    made = plans.make("hard", PlanConfig(), store)
    assert made.plan.counts["learnable"] == 0
    with pytest.raises(ConfigError, match="--pilot-steps 30: the plan of profile 'hard' has nothing learnable"):
        plans.recommend(made, store, pilot_steps=30)
    assert store.runs() == []


def test_a_pilot_trains_the_plan_with_the_gauge_on_and_writes_nothing_to_the_store(toy, tmp_path):
    store = Store(tmp_path / "sgpo.db")
    pid = toy_profile(store, toy)
    made = plans.make(pid, PlanConfig(trivial_threshold=0.6, run_batch_rollouts=32), store)
    rec = plans.recommend(made, store, pilot_steps=gauge.MIN_STEPS, log=lambda m: None)
    assert rec["from"] == f"a {gauge.MIN_STEPS}-step pilot" and rec["state"] in gauge.STATES
    json.dumps(rec, allow_nan=False)
    assert store.runs() == [] and not any(checkpoint_root(store, "x").parent.glob("*"))
    with pytest.raises(ConfigError, match="--pilot-steps 5: the gauge needs 20 steps"):
        plans.recommend(made, store, pilot_steps=5)


def test_sgpo_plan_json_carries_the_recommended_batch_and_a_refusal_saves_nothing(store, cli, tmp_path):
    _gauged_run(store, "baseline", b_informative=40.0)
    code, out, err = cli("plan", "p", "--pilot-run", "baseline", "--json", "--db", store.path)
    assert code == 0, err
    rec = json.loads(out)["forecast"]["recommended"]
    assert rec["from"] == "baseline" and rec["rollouts_per_step"] > 0
    code, out, err = cli("plan", "p", "--pilot-run", "baseline", "--db", store.path)
    assert code == 0 and f"recommended batch: {rec['rollouts_per_step']:,} rollouts a step" in out
    assert f"under a FLOP budget: {rec['least_compute_rollouts_per_step']:,} rollouts a step or fewer" in out
    code, out, err = cli("plan", "p", "--pilot-run", "nope", "--save", "kept", "--db", store.path)
    assert code != 0 and "--pilot-run nope" in err and store.plans() == []
