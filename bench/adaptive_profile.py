"""Cheaper profiling: does `sgpo profile --adaptive` reach the plan buckets of a fixed N=16 profile with
half the FLOPs of fixed N=8?

    .venv/bin/python bench/adaptive_profile.py                  # all 4,000 builtin:train queries (~11 min, 2 cores)
    .venv/bin/python bench/adaptive_profile.py --queries 1000   # a seeded random 1,000 of them
    .venv/bin/python bench/adaptive_profile.py --db /tmp/a.db   # keep the profiles: a re-run reuses them for free

Under the starter policy, the same queries are profiled by a fixed N=16 reference (its own seed, so its
samples are independent of the others'), fixed N=4 and N=8, and --adaptive variants. For each: FLOPs per
query, mean samples per query, and agreement with the reference of the planner's decision (trivial /
learnable / unsolved) and of its bucket (decision and group size: unsolved, trivial, G=4, G=8) at the
default plan knobs. Differences from N=8 come with their paired standard error (the same queries against
the same reference). Results go to bench/results/adaptive_profile.json and a table on stdout.

Measured on all 4,000 queries: no. At equal bucket agreement adaptive costs about 0.84x the FLOPs of
N=8 (--samples 12 --confidence 0.7: +0.006 +- 0.008 bucket agreement at 0.84x), and N=4, at 0.5x,
loses 0.09. The target looks out of reach of any stopping rule while p_hat = s / n is stored: a third of
the queries show no success in 16 samples yet many have p of a few percent, so "unsolved" needs many
failures to be sure of; and about half are learnable with p spread across the bucket edges (0.3, 0.7,
0.75), where even N=8 and N=16 disagree often and more samples buy little.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgpo.adaptive import TRIVIAL, UNSOLVED, buckets  # noqa: E402
from sgpo.data import load_dataset  # noqa: E402
from sgpo.generate.backends import make_generator  # noqa: E402
from sgpo.model import resolve_model  # noqa: E402
from sgpo.profile import ProfileConfig, run_profile, subset_positions  # noqa: E402
from sgpo.store import Store  # noqa: E402

REFERENCE = "fixed N=16"
BASELINE = "fixed N=8"
VARIANTS = {  # name -> ProfileConfig knobs (besides seed and sampling)
    REFERENCE: {"samples": 16},
    BASELINE: {"samples": 8},
    "fixed N=4": {"samples": 4},
    "adaptive defaults N<=8": {"adaptive": True},
    "adaptive N<=12": {"adaptive": True, "samples": 12},
    "adaptive N<=12 c=0.7": {"adaptive": True, "samples": 12, "confidence": 0.7},
    "adaptive N<=12 c=0.65": {"adaptive": True, "samples": 12, "confidence": 0.65},
    "adaptive N<=16 c=0.7": {"adaptive": True, "samples": 16, "confidence": 0.7},
}


def decisions(codes: np.ndarray) -> np.ndarray:
    """Bucket codes -> decision codes: unsolved, trivial, or learnable (any group size, as 2)."""
    return np.where((codes == UNSOLVED) | (codes == TRIVIAL), codes, 2)


def compare(frame, reference, baseline=None) -> dict:
    """Agreement of `frame`'s decisions and buckets with `reference`'s, query by query (aligned by id);
    with `baseline`, the paired difference from the baseline's agreement and its standard error."""
    ref = reference.set_index("id").loc[frame["id"]]
    mine, theirs = buckets(frame["p_hat"].to_numpy()), buckets(ref["p_hat"].to_numpy())
    hits = {"decision": decisions(mine) == decisions(theirs), "bucket": mine == theirs}
    out = {f"{k}_agreement": float(v.mean()) for k, v in hits.items()}
    if baseline is not None:
        base_b = buckets(baseline.set_index("id").loc[frame["id"], "p_hat"].to_numpy())
        base = {"decision": decisions(base_b) == decisions(theirs), "bucket": base_b == theirs}
        for k in hits:
            d = hits[k].astype(float) - base[k].astype(float)
            out[f"{k}_agreement_minus_baseline"] = float(d.mean())
            out[f"{k}_agreement_minus_baseline_se"] = float(d.std(ddof=1) / np.sqrt(len(d)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter")
    parser.add_argument("--queries", type=int, default=None, help="a seeded random subset of this many queries")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the variants (the reference: seed + 1)")
    parser.add_argument(
        "--db", type=Path, default=None, help="store to keep the profiles in (default: a temporary one)"
    )
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated names from: " + ", ".join(VARIANTS)
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptive_profile.json")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    dataset, ref = load_dataset("builtin:train"), resolve_model(args.model)
    if args.queries:  # the library's own subset, picked once so that every variant profiles the same queries
        chosen = subset_positions(len(dataset), ProfileConfig(queries=args.queries, seed=args.seed))
        if chosen is not None:
            dataset = dataclasses.replace(
                dataset,
                frame=dataset.frame.iloc[chosen].reset_index(drop=True),
                hash=f"{dataset.hash}-subset-{args.queries}-seed-{args.seed}",
            )
    generator = make_generator("hf", ref.path, batch_size=ProfileConfig().batch_size)
    names = [REFERENCE, BASELINE] + [n for n in args.variants.split(",") if n not in (REFERENCE, BASELINE)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.db or Path(tmp) / "adaptive.db")
        frames, rows = {}, {}
        for name in names:
            seed = args.seed + 1 if name == REFERENCE else args.seed
            config = ProfileConfig(**VARIANTS[name], seed=seed)
            print(f"[{name}] profiling {len(dataset)} queries ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            summary = run_profile(dataset, ref, config, store, generator=generator, progress=False)
            frames[name] = store.profile_frame(summary["profile_id"])
            rows[name] = {
                "config": {k: v for k, v in config.to_dict().items() if v != ProfileConfig.spec(k).default},
                "queries": summary["queries"],
                "completions": summary["completions"],
                "samples_per_query": summary["completions"] / summary["queries"],
                "flops": summary["flops"],
                "flops_per_query": summary["flops"] / summary["queries"],
                "seconds": summary["seconds"],
                "wall_seconds": time.perf_counter() - start,
                "reused": summary["reused"],
            }
    for name in names:
        rows[name]["flops_vs_fixed_n8"] = rows[name]["flops"] / rows[BASELINE]["flops"]
        rows[name].update(compare(frames[name], frames[REFERENCE], None if name == REFERENCE else frames[BASELINE]))
    ref_codes = buckets(frames[REFERENCE]["p_hat"].to_numpy())
    result = {
        "dataset": "builtin:train",
        "queries": len(dataset),
        "model": str(ref.path),
        "n_params": ref.n_params,
        "seed": args.seed,
        "reference": REFERENCE,
        "baseline": BASELINE,
        "reference_buckets": {str(c): int((ref_codes == c).sum()) for c in np.unique(ref_codes)},
        "variants": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)


def report(result: dict) -> None:
    print(
        f"\n{result['queries']} builtin:train queries under {Path(result['model']).name}; agreement with "
        f"{result['reference']} (independent samples); differences from {result['baseline']} +- 1 s.e."
    )
    print(
        f"{'variant':<26}{'samples/q':>10}{'FLOPs/q':>10}{'vs N=8':>8}{'decision':>10}{'bucket':>8}{'bucket - N=8':>16}"
    )
    for name, r in result["variants"].items():
        diff = (
            ""
            if "bucket_agreement_minus_baseline" not in r
            else f"{r['bucket_agreement_minus_baseline']:+.3f}+-{r['bucket_agreement_minus_baseline_se']:.3f}"
        )
        print(
            f"{name:<26}{r['samples_per_query']:>10.2f}{r['flops_per_query']:>10.3g}{r['flops_vs_fixed_n8']:>8.2f}"
            f"{r['decision_agreement']:>10.3f}{r['bucket_agreement']:>8.3f}{diff:>16}"
        )


if __name__ == "__main__":
    main()
