"""transformers backend: batched sampling across many prompts at once (left padding, KV cache,
num_return_sequences, stop at the end token). Deterministic for a seed on CPU."""

from __future__ import annotations

from pathlib import Path

import torch

from sgpo.generate import Generation, Sample, check_sampling


class HFGenerator:
    backend = "hf"

    def __init__(self, model_dir: str | Path | None = None, *, model=None, tokenizer=None,
                 batch_size: int = 256, dtype: torch.dtype = torch.float32):
        if model is None:
            from sgpo.model import load_model, load_tokenizer

            tokenizer = load_tokenizer(model_dir)
            model = load_model(model_dir, dtype=dtype)
        self.model, self.tokenizer = model, tokenizer
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size  # prompts per generate call

    @torch.no_grad()
    def generate(self, prompts: list[str], *, n: int, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Generation]:
        check_sampling(n, temperature, max_new_tokens)
        out: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start:start + self.batch_size]
            out.extend(self._generate_chunk(chunk, n, temperature, max_new_tokens, seed + start))
        return out

    def _generate_chunk(self, prompts, n, temperature, max_new_tokens, seed) -> list[Generation]:
        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True)
        was_training = self.model.training
        self.model.eval()
        torch.manual_seed(seed)
        greedy = temperature == 0
        sampling = dict(do_sample=False) if greedy else dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        # Greedy samples are all equal and transformers refuses n > 1 without sampling: make one, repeat it.
        per_prompt = 1 if greedy else n
        seqs = self.model.generate(
            **enc, **sampling, num_return_sequences=per_prompt, max_new_tokens=max_new_tokens,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        )
        if was_training:
            self.model.train()
        gen = seqs[:, enc["input_ids"].shape[1]:].tolist()
        eos, results = tok.eos_token_id, []
        for i, prompt in enumerate(prompts):
            ids = enc["input_ids"][i][enc["attention_mask"][i].bool()].tolist()
            g = Generation(prompt=prompt, prompt_ids=ids)
            for row in gen[i * per_prompt:(i + 1) * per_prompt]:
                finished = eos in row
                row = row[: row.index(eos) + 1] if finished else row
                text = tok.decode(row, skip_special_tokens=True)
                g.samples.extend(Sample(text=text, token_ids=list(row), finished=finished) for _ in range(n // per_prompt))
            results.append(g)
        return results
