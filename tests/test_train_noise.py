"""The critical-batch gauge: chunks of whole groups, chunk gradient norms read off gradient accumulation, the
pairwise estimator and its smoothing, the knob's checks, and the gauge on a real run (metrics, resume)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from sgpo.errors import ConfigError
from sgpo.runs import resume, train
from sgpo.store import Store
from sgpo.train import TrainConfig
from sgpo.train.grpo import LossConfig, accumulate_gradients
from sgpo.train.loop import Trainer
from sgpo.train.noise import EMA_DECAY, METRICS, NoiseScale, split_chunks
from sgpo.train.setup import prepare
from sgpo.vocab import METRIC_WORDS
from tests.toys import grads_of, tiny_model_dir, toy_config, toy_groups


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from sgpo.model import load_model

    return load_model(tiny_model_dir(tmp_path_factory.mktemp("m"), head_scale=4.0))


def _sq(m) -> float:
    return sum(float(g.pow(2).sum()) for g in grads_of(m).values())


def _members(sizes):
    starts = np.cumsum([0, *sizes])
    return [list(range(starts[j], starts[j + 1])) for j in range(len(sizes))]


def test_chunks_hold_whole_groups_balanced_by_informative_rollouts():
    sizes = [8, 2, 4, 4, 2]
    members = _members(sizes)
    chunks = split_chunks(members, [True] * 5, 2)
    assert sorted(i for c in chunks for i in c) == list(range(20))
    for c in chunks:  # every group lies whole in one chunk
        assert all(set(m) <= set(c) or not set(m) & set(c) for m in members)
    assert sorted(len(c) for c in chunks) == [10, 10]
    # zero-advantage groups (trained when skipping is off) weigh nothing and never make a chunk on their own
    chunks = split_chunks(members, [True, False, True, False, False], 3)
    assert len(chunks) == 2 and sorted(i for c in chunks for i in c) == list(range(20))
    assert split_chunks(members, [True, False, False, False, False], 2) == [list(range(20))]  # nothing to compare
    assert split_chunks(members, [True] * 5, 0) == [list(range(20))]


def _grads(m) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads_of(m).values()])


@pytest.mark.parametrize("aggregation", ["token-mean", "sequence-mean"])
def test_the_gauge_leaves_the_gradient_unchanged_and_reads_each_chunks_own_mean(model, aggregation):
    groups = toy_groups([8, 4, 4, 2], equal=(1,))
    plain, gauged = copy.deepcopy(model), copy.deepcopy(model)
    accumulate_gradients(plain, groups, LossConfig(aggregation=aggregation), pad_id=0)
    stats = accumulate_gradients(gauged, groups, LossConfig(aggregation=aggregation, gauge_chunks=2), pad_id=0)
    for name, g in grads_of(plain).items():
        torch.testing.assert_close(grads_of(gauged)[name], g, rtol=1e-4, atol=1e-7)
    # each chunk's own mean gradient: the gradient of its groups trained alone (8 | 4 + 2; group 1 has none)
    informative = [g for g in groups if g.informative]
    assert sorted(stats.chunk_rollouts) == [6, 8]
    by_size = {8: informative[:1], 6: informative[1:]}
    means = {}
    for sq, rollouts in zip(stats.chunk_sq, stats.chunk_rollouts):
        m = copy.deepcopy(model)
        accumulate_gradients(m, by_size[rollouts], LossConfig(aggregation=aggregation), pad_id=0)
        assert sq == pytest.approx(_sq(m), rel=1e-4)
        means[rollouts] = _grads(m)
    # and the sum of the chunks' means, whose pairwise dot product is the gauge's |G|^2
    assert stats.sum_sq == pytest.approx(float((means[8] + means[6]).pow(2).sum()), rel=1e-4)


def test_with_skipping_off_the_gauge_reads_the_same_informative_means(model):
    groups = toy_groups([8, 4, 4, 2], equal=(1,))
    skip = accumulate_gradients(copy.deepcopy(model), groups, LossConfig(gauge_chunks=2), pad_id=0)
    every = accumulate_gradients(
        copy.deepcopy(model), groups, LossConfig(gauge_chunks=2, skip_zero_advantage=False), pad_id=0
    )
    assert every.trained_sequences == 18 and skip.trained_sequences == 14
    assert sorted(every.chunk_rollouts) == sorted(skip.chunk_rollouts)
    assert every.sum_sq == pytest.approx(skip.sum_sq, rel=1e-4)
    assert sorted(every.chunk_sq) == pytest.approx(sorted(skip.chunk_sq), rel=1e-4)


def _chunked_step(rng, true_g, sigma, sizes, weights=None):
    """The chunks' mean gradients of one step: each sample is G + noise; `weights` (a token count per sample)
    makes a chunk's mean a weighted one, as a token-mean loss does."""
    means = []
    for b in sizes:
        samples = true_g + rng.normal(0, sigma, (b, len(true_g)))
        w = np.ones(b) if weights is None else weights(b)
        means.append((w[:, None] * samples).sum(0) / w.sum())
    return means


@pytest.mark.parametrize("weighted", [False, True])
def test_the_estimator_recovers_a_known_noise_scale(weighted):
    rng = np.random.default_rng(0)
    true_g, sigma = np.full(200, 0.1), 0.5  # |G|^2 = 2, tr(Sigma) = 50: B_simple = 25
    gauge = NoiseScale(decay=0.99)
    # token-mean weighting (lengths 4-30 per rollout) raises a weighted mean's noise by E[w^2] / E[w]^2 (about
    # 1.2 here): the estimator must read that effective noise, not be thrown by the step's sizes in rollouts
    weights = (lambda b: rng.integers(4, 31, b).astype(float)) if weighted else None
    inflation = 1.0
    if weighted:
        w = np.arange(4, 31, dtype=float)
        inflation = float((w**2).mean() / w.mean() ** 2)
    for _ in range(3000):
        sizes = [int(rng.integers(4, 12)) for _ in range(3)]
        means = _chunked_step(rng, true_g, sigma, sizes, weights)
        total = sum(means)
        row = gauge.update(
            [float(m @ m) for m in means], sizes, float(total @ total), informative=sum(sizes), rollouts=4 * sum(sizes)
        )
    assert row["noise_scale_informative"] == pytest.approx(25 * inflation, rel=0.15)
    assert row["noise_scale_rollouts"] == pytest.approx(100 * inflation, rel=0.15)  # a quarter informative
    assert row["noise_informative_share"] == pytest.approx(0.25)


def test_the_estimator_is_not_fooled_by_two_chunks_of_unequal_size():
    """Two chunks a step, of very different sizes (a step's groups are few and uneven): the pairwise form stays
    unbiased, where the two-batch form with the whole step as the large batch is not."""
    rng = np.random.default_rng(1)
    true_g, sigma = np.full(100, 0.2), 0.6  # |G|^2 = 4, tr(Sigma) = 36: B_simple = 9
    gauge = NoiseScale(decay=0.995)
    for _ in range(6000):
        sizes = [2, 14] if rng.random() < 0.5 else [14, 2]
        means = _chunked_step(rng, true_g, sigma, sizes)
        total = sum(means)
        row = gauge.update([float(m @ m) for m in means], sizes, float(total @ total), informative=16, rollouts=16)
    assert row["noise_scale_informative"] == pytest.approx(9, rel=0.25)


def test_a_step_with_fewer_than_two_chunks_moves_only_the_share():
    gauge = NoiseScale()
    assert gauge.update([], [], math.nan, informative=0, rollouts=64) == {}
    row = gauge.update([4.0, 5.0], [8, 8], 12.0, informative=16, rollouts=64)
    assert row["noise_informative_share"] == pytest.approx(16 / (64 + EMA_DECAY * 64))  # the empty step counts
    assert set(row) == set(METRICS)
    again = NoiseScale()
    again.load_state_dict(json.loads(json.dumps(gauge.state_dict())))
    assert again.state_dict() == gauge.state_dict()


def test_an_unresolved_mean_gradient_gives_an_infinite_scale_not_a_negative_one():
    row = NoiseScale().update([4.0, 4.0], [4, 4], 10.0, informative=8, rollouts=8)  # chunks agree: G_1 . G_2 = 1
    assert row["noise_g2"] == pytest.approx(1.0) and row["noise_trace"] == pytest.approx(12.0)
    row = NoiseScale().update([4.0, 4.0], [4, 4], 4.0, informative=8, rollouts=8)  # chunks disagree: G_1 . G_2 < 0
    assert row["noise_g2"] < 0 and row["noise_scale_informative"] == math.inf


def test_every_gauge_metric_has_a_definition_in_the_vocabulary():
    assert set(METRICS) <= set(METRIC_WORDS) and all(METRIC_WORDS[m] for m in METRICS)


@pytest.mark.parametrize(
    "knobs, words",
    [
        ({"gauge_chunks": 1}, "--gauge-chunks 1"),
        ({"gauge_chunks": 2, "strategy": "grpo", "batch_rollouts": 8, "group_size": 8}, "--gauge-chunks 2"),
        ({"gauge_chunks": 2, "strategy": "sgpo", "batch_rollouts": 3}, "--gauge-chunks 2"),
    ],
)
def test_a_gauge_a_run_cannot_have_is_refused_naming_the_option(knobs, words):
    with pytest.raises(ConfigError, match=words) as err:
        TrainConfig(**knobs)
    assert "\n" not in str(err.value)


def test_the_gauge_is_on_by_default_only_where_a_step_holds_two_groups():
    assert TrainConfig(strategy="grpo").gauge == 2
    assert TrainConfig(strategy="grpo", batch_rollouts=8, group_size=8).gauge == 0
    assert TrainConfig(strategy="grpo", gauge_chunks=0).gauge == 0
    assert TrainConfig(strategy="grpo", gauge_chunks=3).gauge == 3


def test_a_run_logs_the_gauge_and_resume_keeps_its_smoothed_state(toy, tmp_path, stop_after):
    """The gauge's EMA lives in the checkpoint: a run stopped after step 3 and resumed logs the same gauge as one
    trained straight through."""
    cfg = toy_config(toy, steps=6, eval_every=0, checkpoint_every=1)
    straight = Store(tmp_path / "a" / "sgpo.db")
    done = train(cfg, straight, name="gauge")
    m = straight.metrics_frame(done["run_id"]).iloc[1:]
    assert m["noise_informative_share"].between(0, 1).all()
    assert m["noise_scale_rollouts"].notna().all()
    finite = m[np.isfinite(m["noise_scale_rollouts"])]
    assert (finite["noise_scale_rollouts"] >= finite["noise_scale_informative"]).all()

    store = Store(tmp_path / "b" / "sgpo.db")
    prep = prepare(cfg, store, name="gauge")
    trainer = Trainer(prep, store, store.create_run(**prep.run_row()), log=lambda msg: None)
    stop_after(trainer, 3)
    assert trainer.run()["status"] == "stopped"
    resumed = store.metrics_frame(resume("gauge", store)["run_id"]).iloc[1:]
    for column in METRICS:
        assert resumed[column].tolist() == pytest.approx(m[column].tolist(), rel=1e-6, nan_ok=True), column
