"""Plan: every PlanConfig knob, and what it does to the data, the curriculum and the compute forecast."""

import streamlit as st

from dashboard import analysis, figures, forms, state, widgets
from sgpo import units
from sgpo.plan.forecast import READING

st.title("Plan")
profile = widgets.selected_profile()
frame = widgets.profile_table(profile)

knobs_col, main = st.columns([1, 3])
with knobs_col:
    st.subheader("Knobs")
    with widgets.guard():
        knobs = widgets.plan_knob_inputs()
with main, widgets.guard():
    made = state.make_plan(frame, profile, knobs)
    plan, summary = made.plan, made.plan.to_json(ids=False)  # the phases' id lists would cost more than the plan itself
    for col, (key, label, value, delta) in zip(st.columns(4), analysis.forecast_metrics(summary["forecast"])):
        with col.container(key=key):  # .st-key-forecast_* : stable selectors for the browser test
            st.metric(label, value, delta, delta_color="off" if key == "forecast_flops" else "inverse")
    st.plotly_chart(figures.phase_timeline(summary["phases"]), key="phase_timeline")
    left, right = st.columns(2)
    left.caption("queries per decision and group-size bucket")
    counts = analysis.decision_counts(plan.queries)
    left.dataframe(
        counts,
        key="decision_counts",
        column_config={c: st.column_config.NumberColumn(format="localized") for c in counts.columns},
    )
    right.caption("forecast for one pass: this plan against fixed-G GRPO")
    right.dataframe(analysis.forecast_rows(summary["forecast"]), key="forecast_table")

    for warning in made.warnings:  # an unfinished profile; nothing learnable
        st.warning(warning)
    run = summary["forecast"].get("run") or {}
    st.subheader(f"Does it pay over {units.count(run.get('steps'))} steps?")
    for behaviour, label in analysis.BEHAVIOURS.items():
        verdict = (run.get(behaviour) or {}).get("verdict")
        if verdict:
            with st.container(key=f"verdict_{behaviour}"):
                (st.success if run[behaviour].get("pays") else st.warning)(f"**{label}**: {verdict}")
    st.caption(READING)
    st.dataframe(analysis.run_forecast_rows(run), key="run_forecast_table")

    st.subheader("Reproduce or save")
    st.code(forms.plan_cli_line(profile, knobs), language="bash")
    with st.form("save_plan", border=False):
        name = st.text_input(
            "plan name",
            key="plan_name",
            persist_state="session",
            value=forms.unique_name(f"{profile['name']}-plan", state.plan_names()),
        )
        if st.form_submit_button("Save plan", key="save_plan_button"):
            with widgets.guard(stop=False):
                plan_id = state.save_plan(made, name)
                st.success(f"saved plan {name} (id {plan_id})")
