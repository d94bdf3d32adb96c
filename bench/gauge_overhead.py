"""What the critical-batch gauge costs: one GRPO step's update with the gauge off and on, alternating on the same
batches, against the whole step's time (generation + rewards + update).

    .venv/bin/python bench/gauge_overhead.py [--dataset builtin:train] [--model starter] [--batches 64,256]
                                             [--reps 10] [--chunks 2] [--threads 1] [--json]

One engine per batch size (strategy grpo, the starter policy by default, one torch thread) generates three
batches that hold two informative groups or more (else the gauge has nothing to compare); each is then updated
`reps` times with the gauge off and on (--gauge-chunks 0 and 2), in alternating order, so a busy machine hurts
both alike. Every update starts from the same weights and optimizer state. Prints, per batch size, the median
generation and update seconds, the median extra seconds of the gauge (paired differences), and that as a share
of a step (generation + update): the figure TrainConfig's default for --gauge-chunks rests on (<= 5%).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgpo.store import Store  # noqa: E402
from sgpo.train import TrainConfig  # noqa: E402
from sgpo.train.engine import STEP_SEED  # noqa: E402
from sgpo.train.loop import Trainer  # noqa: E402
from sgpo.train.setup import prepare  # noqa: E402

LIMIT_SHARE = 0.05  # the gauge is on by default only if it costs at most this share of a step


def measure(args, batch: int, work: Path) -> dict:
    store = Store(work / f"b{batch}" / "sgpo.db")
    cfg = TrainConfig(
        strategy="grpo",
        dataset=args.dataset,
        model=args.model,
        eval_every=0,
        batch_rollouts=batch,
        lr=args.lr,
        warmup_steps=0,
        threads=args.threads,
        gauge_chunks=0,
    )
    prep = prepare(cfg, store, name=f"b{batch}")
    engine = Trainer(prep, store, store.create_run(**prep.run_row()), log=lambda msg: None).engine
    batches, generation, step = [], [], 0
    while len(batches) < 3:  # three batches with two informative groups or more
        step += 1
        t0 = time.perf_counter()
        b = engine.sampler.next_batch(step, engine.rollouts, cfg.seed * STEP_SEED + step)
        generation.append(time.perf_counter() - t0)
        if sum(g.informative for g in b.groups) >= 2:
            batches.append(b)
    start = copy.deepcopy((engine.model.state_dict(), engine.optimizer.state_dict()))
    diffs, off_times = [], []
    for rep in range(args.reps):
        for b in batches:
            times = {}
            for on in (False, True) if rep % 2 else (True, False):
                engine.model.load_state_dict(start[0])
                engine.optimizer.load_state_dict(start[1])
                engine.loss_cfg.gauge_chunks = args.chunks if on else 0
                t0 = time.perf_counter()
                update = engine.update(b.groups, lr=args.lr)
                times[on] = time.perf_counter() - t0
                assert not on or len(update.chunks[0]) >= 2  # the gauge did read two chunks
            diffs.append(times[True] - times[False])
            off_times.append(times[False])
    gen, off, extra = statistics.median(generation), statistics.median(off_times), statistics.median(diffs)
    return {
        "batch_rollouts": batch,
        "pairs": len(diffs),
        "generation_seconds": gen,
        "update_seconds_off": off,
        "gauge_seconds": extra,
        "overhead_share_of_step": extra / (gen + off),
    }


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="builtin:train")
    ap.add_argument("--model", default="starter")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--chunks", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = [measure(args, int(b), Path(tmp)) for b in args.batches.split(",")]
    if args.json:
        print(json.dumps(out, indent=1))
        return out
    print(f"{'rollouts/step':>13} {'generation s':>13} {'update s':>9} {'gauge s':>9} {'share of step':>14}")
    for r in out:
        print(
            f"{r['batch_rollouts']:>13} {r['generation_seconds']:>13.3f} {r['update_seconds_off']:>9.3f} "
            f"{r['gauge_seconds']:>9.4f} {r['overhead_share_of_step']:>14.1%}"
        )
    worst = max(r["overhead_share_of_step"] for r in out)
    print(f"gauge overhead: at most {worst:.1%} of a step (limit for on by default: {LIMIT_SHARE:.0%})")
    return out


if __name__ == "__main__":
    main()
