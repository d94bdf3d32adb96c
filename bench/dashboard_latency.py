"""How fast the dashboard follows the user and the trainer: the figures the tests no longer assert.

    .venv/bin/python bench/dashboard_latency.py [--queries 100000] [--moves 7] [--steps 6] [--out FILE]

Measures, on a fresh synthetic store (bench/synthetic.py) and a real `sgpo dashboard` in Debian's
chromium:
- knob_rerun_100k_s: server time of one Plan-page rerun after a knob change on a 100,000-query profile
  (Streamlit's AppTest, so no browser time is in it). Target: under 1 s on 2 cores.
- slider_to_forecast_s / slider_to_forecast_100k_s: from a keyboard move of the trivial-threshold slider
  to the new forecast shown in the browser, on a 240-query profile and on the 100,000-query one.
- trainer_to_page_s: from a metrics row written to the store to the step shown on the Train page (its
  fragment re-reads every second, so about 1 s is expected).
Prints one JSON object (median and max of each) and writes it to --out if given.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamlit.testing.v1 import AppTest  # noqa: E402

from bench.browser import browser_page, browser_problem, choose, log_probe_step, serve  # noqa: E402
from bench.common import emit  # noqa: E402
from bench.synthetic import fill_big_profile, fill_profile  # noqa: E402
from sgpo.store import Store  # noqa: E402

VALUE = ".st-key-forecast_rollouts [data-testid=stMetricValue]"
STEP = ".st-key-run_step [data-testid=stMetricValue]"


def summary(times: list[float]) -> dict:
    return {"median": round(statistics.median(times), 3), "max": round(max(times), 3), "n": len(times)}


def knob_rerun(db: Path, moves: int) -> list[float]:
    os.environ["SGPO_DB"], os.environ["SGPO_AUTOPROFILE"] = str(db), "0"
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/plan.py").run()
    times = []
    for i in range(moves):
        at.slider(key="knob_trivial_threshold").set_value(0.6 if i % 2 else 0.7)
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    return times


def slider_moves(page, moves: int) -> list[float]:
    slider = page.get_by_role("slider", name=re.compile("trivial threshold"))
    times = []
    for i in range(moves):
        before = page.locator(VALUE).inner_text()
        slider.focus()
        t0 = time.perf_counter()
        slider.press("ArrowLeft" if i % 2 == 0 else "ArrowRight")
        page.wait_for_function(
            "([s, o]) => document.querySelector(s).innerText !== o", arg=[VALUE, before], timeout=60_000, polling=20
        )
        times.append(time.perf_counter() - t0)
        page.wait_for_timeout(500)
    return times


def trainer_to_page(page, url: str, store: Store, steps: int) -> list[float]:
    run = store.create_run(name="latency-probe", strategy="grpo", config={})
    store.update_run(run, status="running", pid=os.getpid())
    page.goto(f"{url}/train")
    choose(page, "train_run", "latency-probe")
    page.wait_for_function("(s) => document.querySelector(s)?.innerText === '0'", arg=STEP)
    delays = []
    for step in range(1, steps + 1):
        time.sleep(0.37 * step % 1.1)  # land at different points of the refresh cycle
        t0 = time.perf_counter()
        log_probe_step(store, run, step)
        page.wait_for_function(
            "([s, v]) => document.querySelector(s).innerText === v", arg=[STEP, str(step)], timeout=30_000, polling=20
        )
        delays.append(time.perf_counter() - t0)
    store.update_run(run, status="stopped", pid=None)
    return delays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--moves", type=int, default=7)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    problem = browser_problem()
    if problem:
        raise SystemExit(problem)
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.db", Path(tmp) / "big.db"
        fill_profile(Store(small), "synthetic", n=240)
        fill_big_profile(Store(big), args.queries)
        result = {"knob_rerun_100k_s": summary(knob_rerun(big, args.moves))}
        with browser_page() as page:
            for db, key in ((small, "slider_to_forecast_s"), (big, "slider_to_forecast_100k_s")):
                with serve(db) as url:
                    page.goto(f"{url}/plan")
                    page.wait_for_selector(VALUE)
                    page.wait_for_timeout(2000)
                    result[key] = summary(slider_moves(page, args.moves))
                    if db == small:
                        result["trainer_to_page_s"] = summary(trainer_to_page(page, url, Store(small), args.steps))
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    emit(result, args.out, indent=1)


if __name__ == "__main__":
    main()
