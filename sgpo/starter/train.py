"""Train the shipped starter policy from scratch: a 1.8M-parameter Llama over characters.

Recipe (measured on 2 CPU cores; README, "The starter policy"): the four built-in families mixed equally, levels
uniform, loss on the answer and end token only, AdamW with warmup and cosine decay, each batch sorted
by length and cut into micro-batches. A model trained to convergence solves almost everything, so
the useful policy exists only mid-training: we checkpoint on a schedule, measure the p_hat spread of
each checkpoint on a fixed slice of the *train* split (never eval), and keep the one whose five bands
are most even (largest smallest band).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sgpo.errors import ConfigError
from sgpo.generate.hf import HFGenerator
from sgpo.starter.tokenizer import build_tokenizer
from sgpo.tasks.families import FAMILIES, sample
from sgpo.tasks.rewards import exact_match

BANDS = ("trivial", "G=2", "G=4", "G=8", "unsolved")  # p>0.75, [0.5,0.75], [0.25,0.5), (0,0.25), 0


@dataclass
class StarterConfig:
    seed: int = 0
    hidden_size: int = 192
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 512
    batch_size: int = 128
    micro_batches: int = 4
    lr: float = 2e-3
    warmup_steps: int = 100
    schedule_steps: int = 2000  # cosine horizon; training stops earlier, at the chosen checkpoint
    first_check: int = 300
    check_every: int = 50
    max_steps: int = 600  # the spread peaks around steps 400-600; later checkpoints are mostly trivial
    stop_when_trivial: float = 0.45  # past the sweet spot once this many queries are trivial
    select_queries: int = 960
    samples: int = 8
    temperature: float = 1.0
    max_new_tokens: int = 20


def make_model(cfg: StarterConfig, vocab_size: int):

    mcfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.heads,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        rms_norm_eps=1e-5,
    )
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(mcfg)


def band_of(p_hat: np.ndarray) -> np.ndarray:
    """Index into BANDS for each success rate."""
    return np.select([p_hat > 0.75, p_hat >= 0.5, p_hat >= 0.25, p_hat > 0], [0, 1, 2, 3], default=4)


def spread(p_hat: np.ndarray) -> dict[str, float]:
    counts = np.bincount(band_of(np.asarray(p_hat)), minlength=5)
    return {name: float(c) / len(p_hat) for name, c in zip(BANDS, counts)}


def measure_p_hat(model, tok, rows: list[dict], cfg: StarterConfig, seed: int = 0) -> np.ndarray:
    gen = HFGenerator(model=model, tokenizer=tok, batch_size=256)
    outs = gen.generate(
        [r["prompt"] for r in rows],
        n=cfg.samples,
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens,
        seed=seed,
    )
    return np.array([np.mean([exact_match(s.text, r["answer"]) for s in o.samples]) for o, r in zip(outs, rows)])


def _encode(tok, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    p = tok(prompt)["input_ids"]  # BOS + prompt
    a = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return p + a, [-100] * len(p) + a


def _lr(step: int, cfg: StarterConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.schedule_steps - cfg.warmup_steps))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def train_starter(out_dir: Path, train_rows: list[dict], eval_prompts: set[str], cfg: StarterConfig, log=print) -> dict:
    """Train, select the most even checkpoint, save it to out_dir; returns the report."""
    if cfg.max_steps < cfg.first_check:
        raise ConfigError(
            f"--max-steps {cfg.max_steps} ends before the first spread check at step {cfg.first_check}: "
            f"give at least {cfg.first_check}"
        )
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tok = build_tokenizer()
    model = make_model(cfg, len(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    rng = random.Random(cfg.seed)
    families = list(FAMILIES)
    select_rows = random.Random(cfg.seed + 1).sample(train_rows, min(cfg.select_queries, len(train_rows)))
    best: dict[str, Any] | None = None
    history: list[dict] = []
    t0 = time.time()
    for step in range(cfg.max_steps):
        batch: list[tuple[list[int], list[int]]] = []
        while len(batch) < cfg.batch_size:
            prompt, answer, _ = sample(families[len(batch) % len(families)], rng)
            if prompt not in eval_prompts:  # the held-out split is never trained on
                batch.append(_encode(tok, prompt, answer))
        batch.sort(key=lambda x: len(x[0]))
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        model.train()
        opt.zero_grad(set_to_none=True)
        n_tokens = sum(sum(1 for y in lab if y != -100) for _, lab in batch)
        size = math.ceil(len(batch) / cfg.micro_batches)
        for i in range(0, len(batch), size):
            micro = batch[i : i + size]
            width = max(len(ids) for ids, _ in micro)
            ids = torch.tensor([x + [tok.pad_token_id] * (width - len(x)) for x, _ in micro])
            labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in micro])
            logits = model(input_ids=ids).logits[:, :-1]
            loss = (
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
                )
                / n_tokens
            )  # token mean over the whole batch
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if done >= cfg.first_check and (done - cfg.first_check) % cfg.check_every == 0:
            p_hat = measure_p_hat(model, tok, select_rows, cfg, seed=cfg.seed)
            bands = spread(p_hat)
            history.append(
                {"step": done, "seconds": round(time.time() - t0, 1), "loss": round(float(loss.detach()), 4), **bands}
            )
            log(f"step {done:5d}  {time.time() - t0:6.0f}s  " + "  ".join(f"{k} {v:.2f}" for k, v in bands.items()))
            if best is None or min(bands.values()) > min(best["bands"].values()):
                best = {"step": done, "bands": bands, "state": {k: v.clone() for k, v in model.state_dict().items()}}
                _save(out_dir, model, tok, {"chosen_step": done, "selection_spread": bands, "history": history})
            if bands["trivial"] > cfg.stop_when_trivial:
                break
    assert best is not None  # the first check, at cfg.first_check <= cfg.max_steps, sets it
    model.load_state_dict(best["state"])
    report = {
        "chosen_step": best["step"],
        "selection_spread": best["bands"],
        "history": history,
        "train_seconds": round(time.time() - t0, 1),
        "config": asdict(cfg),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    _save(out_dir, model, tok, report)
    return report


def _save(out_dir: Path, model, tok, report: dict) -> None:
    """The best checkpoint so far, so that stopping the script early still leaves a usable policy."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    (out_dir / "starter.json").write_text(json.dumps(report, indent=2))
