"""Hostile text in prompts, answers and completions is shown as text on every page, never run or
rendered: a real browser visits each page of a store full of HTML, script, markdown and ANSI escapes (a
profile's samples, a run's groups with their kept completions, prompts and query ids on the Rollouts and
Queries pages), and checks that no script ran, no injected element exists, and the page stays usable."""

from __future__ import annotations

import io
import json
from urllib.parse import urlencode

import pandas as pd
import pytest

from bench.browser import browser_page, browser_problem, serve
from bench.synthetic import fill_run
from dashboard import analysis
from sgpo.store import Store
from sgpo.train.rollouts import group_record
from tests.conftest import IN_CI, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]
ARTIFACTS = ROOT / "test-artifacts"
HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "[click me](javascript:window.__pwned='link') **bold** <b>html</b>",
    "<svg onload=\"window.__pwned='svg'\"></svg>",
    "x" * 3000 + "<iframe src=javascript:window.__pwned='iframe'></iframe>",
    "$\\frac{1}{0}$ `code` <details open>d</details> {{7*7}} ${7*7}",
    "\x1b[31mred\x1b[0m \x1b]8;;javascript:window.__pwned='ansi'\x1b\\link\x1b]8;;\x1b\\",
]


def hostile_store(tmp_path):
    """A dataset file (hostile name, prompts, answers), a profile whose sample completions are hostile."""
    data = tmp_path / "<img src=x onerror=window.__pwned=1>.jsonl"
    rows = [
        {"id": f"q{i}", "prompt": HOSTILE[i % len(HOSTILE)], "answer": HOSTILE[(i + 1) % len(HOSTILE)], "task": "evil"}
        for i in range(24)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = Store(tmp_path / "hostile.db")
    pid = store.create_profile(
        {
            "name": "hostile",
            "key": "k",
            "status": "done",
            "dataset_spec": str(data),
            "dataset_hash": "h",
            "model_spec": "<b>model</b>",
            "n_params": 1000,
            "samples": 4,
            "queries_total": len(rows),
            "queries_done": 0,
            "flops": 1e9,
            "seconds": 1.0,
        }
    )
    batch = [
        {
            "position": i,
            "query_id": r["id"],
            "task": r["task"],
            "difficulty": i % 3,
            "samples": 4,
            "successes": i % 5,
            "p_hat": (i % 5) / 4 if i % 5 < 5 else 1.0,
            "prompt_tokens": 10,
            "completion_tokens_total": 40,
            "completion_tokens_mean": 10.0,
            "examples": json.dumps(
                [{"text": HOSTILE[(i + k) % len(HOSTILE)], "reward": float(k % 2)} for k in range(2)]
            ),
        }
        for i, r in enumerate(rows)
    ]
    for b in batch:
        b["p_hat"] = min(1.0, b["successes"] / 4)
    store.add_profile_batch(pid, batch, {"queries_done": len(rows)})
    run = fill_run(store, "hostile-run", "grpo", steps=5)
    store.event(run, "warning", HOSTILE[1])
    queries = [
        {
            "query": i,
            "query_id": HOSTILE[i % len(HOSTILE)][:40],
            "task": "<b>evil</b>",
            "prompt": HOSTILE[i % len(HOSTILE)],
        }
        for i in range(len(HOSTILE))
    ]
    for step in range(1, 6):  # every group of every step keeps hostile completions
        groups = [
            group_record(
                query=q["query"],
                rewards=[1, 0, 1, 0],
                lengths=[5] * 4,
                phase=0,
                trained=True,
                texts=[HOSTILE[(step + q["query"] + k) % len(HOSTILE)] for k in range(4)],
            )
            for q in queries
        ]
        store.log_groups(run, step, groups, queries)
    return store


def test_hostile_text_is_text_on_every_page(tmp_path):
    problem = browser_problem()
    if problem:
        pytest.fail(problem) if IN_CI else pytest.skip(problem)
    store = hostile_store(tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve(store.path) as url, browser_page() as page:
        first_query = HOSTILE[0][:40]
        for path in (
            "",
            "audit",
            "plan",
            "train",
            "rollouts?rollouts_run=hostile-run",
            "queries?" + urlencode({"queries_run": "hostile-run", "queries_query": first_query}),
            "compare",
        ):
            page.goto(f"{url}/{path}")
            page.wait_for_selector("[data-testid=stAppViewContainer]")
            page.wait_for_selector("h1")
            page.wait_for_timeout(2500)  # the live fragments and charts have rendered
            if path == "audit":
                box = page.locator(".st-key-audit_search input")
                box.fill("<script>")
                box.press("Enter")
                page.wait_for_timeout(1500)
            if path.startswith("rollouts"):  # the groups, and one group's samples: completions as text in a table
                page.wait_for_function("() => document.querySelectorAll('[data-testid=stDataFrame]').length >= 2")
            if path.startswith("queries"):
                page.locator(".st-key-chart_history .main-svg").first.wait_for()
            shown = path.split("?")[0] or "data"
            page.screenshot(path=str(ARTIFACTS / f"hostile-{shown}.png"), full_page=True)
            assert page.evaluate("window.__pwned") is None, path
            injected = page.evaluate(
                "() => [...document.querySelectorAll('img[src=x], iframe, svg[onload], "
                "details[open]')].filter(e => !e.closest('[data-testid=stPlotlyChart]')).length"
            )
            assert injected == 0, path
            assert not page.locator("[data-testid=stException]").count(), path
            assert page.locator("h1").first.is_visible(), path  # still a usable page
        assert not page.errors, page.errors


def test_exports_keep_hostile_text_as_literal_text(tmp_path):
    store = hostile_store(tmp_path)
    frame = store.profile_frame(1).assign(prompt=HOSTILE[:1] * 24, answer=HOSTILE[1:2] * 24)
    lines = [json.loads(line) for line in analysis.to_jsonl(analysis.export_columns(frame)).decode().splitlines()]
    assert lines[0]["prompt"] == HOSTILE[0] and lines[0]["answer"] == HOSTILE[1]

    back = pd.read_parquet(io.BytesIO(analysis.to_parquet(analysis.export_columns(frame))))
    assert back["prompt"].iloc[0] == HOSTILE[0]
