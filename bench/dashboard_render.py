"""How long the server takes to render the Train page for a long run and for many overlaid runs.

    .venv/bin/python bench/dashboard_render.py [--steps 20000] [--runs 8] [--run-steps 2500] [--repeat 5] [--out FILE]

Two synthetic stores (bench/synthetic.py: every metric the trainer logs, noise and spikes included):
- one_run: one sgpo run of --steps steps (default 20,000), watched on the Train page;
- overlay: --runs runs (default 8) of --run-steps steps (default 2,500), all on the charts at once
  (?train_run=r0&train_overlay=r1&...); the Compare page is timed on the same runs.
Each is rendered through Streamlit's AppTest, so the figures are the server's script time, no browser:
- first_s: the first render, which reads and parses every metrics row from SQLite;
- rerun_s: median and max of --repeat reruns, what the live view pays each second (metrics cached,
  only new steps read); target: under 1 s on 2 cores;
- store_read_s: runs.metrics for the run(s) alone (the part of first_s the store takes);
- figures_s: the five Train charts built from frames in memory; payload_kb: their JSON as sent;
  max_points: the most points any one line sends.
Prints one JSON object and writes it to --out if given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from bench.synthetic import fill_long_run  # noqa: E402
from dashboard import curves, run_figures  # noqa: E402
from sgpo import runs  # noqa: E402
from sgpo.store import Store  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")


def app_test(db: Path, page: str, query: dict) -> AppTest:
    os.environ["SGPO_DB"], os.environ["SGPO_AUTOPROFILE"] = str(db), "0"
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page(f"views/{page}.py")
    at.query_params.update(query)
    return at


def timed_runs(at, repeat: int) -> dict:
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    assert not at.exception, [e.message for e in at.exception]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    return {
        "first_s": round(first, 3),
        "rerun_s": {"median": round(statistics.median(times), 3), "max": round(max(times), 3), "n": len(times)},
    }


def figures(db: Path, names: list[str]) -> dict:
    """The five Train charts from frames already in memory, and what they send."""
    s = Store(db)
    t0 = time.perf_counter()
    frames = [(runs.metrics(n, s), runs.evals(n, s)) for n in names]
    read = time.perf_counter() - t0
    series = [curves.Series(n, curves.PALETTE[i % 10], m, e, 0.38) for i, (n, (m, e)) in enumerate(zip(names, frames))]
    t0 = time.perf_counter()
    built = [
        run_figures.reward_figure(series, "step", 0.6),
        run_figures.wasted_figure(series, "step", 0.6),
        run_figures.informative_figure(series, "step", 0.6),
        run_figures.flops_figure(series, "step"),
        run_figures.accuracy_figure(series, "step"),
    ]
    build = time.perf_counter() - t0
    payload = sum(len(f.to_json()) for f in built)
    points = max(len(t.x) for f in built for t in f.data if t.x is not None)
    return {
        "store_read_s": round(read, 3),
        "figures_s": round(build, 3),
        "payload_kb": round(payload / 1024),
        "max_points": points,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--run-steps", type=int, default=2_500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    out = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.db"  # imports and Streamlit's first-run costs, paid before any timing
        fill_long_run(Store(warm), "w", steps=10)
        app_test(warm, "train", {}).run()

        one = Path(tmp) / "one.db"
        t0 = time.perf_counter()
        fill_long_run(Store(one), "long", "sgpo", steps=args.steps)
        out["one_run"] = {
            "steps": args.steps,
            "fill_s": round(time.perf_counter() - t0, 1),
            **timed_runs(app_test(one, "train", {"train_run": "long"}), args.repeat),
            **figures(one, ["long"]),
        }

        many = Path(tmp) / "many.db"
        names = [f"r{i}" for i in range(args.runs)]
        for i, name in enumerate(names):
            fill_long_run(Store(many), name, "sgpo" if i % 2 else "grpo", steps=args.run_steps, seed=i)
        query = {"train_run": names[0], "train_overlay": names[1:]}
        out["overlay"] = {
            "runs": args.runs,
            "steps_each": args.run_steps,
            **timed_runs(app_test(many, "train", query), args.repeat),
            **figures(many, names),
        }
        out["overlay"]["compare_page"] = timed_runs(app_test(many, "compare", {"compare_runs": names}), args.repeat)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return out


if __name__ == "__main__":
    main()
