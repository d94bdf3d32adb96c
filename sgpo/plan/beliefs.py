"""What training will see: each query's success rate as a distribution, and how training moves it.

    beliefs = fitted_beliefs(successes, samples)        # empirical Bayes over the whole profile
    members = beliefs.mass(phase.positions)             # the phase's queries, spread over the support
    members @ beliefs.informative(4, np.arange(100), DRIFT)   # expected informative G=4 groups, per step

Two effects make a plug-in forecast P_inf(p_hat, G) wrong, and both are modelled here:

- Regression to the mean. p_hat from 8 samples is noisy, and the plan selects on it: a query seen to
  succeed 6 times in 8 is, on average, not a 0.75 query. Each query's success rate gets the posterior
  under a prior fitted to the profile itself (empirical Bayes: the nonparametric maximum-likelihood
  prior on a logit grid, fitted by EM; Kiefer and Wolfowitz). Queries with the same (successes, samples)
  share a posterior, so the work is per class, not per query: 1e6 queries cost what 9 do.
  Checked on builtin:train with the starter policy against a second, independent 8-sample profile: the
  informative-group fraction of GRPO (G = 8) is 0.416 plug-in, 0.500 here, 0.507 on fresh samples; the
  default plan's first phase 0.670, 0.591 and 0.602; the paper rule's 0.347, 0.309 and 0.314.
- Drift. Training moves the policy: on the logit scale every query's success rate shifts up (the policy
  gets better) and spreads apart (some queries are learnt, others not), fast at first, then slower.
  Measured on the starter policy (lr 5e-5 after 20 warmup steps, 256 rollouts a step): the checkpoints
  of one GRPO run after 44, 88 and 176 steps were profiled again with fresh seeds, and the shift and
  spread that best explain each 9 x 9 table of (successes before, successes after) were 1.10 and 1.40,
  1.55 and 1.80, 2.00 and 2.30 logits. shift = 0.65 ln(1 + t/10) and spread = 0.83 ln(1 + t/10) follow
  them within 5%: forecast.DRIFT. The planner's `drift` knob scales its speed for other learners.

The expectation of P_inf(p, G) = 1 - p^G - (1 - p)^G is taken over the posterior and over the drift's
spread (Gauss-Hermite quadrature), so "informative" means what a group of G fresh rollouts will be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgpo.plan.groups import p_informative

GRID = np.linspace(-8.0, 8.0, 65)  # logits of the prior's support: p from 3e-4 to 1 - 3e-4, in steps of 0.25
EM_ITERATIONS = 500  # the NPMLE's EM converges slowly but each iteration is (classes x 65): microseconds
MAX_CLASSES = 1024  # more distinct (successes, samples) pairs or p values than this are rounded (see below)
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(9)  # E over N(0, 1) as a 9-point weighted sum
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class Drift:
    """How far training has moved the policy after t optimizer steps, on the logit scale.

    Every query's success logit moves up by shift * ln(1 + t / tau) and, query by query, by a further
    N(0, (spread * ln(1 + t / tau))^2): the policy gets better on average while some queries are learnt
    and others are not, fast at first and more slowly later. shift = spread = 0: the policy stands still."""

    shift: float = 0.0
    spread: float = 0.0
    tau: float = 1.0  # steps

    def moved(self, steps) -> np.ndarray:
        """ln(1 + t / tau): how much of the drift has happened after `steps` steps."""
        return np.log1p(np.asarray(steps, dtype=float) / self.tau)

    @property
    def still(self) -> bool:
        return self.shift == 0 and self.spread == 0


@dataclass
class Beliefs:
    """Per class of queries, a distribution over success rates: weights (classes, support) on logits."""

    logits: np.ndarray  # (support,) the support on the logit scale (+-inf: p exactly 1 or 0)
    weights: np.ndarray  # (classes, support), rows sum to 1
    classes: np.ndarray  # (queries,) int64: the class of each query
    fitted: bool  # True: empirical-Bayes posteriors; False: the plan's point estimates taken as exact

    @property
    def n_classes(self) -> int:
        return self.weights.shape[0]

    def mass(self, positions: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """(support,): how many of `positions` (or how much of `values` over them) sit at each support
        point, summed over their posteriors."""
        per_class = np.bincount(
            self.classes[positions], weights=None if values is None else values[positions], minlength=self.n_classes
        )
        return per_class @ self.weights

    def success(self) -> np.ndarray:
        """E[p] per class, under the initial policy."""
        return self.weights @ _sigmoid(self.logits)

    def informative(self, group_size: int, steps, drift: Drift) -> np.ndarray:
        """(support, len(steps)): at each support point, the chance that a group of `group_size` rollouts
        drawn after `steps` optimizer steps holds a success and a failure."""
        steps = np.atleast_1d(np.asarray(steps, dtype=float))
        if drift.still:
            return np.repeat(p_informative(_sigmoid(self.logits), group_size)[:, None], steps.size, axis=1)
        # (steps, nodes, support): logits moved by the shift and by the spread at each quadrature node
        amount = drift.moved(steps)[:, None, None]
        moved = self.logits[None, None, :] + amount * (drift.shift + drift.spread * _NODES[None, :, None])
        return np.tensordot(_WEIGHTS, p_informative(_sigmoid(moved), group_size), axes=(0, 1)).T


def fitted_beliefs(successes: np.ndarray, samples: np.ndarray) -> Beliefs:
    """Empirical-Bayes posteriors: a prior on GRID fitted to all (successes, samples) pairs by EM
    (the nonparametric MLE), then each pair's posterior under it."""
    successes, samples = np.asarray(successes, dtype=float), np.asarray(samples, dtype=float)
    keys, classes, counts = _classes(np.stack([successes, samples], axis=1))
    if len(keys) > MAX_CLASSES:  # whole but very varied sample counts
        keys, classes, counts = _classes(_rescaled(np.stack([successes, samples], axis=1)))
    s, n = keys[:, :1], keys[:, 1:]
    log_p, log_q = -np.logaddexp(0.0, -GRID), -np.logaddexp(0.0, GRID)  # log p and log(1 - p), stably
    log_lik = s * log_p[None, :] + (n - s) * log_q[None, :]
    lik = np.exp(log_lik - log_lik.max(axis=1, keepdims=True))  # per-row scale cancels in the posterior
    prior = np.full(GRID.size, 1.0 / GRID.size)
    share = counts / counts.sum()
    for _ in range(EM_ITERATIONS):
        post = lik * prior
        post /= post.sum(axis=1, keepdims=True)
        prior = share @ post
    post = lik * prior
    post /= post.sum(axis=1, keepdims=True)
    return Beliefs(GRID, post, classes.reshape(-1).astype(np.int64), fitted=True)


def _classes(pairs: np.ndarray):
    """Distinct (successes, samples) pairs, the class of each query, and how many queries each holds.

    Whole counts (a profile's) are keyed as one integer, in O(n). Fractional counts (a decayed refresh
    posterior) can make every query its own class: beyond MAX_CLASSES they are rounded to whole ones,
    then if need be rescaled to at most 40 samples (the posterior widens a little; its mean stays)."""
    whole = np.round(pairs)
    if np.array_equal(whole, pairs) and pairs.size and pairs.min() >= 0:
        width = int(pairs[:, 1].max()) + 1
        key = (pairs[:, 0] * width + pairs[:, 1]).astype(np.int64)
        if width * width <= 1 << 22:  # a histogram of the keys: no sort at all
            tally = np.bincount(key, minlength=width * width)
            present = np.flatnonzero(tally)
            index = np.zeros(tally.size, dtype=np.int64)
            index[present] = np.arange(present.size)
            return np.stack([present // width, present % width], axis=1).astype(float), index[key], tally[present]
        values, classes, counts = np.unique(key, return_inverse=True, return_counts=True)
        return np.stack([values // width, values % width], axis=1).astype(float), classes, counts
    keys, classes, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    if len(keys) > MAX_CLASSES:
        return _classes(whole)
    return keys, classes, counts


def _rescaled(pairs: np.ndarray) -> np.ndarray:
    scale = np.minimum(1.0, 40.0 / np.maximum(pairs[:, 1:], 1.0))  # (41 * 42) / 2 pairs at most
    return np.round(pairs * scale)


def point_beliefs(p: np.ndarray) -> Beliefs:
    """Each query's p taken as exact: one class per distinct value (with more than MAX_CLASSES distinct
    values, p is rounded to a multiple of 1/MAX_CLASSES, which moves P_inf(p, G) by at most G/2048)."""
    p = np.asarray(p, dtype=float)
    values, classes = np.unique(p, return_inverse=True)
    if values.size > MAX_CLASSES:
        values, classes = np.unique(np.round(p * MAX_CLASSES) / MAX_CLASSES, return_inverse=True)
    with np.errstate(divide="ignore"):
        logits = np.log(values) - np.log1p(-values)
    return Beliefs(logits, np.eye(values.size), classes.reshape(-1).astype(np.int64), fitted=False)


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))
