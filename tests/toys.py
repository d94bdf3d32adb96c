"""Shared builders for the tests (no tests here): a tiny random Llama over characters, and a
toy dataset on which that model succeeds sometimes, so groups carry signal from the first step.

The model's head is untied and scaled so its first-token distribution is peaked; each toy query's answer
is the character the model already emits most often for that prompt (one token, max_new_tokens=1),
so success rates sit strictly between 0 and 1 and RL can raise them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from sgpo.starter.tokenizer import build_tokenizer
from sgpo.train.grpo import Group

TOY_PROMPTS = [f"{c}{d}=" for c in "abcdefgh" for d in "0123456789"]


def tiny_model_dir(
    path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2, head_scale: float = 40.0, tied: bool = False
) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from sgpo.starter.tokenizer import build_tokenizer

    tok = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        rms_norm_eps=1e-5,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    if not tied:
        with torch.no_grad():
            model.lm_head.weight.mul_(head_scale)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def toy_dataset(path: Path, model_dir: Path, *, n: int = 40, name: str = "toy") -> Path:
    """A jsonl of n queries whose answers are the model's most likely first character for each prompt."""
    from sgpo.model import load_model, load_tokenizer

    tok, model = load_tokenizer(model_dir), load_model(model_dir)
    prompts = TOY_PROMPTS[:n]
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        probs = model(**enc).logits[:, -1].softmax(-1)
    rows = []
    for i, prompt in enumerate(prompts):
        ranked = probs[i].argsort(descending=True).tolist()
        char = next(tok.convert_ids_to_tokens(t) for t in ranked if t >= 4 and tok.convert_ids_to_tokens(t).strip())
        rows.append(
            {
                "id": f"{name}-{i:03d}",
                "prompt": prompt,
                "answer": char,
                "task": "toy" if i % 2 else "toy2",
                "difficulty": i % 3,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def first_token_success(model_dir: Path, dataset_path: Path) -> list[float]:
    """Exact success probability of each toy query at temperature 1 with one new token."""
    from sgpo.model import load_model, load_tokenizer

    tok, model = load_tokenizer(model_dir), load_model(model_dir)
    rows = [json.loads(line) for line in dataset_path.read_text().splitlines()]
    enc = tok([r["prompt"] for r in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        probs = model(**enc).logits[:, -1].softmax(-1)
    return [float(probs[i, tok.convert_tokens_to_ids(r["answer"])]) for i, r in enumerate(rows)]


def toy_config(toy, **kw):
    from sgpo.train import TrainConfig

    base = dict(
        dataset=str(toy.data),
        model=str(toy.model),
        eval_dataset=str(toy.data),
        steps=3,
        batch_rollouts=32,
        group_size=4,
        max_new_tokens=1,
        eval_samples=2,
        eval_every=2,
        lr=3e-3,
        warmup_steps=0,
        checkpoint_every=2,
        threads=1,
        strategy="grpo",
    )
    return TrainConfig(**{**base, **kw})


def toy_profile(store, toy, **kw) -> int:
    from sgpo.data import load_dataset
    from sgpo.model import resolve_model
    from sgpo.profile import ProfileConfig, run_profile

    cfg = ProfileConfig(**{"samples": 8, "max_new_tokens": 1, **kw})
    return run_profile(load_dataset(str(toy.data)), resolve_model(str(toy.model)), cfg, store)["profile_id"]


def toy_cli_args(toy, *extra) -> list[str]:
    args = [
        "--dataset",
        toy.data,
        "--model",
        toy.model,
        "--eval-dataset",
        toy.data,
        "--batch-rollouts",
        32,
        "--group-size",
        4,
        "--max-new-tokens",
        1,
        "--eval-samples",
        2,
        "--lr",
        3e-3,
        "--warmup-steps",
        0,
        "--threads",
        1,
    ]
    return [str(a) for a in [*args, *extra]]


# tiny char-level Llamas for the generation, profiling and vLLM tests ---------------------------
def _llama(tok, *, hidden=64, layers=2, tied=False, init=0.5, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    # head_dim 32: vLLM's CPU attention kernels refuse some small head sizes (16)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 32,
        num_key_value_heads=hidden // 32,
        max_position_embeddings=128,
        tie_word_embeddings=tied,
        initializer_range=init,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def make_tiny_model(folder, *, seed=0, **kw):
    """A random char-level Llama (safetensors + tokenizer). A large init keeps its logits far apart,
    so greedy decoding has no near-ties that float noise could flip."""
    tok = build_tokenizer()
    model = _llama(tok, seed=seed, **kw)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_coin_model(folder, *, hidden=64, layers=2):
    """A model whose next token is 'x' or the end token with probability 1/2 each, whatever the prompt:
    the blocks write nothing to the residual stream, every embedding is all-ones, and only the end
    token's and 'x''s output rows are non-zero. Completions are 'x' * k with k ~ Geometric(1/2)."""
    tok = build_tokenizer()
    model = _llama(tok, hidden=hidden, layers=layers)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.fill_(1.0)
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[tok.eos_token_id] = 30.0 / hidden  # logit 30 for both: the rest is e^-30 away
        model.lm_head.weight[tok.convert_tokens_to_ids("x")] = 30.0 / hidden
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def toy_groups(sizes, seed=0, equal=()):
    """GRPO groups of the given sizes with random prompts and completions; groups in `equal` get equal rewards,
    the others at least one success and one failure."""
    rng = np.random.default_rng(seed)
    out = []
    for q, g in enumerate(sizes):
        prompt = [1] + rng.integers(4, 60, size=int(rng.integers(2, 6))).tolist()
        comps = [rng.integers(4, 60, size=int(rng.integers(1, 5))).tolist() + [2] for _ in range(g)]
        rewards = np.ones(g) if q in equal else rng.integers(0, 2, size=g).astype(float)
        if q not in equal and np.ptp(rewards) == 0:
            rewards[0] = 1 - rewards[0]
        out.append(Group(query=q, prompt_ids=prompt, completions=comps, rewards=rewards))
    return out


def grads_of(m):
    """A model's gradients by parameter name (those that have one)."""
    return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


def profiled_toy(folder: Path) -> dict:
    """A tiny random policy, a 64-query toy dataset it solves about half the time, and a real profile of it
    named 'toy' (`sgpo profile` run as a user runs it), in `folder`: what the browser tests serve."""
    model = tiny_model_dir(folder / "model")
    data = toy_dataset(folder / "toy.jsonl", model, n=64)
    db = folder / "sgpo.db"
    done = subprocess.run(
        [sys.executable, "-m", "sgpo", "profile", str(data), "--model", str(model), "--samples", "8"]
        + ["--max-new-tokens", "1", "--db", str(db), "--name", "toy"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {"dir": folder, "model": model, "data": data, "db": db}
