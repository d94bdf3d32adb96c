"""Which queries, with which group sizes, make up each step's batch: one sampler per strategy.

A batch is a rollout budget (`batch_rollouts`), not a query count: at G=2 it holds four times the
queries it holds at G=8. Samplers ask the loop for rollouts through `rollout(rows, sizes, seed) -> groups`
and keep all their state (cursor, phase, posterior) in a JSON-able `state_dict()` for checkpoints. Data
order comes from seeded generators keyed by position in the stream, so nothing random needs saving.

- GRPOSampler: fixed G, the whole dataset shuffled each epoch.
- DAPOSampler: DAPO's dynamic sampling: zero-variance groups are dropped after generation and new queries
  drawn until the batch is full of informative groups, at most `max_rounds` generation rounds a step (then
  the batch trains partly filled). Dropped groups are generated, so they count as rollouts and as waste.
- GRESOSampler: GRESO's pre-rollout filter (Zheng et al. 2025, arXiv 2506.02177), the strongest peer
  that needs no profile: fixed G over the shuffled dataset, but a query whose last z groups in a row
  all succeeded ("easy") or all failed ("hard") is skipped before rollout with probability
  1 - max(p^z, 0.01), so its rollouts are never spent; the batch is filled from the next queries of the
  epoch. The exploration probabilities p_easy and p_hard start at `explore` and move by 0.01 a step
  (within [0.05, 0.95]) so that all-success groups stay near target/3 of the batch and all-failure ones
  near 2 * target/3 (GRESO's defaults: explore 0.5, target 0.25; hard queries are retried more, as they
  are the ones training turns learnable). They adapt from the second epoch on, once every query has a
  history. Skipped queries cost nothing and are counted in the batch's info (`greso_skipped`).
- SGPOSampler: the plan. Phases in order, each at its G (kept unsolved queries are members of every
  phase); pacing by the plan's curriculum: `sequential`, `sorted` and `none` end a phase after one pass
  over its queries (the last batch of a pass holds what is left), `steps` after `steps_per_phase`
  steps, `plateau` when the phase's batch reward mean has not beaten its best by `plateau_min_delta` for
  `plateau_patience` steps. After the last phase the curriculum starts again from the first.
  With refresh on, every group updates a Beta posterior of its query (successes and failures added to
  the profile's counts) and the plan is remade from those counts at each phase boundary (or every K
  steps), so queries that became trivial leave and ones that became learnable enter.
  With `batch_informative` N > 0 (sgpo --batch-informative), a step is sized by what it teaches: queries are
  taken in the phase's order until the informative rollouts they are expected to hold, the sum of
  G x P_inf(p, G) over the empirical-Bayes posterior of each query's counts, reach N; `batch_rollouts` stays
  the cap. Removing waste then makes steps cheaper instead of denser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sgpo.plan import Phase
from sgpo.plan.beliefs import Drift, fitted_beliefs
from sgpo.train.grpo import Group

RolloutFn = Callable[[list[int], list[int], int], list[Group]]
STILL = Drift()  # the policy as it stands: a step's expected informative rollouts are judged on what is known now


@dataclass
class Batch:
    groups: list[Group]  # trained on
    dropped: list[Group] = field(default_factory=list)  # generated, then discarded (dapo)
    phase: int = 0
    group_size: int | None = None  # the phase's G; None when sizes are mixed
    info: dict = field(default_factory=dict)

    @property
    def generated(self) -> list[Group]:
        return self.groups + self.dropped


def round_seed(seed: int, round_: int) -> int:
    return seed + 7919 * round_


class GRPOSampler:
    """Fixed G over the whole dataset, reshuffled every epoch."""

    def __init__(self, n_queries: int, group_size: int, batch_rollouts: int, seed: int):
        self.n, self.group_size, self.seed = n_queries, group_size, seed
        self.per_batch = max(1, batch_rollouts // group_size)
        self.epoch, self.cursor = 0, 0
        self.events: list[str] = []  # what the last observe() did: only the plan's sampler has any

    def _take(self, k: int) -> list[int]:
        rows: list[int] = []
        while len(rows) < k:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            chunk = order[self.cursor : self.cursor + k - len(rows)].tolist()
            rows += chunk
            self.cursor += len(chunk)
            if self.cursor >= self.n:
                self.epoch, self.cursor = self.epoch + 1, 0
        return rows

    def next_batch(self, step: int, rollout: RolloutFn, seed: int) -> Batch:
        rows = self._take(self.per_batch)
        return Batch(
            groups=rollout(rows, [self.group_size] * len(rows), seed),
            group_size=self.group_size,
            info={"epoch": self.epoch},
        )

    def observe(self, batch: Batch) -> None:
        pass

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])


class DAPOSampler(GRPOSampler):
    def __init__(self, n_queries: int, group_size: int, batch_rollouts: int, seed: int, max_rounds: int = 8):
        super().__init__(n_queries, group_size, batch_rollouts, seed)
        self.max_rounds = max_rounds

    def next_batch(self, step: int, rollout: RolloutFn, seed: int) -> Batch:
        kept: list[Group] = []
        dropped: list[Group] = []
        rounds = 0
        while len(kept) < self.per_batch and rounds < self.max_rounds:
            rows = self._take(self.per_batch - len(kept))
            for g in rollout(rows, [self.group_size] * len(rows), round_seed(seed, rounds)):
                (kept if g.informative else dropped).append(g)
            rounds += 1
        return Batch(
            groups=kept,
            dropped=dropped,
            group_size=self.group_size,
            info={"epoch": self.epoch, "dapo_rounds": rounds, "dapo_filled": len(kept) / self.per_batch},
        )


class GRESOSampler(GRPOSampler):
    """GRPO's stream with GRESO's probabilistic skip of queries whose recent groups had zero variance."""

    STEP, LOWEST, HIGHEST, FLOOR = 0.01, 0.05, 0.95, 0.01  # GRESO's adaptation step, p range, least keep chance

    def __init__(
        self,
        n_queries: int,
        group_size: int,
        batch_rollouts: int,
        seed: int,
        *,
        explore: float = 0.5,
        target: float = 0.25,
    ):
        super().__init__(n_queries, group_size, batch_rollouts, seed)
        self.target = target
        self.p_easy = self.p_hard = explore
        self.streak = np.zeros(n_queries, dtype=np.int64)  # zero-variance groups in a row, latest last
        self.easy = np.zeros(n_queries, dtype=bool)  # the streak is of all-success groups (else all-failure)
        self.skipped = self.skipped_total = self.drawn_in = 0  # drawn_in: the epoch the last batch began in
        self._cache: tuple = (-1, None, None)

    def _draws(self) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's order (GRPO's) and one coin per position in it, from generators keyed by the
        epoch: a resumed run flips the same coins."""
        if self._cache[0] != self.epoch:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            coins = np.random.default_rng([self.seed, 1597, self.epoch]).random(self.n)
            self._cache = (self.epoch, order, coins)
        return self._cache[1], self._cache[2]

    def _take(self, k: int) -> list[int]:
        rows: list[int] = []
        self.skipped, self.drawn_in = 0, self.epoch
        while len(rows) < k:
            order, coins = self._draws()
            row = int(order[self.cursor])
            z = int(self.streak[row])
            keep = 1.0 if z == 0 else max((self.p_easy if self.easy[row] else self.p_hard) ** z, self.FLOOR)
            if coins[self.cursor] < keep or self.skipped >= self.n:  # never more than an epoch of skips a batch
                rows.append(row)
            else:
                self.skipped += 1
            self.cursor += 1
            if self.cursor >= self.n:
                self.epoch, self.cursor = self.epoch + 1, 0
        return rows

    def next_batch(self, step: int, rollout: RolloutFn, seed: int) -> Batch:
        batch = super().next_batch(step, rollout, seed)
        self.skipped_total += self.skipped
        batch.info.update(
            {
                "greso_skipped": self.skipped,
                "greso_skipped_total": self.skipped_total,
                "greso_p_easy": self.p_easy,
                "greso_p_hard": self.p_hard,
            }
        )
        return batch

    def observe(self, batch: Batch) -> None:
        easy = hard = 0
        for g in batch.generated:
            if g.informative:
                self.streak[g.query] = 0
                continue
            success = bool(g.rewards[0] > 0.5)
            easy, hard = easy + success, hard + (not success)
            same = self.streak[g.query] > 0 and self.easy[g.query] == success
            self.streak[g.query] = self.streak[g.query] + 1 if same else 1
            self.easy[g.query] = success
        groups = len(batch.generated)
        if self.drawn_in > 0 and groups:  # GRESO adapts once every query has been seen
            self.p_easy = self._adapt(self.p_easy, easy / groups, self.target / 3)
            self.p_hard = self._adapt(self.p_hard, hard / groups, 2 * self.target / 3)

    def _adapt(self, p: float, share: float, goal: float) -> float:
        """Too many zero-variance groups of this kind: skip more of them (lower p); too few: skip fewer."""
        return max(p - self.STEP, self.LOWEST) if share >= goal else min(p + self.STEP, self.HIGHEST)

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "p_easy": self.p_easy,
            "p_hard": self.p_hard,
            "drawn_in": self.drawn_in,
            "skipped_total": self.skipped_total,
            "streak": self.streak.tolist(),
            "easy": self.easy.tolist(),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.p_easy, self.p_hard = float(state["p_easy"]), float(state["p_hard"])
        self.skipped_total, self.drawn_in = int(state["skipped_total"]), int(state["drawn_in"])
        self.streak = np.asarray(state["streak"], dtype=np.int64)
        self.easy = np.asarray(state["easy"], dtype=bool)


Replanner = Callable[[np.ndarray, np.ndarray], "list[Phase] | None"]  # (successes, samples) -> phases


class SGPOSampler:
    """The plan's phases (sgpo.plan.Phase, exactly as the planner made them), each paced by its own `pacing`."""

    def __init__(
        self,
        phases: list[Phase],
        rows: np.ndarray,
        batch_rollouts: int,
        seed: int,
        *,
        successes: np.ndarray,
        samples: np.ndarray,
        replan: Replanner | None = None,
        refresh_every: int = 0,
        refresh_decay: float = 1.0,
        batch_informative: float = 0.0,
    ):
        self.phases, self.rows, self.budget, self.seed = phases, rows, batch_rollouts, seed
        self.batch_informative = batch_informative  # > 0: a step is filled until it expects this many informative
        self._beliefs: tuple = (None, {})  # (Beliefs of the counts, {G: P_inf per class}), refitted at re-plans
        self.successes, self.samples = successes.astype(float), samples.astype(float)  # the posterior's counts
        self.replan, self.refresh_every, self.decay = replan, refresh_every, refresh_decay
        self.phase = self.cursor = self.passes = self.steps_in_phase = self.cycle = self.replans = 0
        self.since_refresh, self.best, self.bad = 0, -np.inf, 0
        self.events: list[str] = []  # what happened at the last observe(): phase ends, re-plans

    def _order(self) -> np.ndarray:
        ph = self.phases[self.phase]
        if ph.ordered:
            return np.arange(ph.count)
        key = [self.seed, self.replans, self.cycle, self.phase, self.passes]
        return np.random.default_rng(key).permutation(ph.count)

    def next_batch(self, step: int, rollout: RolloutFn, seed: int) -> Batch:
        ph = self.phases[self.phase]
        wraps = ph.pacing["advance"] != "pass"  # steps / plateau phases go round until their rule ends them
        picked: list[int] = []
        used, expected = 0, 0.0
        order = self._order()
        while True:
            if self.cursor >= len(order):
                if not wraps or not len(order):
                    break
                self.passes, self.cursor = self.passes + 1, 0
                order = self._order()
            j = order[self.cursor]
            g = int(ph.group_sizes[j])
            taught = self.batch_informative and expected >= self.batch_informative
            if picked and (used + g > self.budget or taught):
                break
            picked.append(j)
            used += g
            if self.batch_informative:
                expected += g * self.p_informative(int(ph.positions[j]), g)
            self.cursor += 1
        members = ph.positions[picked]
        groups = rollout(self.rows[members].tolist(), ph.group_sizes[picked].tolist(), seed)
        for group, m in zip(groups, members):
            group.position = int(m)  # profile position, for the posterior
        info: dict[str, float] = {"cycle": self.cycle, "replans": self.replans, "phase_queries": ph.count}
        if self.batch_informative:
            info["expected_informative_rollouts"] = expected
        return Batch(groups=groups, phase=self.phase, group_size=ph.group_size or None, info=info)

    def p_informative(self, position: int, g: int) -> float:
        """The chance that a group of g fresh rollouts of the query at this profile position holds a success and a
        failure, under the empirical-Bayes posterior of the counts (the plan's beliefs, sgpo/plan/beliefs.py:
        fitted to the profile, refitted to the posterior's counts at each re-plan). Drift is not modelled: a
        step's queries are chosen from what is known now."""
        beliefs, table = self._beliefs
        if beliefs is None:
            beliefs = fitted_beliefs(self.successes, self.samples)
            self._beliefs = beliefs, table
        if g not in table:
            table[g] = beliefs.weights @ beliefs.informative(g, 0, STILL)[:, 0]  # per class
        return float(table[g][beliefs.classes[position]])

    def observe(self, batch: Batch) -> None:
        self.events = []
        for g in batch.generated:
            pos = g.position
            self.successes[pos] = self.decay * self.successes[pos] + float(np.sum(g.rewards > 0.5))
            self.samples[pos] = self.decay * self.samples[pos] + g.size
        self.steps_in_phase += 1
        self.since_refresh += 1
        ph = self.phases[self.phase]
        pace = ph.pacing
        reward = float(np.mean(np.concatenate([g.rewards for g in batch.groups]))) if batch.groups else 0.0
        if reward > self.best + pace.get("min_delta", 0.0):
            self.best, self.bad = reward, 0
        else:
            self.bad += 1
        ended = {
            "steps": lambda: self.steps_in_phase >= pace["steps"],
            "plateau": lambda: self.bad >= pace["patience"],
            "pass": lambda: self.cursor >= ph.count,
        }[pace["advance"]]()
        if ended:
            self._next_phase()
        elif self.replan is not None and self.refresh_every and self.since_refresh >= self.refresh_every:
            self._refresh(advance=False)

    def _next_phase(self) -> None:
        self.events.append(
            f"phase {self.phase} (G={self.phases[self.phase].group_size or 'mixed'}) ended after "
            f"{self.steps_in_phase} steps"
        )
        if self.replan is not None and not self.refresh_every:
            self._refresh(advance=True)
            return
        self._enter(self.phase + 1)

    def _enter(self, index: int) -> None:
        if index >= len(self.phases):
            index, self.cycle = 0, self.cycle + 1
        self.phase, self.cursor, self.passes, self.steps_in_phase = index, 0, 0, 0
        self.best, self.bad = -np.inf, 0

    def _refresh(self, *, advance: bool) -> None:
        """Remake the plan from the posterior; continue at the phase of the next (or same) group size."""
        self.since_refresh = 0
        self._beliefs = (None, {})  # the steps' expectations follow the counts the new plan is made from
        current = self.phases[self.phase].group_size
        assert self.replan is not None  # only called with re-planning on
        phases = self.replan(self.successes.copy(), self.samples.copy())
        if not phases:
            self.events.append("re-plan kept no query: the previous plan goes on")
            if advance:
                self._enter(self.phase + 1)
            return
        self.phases, self.replans = phases, self.replans + 1
        sizes = [ph.group_size for ph in phases]  # 0: mixed G
        cur = current
        later = [i for i, g in enumerate(sizes) if (g > cur if advance else g >= cur)]
        index = later[0] if later else len(phases)
        if advance or index != self.phase:
            self._enter(index)
        else:
            self.phase, self.cursor, self.passes = index, 0, 0
        self.events.append(
            f"re-plan {self.replans}: {sum(p.count for p in phases)} query slots in {len(phases)} phases"
        )

    def state_dict(self) -> dict:
        return {
            "phase": self.phase,
            "cursor": self.cursor,
            "passes": self.passes,
            "cycle": self.cycle,
            "steps_in_phase": self.steps_in_phase,
            "replans": self.replans,
            "since_refresh": self.since_refresh,
            "best": None if self.best == -np.inf else self.best,
            "bad": self.bad,
            "phases": [p.to_dict() for p in self.phases],
            "successes": self.successes.tolist(),
            "samples": self.samples.tolist(),
        }

    def load_state_dict(self, s: dict) -> None:
        for key in ("phase", "cursor", "passes", "cycle", "steps_in_phase", "replans", "since_refresh", "bad"):
            setattr(self, key, int(s[key]))
        self.best = -np.inf if s["best"] is None else float(s["best"])
        self.phases = [Phase.from_dict(d) for d in s["phases"]]
        self.successes, self.samples = np.asarray(s["successes"], float), np.asarray(s["samples"], float)


# what a first-epoch sampler's switch makes for the store to keep rides in its batch's info under this key: the
# recorder takes it out of the step's row and writes it (sgpo/train/recorder.py)
FIRST_EPOCH_KEY = "first_epoch_profile"
COUNTS = ("successes", "samples", "groups", "prompt_tokens", "completion_tokens")  # per query, in that order
Planner = Callable[[np.ndarray], "tuple[SGPOSampler, dict]"]  # first-epoch counts -> the plan's sampler, its record


class FirstEpochSampler:
    """sgpo without a separate profile (--plan-from-first-epoch): the first epoch is GRPO at a fixed G over the
    whole training set, which trains and measures every query's success rate as it goes; then the plan is made
    from those counts and its SGPOSampler takes over. `planner(counts)` (counts: COUNTS x queries) makes that
    sampler and what the store keeps of the switch (the profile the counts are and the plan); it is pure, so on
    resume it is called again with the same counts and the plan sampler's state is loaded into what it makes."""

    def __init__(self, n_queries: int, group_size: int, batch_rollouts: int, seed: int, planner: Planner):
        self.grpo = GRPOSampler(n_queries, group_size, batch_rollouts, seed)
        self.planner = planner
        self.counts = np.zeros((len(COUNTS), n_queries))
        self.plan: SGPOSampler | None = None
        self.events: list[str] = []

    def next_batch(self, step: int, rollout: RolloutFn, seed: int) -> Batch:
        batch = (self.plan or self.grpo).next_batch(step, rollout, seed)
        batch.info["first_epoch"] = self.plan is None
        return batch

    def observe(self, batch: Batch) -> None:
        if self.plan is not None:
            self.plan.observe(batch)
            self.events = self.plan.events
            return
        self.events = []
        for g in batch.generated:
            successes = float(np.sum(g.rewards > 0.5))
            self.counts[:, g.query] += (successes, g.size, 1, len(g.prompt_ids), g.completion_tokens)
        if self.grpo.epoch >= 1:  # every query has been rolled out once: plan from what the groups showed
            self.plan, made = self.planner(self.counts.copy())
            batch.info[FIRST_EPOCH_KEY] = made
            self.events = [made["words"]]

    def state_dict(self) -> dict:
        return {
            "grpo": self.grpo.state_dict(),
            "counts": self.counts.tolist(),
            "plan": None if self.plan is None else self.plan.state_dict(),
        }

    def load_state_dict(self, s: dict) -> None:
        self.grpo.load_state_dict(s["grpo"])
        self.counts = np.asarray(s["counts"], dtype=float)
        self.plan = None
        if s["plan"] is not None:
            self.plan, _ = self.planner(self.counts.copy())
            self.plan.load_state_dict(s["plan"])
