"""One trainer writing the store at full rate while three dashboard sessions poll it: lock errors, the
lag the dashboard sees, and the trainer's slowdown.

    .venv/bin/python bench/store_load.py [--minutes 10] [--quick] [--real] [--out FILE]

The writer runs without pause for the whole bench; three reader processes are switched on and off in
alternating segments (readers off for half as long as on), so "alone" and "with readers" are measured side
by side, under the same machine load. `--minutes` is the time with readers polling (--quick: 0.5).

- writer, default: the trainer's write pattern without the model, as fast as it goes: Store.log_step of a
  metrics dict shaped like Trainer._account's (37 keys, one nested), an eval row every 500 steps, two
  plan events every 10 steps. It writes far faster than any real trainer: the worst case for locks.
- writer, --real: a real training run on a tiny random Llama (tests/toys.py: 80-query toy
  set, 32 rollouts per step, an eval every 25 steps, a checkpoint every 10), stopped with SIGTERM.
- readers: what one browser tab on the Train page does each second (dashboard/views/train.py and
  dashboard/state.py): open a Store for each read with busy_timeout 5 s, list the runs, read the watched
  run's metrics incrementally (after the last step seen) twice (status numbers and charts), and all its evals.

Each metrics row carries `written_at`, the writer's clock just before its log_step (so the lag includes
the write itself). Lag = the reader's clock when the row first comes back - written_at. Lock errors:
sqlite3.OperationalError "database is locked" or StoreError, in the writer and in the readers.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import emit  # noqa: E402

READERS = 3
EVAL_EVERY = 500  # synthetic writer: an eval row every 500 steps (a few per second at its rate, as evals are slow)
TICK_S = 1.0  # the Train page's fragments re-run every second
BUSY_TIMEOUT_MS = 5000  # dashboard/state.py: how long a read waits for a writer before "locked"
EDGE_S = 1.0  # left out at each end of a segment: readers starting or stopping


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentiles(values: list[float], scale: float = 1.0, digits: int = 4) -> dict:
    import numpy as np

    if not values:
        return {"n": 0}
    v = np.asarray(values) * scale
    return {
        "n": len(v),
        "median": round(float(np.median(v)), digits),
        "p95": round(float(np.percentile(v, 95)), digits),
        "p99": round(float(np.percentile(v, 99)), digits),
        "max": round(float(v.max()), digits),
    }


# writers ------------------------------------------------------------------------------------------
def step_data(step: int, rng: random.Random) -> dict:
    """A metrics dict shaped like Trainer._account's (the keys and types it writes each step)."""
    rollouts, groups = 256, 32
    wasted = rng.randrange(0, rollouts + 1, 8)
    data = {
        "queries": groups,
        "rollouts": rollouts,
        "groups": groups,
        "informative_groups": groups - wasted // 8,
        "wasted_rollouts": wasted,
        "step_wasted_fraction": wasted / rollouts,
        "step_informative_fraction": 1 - wasted / rollouts,
        "group_size": 8,
        "reward_mean": rng.random(),
        "reward_by_group_size": {"2": rng.random(), "4": rng.random(), "8": rng.random()},
        "tokens_prompt": 9000 + rng.randrange(500),
        "tokens_completion": 3000 + rng.randrange(500),
        "tokens_trained": 8000,
        "trained_sequences": 200,
        "loss": rng.gauss(0, 0.1),
        "kl": 0.0,
        "entropy": rng.random(),
        "grad_norm": rng.random(),
        "lr": 5e-5,
        "step_seconds": 0.5,
        "generation_seconds": 0.3,
        "phase": step // 100,
        "phase_step": step % 100,
        "refresh": False,
    }
    totals = {
        k: float(step * 1000 + i)
        for i, k in enumerate(
            [
                "flops_profile",
                "flops_rollout",
                "flops_train",
                "flops_total",
                "flops_eval",
                "rollouts_total",
                "wasted_rollouts_total",
                "groups_total",
                "informative_groups_total",
                "queries_total",
                "tokens_total",
            ]
        )
    }
    return {**data, **totals, "run_wasted_fraction": rng.random(), "run_informative_fraction": rng.random()}


def eval_row(step: int, rng: random.Random) -> dict:
    acc = rng.random()
    return {
        "flops_total": step * 1e9,
        "accuracy": acc,
        "data": {
            "queries": 800,
            "samples": 4,
            "accuracy": acc,
            "greedy_accuracy": acc,
            "by_task": {t: rng.random() for t in ("add", "rev", "count", "sort")},
            "by_difficulty": {str(d): rng.random() for d in range(1, 6)},
            "by_band": {b: rng.random() for b in ("solved", "middle", "unsolved")},
            "tokens": 100000,
            "flops": 1e9,
            "flops_eval_total": step * 1e9,
        },
    }


def synthetic_writer(db: str, run_id: int, stop, out) -> None:
    """Log steps back to back until `stop` is set; report each step's commit time and log_step duration."""
    from sgpo.store import Store

    store, rng, commits, errors, step = Store(db), random.Random(0), [], [], 0
    while not stop.is_set():
        step += 1
        data = step_data(step, rng)
        t0 = time.time()
        data["written_at"] = t0
        try:
            evaluation = eval_row(step, rng) if step % EVAL_EVERY == 0 else None
            store.log_step(run_id, step, data["phase"], step * 0.5, data, evaluation)
            if step % 10 == 0:
                store.event(run_id, "plan", f"step {step}: phase {step // 10} (G=4) ended after 10 steps")
                store.event(run_id, "plan", f"step {step}: re-plan {step // 10}: 99 query slots in 2 phases")
        except Exception as exc:  # counted, and the step is written again
            errors.append(f"{type(exc).__name__}: {exc}")
            step -= 1
            continue
        commits.append((time.time(), time.time() - t0))
    out.put({"commits": commits, "errors": errors})


def real_writer(db: str, run_name: str, out) -> None:
    """A real training run in this process until SIGTERM; log_step stamps each row's written_at."""
    from sgpo import runs
    from sgpo.store import Store

    commits, original = [], Store.log_step

    def log_step(self, run_id, step, phase, wall_seconds, data, eval_row=None):
        t0 = time.time()
        original(self, run_id, step, phase, wall_seconds, {**data, "written_at": t0}, eval_row)
        commits.append((time.time(), time.time() - t0))

    Store.log_step = log_step
    errors = []
    try:
        runs.work(run_name, Store(db), log=lambda msg: None)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    out.put({"commits": commits, "errors": errors})


# readers ------------------------------------------------------------------------------------------
def reader(db: str, run_id: int, active, stop, out, seed: int) -> None:
    """One dashboard session on the Train page: a tick per second while `active` is set."""
    from sgpo import runs
    from sgpo.store import Store

    def store():
        s = Store(db)
        s.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return s

    lags, ticks, errors, last_step, catching_up = [], [], [], -1, True
    time.sleep(random.Random(seed).random() * TICK_S)  # sessions do not tick in step
    while not stop.is_set():
        if not active.wait(0.2):
            catching_up = True  # the first tick after a pause reads what was written meanwhile: no lag counted
            continue
        t0 = time.time()
        try:
            s = store()
            try:
                runs.list_runs(s)  # status fragment: the run list, for the watch signature
            finally:
                s.close()
            s = store()
            try:
                new = runs.metrics(run_id, s, after_step=last_step)  # status fragment: the numbers
            finally:
                s.close()
            seen = time.time()
            if len(new) and "written_at" in new:
                lags += [] if catching_up else (seen - new["written_at"]).tolist()
                last_step = int(new["step"].iloc[-1])
            catching_up = False
            s = store()
            try:
                runs.metrics(run_id, s, after_step=last_step)  # charts fragment: the series, then the evals
                runs.evals(run_id, s)
            finally:
                s.close()
        except Exception as exc:  # counted; the next tick tries again, as the page does
            errors.append(f"{type(exc).__name__}: {exc}")
        ticks.append((t0, time.time() - t0))
        time.sleep(max(0.0, TICK_S - (time.time() - t0)))
    out.put({"lags": lags, "ticks": ticks, "errors": errors})


# the bench ----------------------------------------------------------------------------------------
def schedule(minutes: float) -> list[tuple[float, bool]]:
    """(seconds, readers on) segments: off, on, off, on, ... with `minutes` on in all, off half as long."""
    on_total = minutes * 60
    n = max(1, round(on_total / min(30.0, max(6.0, on_total / 3))))  # segments of 6-30 s, at least 3 when short
    return [(on_total / n / 2, False), (on_total / n, True)] * n


def rate(commits: list[tuple[float, float]], windows: list[tuple[float, float]]) -> tuple[float, list[float]]:
    """Steps per second inside the windows (EDGE_S trimmed at each end), and those steps' log_step times."""
    n, seconds, durations = 0, 0.0, []
    for a, b in windows:
        a, b = a + EDGE_S, b - EDGE_S
        if b <= a:
            continue
        inside = [d for t, d in commits if a <= t < b]
        n, seconds, durations = n + len(inside), seconds + (b - a), durations + inside
    return (n / seconds if seconds else float("nan")), durations


def prepare_real(folder: Path, db: Path) -> str:
    from sgpo import runs
    from sgpo.store import Store
    from sgpo.train import TrainConfig
    from tests.toys import tiny_model_dir, toy_dataset

    model = tiny_model_dir(folder / "model")
    data = toy_dataset(folder / "toy.jsonl", model, n=80)
    cfg = TrainConfig(
        strategy="grpo",
        dataset=str(data),
        model=str(model),
        eval_dataset=str(data),
        steps=10**9,
        batch_rollouts=32,
        group_size=4,
        max_new_tokens=1,
        eval_samples=2,
        eval_every=25,
        checkpoint_every=10,
        lr=5e-4,
        warmup_steps=0,
        threads=1,
    )
    return runs.create(cfg, Store(db), name="load")["name"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="minutes with the readers polling (10)")
    parser.add_argument("--quick", action="store_true", help="0.5 minutes")
    parser.add_argument("--real", action="store_true", help="a real tiny-model training run as the writer")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else (0.5 if args.quick else 10.0)

    from sgpo.store import Store

    ctx = mp.get_context("spawn")
    folder = Path(tempfile.mkdtemp(prefix="sgpo-load-"))
    db = folder / "sgpo.db"
    if args.real:
        run_name = prepare_real(folder, db)
        run_id = Store(db).find_run(run_name)["id"]
    else:
        run_id = Store(db).create_run(name="load", strategy="grpo", config={"strategy": "grpo"})
    writer_out, reader_out = ctx.Queue(), ctx.Queue()
    stop_writer, stop_readers, active = ctx.Event(), ctx.Event(), ctx.Event()
    if args.real:
        writer = ctx.Process(target=real_writer, args=(str(db), run_name, writer_out))
    else:
        writer = ctx.Process(target=synthetic_writer, args=(str(db), run_id, stop_writer, writer_out))
    readers = [
        ctx.Process(target=reader, args=(str(db), run_id, active, stop_readers, reader_out, i)) for i in range(READERS)
    ]
    writer.start()
    for r in readers:
        r.start()
    probe = Store(db)
    while not probe.metrics_frame(run_id).shape[0]:  # the writer is under way (a real run: model loaded)
        if not writer.is_alive():
            raise SystemExit("the writer died before its first step")
        time.sleep(0.1)
    probe.close()
    time.sleep(3.0 if args.real else 1.0)  # the readers have imported what they need
    segments = []
    for seconds, on in schedule(minutes):
        (active.set if on else active.clear)()
        t0 = time.time()
        time.sleep(seconds)
        segments.append((t0, time.time(), on))
        log(f"{'with readers' if on else 'alone':>12}: {seconds:.0f} s")
    active.clear()
    stop_readers.set()
    reader_results = [reader_out.get(timeout=120) for _ in readers]
    if args.real:
        os.kill(writer.pid, signal.SIGTERM)  # finish the step, checkpoint, stop
    stop_writer.set()
    written = writer_out.get(timeout=300)
    writer.join()
    for r in readers:
        r.join()

    alone, alone_ms = rate(written["commits"], [(a, b) for a, b, on in segments if not on])
    loaded, loaded_ms = rate(written["commits"], [(a, b) for a, b, on in segments if on])
    lags = [lag for r in reader_results for lag in r["lags"]]
    reader_errors = [e for r in reader_results for e in r["errors"]]
    ticks = [d for r in reader_results for _, d in r["ticks"]]
    summary = {
        "writer_kind": "real tiny-model training" if args.real else "synthetic (Store.log_step in a tight loop)",
        "minutes_with_readers": minutes,
        "readers": READERS,
        "segments": len(segments),
        "writer": {
            "steps": len(written["commits"]),
            "steps_per_s_alone": round(alone, 2),
            "steps_per_s_with_readers": round(loaded, 2),
            "slowdown": round(1 - loaded / alone, 4) if alone else None,
            "log_step_ms_alone": percentiles(alone_ms, 1000, 2),
            "log_step_ms_with_readers": percentiles(loaded_ms, 1000, 2),
            "lock_errors": sum(map(is_lock_error_text, written["errors"])),
            "errors": written["errors"][:10],
        },
        "dashboard": {
            "ticks": len(ticks),
            "tick_ms": percentiles(ticks, 1000, 1),
            "lag_s": percentiles(lags, 1, 3),
            "lock_errors": sum(map(is_lock_error_text, reader_errors)),
            "errors": reader_errors[:10],
        },
    }
    summary["lock_errors"] = summary["writer"]["lock_errors"] + summary["dashboard"]["lock_errors"]
    summary["errors"] = len(written["errors"]) + len(reader_errors)
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    emit(summary, args.out, indent=1)
    return summary


def is_lock_error_text(message: str) -> bool:
    """sqlite3's "database is locked" / "busy", or a StoreError (a failed write: locked or read-only)."""
    return "locked" in message.lower() or "busy" in message.lower() or message.startswith("StoreError")


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
