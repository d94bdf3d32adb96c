"""Audit page: p_hat histogram by decision, task x difficulty heat map, the searchable query table."""

import json

from dashboard import state
from sgpo.store import Store
from tests.test_dashboard_helpers import app, app_env, errors, fill_profile, no_exception  # noqa: F401


def histogram(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_histogram_and_heat_map_render_for_the_chosen_profile(app_env):
    fill_profile(Store(app_env))
    at = app("audit")
    no_exception(at)
    names = {t["name"] for t in histogram(at)["data"]}
    assert "learnable" in names and names <= {"trivial", "learnable", "unsolved_kept", "unsolved_dropped"}
    heat = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
    from sgpo.tasks.families import FAMILIES

    assert heat["type"] == "heatmap" and set(heat["y"]) == set(FAMILIES)


def test_the_table_shows_prompts_decisions_and_marked_completions(app_env):
    fill_profile(Store(app_env), n=40)
    at = app("audit")
    table = at.dataframe[0].value
    assert {"id", "p_hat", "decision", "group_size", "prompt", "answer", "completions"} <= set(table.columns)
    assert len(table) == 40
    assert table["completions"].str.contains("✓|✗").all()


def test_search_and_filters_narrow_the_table(app_env):
    fill_profile(Store(app_env), n=120)
    at = app("audit")
    first = at.dataframe[0].value["id"].iloc[0]
    at.text_input(key="audit_search").input(first).run()
    assert at.dataframe[0].value["id"].tolist() == [first]
    at.text_input(key="audit_search").input("").run()
    at.multiselect(key="audit_decisions").set_value(["learnable"]).run()
    assert set(at.dataframe[0].value["decision"]) == {"learnable"}
    at.slider(key="audit_p_range").set_value((0.5, 1.0)).run()
    assert (at.dataframe[0].value["p_hat"] >= 0.5).all()
    assert len(at.get("download_button")) == 2


def test_decisions_follow_the_knobs_set_on_the_plan_page(app_env):
    fill_profile(Store(app_env))
    at = app("plan")
    at.slider(key=state.knob_key("trivial_threshold")).set_value(0.3).run()
    at.switch_page("views/audit.py").run()
    no_exception(at)
    lowered = at.dataframe[0].value
    assert (lowered.loc[lowered["p_hat"] > 0.3, "decision"] == "trivial").all()
    assert "trivial_threshold=0.3" in at.caption[0].value


def test_a_profile_whose_dataset_file_is_gone_still_audits_without_prompts(app_env, tmp_path):
    data = tmp_path / "gone.jsonl"
    fill_profile(Store(app_env), n=20, dataset_spec=str(data))
    at = app("audit")
    no_exception(at)
    assert any("does not exist" in w.value for w in at.warning)
    assert "prompt" not in at.dataframe[0].value.columns and len(at.dataframe[0].value) == 20
    assert not errors(at)
