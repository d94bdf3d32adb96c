"""Train: launch sgpo / GRPO / DAPO runs from the current plan knobs, and watch any number of runs live."""

import shlex

import streamlit as st

from dashboard import analysis, curves, forms, jobs, run_figures, state, widgets
from sgpo import gauge, units
from sgpo.launch import cli_line
from sgpo.train.recorder import WASTED_EVENT
from sgpo.vocab import ACTIVE_STATUSES, FINISHED, STRATEGIES

st.title("Train")
with widgets.guard():
    runs = state.run_options()
    taken = {r["name"] for r in runs}

# open on a session's first visit with no runs; a constant afterwards, so reruns do not fold it away
with st.expander("Launch a run", expanded=st.session_state.setdefault("_launch_open", not runs)):
    profile = widgets.current_profile()
    st.caption("Trains on the chosen profile's dataset and model; sgpo follows the knobs set on the Plan page.")
    filled = st.session_state.get(state.FROM_PLAN)
    if filled:  # the Plan page's "Train this plan"
        st.info(
            "Filled in from the Plan page: strategy sgpo, "
            + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in filled.items())
            + ", and its plan knobs. The command below is the run the button starts.",
            icon=":material/tune:",
        )
    c = st.columns(3)
    strategy = c[0].selectbox(
        "strategy",
        STRATEGIES,
        key="train_strategy",
        help="sgpo: the plan from the Plan page; grpo: fixed G; dapo: dynamic sampling",
    )
    values = {k.name: widgets.train_input(k, c[(i + 1) % 3]) for i, k in enumerate(forms.train_knob_specs())}
    with st.expander("more training knobs"):
        c = st.columns(3)
        values |= {k.name: widgets.train_input(k, c[i % 3]) for i, k in enumerate(forms.train_knob_specs(more=True))}
    run_name = st.text_input("run name", value=forms.unique_name(strategy, taken), key="run_name")
    with widgets.guard():
        config = forms.train_config(strategy, profile, values)
    st.code(cli_line(forms.train_argv(config, run_name.strip())), language="bash")
    if values.get("engine") == "trl":
        gpus = st.number_input(
            "GPUs for accelerate launch",
            min_value=1,
            max_value=1024,
            value=8,
            key="train_gpus",
            help="the same run on N GPUs under accelerate (docs/SCALE.md); the button below "
            "starts it here, on this machine, in one process",
        )
        st.code(shlex.join(forms.accelerate_argv(config, run_name.strip(), int(gpus))), language="bash")
    if st.button("Launch run", type="primary", key="launch_run"):
        with widgets.guard(stop=False):
            if profile is None:
                st.error("no profile chosen: profile a dataset on Data & profiles first")
            else:
                started = state.launch_run(config, run_name)
                st.session_state["_watch_next"] = started["run_name"]
                st.success(f"launched {started['run_name']} (pid {started['pid']})")

with widgets.guard():
    runs = state.run_options()  # again: a run launched just now is watched at once
if not runs:
    st.info("No runs yet.")
    st.stop()

# what to watch, and how: outside the live fragments, so a click never lands in a fragment's rerun;
# bound to the URL, so a view can be shared and reloaded (?train_run=a&train_overlay=b&train_x=FLOPs)
by_name = {r["name"]: r for r in runs}
names = [r["name"] for r in reversed(runs)]  # newest first: the default
if st.session_state.get("_watch_next") in names:
    st.session_state["train_run"] = st.session_state.pop("_watch_next")
widgets.keep_valid("train_run", names)
c = st.columns([2, 3, 3, 2])
name = c[0].selectbox(
    "watch run",
    names,
    key="train_run",
    bind="query-params",
    help="status, stop, resume, checkpoints and log of this run",
)
others = [n for n in names if n != name]
widgets.keep_valid("train_overlay", others, many=True)
overlay = c[1].multiselect(
    "overlay runs",
    others,
    key="train_overlay",
    bind="query-params",
    help="drawn on every chart with the watched run, each in its own colour",
)
axis = c[2].segmented_control(
    "x-axis", list(curves.X_AXES), default="step", required=True, key="train_x", bind="query-params"
)
smooth = c[3].slider(
    "smoothing",
    0.0,
    0.99,
    0.6,
    step=0.01,
    key="train_smooth",
    bind="query-params",
    help="weight of a debiased exponential moving average; the raw values stay faint behind",
)
shown = [by_name[n] for n in [name, *overlay]]
run = by_name[name]
seen = analysis.watch_signature(runs, [name, *overlay])


@st.fragment(run_every=1)
def status() -> None:
    """The watched run's numbers, every second; a whole-page rerun when what the controls depend on (the
    run list, the status of a shown run) has changed, so Stop and Resume are never stale for long."""
    with widgets.guard(stop=False):
        now = state.run_options()
        if analysis.watch_signature(now, [name, *overlay]) != seen:
            st.rerun(scope="app")
        current = next(r for r in now if r["name"] == name)
        numbers = state.run_numbers(current)
        for col, (key, label, value) in zip(st.columns(3) + st.columns(3), numbers):
            with col.container(key=key):
                st.metric(label, value)
        # the run's own word that it learns nothing (sgpo/train/recorder.py): what its log says, in a box
        with state.store() as s:
            wasted = [e["message"] for e in s.events(current["id"]) if e["kind"] == WASTED_EVENT]
        if wasted:
            with st.container(key="wasted_warning"):
                st.warning(wasted[-1], icon=":material/block:")


status()
running = run["status"] in ACTIVE_STATUSES
b = st.columns([1, 1, 2, 2])
if b[0].button("Stop", key="stop_run", disabled=not running):
    with widgets.guard(stop=False):
        state.stop_run(name)
if b[1].button("Resume", key="resume_run", disabled=running or run["status"] == FINISHED):
    with widgets.guard(stop=False):
        state.resume_run(name)
steps = state.checkpoint_steps(name)
pruned = widgets.keep_valid("train_checkpoint", steps)  # then the newest is chosen
step = b[2].selectbox(
    "checkpoint",
    steps,
    format_func=lambda k: f"step {units.count(k)}",
    key="train_checkpoint",
    disabled=not steps,
    label_visibility="collapsed",
    placeholder="no checkpoint yet",
)
if b[3].button(
    "Profile this checkpoint",
    key="profile_checkpoint",
    disabled=step is None,
    help="profile the checkpoint on the dataset the run trained from, then compare on the Audit page",
):
    with widgets.guard(stop=False):
        if pruned is not None:  # the page re-read the checkpoints before this click: never profile another one
            st.error(
                f"the checkpoint at step {pruned} is no longer on disk (only the latest are kept); step {step} "
                f"is chosen now: click again to profile it"
            )
        else:
            audit = state.profile_checkpoint(name, step)
            jobs.remember(audit)
            st.success(f"profiling {audit['name']} in the background: [compare it on the Audit page]({audit['link']})")


@st.fragment(run_every=1 if any(r["status"] in ACTIVE_STATUSES for r in shown) else None)
def charts() -> None:
    """Every chart with every shown run; re-read each second while one of them is live."""
    with widgets.guard(stop=False):
        series = state.run_series(shown)
        left, right = st.columns(2)
        left.plotly_chart(run_figures.reward_figure(series, axis, smooth), key="chart_reward")
        right.plotly_chart(run_figures.wasted_figure(series, axis, smooth), key="chart_wasted")
        left.plotly_chart(run_figures.informative_figure(series, axis, smooth), key="chart_informative")
        right.plotly_chart(run_figures.flops_figure(series, axis), key="chart_flops")
        st.plotly_chart(run_figures.accuracy_figure(series, axis), key="chart_accuracy")
        # issue 21: the critical-batch gauge, and which side of it each shown run is on (sgpo.gauge.verdict)
        st.plotly_chart(run_figures.gauge_figure(series, axis), key="chart_gauge")
        known = state.details(shown)
        for i, s in enumerate(series):
            cfg = known[s.name]["config"]
            said = gauge.verdict(s.metrics, cfg.get("batch_rollouts"), engine=cfg.get("engine", "native"))
            with st.container(key=f"gauge_verdict_{i}"):
                st.caption(f"critical batch of {s.name}: {said['words']}")
        planned = series[0].planned
        if planned:
            words = "zero-advantage groups skipped" if planned["behaviour"] == "skip" else "every rollout trained"
            st.markdown(
                f"**Forecast beside measured** for {name} (the plan's forecast of this run, made before "
                f"training; {words})"
            )
            st.dataframe(
                analysis.forecast_beside_measured(planned, series[0].metrics),
                hide_index=True,
                key="forecast_vs_measured",
            )
            if planned.get("verdict"):
                st.caption(f"forecast verdict: {planned['verdict']}")
        st.caption(f"log of {name}: `{run.get('log_path') or 'none yet'}`")
        st.code(state.run_log(run) or "(empty)", language="text")


charts()
with st.expander("all runs"):
    st.dataframe(
        analysis.runs_table(runs),
        hide_index=True,
        key="runs_table",
        column_config={"step": st.column_config.NumberColumn(format="localized")},
    )
