"""What the pages share: the store, cached reads, the plan at the current knobs, checks on typed input,
and the training knobs. Background commands live in processes.py.
"""

from __future__ import annotations

import os
import re
import shlex
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from sgpo.errors import DataError, ModelError, SgpoError, StoreError
from sgpo.store import DEFAULT_PATH, Store

DATASET_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".parquet", ".pq")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BUSY_TIMEOUT_MS = 5000  # how long a write waits for another writer before it reports "locked"


# store ---------------------------------------------------------------------------------------
def db_path() -> Path:
    """$SGPO_DB (set by `sgpo dashboard --db`), else ./runs/sgpo.db, as an absolute path."""
    return Path(os.environ.get("SGPO_DB") or DEFAULT_PATH).expanduser().resolve()


@contextmanager
def store():
    """A Store for the length of one block. Opening is cheap; one per block keeps threads apart."""
    s = Store(db_path())
    s.db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
    try:
        yield s
    finally:
        s.close()


@st.cache_data(max_entries=8, show_spinner=False)
def profile_frame(db: str, profile_id: int, updated: float) -> pd.DataFrame:
    """The planner's table for one profile; `updated` is in the key so a growing profile re-reads."""
    with store() as s:
        return s.profile_frame(profile_id)


@st.cache_resource(max_entries=2, show_spinner=False)
def profile_frame_with_examples(db: str, profile_id: int, updated: float) -> pd.DataFrame:
    """With each query's sample completions: large, so cached as one shared object (treat as read-only)."""
    with store() as s:
        return s.profile_frame(profile_id, examples=True)


@st.cache_resource(max_entries=2, show_spinner=False)
def dataset_frame(spec: str) -> pd.DataFrame:
    """The profiled dataset's prompts and answers (for search and export); DataError if it is gone."""
    from sgpo.data import load_dataset

    return load_dataset(spec).frame


def profile_options() -> list[dict]:
    with store() as s:
        return s.profiles()


# plan knobs ----------------------------------------------------------------------------------
def knob_key(name: str) -> str:
    return f"knob_{name}"


def knob_specs() -> list[dict]:
    """PlanConfig's knobs as plain dicts: name, type, default, min, max, choices, help, open_min."""
    from dataclasses import fields

    from sgpo.plan import PlanConfig, plan_knobs

    open_min = {f.name: bool(f.metadata.get("open_min")) for f in fields(PlanConfig)}
    return [{**k, "open_min": open_min.get(k["name"], False)} for k in plan_knobs()]


def current_knobs() -> dict:
    """The knob values set on the Plan page (kept for the session), defaults for the rest."""
    return {k["name"]: st.session_state.get(knob_key(k["name"]), k["default"]) for k in knob_specs()}


def make_plan(frame: pd.DataFrame, profile: dict, knobs: dict | None = None):
    """The plan for a profile at the given (or current) knobs; ConfigError if the knobs disagree."""
    from sgpo.plan import PlanConfig, make_plan as _make_plan

    config = PlanConfig(**(knobs if knobs is not None else current_knobs()))
    return _make_plan(frame, config, n_params=profile.get("n_params") or None,
                      flops_profile=float(profile.get("flops") or 0.0))


def plan_summary(plan) -> dict:
    """counts, phases (dicts: phase, group_size, count, rollouts, pacing), forecast and config of a Plan."""
    return plan.to_json(ids=False)  # the phases' id lists would cost more than the plan itself


def plan_config(knobs: dict):
    from sgpo.plan import PlanConfig

    return PlanConfig(**knobs)


def plan_cli_line(profile: dict, knobs: dict) -> str:
    return shlex.join(["sgpo", "plan", str(profile["name"]), *plan_config(knobs).cli_args()])


def plan_names() -> set[str]:
    with store() as s:
        return {p["name"] for p in s.plans()}


def save_plan(name: str, profile: dict, knobs: dict, summary: dict) -> int:
    from dataclasses import asdict

    name = check_name(name, "plan", plan_names())
    with store() as s:
        return s.save_plan(name=name, profile_id=profile["id"], config=asdict(plan_config(knobs)),
                           counts=summary["counts"], forecast=summary["forecast"])


# checks on what users type ---------------------------------------------------------------------
def check_dataset(spec: str) -> str:
    """A dataset spec made ready for the child process: paths checked and made absolute."""
    spec = spec.strip()
    if not spec:
        raise DataError("dataset: choose a built-in set, or type a file path or hf:REPO")
    if spec.startswith("builtin:"):
        from sgpo.tasks.builtin import builtin_names

        if spec.split(":", 1)[1] not in builtin_names():
            raise DataError(f"unknown built-in dataset {spec!r}: choose one of "
                            f"{', '.join('builtin:' + n for n in builtin_names())}")
        return spec
    if spec.startswith("hf:"):
        if not re.fullmatch(r"hf:[\w.-]+(/[\w.-]+)?(:[\w.-]*)?(:[\w.-]+)?", spec):
            raise DataError(f"dataset {spec!r}: a hub dataset is written hf:REPO[:CONFIG][:SPLIT]")
        return spec
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"dataset file {path} does not exist: check the path (relative paths start at "
                        f"{Path.cwd()})")
    if not path.is_file():
        raise DataError(f"dataset path {path} is not a file: give a .jsonl, .csv or .parquet file")
    if path.suffix.lower() not in DATASET_SUFFIXES:
        raise DataError(f"dataset file {path}: unknown format {path.suffix or '(no suffix)'!r}; "
                        f"use one of {', '.join(DATASET_SUFFIXES)}")
    return str(path.resolve())


def check_model(spec: str) -> str:
    """A model spec made ready for the child process: `starter`, an existing folder, or an HF id."""
    from sgpo.model import STARTER_DIR, _looks_like_hf_id, check_model_dir

    spec = spec.strip()
    if spec == "starter":
        if not (STARTER_DIR / "config.json").exists():
            raise ModelError(f"the starter policy is missing from {STARTER_DIR}: run `sgpo starter train`")
        return spec
    path = Path(spec).expanduser()
    if path.exists():
        check_model_dir(path)
        return str(path.resolve())
    if _looks_like_hf_id(spec):
        return spec
    raise ModelError(f"model {spec!r} is neither 'starter', an existing folder, nor an HF id like org/name")


def check_name(name: str, kind: str, taken: set[str]) -> str:
    name = name.strip()
    if not NAME_PATTERN.match(name) or name.isdigit():
        raise SgpoError(f"{kind} name {name!r}: use 1-64 letters, digits, '.', '_' or '-', not only digits "
                        f"(numbers are ids)")
    if name in taken:
        raise StoreError(f"a {kind} named {name!r} already exists in {db_path()}: choose another name")
    return name


def unique_name(prefix: str, taken: set[str]) -> str:
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


# runs ---------------------------------------------------------------------------------------------------
STRATEGIES = ["sgpo", "grpo", "dapo"]
ACTIVE_STATUSES = ("created", "running")  # then finished, stopped or failed
TRAIN_KNOBS = ("steps", "eval_every", "lr", "batch_rollouts", "group_size", "seed")  # always shown
FROM_PROFILE = ("strategy", "profile", "dataset", "model")  # set by the page, not typed


def train_knob_specs(more: bool = False) -> list[dict]:
    """TrainConfig's metadata (name, option, type, default, min, max, choices, help): the knobs the Train
    page always shows, or with more=True every other one except those the profile decides."""
    from sgpo.train.config import TrainConfig, knobs

    specs = {k["name"]: dict(k) for k in knobs()}
    if specs["steps"]["default"] is None:
        specs["steps"]["default"] = TrainConfig.DEFAULT_STEPS
    if more:
        return [k for n, k in specs.items() if n not in TRAIN_KNOBS + FROM_PROFILE]
    return [specs[n] for n in TRAIN_KNOBS]


def run_options() -> list[dict]:
    with store() as s:
        return s.runs()


def runs_table(runs: list[dict]) -> pd.DataFrame:
    cols = ["id", "name", "strategy", "status", "step", "profile_id", "pid"]
    frame = pd.DataFrame(runs)
    frame = frame[[c for c in cols if c in frame]]
    return frame.assign(updated=pd.to_datetime(pd.Series([r.get("updated") for r in runs]), unit="s")
                        .dt.strftime("%H:%M:%S").to_numpy())


def run_frames(ref: str | int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A run's row, its per-step metrics and its evaluations, read together. Metrics are read
    incrementally through a per-session cache: the Train page asks every second, and a full read of
    10,000 steps costs about 0.4 s of JSON parsing."""
    cache = st.session_state.setdefault("_metrics_cache", {})
    with store() as s:
        run = s.find_run(ref)
        cache[run["id"]] = metrics_since(s, run, cache.get(run["id"]))
        return run, cache[run["id"]]["frame"], s.evals_frame(run["id"])


def metrics_since(s: Store, run: dict, cached: dict | None) -> dict:
    """{"frame", "pid", "created"}: `cached`'s frame plus the steps written after its last one. A new
    process (a resume, which may re-write steps after its checkpoint) or another run under the same id
    means a full read."""
    fresh = cached is None or (cached["pid"], cached["created"]) != (run.get("pid"), run.get("created"))
    if fresh or cached["frame"].empty:
        frame = s.metrics_frame(run["id"])
    else:
        new = s.metrics_frame(run["id"], after_step=int(cached["frame"]["step"].iloc[-1]))
        frame = pd.concat([cached["frame"], new], ignore_index=True) if len(new) else cached["frame"]
    return {"frame": frame, "pid": run.get("pid"), "created": run.get("created")}


def compare_frames(names: list[str]) -> tuple[dict, dict]:
    """Evaluations and metrics of the named runs: {name: frame} each."""
    evals, metrics = {}, {}
    with store() as s:
        for name in names:
            run = s.find_run(name)
            evals[name], metrics[name] = s.evals_frame(run["id"]), s.metrics_frame(run["id"])
    return evals, metrics


def plan_args(strategy: str) -> list[str]:
    """The Plan page's knobs as `sgpo train` flags; none for the baselines, which ignore the plan. The
    plan's seed is left out: `sgpo train --seed` sets it."""
    if strategy != "sgpo":
        return []
    args = plan_config(current_knobs()).cli_args()
    if "--seed" in args:
        i = args.index("--seed")
        del args[i:i + 2]
    return args


def train_args(profile: dict | None, values: dict) -> list[str]:
    """`sgpo train` flags: the profile's dataset and model (a run must train what was profiled), the
    always-shown knobs spelt out (the run does what the page shows, whatever the CLI defaults), and the
    other knobs where they differ from their defaults."""
    out = []
    if profile:
        model = profile.get("model_spec") or "starter"
        if model != "starter" and profile.get("model_path") and Path(profile["model_path"]).is_dir():
            model = profile["model_path"]
        out += ["--dataset", profile["dataset_spec"], "--model", model]
    always = {k["name"] for k in train_knob_specs()}
    for k in train_knob_specs() + train_knob_specs(more=True):
        v = values.get(k["name"], k["default"])
        if v is None or (k["name"] not in always and v == k["default"]):
            continue
        if isinstance(v, bool):
            out.append(k["option"] if v else "--no-" + k["option"][2:])
        else:
            out += [k["option"], f"{v:g}" if isinstance(v, float) else str(v)]
    return out


def check_launch(profile_id, run_name: str, taken: set[str]) -> None:
    if profile_id is None:
        raise StoreError("no profile chosen: profile a dataset on Data & profiles first")
    with store() as s:
        s.find_profile(profile_id)
    check_name(run_name, "run", taken)
