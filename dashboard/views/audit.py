"""Audit: how hard each query is for the profiled policy, what the plan does with it, and against another
profile of the same data (the initial policy, for a checkpoint's profile) what changed, query by query."""

import streamlit as st

from dashboard import analysis, figures, state, widgets
from sgpo import drift, units
from sgpo.errors import SgpoError

st.title("Audit")
profile = widgets.selected_profile()
widgets.profile_table(profile)  # stops the page when the profile holds no queries yet
with widgets.guard():
    queries = state.audit_frame(profile)
    earlier = {p["name"]: p for p in state.same_data(profile)}
try:
    dataset = state.dataset_frame(profile["dataset_spec"])
    queries = queries.join(dataset.set_index("id")[["prompt", "answer"]], on="id")
except SgpoError as exc:
    st.warning(f"prompts and answers are not shown: {exc}")
st.caption(
    "Decisions at the knobs set on the **Plan** page: "
    + ", ".join(f"{k}={v}" for k, v in state.current_knobs().items())
)
widgets.keep_valid("audit_before", list(earlier))
widgets.start_with("audit_before", state.trained_from(profile))
before_name = st.selectbox(
    "compare with (before)",
    list(earlier),
    index=None,
    key="audit_before",
    bind="query-params",
    placeholder="another profile of the same data, e.g. the initial policy"
    if earlier
    else "no other profile of this dataset yet",
    disabled=not earlier,
)
if before_name:
    st.caption(f"before: {widgets.profile_label(earlier[before_name])}; after: {widgets.profile_label(profile)}")

left, right = st.columns(2)
left.plotly_chart(figures.p_hat_histogram(queries), key="p_hat_histogram")
right.plotly_chart(figures.difficulty_heatmap(queries), key="difficulty_heatmap")

if before_name:
    st.subheader(f"Before → after: {before_name} → {profile['name']}")
    with widgets.guard():
        before = state.audit_frame(earlier[before_name])
    both = drift.pair(before.assign(bucket=drift.buckets(before)), queries.assign(bucket=drift.buckets(queries)))
    counts = drift.transition_matrix(both)
    for col, (key, label, value, delta) in zip(st.columns(5), drift.summary(both, counts)):
        with col.container(key=key):
            st.metric(label, value, delta)
    left, right = st.columns(2)
    left.plotly_chart(figures.transition_heatmap(counts), key="audit_transition")
    right.plotly_chart(figures.p_hat_overlay(both), key="audit_p_hat_overlay")
    left.plotly_chart(figures.drift_heatmap(both), key="audit_drift")
    right.dataframe(drift.human(drift.drift(both, "task")), key="audit_drift_table")
    change = st.slider(
        "learned / forgotten: p_hat moved by at least", 0.05, 1.0, 0.5, step=0.05, key="audit_min_change"
    )
    shown = [
        "id",
        "task",
        "difficulty",
        "p_hat_before",
        "p_hat_after",
        "change",
        "prompt",
        "answer",
        "completions_before",
        "completions_after",
    ]
    rate = {c: st.column_config.NumberColumn(c, format="%.3f") for c in ("p_hat_before", "p_hat_after")} | {
        "change": st.column_config.NumberColumn("change", format="%+.3f")
    }
    for up, key, label in ((True, "audit_learned", "learned"), (False, "audit_forgotten", "forgotten")):
        moved = drift.moved(both, change, up=up)
        st.caption(
            f"{label}: {units.count(len(moved))} queries" + (", the first 200 listed" if len(moved) > 200 else "")
        )
        st.dataframe(
            moved.head(200), hide_index=True, key=key, column_config=rate, column_order=[c for c in shown if c in moved]
        )
    queries = queries.merge(both[["id", "p_hat_before", "bucket_before"]], on="id", how="left").assign(
        p_hat_after=lambda d: d["p_hat"], bucket_after=drift.buckets
    )

st.subheader("Queries")
c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
search = c1.text_input("search id, prompt or answer", key="audit_search")
tasks = c2.multiselect("task", sorted(queries["task"].unique()), key="audit_tasks")
decisions = c3.multiselect("decision", analysis.DECISIONS, key="audit_decisions")
p_range = c4.slider("p_hat", 0.0, 1.0, (0.0, 1.0), step=0.05, key="audit_p_range")
shown = analysis.filter_queries(queries, search=search, tasks=tasks, decisions=decisions, p_range=p_range)

LIMIT = 1000
view = shown.head(LIMIT).assign(completions=lambda d: d["examples"].map(drift.mark_examples))
st.caption(
    f"{units.count(len(shown))} of {units.count(len(queries))} queries match"
    + (f"; the first {units.count(LIMIT)} are listed, the downloads hold all of them" if len(shown) > LIMIT else "")
    + ("; the downloads carry p_hat_before and p_hat_after" if before_name else "")
)
st.dataframe(
    view,
    hide_index=True,
    key="audit_table",
    column_order=[
        c
        for c in (
            "id",
            "task",
            "difficulty",
            "p_hat_before",
            "p_hat",
            "decision",
            "group_size",
            "phase",
            "prompt",
            "answer",
            "completions",
        )
        if c in view
    ],
    column_config={
        "p_hat": st.column_config.ProgressColumn("p_hat", min_value=0.0, max_value=1.0, format="%.3f"),
        "p_hat_before": st.column_config.NumberColumn("p_hat before", format="%.3f"),
        "group_size": st.column_config.NumberColumn("G"),
        "completions": st.column_config.TextColumn("sample completions (✓ right, ✗ wrong)", width="large"),
    },
)

trained = [r["name"] for r in state.runs_on(profile)]  # runs on this profile's data: a query's training history
if trained:
    h = st.columns([2, 3, 2])
    history_run = h[0].selectbox("its history in run", trained[::-1], key="audit_history_run")
    history_query = h[1].selectbox(
        "query", view["id"].astype(str).tolist(), key="audit_history_query", index=None, placeholder="pick a query"
    )
    if history_query:
        h[2].page_link(
            "views/queries.py",
            label="See it over training",
            icon=":material/timeline:",
            query_params={"queries_run": history_run, "queries_query": history_query},
        )

export = analysis.export_columns(shown)  # built only when a button is clicked
d1, d2 = st.columns(2)
d1.download_button(
    "Download JSONL",
    lambda: analysis.to_jsonl(export),
    f"{profile['name']}-filtered.jsonl",
    "application/jsonl",
    key="export_jsonl",
    disabled=export.empty,
)
d2.download_button(
    "Download Parquet",
    lambda: analysis.to_parquet(export),
    f"{profile['name']}-filtered.parquet",
    "application/octet-stream",
    key="export_parquet",
    disabled=export.empty,
)
