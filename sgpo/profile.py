"""Profiling: N samples per query under the initial policy, p_hat = successes / N, stored per query.

    ds, ref = load_dataset("builtin:train"), resolve_model("starter")
    summary = run_profile(ds, ref, ProfileConfig(samples=8), Store("runs/sgpo.db"))
    summary["p_hat"][:5], summary["flops"]

A profile is keyed by what decides its numbers (data, weights, backend, sampling, seed, limit), so
running the same profile again continues an unfinished one or returns the finished one for free.
Prompts are checked against the model's context before anything is written (cut to their end only
with --truncate-prompts). Each batch of queries is written with the profile's running totals in one
transaction: a killed run loses at most the batch in flight. The profiling process records its pid,
so a profile whose process is gone shows as `interrupted` (`shown_status`) until it is resumed.
Cost: generation FLOPs (sgpo.accounting.flops_generate) over prompt + completion tokens, prompt tokens
counted once per sample (each sample is a forward over its prompt and its completion). The row records the
settings it was made with, so `sgpo profile resume` continues it (sgpo/profiles.py: the lifecycle).

Two ways to pay less. `--adaptive` samples in rounds and stops each query once its plan bucket is
settled (sgpo/adaptive.py states the rule), so N varies per query (`samples` in its row) and --samples
is the most any query gets. `--fraction` or `--queries` profile a random subset chosen with --seed
(nested: a smaller subset of the same seed is part of a larger one), sized to the run it will plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from sgpo import launch
from sgpo.accounting import flops_generate
from sgpo.adaptive import sample_in_rounds
from sgpo.data import Dataset, DatasetSpec, query_columns
from sgpo.device import DEVICES, DTYPES, resolve_device, resolve_dtype
from sgpo.errors import ConfigError, DataError, SgpoError, StoreError
from sgpo.generate import BACKENDS, Generation
from sgpo.generate.backends import make_generator
from sgpo.knobs import Knobs, knob
from sgpo.model import ModelRef, fit_frame
from sgpo.plan import PlanConfig, make_plan
from sgpo.store import Store, check_name
from sgpo.tasks.rewards import resolve_reward
from sgpo.vocab import INTERRUPTED, PROFILE_DONE, PROFILE_RUNNING


@dataclass
class ProfileConfig(Knobs):
    samples: int = knob(
        8, "samples per query (the paper's N); with --adaptive the most any query gets", min=1, max=1024
    )
    adaptive: bool = knob(
        False,
        "sample in rounds and stop each query once its plan bucket (decision and group "
        "size at the default plan knobs) is settled at --confidence",
    )
    first_round: int = knob(2, "--adaptive: samples every query gets in the first round", min=1, max=1024)
    round_size: int = knob(1, "--adaptive: samples added per round to each query not yet settled", min=1, max=1024)
    confidence: float = knob(
        0.8,
        "--adaptive: a query stops once drawing all --samples would leave its bucket "
        "as it is with at least this probability (Beta(1, 1) posterior predictive)",
        min=0.0,
        max=1.0,
        open_min=True,
    )
    temperature: float = knob(1.0, "sampling temperature; use the training one (0: greedy)", min=0.0, max=10.0)
    max_new_tokens: int = knob(
        20, "completion length cap, in tokens; use the training one (sgpo train defaults to 20 too)", min=1, max=8192
    )
    backend: str = knob("hf", "generation backend: hf (transformers) or vllm", choices=BACKENDS)
    batch_size: int = knob(128, "queries per generation call (and per database write)", min=1, max=4096)
    seed: int = knob(0, "sampling seed; each batch's seed derives from it", min=0)
    limit: int | None = knob(None, "profile only the first N queries", min=1)
    fraction: float = knob(
        1.0,
        "profile a random share of the queries (after --limit), chosen with --seed; the plan then covers only those",
        min=0.0,
        max=1.0,
        open_min=True,
    )
    queries: int | None = knob(
        None,
        "profile a random subset of at most this many queries (after --limit), "
        "chosen with --seed: a query budget sized to the planned run",
        min=1,
    )
    examples: int = knob(4, "completions kept per query to show later", min=0, max=64)
    truncate_prompts: bool = knob(
        False,
        "cut prompts longer than the model's context minus --max-new-tokens, "
        "keeping their END (where the question is); off: such a prompt is refused",
    )
    device: str = knob("auto", "--backend hf: where the model runs (auto = cuda when available)", choices=DEVICES)
    dtype: str = knob("auto", "--backend hf: weights dtype (auto = bfloat16 on cuda, float32 on cpu)", choices=DTYPES)
    gpu_memory_utilization: float = knob(
        0.9, "--backend vllm on a GPU: share of GPU memory vLLM may take", min=0.0, max=1.0, open_min=True
    )
    tensor_parallel_size: int = knob(1, "--backend vllm: GPUs the vLLM engine shards the model over", min=1, max=64)

    def check(self) -> None:
        if self.adaptive and self.samples < self.first_round:
            raise ConfigError(
                f"--samples={self.samples} is below --first-round={self.first_round}: with --adaptive "
                f"--samples is the most samples per query; raise --samples or lower --first-round"
            )
        if self.queries is not None and self.fraction < 1:
            raise ConfigError(
                f"--queries={self.queries} and --fraction={self.fraction:g} both size the subset to "
                f"profile: give one of them"
            )


def profile_key(
    dataset_hash: str, model_hash: str, config: ProfileConfig, *, cut: bool = False, subset: int | None = None
) -> str:
    """What decides a profile's numbers; batch size and examples kept do not enter (resume keeps the
    batch size the profile started with). `cut`: some prompts were truncated to fit the context (then
    the prompts measured are not the dataset's). `subset`: how many queries a random subset holds (None:
    all; --fraction and --queries that pick the same subset give the same key). A fixed-N profile of all
    queries with nothing cut keeps its old key."""
    parts = [
        dataset_hash,
        model_hash,
        config.backend,
        config.samples,
        float(config.temperature),
        config.max_new_tokens,
        config.seed,
        config.limit,
    ] + (["prompts cut to the context"] if cut else [])
    if config.adaptive:  # the rule settles against the default plan knobs: those enter too
        plan = PlanConfig()
        parts += [
            "adaptive",
            config.first_round,
            config.round_size,
            float(config.confidence),
            [plan.trivial_threshold, plan.group_rule, plan.informative_target, plan.g_min, plan.g_max],
        ]
    if subset is not None:
        parts += ["random subset", subset]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def subset_positions(n: int, config: ProfileConfig) -> np.ndarray | None:
    """Positions (sorted) of the random subset to profile out of `n` queries, or None for all of them.
    The first k of one seeded permutation: subsets of one seed are nested."""
    k = n if config.queries is None else min(config.queries, n)
    if config.fraction < 1:
        k = max(1, round(config.fraction * n))
    if k >= n:
        return None
    order = np.random.default_rng([config.seed, 0x5EB5E7]).permutation(n)  # its own stream, not the sampler's
    return np.sort(order[:k])


def batch_seed(seed: int, first_position: int) -> int:
    """A batch's sampling seed from the run seed and where the batch starts: the same batch gets the
    same seed whether it runs first or after a resume."""
    return int(np.random.SeedSequence([seed, first_position]).generate_state(1)[0] % (2**31 - 1))


@dataclass
class Prepared:
    """A profile's inputs, checked: the queries to profile (with their places in the dataset), the warnings
    (prompts cut to the context), the key that decides its numbers, and its name (given, or the default)."""

    frame: pd.DataFrame
    positions: np.ndarray
    subset: bool
    warnings: list[str]
    key: str
    name: str


def prepare(dataset: Dataset, model_ref: ModelRef, config: ProfileConfig, name: str | None = None) -> Prepared:
    """Every check a profile makes before its first write (knobs, name, data, prompts against the context),
    and its key and name. Touches no store: a detached start runs it before launching its worker."""
    config.validate()
    if name is not None:
        name = check_name(name, "profile")
    frame = dataset.frame if config.limit is None else dataset.frame.head(config.limit)
    if frame.empty:
        raise DataError(f"dataset {dataset.spec} has no queries to profile")
    subset = subset_positions(len(frame), config)
    if subset is not None:
        frame = frame.iloc[subset]
    frame, warnings = fit_to_context(frame, model_ref, config)
    key = profile_key(
        dataset.hash, model_ref.weights_hash, config, cut=bool(warnings), subset=None if subset is None else len(subset)
    )
    if name is None:
        shown = f"{'adaptiveN' if config.adaptive else 'N'}{config.samples}" + (
            f"-sub{len(frame)}" if subset is not None else ""
        )
        name = f"{_short(dataset.spec)}-{model_ref.path.name}-{config.backend}-{shown}-{key[:6]}"
    positions = np.arange(len(frame)) if subset is None else subset  # stored: the query's place in the dataset
    return Prepared(frame, positions, subset is not None, warnings, key, name)


def run_profile(
    dataset: Dataset,
    model_ref: ModelRef,
    config: ProfileConfig,
    store: Store | Callable[[], Store],
    *,
    name: str | None = None,
    progress: bool = True,
    generator=None,
) -> dict:
    """Profile (or resume, or return) the profile of `dataset` under `model_ref`; returns its summary,
    with `warnings` (prompts cut to the context).

    Everything is validated before the first write; `store` may be a function that opens it, called
    only once the inputs passed (so a refused profile creates no database). `generator` reuses a loaded
    backend (the bench and the trainer hold one); by default one is loaded for `config.backend`.
    The dataset is recorded with its mapping and reward (Dataset.record), and the profile's settings keep them
    (mapping_fields), so resuming it, planning, exporting and training read the data the same way; the summary
    says which reward scored it and why (`reward`, `reward_reason`)."""
    prep = prepare(dataset, model_ref, config, name)
    store = store() if callable(store) else store
    row = existing(store, prep.key, name)
    if row is not None and row["status"] == PROFILE_DONE:
        return {**profile_summary(store, row["id"], reused=True), **reward_shown(dataset), "warnings": prep.warnings}
    if row is not None and row.get("pid") not in (None, os.getpid()) and launch.pid_alive(row["pid"]):
        raise StoreError(
            f"profile {row['name']!r} is being written now by process {row['pid']}: let it finish "
            f"(`sgpo profile show {row['id']}` shows how far it is)"
        )
    if generator is None:  # a resumed profile keeps its batch size: same batches, same seeds, same numbers
        generator = make_generator(
            config.backend,
            model_ref.path,
            batch_size=row["batch_size"] if row else config.batch_size,
            **backend_options(config),
        )
    if row is None:
        store.record_dataset(**dataset.record())  # its mapping and reward: every later command reads them back
        profile_id = store.create_profile(
            {
                **_profile_row(dataset, model_ref, config, prep.key, prep.name, len(prep.frame)),
                "settings": json.dumps({"config": config.to_dict(), "fields": mapping_fields(dataset)}),
                "pid": os.getpid(),
            }
        )
        row = store.find_profile(profile_id)
    else:
        store.update_profile(row["id"], pid=os.getpid())
    try:
        _profile_batches(store, row, prep.frame, prep.positions, dataset.reward, config, generator, progress)
    finally:  # done, failed or stopped: no process writes it now (a killed one leaves its pid, shown interrupted)
        with contextlib.suppress(SgpoError):
            store.update_profile(row["id"], pid=None)
    summary = profile_summary(store, row["id"], resumed=row["queries_done"] > 0)
    return {**summary, **reward_shown(dataset), "warnings": prep.warnings}


def mapping_fields(dataset: Dataset) -> dict:
    """The field options and reward a dataset was loaded with, every one explicit (what a profile records in
    its settings, so that resuming it, or reading its data back, loads the same rows the same way)."""
    mapping = (dataset.mapping or DatasetSpec(dataset.spec, reward=dataset.reward)).to_dict()
    return {k: v for k, v in mapping.items() if k != "spec" and v is not None}


def reward_shown(dataset: Dataset) -> dict:
    """The reward a profile scores with and why (named with --reward, or picked from the answers)."""
    return {"reward": dataset.reward, "reward_reason": dataset.reward_reason}


def backend_options(config: ProfileConfig) -> dict:
    """Where and how the backend runs: device and dtype for transformers; seed, and on a GPU the memory
    share and tensor parallelism, for vLLM (on CPU it keeps its CPU defaults)."""
    device = resolve_device(config.device)
    if config.backend == "vllm":
        gpu = (
            {
                "gpu_memory_utilization": config.gpu_memory_utilization,
                "tensor_parallel_size": config.tensor_parallel_size,
            }
            if device == "cuda"
            else {}
        )
        return {"seed": config.seed, **gpu}
    return {"device": device, "dtype": resolve_dtype(config.dtype, device)}


def fit_to_context(frame: pd.DataFrame, model_ref: ModelRef, config: ProfileConfig) -> tuple[pd.DataFrame, list[str]]:
    """The queries with prompts that fit the model's context (sgpo.model.fit_frame) and the warnings."""
    frame, warning = fit_frame(
        frame, model_ref.path, max_new_tokens=config.max_new_tokens, truncate=config.truncate_prompts
    )
    return frame, [warning] if warning else []


def existing(store: Store, key: str, name: str | None) -> dict | None:
    """The profile to continue: the one named `name` (which must match the key), else the latest with
    this key; None to start a new one."""
    if name is None:
        return store.profile_by_key(key)
    try:
        row = store.find_profile(name)
    except StoreError:
        return None
    if row["key"] != key:
        raise ConfigError(
            f"a profile named {name!r} already exists with different data, model or sampling "
            f"settings (it measured {row['dataset_spec']} with {row['model_spec']}, "
            f"backend {row['backend']}, N={row['samples']}, T={row['temperature']}): choose "
            f"another --name"
        )
    return row


def _profile_row(dataset: Dataset, ref: ModelRef, config: ProfileConfig, key: str, name: str, total: int) -> dict:
    return {
        "name": name,
        "key": key,
        "status": PROFILE_RUNNING,
        "dataset_hash": dataset.hash,
        "dataset_spec": dataset.spec,
        "model_spec": ref.spec,
        "model_path": str(ref.path),
        "model_hash": ref.weights_hash,
        "n_params": ref.n_params,
        "backend": config.backend,
        "samples": config.samples,
        "temperature": float(config.temperature),
        "max_new_tokens": config.max_new_tokens,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "query_limit": config.limit,
        "queries_total": total,
        "queries_done": 0,
        "tokens_prompt": 0,
        "tokens_completion": 0,
        "flops": 0.0,
        "seconds": 0.0,
    }


def _short(spec: str) -> str:
    if spec.startswith("builtin:"):
        return spec.split(":", 1)[1]
    if spec.startswith("hf:"):
        return spec[3:].split(":")[0].split("/")[-1]
    return Path(spec).stem


def _profile_batches(
    store: Store,
    row: dict,
    frame: pd.DataFrame,
    positions: np.ndarray,
    reward: str,
    config: ProfileConfig,
    generator,
    progress: bool,
) -> None:
    """Profile `frame` batch by batch; `positions` are its rows' places in the dataset (what is stored)."""
    pid, n_params, batch_size = row["id"], row["n_params"], row["batch_size"]
    # Totals restart from the stored rows themselves, so they always equal the sums of those rows.
    stored = store.profile_frame(pid)
    done = set(stored["position"].tolist())
    tokens_prompt = int((stored["prompt_tokens"] * stored["samples"]).sum())
    tokens_completion = int(stored["completion_tokens_total"].sum())
    seconds = float(row["seconds"] or 0.0)
    score = resolve_reward(reward).score  # a user's function sees each query's columns, as TRL passes them
    bar = tqdm(
        total=len(frame),
        initial=len(done),
        unit="query",
        desc="profiling",
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    tick = time.perf_counter()

    def generate(prompts, *, n, seed):
        return generator.generate(
            prompts, n=n, temperature=config.temperature, max_new_tokens=config.max_new_tokens, seed=seed
        )

    for start in range(0, len(frame), batch_size):  # fixed boundaries: a resumed batch is the same batch
        todo = [j for j in range(start, min(start + batch_size, len(frame))) if int(positions[j]) not in done]
        if not todo:
            continue
        batch = frame.iloc[todo]
        answers, columns = batch["answer"].tolist(), query_columns(batch)
        # every round of a batch runs before its one write: a killed batch is redone whole, with the same seeds
        outs, rewards = sample_in_rounds(
            generate,
            batch["prompt"].tolist(),
            lambda i, g, answers=answers, columns=columns: [
                float(score(s.text, answers[i], **columns[i])) for s in g.samples
            ],
            config,
            seed=batch_seed(config.seed, start),
        )
        rows = [
            _query_row(int(positions[j]), q, g, r, config.examples)
            for j, q, g, r in zip(todo, batch.itertuples(index=False), outs, rewards)
        ]
        tokens_prompt += sum(r["prompt_tokens"] * r["samples"] for r in rows)
        tokens_completion += sum(r["completion_tokens_total"] for r in rows)
        done.update(int(positions[j]) for j in todo)
        now = time.perf_counter()
        seconds, tick = seconds + (now - tick), now
        totals = {
            "queries_done": len(done),
            "tokens_prompt": tokens_prompt,
            "tokens_completion": tokens_completion,
            "flops": flops_generate(n_params, tokens_prompt + tokens_completion),
            "seconds": seconds,
        }
        if len(done) == len(frame):
            totals["status"] = PROFILE_DONE
        try:
            store.add_profile_batch(pid, rows, totals)
        except sqlite3.IntegrityError:
            raise StoreError(
                f"profile {row['name']!r} in {store.path} is being written by another process too "
                f"(these queries were stored meanwhile): let that one finish"
            ) from None
        bar.update(len(todo))
        bar.set_postfix_str(f"{(tokens_prompt + tokens_completion) / max(seconds, 1e-9):,.0f} tok/s", refresh=False)
    bar.close()
    if len(done) == len(frame):  # all batches were already stored by an earlier, interrupted session
        store.update_profile(pid, status=PROFILE_DONE)


def _query_row(position: int, query, gen: Generation, rewards: list[float], keep: int) -> dict:
    successes = sum(r > 0.5 for r in rewards)  # rewards are binary: 1.0 is a success
    completion = sum(s.completion_tokens for s in gen.samples)
    return {
        "position": position,
        "query_id": query.id,
        "task": query.task,
        "difficulty": int(query.difficulty),
        "samples": len(rewards),
        "successes": successes,
        "p_hat": successes / len(rewards),
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens_total": completion,
        "completion_tokens_mean": completion / len(rewards),
        "examples": json.dumps(_examples(gen, rewards, keep)),
    }


def _examples(gen: Generation, rewards: list[float], keep: int) -> list[dict]:
    """Up to `keep` completions, successes and failures alternating, so a mixed query shows both."""
    wins = [{"text": s.text, "reward": r} for s, r in zip(gen.samples, rewards) if r > 0.5]
    losses = [{"text": s.text, "reward": r} for s, r in zip(gen.samples, rewards) if r <= 0.5]
    mixed = [e for pair in zip(wins, losses) for e in pair]
    k = min(len(wins), len(losses))
    return (mixed + wins[k:] + losses[k:])[:keep]


# reading a profile back ------------------------------------------------------------------------
def shown_status(row: dict) -> str:
    """The stored status, except that a running profile whose process is gone is `interrupted` (the same
    `sgpo profile` command resumes it)."""
    if row["status"] == PROFILE_RUNNING and not launch.pid_alive(row.get("pid")):
        return INTERRUPTED
    return row["status"]


def plan_warnings(profile_row: dict, plan) -> list[str]:
    """What a plan made from this profile should be read with (the CLI prints them, --json carries them,
    the dashboard shows them): the profile is unfinished, or the plan keeps nothing learnable. `plan` is
    a sgpo.plan.Plan."""
    out = []
    if profile_row["status"] != PROFILE_DONE:
        state = "its process is gone" if shown_status(profile_row) == INTERRUPTED else "still running"
        out.append(
            f"profile {profile_row['name']!r} is unfinished ({profile_row['queries_done']} of "
            f"{profile_row['queries_total']} queries, {state}): this plan covers only the queries profiled "
            f"so far; finish it with the same `sgpo profile` command"
        )
    c = plan.counts
    if c["learnable"] == 0:
        out.append(
            f"nothing learnable: no query has 0 < p_hat <= --trivial-threshold="
            f"{plan.config.trivial_threshold:g} ({c['trivial']} trivial, {c['unsolved_kept']} unsolved kept, "
            f"{c['unsolved_dropped']} unsolved dropped), so the plan trains only on unsolved queries and its "
            f"compute ratio means nothing: raise --trivial-threshold, or profile data nearer the model's level"
        )
    return out


def profile_summary(store: Store, profile_id: int, *, reused: bool = False, resumed: bool = False) -> dict:
    """The profile's settings, totals, cost, p_hat in query order, and its dataset's recorded mapping and
    reward (what `--json` prints)."""
    row = store.find_profile(profile_id)
    frame = store.profile_frame(profile_id)
    mapping = store.dataset_mapping(hash=row["dataset_hash"])  # None for a profile made before store v4
    completions = int(frame["samples"].sum())
    per_query = frame["samples"]
    tokens_prompt, tokens_completion = row["tokens_prompt"] or 0, row["tokens_completion"] or 0
    tokens = tokens_prompt + tokens_completion
    seconds = row["seconds"] or 0.0
    return {
        "profile_id": row["id"],
        "name": row["name"],
        "status": shown_status(row),
        "stored_status": row["status"],
        "key": row["key"],
        "dataset": {"spec": row["dataset_spec"], "hash": row["dataset_hash"], "mapping": mapping},
        "reward": (mapping or {}).get("reward"),
        "model": {
            "spec": row["model_spec"],
            "path": row["model_path"],
            "hash": row["model_hash"],
            "n_params": row["n_params"],
        },
        "backend": row["backend"],
        "samples": row["samples"],
        "temperature": row["temperature"],
        "max_new_tokens": row["max_new_tokens"],
        "seed": row["seed"],
        "batch_size": row["batch_size"],
        "limit": row["query_limit"],
        "queries": row["queries_done"],
        "queries_total": row["queries_total"],
        "completions": completions,
        "samples_per_query": {"mean": float(per_query.mean()), "min": int(per_query.min()), "max": int(per_query.max())}
        if len(frame)
        else None,
        "tokens": {"prompt": tokens_prompt, "completion": tokens_completion, "total": tokens},
        "flops": row["flops"],
        "seconds": seconds,
        "throughput": {
            "completions_per_s": completions / seconds if seconds else None,
            "tokens_per_s": tokens / seconds if seconds else None,
        },
        "mean_p_hat": float(frame["p_hat"].mean()) if len(frame) else None,
        "p_hat": frame["p_hat"].tolist(),
        "reused": reused,
        "resumed": resumed,
    }


def describe(row: dict, frame: pd.DataFrame, bins: int = 10) -> dict:
    """What `sgpo profile show` and the dashboard display: p_hat histogram, the planner's decisions and
    group sizes at its default knobs, mean p_hat by task and by difficulty. Pure: a profile row and its
    frame in."""
    p = frame["p_hat"].to_numpy(dtype=float)
    counts, edges = np.histogram(p, bins=bins, range=(0.0, 1.0))
    decisions, group_sizes = decision_counts(frame, row)
    return {
        "histogram": [
            {"low": float(lo), "high": float(hi), "count": int(c)} for lo, hi, c in zip(edges[:-1], edges[1:], counts)
        ],
        "decisions": decisions,
        "group_sizes": group_sizes,
        "by_task": _means(frame, "task"),
        "by_difficulty": _means(frame, "difficulty"),
    }


def decision_counts(frame: pd.DataFrame, row: dict) -> tuple[dict, dict]:
    """(trivial / learnable / unsolved_kept / unsolved_dropped counts, {G: learnable queries}) from the
    planner at its default knobs."""
    try:
        plan = make_plan(frame, PlanConfig(), n_params=row["n_params"], flops_profile=row["flops"])
    except ConfigError:  # the default knobs keep nothing (all trivial, or too few unsolved to keep one)
        p = frame["p_hat"].to_numpy(dtype=float)
        trivial = int((p > PlanConfig().trivial_threshold).sum())
        return {"trivial": trivial, "learnable": 0, "unsolved_kept": 0, "unsolved_dropped": len(p) - trivial}, {}
    counts = dict(plan.counts)
    by_group_size = {str(g): n for g, n in counts.pop("by_group_size").items()}
    counts.pop("total")
    return counts, by_group_size


def _means(frame: pd.DataFrame, column: str) -> list[dict]:
    grouped = frame.groupby(column)["p_hat"].agg(["size", "mean"]).reset_index()
    return [
        {
            column: (int(r[column]) if column == "difficulty" else str(r[column])),
            "queries": int(r["size"]),
            "mean_p_hat": float(r["mean"]),
        }
        for _, r in grouped.iterrows()
    ]
