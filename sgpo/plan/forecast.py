"""The compute forecast: what the plan and fixed-G GRPO will deliver, for one pass and over a planned run.

    fc = forecast(plan.phases, p_est, tokens, config, n_params, flops_profile, counts=(successes, samples))
    fc["plan"], fc["baseline"], fc["ratio"]      # one pass: every phase once, each member once
    fc["run"]["skip"]["verdict"]                 # the planned run, zero-advantage groups skipped
    fc["run"]["train_all"]["reduction_factor"]   # ... and every rollout trained (TRL, verl)
    fc["basis"]                                  # the learnable queries and samples it rests on (plan/basis.py)

What a group of fresh rollouts will hold comes from sgpo/plan/beliefs.py: each query's success rate is
its empirical-Bayes posterior (undoing the regression to the mean that selecting on a noisy p_hat
causes), moved by the drift that training causes as the steps go by (`drift`). With
forecast_prior=plan and drift=0 the forecast is the plug-in P_inf(p_est, G) of earlier versions.

Time is laid out as the trainer lays it out (sgpo/train/batches.py): a step spends run_batch_rollouts
rollouts, a phase of G holds run_batch_rollouts // G groups a step (its last step holds what is left),
phases follow each other and the curriculum starts again after the last one. `plateau` phases are
taken to last one pass (when the reward stops rising cannot be forecast); re-planning (--refresh) is
not modelled.

Costs, per rollout token (docs/METHOD.md, Accounting): generation 2 * n_params, training 6 * n_params
(beta = 0: no reference forward). Two engine behaviours: `skip` trains only rollouts of informative
groups (this project's engine), `train_all` trains every rollout (TRL and verl). The one-pass sides
count training as train_all. Each side reports groups, rollouts, rollout tokens, FLOPs by bucket, and the expected
`expected_informative_groups`, `expected_wasted_rollouts`, `forecast_informative_fraction` and
`forecast_wasted_fraction` (names: sgpo/vocab.py).

A forecast resting on fewer than MIN_LEARNABLE_QUERIES learnable queries (`basis`, sgpo/plan/basis.py)
gives no reduction factor, break-even step or FLOPs per informative rollout, `pays` is False, and each
verdict says why: nothing in it can contradict "too few learnable queries to forecast".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgpo.plan.basis import basis as forecast_basis
from sgpo.plan.beliefs import Beliefs, Drift, fitted_beliefs, point_beliefs
from sgpo.plan.config import PlanConfig
from sgpo.plan.phases import Phase
from sgpo.vocab import fraction

# the drift measured on the starter policy (lr 5e-5, 20 warmup steps, 256 rollouts a step) from three
# checkpoint profiles of one GRPO run (sgpo/plan/beliefs.py); `drift` = 1 is this speed
DRIFT = Drift(shift=0.65, spread=0.83, tau=10.0)
BREAK_EVEN_SEARCH = 10  # break-even is looked for up to this many times the planned length
MAX_STEPS = 20_000  # no planned run is laid out further than this many steps
KNOTS = 257  # drift is evaluated at this many steps of the horizon and interpolated between them
ENGINE_BEHAVIOURS = ("skip", "train_all")  # zero-advantage groups left out of training, or trained too


def forecast(
    phases: list[Phase],
    p_est: np.ndarray,
    tokens: np.ndarray,
    config: PlanConfig,
    n_params: int | None,
    flops_profile: float = 0.0,
    *,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """One pass of the plan against fixed-G GRPO on the whole dataset, and the planned run (`run`).

    tokens: prompt + mean completion tokens per query. counts: the profile's (successes, samples) per
    query, for the fitted prior; without them (or with forecast_prior=plan) p_est is taken as exact.
    The plan's `flops` includes flops_profile; `ratio` is baseline FLOPs / (plan + profiling),
    `ratio_without_profile` leaves profiling out. n_params cancels in the latter, so it is given even
    when n_params is None (and `ratio` too when flops_profile is 0)."""
    tokens = np.asarray(tokens, dtype=float)
    if counts is not None and config.forecast_prior == "fitted":
        beliefs = fitted_beliefs(*counts)
    else:
        beliefs = point_beliefs(p_est)
    drift = scaled(DRIFT, config.drift)
    batch = config.run_batch_rollouts
    everyone = np.arange(tokens.size)
    plan_cycle = [_stretch(beliefs, tokens, ph, batch) for ph in phases]
    g = config.fixed_group_size  # GRPO's stream runs across epochs: every step holds batch // G groups
    epoch = {"advance": "steps", "steps": -(-tokens.size // max(1, batch // g))}
    base_cycle = [_stretch(beliefs, tokens, Phase(0, g, everyone, np.full(tokens.size, g), epoch), batch)]
    plan = _one_pass(plan_cycle, beliefs, drift, n_params)
    base = _one_pass(base_cycle, beliefs, drift, n_params)
    plan["flops_profile"] = float(flops_profile)
    if plan["flops"] is not None:
        plan["flops"] += float(flops_profile)
    ratio_bare = base["tokens"] / plan["tokens"] if plan["tokens"] > 0 else None
    if n_params is not None:
        ratio = base["flops"] / plan["flops"] if plan["flops"] > 0 else None
    else:
        ratio = ratio_bare if flops_profile == 0 else None
    # a query whose profile saw a success is learnable
    basis = forecast_basis(phases, *(counts if counts is not None else (p_est, None)))
    run = _run(plan_cycle, base_cycle, beliefs, drift, config, n_params, float(flops_profile), basis)
    return {
        "plan": plan,
        "baseline": base,
        "flops_profile": float(flops_profile),
        "ratio": ratio,
        "ratio_without_profile": ratio_bare,
        "run": run,
        "basis": basis,
    }


def scaled(drift: Drift, speed: float) -> Drift:
    """The same drift `speed` times as fast: the amount after t steps is the default's after speed * t."""
    if speed == 0:
        return Drift()
    return Drift(drift.shift, drift.spread, drift.tau / speed)


# time: stretches of steps --------------------------------------------------------------------------
@dataclass
class _Chunk:
    """Members of one phase that share a group size, spread over the beliefs' support."""

    group_size: int
    members: int
    mass: np.ndarray  # (support,) members
    token_mass: np.ndarray  # (support,) their tokens
    tokens: float  # sum of members' tokens (prompt + mean completion)


@dataclass
class _Stretch:
    """One phase as the trainer walks it: how many steps, and the groups of each chunk at each step."""

    index: int
    chunks: list[_Chunk]
    groups: np.ndarray  # (chunks, steps) groups per step, for the phase's steps in its pacing
    pass_groups: np.ndarray  # (chunks, steps of one pass): one pass over the members


def _stretch(beliefs: Beliefs, tokens: np.ndarray, phase: Phase, batch: int) -> _Stretch:
    sizes = phase.group_sizes
    chunks = []
    for size in np.flatnonzero(np.bincount(sizes, minlength=1)) if sizes.size else []:
        pos = phase.positions[sizes == size]
        chunks.append(
            _Chunk(int(size), int(pos.size), beliefs.mass(pos), beliefs.mass(pos, tokens), float(tokens[pos].sum()))
        )
    if len(chunks) == 1:  # one G: batch // G groups a step, the last step holds what is left
        g, n = chunks[0].group_size, chunks[0].members
        per_step = max(1, batch // g)
        steps = -(-n // per_step)
        one_pass = np.full((1, steps), float(per_step))
        one_pass[0, -1] = n - per_step * (steps - 1)
        pace = phase.pacing
        if pace.get("advance") == "steps":  # steps_per_phase steps, wrapping round the members
            return _Stretch(phase.index, chunks, np.full((1, int(pace["steps"])), float(per_step)), one_pass)
        return _Stretch(phase.index, chunks, one_pass, one_pass)
    if not chunks:
        empty = np.zeros((0, 0))
        return _Stretch(phase.index, chunks, empty, empty)
    # mixed group sizes (curriculum sorted or none): a step holds about `batch` rollouts of the mix
    rollouts = sum(c.group_size * c.members for c in chunks)
    steps = max(1, math.ceil(rollouts / batch))
    share = np.full(steps, batch / rollouts)
    share[-1] = 1.0 - share[:-1].sum()
    groups = np.array([[c.members] for c in chunks], dtype=float) * share[None, :]
    return _Stretch(phase.index, chunks, groups, groups)


@dataclass
class _Timeline:
    """Per step: what was generated, what is expected to be informative, and which phase it was."""

    groups: np.ndarray
    rollouts: np.ndarray
    tokens: np.ndarray
    informative_groups: np.ndarray
    informative_rollouts: np.ndarray
    informative_tokens: np.ndarray
    phase: np.ndarray

    def flops(self, n_params: float, behaviour: str) -> np.ndarray:
        """FLOPs per step: generation of every rollout, training of all or of the informative ones."""
        trained = self.tokens if behaviour == "train_all" else self.informative_tokens
        return n_params * (2.0 * self.tokens + 6.0 * trained)


def _lay_out(cycle: list[_Stretch], beliefs: Beliefs, drift: Drift, horizon: int, *, one_pass: bool) -> _Timeline:
    """The steps of `cycle` repeated until `horizon` steps (one_pass: each phase once, one pass each)."""
    pattern = [(st, st.pass_groups if one_pass else st.groups) for st in cycle]
    # one pass is laid out whole, however long; a run is cut at MAX_STEPS
    horizon = sum(g.shape[1] for _, g in pattern) if one_pass else max(0, min(horizon, MAX_STEPS))
    knots = np.unique(np.round(np.linspace(0, max(horizon - 1, 0), KNOTS)))
    tables: dict[int, np.ndarray] = {}
    out = {
        k: np.zeros(horizon)
        for k in ("groups", "rollouts", "tokens", "informative_groups", "informative_rollouts", "informative_tokens")
    }
    phase = np.full(horizon, -1, dtype=np.int64)
    per_chunk = {}
    for st, _ in pattern:
        for c in st.chunks:
            if c.group_size not in tables:
                tables[c.group_size] = beliefs.informative(c.group_size, knots, drift)
            if c.members:
                per_chunk[id(c)] = (
                    c.mass @ tables[c.group_size] / c.members,
                    c.token_mass @ tables[c.group_size] / c.members,
                )
    t = 0
    while t < horizon and any(g.shape[1] for _, g in pattern):
        for st, groups in pattern:
            n = min(groups.shape[1], horizon - t)
            if n <= 0:
                continue
            steps = np.arange(t, t + n)
            phase[steps] = st.index
            for c, g in zip(st.chunks, groups[:, :n]):
                inf, inf_tok = (np.interp(steps, knots, v) for v in per_chunk[id(c)])
                out["groups"][steps] += g
                out["rollouts"][steps] += g * c.group_size
                out["tokens"][steps] += g * c.group_size * c.tokens / c.members
                out["informative_groups"][steps] += g * inf
                out["informative_rollouts"][steps] += g * c.group_size * inf
                out["informative_tokens"][steps] += g * c.group_size * inf_tok
            t += n
        if one_pass:
            break
    return _Timeline(**out, phase=phase)


# one pass ------------------------------------------------------------------------------------------
def _one_pass(cycle: list[_Stretch], beliefs: Beliefs, drift: Drift, n_params) -> dict:
    line = _lay_out(cycle, beliefs, drift, 0, one_pass=True)
    groups = int(round(line.groups.sum()))
    rollouts = int(round(line.rollouts.sum()))
    rollout_tokens = float(line.tokens.sum())
    informative = float(line.informative_groups.sum())
    wasted = float(line.rollouts.sum() - line.informative_rollouts.sum())
    flops_rollout: float | None = None
    flops_train: float | None = None
    flops: float | None = None
    if n_params is not None:
        flops_rollout, flops_train = 2.0 * n_params * rollout_tokens, 6.0 * n_params * rollout_tokens
        flops = flops_rollout + flops_train
    return {
        "groups": groups,
        "rollouts": rollouts,
        "tokens": rollout_tokens,
        "flops": flops,
        "flops_rollout": flops_rollout,
        "flops_train": flops_train,
        "expected_informative_groups": informative,
        "expected_wasted_rollouts": wasted,
        "forecast_informative_fraction": fraction(informative, groups),
        "forecast_wasted_fraction": fraction(wasted, rollouts),
    }


# the planned run -----------------------------------------------------------------------------------
def _run(
    plan_cycle, base_cycle, beliefs, drift, config: PlanConfig, n_params, flops_profile: float, basis: dict
) -> dict:
    """The planned run under each engine behaviour (see the module docstring)."""
    # without n_params, FLOPs are still comparable in units of n_params unless profiling or a FLOPs
    # budget (both absolute) enter
    comparable = n_params is not None or (flops_profile == 0 and config.run_flops is None)
    units = float(n_params) if n_params is not None else 1.0
    horizon = _horizon(plan_cycle, base_cycle, config, units if comparable else None)
    plan_line = _lay_out(plan_cycle, beliefs, drift, horizon, one_pass=False)
    base_line = _lay_out(base_cycle, beliefs, drift, horizon, one_pass=False)
    out: dict[str, Any] = {  # JSON, as `sgpo plan --json` shows it
        "steps": config.run_steps if config.run_flops is None else None,
        "flops": config.run_flops,
        "batch_rollouts": config.run_batch_rollouts,
        "drift": config.drift,
        "prior": "fitted" if beliefs.fitted else "plan",
        "horizon_steps": len(plan_line.groups),
        "basis": basis,
    }
    for behaviour in ENGINE_BEHAVIOURS:
        out[behaviour] = _behaviour(
            behaviour,
            plan_line,
            base_line,
            config,
            units if comparable else None,
            n_params is not None,
            flops_profile,
            basis,
        )
    out["phases"] = _phase_fractions(plan_line, out["skip"]["plan"]["steps"])
    return out


def _horizon(plan_cycle, base_cycle, config: PlanConfig, units) -> int:
    """Steps to lay out: the planned length times BREAK_EVEN_SEARCH (for a FLOPs budget, the steps it
    buys at generation cost alone bound the length), at most MAX_STEPS."""
    if config.run_flops is None or units is None:
        return min(MAX_STEPS, BREAK_EVEN_SEARCH * config.run_steps)
    cheapest = []
    for cycle in (plan_cycle, base_cycle):
        tokens = sum(c.tokens for st in cycle for c in st.chunks)
        rollouts = sum(c.group_size * c.members for st in cycle for c in st.chunks)
        if rollouts and tokens:
            cheapest.append(2.0 * units * tokens / rollouts * config.run_batch_rollouts)
    if not cheapest:
        return min(MAX_STEPS, BREAK_EVEN_SEARCH * config.run_steps)
    return int(min(MAX_STEPS, BREAK_EVEN_SEARCH * math.ceil(config.run_flops / min(cheapest))))


def _behaviour(
    behaviour: str,
    plan_line: _Timeline,
    base_line: _Timeline,
    config: PlanConfig,
    units,
    absolute: bool,
    flops_profile: float,
    basis: dict,
) -> dict:
    """Both sides over the planned run under one engine behaviour, and what the comparison says.

    units: FLOPs per (token x unit of cost), n_params or 1 when only ratios are asked for; None when
    FLOPs cannot be compared (then only the fractions are given)."""
    laid_out = len(plan_line.groups)
    if units is None:
        steps = min(config.run_steps, laid_out)
        out: dict[str, Any] = {
            "plan": _side(plan_line, None, steps, None),
            "baseline": _side(base_line, None, steps, None),
            "flops_profile_share": None,
            "break_even_step": None,
            "reduction_factor": None,
            "pays": False if basis["too_few"] else None,
        }
        out["verdict"] = verdict(behaviour, out, config, basis, laid_out)
        return out
    profile = flops_profile if absolute else 0.0
    per_plan, per_base = plan_line.flops(units, behaviour), base_line.flops(units, behaviour)
    steps_plan = _steps_in(per_plan, profile, config, laid_out)
    plan = _side(plan_line, per_plan, steps_plan, profile)
    base = _side(base_line, per_base, _steps_in(per_base, 0.0, config, laid_out), None)
    cum_plan = profile + np.cumsum(per_plan)
    informative_plan = np.cumsum(plan_line.informative_rollouts)
    base_cost = _cost_for(base_line.informative_rollouts, per_base)
    reduction = None
    if steps_plan and cum_plan[steps_plan - 1] > 0:
        reduction = _finite(base_cost(informative_plan[steps_plan - 1]) / cum_plan[steps_plan - 1])
    paid = np.flatnonzero((informative_plan > 0) & (base_cost(informative_plan) >= cum_plan))
    out = {
        "plan": plan,
        "baseline": base,
        "flops_profile_share": fraction(profile, plan["flops"]) if plan["flops"] else None,
        "break_even_step": int(paid[0]) + 1 if paid.size else None,
        "reduction_factor": reduction,
        "pays": bool(reduction is not None and reduction > 1.0),
    }
    if not absolute:  # FLOPs in units of n_params: ratios hold, absolute figures would mislead
        for side in (plan, base):
            side["flops"] = side["flops_per_informative_rollout"] = None
    if basis["too_few"]:  # what rests on the informative rollouts of a handful of queries is not given
        out.update(break_even_step=None, reduction_factor=None, pays=False)
        for side in (plan, base):
            side["flops_per_informative_rollout"] = None
    out["verdict"] = verdict(behaviour, out, config, basis, laid_out)
    return out


def _steps_in(per_step, profile: float, config: PlanConfig, laid_out: int) -> int:
    """Steps of the planned run: run_steps, or the steps until total FLOPs reach run_flops."""
    if config.run_flops is None:
        return min(config.run_steps, laid_out)
    if per_step is None:
        return 0
    total = profile + np.cumsum(per_step)
    reached = np.flatnonzero(total >= config.run_flops)
    if profile >= config.run_flops:
        return 0
    return int(reached[0]) + 1 if reached.size else laid_out


def _side(line: _Timeline, per_step, steps: int, flops_profile) -> dict:
    """Totals over the first `steps` steps of a timeline (flops_profile: the plan side's, else None)."""
    cut = slice(0, steps)
    groups, rollouts = float(line.groups[cut].sum()), float(line.rollouts[cut].sum())
    informative = float(line.informative_groups[cut].sum())
    informative_rollouts = float(line.informative_rollouts[cut].sum())
    flops = None if per_step is None else float(per_step[cut].sum()) + (flops_profile or 0.0)
    out = {
        "steps": steps,
        "groups": groups,
        "rollouts": rollouts,
        "expected_informative_groups": informative,
        "expected_informative_rollouts": informative_rollouts,
        "expected_wasted_rollouts": rollouts - informative_rollouts,
        "forecast_informative_fraction": fraction(informative, groups),
        "forecast_wasted_fraction": fraction(rollouts - informative_rollouts, rollouts),
        "flops": flops,
        "flops_per_informative_rollout": None if flops is None else fraction(flops, informative_rollouts),
    }
    if flops_profile is not None:
        out["flops_profile"] = flops_profile
    return out


def _cost_for(informative_per_step: np.ndarray, per_step: np.ndarray):
    """FLOPs fixed-G GRPO spends until it has generated a given number of informative rollouts
    (interpolated within a step; past the laid-out steps, at the last step's rate)."""
    cum_inf = np.concatenate([[0.0], np.cumsum(informative_per_step)])
    cum_flops = np.concatenate([[0.0], np.cumsum(per_step)])
    last = informative_per_step[-1] if informative_per_step.size else 0.0
    rate = per_step[-1] / last if last > 0 else None

    def cost(target):
        target = np.asarray(target, dtype=float)
        inside = np.interp(target, cum_inf, cum_flops)
        beyond = target > cum_inf[-1] + 1e-9 * max(1.0, cum_inf[-1])
        extra = np.inf if rate is None else (target - cum_inf[-1]) * rate
        return np.where(beyond, cum_flops[-1] + extra, inside)

    return cost


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _phase_fractions(line: _Timeline, steps: int) -> list[dict]:
    """Per phase, over its steps in the planned run (every cycle): steps and informative fraction."""
    out = []
    for index in np.unique(line.phase[:steps]):
        mask = line.phase[:steps] == index
        out.append(
            {
                "phase": int(index),
                "steps": int(mask.sum()),
                "forecast_informative_fraction": fraction(
                    float(line.informative_groups[:steps][mask].sum()), float(line.groups[:steps][mask].sum())
                ),
            }
        )
    return out


# words -------------------------------------------------------------------------------------------
# how to read the reduction factor, shown beside the verdicts (measured by bench/regimes.py)
READING = (
    "The reduction factor counts FLOPs per informative rollout. It becomes a saving at equal accuracy "
    "only when learning is limited by informative rollouts per step; on the starter policy held-out "
    "accuracy followed optimizer steps instead, and sGPO's measured saving at equal accuracy stayed within "
    "seed noise of none (README, Regime map)."
)
BEHAVIOUR_WORDS = {
    "skip": "with zero-advantage groups skipped (this engine's default)",
    "train_all": "with every rollout trained (TRL, verl, --no-skip-zero-advantage)",
}


def verdict(behaviour: str, out: dict, config: PlanConfig, basis: dict, laid_out: int) -> str:
    """One sentence: does sGPO pay over the planned run, under this engine behaviour, and why."""
    how = BEHAVIOUR_WORDS[behaviour]
    plan = out["plan"]
    length = (
        f"{config.run_steps:,} steps of {config.run_batch_rollouts} rollouts"
        if config.run_flops is None
        else f"{config.run_flops:.3g} FLOPs"
    )
    if basis["learnable_queries"] == 0:
        return (
            f"nothing learnable: the plan trains only queries its profile never saw solved, so it expects "
            f"almost no informative rollouts and sGPO will not pay {how}"
        )
    if basis["too_few"]:
        return (
            f"{basis['reason']}: no reduction factor or break-even step {how}, and whether sGPO would pay "
            f"cannot be told; profile more queries, or data nearer the model's level"
        )
    if out["pays"] is None:
        return (
            f"no verdict {how}: the model size is unknown, so profiling FLOPs and a FLOPs budget cannot be set "
            f"against rollout FLOPs; profile again with a model whose size is known"
        )
    if config.run_flops is not None and plan["steps"] == 0:
        return (
            f"sGPO will not pay {how}: profiling ({plan['flops_profile']:.3g} FLOPs) alone spends the planned {length}"
        )
    r, share = out["reduction_factor"], out["flops_profile_share"]
    even = out["break_even_step"]
    informative = f"{plan['expected_informative_rollouts']:,.0f}"
    if out["pays"]:
        return (
            f"sGPO pays {how}: {r:.2f}x less compute than GRPO (G={config.fixed_group_size}) for the plan's "
            f"{informative} informative rollouts over {length}, profiling ({share:.0%} of the plan's FLOPs) "
            f"included; profiling has paid for itself by step {even}"
        )
    later = f"it would break even at step {even:,}" if even else f"it does not break even within {laid_out:,} steps"
    ratio = "n/a" if r is None else f"{r:.2f}x"
    return (
        f"sGPO will not pay {how} over {length}: GRPO (G={config.fixed_group_size}) gets the plan's "
        f"{informative} informative rollouts for {ratio} the plan's FLOPs (profiling is {share:.0%} of "
        f"them); {later}"
    )
