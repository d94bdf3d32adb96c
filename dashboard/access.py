"""Who may use this dashboard. `sgpo dashboard` bound to anything but loopback starts the server with a token
in $SGPO_DASHBOARD_TOKEN (given with --token, taken from the environment, or generated and printed once, as
Jupyter does): a session must open a URL with ?token=... before any page runs.

    access.gate()          # app.py, first thing: a session without the token sees one line, nothing else
    access.link_params()   # {"token": ...} for links that open a new session (a full page load)

The check runs in app.py before the navigation, so an unauthorised session never builds a page: no widget is
created, so no callback of any page is registered and none can run. Tokens are compared in constant time.
A session that showed the right token once stays authorised (the server keeps its session state); a reload
is a new session and needs the URL with the token again. Without $SGPO_DASHBOARD_TOKEN (loopback, the
default) every session is let in.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from sgpo.cli.dashboard import TOKEN_ENV

TOKEN_PARAM = "token"
AUTHORISED = "_access_authorised"  # session state: this session showed the token


def required_token() -> str | None:
    """The token this server asks of every session, or None when it asks none."""
    return os.environ.get(TOKEN_ENV) or None


def matches(given: str | None, required: str) -> bool:
    """`given` is the token, compared in constant time (hmac.compare_digest)."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), required.encode("utf-8"))


def gate() -> None:
    """Let the session in, or show one line and stop the script before any page or widget exists."""
    required = required_token()
    if required is None or st.session_state.get(AUTHORISED):
        return
    given = st.query_params.get(TOKEN_PARAM)
    if matches(given, required):
        st.session_state[AUTHORISED] = True
        return
    st.error(
        "This dashboard needs its access token: open the URL `sgpo dashboard` printed (…/?token=…)."
        if not given
        else "Wrong access token: open the URL `sgpo dashboard` printed (…/?token=…)."
    )
    st.stop()


def link_params() -> dict[str, str]:
    """Query parameters a link that opens a new session must carry: the token, when this server asks one."""
    required = required_token()
    return {TOKEN_PARAM: required} if required else {}
