"""Queries: what each query learned over a run. One query's groups over training with its p_hat in the
initial and checkpoint profiles, and every query's success as a query x step heatmap with the queries learned
and forgotten; CSV and Parquet of both. Queries are named by id and shown as text only."""

import streamlit as st

from dashboard import rollout_figures, rollout_tables, state, widgets
from dashboard.analysis import to_csv, to_parquet
from sgpo import rollouts
from sgpo.vocab import ACTIVE_STATUSES

st.title("Queries over training")
with widgets.guard():
    runs = state.run_options()
if not runs:
    st.info("No runs yet: launch one on **Train**.")
    st.stop()
by_name = {r["name"]: r for r in runs}
names = [r["name"] for r in reversed(runs)]
widgets.keep_valid("queries_run", names)
q = st.columns([2, 2, 3])
name = q[0].selectbox("run", names, key="queries_run", bind="query-params")
run = by_name[name]
db, live = str(state.db_path()), run["status"] in ACTIVE_STATUSES
last = (state.group_steps(run) or (0, 0))[1]
with widgets.guard():
    known = state.run_queries(db, run["id"], last)
search = q[1].text_input("search id or prompt", key="queries_search")
options = rollouts.matching(known, search)["query_id"].astype(str).tolist()[:500]
wanted = st.session_state.get("queries_query") or st.query_params.get("queries_query")
if wanted and wanted not in options and wanted in set(known["query_id"].astype(str)):
    options = [wanted, *options]  # a query chosen elsewhere (a group on Rollouts, the Audit page) stays offered
widgets.keep_valid("queries_query", options)
query = q[2].selectbox(
    "query", options, key="queries_query", bind="query-params", index=None, placeholder="pick a query"
)


@st.fragment(run_every=2 if live else None)
def query_history() -> None:
    if not query:
        st.caption("Pick a query (or follow one from a group on the Rollouts page) to see its groups over training.")
        return
    with widgets.guard(stop=False):
        h = state.query_history(db, run["id"], query, (state.group_steps(run) or (0, 0))[1])
        st.text(f"query {query} · task {h.query.get('task')} · band {h.query.get('band')} · prompt:")  # plain text
        st.code(str(h.query.get("prompt") or ""), language="text")
        st.plotly_chart(rollout_figures.history_figure(h), key="chart_history")
        st.dataframe(
            rollout_tables.history_table(h.groups),
            hide_index=True,
            key="queries_history",
            column_config={
                "pass_rate": st.column_config.NumberColumn("pass rate", format="%.2f"),
                "group_size": st.column_config.NumberColumn("G"),
            },
        )
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
change = st.slider("learned / forgotten: moved by at least", 0.05, 1.0, 0.5, step=0.05, key="queries_min_change")
with widgets.guard():
    matrix = state.success_matrix(db, run["id"], change, last)
st.plotly_chart(rollout_figures.heatmap_figure(matrix), key="chart_heatmap")
start = "initial p_hat" if "p_hat" in matrix.order else "the first half of its groups"
rate = {c: st.column_config.NumberColumn(c, format="%.3f") for c in ("p_hat", "start", "end")}
for key in ("learned", "forgotten"):
    moved = matrix.queries[matrix.queries[key]] if len(matrix.queries) else matrix.queries
    st.caption(f"{key}: {len(moved):,} queries (start: {start}; end: the last half of its groups)")
    st.dataframe(
        moved.head(200),
        hide_index=True,
        key=f"queries_{key}",
        column_config={**rate, "change": st.column_config.NumberColumn("change", format="%+.3f")},
    )
long = rollouts.matrix_long(matrix)
m1, m2 = st.columns(2)
m1.download_button("Download heatmap CSV", lambda: to_csv(long), f"{name}-success.csv", key="matrix_csv")
m2.download_button(
    "Download heatmap Parquet", lambda: to_parquet(long), f"{name}-success.parquet", key="matrix_parquet"
)
