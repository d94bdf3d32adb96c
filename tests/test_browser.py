"""End to end in a real browser: `sgpo dashboard` on a free port of 127.0.0.1, Debian's chromium driven by
Playwright's Python package, a real profile made by the real `sgpo profile` command, real training runs.

The tests run in file order and share one server and one page: data -> audit -> plan -> train -> compare.
Screenshots go to test-artifacts/. Under CI=true a missing chromium fails; locally the module skips.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from bench.browser import browser_page, choose, log_probe_step, serve
from bench.synthetic import fill_big_profile, fill_profile
from sgpo.store import Store
from tests.conftest import ROOT, require_browser
from tests.toys import profiled_toy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]
ARTIFACTS = ROOT / "test-artifacts"


def sgpo(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "sgpo", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A tiny random policy, a 64-query toy dataset it solves about half the time, and a real profile of it."""
    require_browser()
    return profiled_toy(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(toy):
    with serve(toy["db"], toy["dir"] / "server.log") as url:
        yield url
    for run in Store(toy["db"]).runs():  # detached trainers outlive the server: end the ones started here
        if run["pid"] and run["status"] in ("created", "running"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(run["pid"], signal.SIGKILL)
    # anything still running on this test store (a detached trainer whose pid was not yet recorded)
    subprocess.run(["pkill", "-KILL", "-f", str(toy["db"])], check=False)


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page() as page:
        page.goto(server)
        page.wait_for_selector("[data-testid=stSidebar]")
        yield page
        shot(page, "last")
        assert not page.errors, page.errors


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def go(page, server, path: str) -> None:
    page.goto(f"{server}/{path}")
    page.wait_for_selector("[data-testid=stAppViewContainer]")
    page.wait_for_selector("[data-testid=stTitle], h1")


def scroll_to(page, key: str) -> None:
    """Scroll an element into view by script: live fragments replace it every second, so a locator's
    wait-until-stable never settles."""
    page.wait_for_selector(f".st-key-{key}")
    page.evaluate("(k) => document.querySelector('.st-key-' + k)?.scrollIntoView()", key)
    page.wait_for_timeout(500)


def test_data_page_rejects_a_bad_path_and_profiles_a_file_with_live_progress(page, server, toy):
    go(page, server, "")
    page.locator(".st-key-ds_source button", has_text="local file").click()
    page.locator(".st-key-ds_path input").fill(str(toy["dir"] / "no-such-file.jsonl"))  # inside --allow-root
    page.locator(".st-key-ds_path input").press("Enter")
    page.locator(".st-key-start_profile button").click()
    page.get_by_text("does not exist").first.wait_for()
    page.locator(".st-key-ds_path input").fill(str(toy["data"]))
    page.locator(".st-key-ds_path input").press("Enter")
    page.locator(".st-key-model_source button", has_text="local folder").click()
    page.locator(".st-key-model_path input").fill(str(toy["model"]))
    page.locator(".st-key-model_path input").press("Enter")
    page.locator(".st-key-max_new_tokens input").fill("1")
    page.locator(".st-key-max_new_tokens input").press("Enter")
    page.locator(".st-key-profile_name input").fill("from-page")
    page.locator(".st-key-profile_name input").press("Enter")
    page.wait_for_timeout(500)
    page.locator(".st-key-start_profile button").click()
    page.get_by_text("started profiling from-page").wait_for()
    page.locator("[data-testid=stProgress]").first.wait_for()  # the live bar, before any query is done
    shot(page, "data-profiling")
    # done: the stored-profiles table (a canvas grid) lists it; check the store, then the page's bar is gone
    deadline = time.time() + 240
    while not [p for p in Store(toy["db"]).profiles() if p["name"] == "from-page" and p["status"] == "done"]:
        assert time.time() < deadline, "profiling from the page did not finish"
        time.sleep(1)
    page.wait_for_function("() => !document.body.innerText.includes('profiling from-page:')", timeout=30_000)
    shot(page, "data-done")


def test_audit_histogram_and_heat_map_render(page, server):
    go(page, server, "audit")
    charts = page.locator("[data-testid=stPlotlyChart]")
    charts.nth(1).wait_for()
    page.locator(".st-key-p_hat_histogram .main-svg g.barlayer path").first.wait_for()
    bars = page.locator(".st-key-p_hat_histogram .main-svg g.barlayer path").count()
    assert bars > 2
    page.locator(".st-key-difficulty_heatmap .main-svg").first.wait_for()
    shot(page, "audit")


def test_moving_a_plan_slider_changes_the_forecast(page, server):
    go(page, server, "plan")
    value_sel = ".st-key-forecast_rollouts [data-testid=stMetricValue]"
    page.wait_for_selector(value_sel)
    page.locator(".st-key-phase_timeline .main-svg").first.wait_for()
    shot(page, "plan-before")
    move_slider(page, moves=7)  # ends one notch left: 0.74
    line = page.locator("[data-testid=stCode]").first.inner_text()
    assert "--trivial-threshold" in line
    shot(page, "plan-after")


def move_slider(page, moves: int) -> None:
    """Keyboard moves of the trivial-threshold slider, each of which must change the forecast shown.

    p_hat takes values k / N and the threshold starts at 0.75 = 6 / 8: one notch left (0.74) makes those
    queries trivial, one notch right brings them back, so every move changes the forecast. How fast the
    page follows is measured by bench/dashboard_latency.py, not asserted here."""
    value_sel = ".st-key-forecast_rollouts [data-testid=stMetricValue]"
    slider = page.get_by_role("slider", name=re.compile("trivial threshold"))
    for i in range(moves):
        before = page.locator(value_sel).inner_text()
        slider.focus()
        slider.press("ArrowLeft" if i % 2 == 0 else "ArrowRight")
        page.wait_for_function(
            "([s, o]) => document.querySelector(s).innerText !== o", arg=[value_sel, before], timeout=60_000
        )
        page.wait_for_timeout(300)


def launch(page, strategy: str, name: str, toy, steps: int = 40) -> None:
    details = page.locator("[data-testid=stExpander] details").first
    details.wait_for()
    if details.get_attribute("open") is None:
        details.locator("summary").first.click()
    page.locator(".st-key-launch_run").wait_for()
    choose(page, "train_strategy", strategy)
    fields = {
        "train_steps": str(steps),
        "train_eval_every": "10",
        "train_batch_rollouts": "32",
        "train_group_size": "4",
        "train_lr": "0.0005",
    }
    more = {
        "train_max_new_tokens": "1",
        "train_eval_dataset": str(toy["data"]),
        "train_threads": "1",
        "train_warmup_steps": "0",
        "train_checkpoint_every": "20",
    }
    more_knobs = page.locator("[data-testid=stExpander] details").nth(1)
    if more_knobs.get_attribute("open") is None:
        more_knobs.locator("summary").first.click()
    page.locator(".st-key-train_threads").wait_for()
    for key, value in {**fields, **more}.items():
        box = page.locator(f".st-key-{key} input")
        box.fill(value)
        box.press("Enter")
    page.locator(".st-key-run_name input").fill(name)
    page.locator(".st-key-run_name input").press("Enter")
    wanted = [f"--strategy {strategy}", f"--name {name}", f"--steps {steps}", "--max-new-tokens 1", "--threads 1"]
    try:  # the CLI line follows the widgets once the reruns they trigger have landed
        page.wait_for_function(
            "(want) => { const e = document.querySelector('[data-testid=stCode]');"
            " return e && want.every(w => e.innerText.includes(w)); }",
            arg=wanted,
            timeout=30_000,
        )
    except Exception:
        shot(page, f"launch-{name}-failed")
        raise
    page.locator(".st-key-launch_run button").click()
    page.get_by_text(f"launched {name}").wait_for()


def test_two_runs_launched_side_by_side_stream_live(page, server, toy):
    go(page, server, "train")
    steps = 120  # long enough that the page sees the run before it ends, even on an idle machine
    launch(page, "sgpo", "sgpo-page", toy, steps=steps)
    launch(page, "grpo", "grpo-page", toy, steps=steps)
    step_sel = ".st-key-run_step [data-testid=stMetricValue]"
    status_sel = ".st-key-run_status [data-testid=stMetricValue]"
    page.wait_for_selector(step_sel, timeout=180_000)
    seen, deadline = set(), time.time() + 240
    while time.time() < deadline:  # rows keep arriving without a reload: the step shown changes by itself
        text = page.locator(step_sel).inner_text()
        seen.add(int(text) if text.strip().isdigit() else -1)
        if page.locator(status_sel).inner_text() == "finished" or len(seen - {-1}) >= 3:
            break
        time.sleep(0.25)
    # two different steps shown without a reload: rows kept arriving (on a loaded machine the page may
    # re-render only a few times while the run trains, so two values are what can be asked for)
    assert len(seen - {-1}) >= 2, f"the step shown never changed by itself: {sorted(seen)}"
    scroll_to(page, "chart_reward")
    shot(page, "train-live")
    store = Store(toy["db"])
    deadline = time.time() + 300
    while any(store.find_run(n)["status"] in ("created", "running") for n in ("sgpo-page", "grpo-page")):
        assert time.time() < deadline, "the two runs did not finish"
        time.sleep(2)
    for name in ("sgpo-page", "grpo-page"):
        run = store.find_run(name)
        assert run["status"] == "finished", run
        assert len(store.metrics_frame(run["id"])) == steps + 1 and len(store.evals_frame(run["id"])) >= 5
    page.wait_for_function(
        "(sel) => document.querySelector(sel).innerText === 'finished'",
        arg=".st-key-run_status [data-testid=stMetricValue]",
        timeout=30_000,
    )
    page.locator(".st-key-chart_accuracy .main-svg").first.wait_for()
    scroll_to(page, "chart_informative")
    shot(page, "train-finished")


def test_stop_and_resume_buttons_drive_the_run_lifecycle(page, server, toy):
    go(page, server, "train")
    launch(page, "grpo", "stop-me", toy, steps=50_000)
    status, step = (f".st-key-run_{k} [data-testid=stMetricValue]" for k in ("status", "step"))
    page.wait_for_function(
        "() => document.querySelector('.st-key-train_run input')?.value === 'stop-me'", timeout=180_000
    )
    page.wait_for_function("(sel) => document.querySelector(sel).innerText === 'running'", arg=status, timeout=180_000)
    page.wait_for_function("(sel) => parseInt(document.querySelector(sel).innerText) > 3", arg=step, timeout=180_000)
    page.locator(".st-key-stop_run button").click()
    page.wait_for_function("(sel) => document.querySelector(sel).innerText === 'stopped'", arg=status, timeout=120_000)
    stopped_at = int(page.locator(step).inner_text())
    # the status metric renders before the buttons: the screenshot and the click wait for this render's Resume
    page.wait_for_function(
        "() => document.querySelector('.st-key-resume_run button')?.disabled === false", timeout=30_000
    )
    shot(page, "train-stopped")
    page.locator(".st-key-resume_run button").click()
    page.wait_for_function(
        "([sel, n]) => parseInt(document.querySelector(sel).innerText) > n", arg=[step, stopped_at], timeout=180_000
    )  # resumed from its checkpoint and stepping again
    page.locator(".st-key-stop_run button").click()
    page.wait_for_function("(sel) => document.querySelector(sel).innerText === 'stopped'", arg=status, timeout=120_000)


def test_a_step_written_to_the_store_appears_on_the_page_by_itself(page, server, toy):
    """Rows a trainer writes show without a reload (fragment run_every=1); bench/dashboard_latency.py
    measures how soon."""
    store = Store(toy["db"])
    run = store.create_run(name="live-probe", strategy="grpo", config={})
    store.update_run(run, status="running", pid=os.getpid())  # owned by a live process: not interrupted
    go(page, server, "train")
    choose(page, "train_run", "live-probe")
    step_sel = ".st-key-run_step [data-testid=stMetricValue]"
    page.wait_for_function("(sel) => document.querySelector(sel).innerText === '0'", arg=step_sel)
    for step in range(1, 4):
        log_probe_step(store, run, step)
        page.wait_for_function(
            "([sel, s]) => document.querySelector(sel).innerText === s", arg=[step_sel, str(step)], timeout=60_000
        )
    store.update_run(run, status="stopped", pid=None)


def test_compare_page_shows_the_reduction_factor(page, server):
    go(page, server, "compare")
    page.locator(".st-key-compare_runs").wait_for()
    page.locator(".st-key-chart_accuracy_flops .main-svg").first.wait_for()
    values = page.locator("[data-testid=stMetricValue]").all_inner_texts()
    assert values and all(
        v.endswith("x") or v in ("baseline", "not yet reached", "no evaluations yet") or v.startswith("n/a")
        for v in values
    ), values
    shot(page, "compare")


def test_plan_slider_at_100k_queries_changes_the_forecast(page, server, toy):
    """The same slider moves on a 100,000-query profile (added to the store through the Store API)."""
    fill_big_profile(Store(toy["db"]), 100_000)
    go(page, server, "plan")
    choose(page, "profile_id", re.compile("^big "))
    page.wait_for_function("() => document.body.innerText.includes('sgpo plan big')", timeout=60_000)
    page.wait_for_timeout(2000)
    move_slider(page, moves=4)
    shot(page, "plan-100k")


def test_plan_page_says_in_words_whether_sgpo_pays_and_warns_on_an_unfinished_profile(page, server, toy):
    """The run forecast's verdict under both engine behaviours, and plan_warnings, as the browser shows them."""
    fill_profile(Store(toy["db"]), "half", n=64, status="running", dataset_hash="half")
    go(page, server, "plan")
    choose(page, "profile_id", re.compile("^half "))
    page.wait_for_function("() => document.body.innerText.includes(\"profile 'half' is unfinished\")", timeout=60_000)
    for behaviour in ("skip", "train_all"):
        text = page.locator(f".st-key-verdict_{behaviour}").inner_text()
        assert re.search(r"sGPO (pays|will not pay)|nothing learnable", text), text
    assert "TRL / verl" in page.locator(".st-key-verdict_train_all").inner_text()
    scroll_to(page, "verdict_skip")
    shot(page, "plan-verdicts")
