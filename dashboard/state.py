"""What the pages share: the store, cached reads, the plan knobs of this session, and the actions the
buttons take. Every read and every action is one library call (sgpo.profiles, sgpo.plans, sgpo.runs,
sgpo.compare, sgpo.store); this module only opens the store, caches what is read, and keeps Streamlit's
session state. The forms' configs and the command lines they show are built in forms.py.

    with state.store() as s: ...               # one Store per block (threads serve sessions concurrently)
    state.profile_options()                    # sgpo.profiles.list_profiles: status `interrupted` when gone
    state.make_plan(frame, profile, knobs)     # sgpo.plans.make at the Plan page's knobs
    state.run_series(rows)                     # curves.Series per run: metrics (cached, read incrementally)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard import access, analysis
from dashboard.analysis import with_decisions
from dashboard.curves import Series, forecast_of, run_colors
from sgpo import compare, launch, paths, plans, profiles, rollouts, runs, units
from sgpo.data import load_dataset
from sgpo.errors import StoreError
from sgpo.plan import PlanConfig
from sgpo.profile import ProfileConfig
from sgpo.store import Store, default_path
from sgpo.train.checkpoint import checkpoint_problem
from sgpo.train.config import TrainConfig

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


# profiles -----------------------------------------------------------------------------------------
def profile_options() -> list[dict]:
    """Every profile, oldest first, with its shown status (sgpo.profiles.list_profiles)."""
    with store() as s:
        return profiles.list_profiles(s)


def profile(ref: str | int) -> dict:
    """One profile as every page shows it (sgpo.profiles.status: `interrupted` when its process is gone,
    with its worker's error line if it left one)."""
    with store() as s:
        return profiles.status(ref, s)


@st.cache_data(max_entries=8, show_spinner=False)
def profile_frame(db: str, profile_id: int, updated: float) -> pd.DataFrame:
    """The planner's table for one profile; `updated` is in the key so a growing profile re-reads."""
    with store() as s:
        return profiles.frame(profile_id, s)


@st.cache_resource(max_entries=2, show_spinner=False)
def profile_frame_with_examples(db: str, profile_id: int, updated: float) -> pd.DataFrame:
    """With each query's sample completions: large, so cached as one shared object (treat as read-only)."""
    with store() as s:
        return profiles.frame(profile_id, s, examples=True)


@st.cache_resource(max_entries=2, show_spinner=False)
def dataset_frame(spec: str, fields: tuple = ()) -> pd.DataFrame:
    """The profiled dataset's prompts and answers (for search and export), read with the field options the
    profile recorded (`fields`: sorted (option, value) pairs); DataError if it is gone."""
    return load_dataset(spec, **dict(fields)).frame


def dataset_of(profile: dict) -> pd.DataFrame:
    """dataset_frame for a profile row."""
    fields = ((profile.get("settings") or {}).get("fields")) or {}
    return dataset_frame(profile["dataset_spec"], tuple(sorted(fields.items())))


def audit_frame(profile: dict) -> pd.DataFrame:
    """A profile's queries with the plan's decision, group size and phase at the current knobs, and their
    sample completions (`examples`)."""
    frame = profile_frame(str(db_path()), profile["id"], profile["updated"])
    if frame.empty:
        return frame.assign(decision=[], group_size=[], phase=[], examples=[])
    examples = profile_frame_with_examples(str(db_path()), profile["id"], profile["updated"])
    return with_decisions(frame, make_plan(frame, profile).plan.queries).assign(
        examples=examples["examples"].to_numpy()
    )


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
    if not paths.is_run_model(spec):
        return None
    with store() as s:
        try:
            run = s.find_run(paths.parse_run_model(spec)[0])
            return s.find_profile(run["profile_id"])["name"] if run.get("profile_id") else None
        except (StoreError, ValueError):
            return None


def start_profile(dataset: str, model: str, config: ProfileConfig, name: str) -> dict:
    """`sgpo profile` in a detached worker (sgpo.profiles.start): every check made here first, so a bad
    input is an error now, not a failed worker. Local paths must lie inside the folders the dashboard may
    read (sgpo.paths). Returns name, pid, log_path and status."""
    paths.check_spec_allowed(str(dataset), "dataset")
    paths.check_spec_allowed(str(model), "model")
    with store() as s:
        name = s.check_new_name("profile", name, "profile name")
        return profiles.start(dataset, model, config, s, name=name, detach=True)


# plans -------------------------------------------------------------------------------------------------
def knob_key(name: str) -> str:
    return f"knob_{name}"


def current_knobs() -> dict:
    """The knob values set on the Plan page (kept for the session), defaults for the rest."""
    return {k.name: st.session_state.get(knob_key(k.name), k.default) for k in PlanConfig.specs()}


def plan_config(knobs: dict | None = None) -> PlanConfig:
    return PlanConfig.from_dict(knobs if knobs is not None else current_knobs())


def make_plan(frame: pd.DataFrame, profile: dict, knobs: dict | None = None) -> plans.Made:
    """The plan for a profile at the given (or current) knobs (sgpo.plans.make, on the cached frame), with
    what it should be read with; ConfigError if the knobs disagree."""
    with store() as s:
        return plans.make(profile["id"], plan_config(knobs), s, frame=frame)


def plan_names() -> set[str]:
    with store() as s:
        return {p["name"] for p in plans.list_plans(s)}


def save_plan(made: plans.Made, name: str) -> int:
    """Store the plan under a new name (sgpo.plans.save checks it); returns its id."""
    with store() as s:
        return plans.save(made, name, s, option="plan name")


FROM_PLAN = "_train_from_plan"  # session state: the knobs the Plan page's "Train this plan" filled in


def plan_to_train(knobs: dict) -> dict:
    """Session state that opens the Train page on this plan: strategy sgpo, the planned run's steps, rollouts a
    step and seed in the Train page's widgets (the plan knobs themselves are the session's already, which
    the Train page's sgpo runs take), the launch form open, and what was filled in, to say so there."""
    filled = {k: v for k, v in analysis.train_values(knobs).items() if v is not None}
    return {
        "train_strategy": "sgpo",
        **{f"train_{k}": v for k, v in filled.items()},
        "_launch_open": True,
        FROM_PLAN: filled,
    }


# runs ---------------------------------------------------------------------------------------------------
def run_options() -> list[dict]:
    """Every run with its shown status (`interrupted` when its process is gone)."""
    with store() as s:
        return runs.list_runs(s)


def runs_on(profile: dict) -> list[dict]:
    """The runs on this profile's data (its dataset's content hash, or a profile of it they were planned
    from), oldest first: where its queries have a training history."""
    data = profile.get("dataset_hash")
    same = {p["id"] for p in profile_options() if data and p.get("dataset_hash") == data} | {profile["id"]}
    return [r for r in run_options() if r.get("profile_id") in same or (data and r.get("dataset_hash") == data)]


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
    if (
        cached is None
        or (cached["pid"], cached["created"]) != (run.get("pid"), run.get("created"))
        or cached["frame"].empty
    ):
        frame = runs.metrics(run["id"], s)
    else:
        new = runs.metrics(run["id"], s, after_step=int(cached["frame"]["step"].iloc[-1]))
        frame = pd.concat([cached["frame"], new], ignore_index=True) if len(new) else cached["frame"]
    return {"frame": frame, "pid": run.get("pid"), "created": run.get("created")}


@st.cache_data(max_entries=512, show_spinner=False)
def run_details(db: str, run_id: int, created: float) -> dict:
    """What a run was created with and never changes: its config and its plan's forecast of itself (the
    plan itself, phases and all, is left out: it can be large)."""
    with store() as s:
        run = s.find_run(run_id)
    return {
        "config": run.get("config") or {},
        "forecast": forecast_of(run),
        "planned": compare.planned(run),
        "strategy": run.get("strategy"),
    }


def details(rows: list[dict]) -> dict[str, dict]:
    """run_details for each listed run (from runs.list_runs), by name."""
    return {r["name"]: run_details(str(db_path()), r["id"], r.get("created") or 0.0) for r in rows}


def run_series(rows: list[dict]) -> list[Series]:
    """curves.Series for the listed runs (rows from runs.list_runs), in their order, one colour per run
    (curves.run_colors: the same on Train and Compare)."""
    colors = run_colors(sorted(rows, key=lambda r: r["id"]))
    out = []
    with store() as s:
        for r in rows:
            known = run_details(str(db_path()), r["id"], r.get("created") or 0.0)
            out.append(
                Series(
                    r["name"],
                    colors[r["name"]],
                    run_metrics(s, r),
                    runs.evals(r["id"], s),
                    known["forecast"],
                    known["planned"],
                )
            )
    return out


def settings_of(rows: list[dict], series: list[Series]) -> list[tuple[str, list[Series]]]:
    """The runs' series grouped by setting (sgpo.compare.settings: configs that differ only in seed), each
    setting named by its first run: what Compare draws as one mean line per setting."""
    known = details(rows)
    by_name = {x.name: x for x in series}
    groups = compare.settings([{**r, "config": known[r["name"]]["config"]} for r in rows])
    return [(g[0]["name"], [by_name[r["name"]] for r in g if r["name"] in by_name]) for g in groups]


def comparison(rows: list[dict], series: list[Series], baseline: str | None) -> pd.DataFrame:
    """The Compare page's table (sgpo.compare.table_of) from the series the page holds: the reduction factor
    of each run against `baseline`, as the README's benchmarks compute it."""
    return compare.table_of(
        rows,
        {x.name: x.evals for x in series},
        {x.name: x.metrics for x in series},
        baseline,
        planned={x.name: x.planned for x in series},
    )


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
    root = paths.checkpoint_root(db_path(), name)
    found = [p for p in root.glob("step-*") if p.name[5:].isdigit()] if root.is_dir() else []
    return sorted((int(p.name[5:]) for p in found if checkpoint_problem(p) is None), reverse=True)


def launch_run(cfg: TrainConfig, name: str) -> dict:
    """Create the run (every check, the name's included; the plan made and stored once) and start its
    detached worker. Local data and model paths must lie inside the folders the dashboard may read."""
    for spec, kind in ((cfg.dataset, "dataset"), (cfg.eval_dataset, "dataset"), (cfg.model, "model")):
        if spec:
            paths.check_spec_allowed(str(spec), kind)
    with store() as s:
        run = runs.create(cfg, s, name=s.check_new_name("run", name, "run name"))
        return runs.start(run["id"], s, detach=True)


def stop_run(name: str) -> dict:
    with store() as s:
        return runs.stop(name, s, wait=0)


def resume_run(name: str) -> dict:
    with store() as s:
        return runs.resume(name, s, detach=True)


def profile_checkpoint(name: str, step: int) -> dict:
    """Profile the run's checkpoint at `step` in a detached worker (sgpo.profiles.checkpoint_profile): what
    that returns (the new profile's name, pid, log_path) with `link`, the Audit page comparing it with the
    profile the run trained from."""
    with store() as s:
        started = profiles.checkpoint_profile(name, step, s, detach=True)
    query = {"profile": started["name"], **({"audit_before": started["before"]} if started.get("before") else {})}
    return {**started, "link": "audit?" + urlencode({**query, **access.link_params()})}  # a new session: the token


def run_log(run: dict, lines: int = 30) -> str:
    """The end of the run's worker log ('' if there is none yet)."""
    return launch.tail(run.get("log_path"), lines)


# rollouts (sgpo.rollouts) ---------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def summary_cache() -> MetricsCache:
    """The server's per-step rollout summaries (sgpo.rollouts.Summary), one entry per run, read incrementally."""
    return MetricsCache()


def rollout_summary(run: dict, last: int) -> rollouts.Summary:
    """Per step: all-correct and all-wrong shares, the hardest queries' pass rates, on every k-th step of a
    long run (rollouts.summary_every of its `last` step). Only steps written since the last read are read; a
    new process (a resume replays steps) or a new stride means a full read."""
    cache, key = summary_cache(), (str(db_path()), run["id"])
    entry = cache.get(key)
    fresh = entry is None or (entry["pid"], entry["created"]) != (run.get("pid"), run.get("created"))
    with store() as s:
        summary = rollouts.step_summary(
            run["id"], s, since=None if fresh else entry["summary"], every=rollouts.summary_every(last)
        )
    cache.put(key, {"summary": summary, "pid": run.get("pid"), "created": run.get("created")})
    return summary


def group_steps(run: dict) -> tuple[int, int] | None:
    """(first, last) of the run's steps with stored groups; None when it has stored none."""
    with store() as s:
        return s.group_steps(run["id"])


@st.cache_data(max_entries=64, show_spinner=False)
def run_groups(db: str, run_id: int, steps: tuple[int, int], last: int) -> pd.DataFrame:
    """The groups of steps[0]..steps[1] (sgpo.rollouts.groups); `last` (the run's last step) keys the cache."""
    with store() as s:
        return rollouts.groups(run_id, s, steps=steps)


@st.cache_data(max_entries=16, show_spinner=False)
def run_queries(db: str, run_id: int, last: int) -> pd.DataFrame:
    """Every query the run has rolled out, with p_hat and band (sgpo.rollouts.queries)."""
    with store() as s:
        return rollouts.queries(run_id, s)


@st.cache_data(max_entries=32, show_spinner=False)
def query_history(db: str, run_id: int, query: str, last: int) -> rollouts.History:
    with store() as s:
        return rollouts.history(run_id, query, s)


@st.cache_data(max_entries=8, show_spinner=False)
def success_matrix(db: str, run_id: int, min_change: float, last: int) -> rollouts.Matrix:
    with store() as s:
        return rollouts.success_matrix(run_id, s, min_change=min_change)
