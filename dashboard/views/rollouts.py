"""Rollouts: a run's groups step by step (completions, rewards, advantages), and each step's all-correct and
all-wrong shares and its hardest queries' pass rates. Model output and dataset text are shown as text only
(tables, st.code), never as markdown or HTML. A query's whole history is on the Queries page."""

import streamlit as st

from dashboard import rollout_figures, rollout_tables, state, widgets
from sgpo import rollouts
from sgpo.vocab import ACTIVE_STATUSES, BANDS

st.title("Rollouts")
with widgets.guard():
    runs = state.run_options()
if not runs:
    st.info("No runs yet: launch one on **Train**; its groups show here from its first step.")
    st.stop()
by_name = {r["name"]: r for r in runs}
names = [r["name"] for r in reversed(runs)]  # newest first: the default
widgets.keep_valid("rollouts_run", names)
c = st.columns([3, 2, 4, 2])
name = c[0].selectbox("run", names, key="rollouts_run", bind="query-params")
run = by_name[name]
db, live = str(state.db_path()), run["status"] in ACTIVE_STATUSES
first, last = state.group_steps(run) or (0, 0)
latest = c[1].toggle("latest step", value=True, key="rollouts_latest", help="follow the run's newest step")
chosen = (last, last)
if last > first and not latest:
    kept = st.session_state.get("rollouts_steps")
    if not (isinstance(kept, (list, tuple)) and len(kept) == 2 and first <= kept[0] <= kept[1] <= last):
        st.session_state["rollouts_steps"] = (last, last)
    chosen = tuple(c[2].slider("steps", first, last, key="rollouts_steps", help="one step, or a range"))
smooth = c[3].slider("smoothing", 0.0, 0.99, 0.6, step=0.01, key="rollouts_smooth", help="of the per-step charts")
f = st.columns(4)
with widgets.guard():
    known = state.run_queries(db, run["id"], last)
tasks = f[0].multiselect("task", sorted(known["task"].dropna().unique()), key="rollouts_tasks", placeholder="all")
bands = f[1].multiselect("band (initial p_hat)", [*BANDS, rollouts.UNPROFILED], key="rollouts_bands", placeholder="all")
outcomes = f[2].multiselect("outcome", list(rollouts.OUTCOMES), key="rollouts_outcomes", placeholder="all")
statuses = f[3].multiselect("status", list(rollouts.STATUSES), key="rollouts_statuses", placeholder="all")


@st.fragment(run_every=2 if live else None)
def step_groups() -> None:
    """The chosen steps' groups (the newest step while following a live run) and one group's samples."""
    with widgets.guard(stop=False):
        now = state.group_steps(run)
        if now is None:
            st.info(f"run {name} has stored no groups yet" + (": they show with its first step" if live else ""))
            return
        steps = (now[1], now[1]) if latest else chosen
        frame = rollouts.filtered(
            state.run_groups(db, run["id"], steps, now[1]), task=tasks, band=bands, outcome=outcomes, status=statuses
        )
        st.caption(rollout_tables.step_caption(frame, steps))
        st.dataframe(
            rollout_tables.group_table(frame),
            hide_index=True,
            key="rollouts_groups",
            column_config={
                "p_hat": st.column_config.NumberColumn("p_hat", format="%.3f"),
                "group_size": st.column_config.NumberColumn("G"),
                "pass_rate": st.column_config.ProgressColumn("pass rate", min_value=0.0, max_value=1.0, format="%.2f"),
                "kept": st.column_config.CheckboxColumn("texts kept"),
            },
        )
        if frame.empty:
            return
        rows = {f"{r['step']}:{r['slot']}": r for r in frame.to_dict("records")}  # stable keys: steps come and go
        order = sorted(rows, key=lambda k: rows[k]["completions"] is None)  # kept texts first
        pick = st.selectbox(  # one widget per steps shown: a new step starts from its first group, label and all
            "look at a group",
            order,
            format_func=lambda k: rollout_tables.group_label(rows[k]),
            key=f"rollouts_group_{steps[0]}_{steps[1]}",
        )
        group = rows[pick if pick in rows else order[0]]
        st.text(f"query {group['query_id']} · task {group['task']} · band {group['band']} · prompt:")  # plain text
        st.code(str(group.get("prompt") or ""), language="text")
        st.dataframe(
            rollouts.samples(group),
            hide_index=True,
            key="rollouts_samples",
            column_config={
                "completion": st.column_config.TextColumn("completion", width="large"),
                "reward": st.column_config.NumberColumn("reward", format="%.3g"),
                "advantage": st.column_config.NumberColumn("advantage", format="%+.3f"),
            },
        )
        if group["completions"] is None:
            st.caption("completions are kept for a few groups a step (--keep-completions); this one has rewards only")
        st.page_link(
            "views/queries.py",
            label="See this query over training",  # a fixed label: a query id is dataset text, never markdown
            icon=":material/timeline:",
            query_params={"queries_run": name, "queries_query": str(group["query_id"])},
        )


@st.fragment(run_every=2 if live else None)
def per_step() -> None:
    with widgets.guard(stop=False):
        now = state.group_steps(run)
        summary = state.rollout_summary(run, now[1] if now else 0)
        left, right = st.columns(2)
        left.plotly_chart(rollout_figures.outcome_figure(summary.frame, smooth), key="chart_outcomes")
        right.plotly_chart(rollout_figures.hardest_figure(summary.frame, summary.basis, smooth), key="chart_hardest")


step_groups()
per_step()
