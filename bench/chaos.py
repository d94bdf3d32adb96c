"""Kill -9 the profiler and the trainer at random moments, resume each time, and check that nothing was
lost, duplicated or changed; then corrupt a checkpoint and fill the disk.

    .venv/bin/python bench/chaos.py [--kills 20] [--seed 0] [--quick] [--no-faults] [--out FILE]

Everything goes through the real command line (`python -m sgpo ...` subprocesses) on a tiny random Llama
and an 80-query toy dataset (tests/toys.py), in a temporary folder:

1. profile: a reference `sgpo profile` in one store; the same profile in another store, SIGKILLed at
   --kills random moments and re-run after each (re-running resumes). Checks: positions 0..n-1 each
   stored once, every per-query row (successes, p_hat, tokens, examples) and the totals equal the reference.
2. train: a reference `sgpo train --strategy sgpo --refresh --name x` on the reference profile; the same
   run in the other store, SIGKILLed at --kills random moments and continued with `sgpo runs resume x`
   (or `sgpo train` again when the kill came before the run existed). Checks: metric steps 0..S each
   stored once, every step's metrics and every eval equal the reference (timings excepted), the result's
   totals equal, final weights and optimizer state bitwise equal (CPU).
3. faults (run `f`, same config): the latest checkpoint truncated -> the resume falls back to the previous
   one with a warning; a full disk (the resumed trainer may not write files over N bytes, RLIMIT_FSIZE,
   N below the weights file) -> the trainer exits with one `error:` line and `latest` still names an intact
   checkpoint; then a plain resume ends equal to the reference.

A random moment: a quarter of the kills fall in start-up (uniform over the reference's start-up time:
imports, model load, store and checkpoint checks), the rest uniform over a window of work / kills after
the process's first store write, so they land in generation, updates, store writes and checkpoint saves.
Prints one JSON object: kills, their moments, mismatches, wall time, and `findings`: what differs from
the reference without breaking the checks above (reported, not counted as mismatches):
- duplicate_events: a replayed step stores its plan events ("step 8: re-plan 1 ...") again, and a run
  resumed before its first checkpoint stores a second "start" event; events are inserted, not keyed by step.
- torch_rng_equal: torch's global RNG state kept in optimizer.pt. torch seeds it at random in every process
  and the trainer never seeds it, so it differs between any two runs; nothing in the native engine draws
  from it (sampling has its own seeded generators), so the weights still agree, but a model with dropout would not.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import emit  # noqa: E402

EARLY_SHARE = 0.25  # kills aimed at start-up rather than at work
POLL_S = 0.005
TIME_KEYS = {"step_seconds", "generation_seconds", "wall_seconds", "seconds"}  # the only numbers allowed to differ
PROFILE = ["--samples", 1024, "--max-new-tokens", 1, "--batch-size", 1]  # 80 batches, one transaction each
TRAIN = [
    "--strategy",
    "sgpo",
    "--profile",
    1,
    "--refresh",
    "--batch-rollouts",
    64,
    "--max-new-tokens",
    1,
    "--eval-samples",
    2,
    "--lr",
    5e-4,
    "--warmup-steps",
    0,
    "--threads",
    1,
    "--checkpoint-every",
    5,
    "--eval-every",
    90,
    "--force",  # the toy profile holds 11 learnable queries, fewer than a forecast rests on: train it anyway
]  # S is not a multiple of 90: the final step gets an eval of its own


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Lab:
    """The temporary folder: model, data, stores, and one log file per launched process."""

    def __init__(self, folder: Path, steps: int):
        from tests.toys import tiny_model_dir, toy_dataset

        self.folder, self.steps, self.launches = folder, steps, 0
        self.model = tiny_model_dir(folder / "model", hidden=64)
        self.data = toy_dataset(folder / "toy.jsonl", self.model, n=80)
        (folder / "logs").mkdir()

    def profile_argv(self, db: Path) -> list:
        return ["profile", self.data, "--model", self.model, *PROFILE, "--db", db, "--json"]

    def train_argv(self, db: Path, name: str) -> list:
        return [
            "train",
            "--dataset",
            self.data,
            "--model",
            self.model,
            "--eval-dataset",
            self.data,
            *TRAIN,
            "--steps",
            self.steps,
            "--name",
            name,
            "--db",
            db,
            "--json",
        ]

    def launch(self, argv: list, *, file_limit: int | None = None) -> subprocess.Popen:
        self.launches += 1
        out = self.folder / "logs" / f"{self.launches:03d}-{argv[0]}"
        limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))) if file_limit else None
        with open(f"{out}.out", "w") as stdout, open(f"{out}.err", "w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sgpo", *map(str, argv)],
                cwd=ROOT,
                preexec_fn=limit,
                stdout=stdout,
                stderr=stderr,
            )
        proc.out_path, proc.err_path = Path(f"{out}.out"), Path(f"{out}.err")
        return proc


def query(db: Path, sql: str, args=()) -> list:
    """Rows from a read-only connection; [] while the store does not exist yet or is being created."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def profile_mark(db: Path):
    rows = query(db, "SELECT queries_done, updated FROM profiles")
    return rows[0] if rows else None


def run_mark(db: Path, name: str):
    rows = query(db, "SELECT step, updated FROM runs WHERE name = ?", [name])
    return rows[0] if rows else None


def finish(proc: subprocess.Popen) -> dict:
    """Wait for a launch that must succeed; its --json result."""
    if proc.wait() != 0:
        raise SystemExit(f"{proc.args[3:5]} failed (exit {proc.returncode}):\n{proc.err_path.read_text()[-3000:]}")
    return json.loads(proc.out_path.read_text())


def reference(lab: Lab, argv: list, mark) -> tuple[dict, float, float]:
    """Run uninterrupted; (result, start-up seconds until the first store write, seconds of work after it)."""
    t0, before, first = time.perf_counter(), mark(), None
    proc = lab.launch(argv)
    while proc.poll() is None:
        if first is None and mark() != before:
            first = time.perf_counter()
        time.sleep(POLL_S)
    end = time.perf_counter()
    first = first or end
    return finish(proc), first - t0, end - first


def chaos(
    lab: Lab,
    argv_for,
    mark,
    kills: int,
    rng: random.Random,
    startup_s: float,
    work_s: float,
    detail=dict,
    done=lambda: False,
) -> dict:
    """Launch, SIGKILL at a random moment, launch again, ... `kills` times, then run to the end.
    `mark()`: (progress, updated) from the store, None before the first write; `detail()`: more to record;
    `done()`: the work is complete (a kill that came after the trainer stored `finished`)."""
    moments, t_start = [], time.perf_counter()
    while True:
        if done():
            return {
                "kills": len(moments),
                "moments": moments,
                "finished_before_all_kills": True,
                "wall_s": round(time.perf_counter() - t_start, 1),
            }
        proc, t0, before = lab.launch(argv_for()), time.perf_counter(), mark()
        if len(moments) == kills:
            return {
                "kills": len(moments),
                "moments": moments,
                "finished_before_all_kills": False,
                "result": finish(proc),
                "wall_s": round(time.perf_counter() - t_start, 1),
            }
        early = rng.random() < EARLY_SHARE
        deadline = t0 + rng.uniform(0, startup_s) if early else None
        while proc.poll() is None:
            now = time.perf_counter()
            if deadline is None and mark() != before:  # its first store write: work has begun
                deadline = now + rng.uniform(0, work_s / kills)
            if deadline is not None and now >= deadline:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                moments.append(
                    {
                        "after_s": round(now - t0, 3),
                        "aimed_at": "start-up" if early else "work",
                        "progress_before": before and before[0],
                        "progress_at_kill": (mark() or [None])[0],
                        **detail(),
                    }
                )
                break
            time.sleep(POLL_S)
        else:  # it finished before its kill
            return {
                "kills": len(moments),
                "moments": moments,
                "finished_before_all_kills": True,
                "result": finish(proc),
                "wall_s": round(time.perf_counter() - t_start, 1),
            }


# comparisons --------------------------------------------------------------------------------------
def _canon(raw) -> str:
    """JSON with the timing fields left out, keys sorted: NaN compares equal to NaN, floats by their repr."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in TIME_KEYS}
    return json.dumps(data, sort_keys=True)


def compare_profiles(ref: Path, db: Path) -> list[str]:
    out = []
    cols = (
        "position, query_id, task, difficulty, samples, successes, p_hat, prompt_tokens, "
        "completion_tokens_total, completion_tokens_mean, examples"
    )
    a = query(ref, f"SELECT {cols} FROM profile_queries ORDER BY position")
    b = query(db, f"SELECT {cols} FROM profile_queries ORDER BY position")
    positions = [r[0] for r in b]
    if positions != list(range(len(a))):
        out.append(
            f"profile positions: {len(positions)} rows, {len(set(positions))} distinct, expected 0..{len(a) - 1}"
        )
    out += [f"profile query at position {x[0]} differs: {x} vs {y}" for x, y in zip(a, b) if x != y]
    totals = "status, queries_done, queries_total, tokens_prompt, tokens_completion, flops"
    if query(ref, f"SELECT {totals} FROM profiles") != query(db, f"SELECT {totals} FROM profiles"):
        out.append(
            f"profile totals differ: {query(ref, f'SELECT {totals} FROM profiles')} vs "
            f"{query(db, f'SELECT {totals} FROM profiles')}"
        )
    return out


def compare_runs(ref: Path, ref_name: str, db: Path, name: str, steps: int) -> list[str]:
    out = []
    run_a = query(ref, "SELECT id, status, result FROM runs WHERE name = ?", [ref_name])[0]
    run_b = query(db, "SELECT id, status, result FROM runs WHERE name = ?", [name])[0]
    if run_b[1] != "finished":
        out.append(f"run {name} is {run_b[1]}, not finished")
    a = query(ref, "SELECT step, phase, data FROM metrics WHERE run_id = ? ORDER BY step", [run_a[0]])
    b = query(db, "SELECT step, phase, data FROM metrics WHERE run_id = ? ORDER BY step", [run_b[0]])
    if [r[0] for r in b] != list(range(steps + 1)):
        out.append(f"run {name}: metric steps are not 0..{steps} once each: {len(b)} rows")
    out += [
        f"run {name} step {x[0]}: metrics differ"
        for x, y in zip(a, b)
        if (x[0], x[1], _canon(x[2])) != (y[0], y[1], _canon(y[2]))
    ]
    ea = query(ref, "SELECT step, flops_total, accuracy, data FROM evals WHERE run_id = ? ORDER BY step", [run_a[0]])
    eb = query(db, "SELECT step, flops_total, accuracy, data FROM evals WHERE run_id = ? ORDER BY step", [run_b[0]])
    if [(s, f, acc, _canon(d)) for s, f, acc, d in ea] != [(s, f, acc, _canon(d)) for s, f, acc, d in eb]:
        out.append(f"run {name}: evals differ (steps {[r[0] for r in ea]} vs {[r[0] for r in eb]})")
    res_a, res_b = json.loads(run_a[2] or "{}"), json.loads(run_b[2] or "{}")
    skip = {"wall_seconds", "checkpoint", "run_id", "run_name"}
    diff = sorted(
        k
        for k in res_a.keys() | res_b.keys()
        if k not in skip and _canon({"v": res_a.get(k)}) != _canon({"v": res_b.get(k)})
    )
    if diff:
        out.append(f"run {name}: result differs in {diff}")
    if res_a.get("checkpoint") and res_b.get("checkpoint"):
        out += compare_checkpoints(Path(res_a["checkpoint"]), Path(res_b["checkpoint"]))
    return out


def compare_checkpoints(a: Path, b: Path) -> list[str]:
    import torch
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    out = [
        f"weights {k} differ ({b.name})"
        for k in sorted(wa.keys() | wb.keys())
        if k not in wa or k not in wb or wa[k].dtype != wb[k].dtype or not torch.equal(wa[k], wb[k])
    ]
    oa, ob = (torch.load(p / "optimizer.pt", weights_only=True) for p in (a, b))
    if not _equal(oa["optimizer"], ob["optimizer"]):
        out.append(f"optimizer state differs ({b.name})")
    return out


def torch_rng_equal(ref: Path, ref_name: str, db: Path, name: str) -> bool:
    """Whether the final checkpoints hold the same torch global RNG state (see FINDINGS)."""
    import torch

    paths = [
        json.loads(query(d, "SELECT result FROM runs WHERE name = ?", [n])[0][0])["checkpoint"]
        for d, n in ((ref, ref_name), (db, name))
    ]
    a, b = (torch.load(Path(p) / "optimizer.pt", weights_only=True)["torch_rng"] for p in paths)
    return torch.equal(a, b)


def duplicate_events(db: Path) -> list:
    """Events stored more than once for one run (a replayed step writes its plan events again)."""
    return query(
        db,
        "SELECT run_id, kind, message, count(*) FROM events WHERE kind NOT IN ('resume', 'warning', "
        "'failed', 'stopped') GROUP BY run_id, kind, message HAVING count(*) > 1 ORDER BY run_id, min(id)",
    )


def _equal(x, y) -> bool:
    import torch

    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(_equal, x, y))
    return x == y


# faults -------------------------------------------------------------------------------------------
def latest(root: Path) -> str | None:
    pointer = root / "latest"
    return pointer.read_text().strip() if pointer.exists() else None


def wait_for(proc, ready, timeout=600.0) -> None:
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(POLL_S)
    raise SystemExit(f"the trainer ended before the fault could be set up:\n{proc.err_path.read_text()[-3000:]}")


def faults(lab: Lab, db: Path, ref: Path) -> dict:
    from sgpo.train.checkpoint import checkpoint_problem

    root, out, mismatches = db.parent / "checkpoints" / "f", {}, []
    step_of = lambda name: int(name.split("-")[1]) if name else -1  # noqa: E731

    # a truncated latest checkpoint: the next resume falls back to the previous one and says so
    proc = lab.launch(lab.train_argv(db, "f"))
    wait_for(proc, lambda: step_of(latest(root)) >= 10)
    bad = latest(root)
    weights = root / bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    proc = lab.launch(["runs", "resume", "f", "--db", db])
    wait_for(proc, lambda: step_of(latest(root)) > step_of(bad))
    events = query(
        db,
        "SELECT kind, message FROM events WHERE kind IN ('warning', 'resume') AND run_id = "
        "(SELECT id FROM runs WHERE name = 'f') ORDER BY id",
    )
    warned = [m for k, m in events if k == "warning" and bad in m]
    resumed = [m for k, m in events if k == "resume"][-1]
    out["corrupt_latest"] = {
        "truncated": bad,
        "warning_event": warned[-1] if warned else None,
        "warning_on_stderr": bad in proc.err_path.read_text(),
        "resumed": resumed,
    }
    if not warned or f"step-{step_of(bad) - 5:06d}" not in resumed:
        mismatches.append(f"truncated {bad}: no fallback warning, or resumed otherwise ({resumed})")

    # a full disk: no file may grow past N bytes (below the weights file), whichever write meets it first
    conn = sqlite3.connect(db)  # an empty write-ahead log, so the store has room for a few steps
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    kept, limit = latest(root), int((root / latest(root) / "model.safetensors").stat().st_size * 0.8)
    proc = lab.launch(["runs", "resume", "f", "--db", db], file_limit=limit)
    code, err = proc.wait(), proc.err_path.read_text()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    after = latest(root)
    out["full_disk"] = {
        "file_limit_bytes": limit,
        "exit_code": code,
        "error": errors[-1] if errors else None,
        "traceback": "Traceback" in err,
        "latest_before": kept,
        "latest_after": after,
        "latest_intact": after is not None and checkpoint_problem(root / after) is None,
        "half_written_left": sorted(p.name for p in root.glob(".tmp-*")),
        "status": query(db, "SELECT status FROM runs WHERE name = 'f'")[0][0],
    }
    if (
        code != 2
        or len(errors) != 1
        or "Traceback" in err
        or after != kept
        or not out["full_disk"]["latest_intact"]
        or out["full_disk"]["half_written_left"]
    ):
        mismatches.append(f"full disk did not stop cleanly: {out['full_disk']}")

    finish(lab.launch(["runs", "resume", "f", "--db", db, "--json"]))  # space is back
    mismatches += compare_runs(ref, "x", db, "f", lab.steps)
    return {**out, "mismatches": mismatches}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs for each of profiler and trainer (20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--quick", action="store_true", help="3 kills each and a 200-step run (the test's size)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (1000; --quick 200)")
    parser.add_argument("--no-faults", action="store_true", help="skip the corrupt-checkpoint and full-disk part")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    kills = args.kills if args.kills is not None else (3 if args.quick else 20)
    steps = args.steps or (200 if args.quick else 1000)
    rng, t0 = random.Random(args.seed), time.perf_counter()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sgpo-chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lab = Lab(folder, steps)
        ref, db = folder / "ref" / "sgpo.db", folder / "chaos" / "sgpo.db"
        for store in (ref, db):  # `sgpo --db` takes a database in a folder that exists
            store.parent.mkdir(exist_ok=True)
        summary = {"kills_requested": kills, "seed": args.seed, "steps": steps, "queries": 80}

        log("profile: reference")
        _, startup, work = reference(lab, lab.profile_argv(ref), lambda: profile_mark(ref))
        log(f"profile: {kills} kills (reference start-up {startup:.1f} s, work {work:.1f} s)")
        part = chaos(lab, lambda: lab.profile_argv(db), lambda: profile_mark(db), kills, rng, startup, work)
        part.pop("result", None)
        summary["profile"] = {
            **part,
            "reference": {"startup_s": round(startup, 2), "work_s": round(work, 2)},
            "mismatches": compare_profiles(ref, db),
        }

        log("train: reference")
        _, startup, work = reference(lab, lab.train_argv(ref, "x"), lambda: run_mark(ref, "x"))
        log(f"train: {kills} kills (reference start-up {startup:.1f} s, work {work:.1f} s)")

        def train_argv():  # the run exists once a launch got as far as storing it
            return ["runs", "resume", "x", "--db", db, "--json"] if run_mark(db, "x") else lab.train_argv(db, "x")

        part = chaos(
            lab,
            train_argv,
            lambda: run_mark(db, "x"),
            kills,
            rng,
            startup,
            work,
            detail=lambda: {"latest_checkpoint": latest(db.parent / "checkpoints" / "x")},
            done=lambda: query(db, "SELECT status FROM runs WHERE name = 'x'") == [("finished",)],
        )
        part.pop("result", None)
        kinds = dict(query(db, "SELECT kind, count(*) FROM events GROUP BY kind"))
        summary["train"] = {
            **part,
            "reference": {"startup_s": round(startup, 2), "work_s": round(work, 2)},
            "resume_events": kinds.get("resume", 0),
            "warning_events": kinds.get("warning", 0),
            "mismatches": compare_runs(ref, "x", db, "x", steps),
        }
        if not args.no_faults:
            log("faults: truncated latest checkpoint, full disk")
            summary["faults"] = faults(lab, db, ref)
        # what differs without breaking the checks (rows, steps, totals, weights): reported, not counted
        dups = duplicate_events(db)
        summary["findings"] = {
            "duplicate_events": {"count": sum(n - 1 for *_, n in dups), "examples": [list(d) for d in dups[:5]]},
            "torch_rng_equal": torch_rng_equal(ref, "x", db, "x"),
        }
        parts = [summary[k] for k in ("profile", "train", "faults") if k in summary]
        summary["mismatches"] = sum(len(p["mismatches"]) for p in parts)
        summary["kills"] = {k: summary[k]["kills"] for k in ("profile", "train")}
        summary["launches"] = lab.launches
        summary["wall_s"] = round(time.perf_counter() - t0, 1)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    emit(summary, args.out, indent=1)
    return summary


if __name__ == "__main__":
    sys.exit(1 if main()["mismatches"] else 0)
