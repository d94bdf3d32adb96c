"""The held-out set a run is evaluated on: a named eval dataset, builtin:eval for built-in training data, or
else a seeded, disjoint split of the user's own dataset, made once and stored with the run.

    split = held_out_for(load_dataset("mine.jsonl"))         # no eval dataset named: 10% held out, seed 0
    split.train, split.held_out                              # Datasets; split.held_out_ids to plan without them
    split.record                                             # JSON for the run: spec, hash, share, seed, ids hash
    split.words                                              # "held out 20 of 200 queries of mine.jsonl ..."
    resplit(load_dataset("mine.jsonl"), split.record)        # the same split again (resume, evaluation)

The split is by prompt, so a prompt repeated in the file is never on both sides. Each distinct prompt gets a
keyed hash of its text (pandas' SipHash, keyed by the seed) and the lowest-hashed ones are held out: the
choice depends on the prompts alone, not on their order in the file. HELD_OUT_SHARE of the prompts are held
out, and at least MIN_HELD_OUT (on fewer, one query moves held-out accuracy by more than 0.05, and its
standard error passes 0.1); a dataset without as many prompts again to train on is refused, in one line.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sgpo.data import Dataset, DatasetSpec, load_dataset
from sgpo.errors import ConfigError, DataError

HELD_OUT_SHARE = 0.10  # of the distinct prompts
MIN_HELD_OUT = 20  # prompts held out at least: one query then moves accuracy by at most 0.05
SPLIT_SEED = 0
BUILTIN_EVAL = "builtin:eval"  # the held-out set of built-in training data, disjoint from builtin:train by prompt


@dataclass
class Split:
    train: Dataset  # what to train (and plan) on
    held_out: Dataset  # what to evaluate on
    record: dict  # JSON, stored with the run: how held_out was chosen (see held_out_for)

    @property
    def held_out_ids(self) -> pd.Series:
        """Ids of the held-out queries that are also in the training data (none unless split from it): a
        profile's frame without them plans only what is trained (`frame[~frame.id.isin(ids)]`)."""
        if self.record["kind"] != "split":
            return pd.Series([], dtype=object)
        return self.held_out.frame["id"]

    @property
    def words(self) -> str:
        return describe(self.record)


def held_out_for(
    dataset: Dataset,
    eval_dataset: str | DatasetSpec | Dataset | None = None,
    *,
    share: float = HELD_OUT_SHARE,
    seed: int = SPLIT_SEED,
    min_held_out: int = MIN_HELD_OUT,
) -> Split:
    """The held-out set for training on `dataset`: `eval_dataset` when one is named (kind "dataset"),
    builtin:eval when `dataset` is built-in (kind "builtin"), else a split of `dataset` (kind "split")."""
    if eval_dataset is not None or dataset.spec.startswith("builtin:"):
        kind = "dataset" if eval_dataset is not None else "builtin"
        held = eval_dataset if isinstance(eval_dataset, Dataset) else load_dataset(eval_dataset or BUILTIN_EVAL)
        return Split(dataset, held, {"kind": kind, "spec": held.spec, "hash": held.hash, "reward": held.reward})
    return split_held_out(dataset, share=share, seed=seed, min_held_out=min_held_out)


def split_held_out(
    dataset: Dataset, *, share: float = HELD_OUT_SHARE, seed: int = SPLIT_SEED, min_held_out: int = MIN_HELD_OUT
) -> Split:
    """Hold out `share` of the distinct prompts of `dataset` (at least `min_held_out`), chosen by `seed`."""
    if not 0 < share <= 0.5:
        raise ConfigError(f"--held-out-share={share:g} must lie in (0, 0.5]: the held-out part is the smaller one")
    prompts = dataset.frame["prompt"]
    codes, distinct = pd.factorize(prompts)
    n = len(distinct)
    k = max(min_held_out, math.ceil(share * n))
    if n - k < k:
        raise DataError(
            f"dataset {dataset.source} has {n:,} distinct prompts: too few to hold out {k} for evaluation and "
            f"train on as many ({2 * k} needed); name a held-out set with --eval-dataset, or use more data"
        )
    key = f"sgpo-split-{seed:05d}"[-16:]  # SipHash takes a 16-character key
    rank = pd.util.hash_array(np.asarray(distinct, dtype=object), hash_key=key)
    chosen = np.zeros(n, dtype=bool)
    chosen[np.argpartition(rank, k - 1)[:k]] = True
    held = chosen[codes]
    held_out, train = _part(dataset, np.flatnonzero(held)), _part(dataset, np.flatnonzero(~held))
    record = {
        "kind": "split",
        "spec": dataset.spec,
        "hash": dataset.hash,
        "share": share,
        "seed": seed,
        "min_held_out": min_held_out,
        "queries": len(dataset),
        "held_out": len(held_out),
        "train": len(train),
        "held_out_ids": _ids_digest(held_out.frame["id"]),
    }
    return Split(train, held_out, record)


def resplit(dataset: Dataset, record: dict) -> Split:
    """The split a run recorded, made again from `dataset` (the whole training data); DataError when the
    dataset, or the queries held out, are not the ones recorded."""
    if record["kind"] != "split":
        return held_out_for(dataset, record["spec"] if record["kind"] == "dataset" else None)
    if dataset.hash != record["hash"]:
        raise DataError(
            f"dataset {dataset.source} now holds other rows (hash {dataset.hash}) than when its held-out part "
            f"was split off (hash {record['hash']}): restore the file, or start a new run"
        )
    split = split_held_out(dataset, share=record["share"], seed=record["seed"], min_held_out=record["min_held_out"])
    if split.record["held_out_ids"] != record["held_out_ids"]:
        raise DataError(
            f"dataset {dataset.source}: the held-out queries differ from the ones recorded; start a new run"
        )
    return split


def describe(record: dict) -> str:
    """The held-out set in words, for the run's log, its page and `sgpo train`'s output."""
    if record["kind"] == "builtin":
        return f"evaluated on {record['spec']} (the built-in held-out set)"
    if record["kind"] == "dataset":
        return f"evaluated on --eval-dataset {record['spec']}"
    return (
        f"held out {record['held_out']:,} of {record['queries']:,} queries of {record['spec']} for evaluation "
        f"({record['share']:.0%} of its prompts, at least {record['min_held_out']}; seed {record['seed']}; "
        f"disjoint by prompt) and trained on the other {record['train']:,}"
    )


def _part(dataset: Dataset, positions: np.ndarray) -> Dataset:
    """Rows of `dataset` as a Dataset of their own; its hash covers its rows and its reward."""
    frame = dataset.frame.iloc[positions].reset_index(drop=True)
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    digest = hashlib.sha256(rows + f":{dataset.reward}".encode()).hexdigest()[:16]
    return replace(dataset, frame=frame, hash=digest)


def _ids_digest(ids: pd.Series) -> str:
    return hashlib.sha256("\n".join(ids.astype(str)).encode()).hexdigest()[:16]
