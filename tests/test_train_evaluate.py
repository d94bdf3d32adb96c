"""Held-out evaluation during a run: a fixed subset, bands assigned once under the initial policy, seeds
that make evaluations differ by the weights alone, FLOPs counted apart from training."""

from __future__ import annotations

import numpy as np
import pytest

from sgpo.accounting import Counters
from sgpo.data import load_dataset
from sgpo.generate import Generation, Sample
from sgpo.train.engine import STEP_SEED
from sgpo.train.evaluate import BAND_SEED, EVAL_SEED, Evaluator, eval_subset
from tests.toys import toy_config

N = 500


class Fixed:
    """Sample i of query q is right when (q + i) % 3 == 0; one prompt and one completion token each."""

    backend = "fake"

    def __init__(self, answers):
        self.answers, self.seeds = answers, []

    def generate(self, prompts, *, n, temperature, max_new_tokens, seed):
        self.seeds.append((n, temperature, seed))
        rows = [self.index[p] for p in prompts]
        return [
            Generation(p, [1], [Sample(self.answers[q] if (q + i) % 3 == 0 else "?", [2], True) for i in range(n)])
            for p, q in zip(prompts, rows)
        ]


@pytest.fixture
def evaluator(toy):
    dataset = load_dataset(str(toy.data))
    gen = Fixed(dataset.frame["answer"].tolist())
    gen.index = {p: i for i, p in enumerate(dataset.frame["prompt"])}
    cfg = toy_config(toy, eval_samples=3, seed=5)
    return Evaluator(cfg, dataset, gen, Counters(), N), gen


def test_bands_are_assigned_once_with_their_own_seed_then_every_evaluation_uses_the_same_seed(evaluator):
    ev, gen = evaluator
    first = ev.evaluate(0)
    bands = ev.bands.copy()
    assert (
        set(bands) <= {"solved", "middle", "unsolved"} and first["band_queries"]["middle"] == (bands == "middle").sum()
    )
    again = ev.evaluate(2)
    assert np.array_equal(ev.bands, bands) and again["accuracy"] == first["accuracy"]  # same weights, same answer
    base = 5 * STEP_SEED
    assert gen.seeds == [
        (8, 1.0, base + BAND_SEED),  # the band pass, once
        (3, 1.0, base + EVAL_SEED),
        (1, 0.0, base + EVAL_SEED),  # greedy
        (3, 1.0, base + EVAL_SEED),
        (1, 0.0, base + EVAL_SEED),
    ]


def test_evaluation_flops_are_counted_apart_from_training(evaluator):
    ev, _ = evaluator
    result = ev.evaluate(0)
    queries = len(ev.frame)
    assert result["tokens"] == queries * (3 + 1) * 2  # prompt + completion, each sample and the greedy one
    assert result["flops"] == pytest.approx(2 * N * result["tokens"])
    band_pass = queries * 8 * 2
    assert ev.counters["flops_eval"] == pytest.approx(2 * N * (result["tokens"] + band_pass))
    assert ev.counters.totals()["flops_total"] == 0


def test_the_last_evaluation_step_and_bands_round_trip_but_the_initial_one_owes_nothing(evaluator, toy):
    ev, gen = evaluator
    ev.evaluate(0)
    assert ev.last_step is None and ev.due(2) and not ev.due(3)  # toy_config evaluates every 2 steps
    ev.evaluate(4)
    state = ev.state_dict()
    fresh = Evaluator(ev.cfg, load_dataset(str(toy.data)), gen, Counters(), N)
    fresh.load_state_dict(state)
    assert fresh.last_step == 4 and np.array_equal(fresh.bands, ev.bands) and fresh.last == ev.last


def test_an_eval_limit_picks_a_fixed_subset_by_the_run_seed(toy):
    frame = load_dataset(str(toy.data)).frame
    a, b = eval_subset(frame, 10, seed=1), eval_subset(frame, 10, seed=1)
    assert len(a) == 10 and a["id"].tolist() == b["id"].tolist() and a["id"].is_monotonic_increasing
    assert eval_subset(frame, 10, seed=2)["id"].tolist() != a["id"].tolist()
    assert eval_subset(frame, 0, seed=1) is frame and eval_subset(frame, 500, seed=1) is frame
