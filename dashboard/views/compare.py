"""Compare: runs side by side on the same axis, total FLOPs with profiling included."""

import streamlit as st

from dashboard import analysis, figures, state, widgets

st.title("Compare")
with widgets.guard():
    runs = state.run_options()
if not runs:
    st.info("No runs yet: launch some on **Train**.")
    st.stop()

names = [r["name"] for r in runs]
chosen = st.multiselect("runs", names, default=analysis.default_comparison(runs), key="compare_runs")
picked = [r for r in runs if r["name"] in chosen]
grpo = [r["name"] for r in picked if r["strategy"] == "grpo"]
baseline = st.selectbox("baseline for the compute-reduction factor", chosen, key="compare_baseline",
                        index=chosen.index(grpo[0]) if grpo else 0) if chosen else None
with widgets.guard():
    evals, metrics = state.compare_frames(chosen)

table = analysis.compare_table(picked, evals, metrics, baseline)
cols = st.columns(max(1, len(picked)))
for col, row in zip(cols, table.to_dict("records")):
    with col.container(key=f"reduction_{row['run']}"):
        st.metric(f"{row['run']}: compute reduction vs {baseline}", analysis.format_factor(row["compute_reduction"]),
                  help="FLOPs the baseline needs to first reach its final accuracy, divided by the FLOPs this "
                       "run needs to first reach that accuracy (profiling included)")
st.dataframe(table, hide_index=True, key="compare_table")
left, right = st.columns(2)
left.plotly_chart(figures.accuracy_vs_flops(evals), key="chart_accuracy_flops")
right.plotly_chart(figures.wasted_vs_step(metrics), key="chart_wasted_step")
d1, d2 = st.columns(2)
d1.download_button("Download comparison CSV", analysis.to_csv(table), "compare.csv", "text/csv",
                   key="download_compare")
d2.download_button("Download evaluations CSV", analysis.to_csv(analysis.long_evals(evals)), "evals.csv",
                   "text/csv", key="download_evals")
