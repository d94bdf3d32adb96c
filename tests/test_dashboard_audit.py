"""Audit page: p_hat histogram by decision, task x difficulty heat map, the searchable query table, and a
checkpoint's profile against the profile its run trained from (plan buckets, drift, learned and forgotten)."""

import json

from bench.synthetic import fill_profile, fill_run
from dashboard import state
from dashboard.analysis import with_decisions
from sgpo import drift
from sgpo.plan import make_plan
from sgpo.store import Store
from sgpo.tasks.families import FAMILIES
from tests.apps import app, chart, errors, no_exception, raw_numbers, values


def histogram(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_histogram_and_heat_map_render_for_the_chosen_profile(app_env):
    fill_profile(Store(app_env))
    at = app("audit")
    no_exception(at)
    names = {t["name"] for t in histogram(at)["data"]}
    assert "learnable" in names and names <= {"trivial", "learnable", "unsolved_kept", "unsolved_dropped"}
    heat = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
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


def two_profiles(db):
    """The initial policy's profile, a run trained from it, and its checkpoint's profile (same dataset hash),
    and a profile of other data."""
    s = Store(db)
    base = fill_profile(s, "init", n=120)
    fill_run(s, "r", "sgpo", steps=10, profile_id=base["id"])
    fill_profile(s, "other-data", n=40, dataset_hash="elsewhere")
    fill_profile(s, "r-step10", n=120, seed=1, skill=0.4, model_spec="run:r@10")
    return s


def test_a_checkpoints_profile_opens_compared_with_the_profile_its_run_trained_from(app_env):
    two_profiles(app_env)
    at = app("audit")
    no_exception(at)
    picker = at.selectbox(key="audit_before")
    assert picker.options == ["init"] and picker.value == "init"  # same data only; the run's own profile first
    shown = {m.label: m.value for m in at.metric}
    assert shown["queries in both"] == "120" and shown["mean p_hat after"].startswith("0.")
    assert at.metric[1].proto.delta.startswith("+")  # the checkpoint solves more
    cleared = app("audit", audit_before="")  # a link that compares with nothing
    no_exception(cleared)
    assert cleared.selectbox(key="audit_before").value is None and not list(cleared.metric)


def test_the_transition_matrix_counts_the_shared_queries_by_bucket(app_env):
    s = two_profiles(app_env)
    at = app("audit")
    heat = chart(at, "audit_transition")["data"][0]
    counts = values(heat, "customdata")
    assert counts.sum() == 120 and heat["y"][0] == "trivial" and heat["y"][-1] == "unsolved"
    assert all("%" in cell for row in heat["text"] for cell in row if cell)  # each cell: count and share of its row
    before, after = s.profile_frame(1), s.profile_frame(3)
    assert (
        counts.sum(axis=1)
        == [
            int(n)
            for n in drift.transition_matrix(
                drift.pair(before.assign(bucket=heat_buckets(before)), after.assign(bucket=heat_buckets(after)))
            ).sum(axis=1)
        ]
    ).all()
    overlay = chart(at, "audit_p_hat_overlay")["data"]
    assert [t["name"] for t in overlay] == ["before", "after"] and [values(t, "y").sum() for t in overlay] == [120, 120]
    assert chart(at, "audit_drift")["data"][0]["zmid"] == 0


def heat_buckets(frame):
    """Buckets of a profile frame at the page's (default) knobs, as the page computes them."""
    return drift.buckets(with_decisions(frame, make_plan(frame, n_params=1_780_032).queries))


def test_learned_and_forgotten_queries_are_listed_with_both_sides_completions(app_env):
    two_profiles(app_env)
    at = app("audit")
    drift_table, learned, forgotten, queries = (t.value for t in at.dataframe)  # in page order
    assert list(drift_table.index) == ["add", "count", "rev", "sort"]
    assert len(learned) and (learned["change"] >= 0.5).all()
    assert learned["completions_after"].str.contains("run:r@10").all()  # the checkpoint's own samples
    assert learned["completions_before"].str.contains("starter").all()
    at.slider(key="audit_min_change").set_value(0.25).run()
    assert len(at.dataframe[1].value) > len(learned)
    assert len(at.dataframe[2].value) >= len(forgotten) and (at.dataframe[2].value["change"] <= -0.25).all()
    assert {"p_hat_before", "p_hat_after", "bucket_before", "bucket_after"} <= set(
        queries.columns
    )  # what the exports hold
    assert any("p_hat_before and p_hat_after" in c.value for c in at.caption)
    assert not raw_numbers(at), raw_numbers(at)


def test_a_profile_opens_compared_with_the_one_named_in_its_url(app_env):
    two_profiles(app_env)
    at = app("audit", profile="init", audit_before="r-step10")
    no_exception(at)
    assert at.selectbox(key="audit_before").value == "r-step10"
    assert at.metric[1].proto.delta.startswith("-")  # seen from the checkpoint, the initial policy solves less
