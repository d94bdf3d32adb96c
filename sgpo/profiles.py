"""The profile lifecycle, as library calls. `sgpo profile ...` and the dashboard only call these.

    from sgpo import profiles
    from sgpo.profile import ProfileConfig
    first = profiles.start("builtin:train", "starter", ProfileConfig(samples=2, limit=24), store, name="first")
    job = profiles.start("builtin:eval", "starter", ProfileConfig(samples=2, limit=8), store, name="bg", detach=True)
    profiles.status("first", store)["status"]     # running, done, or interrupted when its process is gone
    [(p["name"], p["status"]) for p in profiles.list_profiles(store)]
    profiles.resume("half", store)["queries"]      # an interrupted profile continues with its recorded settings
    profiles.show("first", store)["decisions"]     # summary, p_hat histogram, decisions, by task and difficulty
    profiles.frame("first", store)["p_hat"]        # one row per query: what the planner reads
    profiles.checkpoint_profile("baseline", 2, store, detach=False)["name"]   # 'baseline-step2'
    profiles.drift("first", "baseline-step2", store)["bucket_after"]   # query by query, before against after

A profile is keyed by what decides its numbers (sgpo/profile.py): starting the same profile again continues an
unfinished one or returns the finished one. `interrupted` is not stored: it is how a profile marked running
whose process is gone is shown, until it is resumed. A detached profile is the real `sgpo profile` command in
a worker process (sgpo.launch), logging to `logs/profile-NAME.log` beside the store (sgpo.paths).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from sgpo import launch, paths
from sgpo.data import Dataset, load_dataset, profiled_dataset, recall
from sgpo.data import check_spec as check_dataset
from sgpo.data_spec import FIELDS, DatasetSpec
from sgpo.drift import buckets, pair
from sgpo.errors import ConfigError, StoreError
from sgpo.model import ModelRef, resolve_model, run_checkpoint
from sgpo.model import check_spec as check_model
from sgpo.plan import PlanConfig, make_plan
from sgpo.profile import (
    ProfileConfig,
    describe,
    existing,
    prepare,
    profile_summary,
    reward_shown,
    run_profile,
    shown_status,
)
from sgpo.store import Store
from sgpo.train.checkpoint import checkpoint_problem
from sgpo.vocab import INTERRUPTED, PROFILE_DONE


def start(
    dataset: str | DatasetSpec | Dataset,
    model: str | ModelRef,
    config: ProfileConfig | None,
    store: Store | os.PathLike,
    *,
    name: str | None = None,
    detach: bool = False,
    log: os.PathLike | None = None,
    progress: bool = False,
    fields: dict | None = None,
) -> dict:
    """Profile `dataset` (a spec, a DatasetSpec with its field mapping and reward, or a loaded Dataset) under
    `model` (a spec: 'starter', run:NAME[@STEP], a folder, an HF id; or a resolved ModelRef): here until it is
    done (returns its summary, with `warnings`, `reward` and `reward_reason`), or with detach=True in a worker
    process running `sgpo profile` (returns name, pid, log_path, status 'started', or 'done' when that profile
    was already finished, and the reward). `store`: a Store, or its database path, created only once every
    input passed its checks. `fields`: options over the spec's (prompt_field, answer_field, id_field,
    task_field, difficulty_field, reward); what is not given is read back from the mapping the store recorded
    for this dataset (sgpo.data.recall), then detected. `log`: the worker's log (default
    logs/profile-NAME.log beside the store).

    >>> profiles.start("builtin:train", "starter", ProfileConfig(samples=2, limit=24), store, name="first")
    """
    config = config or ProfileConfig()
    config.validate()
    fields = {k: v for k, v in (fields or {}).items() if v is not None}
    if set(fields) - set(FIELDS):
        raise ConfigError(f"unknown dataset field option(s) {sorted(set(fields) - set(FIELDS))}: use {FIELDS}")
    db = store.path if isinstance(store, Store) else Path(store)
    if not isinstance(dataset, Dataset):
        dataset = recall(_existing(store), dataset, **fields)  # what was named before, unless named now
    python = launch.vllm_rerun_python(config.backend)
    if python and not detach:  # profile under the interpreter that has vLLM, report here
        argv = cli_argv(_mapping(dataset), _spec(model), config, db, name=name)
        return launch.rerun_json(python, argv[3:])  # rerun_json adds `PYTHON -m sgpo` itself
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    ref = model if isinstance(model, ModelRef) else resolve_model(model, db)
    if not detach:
        return run_profile(ds, ref, config, lambda: _open(store), name=name, progress=progress)
    prep = prepare(ds, ref, config, name)  # every check the worker would make, made here: errors come now
    opened = _open(store)
    row = existing(opened, prep.key, name)
    shown = reward_shown(ds)
    if row is not None and row["status"] == PROFILE_DONE:
        return {"name": row["name"], "pid": None, "log_path": None, "status": PROFILE_DONE, **shown}
    if row is not None and launch.pid_alive(row.get("pid")):
        raise StoreError(f"profile {row['name']!r} is being written now by process {row['pid']}: let it finish")
    name = row["name"] if row is not None else prep.name
    argv = cli_argv(_mapping(dataset), _spec(model), config, db, name=name, python=python)
    path = Path(log) if log else paths.job_log(db, "profile", name)
    proc = launch.detach(argv, path)
    return {
        "name": name,
        "pid": proc.pid,
        "log_path": str(path),
        "status": "started",
        "command": launch.cli_line(argv),
        **shown,
    }


def cli_argv(
    dataset: str | DatasetSpec,
    model: str,
    config: ProfileConfig,
    db: os.PathLike,
    *,
    name: str | None = None,
    fields: dict | None = None,
    python: str | None = None,
) -> list[str]:
    """The `sgpo profile DATASET --model MODEL [knobs that differ from the defaults] --db DB [--name NAME]
    [--prompt-field ... --reward R]` argument list that makes this profile (what a detached start runs and the
    dashboard shows): the documented form, which the `profile` group sends to `run` (a checked DATASET is
    builtin:, hf: or an absolute path, never a subcommand's name). A DatasetSpec's mapping and reward, and
    `fields` over them, become their options.

    >>> launch.cli_line(profiles.cli_argv("builtin:train", "starter", ProfileConfig(samples=4), "runs/sgpo.db"))
    """
    spec = DatasetSpec.of(dataset, **(fields or {}))
    argv = ["profile", check_dataset(spec.spec), "--model", check_model(model, db), *config.cli_args()]
    argv += ["--db", str(Path(db).resolve())]
    if name is not None:
        argv += ["--name", name]
    return launch.sgpo_argv(*argv, *spec.cli_args(), python=python)


def list_profiles(store: Store) -> list[dict]:
    """Every profile, oldest first, with its shown status (`interrupted` when the process writing it is
    gone), the stored one as `stored_status`, `alive` (its process runs now) and its recorded `settings`.

    >>> [(p["name"], p["status"]) for p in profiles.list_profiles(store)]
    """
    return [_shown(row) for row in store.profiles()]


def status(ref: str | int, store: Store) -> dict:
    """One profile (id or name) as list_profiles shows it, with its worker's log path and, when its process is
    gone before it finished, the worker's own error line (`error`) if it wrote one.

    >>> profiles.status("first", store)["status"]     # 'done'
    """
    row = _shown(store.find_profile(ref))
    log = paths.job_log(store, "profile", row["name"])
    row["log_path"] = str(log) if log.exists() else None
    row["error"] = launch.last_error(log) if row["status"] == INTERRUPTED else None
    return row


def log(ref: str, store: Store, lines: int = 20) -> str:
    """The end of a detached profile's log ('' if it has none), by profile name.

    >>> profiles.log("bg", store, lines=5)
    """
    return launch.tail(paths.job_log(store, "profile", str(ref)), lines)


def resume(ref: str | int, store: Store, *, detach: bool = False, progress: bool = False) -> dict:
    """Continue an unfinished profile with the settings it recorded (its dataset, model, sampling, subset and
    batch size), here (returns the summary) or in a worker (returns what `start` does). A finished profile has
    nothing to resume; one whose process still runs is refused.

    >>> profiles.resume("half", store)["queries"]
    """
    row = store.find_profile(ref)
    if row["status"] == PROFILE_DONE:
        raise ConfigError(f"profile {row['name']!r} is done ({row['queries_done']} queries): nothing to resume")
    if launch.pid_alive(row.get("pid")) and row["pid"] != os.getpid():
        raise StoreError(f"profile {row['name']!r} is being written now by process {row['pid']}: let it finish")
    config, fields = settings(row)
    ds = profiled_dataset(store, row, spec=DatasetSpec.of(row["dataset_spec"], **fields))
    ref_model = resolve_model(row["model_spec"], store.path)
    if prepare(ds, ref_model, config, row["name"]).key != row["key"]:
        raise ConfigError(
            f"profile {row['name']!r} cannot be resumed from what it recorded (its data, model or settings "
            f"differ now, or it was made before profiles recorded their settings): run the `sgpo profile` "
            f"command that started it again"
        )
    return start(ds, ref_model, config, store, name=row["name"], detach=detach, progress=progress)


def settings(row: dict) -> tuple[ProfileConfig, dict]:
    """(ProfileConfig, dataset field options and reward) a profile was made with: as recorded, or for a profile
    made before profiles recorded them, what its row holds (sampling, seed, limit, batch size, backend).

    >>> config, fields = profiles.settings(store.find_profile("first"))
    """
    recorded = json.loads(row["settings"]) if row.get("settings") else None
    if recorded:
        return ProfileConfig.from_dict(recorded["config"]), recorded.get("fields") or {}
    config = ProfileConfig(
        samples=row["samples"],
        temperature=row["temperature"],
        max_new_tokens=row["max_new_tokens"],
        backend=row["backend"],
        seed=row["seed"],
        batch_size=row["batch_size"],
        limit=row["query_limit"],
    )
    return config, {}


def show(ref: str | int, store: Store) -> dict:
    """What `sgpo profile show --json` prints: the summary (settings, totals, cost, p_hat in query order) and
    describe's view (p_hat histogram, decisions and group sizes at the default plan knobs, by task and
    difficulty).

    >>> profiles.show("first", store)["histogram"][0]
    """
    row = store.find_profile(ref)
    summary = profile_summary(store, row["id"])
    view = describe(row, store.profile_frame(row["id"]))
    return {**{k: v for k, v in summary.items() if k not in ("reused", "resumed")}, **view}


def frame(ref: str | int, store: Store, *, examples: bool = False) -> pd.DataFrame:
    """One row per profiled query in dataset order, as the planner reads it (with each query's sample
    completions when examples=True).

    >>> profiles.frame("first", store)[["id", "p_hat"]]
    """
    return store.profile_frame(store.find_profile(ref)["id"], examples=examples)


def with_buckets(ref: str | int, store: Store, config: PlanConfig | None = None) -> pd.DataFrame:
    """The profile's queries (with their completions) and the plan's decision, group size and bucket for each,
    at `config`'s knobs (default PlanConfig()).

    >>> profiles.with_buckets("first", store)["bucket"].value_counts()
    """
    row = store.find_profile(ref)
    queries = store.profile_frame(row["id"], examples=True)
    if queries.empty:
        return queries.assign(decision=[], group_size=[], bucket=[])
    plan = make_plan(queries, config or PlanConfig(), n_params=row["n_params"] or None, flops_profile=row["flops"] or 0)
    queries = queries.assign(**{c: plan.queries[c].to_numpy() for c in ("decision", "group_size", "phase")})
    return queries.assign(bucket=buckets(queries))


def drift(before: str | int, after: str | int, store: Store, *, config: PlanConfig | None = None) -> pd.DataFrame:
    """Two profiles of the same data, query by query (sgpo.drift.pair): p_hat and bucket before and after
    (buckets at `config`'s plan knobs, default PlanConfig()), the change, and both sides' completions. Feed
    it to sgpo.drift's transition_matrix, drift, moved and summary.

    >>> both = profiles.drift("first", "baseline-step2", store)
    """
    a, b = store.find_profile(before), store.find_profile(after)
    if a.get("dataset_hash") != b.get("dataset_hash"):
        raise ConfigError(
            f"profiles {a['name']!r} ({a['dataset_spec']}) and {b['name']!r} ({b['dataset_spec']}) measured "
            f"different data: drift compares two profiles of the same dataset"
        )
    return pair(with_buckets(a["id"], store, config), with_buckets(b["id"], store, config))


def checkpoint_profile(
    run_ref: str | int, step: int, store: Store, *, detach: bool = True, name: str | None = None, progress: bool = False
) -> dict:
    """Profile run RUN's checkpoint at `step` (model `run:NAME@STEP`) with the dataset and settings of the
    profile the run trained from, so the two p_hats compare (for a run without one, its own dataset and
    sampling knobs). Returns what `start` does, with `before`: the profile to compare it with (None without
    one). The checkpoint must be complete on disk; the new profile's name (default NAME-stepSTEP) unused.

    >>> profiles.checkpoint_profile("baseline", 2, store, detach=False, name="baseline-at-2")["before"]
    """
    run = store.find_run(run_ref)
    spec = paths.run_model(run["name"], int(step))
    folder = run_checkpoint(spec, store.path)  # ModelError naming the steps kept when this one is gone
    problem = checkpoint_problem(folder)
    if problem:
        raise StoreError(f"the checkpoint of run {run['name']!r} at step {step} is {problem}: choose another step")
    base = store.find_profile(run["profile_id"]) if run.get("profile_id") else None
    cfg = run.get("config") or {}
    if base is not None:
        config, fields = settings(base)
        recorded = store.dataset_mapping(hash=base["dataset_hash"])  # read as that profile read it
        named = DatasetSpec.of((recorded or {}).get("spec") or base["dataset_spec"], **fields)
        dataset: str | DatasetSpec | Dataset | None = named.over(recorded)
        fields = {}
    else:
        dataset = cfg.get("dataset")
        knobs = {k: cfg[k] for k in ("temperature", "max_new_tokens", "backend") if cfg.get(k) is not None}
        config, fields = ProfileConfig(**knobs), {}
    if not dataset:
        raise StoreError(f"run {run['name']!r} records no dataset, so its checkpoint has nothing to be profiled on")
    name = store.check_new_name("profile", name or f"{run['name']}-step{int(step)}", "profile name")
    started = start(dataset, spec, config, store, name=name, detach=detach, progress=progress, fields=fields)
    return {**started, "name": name, "before": base["name"] if base else None}


def _shown(row: dict) -> dict:
    recorded = row.get("settings")
    return {
        **row,
        "status": shown_status(row),
        "stored_status": row["status"],
        "alive": launch.pid_alive(row.get("pid")),
        "settings": json.loads(recorded) if isinstance(recorded, str) and recorded else recorded,
    }


def _open(store: Store | os.PathLike) -> Store:
    return store if isinstance(store, Store) else Store(Path(store))


def _existing(store: Store | os.PathLike) -> Store | None:
    """The store to read recorded mappings from: None while its database does not exist (nothing to read,
    and nothing is created before the checks pass)."""
    if isinstance(store, Store):
        return store
    try:
        return Store(Path(store), readonly=True) if Path(store).exists() else None
    except StoreError:  # not a database, or one to migrate: opening it for the profile says what is wrong
        return None


def _mapping(dataset: str | DatasetSpec | Dataset) -> DatasetSpec:
    """What names a dataset for another process: a spec with the options named (the rest is recalled there), or
    a loaded dataset's spec with every field and the reward it was loaded with (a built-in set's are fixed)."""
    if not isinstance(dataset, Dataset):
        return DatasetSpec.of(dataset)
    if dataset.spec.startswith("builtin:"):
        return DatasetSpec(dataset.spec)
    return dataset.mapping or DatasetSpec(dataset.spec, reward=dataset.reward)


def _spec(thing) -> str:
    """The spec of a dataset or model given as a spec or as the loaded thing."""
    return thing if isinstance(thing, str) else thing.spec
