"""The planner: a profile table and a PlanConfig in, a Plan out. Pure: no files, no database.

    plan = make_plan(store.profile_frame(profile_id), PlanConfig(trivial_threshold=0.6), n_params=1.5e9)
    plan.counts["learnable"], plan.phases[0].group_size, plan.forecast["ratio"]

One profiling pass drives three decisions (docs/METHOD.md): which queries to keep (trivial / learnable /
unsolved), how many rollouts each gets (group_size), and in which order they are trained (phases).
Everything is vectorised so the dashboard can re-plan on every slider move: 1e6 queries plan in about
0.1 s (bench/plan_speed.py). Phase membership is kept as numpy position arrays, never lists of ids.

Choices the paper leaves open, made here:
- Kept unsolved queries are mixed into every phase at that phase's G (the paper's rule) under the
  phased curricula (sequential, steps, plateau); their row in `queries` shows the first phase (phase 0
  and its G). Under `sorted` and `none` there is no phase G, so they get g_max (fixed_group_size under
  the fixed rule): what the group rule gives as p -> 0.
- The knapsack rule allocates its budget over the learnable queries only; kept unsolved queries are
  not items (their profile saw no success, so their expected value is ~0) and follow the rule above.
- The forecast is one pass: every phase once, each member once, at its group size.

One choice departs from the paper: the default group rule is `informative`, not the paper's G ~ 1/p
(`pow2`). The paper's rule puts 0.5 <= p <= 0.75 into groups of two, which are informative at most half
the time, so on builtin:train it wastes 46% of its rollouts against 55% for fixed G = 8; the informative
rule wastes 38% with the same gain on the middle band (README, "Compute efficiency"). `--group-rule pow2`
gives the paper's method.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sgpo.errors import ConfigError, DataError
from sgpo.knapsack import knapsack_group_sizes, p_informative

GROUP_RULES = ("pow2", "inverse", "informative", "fixed", "knapsack")
ESTIMATES = ("raw", "posterior")
CURRICULA = ("sequential", "steps", "plateau", "sorted", "none")
PHASED = ("sequential", "steps", "plateau")  # one phase per G bucket, easy (small G) to hard
DECISIONS = ("trivial", "learnable", "unsolved_kept", "unsolved_dropped")
TRIVIAL, LEARNABLE, UNSOLVED_KEPT, UNSOLVED_DROPPED = range(4)
COLUMNS = ("id", "task", "difficulty", "samples", "successes", "p_hat", "prompt_tokens",
           "completion_tokens_mean")
_TOL = 1e-9  # 1/p this close (relative) to an integer or power of two counts as it: p = 1/49 gives 49


def _knob(default, help: str, *, lo=None, hi=None, open_lo: bool = False, choices=None):
    return field(default=default, metadata={"help": help, "min": lo, "max": hi, "open_min": open_lo,
                                            "choices": list(choices) if choices else None})


@dataclass
class PlanConfig:
    """Every planner knob with its default, range and help: the CLI and the dashboard are built from it."""

    trivial_threshold: float = _knob(
        0.75, "t in (0, 1]: queries with p_hat > t are trivial and removed (paper: 0.75)", lo=0.0, hi=1.0,
        open_lo=True)
    unsolved_keep: float = _knob(
        0.10, "alpha in [0, 1]: fraction of unsolved queries (p_hat = 0) kept, exactly round(alpha * n) "
        "chosen with the seed (paper: 0.10)", lo=0.0, hi=1.0)
    group_rule: str = _knob(
        "informative", "group size per query: informative (default) = smallest power-of-two G whose group "
        "holds a success and a failure with chance >= informative_target; pow2 = smallest power of two "
        ">= 1/p clipped to [g_min, g_max] (the paper's rule); inverse = ceil(1/p) clipped; fixed = "
        "fixed_group_size; knapsack = integer G in [g_min, g_max] maximising expected informative groups "
        "under rollout_budget",
        choices=GROUP_RULES)
    informative_target: float = _knob(
        0.75, "group_rule=informative: the chance 1 - p^G - (1-p)^G that a group is informative (has a "
        "non-zero advantage) that G must reach; queries that reach it at no G <= g_max get g_max",
        lo=0.0, hi=1.0, open_lo=True)
    g_min: int = _knob(2, "smallest group size (>= 2: a group of one has no advantage)", lo=2, hi=64)
    g_max: int = _knob(8, "largest group size (paper: 8)", lo=2, hi=64)
    fixed_group_size: int = _knob(
        8, "G of the fixed-G GRPO baseline in the forecast, and of every query under group_rule=fixed "
        "(TRL default: 8)", lo=2, hi=64)
    success_estimate: str = _knob(
        "raw", "p used for group sizes and the forecast: raw = p_hat; posterior = Beta(prior_a, prior_b) "
        "posterior mean (successes + a) / (samples + a + b), default Beta(1, 1). Keep/drop decisions "
        "always use raw p_hat", choices=ESTIMATES)
    prior_a: float = _knob(1.0, "Beta prior pseudo-successes a (success_estimate=posterior)", lo=0.0, hi=20.0,
                           open_lo=True)
    prior_b: float = _knob(1.0, "Beta prior pseudo-failures b (success_estimate=posterior)", lo=0.0, hi=20.0,
                           open_lo=True)
    curriculum: str = _knob(
        "sequential", "training order: sequential = one phase per G bucket, smallest G first, one pass each "
        "(paper; under pow2 that is easy -> hard, under informative the G=4 middle comes before G=8); "
        "steps = same phases, steps_per_phase steps each; plateau = same phases, advance when the phase's "
        "reward stops rising; sorted = one pass ordered by p_hat, easy first; none = one shuffled phase, "
        "mixed G", choices=CURRICULA)
    steps_per_phase: int = _knob(50, "optimizer steps per phase (curriculum=steps)", lo=1)
    plateau_patience: int = _knob(10, "steps without a reward gain before the next phase (curriculum=plateau)",
                                  lo=1)
    plateau_min_delta: float = _knob(0.01, "smallest mean-reward rise that counts as a gain "
                                     "(curriculum=plateau)", lo=0.0, hi=1.0)
    rollout_budget: int = _knob(
        0, "rollouts per pass that the knapsack rule shares among the learnable queries (kept unsolved "
        "ride on top at their phase's G); 0 = what pow2 would give the same queries", lo=0)
    seed: int = _knob(0, "seed for choosing the kept unsolved queries and for curriculum=none's shuffle", lo=0)

    def __post_init__(self):
        self.validate()

    def validate(self) -> PlanConfig:
        """Coerce numeric types and check every knob; ConfigError names the knob and which way to move it."""
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["choices"]:
                if value not in meta["choices"]:
                    raise ConfigError(f"{f.name}={value!r} is not one of {', '.join(meta['choices'])}: choose "
                                      f"one of them (default {f.default})")
                continue
            value = _number(f.name, value, f.type)
            setattr(self, f.name, value)
            lo, hi = meta["min"], meta["max"]
            if lo is not None and (value <= lo if meta["open_min"] else value < lo):
                raise ConfigError(f"{f.name}={value} is outside {_interval(meta)}: raise it (default {f.default})")
            if hi is not None and value > hi:
                raise ConfigError(f"{f.name}={value} is outside {_interval(meta)}: lower it (default {f.default})")
        if self.g_min > self.g_max:
            raise ConfigError(f"g_min={self.g_min} is above g_max={self.g_max}: lower g_min or raise g_max")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PlanConfig:
        """A config from a plain dict (a saved plan, a form); unknown keys are a ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown plan knob(s) {', '.join(unknown)}: known are {', '.join(sorted(known))}")
        return cls(**values)

    def cli_args(self) -> list[str]:
        """The flags that reproduce this config, non-defaults only: ['--trivial-threshold', '0.6', ...]."""
        out = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out += ["--" + f.name.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
        return out


def plan_knobs() -> list[dict]:
    """Each knob as a plain dict (name, type, default, min, max, choices, help) for CLI and dashboard widgets."""
    return [{"name": f.name, "type": f.type, "default": f.default, "min": f.metadata["min"],
             "max": f.metadata["max"], "choices": f.metadata["choices"], "help": f.metadata["help"]}
            for f in dataclasses.fields(PlanConfig)]


def _number(name: str, value, kind: str):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}={value!r} is not a number: give a {kind}")
    if kind == "int":
        if float(value) != int(value):
            raise ConfigError(f"{name}={value!r} is not a whole number: give an int")
        return int(value)
    if not np.isfinite(value):
        raise ConfigError(f"{name}={value!r} is not finite: give a number")
    return float(value)


def _interval(meta) -> str:
    hi = "inf)" if meta["max"] is None else f"{meta['max']}]"
    return f"{'(' if meta['open_min'] else '['}{meta['min']}, {hi}"


@dataclass
class Phase:
    """One stage of the curriculum, in training order. positions index rows of the profile frame."""

    index: int
    group_size: int  # the phase's G; 0 when members have different G (sorted / none curricula)
    positions: np.ndarray  # int64 rows of the profile frame, in training order
    group_sizes: np.ndarray  # int64 G of each member, aligned with positions
    pacing: dict  # how the trainer advances: {"advance": "pass" | "steps" | "plateau", ...}
    all_ids: object = field(repr=False, default=None)  # the frame's id column (array-like), shared

    @property
    def count(self) -> int:
        return int(self.positions.size)

    @property
    def rollouts(self) -> int:
        return int(self.group_sizes.sum())

    @property
    def ids(self) -> np.ndarray:
        """The members' query ids, in training order (built on demand: O(count))."""
        return np.asarray(self.all_ids.take(self.positions), dtype=object)


@dataclass
class Plan:
    queries: pd.DataFrame  # id, task, difficulty, p_hat, p_est, decision, group_size, phase; input index
    phases: list[Phase]
    counts: dict  # total, trivial, learnable, unsolved_kept, unsolved_dropped, by_group_size {G: learnable}
    forecast: dict  # plan / baseline sides, flops_profile, ratio, ratio_without_profile (JSON-ready)
    config: PlanConfig

    def to_json(self, *, ids: bool = True) -> dict:
        """Plain JSON values; phases list their query ids unless ids=False."""
        phases = [{"phase": ph.index, "group_size": ph.group_size, "count": ph.count, "rollouts": ph.rollouts,
                   "pacing": ph.pacing, **({"queries": ph.ids.tolist()} if ids else {})} for ph in self.phases]
        counts = {**self.counts, "by_group_size": {str(g): n for g, n in self.counts["by_group_size"].items()}}
        return {"counts": counts, "phases": phases, "forecast": self.forecast, "config": self.config.to_dict()}


def make_plan(profile_frame: pd.DataFrame, config: PlanConfig | None = None, *, n_params: int | None = None,
              flops_profile: float = 0.0) -> Plan:
    """Decisions, group sizes, phases and the one-pass compute forecast for a profile table.

    profile_frame: one row per query with COLUMNS (extra columns are ignored). n_params: the policy's
    parameter count, for FLOPs (None: every FLOPs figure is None, the rest still works). flops_profile:
    the profiling pass's FLOPs, added to the plan's total."""
    config = (config or PlanConfig()).validate()
    missing = [c for c in COLUMNS if c not in profile_frame.columns]
    if missing:
        raise DataError(f"profile table lacks column(s) {', '.join(missing)}: profile the dataset with "
                        f"`sgpo profile` (its table has {', '.join(COLUMNS)})")
    n = len(profile_frame)
    if n == 0:
        raise ConfigError("the profile has no queries: profile a dataset first (sgpo profile DATASET)")
    p_hat = profile_frame["p_hat"].to_numpy(dtype=float, copy=True)  # copies: the plan never aliases the input
    bad = np.flatnonzero(~((p_hat >= 0) & (p_hat <= 1)))
    if bad.size:
        raise DataError(f"p_hat of query {profile_frame['id'].iloc[bad[0]]!r} is {p_hat[bad[0]]}: it must lie "
                        f"in [0, 1] (re-run `sgpo profile`)")
    p_est = success_estimate(profile_frame, config)
    rng = np.random.default_rng(config.seed)
    decision = _decide(p_hat, config, rng)
    tally = np.bincount(decision, minlength=4)
    if tally[LEARNABLE] + tally[UNSOLVED_KEPT] == 0:
        raise ConfigError(_nothing_kept(tally, config))

    learn = np.flatnonzero(decision == LEARNABLE)
    unsolved = np.flatnonzero(decision == UNSOLVED_KEPT)
    group_size = np.zeros(n, dtype=np.int64)
    group_size[learn] = _learnable_group_sizes(p_est[learn], config)
    ids = profile_frame["id"].array.copy()  # not to_numpy(): that turns arrow strings into 1e6 objects
    phases = _phases(learn, unsolved, group_size, p_hat, config, rng)
    for ph in phases:
        ph.all_ids = ids

    phase = np.full(n, -1, dtype=np.int64)
    if config.curriculum in PHASED:
        for ph in phases:
            phase[ph.positions] = ph.index
        phase[unsolved] = 0  # also in every later phase
    else:
        phase[phases[0].positions] = 0
    group_size[unsolved] = phases[0].group_size or _unsolved_group_size(config)

    by_g = np.bincount(group_size[learn], minlength=1)
    counts = {"total": n, **{d: int(tally[i]) for i, d in enumerate(DECISIONS)},
              "by_group_size": {int(g): int(by_g[g]) for g in np.flatnonzero(by_g)}}
    tokens = (profile_frame["prompt_tokens"].to_numpy(dtype=float)
              + profile_frame["completion_tokens_mean"].to_numpy(dtype=float))
    queries = pd.DataFrame({
        "id": ids, "task": profile_frame["task"].array.copy(), "difficulty": profile_frame["difficulty"].to_numpy(copy=True),
        "p_hat": p_hat, "p_est": p_est, "decision": pd.Categorical.from_codes(decision, DECISIONS),
        "group_size": group_size, "phase": phase}, index=profile_frame.index, copy=False)
    return Plan(queries, phases, counts, forecast(phases, p_est, tokens, config, n_params, flops_profile), config)


def success_estimate(profile_frame: pd.DataFrame, config: PlanConfig) -> np.ndarray:
    """p used for group sizes and the forecast: raw p_hat, or the Beta(a, b) posterior mean."""
    if config.success_estimate == "raw":
        return profile_frame["p_hat"].to_numpy(dtype=float, copy=True)
    s = profile_frame["successes"].to_numpy(dtype=float)
    n = profile_frame["samples"].to_numpy(dtype=float)
    return (s + config.prior_a) / (n + config.prior_a + config.prior_b)


def group_size_for(p, config: PlanConfig) -> np.ndarray:
    """G per query under the pow2, inverse or fixed rule (knapsack needs the whole set: see make_plan).

    pow2: smallest power of two >= 1/p; inverse: ceil(1/p); both clipped to [g_min, g_max]; p = 0
    gives g_max (the limit as p -> 0). informative: the smallest of g_min, the powers of two between,
    and g_max whose P_inf(p, G) = 1 - p^G - (1-p)^G reaches informative_target, else g_max."""
    p = np.asarray(p, dtype=float)
    if config.group_rule == "fixed":
        return np.full(p.shape, config.fixed_group_size, dtype=np.int64)
    if config.group_rule == "informative":
        return _informative_group_sizes(p, config)
    with np.errstate(divide="ignore"):
        need = np.minimum(1.0 / p, 2.0 * config.g_max) * (1 - _TOL)  # capped: p = 0 gives g_max
    if config.group_rule == "pow2":
        _, exponent = np.frexp(need)  # need = m * 2^e with 0.5 <= m < 1, so 2^e is the next power
        raw = np.ldexp(1.0, exponent)
    elif config.group_rule == "inverse":
        raw = np.ceil(need)
    else:
        raise ConfigError(f"group_rule={config.group_rule!r} has no per-query formula: use make_plan")
    return np.clip(raw, config.g_min, config.g_max).astype(np.int64)


def _informative_group_sizes(p: np.ndarray, config: PlanConfig) -> np.ndarray:
    powers = [2 ** k for k in range(1, 8) if config.g_min < 2 ** k < config.g_max]
    out = np.full(p.shape, config.g_max, dtype=np.int64)
    undecided = np.ones(p.shape, dtype=bool)
    for g in [config.g_min, *powers]:  # ascending; P_inf grows with G, so the first that reaches wins
        hit = undecided & (p_informative(p, g) >= config.informative_target - _TOL)
        out[hit] = g
        undecided &= ~hit
    return out


def _decide(p_hat: np.ndarray, config: PlanConfig, rng: np.random.Generator) -> np.ndarray:
    """int8 decision codes (index into DECISIONS); exactly round(alpha * n_unsolved) unsolved are kept."""
    decision = np.full(p_hat.size, LEARNABLE, dtype=np.int8)
    decision[p_hat > config.trivial_threshold] = TRIVIAL
    unsolved = np.flatnonzero(p_hat == 0)
    decision[unsolved] = UNSOLVED_DROPPED
    keep = round(config.unsolved_keep * unsolved.size)  # Python's round: halves go to even
    decision[unsolved[rng.choice(unsolved.size, size=keep, replace=False)]] = UNSOLVED_KEPT
    return decision


def _nothing_kept(tally: np.ndarray, config: PlanConfig) -> str:
    n_trivial, n_unsolved = int(tally[TRIVIAL]), int(tally[UNSOLVED_DROPPED])
    if n_unsolved == 0:
        return (f"all {n_trivial} queries are trivial (p_hat > trivial_threshold={config.trivial_threshold}): "
                f"raise trivial_threshold (at most 1.0) or profile a harder dataset")
    if n_trivial == 0:
        return (f"all {n_unsolved} queries are unsolved and unsolved_keep={config.unsolved_keep} keeps none: "
                f"raise unsolved_keep, or profile an easier dataset or a stronger model")
    return (f"no query is kept: {n_trivial} are trivial (p_hat > trivial_threshold={config.trivial_threshold}; "
            f"raise trivial_threshold) and {n_unsolved} unsolved are dropped (unsolved_keep="
            f"{config.unsolved_keep}; raise unsolved_keep)")


def _learnable_group_sizes(p: np.ndarray, config: PlanConfig) -> np.ndarray:
    if config.group_rule != "knapsack":
        return group_size_for(p, config)
    budget = config.rollout_budget or int(group_size_for(p, dataclasses.replace(config, group_rule="pow2")).sum())
    if budget < p.size * config.g_min:
        raise ConfigError(f"rollout_budget={budget} cannot give {p.size} learnable queries g_min={config.g_min} "
                          f"rollouts each: raise rollout_budget to at least {p.size * config.g_min} or lower g_min")
    return knapsack_group_sizes(p, budget, config.g_min, config.g_max)


def _unsolved_group_size(config: PlanConfig) -> int:
    return config.fixed_group_size if config.group_rule == "fixed" else config.g_max


def _pacing(config: PlanConfig) -> dict:
    if config.curriculum == "steps":
        return {"advance": "steps", "steps": config.steps_per_phase}
    if config.curriculum == "plateau":
        return {"advance": "plateau", "patience": config.plateau_patience, "min_delta": config.plateau_min_delta}
    return {"advance": "pass"}


def _phases(learn, unsolved, group_size, p_hat, config, rng) -> list[Phase]:
    pacing = _pacing(config)
    if config.curriculum in PHASED:
        if not learn.size:
            g = _unsolved_group_size(config)
            return [Phase(0, g, unsolved, np.full(unsolved.size, g, dtype=np.int64), pacing)]
        g_learn = group_size[learn]
        by_g = np.bincount(g_learn)
        buckets = np.flatnonzero(by_g)
        # G <= 64 fits a byte, and numpy sorts bytes with a stable radix sort: O(n), input order kept
        ordered = learn[np.argsort(g_learn.astype(np.uint8), kind="stable")]
        phases = []
        for i, (g, members) in enumerate(zip(buckets, np.split(ordered, np.cumsum(by_g[buckets])[:-1]))):
            members = np.concatenate([members, unsolved])
            phases.append(Phase(i, int(g), members, np.full(members.size, g, dtype=np.int64), dict(pacing)))
        return phases
    kept = np.sort(np.concatenate([learn, unsolved]))
    if config.curriculum == "sorted":
        order = kept[np.argsort(-p_hat[kept], kind="stable")]
    else:
        order = rng.permutation(kept)
    sizes = group_size[order]
    sizes[p_hat[order] == 0] = _unsolved_group_size(config)
    common = int(sizes[0]) if sizes.min() == sizes.max() else 0
    return [Phase(0, common, order, sizes, pacing)]


def forecast(phases: list[Phase], p_est: np.ndarray, tokens: np.ndarray, config: PlanConfig,
             n_params: int | None, flops_profile: float = 0.0) -> dict:
    """One pass of the plan against fixed-G GRPO on the whole dataset, as JSON-ready numbers.

    tokens: prompt + mean completion tokens per query. A rollout costs a forward over its tokens
    (2 * n_params * tokens) and trains with forward + backward (6 * n_params * tokens); beta = 0, so
    there is no reference-model forward. The plan's `flops` includes flops_profile; `ratio` is baseline
    FLOPs / (plan + profiling), `ratio_without_profile` leaves profiling out. n_params cancels in the
    latter, so it is given even when n_params is None (and `ratio` too when flops_profile is 0)."""
    chunks = []  # (p, tokens, G) with one G per chunk, so powers are a few multiplications
    for ph in phases:
        for g in ([ph.group_size] if ph.group_size else np.flatnonzero(np.bincount(ph.group_sizes))):
            pos = ph.positions if ph.group_size else ph.positions[ph.group_sizes == g]
            chunks.append((p_est[pos], tokens[pos], int(g)))
    plan = _side(chunks, n_params)
    base = _side([(p_est, tokens, config.fixed_group_size)], n_params)
    plan["flops_profile"] = float(flops_profile)
    if plan["flops"] is not None:
        plan["flops"] += float(flops_profile)
    ratio_bare = base["tokens"] / plan["tokens"] if plan["tokens"] > 0 else None
    if n_params is not None:
        ratio = base["flops"] / plan["flops"] if plan["flops"] > 0 else None
    else:
        ratio = ratio_bare if flops_profile == 0 else None
    return {"plan": plan, "baseline": base, "flops_profile": float(flops_profile), "ratio": ratio,
            "ratio_without_profile": ratio_bare}


def _side(chunks, n_params) -> dict:
    """Totals over (p, tokens, G) chunks: groups, rollouts, rollout tokens, informative and wasted."""
    groups = rollouts = 0
    rollout_tokens = informative = wasted = 0.0
    for p, tokens, g in chunks:
        p_inf = float(p_informative(p, g).sum())
        groups, rollouts = groups + p.size, rollouts + g * p.size
        rollout_tokens += g * float(tokens.sum())
        informative += p_inf
        wasted += g * (p.size - p_inf)
    flops_rollout = None if n_params is None else 2.0 * n_params * rollout_tokens
    flops_train = None if n_params is None else 6.0 * n_params * rollout_tokens
    return {"groups": groups, "rollouts": rollouts, "tokens": rollout_tokens,
            "flops": None if n_params is None else flops_rollout + flops_train,
            "flops_rollout": flops_rollout, "flops_train": flops_train,
            "informative_fraction": informative / groups if groups else None,
            "wasted_rollouts": wasted, "wasted_fraction": wasted / rollouts if rollouts else None}
