"""Rollouts page: a run's groups step by step with their completions, rewards and advantages, filters, the
per-step outcome and hardest-queries charts, a query's history (from a group, the URL or the Audit page) and
the query x step heatmap with exports; model text stays text."""

from __future__ import annotations

import pytest

from bench.synthetic import fill_groups, fill_profile, fill_run
from sgpo import rollouts
from sgpo.store import Store
from tests.apps import app, chart, errors, no_exception, raw_numbers, values

HOSTILE = ["<script>window.__pwned=1</script>", "**bold** [x](javascript:alert(1))", "\x1b[31mred\x1b[0m", "<b>b</b>"]


@pytest.fixture
def store(app_env):
    s = Store(app_env)
    p = fill_profile(s, "init", n=60)
    fill_run(s, "r", "sgpo", steps=30, profile_id=p["id"])
    fill_groups(s, "r", 30, per_step=12, group_size=4, profile="init", texts=HOSTILE)
    fill_profile(s, "r-at-20", n=60, seed=4, skill=0.3, model_spec="run:r@20")
    return s


def test_the_last_steps_groups_and_a_kept_groups_completions_show_as_text(store):
    at = app("rollouts")
    no_exception(at)
    assert at.caption[0].value.startswith("step 30: 12 groups")
    table = at.dataframe[0].value
    assert len(table) == 12 and {"rewards", "advantages", "outcome", "status", "band"} <= set(table.columns)
    assert table["rewards"].str.fullmatch(r"[01]( [01]){3}").all()  # rewards as text, one per sample
    samples = at.dataframe[1].value
    assert samples["completion"].notna().all()  # the group offered first keeps its texts
    assert set(samples["completion"]) <= set(HOSTILE)
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any(h in text for h in HOSTILE for text in shown)  # model text never goes through markdown
    assert at.code[0].language == "text"


def test_filters_keep_only_the_groups_asked_for(store):
    at = app("rollouts")
    at.multiselect(key="rollouts_outcomes").set_value(["mixed"]).run()
    no_exception(at)
    assert set(at.dataframe[0].value["outcome"]) <= {"mixed"}
    expected = rollouts.groups("r", store, steps=(30, 30), outcome=["mixed"])
    assert len(at.dataframe[0].value) == len(expected)


def test_a_range_of_steps_is_shown_when_not_following_the_latest(store):
    at = app("rollouts")
    at.toggle(key="rollouts_latest").set_value(False).run()
    at.slider(key="rollouts_steps").set_value((10, 12)).run()
    no_exception(at)
    assert at.caption[0].value.startswith("steps 10-12: 36 groups")
    assert sorted(set(at.dataframe[0].value["step"])) == [10, 11, 12]


def test_the_per_step_charts_show_outcome_shares_and_the_hardest_queries_by_the_profiles_p_hat(store):
    at = app("rollouts")
    outcomes, hardest = chart(at, "chart_outcomes"), chart(at, "chart_hardest")
    assert {t.get("name") for t in outcomes["data"]} >= {"all correct", "all wrong"}
    assert {t.get("name") for t in hardest["data"]} >= {"hardest 10%", "hardest 25%", "hardest 50%", "all"}
    assert "by p_hat under the initial policy (profile init)" in hardest["layout"]["title"]["subtitle"]["text"]


def test_a_groups_query_links_to_its_history_with_the_initial_and_checkpoint_p_hat(store):
    at = app("rollouts")
    link = at.get("page_link")[0].proto
    step, slot = map(int, at.selectbox(key="rollouts_group_30_30").value.split(":"))
    shown = rollouts.groups("r", store, steps=(step, step))
    query = shown[shown["slot"] == slot]["query_id"].iloc[0]
    assert "queries" in link.page and f"queries_query={query}" in link.query_string
    at = app("queries", queries_run="r", queries_query=query)  # where the link goes
    no_exception(at)
    assert at.selectbox(key="queries_query").value == query
    history = chart(at, "chart_history")
    assert history["layout"]["title"]["text"] == f"query {query} over training"
    names = {t.get("name") for t in history["data"]}
    assert {"p_hat, initial profile", "p_hat, checkpoint profile", "pass rate so far"} <= names
    marks = next(t for t in history["data"] if t.get("name") == "p_hat, checkpoint profile")
    assert values(marks, "x").tolist() == [20]
    table = at.dataframe[0].value
    assert len(table) == len(rollouts.history("r", query, store).groups)
    assert len(at.get("download_button")) == 4  # history and heatmap, CSV and Parquet each


def test_a_query_is_found_by_a_search_of_its_id_or_prompt(store):
    query = rollouts.groups("r", store, steps=(5, 5))["query_id"].iloc[0]
    at = app("queries")
    at.text_input(key="queries_search").input(query[-5:]).run()
    assert query in at.selectbox(key="queries_query").options
    at.selectbox(key="queries_query").set_value(query).run()
    no_exception(at)
    assert chart(at, "chart_history")["layout"]["title"]["text"] == f"query {query} over training"


def test_the_audit_page_links_a_query_to_its_history_in_a_run(store):
    at = app("audit")
    no_exception(at)
    assert at.selectbox(key="audit_history_run").value == "r"
    query = at.selectbox(key="audit_history_query").options[0]
    at.selectbox(key="audit_history_query").set_value(query).run()
    link = at.get("page_link")[0].proto
    assert "queries" in link.page
    assert f"queries_query={query}" in link.query_string and "queries_run=r" in link.query_string


def test_the_heatmap_orders_queries_by_initial_p_hat_and_lists_learned_and_forgotten(store):
    at = app("queries", queries_run="r")
    no_exception(at)
    heat = chart(at, "chart_heatmap")
    assert heat["data"][0]["type"] == "heatmap"
    assert "rows: queries by initial p_hat" in heat["layout"]["title"]["subtitle"]["text"]
    learned = at.dataframe[0].value
    matrix = rollouts.success_matrix("r", store)
    assert len(learned) == int(matrix.queries["learned"].sum())
    assert not raw_numbers(at), raw_numbers(at)


def test_a_run_that_stored_no_groups_says_so(app_env):
    fill_run(Store(app_env), "old", "grpo", steps=3)
    at = app("rollouts")
    no_exception(at)
    assert any("has stored no groups yet" in i.value for i in at.info)


def test_every_number_on_the_rollouts_page_is_in_human_units(store):
    at = app("rollouts")
    assert not raw_numbers(at), raw_numbers(at)
    assert not errors(at)
