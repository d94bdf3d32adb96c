"""Streamlit pieces more than one page uses: error guard, profile picker, knob inputs, jobs panel (from the store)."""

from __future__ import annotations

import math
import sqlite3
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from dashboard import analysis, jobs, state
from sgpo.errors import SgpoError
from sgpo.plan import PlanConfig
from sgpo.vocab import INTERRUPTED, PROFILE_DONE, PROFILE_RUNNING


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
        if p["status"] == PROFILE_DONE
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
            try:
                st.session_state["profile_id"] = state.profile(wanted)["id"]
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
    with guard():
        profile = state.profile(pid)
    if profile["status"] != PROFILE_DONE:
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
    with guard(stop=False):
        return state.profile(pid)
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
    """Every PlanConfig knob, as the Plan page shows them: in groups (selection, group sizes, curriculum,
    forecast), each group's advanced knobs folded (analysis.plan_knob_groups)."""
    specs = {k.name: k for k in PlanConfig.specs()}
    values = {}
    for group, (shown, advanced) in analysis.plan_knob_groups(list(specs)).items():
        st.markdown(f"**{group}**")
        values |= {n: knob_input(specs[n], state.knob_key(n)) for n in shown}
        if advanced:
            with st.expander(f"advanced {group}"):
                values |= {n: knob_input(specs[n], state.knob_key(n)) for n in advanced}
    return values


def train_input(spec, where=st):
    """A training knob: number inputs, not sliders (learning rates and step counts are typed)."""
    return knob_input(spec, f"train_{spec.name}", where, sliders=False)


# jobs ---------------------------------------------------------------------------------------------------
def profile_progress(p: dict) -> None:
    """A running profile's progress bar (a start whose worker has not written its profile yet: loading)."""
    done, total = p.get("queries_done") or 0, p.get("queries_total") or 0
    st.progress(
        min(1.0, done / total) if total else 0.0,
        text=f"profiling {p['name']}: {done:,}/{total:,} queries ({p['status']})"
        if total
        else f"profiling {p['name']}: loading the dataset and model…",
    )


def ended_line(p: dict) -> None:
    """A profile whose worker is gone before it finished (or a start that never wrote its profile): the
    worker's own error line when it left one, and how to continue."""
    said = p.get("error") or "its process is gone"
    if p.get("id") is None:  # the worker ended before it wrote the profile
        st.error(f"profile {p['name']} did not start: {said} (log {p.get('log_path')})")
    else:
        st.error(f"profile {p['name']} is interrupted: {said}; `sgpo profile resume {p['name']}` continues it")


def job_line(p: dict) -> None:
    """One profile in the jobs panel: running (with its pid), done, or interrupted with its error."""
    if p["status"] == PROFILE_RUNNING:
        st.caption(f":material/hourglass_top: profile **{p['name']}** running (pid {p.get('pid')})")
    elif p["status"] == INTERRUPTED:
        ended_line(p)
    else:
        st.caption(f":material/check_circle: profile **{p['name']}** {p['status']}")


@st.fragment(run_every=2)
def jobs_panel() -> None:
    """Background profiles, as the store records them; reruns the whole page when one appears or ends,
    since a finished profile changes what every page shows (the profile picker first)."""
    with guard(stop=False):
        listed = state.profile_options()
        signature = tuple((p["name"], p["status"]) for p in listed)
        seen = st.session_state.get("_jobs_seen")
        st.session_state["_jobs_seen"] = signature
        if seen is not None and seen != signature:
            st.rerun(scope="app")
        for p in jobs.recent(listed):
            job_line(p)
