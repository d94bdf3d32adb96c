"""Batch building per strategy: budgets in rollouts, epochs, DAPO refills, curriculum pacing, refresh."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpo.plan import Phase, PlanConfig
from sgpo.plan.phases import pacing as plan_pacing
from sgpo.train.batches import DAPOSampler, GRPOSampler, SGPOSampler
from sgpo.train.grpo import Group


def phase(g, positions, sizes, curriculum="sequential", index=0, **knobs):
    """A planner Phase (the one the trainer runs), paced as PlanConfig(curriculum, **knobs) paces it."""
    return Phase(index, g, np.asarray(positions), np.asarray(sizes), plan_pacing(PlanConfig(curriculum=curriculum,
                                                                                          **knobs)))


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
    return [phase(2, [0, 1, 2, 3, 9], np.full(5, 2), pacing, 0, **kw), phase(4, [4, 5, 9], np.full(3, 4), pacing, 1, **kw),
            phase(8, [6, 7, 9], np.full(3, 8), pacing, 2, **kw)]


def _sgpo(pacing="sequential", budget=8, replan=None, **kw):
    return SGPOSampler(_phases(pacing, **kw), np.arange(10) + 100, budget, 0, successes=np.full(10, 4),
                       samples=np.full(10, 8), replan=replan)


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
@given(st.lists(st.tuples(st.sampled_from([2, 4, 8]), st.integers(1, 12)), min_size=1, max_size=4),
       st.integers(1, 40))
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
