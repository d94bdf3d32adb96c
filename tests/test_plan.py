import dataclasses
import itertools
import json
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpo.errors import ConfigError, DataError
from sgpo.plan import (
    CURRICULA,
    GROUP_RULES,
    MIN_LEARNABLE_QUERIES,
    PHASED,
    PlanConfig,
    group_size_for,
    knapsack_group_sizes,
    make_plan,
    p_informative,
    success_estimate,
    too_few_learnable,
)
from sgpo.plan.beliefs import MAX_CLASSES, Drift, fitted_beliefs, point_beliefs
from sgpo.plan.forecast import forecast, scaled

FEW = settings(max_examples=50, deadline=None)


def profile(successes, samples=8, seed=0) -> pd.DataFrame:
    s = np.asarray(successes, dtype=int)
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(s.size)],
            "task": "arith",
            "difficulty": rng.integers(1, 4, s.size),
            "samples": samples,
            "successes": s,
            "p_hat": s / samples,
            "prompt_tokens": rng.integers(5, 300, s.size),
            "completion_tokens_mean": rng.uniform(1, 500, s.size),
            "extra": "ignored",
        }
    )


@st.composite
def profiles(draw, max_size=40):
    samples = draw(st.integers(1, 16))
    successes = draw(st.lists(st.integers(0, samples), min_size=1, max_size=max_size))
    return profile(successes, samples, seed=draw(st.integers(0, 3)))


@st.composite
def configs(draw):
    g_min = draw(st.integers(2, 4))
    return PlanConfig(
        trivial_threshold=draw(st.floats(0.05, 1.0)),
        unsolved_keep=draw(st.floats(0.0, 1.0)),
        group_rule=draw(st.sampled_from(GROUP_RULES)),
        g_min=g_min,
        g_max=g_min + draw(st.integers(0, 6)),
        fixed_group_size=draw(st.integers(2, 16)),
        success_estimate=draw(st.sampled_from(["raw", "posterior"])),
        curriculum=draw(st.sampled_from(CURRICULA)),
        seed=draw(st.integers(0, 5)),
    )


def kept_expected(frame, config):
    p = frame["p_hat"].to_numpy()
    n_unsolved = int((p == 0).sum())
    return int(((p > 0) & (p <= config.trivial_threshold)).sum()), round(config.unsolved_keep * n_unsolved)


def plan_or_none(frame, config, **kw):
    """The plan, or None when nothing is kept (then the ConfigError must say which knob to raise)."""
    learnable, unsolved = kept_expected(frame, config)
    if learnable + unsolved == 0:
        with pytest.raises(ConfigError, match="raise --(trivial-threshold|unsolved-keep)"):
            make_plan(frame, config, **kw)
        return None
    return make_plan(frame, config, **kw)


def trained(plan):
    """(position, G) of every group one pass trains, phase by phase."""
    return [(int(i), int(g)) for ph in plan.phases for i, g in zip(ph.positions, ph.group_sizes)]


# decisions -------------------------------------------------------------------------------------
@FEW
@given(profiles(), configs())
def test_trivial_queries_are_never_trained(frame, config):
    plan = plan_or_none(frame, config)
    if plan is None:
        return
    trivial = frame["p_hat"].to_numpy() > config.trivial_threshold
    q = plan.queries
    assert (q["decision"][trivial] == "trivial").all() and not (q["decision"][~trivial] == "trivial").any()
    assert (q["group_size"][trivial] == 0).all() and (q["phase"][trivial] == -1).all()
    assert not set(np.flatnonzero(trivial)) & {i for i, _ in trained(plan)}


@FEW
@given(profiles(), configs())
def test_exactly_round_alpha_of_unsolved_queries_are_kept(frame, config):
    plan = plan_or_none(frame, config)
    if plan is None:
        return
    n_unsolved = int((frame["p_hat"] == 0).sum())
    assert plan.counts["unsolved_kept"] == round(config.unsolved_keep * n_unsolved)
    assert plan.counts["unsolved_kept"] + plan.counts["unsolved_dropped"] == n_unsolved
    assert abs(plan.counts["unsolved_kept"] - config.unsolved_keep * n_unsolved) <= 0.5
    assert (plan.queries["decision"] == "unsolved_kept").sum() == plan.counts["unsolved_kept"]


@FEW
@given(profiles(), configs())
def test_learnable_group_sizes_stay_within_g_min_and_g_max(frame, config):
    plan = plan_or_none(frame, config)
    if plan is None:
        return
    g = plan.queries.loc[plan.queries["decision"] == "learnable", "group_size"]
    if config.group_rule == "fixed":
        assert (g == config.fixed_group_size).all()
    else:
        assert g.between(config.g_min, config.g_max).all()


@FEW
@given(profiles(), configs())
def test_learnable_trained_once_and_kept_unsolved_in_every_phase(frame, config):
    plan = plan_or_none(frame, config)
    if plan is None:
        return
    q = plan.queries
    seen = pd.Series([i for i, _ in trained(plan)]).value_counts()
    learnable = np.flatnonzero(q["decision"] == "learnable")
    unsolved = np.flatnonzero(q["decision"] == "unsolved_kept")
    assert set(seen.index) == set(learnable) | set(unsolved)
    assert (seen[learnable] == 1).all()
    assert (seen[unsolved] == len(plan.phases)).all()
    if config.curriculum in PHASED:
        for ph in plan.phases:  # unsolved queries train at the phase's G
            assert (ph.group_sizes == ph.group_size).all()
    assert (q["phase"][q["decision"].isin(["trivial", "unsolved_dropped"])] == -1).all()


@FEW
@given(profiles(), configs())
def test_sequential_phases_ascend_in_group_size_easy_to_hard(frame, config):
    config.curriculum = "sequential"
    plan = plan_or_none(frame, config)
    if plan is None:
        return
    sizes = [ph.group_size for ph in plan.phases]
    assert sizes == sorted(set(sizes)) and all(g > 0 for g in sizes)
    assert [ph.index for ph in plan.phases] == list(range(len(plan.phases)))
    learn = plan.queries["decision"] == "learnable"
    assert (plan.queries["group_size"][learn] == np.array(sizes)[plan.queries["phase"][learn]]).all()


def test_sorted_curriculum_is_one_pass_easy_first():
    frame = profile([1, 6, 0, 3, 5, 0, 2, 8])
    plan = make_plan(frame, PlanConfig(curriculum="sorted", unsolved_keep=1.0))
    (phase,) = plan.phases
    assert list(frame["p_hat"].to_numpy()[phase.positions]) == sorted(
        frame["p_hat"][frame["p_hat"] <= 0.75], reverse=True
    )
    assert phase.ids[0] == "q1" and phase.group_size == 0  # mixed G


def test_none_curriculum_shuffles_all_kept_queries_into_one_phase():
    frame = profile(np.arange(200) % 7)
    plan = make_plan(frame, PlanConfig(curriculum="none"))
    (phase,) = plan.phases
    kept = np.flatnonzero(plan.queries["decision"].isin(["learnable", "unsolved_kept"]))
    assert sorted(phase.positions) == list(kept) and list(phase.positions) != list(kept)


@FEW
@given(profiles(), configs())
def test_same_seed_gives_the_same_plan(frame, config):
    a, b = plan_or_none(frame, config), plan_or_none(frame, config)
    if a is None:
        return
    pd.testing.assert_frame_equal(a.queries, b.queries)
    assert [p.positions.tolist() for p in a.phases] == [p.positions.tolist() for p in b.phases]
    assert a.to_json() == b.to_json()


def test_different_seeds_choose_different_unsolved_queries():
    frame = profile([0] * 100 + [3] * 10)
    chosen = {
        tuple(np.flatnonzero(make_plan(frame, PlanConfig(seed=s)).queries["decision"] == "unsolved_kept"))
        for s in range(5)
    }
    assert len(chosen) > 1


# group sizes -----------------------------------------------------------------------------------
def test_pow2_and_inverse_group_sizes_match_exact_fractions():
    cases = [(s, n) for n in range(1, 65) for s in range(1, n + 1)]
    p = np.array([s / n for s, n in cases])
    for g_min, g_max in [(2, 8), (2, 64), (3, 12)]:
        pow2 = group_size_for(p, PlanConfig(group_rule="pow2", g_min=g_min, g_max=g_max))
        inverse = group_size_for(p, PlanConfig(group_rule="inverse", g_min=g_min, g_max=g_max))
        for (s, n), got_pow2, got_inverse in zip(cases, pow2, inverse):
            need = Fraction(n, s)  # exact 1/p
            smallest_pow2 = next(2**k for k in range(8) if 2**k >= need)
            assert got_pow2 == min(max(smallest_pow2, g_min), g_max), (s, n)
            assert got_inverse == min(max(-(-need.numerator // need.denominator), g_min), g_max), (s, n)


def test_paper_buckets_under_the_pow2_rule():
    p = np.array([1.0, 0.5, 0.49, 0.25, 0.24, 0.125, 0.01, 0.0])
    assert group_size_for(p, PlanConfig(group_rule="pow2")).tolist() == [2, 2, 4, 4, 8, 8, 8, 8]


def test_default_rule_is_informative_at_target_three_quarters():
    assert (PlanConfig().group_rule, PlanConfig().informative_target) == ("informative", 0.75)
    p = np.array([0.75, 0.6, 0.5, 0.3, 0.25, 0.125, 0.0])  # P_inf(0.6, 4) = 0.84; P_inf(0.25, 4) = 0.68
    assert group_size_for(p, PlanConfig()).tolist() == [8, 4, 4, 4, 8, 8, 8]


def test_informative_rule_takes_the_smallest_bucket_that_reaches_the_target():
    p = np.linspace(0.0, 1.0, 401)
    for g_min, g_max, target in [(2, 8, 0.75), (2, 16, 0.5), (3, 12, 0.9)]:
        config = PlanConfig(group_rule="informative", g_min=g_min, g_max=g_max, informative_target=target)
        got = group_size_for(p, config)
        buckets = sorted({g_min, g_max, *(2**k for k in range(1, 8) if g_min < 2**k < g_max)})
        for q, g in zip(p, got):
            reaching = [b for b in buckets if 1 - q**b - (1 - q) ** b >= target - 1e-9]
            assert g == (reaching[0] if reaching else g_max), (q, target)
    # p = 1/2 is informative with chance 1 - 2 / 2^G: 0.5 at G=2, 0.875 at G=4
    assert group_size_for([0.5], PlanConfig(group_rule="informative", informative_target=0.75)).tolist() == [4]
    assert group_size_for([0.5], PlanConfig(group_rule="informative", informative_target=0.5)).tolist() == [2]


def test_informative_rule_forecasts_fewer_wasted_rollouts_than_the_paper_rule():
    rng = np.random.default_rng(0)
    frame = profile(rng.integers(1, 8, size=500))  # learnable only: 1..7 successes of 8
    paper = make_plan(frame, PlanConfig(group_rule="pow2", unsolved_keep=0.0))
    informative = make_plan(frame, PlanConfig(group_rule="informative", unsolved_keep=0.0))
    assert (
        informative.forecast["plan"]["forecast_wasted_fraction"]
        < paper.forecast["plan"]["forecast_wasted_fraction"] - 0.1
    )


def test_posterior_estimate_is_the_beta_mean_and_decisions_stay_raw():
    frame = profile([0, 4, 8])
    config = PlanConfig(
        success_estimate="posterior", prior_a=1.0, prior_b=3.0, trivial_threshold=0.9, unsolved_keep=0.0
    )
    assert np.allclose(success_estimate(frame, config), [1 / 12, 5 / 12, 9 / 12])
    plan = make_plan(frame, config)
    assert plan.queries["decision"].tolist() == ["unsolved_dropped", "learnable", "trivial"]
    assert plan.queries["group_size"].tolist() == [0, 4, 0]  # from p_est 5/12, not p_hat 1/2


def brute_force(p, budget, g_min, g_max):
    choices = [g for g in itertools.product(range(g_min, g_max + 1), repeat=len(p)) if sum(g) <= budget]
    return max(p_informative(p, np.array(g)).sum() for g in choices)


@FEW
@given(
    st.lists(st.sampled_from([0.0, 0.05, 0.2, 0.25, 0.5, 0.6, 0.9, 1.0]) | st.floats(0, 1), min_size=1, max_size=4),
    st.integers(2, 3),
    st.integers(0, 4),
    st.integers(0, 12),
)
def test_knapsack_matches_brute_force_on_small_cases(p, g_min, extra, spare):
    p, g_max = np.array(p), g_min + extra
    budget = len(p) * g_min + spare
    sizes = knapsack_group_sizes(p, budget, g_min, g_max)
    assert sizes.sum() <= budget and sizes.min() >= g_min and sizes.max() <= g_max
    assert p_informative(p, sizes).sum() == pytest.approx(brute_force(p, budget, g_min, g_max), abs=1e-12)


@FEW
@given(profiles(), st.integers(0, 400))
def test_knapsack_plan_never_exceeds_the_rollout_budget(frame, extra):
    config = PlanConfig(group_rule="knapsack", unsolved_keep=0.0, trivial_threshold=1.0)
    n = int((frame["p_hat"] > 0).sum())
    if n == 0:
        return
    config.rollout_budget = n * config.g_min + extra
    plan = make_plan(frame, config)
    assert plan.forecast["plan"]["rollouts"] <= config.rollout_budget
    learn = plan.queries["decision"] == "learnable"
    assert plan.queries["group_size"][learn].between(config.g_min, config.g_max).all()


def test_knapsack_default_budget_is_what_pow2_spends_and_buys_at_least_as_much_signal():
    frame = profile(np.random.default_rng(1).binomial(8, 0.3, 300))
    pow2 = make_plan(frame, PlanConfig(group_rule="pow2", unsolved_keep=0.0))
    knap = make_plan(frame, PlanConfig(group_rule="knapsack", unsolved_keep=0.0))
    assert knap.forecast["plan"]["rollouts"] <= pow2.forecast["plan"]["rollouts"]

    def informative(plan):
        return plan.forecast["plan"]["forecast_informative_fraction"] * plan.forecast["plan"]["groups"]

    assert informative(knap) >= informative(pow2) - 1e-9


def test_knapsack_budget_below_g_min_per_query_names_rollout_budget():
    with pytest.raises(ConfigError, match="raise --rollout-budget to at least"):
        make_plan(profile([1, 2, 3]), PlanConfig(group_rule="knapsack", rollout_budget=5))


# forecast --------------------------------------------------------------------------------------
@FEW
@given(profiles(), configs(), st.sampled_from([None, 7, 1_500_000_000]), st.sampled_from([0.0, 1e6]))
def test_still_forecast_on_the_plans_p_matches_a_loop_over_groups(frame, config, n_params, flops_profile):
    """With the policy standing still and p_est taken as exact, the one-pass forecast is the plug-in
    P_inf(p_est, G) summed over the groups one pass trains."""
    config = dataclasses.replace(config, drift=0.0, forecast_prior="plan")
    plan = plan_or_none(frame, config, n_params=n_params, flops_profile=flops_profile)
    if plan is None:
        return
    p = success_estimate(frame, config)
    tokens = frame["prompt_tokens"].to_numpy() + frame["completion_tokens_mean"].to_numpy()
    fixed = [(i, config.fixed_group_size) for i in range(len(frame))]
    fc = plan.forecast
    for side, groups in (("plan", trained(plan)), ("baseline", fixed)):
        rollouts = sum(g for _, g in groups)
        p_inf = [1 - p[i] ** g - (1 - p[i]) ** g for i, g in groups]
        wasted = sum(g * (1 - x) for (_, g), x in zip(groups, p_inf))
        tok = sum(g * tokens[i] for i, g in groups)
        got = fc[side]
        assert got["rollouts"] == rollouts and got["groups"] == len(groups)
        assert got["forecast_informative_fraction"] == pytest.approx(sum(p_inf) / len(groups), rel=1e-9, abs=1e-12)
        assert got["expected_wasted_rollouts"] == pytest.approx(wasted, rel=1e-9, abs=1e-9)
        assert got["forecast_wasted_fraction"] == pytest.approx(wasted / rollouts, rel=1e-9, abs=1e-12)
        if n_params is None:
            assert got["flops"] is got["flops_rollout"] is got["flops_train"] is None
        else:
            assert got["flops_rollout"] == pytest.approx(2 * n_params * tok, rel=1e-9)
            assert got["flops_train"] == pytest.approx(6 * n_params * tok, rel=1e-9)
            profiling = flops_profile if side == "plan" else 0.0
            assert got["flops"] == pytest.approx(8 * n_params * tok + profiling, rel=1e-9)
    bare = fc["baseline"]["tokens"] / fc["plan"]["tokens"]
    assert fc["ratio_without_profile"] == pytest.approx(bare)
    if n_params is not None:
        assert fc["ratio"] == pytest.approx(fc["baseline"]["flops"] / fc["plan"]["flops"])
    assert fc["flops_profile"] == flops_profile


def test_ratio_without_n_params_is_given_only_when_profiling_is_free():
    frame = profile([1, 2, 3, 0, 8])
    free = make_plan(frame).forecast
    assert free["plan"]["flops"] is None and free["ratio"] == free["ratio_without_profile"] > 1
    assert make_plan(frame, flops_profile=1e9).forecast["ratio"] is None


def test_to_json_is_plain_json_with_counts_phases_and_forecast():
    plan = make_plan(
        profile([0] * 10 + [1, 2, 3, 5, 8]), PlanConfig(group_rule="pow2", unsolved_keep=0.2), n_params=1000
    )
    data = json.loads(json.dumps(plan.to_json()))
    assert {k: data["counts"][k] for k in ("trivial", "learnable", "unsolved_kept", "unsolved_dropped")} == {
        "trivial": 1,
        "learnable": 4,
        "unsolved_kept": 2,
        "unsolved_dropped": 8,
    }
    assert [(ph["group_size"], len(ph["queries"])) for ph in data["phases"]] == [(2, 3), (4, 4), (8, 3)]
    for side in ("plan", "baseline"):
        assert {
            "rollouts",
            "flops",
            "flops_rollout",
            "flops_train",
            "forecast_informative_fraction",
            "expected_wasted_rollouts",
            "forecast_wasted_fraction",
        } <= set(data["forecast"][side])
    assert {"flops_profile", "ratio", "ratio_without_profile", "run"} <= set(data["forecast"])
    json.dumps(plan.to_json(), allow_nan=False)  # strict JSON: no NaN or Infinity anywhere
    run = data["forecast"]["run"]
    assert {"steps", "flops", "batch_rollouts", "drift", "prior", "phases", "skip", "train_all"} <= set(run)
    for behaviour in ("skip", "train_all"):
        assert {
            "plan",
            "baseline",
            "flops_profile_share",
            "break_even_step",
            "reduction_factor",
            "pays",
            "verdict",
        } <= set(run[behaviour])
        for side in ("plan", "baseline"):
            assert {
                "steps",
                "rollouts",
                "expected_informative_rollouts",
                "flops",
                "flops_per_informative_rollout",
                "forecast_informative_fraction",
                "forecast_wasted_fraction",
            } <= set(run[behaviour][side])


# the forecast of a planned run ---------------------------------------------------------------------
def flat(p_hats, samples=8, tokens=10.0) -> pd.DataFrame:
    """A profile whose queries all cost the same tokens, so FLOPs ratios can be worked out by hand."""
    frame = profile((np.asarray(p_hats) * samples).round().astype(int), samples)
    return frame.assign(prompt_tokens=tokens / 2, completion_tokens_mean=tokens / 2)


def fitted(frame, config=None, **kw):
    """The plan's forecast made with the profile's counts (the fitted prior), as make_plan makes it."""
    config = config or PlanConfig()
    plan = make_plan(frame, config, **kw)
    tokens = frame["prompt_tokens"].to_numpy(float) + frame["completion_tokens_mean"].to_numpy(float)
    counts = (frame["successes"].to_numpy(float), frame["samples"].to_numpy(float))
    return forecast(
        plan.phases,
        plan.queries["p_est"].to_numpy(),
        tokens,
        config,
        kw.get("n_params"),
        kw.get("flops_profile", 0.0),
        counts=counts,
    )


def test_make_plan_forecasts_with_the_prior_fitted_to_the_profile():
    assert make_plan(profile([1, 2, 3, 0, 8])).forecast["run"]["prior"] == "fitted"
    assert make_plan(profile([1, 2, 3, 0, 8]), PlanConfig(forecast_prior="plan")).forecast["run"]["prior"] == "plan"


def test_fitted_prior_recovers_the_true_posterior_mean_of_a_beta_population():
    rng = np.random.default_rng(0)
    s = rng.binomial(8, rng.beta(2.0, 5.0, 20_000))
    beliefs = fitted_beliefs(s, np.full(s.size, 8))
    got = beliefs.success()[beliefs.classes]
    truth = (2 + s) / 15  # Beta(2, 5) prior, s of 8: the posterior mean is (2 + s) / (7 + 8)
    assert np.abs(got - truth).mean() < 0.01
    for k in range(6):  # the classes with a thousand queries or more; rarer ones are fitted more loosely
        assert got[s == k].mean() == pytest.approx((2 + k) / 15, abs=0.01)


def test_fractional_counts_of_a_decayed_posterior_are_grouped_into_few_classes():
    rng = np.random.default_rng(3)
    samples = 8 + rng.uniform(0, 40, 50_000)
    successes = samples * rng.uniform(0, 1, samples.size)
    beliefs = fitted_beliefs(successes, samples)
    assert beliefs.n_classes <= MAX_CLASSES and beliefs.classes.size == samples.size
    assert np.allclose(beliefs.weights.sum(axis=1), 1.0)


def test_fitted_prior_forecasts_what_fresh_rollouts_give_where_plug_in_p_hat_does_not():
    """Selecting on a noisy p_hat regresses to the mean: the plan's first phase, forecast from the
    profile, is compared with the expectation over the queries' true success rates."""
    rng = np.random.default_rng(2)
    p_true = rng.beta(0.4, 0.6, 20_000)
    frame = profile(rng.binomial(8, p_true), 8)
    config = PlanConfig(group_rule="pow2", drift=0.0)
    plan = make_plan(frame, config)
    first = plan.phases[0]
    truth = p_informative(p_true[first.positions], first.group_size).mean()
    plug_in = p_informative(frame["p_hat"].to_numpy()[first.positions], first.group_size).mean()
    shrunk = fitted(frame, config)["run"]["phases"][0]["forecast_informative_fraction"]
    assert abs(shrunk - truth) < 0.015 < abs(plug_in - truth)


def test_drift_grows_with_the_log_of_the_steps_and_speed_rescales_time():
    drift = Drift(shift=0.5, spread=0.2, tau=10.0)
    assert drift.moved(0) == 0 and drift.moved(10) == pytest.approx(np.log(2))
    assert scaled(drift, 2.0).moved(30) == pytest.approx(drift.moved(60))
    assert scaled(drift, 0.0).still and not drift.still


def test_drifted_informative_chance_is_the_expectation_over_the_shift_and_spread():
    beliefs = point_beliefs(np.array([0.2, 0.5]))
    drift = Drift(shift=1.0, spread=0.8, tau=10.0)
    got = beliefs.weights @ beliefs.informative(4, [10.0], drift)[:, 0]  # ln(1 + 10/10) = ln 2 of the drift
    x = np.linspace(-8, 8, 20_001)
    for p, value in zip([0.2, 0.5], got):
        logit = np.log(p / (1 - p)) + np.log(2) * (1.0 + 0.8 * x)
        density = np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)
        expected = np.trapezoid(p_informative(1 / (1 + np.exp(-logit)), 4) * density, x)
        assert value == pytest.approx(expected, abs=2e-3)


def test_a_drifting_policy_turns_middle_queries_trivial_so_later_steps_are_less_informative():
    frame = flat([0.5] * 200 + [0.0] * 10)
    config = PlanConfig(curriculum="steps", steps_per_phase=400, run_steps=400, forecast_prior="plan")
    still = fitted(frame, dataclasses.replace(config, drift=0.0))["run"]["skip"]["plan"]
    moving = fitted(frame, dataclasses.replace(config, drift=5.0))["run"]["skip"]["plan"]
    assert moving["forecast_informative_fraction"] < still["forecast_informative_fraction"]


def test_reduction_factor_is_the_waste_ceiling_under_both_engine_behaviours():
    """Half the queries never solved (w = 1/2 of GRPO's groups wasted) and half at p = 1/2, equal tokens,
    no profiling cost: a plan that drops the unsolved saves 1/(1-w) = 2x when every rollout is trained
    and (2/(1-w) + 6)/8 per informative rollout when zero-advantage groups skip training."""
    frame = flat([0.0] * 64 + [0.5] * 64)
    config = PlanConfig(group_rule="fixed", unsolved_keep=0.0, drift=0.0, forecast_prior="plan", run_steps=20)
    run = fitted(frame, config, n_params=1000)["run"]
    inf = p_informative(0.5, 8)
    assert run["train_all"]["reduction_factor"] == pytest.approx(2.0, rel=1e-9)
    skip = (2 / (0.5 * inf) + 6) / (2 / inf + 6)
    assert run["skip"]["reduction_factor"] == pytest.approx(skip, rel=1e-9)
    assert run["skip"]["pays"] and run["train_all"]["pays"] and run["skip"]["break_even_step"] == 1
    for behaviour in ("skip", "train_all"):
        plan, base = run[behaviour]["plan"], run[behaviour]["baseline"]
        assert plan["steps"] == base["steps"] == 20 and plan["rollouts"] == base["rollouts"] == 20 * 256
        assert plan["flops"] / plan["expected_informative_rollouts"] == pytest.approx(
            plan["flops_per_informative_rollout"]
        )
        assert "sGPO pays" in run[behaviour]["verdict"]


def test_break_even_step_is_where_profiling_has_paid_for_itself():
    frame = flat([0.0] * 64 + [0.5] * 64)
    config = PlanConfig(group_rule="fixed", unsolved_keep=0.0, drift=0.0, forecast_prior="plan", run_steps=50)
    n_params, per_step = 1000, 1000 * 8 * 10 * 256  # train_all: 8 units a token, 10 tokens, 256 rollouts
    profiling = 7.5 * per_step  # GRPO needs 2x the plan's FLOPs a step: it breaks even after 7.5 steps
    run = fitted(frame, config, n_params=n_params, flops_profile=profiling)["run"]["train_all"]
    assert run["break_even_step"] == 8
    assert run["reduction_factor"] == pytest.approx(2 * 50 * per_step / (50 * per_step + profiling))
    assert run["flops_profile_share"] == pytest.approx(profiling / (50 * per_step + profiling))
    short = fitted(frame, dataclasses.replace(config, run_steps=5), n_params=n_params, flops_profile=profiling)["run"][
        "train_all"
    ]
    assert not short["pays"] and short["break_even_step"] == 8
    assert "will not pay with every rollout trained" in short["verdict"] and "break even at step 8" in short["verdict"]


def test_a_flops_budget_sets_each_sides_steps_profiling_included():
    frame = flat([0.0] * 64 + [0.5] * 64)
    per_step = 1000 * 8 * 10 * 256
    config = PlanConfig(
        group_rule="fixed", unsolved_keep=0.0, drift=0.0, forecast_prior="plan", run_flops=20.5 * per_step
    )
    run = fitted(frame, config, n_params=1000, flops_profile=5 * per_step)["run"]
    assert run["steps"] is None and run["flops"] == 20.5 * per_step
    assert run["train_all"]["plan"]["steps"] == 16 and run["train_all"]["baseline"]["steps"] == 21
    assert run["skip"]["baseline"]["steps"] > 21  # skipping training buys GRPO more steps of the budget
    spent = fitted(frame, config, n_params=1000, flops_profile=21 * per_step)["run"]["skip"]
    assert spent["plan"]["steps"] == 0 and not spent["pays"] and "profiling" in spent["verdict"]


def test_nothing_learnable_says_so_in_the_verdict():
    frame = flat([0.0] * 10 + [1.0] * 10)
    run = fitted(frame, PlanConfig(unsolved_keep=0.5), n_params=1000)["run"]
    for behaviour in ("skip", "train_all"):
        assert run[behaviour]["pays"] is False and run[behaviour]["verdict"].startswith("nothing learnable")


def test_without_a_model_size_the_run_gives_fractions_and_no_verdict_on_flops():
    frame = profile([1, 2, 3, 0, 8] * 10)  # 30 learnable queries: enough to forecast (MIN_LEARNABLE_QUERIES)
    free = fitted(frame)["run"]["skip"]  # no profiling cost: ratios still hold in units of n_params
    assert free["reduction_factor"] is not None and free["plan"]["flops"] is None
    costly = fitted(frame, flops_profile=1e9)["run"]["skip"]
    assert costly["pays"] is None and costly["reduction_factor"] is None
    assert "model size is unknown" in costly["verdict"]
    assert costly["plan"]["forecast_informative_fraction"] is not None


@FEW
@given(
    profiles(),
    configs(),
    st.sampled_from([None, 1000]),
    st.sampled_from([0.0, 1e9]),
    st.integers(1, 300),
    st.sampled_from([0.0, 1.0, 3.0]),
)
def test_run_forecast_is_consistent(frame, config, n_params, flops_profile, run_steps, drift):
    config = dataclasses.replace(config, run_steps=run_steps, drift=drift)
    if plan_or_none(frame, config) is None:
        return
    run = fitted(frame, config, n_params=n_params, flops_profile=flops_profile)["run"]
    json.dumps(run, allow_nan=False)
    for behaviour in ("skip", "train_all"):
        out = run[behaviour]
        for side in ("plan", "baseline"):
            s = out[side]
            assert s["steps"] == run_steps
            assert 0 <= s["expected_informative_rollouts"] <= s["rollouts"] + 1e-6
            assert 0 <= (s["forecast_informative_fraction"] or 0) <= 1 + 1e-9
        assert isinstance(out["verdict"], str) and out["verdict"]
        assert out["pays"] in (True, False, None)
        if out["reduction_factor"] is not None:
            assert out["pays"] == (out["reduction_factor"] > 1 and "nothing learnable" not in out["verdict"])
    assert sum(ph["steps"] for ph in run["phases"]) == run_steps


def test_all_trained_costs_at_least_what_skipping_costs():
    frame = profile([0, 1, 2, 3, 4, 5, 6, 7, 8] * 20)
    run = fitted(frame, n_params=10**6, flops_profile=1e12)["run"]
    for side in ("plan", "baseline"):
        assert run["train_all"][side]["flops"] >= run["skip"][side]["flops"]
    assert run["train_all"]["reduction_factor"] >= run["skip"]["reduction_factor"]


def test_editing_the_plan_never_changes_the_profile_frame():
    frame = profile([1, 2, 3, 0])
    before = frame.copy()
    plan = make_plan(frame)
    for col, value in (("id", "x"), ("task", "x"), ("difficulty", 99), ("p_hat", 0.9), ("p_est", 0.9)):
        plan.queries.loc[0, col] = value
    pd.testing.assert_frame_equal(frame, before)


# knobs and errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "knobs, field, advice",
    [
        ({"trivial_threshold": 0.0}, "trivial_threshold", "raise it"),
        ({"trivial_threshold": 1.2}, "trivial_threshold", "lower it"),
        ({"unsolved_keep": -0.1}, "unsolved_keep", "raise it"),
        ({"unsolved_keep": 1.5}, "unsolved_keep", "lower it"),
        ({"g_min": 5, "g_max": 4}, "g_min", "lower --g-min or raise --g-max"),
        ({"g_min": 1}, "g_min", "raise it"),
        ({"group_rule": "cube"}, "group_rule", "choose one of them"),
        ({"curriculum": "random"}, "curriculum", "choose one of them"),
        ({"g_max": 4.5}, "g_max", "whole number"),
        ({"prior_a": 0.0}, "prior_a", "raise it"),
        ({"run_steps": 0}, "run_steps", "raise it"),
        ({"run_flops": 0.0}, "run_flops", "raise it"),
        ({"run_batch_rollouts": 0}, "run_batch_rollouts", "raise it"),
        ({"drift": -1.0}, "drift", "raise it"),
        ({"forecast_prior": "flat"}, "forecast_prior", "choose one of them"),
    ],
)
def test_bad_knobs_raise_config_error_naming_the_knob_and_the_fix(knobs, field, advice):
    with pytest.raises(ConfigError, match="--" + field.replace("_", "-")) as err:
        PlanConfig(**knobs)
    assert advice in str(err.value)


def test_knobs_set_after_construction_are_checked_by_make_plan():
    config = PlanConfig()
    config.unsolved_keep = 2.0
    with pytest.raises(ConfigError, match="--unsolved-keep"):
        make_plan(profile([1, 2]), config)


def test_all_trivial_profile_says_raise_trivial_threshold():
    with pytest.raises(ConfigError, match="all 3 queries are trivial.*raise --trivial-threshold"):
        make_plan(profile([7, 8, 8]))


def test_all_unsolved_and_none_kept_says_raise_unsolved_keep():
    with pytest.raises(ConfigError, match="raise --unsolved-keep"):
        make_plan(profile([0, 0, 0]), PlanConfig(unsolved_keep=0.0))


def test_empty_profile_and_missing_columns_are_user_errors():
    with pytest.raises(ConfigError, match="no queries"):
        make_plan(profile([]))
    with pytest.raises(DataError, match="p_hat"):
        make_plan(profile([1, 2]).drop(columns="p_hat"))


def test_cli_args_list_only_non_defaults_and_reproduce_the_config():
    assert PlanConfig().cli_args() == []
    config = PlanConfig(trivial_threshold=0.6, group_rule="knapsack", g_max=16, prior_b=2.5)
    args = config.cli_args()
    assert args[:4] == ["--trivial-threshold", "0.6", "--group-rule", "knapsack"]
    kinds = {k.name: k.type for k in PlanConfig.specs()}
    parsed = {}
    for flag, value in zip(args[::2], args[1::2]):
        name = flag[2:].replace("-", "_")
        parsed[name] = {"int": int, "float": float}.get(kinds[name], str)(value)
    assert PlanConfig.from_dict(parsed) == config
    assert PlanConfig.from_dict(config.to_dict()) == config


def test_from_dict_rejects_unknown_knobs():
    with pytest.raises(ConfigError, match="unknown option.*--threshold"):
        PlanConfig.from_dict({"threshold": 0.5})


def test_plan_knobs_describe_every_field_with_help_and_range():
    knobs = {k.name: k for k in PlanConfig.specs()}
    assert list(knobs) == list(PlanConfig().to_dict())
    assert all(k.help and k.type in ("int", "float", "str") for k in knobs.values())
    assert knobs["trivial_threshold"].default == 0.75 and knobs["trivial_threshold"].max == 1.0
    assert knobs["group_rule"].choices == GROUP_RULES
    assert "Beta(1, 1)" in knobs["success_estimate"].help


def test_one_pass_is_whole_however_many_steps_it_takes():
    frame = flat([0.25, 0.5] * 10_500)
    config = PlanConfig(run_batch_rollouts=8, fixed_group_size=8)  # GRPO's pass: 21,000 steps of one group
    fc = make_plan(frame, config).forecast
    assert fc["baseline"]["groups"] == 21_000 and fc["baseline"]["rollouts"] == 168_000
    assert fc["plan"]["groups"] == 21_000


# verdicts that hold: what the forecast rests on ---------------------------------------------------------
def gsm8k_like(lucky: int, n: int = 1319) -> pd.DataFrame:
    """A starter-on-GSM8K profile: every query unsolved but `lucky` ones, each seen solved once in 8."""
    return flat([1 / 8] * lucky + [0.0] * (n - lucky))


def forecast_rows(fc: dict) -> list:
    """What the plan printer and the Plan page show per engine behaviour (they read the forecast dict)."""
    run = fc["run"]
    return [
        (b, run[b]["reduction_factor"], run[b]["break_even_step"], run[b]["pays"], run[b]["verdict"])
        + tuple(run[b][side]["flops_per_informative_rollout"] for side in ("plan", "baseline"))
        for b in ("skip", "train_all")
    ]


def test_one_lucky_query_gives_no_saving_no_break_even_and_says_too_few_to_forecast():
    plan = make_plan(gsm8k_like(1), n_params=10**6, flops_profile=1e9)
    fc = plan.forecast
    assert fc["basis"] == {
        "learnable_queries": 1,
        "samples": 8.0,
        "successes": 1.0,
        "min_learnable_queries": MIN_LEARNABLE_QUERIES,
        "too_few": True,
        "reason": fc["basis"]["reason"],
    }
    assert fc["run"]["basis"] == fc["basis"] and "rests on 1 learnable query (1 successes in 8" in fc["basis"]["reason"]
    for behaviour, reduction, even, pays, words, *per_rollout in forecast_rows(fc):
        assert reduction is None and even is None and pays is False and per_rollout == [None, None], behaviour
        assert words.startswith("too few learnable queries to forecast") and "cannot be told" in words
        assert "sGPO pays" not in words and "break even at" not in words
    assert plan.too_few_learnable().startswith("too few learnable queries: 1 of 1,319 queries has 0 < p_hat")
    assert "--force" in plan.too_few_learnable()
    json.dumps(plan.to_json(ids=False), allow_nan=False)


def test_an_all_unsolved_plan_says_nothing_learnable_in_every_row():
    plan = make_plan(gsm8k_like(0), n_params=10**6, flops_profile=1e9)  # 10% of the unsolved kept
    assert plan.counts["learnable"] == 0 and plan.counts["unsolved_kept"] == 132
    for behaviour, reduction, even, pays, words, *per_rollout in forecast_rows(plan.forecast):
        assert (reduction, even, pays, per_rollout) == (None, None, False, [None, None]), behaviour
        assert words.startswith("nothing learnable")
    assert plan.too_few_learnable().startswith("nothing learnable: 0 of 1,319 queries have 0 < p_hat")


def test_the_forecast_is_given_from_the_stated_count_of_learnable_queries_on():
    for learnable, forecast_given in ((MIN_LEARNABLE_QUERIES - 1, False), (MIN_LEARNABLE_QUERIES, True)):
        frame = flat([0.5] * learnable + [0.0] * 200)
        config = PlanConfig(group_rule="fixed", unsolved_keep=0.0, drift=0.0, forecast_prior="plan")
        plan = make_plan(frame, config, n_params=1000)
        assert plan.forecast["basis"]["too_few"] is not forecast_given
        assert (plan.too_few_learnable() is None) is forecast_given
        assert all((row[1] is not None) is forecast_given for row in forecast_rows(plan.forecast)), learnable


def test_the_training_check_reads_a_plan_as_a_run_stores_it_and_as_older_records_hold_it():
    plan = make_plan(gsm8k_like(3), n_params=10**6)
    record = json.loads(json.dumps(plan.to_record()))
    assert (
        too_few_learnable(record) == plan.too_few_learnable() and "3 of 1,319 queries have" in plan.too_few_learnable()
    )
    older = {**record, "forecast": {k: v for k, v in record["forecast"].items() if k != "basis"}}
    assert too_few_learnable(older).startswith("too few learnable queries: 3 of 1,319")
    assert too_few_learnable(make_plan(flat([0.5] * 40), n_params=1000).to_record()) is None


@FEW
@given(profiles(), configs(), st.sampled_from([None, 1000]), st.sampled_from([0.0, 1e9]))
def test_no_row_of_a_forecast_without_a_basis_contradicts_it(frame, config, n_params, flops_profile):
    plan = plan_or_none(frame, config, n_params=n_params, flops_profile=flops_profile)
    if plan is None:
        return
    basis = plan.forecast["basis"]
    assert basis["learnable_queries"] == plan.counts["learnable"]
    assert (
        basis["too_few"] == (plan.counts["learnable"] < MIN_LEARNABLE_QUERIES) == (plan.too_few_learnable() is not None)
    )
    if basis["too_few"]:
        for _behaviour, reduction, even, pays, words, *per_rollout in forecast_rows(plan.forecast):
            assert reduction is None and even is None and pays is False and per_rollout == [None, None]
            assert words.startswith(("nothing learnable", "too few learnable queries to forecast"))
