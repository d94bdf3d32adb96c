"""Compare: runs side by side, grouped and filtered by strategy or any knob that differs between them,
on the same x-axis and smoothing choices as Train (total FLOPs, profiling included, by default)."""

import streamlit as st

from dashboard import analysis, curves, run_figures, state, widgets
from sgpo.plan import PlanConfig

st.title("Compare")
with widgets.guard():
    runs = state.run_options()
if not runs:
    st.info("No runs yet: launch some on **Train**.")
    st.stop()

knobs = analysis.run_knobs({n: d["config"] for n, d in state.details(runs).items()}, PlanConfig().to_dict())
differing = analysis.differing_knobs(knobs)
text = knobs.map(analysis.knob_text) if len(knobs) else knobs
c = st.columns([2, 2, 3, 2])
strategies = c[0].multiselect(
    "strategy",
    sorted({str(r["strategy"]) for r in runs}),
    key="compare_strategies",
    bind="query-params",
    placeholder="all strategies",
)
group = c[1].selectbox("group by", ["run", "strategy", *differing], key="compare_group", bind="query-params")
axis = c[2].segmented_control(
    "x-axis", list(curves.X_AXES), default="FLOPs", required=True, key="compare_x", bind="query-params"
)
smooth = c[3].slider(
    "smoothing",
    0.0,
    0.99,
    0.6,
    step=0.01,
    key="compare_smooth",
    bind="query-params",
    help="weight of a debiased exponential moving average; the raw values stay faint behind",
)
wanted = {}
if differing:
    with st.expander(f"filter by knob ({len(differing)} differ between the runs)"):
        st.caption("knobs set to different values: " + ", ".join(differing) + " (also columns of the table below)")
        cols = st.columns(min(4, len(differing)))
        for i, knob in enumerate(differing):
            wanted[knob] = cols[i % len(cols)].multiselect(
                knob, sorted(text[knob].unique()), placeholder="any", key=f"compare_knob_{knob}"
            )

candidates = analysis.filter_runs(runs, knobs, strategies, wanted)
names = [r["name"] for r in candidates]
widgets.keep_valid("compare_runs", names, many=True)
widgets.start_with("compare_runs", analysis.default_comparison(candidates))
chosen = st.multiselect("runs", names, key="compare_runs", bind="query-params")
picked = [r for r in runs if r["name"] in chosen]
widgets.keep_valid("compare_baseline", chosen)
if chosen:  # a finished GRPO run: a running one's final accuracy, the target, still moves
    widgets.start_with("compare_baseline", analysis.default_baseline(picked) or chosen[0])
baseline = (
    st.selectbox("baseline for the compute-reduction factor", chosen, key="compare_baseline", bind="query-params")
    if chosen
    else None
)
with widgets.guard():
    series = state.run_series(picked)
table = state.comparison(picked, series, baseline)  # sgpo.compare: the factor the README's benchmarks report
for col, row in zip(st.columns(max(1, len(picked))), table.to_dict("records")):
    with col.container(key=f"reduction_{row['run']}"):
        st.metric(
            f"{row['run']}: compute reduction vs {baseline}",
            row["reduction"],
            help="FLOPs the baseline needs to reach its final accuracy, divided by the FLOPs this run needs to "
            "reach it (profiling included; linear between evaluations, sgpo.compare); shown once this run gets there",
        )
st.dataframe(analysis.human_table(table, knobs[differing] if differing else None), hide_index=True, key="compare_table")
if group != "run" and len(table):
    st.caption(f"grouped by {group}")
    st.dataframe(analysis.group_table(table, knobs, group), hide_index=True, key="compare_groups")
seeds = st.toggle(
    "show seeds",
    key="compare_seeds",
    bind="query-params",
    help="each run its own accuracy line; off: runs whose configs differ only in seed drawn as one mean line "
    "with a band from the lowest to the highest seed",
)
left, right = st.columns(2)
if seeds:
    left.plotly_chart(run_figures.accuracy_figure(series, axis), key="chart_accuracy_flops")
else:
    left.plotly_chart(
        run_figures.settings_accuracy_figure(state.settings_of(picked, series), axis), key="chart_accuracy_flops"
    )
right.plotly_chart(run_figures.wasted_figure(series, axis, smooth), key="chart_wasted_step")
left.plotly_chart(run_figures.reward_figure(series, axis, smooth), key="chart_reward_compare")
d1, d2 = st.columns(2)
d1.download_button("Download comparison CSV", analysis.to_csv(table), "compare.csv", "text/csv", key="download_compare")
d2.download_button(
    "Download evaluations CSV",
    analysis.to_csv(analysis.long_evals({s.name: s.evals for s in series})),
    "evals.csv",
    "text/csv",
    key="download_evals",
)
