"""Sampling in rounds: every query gets a first round, and only the queries whose plan bucket is not yet
settled get more, up to N (`sgpo profile --adaptive`). Pure numpy apart from the `generate` call passed in.

    sizes = round_sizes(ProfileConfig(adaptive=True, samples=16, first_round=4, round_size=2))  # [4, 2, ..., 2]
    settle_probability(successes=np.array([0, 2, 4]), samples=4, max_samples=16)
    gens, rewards = sample_in_rounds(generate, prompts, score, config, seed=batch_seed)

The rule. A query's *bucket* (sgpo.vocab) is what the planner does with it at its default knobs (PlanConfig()):
unsolved (p_hat = 0), trivial (p_hat > 0.75), or learnable with its group size (the informative rule:
G = 4 for about 0.3 <= p_hat <= 0.7, else G = 8). After s successes in n samples, with a uniform
Beta(1, 1) prior, p ~ Beta(1 + s, 1 + n - s), and the successes X of the N - n samples a fixed profile
would still draw are Beta-binomial(N - n, 1 + s, 1 + n - s). The query is *settled*, and stops, when

    P(bucket((s + X) / N) == bucket(s / n)) >= confidence,

that is when drawing all N samples would leave its decision and group size as they are now with at least
that probability; and it stops at N whatever happens. "Unsolved" needs no special case: p = 0 is a point
without posterior mass, but "no success in all N samples" is an event with a probability, (n + 1) / (N + 1)
after n failures in a row, so an unsolved query stops once n >= confidence * (N + 1) - 1. The rule
settles against the default plan knobs; a plan made with other thresholds gets no such guarantee.

The first round is sampled with the batch's seed, so it holds exactly the samples a fixed profile with
N = first round would draw; round k >= 1 uses a seed derived from (batch seed, k). Samples are not
shared with a fixed profile of another N: the transformers backend draws a batch's samples from one
random stream, so a query's k-th sample depends on the batch it is drawn in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sgpo.plan.config import PlanConfig
from sgpo.plan.groups import group_size_for
from sgpo.vocab import BUCKET_TRIVIAL, BUCKET_UNSOLVED, bucket_label

UNSOLVED, TRIVIAL = 0, 1  # bucket codes; a learnable query's code is its group size (>= 2)


def buckets(p_hat, plan=None) -> np.ndarray:
    """The planner's decision and group size per query as one code: UNSOLVED, TRIVIAL, or G (learnable),
    at `plan`'s knobs (default PlanConfig()). Pure and vectorised."""
    plan = plan or PlanConfig()
    p = np.asarray(p_hat, dtype=float)
    out = group_size_for(p, plan).astype(np.int64)
    out[p > plan.trivial_threshold] = TRIVIAL
    out[p == 0] = UNSOLVED
    return out


def bucket_name(code: int) -> str:
    """A bucket code's name in the vocabulary (sgpo.vocab): 'unsolved', 'trivial' or 'G=4'."""
    return {UNSOLVED: BUCKET_UNSOLVED, TRIVIAL: BUCKET_TRIVIAL}.get(int(code)) or bucket_label(code)


def settle_probability(successes, samples: int, max_samples: int, plan=None) -> np.ndarray:
    """P(bucket after `max_samples` == bucket now) for each query holding `successes` in `samples` draws:
    the Beta-binomial posterior predictive of a uniform prior (module docstring). 1.0 at max_samples."""
    s = np.asarray(successes, dtype=np.int64)
    n, big_n = int(samples), int(max_samples)
    m = big_n - n
    if m <= 0:
        return np.ones(s.shape)
    x = np.arange(m + 1)
    # All Gamma arguments are whole numbers here (prior a = b = 1), so log Gamma(k + 1) = log k!.
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, big_n + 2)))])
    f = n - s
    log_pmf = (
        log_fact[m]
        - log_fact[x]
        - log_fact[m - x]  # log C(m, x)
        + log_fact[s[:, None] + x]
        + log_fact[f[:, None] + m - x]
        - log_fact[big_n + 1]  # log B(1+s+x, 1+f+m-x)
        - (log_fact[s] + log_fact[f] - log_fact[n + 1])[:, None]
    )  # - log B(1+s, 1+f)
    same = buckets((s[:, None] + x) / big_n, plan) == buckets(s / n, plan)[:, None]
    return (np.exp(log_pmf) * same).sum(axis=1)


def settled(successes, samples: int, config, plan=None) -> np.ndarray:
    """Which queries stop after `samples` draws: settled at `config.confidence`, or at `config.samples`."""
    if samples >= config.samples:
        return np.ones(np.shape(successes), dtype=bool)
    return settle_probability(successes, samples, config.samples, plan) >= config.confidence - 1e-12


def round_sizes(config) -> list[int]:
    """Samples drawn per round: all N at once for a fixed profile; else the first round, then round_size at a
    time, the last round cut to reach N exactly."""
    if not config.adaptive:
        return [config.samples]
    sizes = [min(config.first_round, config.samples)]
    while sum(sizes) < config.samples:
        sizes.append(min(config.round_size, config.samples - sum(sizes)))
    return sizes


def round_seed(seed: int, k: int) -> int:
    """Round k's sampling seed: the batch seed itself for round 0 (a fixed profile's samples)."""
    if k == 0:
        return seed
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0] % (2**31 - 1))


def sample_in_rounds(
    generate: Callable, prompts: list[str], score: Callable, config, seed: int, plan=None
) -> tuple[list, list[list[float]]]:
    """Each prompt's Generation (every sample drawn, in the order drawn) and rewards.

    generate(prompts, n=, seed=) -> [Generation]; score(i, generation) -> rewards of prompt i's new
    samples. Each round generates for the unsettled prompts only, batched across them."""
    gens: list = [None] * len(prompts)
    rewards: list[list[float]] = [[] for _ in prompts]
    live, drawn = np.arange(len(prompts)), 0
    for k, size in enumerate(round_sizes(config)):
        outs = generate([prompts[i] for i in live], n=size, seed=round_seed(seed, k))
        for i, g in zip(live.tolist(), outs):
            rewards[i].extend(score(i, g))
            if gens[i] is None:
                gens[i] = g
            else:
                gens[i].samples.extend(g.samples)
        drawn += size
        wins = np.array([sum(r > 0.5 for r in rewards[i]) for i in live])  # rewards are binary: 1.0 a success
        live = live[~settled(wins, drawn, config, plan)]
        if not live.size:
            break
    return gens, rewards
