"""One command that checks the GPU path end to end and prints one JSON summary (about 8 minutes on an H200).

    python bench/gpu_check.py                 # cuda, bfloat16, a ~0.5B random Llama
    python bench/gpu_check.py --smoke         # the same path on CPU with a tiny model (the test suite runs it)

Builds a random-init Llama-style model from a config written here (no download; the starter's character
tokenizer is enough for throughput), saves it as safetensors, then:
1. profiles `--queries` built-in train queries x 8 samples with `--device cuda --dtype bfloat16`;
2. trains `--steps` steps with our engine, and `--steps` with the TRL engine, on the same data;
and reports completions/s, seconds per step, peak GPU memory and achieved TFLOP/s (our FLOPs accounting
divided by wall time: 2 x params x tokens to generate, 6 x to train).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, speed  # noqa: E402

SIZES = {  # hidden, layers, heads, intermediate: about 0.48B parameters / about 0.4M
    "full": (1280, 24, 20, 3456),
    "smoke": (64, 2, 4, 128),
}


def build_model(folder: Path, size: str) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sgpo.starter.tokenizer import build_tokenizer

    hidden, layers, heads, inter = SIZES[size]
    tok = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def peak_memory_gib(device: str):
    import torch

    if device != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


def reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny model, few queries and steps")
    ap.add_argument("--queries", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    device, dtype = ("cpu", "float32") if args.smoke else ("cuda", "bfloat16")
    queries = args.queries or (32 if args.smoke else 512)
    steps = args.steps or (2 if args.smoke else 20)

    from sgpo import runs
    from sgpo.data import load_dataset
    from sgpo.model import resolve_model
    from sgpo.profile import ProfileConfig, run_profile
    from sgpo.store import Store
    from sgpo.train import TrainConfig

    out = {"device": device, "dtype": dtype, "queries": queries, "steps": steps}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.time()
        out["n_params"] = build_model(tmp / "model", "smoke" if args.smoke else "full")
        out["build_seconds"] = round(time.time() - t0, 1)
        store = Store(tmp / "gpu.db")
        ref = resolve_model(str(tmp / "model"))
        reset_peak(device)
        t0 = time.perf_counter()
        profile = run_profile(
            load_dataset("builtin:train"),
            ref,
            ProfileConfig(samples=8, limit=queries, device=device, dtype=dtype, batch_size=128),
            store,
            name="gpu-profile",
            progress=False,
        )
        seconds = time.perf_counter() - t0
        out["profile"] = {
            "completions_per_s": round(queries * 8 / seconds, 1),
            "seconds": round(seconds, 1),
            "tflops_per_s": round(profile["flops"] / seconds / 1e12, 3),
            "peak_memory_gib": peak_memory_gib(device),
        }
        for engine in ("native", "trl"):
            reset_peak(device)
            cfg = TrainConfig(
                strategy="grpo",
                engine=engine,
                model=str(tmp / "model"),
                steps=steps,
                batch_rollouts=256 if not args.smoke else 32,
                group_size=8,
                eval_every=0,
                device=device,
                dtype=dtype,
                checkpoint_every=10**6,
                lr=1e-5,
            )
            t0 = time.perf_counter()
            result = runs.train(cfg, store, name=f"gpu-{engine}")
            seconds = time.perf_counter() - t0
            m = runs.metrics(f"gpu-{engine}", store).iloc[1:]
            train_flops = result["flops_rollout"] + result["flops_train"]
            out[engine] = {
                **speed(m),
                "tflops_per_s": round(train_flops / max(m["step_seconds"].sum(), 1e-9) / 1e12, 3),
                "wall_seconds": round(seconds, 1),
                "peak_memory_gib": peak_memory_gib(device),
                "reward_first": float(m["reward_mean"].iloc[0]),
                "reward_last": float(m["reward_mean"].iloc[-1]),
            }
    emit(out, args.out)


if __name__ == "__main__":
    main()
