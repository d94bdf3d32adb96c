"""Data & profiles: pick a dataset and a policy, profile it in the background, see what is stored."""

import streamlit as st

from dashboard import forms, jobs, state, widgets
from sgpo.data import inspect
from sgpo.profile import ProfileConfig
from sgpo.tasks.builtin import builtin_names
from sgpo.units import flops, seconds
from sgpo.vocab import INTERRUPTED, PROFILE_RUNNING

st.title("Data & profiles")
st.caption(
    "Profiling draws N samples per query under the initial policy; p_hat = successes / N drives "
    "every later decision. It runs as `sgpo profile` in the background."
)

with widgets.guard():
    taken = {p["name"] for p in state.profile_options()}

KNOBS = {k.name: k for k in ProfileConfig.specs()}
left, right = st.columns(2)
with left:
    source = st.segmented_control(
        "dataset", ["built-in", "local file", "Hugging Face"], default="built-in", required=True, key="ds_source"
    )
    if source == "built-in":
        dataset = "builtin:" + st.selectbox("built-in set", builtin_names(), key="ds_builtin")
    elif source == "local file":
        dataset = st.text_input("file (.jsonl, .csv or .parquet)", key="ds_path", placeholder="data/train.jsonl")
    else:
        dataset = "hf:" + st.text_input(
            "hub dataset: REPO[:CONFIG][:SPLIT]", key="ds_hf", placeholder="openai/gsm8k:main:train"
        )
    if source != "built-in":  # the same mapping and reward as `sgpo profile --prompt-field ... --reward`
        with st.expander("field mapping and reward (empty: detected, or as recorded for this file)"):
            c = st.columns(3)
            mapping = {
                f"{role}_field": c[i % 3].text_input(f"{role} field", key=f"ds_{role}_field") or None
                for i, role in enumerate(forms.MAPPED)
            }
            mapping["reward"] = (
                st.text_input("reward", key="ds_reward", placeholder=forms.REWARD_HINT, help=forms.REWARD_HELP) or None
            )
        with widgets.guard():  # a reward it would refuse: said here, and nothing below can start
            dataset = forms.dataset_spec(dataset, mapping)
        if st.button("Check the mapping", key="ds_check", help="what `sgpo data inspect` says of it"):
            with widgets.guard(stop=False), state.store() as s:
                st.caption(forms.mapping_words(inspect(dataset, s)))
    limit = st.number_input("first N queries only (0 = all)", min_value=0, value=0, step=64, key="ds_limit")
with right:
    msource = st.segmented_control(
        "model", ["starter", "local folder", "Hugging Face"], default="starter", required=True, key="model_source"
    )
    model = (
        "starter"
        if msource == "starter"
        else st.text_input(
            "model folder" if msource == "local folder" else "hub model id (org/name)",
            key="model_path",
            placeholder="path/to/model" if msource == "local folder" else "Qwen/Qwen2.5-0.5B-Instruct",
        )
    )
    knobs = {
        "backend": widgets.knob_input(KNOBS["backend"], "backend"),
        "samples": widgets.knob_input(KNOBS["samples"], "samples", label="samples per query (N)"),
        "max_new_tokens": widgets.knob_input(KNOBS["max_new_tokens"], "max_new_tokens", sliders=False),
    }
    with st.expander("more profiling knobs"):
        knobs |= {
            k.name: widgets.knob_input(k, f"profile_{k.name}", sliders=False)
            for k in KNOBS.values()
            if k.name not in knobs and k.name != "limit"
        }

name = st.text_input("profile name", value=forms.unique_name("profile", taken), key="profile_name")
with widgets.guard():
    config = ProfileConfig(**knobs, limit=limit or None)
with widgets.guard(stop=False):  # a dataset or model it would refuse: the error now, the button stays
    st.code(forms.profile_line(dataset, model, config, name), language="bash")
if st.button("Start profiling", type="primary", key="start_profile"):
    with widgets.guard(stop=False):
        started = state.start_profile(dataset, model, config, name)
        jobs.remember(started)
        st.success(f"started profiling {started['name']}")


@st.fragment(run_every=1)
def live() -> None:
    """Progress of the profiles being written, those whose worker is gone, and every stored profile: all
    with the status the library shows (`interrupted` when the process writing one is gone)."""
    with widgets.guard(stop=False):
        profiles = state.profile_options()
        for p in jobs.recent(profiles):  # being written, ended lately, or started here and loading
            if p["status"] == PROFILE_RUNNING:
                widgets.profile_progress(p)
            elif p["status"] == INTERRUPTED:
                widgets.ended_line(p)
        st.subheader("Stored profiles")
        if not profiles:
            st.info("No profiles yet. " + jobs.first_profile_note())
            return
        st.dataframe(
            [
                {
                    "id": p["id"],
                    "name": p["name"],
                    "status": p["status"],
                    "dataset": p.get("dataset_spec"),
                    "model": p.get("model_spec"),
                    "backend": p.get("backend"),
                    "samples": p.get("samples"),
                    "queries": f"{p.get('queries_done') or 0:,}/{p.get('queries_total') or 0:,}",
                    "cost": flops(p.get("flops")),
                    "time": seconds(p.get("seconds") or 0),
                }
                for p in profiles
            ],
            hide_index=True,
            key="profiles_table",
        )


live()
