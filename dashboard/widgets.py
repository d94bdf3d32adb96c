"""Streamlit pieces more than one page uses: error guard, profile picker, knob inputs, jobs panel."""

from __future__ import annotations

import math
import sqlite3
import time
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from dashboard import processes, state
from sgpo.errors import SgpoError
from sgpo.plan import PlanConfig


@contextmanager
def guard(stop: bool = True):
    """Show a user error (or a store failure) as st.error instead of a traceback page."""
    try:
        yield
    except SgpoError as exc:
        st.error(str(exc))
        if stop:
            st.stop()
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        st.error(f"the store {state.db_path()} could not be read: {exc} (locked by another process or not a database?)")
        if stop:
            st.stop()


def keep_valid(key: str, options: list, many: bool = False):
    """Drop a widget's kept value (from the session or the URL) that is no longer among its options: a run
    deleted, the watched run itself offered as an overlay, a checkpoint pruned. Returns what was dropped
    (None if nothing was)."""
    if key not in st.session_state:
        return None
    value = st.session_state[key]
    if many:
        kept = [v for v in value or [] if v in options]
        if kept != value:
            st.session_state[key] = kept
            return [v for v in value if v not in kept]
    elif value not in options:
        del st.session_state[key]
        return value
    return None


def start_with(key: str, value) -> None:
    """A widget's first value when neither the session nor the URL gives one (instead of the widget's own
    default, which Streamlit would also compare with what the session holds)."""
    if key not in st.session_state and key not in st.query_params:
        st.session_state[key] = value


# profile ---------------------------------------------------------------------------------------------
def profile_label(p: dict) -> str:
    done = (
        ""
        if p["status"] == "done"
        else f" ({p['status']} {p.get('queries_done') or 0}/{p.get('queries_total') or '?'})"
    )
    return f"{p['name']} · {p.get('dataset_spec')} · {p.get('model_spec')}{done}"


def profile_picker() -> None:
    """Sidebar choice of the profile every page works on (?profile=NAME or id preselects one)."""
    with guard(stop=False):
        profiles = state.profile_options()
        ids = [p["id"] for p in profiles]
        wanted = st.query_params.get("profile")
        if wanted and "profile_id" not in st.session_state:
            with state.store() as s:
                try:
                    st.session_state["profile_id"] = s.find_profile(wanted)["id"]
                except SgpoError as exc:
                    st.error(str(exc))
        if not profiles:
            st.sidebar.caption("no profiles yet: start one on Data & profiles")
            return
        if st.session_state.get("profile_id") not in ids:
            st.session_state["profile_id"] = ids[-1]
        labels = {p["id"]: profile_label(p) for p in profiles}
        st.sidebar.selectbox("profile", ids, key="profile_id", format_func=labels.get)


def selected_profile() -> dict:
    """The chosen profile row, re-read so its status and `updated` are current; stops the page if none."""
    pid = st.session_state.get("profile_id")
    if pid is None:
        st.info(
            "No profile yet. Start one on **Data & profiles** (the first start profiles builtin:train "
            "with the starter policy by itself)."
        )
        st.stop()
    with guard(), state.store() as s:
        profile = s.find_profile(pid)
    if profile["status"] != "done":
        st.warning(
            f"profile {profile['name']} is {profile['status']} ({profile.get('queries_done') or 0}/"
            f"{profile.get('queries_total') or '?'} queries): showing what is stored so far"
        )
    return profile


def current_profile() -> dict | None:
    """The chosen profile row, or None (no profile yet, or it could not be read: the error is shown)."""
    pid = st.session_state.get("profile_id")
    if pid is None:
        return None
    with guard(stop=False), state.store() as s:
        return s.find_profile(pid)
    return None


def profile_table(profile: dict) -> pd.DataFrame:
    with guard():
        frame = state.profile_frame(str(state.db_path()), profile["id"], profile["updated"])
    if frame.empty:
        st.info(f"profile {profile['name']} holds no queries yet")
        st.stop()
    return frame


# knobs ----------------------------------------------------------------------------------------------
def knob_input(spec, key: str, where=st, *, sliders: bool = True, **kw):
    """One widget for one config knob (a sgpo.knobs.KnobSpec): a selectbox for choices, a toggle for a
    bool, a slider for a bounded number (unless sliders=False), a number input otherwise. The library
    validates the value."""
    label = kw.pop("label", spec.label)
    common = dict(key=key, help=spec.help, persist_state="session", **kw)
    lo, hi, default = spec.min, spec.max, kw.pop("value", spec.default)
    if spec.choices:
        choices = list(spec.choices)
        return where.selectbox(label, choices, index=choices.index(default) if default in choices else 0, **common)
    if spec.type == "bool":
        return where.toggle(label, value=bool(default), **common)
    if (
        sliders
        and spec.type in ("int", "float")
        and lo is not None
        and hi is not None
        and default is not None
        and hi - lo <= 1024
    ):
        if spec.type == "int":
            return where.slider(label, int(lo) + spec.open_min, int(hi), int(default), step=1, **common)
        step = 10 ** math.floor(math.log10((hi - lo) / 100)) if hi > lo else 0.01
        lo = lo + step if spec.open_min else lo  # (lo, hi]: the slider starts one step in
        return where.slider(label, float(lo), float(hi), float(default), step=float(step), **common)
    if spec.type in ("int", "float"):
        cast = int if spec.type == "int" else float
        small = cast is float and default is not None and 0 < abs(default) < 1e-2
        step = 1 if cast is int else 10 ** math.floor(math.log10(abs(default))) if small else None
        return where.number_input(
            label,
            min_value=None if lo is None else cast(lo),
            max_value=None if hi is None else cast(hi),
            value=None if default is None else cast(default),
            step=step,
            format="%.1e" if small else None,
            **common,
        )
    return where.text_input(label, value="" if default is None else str(default), **common) or None


def plan_knob_inputs() -> dict:
    """Every PlanConfig knob, as the Plan page shows them."""
    return {k.name: knob_input(k, state.knob_key(k.name)) for k in PlanConfig.specs()}


def train_input(spec, where=st):
    """A training knob: number inputs, not sliders (learning rates and step counts are typed)."""
    return knob_input(spec, f"train_{spec.name}", where, sliders=False)


# jobs ---------------------------------------------------------------------------------------------------
RECENT_SECONDS = 600  # finished jobs stay listed this long


def profile_progress(p: dict) -> None:
    done, total = p.get("queries_done") or 0, p.get("queries_total") or 0
    st.progress(
        min(1.0, done / total) if total else 0.0,
        text=f"profiling {p['name']}: {done:,}/{total:,} queries ({p['status']})"
        if total
        else f"profiling {p['name']}: loading the dataset and model…",
    )


def job_line(job: processes.Job) -> None:
    """One background job in a line: running, done, or its error."""
    rc = job.returncode
    if rc is None:
        st.caption(f":material/hourglass_top: {job.kind} **{job.name}** running (pid {job.proc.pid})")
    elif rc == 0:
        done = {"train": "launched (runs in the background)", "resume": "resumed (runs in the background)"}
        st.caption(f":material/check_circle: {job.kind} **{job.name}** {done.get(job.kind, 'finished')}")
    else:
        st.error(f"{job.kind} {job.name} failed: {job.error()}")


@st.fragment(run_every=2)
def jobs_panel() -> None:
    """This server's background jobs; reruns the whole page when one finishes, since a finished
    profile or run changes what every page shows (the profile picker first)."""
    jobs = processes.jobs()
    seen = st.session_state.setdefault("_finished_jobs", set())
    newly = {id(j) for j in jobs if not j.running} - seen
    seen |= newly
    if newly and st.session_state.get("_jobs_primed"):
        st.rerun(scope="app")
    st.session_state["_jobs_primed"] = True
    for job in jobs:
        if job.running or time.time() - job.started < RECENT_SECONDS:
            job_line(job)
