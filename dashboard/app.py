"""sGPO Studio: `sgpo dashboard` serves this file. The navigation follows the data flow."""

# `streamlit run` puts only this folder on the path: `dashboard.*` comes from the installed package (an
# editable install in a checkout, as `make demo` and `make test` make).
import streamlit as st

from dashboard import access, jobs, state, widgets

st.set_page_config(page_title="sGPO Studio", layout="wide")  # no page_icon: a material one is fetched from the internet
access.gate()  # before any page or widget: a session without the server's token sees one line and nothing else
nav = st.navigation(
    [
        st.Page("views/data.py", title="Data & profiles", icon=":material/database:", default=True),
        st.Page("views/audit.py", title="Audit", icon=":material/search:"),
        st.Page("views/plan.py", title="Plan", icon=":material/tune:"),
        st.Page("views/train.py", title="Train", icon=":material/model_training:"),
        st.Page("views/rollouts.py", title="Rollouts", icon=":material/list_alt:"),
        st.Page("views/queries.py", title="Queries", icon=":material/timeline:"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    ]
)

with widgets.guard():
    if jobs.remember(jobs.first_profile()):  # started, and new to this session
        st.toast("Empty store: profiling builtin:train with the starter policy, so Audit and Plan have data.")
st.sidebar.caption(f"store `{state.db_path()}`")
widgets.profile_picker()
with st.sidebar:
    widgets.jobs_panel()
nav.run()
