"""Audit: how hard each query is for the initial policy, and what the plan does with it."""

import streamlit as st

from dashboard import analysis, figures, state, widgets
from sgpo.errors import SgpoError

st.title("Audit")
profile = widgets.selected_profile()
frame = widgets.profile_table(profile)
with widgets.guard():
    plan = state.make_plan(frame, profile)
    examples = state.profile_frame_with_examples(str(state.db_path()), profile["id"], profile["updated"])
queries = analysis.with_decisions(frame, plan.queries).assign(examples=examples["examples"].to_numpy())
try:
    dataset = state.dataset_frame(profile["dataset_spec"])
    queries = queries.join(dataset.set_index("id")[["prompt", "answer"]], on="id")
except SgpoError as exc:
    st.warning(f"prompts and answers are not shown: {exc}")
st.caption("Decisions at the knobs set on the **Plan** page: " + ", ".join(
    f"{k}={v}" for k, v in state.current_knobs().items()))

left, right = st.columns(2)
left.plotly_chart(figures.p_hat_histogram(queries), key="p_hat_histogram")
right.plotly_chart(figures.difficulty_heatmap(queries), key="difficulty_heatmap")

st.subheader("Queries")
c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
search = c1.text_input("search id, prompt or answer", key="audit_search")
tasks = c2.multiselect("task", sorted(queries["task"].unique()), key="audit_tasks")
decisions = c3.multiselect("decision", analysis.DECISIONS, key="audit_decisions")
p_range = c4.slider("p_hat", 0.0, 1.0, (0.0, 1.0), step=0.05, key="audit_p_range")
shown = analysis.filter_queries(queries, search=search, tasks=tasks, decisions=decisions, p_range=p_range)

LIMIT = 1000
view = shown.head(LIMIT).assign(completions=lambda d: d["examples"].map(analysis.mark_examples))
st.caption(f"{len(shown):,} of {len(queries):,} queries match" +
           (f"; the first {LIMIT:,} are listed, the downloads hold all of them" if len(shown) > LIMIT else ""))
st.dataframe(view, hide_index=True, key="audit_table", column_order=[c for c in (
    "id", "task", "difficulty", "p_hat", "decision", "group_size", "phase", "prompt", "answer",
    "completions") if c in view], column_config={
    "p_hat": st.column_config.ProgressColumn("p_hat", min_value=0.0, max_value=1.0, format="%.3f"),
    "group_size": st.column_config.NumberColumn("G"),
    "completions": st.column_config.TextColumn("sample completions (✓ right, ✗ wrong)", width="large")})

export = analysis.export_columns(shown)  # built only when a button is clicked
d1, d2 = st.columns(2)
d1.download_button("Download JSONL", lambda: analysis.to_jsonl(export), f"{profile['name']}-filtered.jsonl",
                   "application/jsonl", key="export_jsonl", disabled=export.empty)
d2.download_button("Download Parquet", lambda: analysis.to_parquet(export), f"{profile['name']}-filtered.parquet",
                   "application/octet-stream", key="export_parquet", disabled=export.empty)
