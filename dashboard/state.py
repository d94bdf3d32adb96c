"""What the pages share: the store, cached reads, the plan at the current knobs, and the training knobs.
Every check and every action is a library call (sgpo.store, sgpo.data, sgpo.model, sgpo.runs); this
module only keeps Streamlit's session state and caches. Background profiling lives in processes.py.
"""

from __future__ import annotations

import dataclasses
import shlex
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.analysis import with_decisions
from dashboard.curves import Series, forecast_of, planned_of, run_colors
from sgpo import runs, units
from sgpo.data import load_dataset
from sgpo.errors import StoreError
from sgpo.launch import sgpo_argv
from sgpo.plan import PlanConfig
from sgpo.plan import make_plan as plan_for
from sgpo.store import Store, check_name, default_path
from sgpo.train.checkpoint import checkpoint_problem
from sgpo.train.config import PLAN_FROM_RUN, TrainConfig

BUSY_TIMEOUT_MS = 5000  # how long a write waits for another writer before it reports "locked"


# store ---------------------------------------------------------------------------------------
def db_path() -> Path:
    """The store the server was started on (`sgpo dashboard --db` sets $SGPO_DB)."""
    return default_path()


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
    return load_dataset(spec).frame


def profile_options() -> list[dict]:
    with store() as s:
        return s.profiles()


def audit_frame(profile: dict) -> pd.DataFrame:
    """A profile's queries with the plan's decision, group size and phase at the current knobs, and their
    sample completions (`examples`)."""
    frame = profile_frame(str(db_path()), profile["id"], profile["updated"])
    if frame.empty:
        return frame.assign(decision=[], group_size=[], phase=[], examples=[])
    examples = profile_frame_with_examples(str(db_path()), profile["id"], profile["updated"])
    return with_decisions(frame, make_plan(frame, profile).queries).assign(examples=examples["examples"].to_numpy())


def same_data(profile: dict) -> list[dict]:
    """The other profiles of the same dataset (same content hash), oldest first: what it can be compared with."""
    return [
        p
        for p in profile_options()
        if p["id"] != profile["id"] and p.get("dataset_hash") and p.get("dataset_hash") == profile.get("dataset_hash")
    ]


def trained_from(profile: dict) -> str | None:
    """For a checkpoint's profile (model `run:NAME[@STEP]`), the name of the profile that run trained from."""
    spec = str(profile.get("model_spec") or "")
    if not spec.startswith("run:"):
        return None
    with store() as s:
        try:
            run = s.find_run(spec[4:].split("@")[0])
            return s.find_profile(run["profile_id"])["name"] if run.get("profile_id") else None
        except StoreError:
            return None


# plan knobs ----------------------------------------------------------------------------------
def knob_key(name: str) -> str:
    return f"knob_{name}"


def current_knobs() -> dict:
    """The knob values set on the Plan page (kept for the session), defaults for the rest."""
    return {k.name: st.session_state.get(knob_key(k.name), k.default) for k in PlanConfig.specs()}


def plan_config(knobs: dict | None = None) -> PlanConfig:
    return PlanConfig.from_dict(knobs if knobs is not None else current_knobs())


def make_plan(frame: pd.DataFrame, profile: dict, knobs: dict | None = None):
    """The plan for a profile at the given (or current) knobs; ConfigError if the knobs disagree."""
    return plan_for(
        frame,
        plan_config(knobs),
        n_params=profile.get("n_params") or None,
        flops_profile=float(profile.get("flops") or 0.0),
    )


def plan_cli_line(profile: dict, knobs: dict) -> str:
    return shlex.join(["sgpo", "plan", str(profile["name"]), *plan_config(knobs).cli_args()])


def plan_names() -> set[str]:
    with store() as s:
        return {p["name"] for p in s.plans()}


def save_plan(name: str, profile: dict, knobs: dict, summary: dict) -> int:
    name = check_name(name, "plan", "plan name")
    with store() as s:
        return s.save_plan(
            name=name,
            profile_id=profile["id"],
            config=plan_config(knobs).to_dict(),
            counts=summary["counts"],
            forecast=summary["forecast"],
        )


def unique_name(prefix: str, taken: set[str]) -> str:
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


def check_new_name(name: str, kind: str, taken: set[str]) -> str:
    """A valid name (sgpo.store.check_name) that no profile / plan / run of this store has yet."""
    name = check_name(name, kind, f"{kind} name")
    if name in taken:
        raise StoreError(f"a {kind} named {name!r} already exists in {db_path()}: choose another name")
    return name


# runs ---------------------------------------------------------------------------------------------------
TRAIN_KNOBS = ("engine", "steps", "eval_every", "lr", "batch_rollouts", "group_size", "seed")  # always shown
FROM_PROFILE = ("strategy", "profile", "dataset", "model", "plan")  # set by the page, not typed


def train_knob_specs(more: bool = False) -> list:
    """TrainConfig's knob specs: the ones the Train page always shows, or with more=True every other one
    except those the profile decides."""
    specs = {k.name: k for k in TrainConfig.specs()}
    # the page spells out a step count (the CLI's "100 unless --flops-budget" is not a number to show)
    specs["steps"] = dataclasses.replace(specs["steps"], default=TrainConfig.DEFAULT_STEPS)
    if more:
        return [k for n, k in specs.items() if n not in TRAIN_KNOBS + FROM_PROFILE and k.type != "dict"]
    return [specs[n] for n in TRAIN_KNOBS]


def run_options() -> list[dict]:
    """Every run with its shown status (`interrupted` when its process is gone)."""
    with store() as s:
        return runs.list_runs(s)


def runs_table(rows: list[dict]) -> pd.DataFrame:
    cols = ["id", "name", "strategy", "status", "step", "profile_id", "pid"]
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in cols if c in frame]]
    if "pid" in frame:  # a process id is a label, not a quantity
        frame["pid"] = frame["pid"].map(lambda p: "" if pd.isna(p) else str(int(p)))
    return frame.assign(
        updated=pd.to_datetime(pd.Series([r.get("updated") for r in rows]), unit="s").dt.strftime("%H:%M:%S").to_numpy()
    )


METRICS_CACHE_RUNS = 32  # runs whose metrics the server keeps parsed; the least recently read is dropped first


class MetricsCache:
    """{(store, run id): metrics_since's entry} for the METRICS_CACHE_RUNS runs read most recently, shared by
    every session of this server (a second viewer, or a reload, of a 20,000-step run parses only the steps
    written since) and locked, since Streamlit serves sessions from several threads. The store is read
    outside the lock; two sessions refreshing one run at once both read, and the later entry is kept.
    (An OrderedDict, not functools.lru_cache: an entry is updated from its previous value.)"""

    def __init__(self, max_runs: int = METRICS_CACHE_RUNS):
        self.max_runs = max_runs
        self._entries: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[tuple]:
        """Least recently read first."""
        with self._lock:
            return list(self._entries)

    def get(self, key: tuple) -> dict | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: dict) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_runs:
                self._entries.popitem(last=False)


@st.cache_resource(show_spinner=False)
def metrics_cache() -> MetricsCache:
    """The server's one MetricsCache."""
    return MetricsCache()


def run_metrics(s: Store, run: dict) -> pd.DataFrame:
    """The run's per-step metrics, read incrementally (see metrics_since). Treat as read-only."""
    cache, key = metrics_cache(), (str(s.path), run["id"])
    entry = metrics_since(s, run, cache.get(key))
    cache.put(key, entry)
    return entry["frame"]


def metrics_since(s: Store, run: dict, cached: dict | None) -> dict:
    """{"frame", "pid", "created"}: `cached`'s frame plus the steps written after its last one. A new
    process (a resume, which may re-write steps after its checkpoint) or another run under the same id
    means a full read."""
    fresh = cached is None or (cached["pid"], cached["created"]) != (run.get("pid"), run.get("created"))
    if fresh or cached["frame"].empty:
        frame = runs.metrics(run["id"], s)
    else:
        new = runs.metrics(run["id"], s, after_step=int(cached["frame"]["step"].iloc[-1]))
        frame = pd.concat([cached["frame"], new], ignore_index=True) if len(new) else cached["frame"]
    return {"frame": frame, "pid": run.get("pid"), "created": run.get("created")}


@st.cache_data(max_entries=512, show_spinner=False)
def run_details(db: str, run_id: int, created: float) -> dict:
    """What a run was created with and never changes: its config and the plan's wasted forecast (the
    plan itself, phases and all, is left out: it can be large)."""
    with store() as s:
        run = s.find_run(run_id)
    return {
        "config": run.get("config") or {},
        "forecast": forecast_of(run),
        "planned": planned_of(run),
        "strategy": run.get("strategy"),
    }


def details(rows: list[dict]) -> dict[str, dict]:
    """run_details for each listed run (from runs.list_runs), by name."""
    return {r["name"]: run_details(str(db_path()), r["id"], r.get("created") or 0.0) for r in rows}


def run_series(rows: list[dict]) -> list:
    """curves.Series for the listed runs (rows from runs.list_runs), in their order, one colour per run
    (curves.run_colors: the same on Train and Compare)."""
    colors = run_colors(sorted(rows, key=lambda r: r["id"]))
    out = []
    with store() as s:
        for r in rows:
            details = run_details(str(db_path()), r["id"], r.get("created") or 0.0)
            out.append(
                Series(
                    r["name"],
                    colors[r["name"]],
                    run_metrics(s, r),
                    runs.evals(r["id"], s),
                    details["forecast"],
                    details["planned"],
                )
            )
    return out


def watch_signature(rows: list[dict], shown: list[str]) -> tuple:
    """What the Train page's controls depend on: the runs there are and the status of those shown. The
    live view reruns the whole page when it changes (a new run to list, Stop or Resume to enable)."""
    return tuple(r["name"] for r in rows), tuple(sorted((r["name"], r["status"]) for r in rows if r["name"] in shown))


def run_numbers(run: dict) -> list[tuple[str, str, str]]:
    """(key, label, value in human units) for the watched run's row of st.metric."""
    with store() as s:
        m = run_metrics(s, run)
    last = m.iloc[-1] if len(m) else pd.Series(dtype=object)
    return [
        ("run_status", "status", run["status"]),
        ("run_step", "step", units.count(run.get("step") or 0)),
        ("run_strategy", "strategy", str(run.get("strategy"))),
        ("run_compute", "total compute", units.flops(last.get("flops_total"))),
        ("run_wasted", "wasted so far", units.percent(last.get("run_wasted_fraction"))),
        ("run_wall", "wall time", units.seconds(last.get("wall_seconds"))),
    ]


def checkpoint_steps(name: str) -> list[int]:
    """The steps of the run's complete checkpoints on disk, newest first (sgpo.train.checkpoint keeps the
    last few)."""
    with store() as s:
        root = runs.checkpoint_root(s, name)
    found = [p for p in root.glob("step-*") if p.name[5:].isdigit()] if root.is_dir() else []
    return sorted((int(p.name[5:]) for p in found if checkpoint_problem(p) is None), reverse=True)


def train_config(strategy: str, profile: dict | None, values: dict):
    """The TrainConfig the Train page describes: the chosen profile's dataset and model (a run trains what
    was profiled), the knobs typed on the page, and for sgpo the Plan page's knobs (its seed is --seed)."""
    known = {k.name for k in TrainConfig.specs()}
    fields = {k: v for k, v in values.items() if k in known and v is not None}
    if profile:
        model = profile.get("model_spec") or "starter"
        if model != "starter" and profile.get("model_path") and Path(profile["model_path"]).is_dir():
            model = profile["model_path"]
        fields |= {"dataset": profile["dataset_spec"], "model": model, "profile": profile["name"]}
    plan = {}
    if strategy == "sgpo":
        defaults = PlanConfig().to_dict()
        plan = {k: v for k, v in plan_config().to_dict().items() if k not in PLAN_FROM_RUN and v != defaults[k]}
    return TrainConfig(**fields, strategy=strategy, plan=plan)


def train_argv(cfg, name: str) -> list[str]:
    """The `sgpo train` command that creates and starts the same run: the always-shown knobs spelt out
    (the run does what the page shows, whatever the CLI defaults), the others where they differ."""
    always = {"strategy", "profile", "dataset", "model"} | set(TRAIN_KNOBS)
    spelt = []
    for spec in cfg.specs():
        value = getattr(cfg, spec.name)
        if spec.name in always and value is not None and not (spec.name == "profile" and cfg.strategy != "sgpo"):
            spelt += [spec.option, repr(value) if isinstance(value, float) else str(value)]
    rest = cfg.cli_args(skip=tuple(always))
    plan = PlanConfig.from_dict(cfg.plan).cli_args() if cfg.strategy == "sgpo" else []
    return sgpo_argv("train", *spelt, "--name", name, *rest, *plan, "--db", db_path(), "--detach")


def accelerate_argv(cfg, name: str, processes: int) -> list[str]:
    """The same run as `accelerate launch` over `processes` GPUs (TRL engine): the multi-GPU config shipped in
    docs/accelerate/, every process running the same `sgpo train` (in the foreground: the launcher owns them)."""
    argv = train_argv(cfg, name)[1:-1]  # `-m sgpo train ... --db DB`, without the interpreter and --detach
    return [
        "accelerate",
        "launch",
        "--config_file",
        "docs/accelerate/multi_gpu.yaml",
        "--num_processes",
        str(processes),
        *argv,
    ]


def launch_run(cfg, name: str, taken: set[str]) -> dict:
    """Create the run (every check, the plan made and stored once) and start its detached worker."""
    name = check_new_name(name, "run", taken)
    with store() as s:
        run = runs.create(cfg, s, name=name)
        return runs.start(run["id"], s, detach=True)


def stop_run(name: str) -> dict:
    with store() as s:
        return runs.stop(name, s, wait=0)


def resume_run(name: str) -> dict:
    with store() as s:
        return runs.resume(name, s, detach=True)


def profile_checkpoint(name: str, step: int) -> dict:
    """Start `sgpo profile` on the run's checkpoint at `step` in the background (dashboard/processes.py):
    {"name": the new profile, "link": the Audit page comparing it with the profile the run trained from}."""
    from urllib.parse import urlencode

    from dashboard import processes

    if step not in checkpoint_steps(name):
        raise StoreError(
            f"the checkpoint of run {name!r} at step {step} is no longer on disk (only the latest are "
            f"kept): choose another"
        )
    with store() as s:
        run = s.find_run(name)
        base = s.find_profile(run["profile_id"]) if run.get("profile_id") else None
    profile, argv = processes.checkpoint_profile(run, step, base)
    processes.launch("profile", check_new_name(profile, "profile", {p["name"] for p in profile_options()}), argv)
    query = {"profile": profile, **({"audit_before": base["name"]} if base else {})}
    return {"name": profile, "link": "audit?" + urlencode(query)}


def run_log(run: dict, lines: int = 30) -> str:
    """The end of the run's worker log ('' if there is none yet)."""
    from dashboard.processes import tail

    return tail(run.get("log_path"), lines)
