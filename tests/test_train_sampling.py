"""Which queries each step trains, with which G: the strategy's sampler for our engine, the plan's phases
for TRL's (a small phase trains all its queries a step, G kept), and rollouts scored by the dataset's rule."""

from __future__ import annotations

import numpy as np
import pytest

from sgpo.data import load_dataset
from sgpo.errors import ConfigError
from sgpo.generate import Generation, Sample
from sgpo.plan import Phase
from sgpo.store import Store
from sgpo.tasks.rewards import SCORERS
from sgpo.train import batches, trl_config
from sgpo.train.rollouts import SIZE_SEED, Rollouts
from sgpo.train.sampling import make_sampler, trl_phases
from sgpo.train.setup import prepare
from tests.toys import toy_config, toy_profile


@pytest.fixture(scope="module")
def store(toy, tmp_path_factory):
    return Store(tmp_path_factory.mktemp("sampling") / "sgpo.db")


@pytest.fixture(scope="module")
def profile(toy, store) -> str:
    return str(toy_profile(store, toy))


@pytest.mark.parametrize(
    "strategy, kind",
    [("grpo", batches.GRPOSampler), ("dapo", batches.DAPOSampler), ("greso", batches.GRESOSampler)],
)
def test_each_strategy_gets_its_own_sampler(toy, store, strategy, kind):
    sampler = make_sampler(prepare(toy_config(toy, strategy=strategy), store, name=f"s-{strategy}"))
    assert type(sampler) is kind and sampler.per_batch == 32 // 4


def test_sgpo_samples_the_plan_it_was_given_and_replans_only_with_refresh(toy, store, profile):
    prep = prepare(toy_config(toy, strategy="sgpo", profile=profile), store, name="plan")
    sampler = make_sampler(prep)
    assert isinstance(sampler, batches.SGPOSampler) and sampler.phases is prep.phases and sampler.replan is None
    refreshed = make_sampler(prepare(toy_config(toy, strategy="sgpo", profile=profile, refresh=True), store, name="r"))
    frame = prep.profile_frame
    phases = refreshed.replan(frame["successes"].to_numpy(float), frame["samples"].to_numpy(float))
    assert [ph.group_size for ph in phases] == [ph.group_size for ph in prep.phases]  # same counts, same plan
    everything_solved = np.full(len(frame), 8.0)
    assert refreshed.replan(everything_solved, everything_solved) is None  # nothing left to learn: no new plan


def test_trl_phases_fit_a_small_phase_and_keep_full_batches_otherwise(toy, store, profile):
    small = prepare(
        toy_config(toy, engine="trl", strategy="sgpo", profile=profile, batch_rollouts=256), store, name="t"
    )
    for ph, spec in zip(small.phases, trl_phases(small)):
        assert spec["group_size"] == ph.group_size and spec["rows"].tolist() == small.rows[ph.positions].tolist()
        assert spec["prompts"] == min(ph.count, 256 // ph.group_size)
    grpo = prepare(toy_config(toy, engine="trl", strategy="grpo"), store, name="g")
    (one,) = trl_phases(grpo)
    assert one["prompts"] == 8 and one["shuffle"] and len(one["rows"]) == 40


def test_a_small_phase_rounds_up_so_the_processes_share_its_completions():
    assert trl_config.prompts_per_step(256, 8) == 32
    assert trl_config.prompts_per_step(256, 8, queries=20) == 20
    assert trl_config.prompts_per_step(256, 3, queries=5, world=2) == 6  # 18 completions, 9 per process
    assert trl_config.prompts_per_step(256, 8, queries=500) == 32


def test_what_trl_cannot_run_is_refused_naming_the_option():
    mixed = Phase(0, 0, np.arange(4), np.array([2, 4, 2, 4]), {"advance": "pass", "order": "shuffled"})
    with pytest.raises(ConfigError, match="plan phase 0 mixes several: use a phased curriculum"):
        trl_config.check_phases([mixed], 256)
    with pytest.raises(ConfigError, match="--batch-rollouts 27 gives 27 completions per step at G=3"):
        trl_config.check_batch(27, 3, world=2)
    trl_config.check_batch(36, 3, world=2)  # 12 prompts, 18 completions each
    big = Phase(1, 4, np.arange(100), np.full(100, 4), {"advance": "pass", "order": "shuffled"})
    assert trl_config.check_phases([big], 256) == []
    (said,) = trl_config.check_phases([big], 1024)
    assert "plan phase 1 (G=4) holds 100 queries" in said and "trains 100 prompts (400 rollouts) a step" in said


class Echo:
    """A generator whose i-th sample of every prompt is the prompt's first character when i is even."""

    backend = "fake"

    def __init__(self):
        self.calls = []

    def generate(self, prompts, *, n, temperature, max_new_tokens, seed):
        self.calls.append((list(prompts), n, seed))
        return [
            Generation(p, [1, 2], [Sample(p[0] if i % 2 == 0 else "?", [5, 2], True) for i in range(n)])
            for p in prompts
        ]


def test_rollouts_score_each_group_by_the_datasets_rule_one_generate_call_per_group_size(toy):
    dataset = load_dataset(str(toy.data))
    dataset.frame = dataset.frame.assign(answer=dataset.frame["prompt"].str[0])
    gen = Echo()
    groups = Rollouts(gen, dataset, temperature=1.0, max_new_tokens=1)([3, 5, 7], [4, 2, 4], seed=10)
    assert [g.query for g in groups] == [3, 5, 7] and [g.size for g in groups] == [4, 2, 4]
    assert all(g.rewards.tolist() == [1.0, 0.0] * (g.size // 2) for g in groups)
    assert [(n, seed) for _, n, seed in gen.calls] == [(2, 10 + 2 * SIZE_SEED), (4, 10 + 4 * SIZE_SEED)]
    assert gen.calls[1][0] == [dataset.frame["prompt"][3], dataset.frame["prompt"][7]]
    assert Rollouts(gen, dataset, temperature=1.0, max_new_tokens=1).score is SCORERS[dataset.reward]


@pytest.mark.parametrize(
    "knobs, words",
    [
        ({"strategy": "grpo", "batch_informative": 16}, "--batch-informative 16 sizes sgpo's steps"),
        ({"strategy": "sgpo", "engine": "trl", "batch_informative": 16}, "--batch-informative 16: TRL"),
        ({"strategy": "sgpo", "batch_rollouts": 64, "batch_informative": 80}, "above --batch-rollouts 64"),
    ],
)
def test_batch_informative_is_refused_where_it_cannot_size_a_step(knobs, words):
    from sgpo.train import TrainConfig

    with pytest.raises(ConfigError, match=words) as err:
        TrainConfig(**knobs)
    assert "\n" not in str(err.value)


def test_an_sgpo_run_sized_by_informative_rollouts_generates_fewer_of_them(toy, store, profile):
    from sgpo.runs import train

    fixed = train(toy_config(toy, strategy="sgpo", profile=profile, steps=3, eval_every=0), store, name="bi-fixed")
    sized = train(
        toy_config(toy, strategy="sgpo", profile=profile, steps=3, eval_every=0, batch_informative=4),
        store,
        name="bi-sized",
    )
    m_fixed = store.metrics_frame(fixed["run_id"]).iloc[1:]
    m_sized = store.metrics_frame(sized["run_id"]).iloc[1:]
    assert m_sized["expected_informative_rollouts"].ge(4).all() and "expected_informative_rollouts" not in m_fixed
    assert m_sized["rollouts"].sum() < m_fixed["rollouts"].sum()
    # the run's stored forecast lays out steps of about what they are expected to hold, not of the cap
    planned = {n: store.find_run(n)["plan"]["forecast"]["run"]["batch_rollouts"] for n in ("bi-fixed", "bi-sized")}
    assert planned["bi-fixed"] == 32 and planned["bi-sized"] < 32


@pytest.mark.parametrize("profiled", [{"queries": 16}, {"adaptive": True}], ids=["query-subset", "adaptive"])
def test_sgpo_trains_from_a_profiled_subset_or_an_adaptive_profile(toy, tmp_path, profiled):
    """`sgpo profile --queries K` (the subset the run will see) and `--adaptive` (samples until each query's bucket is
    settled) are profiles like any other: `sgpo train --profile` plans from them and trains only their queries."""
    from sgpo.runs import train

    store = Store(tmp_path / "sgpo.db")
    pid = toy_profile(store, toy, **profiled)
    frame = store.profile_frame(pid)
    if "queries" in profiled:
        assert len(frame) == 16
    else:
        assert frame["samples"].min() < frame["samples"].max() <= 8  # each query sampled until settled
    cfg = toy_config(toy, strategy="sgpo", profile=str(pid), steps=3, eval_every=0, force=True)
    result = train(cfg, store, name="from-profile")
    assert result["status"] == "finished" and result["flops_profile"] == store.find_profile(pid)["flops"] > 0
    trained = set(store.groups_frame(result["run_id"])["query_id"])
    assert trained and trained <= set(frame["id"])
