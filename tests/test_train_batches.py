"""Batch building per strategy: budgets in rollouts, epochs, DAPO refills, curriculum pacing, refresh."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpo.plan import Phase, PlanConfig
from sgpo.plan.phases import pacing as plan_pacing
from sgpo.train.batches import Batch, DAPOSampler, GRESOSampler, GRPOSampler, SGPOSampler
from sgpo.train.grpo import Group


def phase(g, positions, sizes, curriculum="sequential", index=0, **knobs):
    """A planner Phase (the one the trainer runs), paced as PlanConfig(curriculum, **knobs) paces it."""
    return Phase(
        index, g, np.asarray(positions), np.asarray(sizes), plan_pacing(PlanConfig(curriculum=curriculum, **knobs))
    )


def fake_rollout(success: dict[int, float] | None = None):
    """Groups whose rewards are all 1 for rows in `success` with p=1, all 0 with p=0, else alternating."""
    calls = []

    def rollout(rows, sizes, seed):
        calls.append((list(rows), list(sizes), seed))
        out = []
        for r, g in zip(rows, sizes):
            p = (success or {}).get(r, 0.5)
            rewards = np.full(g, float(p)) if p in (0.0, 1.0) else (np.arange(g) % 2).astype(float)
            out.append(Group(query=r, prompt_ids=[1], completions=[[5, 2]] * g, rewards=rewards))
        return out

    rollout.calls = calls
    return rollout


def test_grpo_visits_every_query_once_per_epoch_in_a_new_order():
    s = GRPOSampler(10, group_size=4, batch_rollouts=8, seed=0)
    roll = fake_rollout()
    seen = [g.query for step in range(5) for g in s.next_batch(step, roll, step).groups]
    assert sorted(seen) == list(range(10)) and len(roll.calls[0][0]) == 2
    second = [g.query for step in range(5) for g in s.next_batch(step, roll, step).groups]
    assert sorted(second) == list(range(10)) and second != seen


def test_batch_is_a_rollout_budget():
    assert GRPOSampler(100, 2, 256, 0).per_batch == 128
    assert GRPOSampler(100, 8, 256, 0).per_batch == 32


def test_dapo_refills_until_the_batch_holds_only_informative_groups():
    success = {r: (1.0 if r % 3 == 0 else 0.5) for r in range(30)}
    s = DAPOSampler(30, group_size=4, batch_rollouts=16, seed=0, max_rounds=10)
    batch = s.next_batch(1, fake_rollout(success), 0)
    assert len(batch.groups) == 4 and all(g.informative for g in batch.groups)
    assert batch.dropped and not any(g.informative for g in batch.dropped)
    assert batch.info["dapo_rounds"] >= 2


def test_dapo_stops_at_the_round_cap_with_a_partial_batch():
    s = DAPOSampler(30, group_size=4, batch_rollouts=16, seed=0, max_rounds=3)
    batch = s.next_batch(1, fake_rollout({r: 0.0 for r in range(30)}), 0)
    assert batch.groups == [] and len(batch.dropped) == 4 + 4 + 4 and batch.info["dapo_rounds"] == 3


def _phases(pacing="sequential", **kw):
    return [
        phase(2, [0, 1, 2, 3, 9], np.full(5, 2), pacing, 0, **kw),
        phase(4, [4, 5, 9], np.full(3, 4), pacing, 1, **kw),
        phase(8, [6, 7, 9], np.full(3, 8), pacing, 2, **kw),
    ]


def _sgpo(pacing="sequential", budget=8, replan=None, **kw):
    return SGPOSampler(
        _phases(pacing, **kw),
        np.arange(10) + 100,
        budget,
        0,
        successes=np.full(10, 4),
        samples=np.full(10, 8),
        replan=replan,
    )


def test_sequential_curriculum_runs_each_phase_for_one_pass_easy_to_hard_then_cycles():
    s, roll = _sgpo(), fake_rollout()
    trace = []
    for step in range(8):
        batch = s.next_batch(step, roll, step)
        trace.append((batch.phase, batch.group_size, sorted(g.query - 100 for g in batch.groups)))
        assert sum(g.size for g in batch.groups) <= 8
        s.observe(batch)
    assert [t[0] for t in trace] == [0, 0, 1, 1, 2, 2, 2, 0]  # the last batch of a pass holds what is left
    assert sorted(q for t in trace[:2] for q in t[2]) == [0, 1, 2, 3, 9]  # one pass, unsolved 9 included
    assert trace[2][1] == 4 and trace[4][1] == 8


def test_steps_pacing_moves_on_after_steps_per_phase_and_wraps_passes():
    s, roll = _sgpo("steps", steps_per_phase=4), fake_rollout()
    phases = []
    for step in range(9):
        batch = s.next_batch(step, roll, step)
        assert len(batch.groups) == (4 if batch.group_size == 2 else 2 if batch.group_size == 4 else 1)
        phases.append(batch.phase)
        s.observe(batch)
    assert phases == [0, 0, 0, 0, 1, 1, 1, 1, 2]


def test_plateau_pacing_moves_on_when_the_reward_stops_rising():
    s, roll = _sgpo("plateau", plateau_patience=2, plateau_min_delta=0.01), fake_rollout()
    phases = []
    for step in range(4):
        batch = s.next_batch(step, roll, step)
        phases.append(batch.phase)
        s.observe(batch)  # reward is flat at 0.5: best at step 0, then two steps without a gain
    assert phases == [0, 0, 0, 1]


def test_state_dict_round_trip_continues_with_the_same_batches():
    a, roll = _sgpo(), fake_rollout()
    for step in range(2):
        a.observe(a.next_batch(step, roll, step))
    b = _sgpo()
    b.load_state_dict(a.state_dict())
    for step in range(2, 7):
        ba, bb = a.next_batch(step, roll, step), b.next_batch(step, roll, step)
        assert [g.query for g in ba.groups] == [g.query for g in bb.groups] and ba.phase == bb.phase
        a.observe(ba)
        b.observe(bb)


def test_refresh_updates_the_posterior_and_replans_at_phase_boundaries():
    seen = []

    def replan(successes, samples):
        seen.append((successes.copy(), samples.copy()))
        trivial = successes / samples > 0.55
        keep = np.flatnonzero(~trivial)
        return [phase(4, keep, np.full(keep.size, 4))]

    s = _sgpo(replan=replan)
    roll = fake_rollout({r: 1.0 for r in range(100, 110)})  # every rollout succeeds: queries turn trivial
    for step in range(2):
        s.observe(s.next_batch(step, roll, step))
    assert len(seen) == 1  # phase 0 ended after its pass (two batches)
    succ, n = seen[0]
    assert succ[0] == 4 + 2 and n[0] == 8 + 2 and succ[6] == 4  # profile counts + the group's outcomes
    assert s.replans == 1 and 0 not in s.phases[0].positions  # query 0 became trivial and left
    assert any("re-plan" in e for e in s.events)


def test_one_query_is_taken_even_when_its_group_exceeds_the_budget():
    s = _sgpo(budget=1)
    batch = s.next_batch(0, fake_rollout(), 0)
    assert len(batch.groups) == 1


@pytest.mark.parametrize("pacing", ["sorted", "none"])
def test_mixed_group_sizes_in_one_phase_fill_the_budget_by_rollouts(pacing):
    mixed = phase(0, np.arange(6), [2, 2, 4, 4, 8, 8], pacing)
    s = SGPOSampler([mixed], np.arange(6), 8, 0, successes=np.zeros(6), samples=np.full(6, 8))
    batch = s.next_batch(0, fake_rollout(), 0)
    assert sum(g.size for g in batch.groups) <= 8
    if pacing == "sorted":
        assert [g.size for g in batch.groups] == [2, 2, 4]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([2, 4, 8]), st.integers(1, 12)), min_size=1, max_size=4), st.integers(1, 40))
def test_sequential_pass_trains_each_member_once_within_the_budget(spec, budget):
    phases, start = [], 0
    for g, n in spec:
        phases.append(phase(g, np.arange(start, start + n), np.full(n, g), index=len(phases)))
        start += n
    s = SGPOSampler(phases, np.arange(start), budget, 0, successes=np.zeros(start), samples=np.ones(start))
    seen, roll = [], fake_rollout()
    while s.cycle == 0:
        batch = s.next_batch(0, roll, 0)
        assert len(batch.groups) == 1 or sum(g.size for g in batch.groups) <= budget
        assert {g.size for g in batch.groups} == {phases[batch.phase].group_size}
        seen += [g.query for g in batch.groups]
        s.observe(batch)
    assert sorted(seen) == list(range(start))


# greso -------------------------------------------------------------------------------------------
def _greso(n=20, g=4, budget=16, **kw):
    return GRESOSampler(n, group_size=g, batch_rollouts=budget, seed=0, **kw)


def _epoch(s, roll, step=0):
    """Batches until the sampler's epoch turns over; every group observed. Returns the queries trained."""
    start, seen = s.epoch, []
    while s.epoch == start:
        batch = s.next_batch(step, roll, step)
        s.observe(batch)
        seen += [g.query for g in batch.groups]
    return seen, batch


def test_greso_first_epoch_is_grpo_exactly():
    greso, grpo, roll = _greso(), GRPOSampler(20, 4, 16, 0), fake_rollout({r: 0.0 for r in range(10)})
    for step in range(5):
        a, b = greso.next_batch(step, roll, step), grpo.next_batch(step, roll, step)
        greso.observe(a)
        assert [g.query for g in a.groups] == [g.query for g in b.groups] and a.info["greso_skipped"] == 0


def test_greso_skips_queries_whose_groups_had_zero_variance_and_fills_the_batch_with_others():
    dead = {r: (0.0 if r < 10 else 1.0) for r in range(15)}  # 0-9 never solved, 10-14 always solved
    s, roll = _greso(explore=0.1), fake_rollout(dead)
    _epoch(s, roll)  # every query seen once: 15 of 20 now have a zero-variance streak
    batches = []
    for step in range(10):
        batch = s.next_batch(step, roll, step)
        s.observe(batch)
        batches.append(batch)
    trained = [g.query for b in batches for g in b.groups]
    assert all(len(b.groups) == 4 for b in batches)  # skipped queries cost no rollout: the budget is spent
    assert sum(q >= 15 for q in trained) > 0.7 * len(trained)  # the five informative queries dominate
    assert sum(b.info["greso_skipped"] for b in batches) == batches[-1].info["greso_skipped_total"] > 0
    assert all(q < 20 for q in trained)


def test_greso_never_skips_a_query_whose_last_group_was_informative():
    s, roll = _greso(explore=0.05), fake_rollout()  # every group alternates: all informative
    _epoch(s, roll)
    seen, _ = _epoch(s, roll)
    assert sorted(seen) == list(range(20)) and s.skipped_total == 0


def test_greso_streaks_count_zero_variance_groups_in_a_row_by_kind():
    s = _greso(n=3)

    def group(q, rewards):
        return Group(query=q, prompt_ids=[1], completions=[[2]] * len(rewards), rewards=np.asarray(rewards, float))

    for rewards in ([1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]):
        s.observe(Batch(groups=[group(0, rewards), group(1, [0, 1, 0, 1])]))
    assert s.streak.tolist() == [3, 0, 0] and s.easy.tolist() == [False, False, False]
    s.observe(Batch(groups=[group(0, [0, 1, 1, 1])]))
    assert s.streak[0] == 0


def test_greso_exploration_adapts_toward_the_target_share_after_the_first_epoch():
    s, roll = _greso(explore=0.5, target=0.25), fake_rollout({r: 1.0 for r in range(20)})  # everything easy
    _epoch(s, roll)
    assert s.p_easy == s.p_hard == 0.5  # no adaptation in the first epoch
    for step in range(5):
        s.observe(s.next_batch(step, roll, step))
    assert s.p_easy == pytest.approx(0.45)  # all-success groups above target/3: skip more of them
    assert s.p_hard == pytest.approx(0.55)  # no all-failure groups, below 2 * target/3: skip fewer
    for step in range(200):
        s.observe(s.next_batch(step, roll, step))
    assert s.p_easy == pytest.approx(GRESOSampler.LOWEST) and s.p_hard == pytest.approx(GRESOSampler.HIGHEST)


def test_greso_state_dict_round_trip_skips_the_same_queries():
    dead = {r: (0.0 if r % 2 else 0.5) for r in range(20)}
    a, roll = _greso(explore=0.3), fake_rollout(dead)
    _epoch(a, roll)
    for step in range(3):
        a.observe(a.next_batch(step, roll, step))
    b = _greso(explore=0.3)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    for step in range(3, 12):
        ba, bb = a.next_batch(step, roll, step), b.next_batch(step, roll, step)
        assert [g.query for g in ba.groups] == [g.query for g in bb.groups]
        assert ba.info == bb.info
        a.observe(ba)
        b.observe(bb)


def test_greso_takes_queries_anyway_after_an_epoch_of_skips_in_one_batch():
    s, roll = _greso(n=8, g=4, budget=8, explore=0.05), fake_rollout({r: 0.0 for r in range(8)})
    for _ in range(6):
        _epoch(s, roll)  # long all-failure streaks: keep chance at the 0.01 floor
    batch = s.next_batch(0, roll, 0)
    assert len(batch.groups) == 2 and batch.info["greso_skipped"] <= 8


def test_batch_informative_sizes_steps_by_expected_informative_rollouts():
    # ten G=4 queries: five seen 4 in 8 (informative most of the time), five seen 0 in 8 (almost never)
    ph = [phase(4, np.arange(10), np.full(10, 4))]
    successes = np.array([4, 0] * 5)
    fixed = SGPOSampler(ph, np.arange(10), 40, 0, successes=successes, samples=np.full(10, 8))
    sized = SGPOSampler(ph, np.arange(10), 40, 0, successes=successes, samples=np.full(10, 8), batch_informative=6.0)
    roll = fake_rollout()
    assert len(fixed.next_batch(1, roll, 0).groups) == 10  # the rollout budget holds them all
    batch = sized.next_batch(1, roll, 0)
    expected = batch.info["expected_informative_rollouts"]
    assert expected >= 6.0 and len(batch.groups) < 10
    # it stops at the first query that reaches the target: without that one the step would fall short
    last = batch.groups[-1].query
    assert expected - 4 * sized.p_informative(last, 4) < 6.0
    p_mid, p_none = sized.p_informative(0, 4), sized.p_informative(1, 4)
    assert 0.5 < p_mid < 1.0 and p_none < 0.2 and p_mid > 3 * p_none


def test_batch_informative_keeps_batch_rollouts_as_the_cap():
    ph = [phase(4, np.arange(10), np.full(10, 4))]
    s = SGPOSampler(
        ph, np.arange(10), 12, 0, successes=np.zeros(10), samples=np.full(10, 8), batch_informative=12.0
    )  # nothing is expected to be informative: only the cap ends the step
    batch = s.next_batch(1, fake_rollout(), 0)
    assert sum(g.size for g in batch.groups) == 12 and batch.info["expected_informative_rollouts"] < 12


def test_batch_informative_follows_the_counts_of_a_replan():
    plan = lambda: [phase(4, np.arange(8), np.full(8, 4))]  # noqa: E731
    s = SGPOSampler(
        plan(),
        np.arange(8),
        8,
        0,
        successes=np.zeros(8),
        samples=np.full(8, 8),
        replan=lambda successes, samples: plan(),
        refresh_every=1,
        batch_informative=4.0,
    )
    before = s.p_informative(0, 4)
    batch = s.next_batch(1, fake_rollout(), 0)  # alternating rewards: half the samples of these queries succeed
    s.observe(batch)
    assert s.replans == 1
    seen = batch.groups[0].query
    assert s.p_informative(seen, 4) > before + 0.3
