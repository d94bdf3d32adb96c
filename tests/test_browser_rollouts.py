"""What each query learned, live, in a real browser: `sgpo dashboard` on a free port, a real profile of a tiny
model made by `sgpo profile`, a real GRPO run launched from the Train page's button; while it trains, the
Rollouts page shows its newest step's groups (the step moving by itself), a group's kept completions and the
per-step charts, and the Queries page shows a query's history growing. Screenshots: test-artifacts/rollouts-*.png.
"""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from bench.browser import browser_page, choose, serve
from sgpo.store import Store
from tests.conftest import ROOT, require_browser
from tests.toys import profiled_toy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]
ARTIFACTS = ROOT / "test-artifacts"
RUN = "live-grpo"
CAPTION = "[data-testid=stCaptionContainer]"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    require_browser()
    return profiled_toy(tmp_path_factory.mktemp("browser-rollouts"))


@pytest.fixture(scope="module")
def server(toy):
    with serve(toy["db"], toy["dir"] / "server.log") as url:
        yield url
    for run in Store(toy["db"]).runs():  # the detached trainer outlives the server: end it
        if run["pid"] and run["status"] in ("created", "running"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(run["pid"], signal.SIGKILL)


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(height=1600) as page:
        yield page
        assert not page.errors, page.errors


def shot(page, name: str) -> None:
    """A screenshot between two reruns of the live views (mid-rerun, elements not yet replaced are stale)."""
    with contextlib.suppress(Exception):
        page.wait_for_function("() => !document.querySelector('[data-stale=true]')", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / f"rollouts-{name}.png"), full_page=True)


def go(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-testid=stAppViewContainer]")
    page.wait_for_selector("h1")


def launch(page, server) -> None:
    """Launch a long GRPO run on the toy profile from the Train page's form, as a user would."""
    go(page, f"{server}/train")
    details = page.locator("[data-testid=stExpander] details").first
    if details.get_attribute("open") is None:
        details.locator("summary").first.click()
    page.locator(".st-key-launch_run").wait_for()
    choose(page, "train_strategy", "grpo")
    more = page.locator("[data-testid=stExpander] details").nth(1)
    if more.get_attribute("open") is None:
        more.locator("summary").first.click()
    page.locator(".st-key-train_threads").wait_for()
    fields = {
        "train_steps": "3000",  # far more than the test watches: it is stopped at the end
        "train_eval_every": "0",
        "train_batch_rollouts": "32",
        "train_group_size": "4",
        "train_lr": "0.0005",
        "train_max_new_tokens": "1",
        "train_threads": "1",
        "train_warmup_steps": "0",
        "train_checkpoint_every": "500",
    }
    for key, value in fields.items():
        box = page.locator(f".st-key-{key} input")
        box.fill(value)
        box.press("Enter")
    page.locator(".st-key-run_name input").fill(RUN)
    page.locator(".st-key-run_name input").press("Enter")
    page.wait_for_function(
        "(want) => { const e = document.querySelector('[data-testid=stCode]');"
        " return e && want.every(w => e.innerText.includes(w)); }",
        arg=["--strategy grpo", f"--name {RUN}", "--steps 3000", "--max-new-tokens 1"],
        timeout=30_000,
    )
    page.locator(".st-key-launch_run button").click()
    page.get_by_text(f"launched {RUN}").wait_for()


def shown_step(page) -> int:
    """The step the Rollouts page's caption shows ('step 12: 8 groups, ...'), -1 before there is one."""
    for text in page.locator(CAPTION).all_inner_texts():
        if text.startswith("step ") and ":" in text:
            return int(text[5 : text.index(":")].replace(",", ""))
    return -1


def test_a_run_launched_from_the_train_page_shows_its_groups_completions_and_a_querys_history_live(page, server, toy):
    launch(page, server)
    go(page, f"{server}/rollouts?rollouts_run={RUN}")
    page.wait_for_function(
        "(sel) => [...document.querySelectorAll(sel)].some(e => /^step \\d/.test(e.innerText))",
        arg=CAPTION,
        timeout=180_000,
    )
    first = shown_step(page)
    page.wait_for_function(  # the newest step's groups replace the old ones without a reload
        "([sel, s]) => [...document.querySelectorAll(sel)].some(e => e.innerText.startsWith('step ') &&"
        " parseInt(e.innerText.slice(5).replace(/,/g, '')) > s)",
        arg=[CAPTION, first],
        timeout=120_000,
    )
    assert shown_step(page) > first
    page.wait_for_function(  # the groups and a group's samples; the group offered first keeps its completions
        "() => document.querySelectorAll('[data-testid=stDataFrame]').length >= 2 &&"
        " [...document.querySelectorAll('input')].some(i => i.value.includes('texts kept'))",
        timeout=30_000,
    )
    for key in ("chart_outcomes", "chart_hardest"):
        page.locator(f".st-key-{key} .main-svg").first.wait_for()
    subtitle = page.locator(".st-key-chart_hardest .gtitle-subtitle, .st-key-chart_hardest text").all_text_contents()
    assert any("p_hat under the initial policy (profile toy)" in t for t in subtitle), subtitle
    page.wait_for_timeout(1500)
    shot(page, "live-groups")

    page.get_by_text("See this query over training").first.click()  # the chosen group's query, on Queries
    page.wait_for_selector(".st-key-chart_history .main-svg", timeout=60_000)
    points = ".st-key-chart_history .scatterlayer .point"
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length > 0", arg=points, timeout=60_000)
    before = page.locator(points).count()
    page.wait_for_function(  # its history grows while the run trains (each query comes back every 8 steps)
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[points, before], timeout=240_000
    )
    page.evaluate("() => document.querySelector('.st-key-chart_history')?.scrollIntoView()")
    page.wait_for_timeout(1500)
    shot(page, "live-history")
    page.locator(".st-key-chart_heatmap .main-svg").first.wait_for()
    page.evaluate("() => document.querySelector('.st-key-chart_heatmap')?.scrollIntoView()")
    page.wait_for_timeout(1000)
    shot(page, "heatmap")
    run = Store(toy["db"]).find_run(RUN)
    assert run["status"] == "running" and Store(toy["db"]).group_steps(run["id"])[1] > first
