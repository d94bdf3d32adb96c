"""Plan: what the planned run will deliver first (the run forecast under both engine behaviours), then what
the plan does to the data and one pass of the curriculum, every PlanConfig knob in groups, and a way to train
the plan as it stands."""

import streamlit as st

from dashboard import analysis, figures, forms, state, widgets
from sgpo import plans, units
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
    run = summary["forecast"].get("run") or {}
    st.subheader(f"What the planned run delivers: {units.count(run.get('steps'))} steps")
    head = st.columns(4)
    for col, (key, label, value, help) in zip(head, analysis.run_forecast_metrics(run)):
        with col.container(key=key):  # .st-key-run_* : stable selectors for the browser tests
            st.metric(label, value, help=help)
    with head[3].container(key="plan_recommended_batch"):  # issue 21: rollouts a step from a measured gauge
        pilot = st.selectbox(
            "recommended batch from the gauge of run",
            [r["name"] for r in reversed(state.run_options())],
            index=None,
            key="plan_pilot_run",
            placeholder="pick a run",
            help="a run whose steps logged the critical-batch gauge, best one on this profile; or measure one: "
            f"sgpo plan {profile['name']} --pilot-steps 30 (sgpo.plans.recommend)",
        )
        if pilot:
            with widgets.guard(stop=False), state.store() as s:
                rec = plans.recommend(made, s, pilot_run=pilot)
                value = units.count(rec["rollouts_per_step"]) if rec["rollouts_per_step"] else "none"
                st.metric("recommended rollouts a step", value, help=rec["basis"])
                if rec.get("least_compute_rollouts_per_step"):
                    st.caption(
                        f"fewest steps; under a FLOP budget {units.count(rec['least_compute_rollouts_per_step'])} "
                        "or fewer (within 10% of the least compute)"
                    )
    basis = run.get("basis") or {}
    if basis.get("too_few"):  # no reduction factor or break-even step rests on a handful of queries
        st.warning(f"{basis['reason']}: no reduction factor or break-even step is forecast")
    for behaviour, label in analysis.BEHAVIOURS.items():
        verdict = (run.get(behaviour) or {}).get("verdict")
        if verdict:
            with st.container(key=f"verdict_{behaviour}"):
                (st.success if run[behaviour].get("pays") else st.warning)(f"**{label}**: {verdict}")
    for warning in made.warnings:  # an unfinished profile; nothing learnable
        st.warning(warning)
    if st.button(
        "Train this plan",
        type="primary",
        key="train_this_plan",
        help="open the Train page with sgpo, this profile and these knobs filled in",
    ):
        st.session_state.update(state.plan_to_train(knobs))
        st.switch_page("views/train.py")

    st.subheader("One pass over the plan")
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

    st.subheader("The planned run in detail")
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
