"""Background profiles as the pages show them: from the store (sgpo.profiles: running, done, or interrupted
when the process writing one is gone, with its worker's error line), and this session's starts that the
store does not know yet (a worker writes its profile once it has loaded the data and the model). A server's
first start on an empty store profiles builtin:train with the starter policy.

    jobs.remember(state.start_profile(...))   # keep a start until its profile is written
    jobs.recent(state.profile_options())      # running, ended lately, and this session's pending starts
"""

from __future__ import annotations

import os
import time

import streamlit as st

from dashboard import state
from sgpo import launch
from sgpo.errors import ModelError
from sgpo.model import check_spec as check_model
from sgpo.profile import ProfileConfig
from sgpo.vocab import INTERRUPTED, PROFILE_RUNNING

RECENT_SECONDS = 600  # ended jobs stay listed this long
FIRST_PROFILE = {"dataset": "builtin:train", "model": "starter", "name": "starter-train"}


def remember(started: dict | None) -> bool:
    """Keep a detached start (what sgpo.profiles.start returned) in this session until its profile is in the
    store, for RECENT_SECONDS at most; False when there is nothing to keep or it is kept already."""
    if not started or not started.get("pid"):
        return False
    kept = st.session_state.setdefault("_profile_starts", {})
    if started["name"] in kept:
        return False
    kept[started["name"]] = {**started, "started": time.time()}
    return True


def pending(listed: list[dict]) -> list[dict]:
    """This session's starts whose profile is not in the store yet (`listed`: state.profile_options()), each
    with `alive` (its worker runs) and, for one that ended without writing it, the worker's `error` line."""
    kept = st.session_state.get("_profile_starts", {})
    names = {p["name"] for p in listed}
    for name in [n for n, j in kept.items() if n in names or time.time() - j["started"] > RECENT_SECONDS]:
        del kept[name]
    out = []
    for job in kept.values():
        alive = launch.pid_alive(job["pid"])
        out.append({**job, "alive": alive, "error": None if alive else launch.last_error(job.get("log_path"))})
    return out


def recent(listed: list[dict]) -> list[dict]:
    """What the jobs panel and the Data page list, newest first: profiles being written now and those that
    ended in the last RECENT_SECONDS (an interrupted one with its worker's error line), then this session's
    starts not yet in the store (status running while the worker loads, interrupted if it ended; id None)."""
    now = time.time()
    shown = [
        state.profile(p["id"]) if p["status"] == INTERRUPTED else p
        for p in reversed(listed)
        if p["status"] == PROFILE_RUNNING or now - (p.get("updated") or 0) < RECENT_SECONDS
    ]
    for job in pending(listed):
        shown.append({**job, "status": PROFILE_RUNNING if job["alive"] else INTERRUPTED, "id": None})
    return shown


def first_profile() -> dict | None:
    """On a first start with an empty store, profile the built-in train split with the starter policy, once
    per server and store: what sgpo.profiles.start returned, until the worker has written its profile. None
    when the store had profiles, when $SGPO_AUTOPROFILE is 0 (tests), or when the starter policy is missing
    (first_profile_note says why)."""
    if os.environ.get("SGPO_AUTOPROFILE", "1") == "0":
        return None
    started = _first_profile(str(state.db_path()))
    if started is None:
        return None
    return None if any(p["name"] == started["name"] for p in state.profile_options()) else started


@st.cache_resource(max_entries=4, show_spinner=False)
def _first_profile(db: str) -> dict | None:
    """Started at most once per server and store (Streamlit keeps the result)."""
    with state.store() as s:
        if s.profiles():
            return None
    try:
        model = check_model(FIRST_PROFILE["model"])
    except ModelError:
        return None
    f = FIRST_PROFILE
    return state.start_profile(f["dataset"], model, ProfileConfig(), f["name"])


def first_profile_note() -> str:
    """Why an empty store was not profiled by itself, if it was not."""
    try:
        check_model(FIRST_PROFILE["model"])
    except ModelError as exc:
        return f"The first start profiles builtin:train with the starter policy, but {exc}."
    if os.environ.get("SGPO_AUTOPROFILE", "1") == "0":
        return "Automatic first profiling is off (SGPO_AUTOPROFILE=0)."
    return ""
