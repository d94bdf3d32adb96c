"""Throughput of the profiler's generation path against a naive loop and the raw engine, per backend.

    .venv/bin/python bench/profile_throughput.py [--model starter] [--queries 256] [--naive-queries 32]
                                                 [--samples 8] [--max-new-tokens 20] [--repeats 3] [--no-full]

On the same builtin:train prompts, for hf and vllm side by side:
  ours   run_profile (batched generation + scoring + one SQLite transaction per batch)
  naive  one engine call per query (N samples each): transformers `generate` or vLLM `LLM.generate`
  raw    the engine alone on all prompts at once: one batched `generate`, or one `LLM.generate`
and the ratios ours/naive (target >= 5x) and ours/raw (target >= 0.9x) in completions per second,
then the time our path takes to profile the whole builtin:train split (4000 queries x N).
Best of --repeats runs (ours, raw); model loading is not timed. The vLLM half runs under .venv-vllm when
this interpreter lacks vLLM.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgpo.data import load_dataset  # noqa: E402
from sgpo.generate.backends import make_generator  # noqa: E402
from sgpo.model import resolve_model  # noqa: E402
from sgpo.profile import ProfileConfig, run_profile  # noqa: E402
from sgpo.store import Store  # noqa: E402


def timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    completion_tokens = fn()
    return time.perf_counter() - start, completion_tokens


def best_of(paths: dict, repeats: int) -> dict:
    """{name: (seconds, completion tokens)} of the fastest of `repeats` runs per path. The paths take turns
    in each round, so a burst of load from other work hits them alike; the fastest run is the least
    disturbed one."""
    best: dict = {}
    for _ in range(repeats):
        for name, fn in paths.items():
            run = timed(fn)
            if name not in best or run[0] < best[name][0]:
                best[name] = run
    return best


def row(path: str, queries: int, samples: int, seconds: float, completion_tokens: int) -> dict:
    return {
        "path": path,
        "queries": queries,
        "completions": queries * samples,
        "seconds": seconds,
        "completions_per_s": queries * samples / seconds,
        "tokens_per_s": completion_tokens / seconds,
    }


def ours(gen, dataset, ref, args, limit: int, db: Path):
    def run():
        config = ProfileConfig(
            samples=args.samples,
            max_new_tokens=args.max_new_tokens,
            backend=gen.backend,
            limit=limit,
            seed=int(time.time()),
        )  # fresh seed: never a reused profile
        return run_profile(dataset, ref, config, Store(db), generator=gen, progress=False)["tokens"]["completion"]

    return run


def hf_generate(gen, prompts, args) -> int:
    """transformers' own `generate` over `prompts` with N samples each; returns the generated tokens."""
    import torch

    tok = gen.tokenizer
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        seqs = gen.model.generate(
            **enc,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            num_return_sequences=args.samples,
            max_new_tokens=args.max_new_tokens,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
    new = seqs[:, enc["input_ids"].shape[1] :]
    # tokens up to and including the end token; the padding after it is not generated work
    ended = (new == tok.eos_token_id).cumsum(1)
    return int(((ended == 0) | ((ended == 1) & (new == tok.eos_token_id))).sum())


def raw_hf(gen, prompts, args):
    return lambda: hf_generate(gen, prompts, args)


def naive_hf(gen, prompts, args):
    return lambda: sum(hf_generate(gen, [p], args) for p in prompts)


def raw_vllm(gen, prompts, args):
    def run():
        params = gen._sampling_params(n=args.samples, temperature=1.0, max_tokens=args.max_new_tokens, seed=0)
        outs = gen.llm.generate(prompts, params, use_tqdm=False)
        return sum(len(c.token_ids) for o in outs for c in o.outputs)

    return run


def naive_vllm(gen, prompts, args):
    def run():
        params = gen._sampling_params(n=args.samples, temperature=1.0, max_tokens=args.max_new_tokens, seed=0)
        return sum(
            len(c.token_ids) for p in prompts for o in gen.llm.generate([p], params, use_tqdm=False) for c in o.outputs
        )

    return run


def bench_backend(backend: str, args) -> dict:
    ref = resolve_model(args.model)
    dataset = load_dataset("builtin:train")
    # spread over the split (it is grouped by task), so every path sees every task
    step = max(1, len(dataset) // args.queries)
    dataset = dataclasses.replace(
        dataset, frame=dataset.frame.iloc[::step].reset_index(drop=True), hash=f"{dataset.hash}-every-{step}"
    )
    prompts = dataset.frame["prompt"].tolist()[: args.queries]
    kwargs = {"seed": 0} if backend == "vllm" else {"batch_size": ProfileConfig().batch_size}
    gen = make_generator(backend, ref.path, **kwargs)
    gen.generate(prompts[:16], n=args.samples, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)  # warm-up
    raw, naive = (raw_vllm, naive_vllm) if backend == "vllm" else (raw_hf, naive_hf)
    with tempfile.TemporaryDirectory() as tmp:
        best = best_of(
            {"ours": ours(gen, dataset, ref, args, args.queries, Path(tmp) / "a.db"), "raw": raw(gen, prompts, args)},
            args.repeats,
        )
        best["naive"] = timed(naive(gen, prompts[: args.naive_queries], args))  # slow: once is enough
        rows = [
            row(name, args.naive_queries if name == "naive" else args.queries, args.samples, *best[name])
            for name in ("ours", "naive", "raw")
        ]
        full = None
        if args.full:
            whole = load_dataset("builtin:train")
            config = ProfileConfig(samples=args.samples, max_new_tokens=args.max_new_tokens, backend=backend)
            start = time.perf_counter()
            summary = run_profile(whole, ref, config, Store(Path(tmp) / "full.db"), generator=gen, progress=True)
            full = {
                "queries": summary["queries"],
                "seconds": time.perf_counter() - start,
                "mean_p_hat": summary["mean_p_hat"],
            }
    return {"backend": backend, "model": str(ref.path), "n_params": ref.n_params, "rows": rows, "full": full}


def run_vllm_elsewhere(args) -> dict:
    from sgpo.generate.vllm import vllm_importable, vllm_python

    if vllm_importable():
        return bench_backend("vllm", args)
    python = vllm_python()
    if python is None:
        raise SystemExit("vLLM is not installed here and .venv-vllm is missing: run `make setup-vllm`")
    argv = [
        python,
        __file__,
        "--backends",
        "vllm",
        "--json",
        "--model",
        args.model,
        "--queries",
        str(args.queries),
        "--naive-queries",
        str(args.naive_queries),
        "--samples",
        str(args.samples),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--repeats",
        str(args.repeats),
        "--full" if args.full else "--no-full",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if args.threads:  # vLLM's CPU worker binds one OpenMP thread per core unless told otherwise
        env.update(OMP_NUM_THREADS=str(args.threads), VLLM_CPU_OMP_THREADS_BIND="nobind")
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])["vllm"]


def report(results: dict, args) -> None:
    print(
        f"\nN={args.samples} samples, temperature 1.0, max {args.max_new_tokens} new tokens, "
        f"threads {args.threads or 'default'}; "
        f"model {next(iter(results.values()))['model']} ({next(iter(results.values()))['n_params']:,} params)"
    )
    print(f"{'backend':<8}{'path':<8}{'queries':>8}{'seconds':>9}{'completions/s':>15}{'tokens/s':>10}")
    for backend, res in results.items():
        by = {r["path"]: r for r in res["rows"]}
        for r in res["rows"]:
            print(
                f"{backend:<8}{r['path']:<8}{r['queries']:>8}{r['seconds']:>9.2f}{r['completions_per_s']:>15,.0f}"
                f"{r['tokens_per_s']:>10,.0f}"
            )
        vs_naive = by["ours"]["completions_per_s"] / by["naive"]["completions_per_s"]
        vs_raw = by["ours"]["completions_per_s"] / by["raw"]["completions_per_s"]
        print(
            f"{backend:<8}ours/naive {vs_naive:.1f}x (target >= 5x, {'ok' if vs_naive >= 5 else 'MISSED'})   "
            f"ours/raw {vs_raw:.2f}x (target >= 0.9x, {'ok' if vs_raw >= 0.9 else 'MISSED'})"
        )
    for backend, res in results.items():
        full = res["full"]
        if full:
            print(
                f"{backend:<8}whole builtin:train ({full['queries']} queries x {args.samples}): {full['seconds']:.1f} s, "
                f"mean p_hat {full['mean_p_hat']:.3f}"
            )
        else:
            ours_rate = next(r for r in res["rows"] if r["path"] == "ours")["completions_per_s"]
            print(
                f"{backend:<8}whole builtin:train (4000 queries x {args.samples}): about "
                f"{4000 * args.samples / ours_rate:.0f} s (extrapolated; --full measures it)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter")
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--naive-queries", type=int, default=32)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs for ours and raw")
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument(
        "--full",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also profile the whole builtin:train split (default: on)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for both halves (default: torch's and vLLM's own choice); on a busy shared "
        "machine 1 can be several times faster than 2",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = {}
    for backend in args.backends.split(","):
        print(f"[{backend}] measuring ...", file=sys.stderr, flush=True)
        results[backend] = run_vllm_elsewhere(args) if backend == "vllm" else bench_backend(backend, args)
    if args.json:
        print(json.dumps(results))
    else:
        report(results, args)


if __name__ == "__main__":
    main()
