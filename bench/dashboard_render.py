"""How long the server takes to render the Train page for a long run and for many overlaid runs, and the
Rollouts view for a long run with every step's groups stored.

    .venv/bin/python bench/dashboard_render.py [--steps 20000] [--runs 8] [--run-steps 2500] [--repeat 5] [--out FILE]
    .venv/bin/python bench/dashboard_render.py --only rollouts      # the Rollouts view alone (about a minute)

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
- rollouts: one sgpo run of --steps steps with its groups stored as the trainer stores them (32 groups of 8 a
  step over a 960-query profile, 2 with kept texts: bench.synthetic.fill_groups), rendered on the Rollouts
  page (its last step's groups, one group's samples, the per-step outcome and hardest-queries charts) and
  the Queries page (one query's history and the query x step heatmap): first_s and rerun_s as above (target
  for the Rollouts view: under 1 s on 2 cores), store_mb, and the library's reads alone (summary_s, the
  per-step summary on every k-th step; groups_s, the last step's groups; history_s; heatmap_s).
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

from bench.synthetic import fill_groups, fill_long_run, fill_profile  # noqa: E402
from dashboard import curves, run_figures  # noqa: E402
from sgpo import rollouts, runs  # noqa: E402
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


def rollouts_view(tmp: Path, steps: int, repeat: int) -> dict:
    """The Rollouts and Queries pages over a run of `steps` steps with its groups."""
    db = Path(tmp) / "rollouts.db"
    s = Store(db)
    profile = fill_profile(s, "init", n=960)
    t0 = time.perf_counter()
    fill_long_run(s, "long", "sgpo", steps=steps, profile_id=profile["id"])
    fill_groups(s, "long", steps, profile="init")
    fill = time.perf_counter() - t0
    s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    query = rollouts.groups("long", s)["query_id"].iloc[0]
    warm = Path(tmp) / "rollouts-warm.db"  # the same names, 10 steps: pays AppTest's own first-run costs
    w = Store(warm)
    fill_profile(w, "init", n=960)
    fill_long_run(w, "long", "sgpo", steps=10, profile_id=1)
    fill_groups(w, "long", 10, profile="init")
    parts = {}
    for label, call in (
        ("summary_s", lambda: rollouts.step_summary("long", s, every=rollouts.summary_every(steps))),
        ("groups_s", lambda: rollouts.groups("long", s)),
        ("history_s", lambda: rollouts.history("long", query, s)),
        ("heatmap_s", lambda: rollouts.success_matrix("long", s)),
    ):
        t0 = time.perf_counter()
        call()
        parts[label] = round(time.perf_counter() - t0, 3)
    return {
        "steps": steps,
        "groups": steps * 32,
        "fill_s": round(fill, 1),
        "store_mb": round(db.stat().st_size / 1e6, 1),
        "rollouts_page": timed_warm(warm, db, "rollouts", {"rollouts_run": "long"}, repeat),
        "queries_page": timed_warm(warm, db, "queries", {"queries_run": "long", "queries_query": query}, repeat),
        **parts,
    }


def timed_warm(warm: Path, db: Path, page: str, query: dict, repeat: int) -> dict:
    """timed_runs of `page` on `db`, after the same AppTest has rendered it once on `warm`: first_s is then the
    page's own first render (nothing of `db` read or cached yet), without AppTest's start-up (it scans every
    installed package for components, about 1.5 s here, which a served dashboard does once at start)."""
    at = app_test(warm, page, query)
    at.run()
    os.environ["SGPO_DB"] = str(db)
    return timed_runs(at, repeat)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--run-steps", type=int, default=2_500)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--only", choices=("train", "rollouts"), help="time one view only")
    args = ap.parse_args(argv)
    out = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.db"  # imports and Streamlit's first-run costs, paid before any timing
        fill_long_run(Store(warm), "w", steps=10)
        fill_groups(Store(warm), "w", 10)
        app_test(warm, "train", {}).run()
        app_test(warm, "rollouts", {}).run()
        if args.only != "train":
            out["rollouts"] = rollouts_view(Path(tmp), args.steps, args.repeat)
            print(
                f"Rollouts view, {args.steps:,}-step run: {out['rollouts']['rollouts_page']['rerun_s']['median']} s a "
                f"rerun, {out['rollouts']['rollouts_page']['first_s']} s the first render",
                file=sys.stderr,
            )
        if args.only == "rollouts":
            text = json.dumps(out, indent=2)
            print(text)
            if args.out:
                args.out.write_text(text + "\n")
            return out

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
