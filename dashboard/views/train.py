"""Train: launch sgpo / GRPO / DAPO runs from the current plan knobs and watch them live."""

import streamlit as st

from dashboard import figures, state, widgets
from sgpo.launch import cli_line
from sgpo.vocab import ACTIVE_STATUSES, FINISHED, STRATEGIES

st.title("Train")
with widgets.guard():
    runs = state.run_options()
    taken = {r["name"] for r in runs}

# open on a session's first visit with no runs; a constant afterwards, so reruns do not fold it away
with st.expander("Launch a run", expanded=st.session_state.setdefault("_launch_open", not runs)):
    profile = widgets.current_profile()
    st.caption("Trains on the chosen profile's dataset and model; sgpo follows the knobs set on the Plan page.")
    c = st.columns(3)
    strategy = c[0].selectbox("strategy", STRATEGIES, key="train_strategy",
                              help="sgpo: the plan from the Plan page; grpo: fixed G; dapo: dynamic sampling")
    values = {k.name: widgets.train_input(k, c[(i + 1) % 3]) for i, k in enumerate(state.train_knob_specs())}
    with st.expander("more training knobs"):
        c = st.columns(3)
        values |= {k.name: widgets.train_input(k, c[i % 3]) for i, k in enumerate(state.train_knob_specs(more=True))}
    run_name = st.text_input("run name", value=state.unique_name(strategy, taken), key="run_name")
    with widgets.guard():
        config = state.train_config(strategy, profile, values)
    st.code(cli_line(state.train_argv(config, run_name.strip())), language="bash")
    if st.button("Launch run", type="primary", key="launch_run"):
        with widgets.guard(stop=False):
            if profile is None:
                st.error("no profile chosen: profile a dataset on Data & profiles first")
            else:
                started = state.launch_run(config, run_name, taken)
                st.session_state["_watch_next"] = started["run_name"]  # watched once its row is listed
                st.success(f"launched {started['run_name']} (pid {started['pid']})")

if not runs and "_watch_next" not in st.session_state:
    st.info("No runs yet.")
    st.stop()


@st.fragment(run_every=1)
def live() -> None:
    """Re-reads the store every second: the charts trail the trainer by at most about one second."""
    with widgets.guard(stop=False):
        runs = state.run_options()
        if not runs:
            st.caption("waiting for the run to start…")
            return
        st.dataframe(state.runs_table(runs), hide_index=True, key="runs_table")
        names = [r["name"] for r in runs]
        if st.session_state.get("_watch_next") in names:
            st.session_state["train_run"] = st.session_state.pop("_watch_next")
        if st.session_state.get("train_run") not in names:
            st.session_state["train_run"] = names[-1]
        name = st.selectbox("watch run", names, key="train_run")
        run, metrics, evals = state.run_frames(name)
        cols = st.columns([1, 1, 1, 1, 2])
        for col, key, label, value in [(cols[0], "run_status", "status", run["status"]),
                                       (cols[1], "run_step", "step", run.get("step") or 0),
                                       (cols[2], "run_strategy", "strategy", run["strategy"])]:
            with col.container(key=key):
                st.metric(label, value)
        running = run["status"] in ACTIVE_STATUSES
        if cols[3].button("Stop", key="stop_run", disabled=not running):
            state.stop_run(name)
        if cols[4].button("Resume", key="resume_run", disabled=running or run["status"] == FINISHED):
            state.resume_run(name)
        left, right = st.columns(2)
        left.plotly_chart(figures.reward_figure(metrics), key="chart_reward")
        right.plotly_chart(figures.wasted_figure(metrics), key="chart_wasted")
        left.plotly_chart(figures.informative_figure(metrics), key="chart_informative")
        right.plotly_chart(figures.flops_figure(metrics), key="chart_flops")
        st.plotly_chart(figures.accuracy_figure(evals, metrics), key="chart_accuracy")
        st.caption(f"log: {run.get('log_path') or 'none yet'}")
        st.code(state.run_log(run) or "(empty)", language="text")


live()
