"""Which rollout backend trains faster: transformers (sampling from the model being trained) or vLLM
colocated in the same process (weights reloaded after every optimizer step)? Side by side in one run.

    .venv/bin/python bench/train_backends.py [--steps 4] [--batch-rollouts 64] [--threads 0] [--json]

For two policies, the shipped starter (1.8M parameters) and a wider random-init Llama with the starter's
tokenizer (about 19M parameters, written to a temporary folder as safetensors), each backend runs
`sgpo train --strategy grpo` for `steps` steps (a real subprocess through the CLI; `--backend vllm`
re-runs itself under .venv-vllm). Seconds per step are read back from the store's metrics (the first
step is a warm-up and not counted) and printed with the ratio hf / vllm (> 1: vLLM is faster).
Zero-advantage groups are trained anyway (`--no-skip-zero-advantage`), since a random policy earns no
reward and the backward pass would otherwise be skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgpo.model import resolve_model  # noqa: E402
from sgpo.store import Store  # noqa: E402


def wider_policy(folder: Path) -> Path:
    """The starter's tokenizer with a random Llama of hidden 512, 6 layers (about 19M parameters)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    starter = resolve_model("starter").path
    tok = AutoTokenizer.from_pretrained(starter)
    base = LlamaConfig.from_pretrained(starter)
    cfg = LlamaConfig(
        **{
            **base.to_dict(),
            "hidden_size": 512,
            "num_hidden_layers": 6,
            "num_attention_heads": 8,
            "num_key_value_heads": 8,
            "head_dim": 64,
            "intermediate_size": 1376,
        }
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def seconds_per_step(model: str, backend: str, args, work: Path) -> dict:
    db = work / f"{Path(model).name}-{backend}.db"
    cmd = [
        sys.executable,
        "-m",
        "sgpo",
        "train",
        "--strategy",
        "grpo",
        "--model",
        model,
        "--steps",
        str(args.steps),
        "--batch-rollouts",
        str(args.batch_rollouts),
        "--eval-every",
        "0",
        "--threads",
        str(args.threads),
        "--backend",
        backend,
        "--no-skip-zero-advantage",
        "--checkpoint-every",
        str(args.steps + 1),
        "--run-name",
        f"{Path(model).name}-{backend}",
        "--db",
        str(db),
        "--json",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    store = Store(db)
    m = store.metrics_frame(store.find_run(f"{Path(model).name}-{backend}")["id"])
    m = m[m.step > 0].sort_values("step")
    per_step = m["wall_seconds"].diff().dropna().tolist()  # step 2 onwards: step 1 is the warm-up
    if not per_step:
        raise SystemExit(f"{model} on {backend}: fewer than 2 steps in the store ({m[['step', 'wall_seconds']]})")
    return {"seconds_per_step": statistics.median(per_step), "steps_timed": len(per_step)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch-rollouts", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = {"starter (1.8M)": "starter", "wider (19M, random)": str(wider_policy(work / "wider"))}
        for label, model in models.items():
            n_params = resolve_model(model).n_params
            row = {"n_params": n_params}
            for backend in ("hf", "vllm"):
                row[backend] = seconds_per_step(model, backend, args, work)
            row["hf_over_vllm"] = row["hf"]["seconds_per_step"] / row["vllm"]["seconds_per_step"]
            out[label] = row
            print(
                f"{label:<22} hf {row['hf']['seconds_per_step']:.2f} s/step  vllm "
                f"{row['vllm']['seconds_per_step']:.2f} s/step  hf/vllm {row['hf_over_vllm']:.2f}x "
                f"({args.batch_rollouts} rollouts/step, threads {args.threads or os.cpu_count()})",
                flush=True,
            )
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
