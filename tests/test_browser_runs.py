"""Real runs in a real browser: `sgpo dashboard` on a free port, Debian's chromium through Playwright's
Python package, a synthetic store (bench/synthetic.py) with two runs that keep growing while the page
watches them, a stored run of 20,000 steps, and a checkpoint's profile beside the initial policy's.

Screenshots go to test-artifacts/runs-*.png. Under CI=true a missing chromium fails; locally the module
skips. How fast the pages render is measured by bench/dashboard_render.py, not asserted here.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from bench.browser import browser_page, serve
from bench.synthetic import fill_long_run, fill_profile
from sgpo.store import Store
from tests.conftest import ROOT, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]
ARTIFACTS = ROOT / "test-artifacts"
CHARTS = ("chart_reward", "chart_wasted", "chart_informative", "chart_flops", "chart_accuracy")
LIVE_LENGTH = 3000  # steps the live runs would reach; the test ends long before


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """init (a profile), long (20,000 stored steps, trained from init), long-step20000 (its checkpoint's
    profile, same data), and live-a / live-b: running runs owned by this process, a few steps in."""
    require_browser()
    d = tmp_path_factory.mktemp("browser-runs")
    s = Store(d / "sgpo.db")
    base = fill_profile(s, "init", n=240)
    fill_long_run(s, "long", "sgpo", steps=20_000, profile_id=base["id"])
    fill_profile(s, "long-step20000", n=240, seed=1, skill=0.35, model_spec="run:long@20000")
    for name, strategy in (("live-a", "sgpo"), ("live-b", "grpo")):
        fill_long_run(
            s,
            name,
            strategy,
            steps=5,
            eval_every=20,
            status="running",
            pid=os.getpid(),
            length=LIVE_LENGTH,
            profile_id=base["id"],
            seed=len(name) + (strategy == "grpo"),
        )
    return d / "sgpo.db"


@pytest.fixture(scope="module")
def writer(store):
    """Appends two steps to each live run every half second, as two trainers would, until the module ends."""
    stop, s = threading.Event(), Store(store)

    def grow():
        step = 5
        while not stop.is_set() and step < LIVE_LENGTH - 2:
            for name, strategy in (("live-a", "sgpo"), ("live-b", "grpo")):
                fill_long_run(
                    s,
                    name,
                    strategy,
                    steps=step + 2,
                    start=step,
                    eval_every=20,
                    status="running",
                    pid=os.getpid(),
                    length=LIVE_LENGTH,
                )
            step += 2
            stop.wait(0.5)

    thread = threading.Thread(target=grow, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(store):
    with serve(store, store.parent / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(height=1800) as page:  # tall: Streamlit scrolls inside the page, a screenshot does not
        yield page
        assert not page.errors, page.errors


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"runs-{name}.png"))


def go(page, server, path: str) -> None:
    page.goto(f"{server}/{path}")
    page.wait_for_selector("[data-testid=stAppViewContainer]")
    page.wait_for_selector("h1")


def wait_for_charts(page, keys=CHARTS) -> None:
    for key in keys:
        page.locator(f".st-key-{key} .main-svg").first.wait_for()


def legend(page, key: str) -> list[str]:
    return page.locator(f".st-key-{key} .legendtext").all_text_contents()  # SVG: text, not innerText


def x_title(page, key: str) -> str:
    return page.locator(f".st-key-{key} .g-xtitle").first.text_content()


STEP = ".st-key-run_step [data-testid=stMetricValue]"


def test_two_live_runs_overlay_on_every_chart_and_keep_growing(page, server, writer):
    go(page, server, "train?train_run=live-a&train_overlay=live-b")
    wait_for_charts(page)
    for key in CHARTS[:4]:
        assert {"live-a", "live-b"} <= set(legend(page, key)), (key, legend(page, key))
    first = page.locator(STEP).inner_text()
    page.wait_for_function(
        "([sel, s]) => document.querySelector(sel).innerText !== s", arg=[STEP, first], timeout=60_000
    )  # new rows show without a reload
    page.wait_for_timeout(1500)  # a tick or two of the live charts
    assert {"live-a", "live-b"} <= set(legend(page, "chart_wasted"))
    shot(page, "overlay-live")


def test_switching_the_x_axis_to_flops_moves_every_chart_and_survives_a_reload(page, server, writer):
    go(page, server, "train?train_run=live-a&train_overlay=live-b")
    wait_for_charts(page)
    assert x_title(page, "chart_reward") == "training step"
    page.locator(".st-key-train_x button", has_text="FLOPs").click()
    page.wait_for_function(
        "() => document.querySelector('.st-key-chart_reward .g-xtitle')?.textContent.includes('FLOP')", timeout=60_000
    )
    for key in CHARTS:
        assert "FLOP" in x_title(page, key), key
    page.wait_for_function("() => location.search.includes('train_x=FLOPs')", timeout=30_000)
    assert "train_overlay=live-b" in page.url
    shot(page, "x-flops")
    go(page, server, page.url.split("/", 3)[3])  # the URL is the view: reload it
    wait_for_charts(page, ["chart_reward"])
    assert "FLOP" in x_title(page, "chart_reward") and {"live-a", "live-b"} <= set(legend(page, "chart_reward"))


def test_the_checkpoint_audit_shows_the_bucket_transition_matrix(page, server):
    go(page, server, "audit?profile=long-step20000&audit_before=init")
    page.locator(".st-key-audit_transition .main-svg").first.wait_for()
    texts = page.locator(".st-key-audit_transition .main-svg text").all_text_contents()
    cells = [t for t in texts if t.endswith("%") and t[0].isdigit()]  # "12" and "37%" in each cell
    assert cells, f"the transition matrix shows no count / share cells: {texts}"
    assert {"trivial", "unsolved", "bucket before", "bucket after"} <= set(texts)
    shared = page.locator(".st-key-audit_shared [data-testid=stMetricValue]").inner_text()
    assert shared == "240"
    page.locator(".st-key-audit_p_hat_overlay .main-svg").first.wait_for()
    page.locator(".st-key-audit_drift .main-svg").first.wait_for()
    page.evaluate("() => document.querySelector('.st-key-audit_transition')?.scrollIntoView()")
    page.wait_for_timeout(800)
    shot(page, "audit-transition")


def test_a_stored_run_of_20000_steps_opens_and_draws(page, server):
    t0 = time.monotonic()
    go(page, server, "train?train_run=long&train_x=FLOPs")
    page.wait_for_function("(sel) => document.querySelector(sel)?.innerText === '20,000'", arg=STEP, timeout=120_000)
    wait_for_charts(page)
    page.locator(".st-key-chart_reward .scatterlayer path.js-line").first.wait_for()
    print(f"20,000-step run: page to charts in {time.monotonic() - t0:.1f} s (browser included)")
    path = page.locator(".st-key-chart_reward .scatterlayer path.js-line").first.get_attribute("d")
    assert path.count("L") <= 2 * 800 + 2  # downsampled before it was sent
    assert "phase 1" in page.locator(".st-key-chart_reward").first.text_content()  # every svg layer
    shot(page, "20000-steps")
