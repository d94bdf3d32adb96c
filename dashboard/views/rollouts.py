"""Rollouts: a run's groups step by step (completions, rewards, advantages), each step's all-correct and
all-wrong shares and its hardest queries' pass rates, one query's success over training, and every query's.
Model output and dataset text are shown as text only (tables, st.code), never as markdown or HTML."""

import streamlit as st

from dashboard import rollout_figures, rollout_tables, state, widgets
from dashboard.analysis import to_csv, to_parquet
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
first, last, stored = state.group_steps(run)
latest = c[1].toggle("latest step", value=True, key="rollouts_latest", help="follow the run's newest step")
chosen = (last, last)
if stored and last > first and not latest:
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
    """The chosen step's groups (the newest step while following a live run), one group's samples."""
    with widgets.guard(stop=False):
        now = state.group_steps(run)
        if not now[2]:
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
        rows = frame.to_dict("records")
        order = sorted(range(len(rows)), key=lambda i: rows[i]["completions"] is None)  # kept texts first
        pick = st.selectbox(
            "look at a group", order, format_func=lambda i: rollout_tables.group_label(rows[i]), key="rollouts_group"
        )
        group = rows[pick if pick is not None else order[0]]
        st.caption(f"prompt of {group['query_id']} (task {group['task']}, band {group['band']}):")
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
        if st.button("See this query over training", key="rollouts_follow"):
            st.session_state["rollouts_query"] = group["query_id"]
            st.rerun(scope="app")


@st.fragment(run_every=2 if live else None)
def per_step() -> None:
    with widgets.guard(stop=False):
        summary = state.rollout_summary(run)
        left, right = st.columns(2)
        left.plotly_chart(rollout_figures.outcome_figure(summary.frame, smooth), key="chart_outcomes")
        right.plotly_chart(rollout_figures.hardest_figure(summary.frame, summary.basis, smooth), key="chart_hardest")


step_groups()
per_step()

st.subheader("One query over training")
q = st.columns([2, 3])
search = q[0].text_input("search id or prompt", key="rollouts_search")
matches = rollouts.matching(known, search) if search else known
options = matches["query_id"].astype(str).tolist()[:500]
wanted = st.session_state.get("rollouts_query") or st.query_params.get("rollouts_query")
if wanted and wanted not in options and wanted in set(known["query_id"].astype(str)):
    options = [wanted, *options]  # a query chosen elsewhere (a group above, the Audit page) stays offered
widgets.keep_valid("rollouts_query", options)
query = q[1].selectbox(
    "query", options, key="rollouts_query", bind="query-params", index=None, placeholder="pick a query"
)


@st.fragment(run_every=2 if live else None)
def query_history() -> None:
    if not query:
        st.caption("Pick a query (or click **See this query over training** under a group) to see its groups.")
        return
    with widgets.guard(stop=False):
        h = state.query_history(db, run["id"], query, state.group_steps(run)[1])
        st.plotly_chart(rollout_figures.history_figure(h), key="chart_history")
        table = rollout_tables.history_table(h.groups)
        st.dataframe(table, hide_index=True, key="rollouts_history")
        d1, d2 = st.columns(2)
        d1.download_button(
            "Download history CSV",
            lambda: to_csv(rollouts.text_frame(h.groups)),
            f"{name}-{query}.csv",
            key="history_csv",
        )
        d2.download_button(
            "Download history Parquet", lambda: to_parquet(h.groups), f"{name}-{query}.parquet", key="history_parquet"
        )


query_history()

st.subheader("Every query over training")
change = st.slider("learned / forgotten: moved by at least", 0.05, 1.0, 0.5, step=0.05, key="rollouts_min_change")
with widgets.guard():
    matrix = state.success_matrix(db, run["id"], change, state.group_steps(run)[1])
st.plotly_chart(rollout_figures.heatmap_figure(matrix), key="chart_heatmap")
for key, label in (("learned", "learned"), ("forgotten", "forgotten")):
    moved = matrix.queries[matrix.queries[key]] if len(matrix.queries) else matrix.queries
    st.caption(
        f"{label}: {len(moved):,} queries (start: {'initial p_hat' if 'p_hat' in matrix.order else 'first half of its groups'}, end: the last half of its groups)"
    )
    st.dataframe(moved.head(200), hide_index=True, key=f"rollouts_{key}")
long = rollouts.matrix_long(matrix)
m1, m2 = st.columns(2)
m1.download_button("Download heatmap CSV", lambda: to_csv(long), f"{name}-success.csv", key="matrix_csv")
m2.download_button(
    "Download heatmap Parquet", lambda: to_parquet(long), f"{name}-success.parquet", key="matrix_parquet"
)
