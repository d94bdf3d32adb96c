"""A profile that pays for itself (sgpo --plan-from-first-epoch): the run's own first epoch is its profile.

    prep.profile_frame                     # setup gives the run its profile table with no samples yet
    sampler = FirstEpochSampler(n, G, batch_rollouts, seed, planner(prep, replanner))   # sgpo/train/batches.py
    made = planner(prep, replanner)(counts)[1]   # at the switch: the profile the counts are, the plan, the words

The first epoch trains fixed-G GRPO at --group-size over the whole training set (the held-out part excepted), so
every query is rolled out G times under a policy that is learning, as a profile of N = G samples would roll it
out under the initial one. Its groups' success counts become the profile table: stored as a real profile of the
run (`RUN-epoch1`, FLOPs 0: those rollouts were paid for as training, so profiling costs nothing), so the Audit
page, the forecast and `sgpo train --profile RUN-epoch1` work on it. The plan is made from it with the run's plan
knobs exactly as `sgpo plan` makes one (sgpo/plan/), stored with the run as every plan is, and trained from the
next step on. What the counts differ in from a separate profile: they were measured over the first epoch's
steps, so late queries saw a better policy than early ones (the plan's drift model does not know that), and
the queries of the step that ends the epoch may have been rolled out twice.

Resume is exact: the counts and the plan sampler's state are in the checkpoint, and the plan is made again
from the same counts by the same pure planner.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from sgpo.errors import ConfigError
from sgpo.plan import make_plan, too_few_learnable
from sgpo.profile import ProfileConfig, mapping_fields
from sgpo.train.batches import COUNTS, Planner, Replanner, SGPOSampler
from sgpo.train.setup import Prepared, first_epoch_profile, run_plan_config
from sgpo.vocab import PROFILE_DONE

OPTION = "--plan-from-first-epoch"


def profile_table(table: pd.DataFrame, counts: np.ndarray) -> pd.DataFrame:
    """The profile table the first epoch's counts make (counts: COUNTS x queries): p_hat = successes / samples,
    prompt tokens per sample, mean completion tokens."""
    c = dict(zip(COUNTS, counts))
    samples = np.maximum(c["samples"], 1)
    return table.assign(
        samples=c["samples"].astype(np.int64),
        successes=c["successes"].astype(np.int64),
        p_hat=c["successes"] / samples,
        prompt_tokens=np.round(c["prompt_tokens"] / np.maximum(c["groups"], 1)).astype(np.int64),
        completion_tokens_total=c["completion_tokens"].astype(np.int64),
        completion_tokens_mean=c["completion_tokens"] / samples,
    )


def planner(prep: Prepared, replanner: Callable[[pd.DataFrame], Replanner]) -> Planner:
    """counts -> (the plan's sampler, what the store keeps of the switch). ConfigError naming the option when the
    first epoch's profile leaves nothing to train on, or too few learnable queries without --force.
    `replanner(frame)`: --refresh's re-planning from the posterior over that profile table (sgpo/train/sampling.py)."""
    cfg, table = prep.config, prep.profile_frame
    assert table is not None  # setup gives a first-epoch run its unprofiled table
    config = run_plan_config(cfg)
    n_params = prep.model.n_params

    def plan(counts: np.ndarray) -> tuple[SGPOSampler, dict]:
        frame = profile_table(table, counts)
        try:
            made = make_plan(frame, config, n_params=n_params, flops_profile=0.0)
        except ConfigError as exc:
            raise ConfigError(f"{OPTION}: the first epoch's profile keeps no query to train on: {exc}") from None
        record = made.to_record()
        if (why := too_few_learnable(record)) and not cfg.force:
            raise ConfigError(f"{OPTION}: the first epoch's profile has {why}")
        successes, samples = frame["successes"].to_numpy(float), frame["samples"].to_numpy(float)
        sampler = SGPOSampler(
            made.phases,
            np.arange(len(frame)),
            cfg.batch_rollouts,
            cfg.seed,
            successes=successes,
            samples=samples,
            replan=replanner(frame) if cfg.refresh else None,
            refresh_every=cfg.refresh_every,
            refresh_decay=cfg.refresh_decay,
            batch_informative=cfg.batch_informative,
        )
        return sampler, _kept(prep, frame, record)

    return plan


def _kept(prep: Prepared, frame: pd.DataFrame, record: dict) -> dict:
    """What the store keeps of the switch: the training set's dataset record, the profile's row and query rows,
    the plan's record, and the words the run says."""
    cfg, model, ds = prep.config, prep.model, prep.dataset
    name = first_epoch_profile(prep.run_name)
    key = json.dumps(["first epoch", prep.source_hash, model.weights_hash, prep.run_name, cfg.group_size, cfg.seed])
    sampling = ProfileConfig(
        samples=cfg.group_size,
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        backend=cfg.backend,
        seed=cfg.seed,
        examples=0,
    )
    tokens_prompt = int((frame["prompt_tokens"] * frame["samples"]).sum())
    tokens_completion = int(frame["completion_tokens_total"].sum())
    row = {
        "name": name,
        "key": hashlib.sha256(key.encode()).hexdigest()[:16],
        "status": PROFILE_DONE,
        "dataset_hash": prep.source_hash or ds.hash,
        "dataset_spec": ds.spec,
        "model_spec": model.spec,
        "model_path": str(model.path),
        "model_hash": model.weights_hash,
        "n_params": model.n_params,
        "backend": cfg.backend,
        "samples": cfg.group_size,
        "temperature": float(cfg.temperature),
        "max_new_tokens": cfg.max_new_tokens,
        "seed": cfg.seed,
        "batch_size": cfg.batch_rollouts,
        "query_limit": None,
        "queries_total": len(frame),
        "queries_done": len(frame),
        "tokens_prompt": tokens_prompt,
        "tokens_completion": tokens_completion,
        "flops": 0.0,  # these rollouts were training's: counted in flops_rollout, so profiling cost nothing
        "seconds": 0.0,
        "settings": json.dumps(
            {
                "config": sampling.to_dict(),
                "fields": mapping_fields(ds),
                "first_epoch_of": prep.run_name,  # where the counts come from
            }
        ),
    }
    queries = [
        {
            "position": int(q.position),
            "query_id": str(q.id),
            "task": str(q.task),
            "difficulty": int(q.difficulty),
            "samples": int(q.samples),
            "successes": int(q.successes),
            "p_hat": float(q.p_hat),
            "prompt_tokens": int(q.prompt_tokens),
            "completion_tokens_total": int(q.completion_tokens_total),
            "completion_tokens_mean": float(q.completion_tokens_mean),
            "examples": "[]",
        }
        for q in frame.itertuples(index=False)
    ]
    counts = record["counts"]
    words = (
        f"first epoch done: its groups measured all {len(frame):,} queries ({int(frame['samples'].sum()):,} "
        f"rollouts), stored as profile {name!r} (no profiling FLOPs: they were training's); the plan made from it "
        f"keeps {counts['learnable']:,} learnable and {counts['unsolved_kept']:,} unsolved queries in "
        f"{len(record['phases'])} phases and trains from the next step"
    )
    dataset = {**ds.record(), "hash": prep.source_hash or ds.hash}
    return {"dataset": dataset, "profile": row, "queries": queries, "plan": record, "words": words}
