"""transformers backend: batched sampling across many prompts at once. Deterministic for a seed on CPU.

Our own decoding loop rather than `model.generate`, for two savings that matter when N samples of short
answers are drawn per prompt (profiling, GRPO rollouts), about 3x on the starter policy:
- each prompt is prefilled once and its KV cache repeated N times (generate prefills N copies);
- finished samples leave the batch at once (generate keeps computing them, as padding, until the
  longest sample of the batch ends).
Greedy decoding picks the same tokens as `generate` and as vLLM in fp32. Models whose forward takes no
position_ids (rare) go through `model.generate`.

Memory is bounded: a forward batch holds at most `max_sequences` samples (256 by default), so fewer
prompts go in a batch when N is large, and the samples of one prompt beyond the bound are drawn in
chunks that continue the same random stream (`--samples 1024` is four batches of 256, never one).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from transformers import DynamicCache

from sgpo.generate import Generation, Sample, check_sampling
from sgpo.model import load_model, load_tokenizer

MAX_SEQUENCES = 256


class HFGenerator:
    backend = "hf"

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        model=None,
        tokenizer=None,
        batch_size: int = 256,
        max_sequences: int = MAX_SEQUENCES,
        dtype: torch.dtype = torch.float32,
        device: str = "cpu",
    ):
        if model is None:
            if model_dir is None:
                raise TypeError("HFGenerator needs a model folder (model_dir) or a loaded model and tokenizer")
            tokenizer = load_tokenizer(model_dir)
            model = load_model(model_dir, dtype=dtype).to(device)
        self.model, self.tokenizer = model, tokenizer
        self.tokenizer.padding_side = "left"
        self.batch_size = batch_size  # prompts per forward batch, at most
        self.max_sequences = max_sequences  # samples (prompts x N) per forward batch, at most
        # vLLM stops at the generation config's end tokens too (instruct models often have several)
        extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        extra = extra if isinstance(extra, list) else [extra]
        self.eos_ids = {t for t in [tokenizer.eos_token_id, *extra] if t is not None}
        self._own_loop = "position_ids" in inspect.signature(model.forward).parameters

    @torch.no_grad()
    def generate(
        self, prompts: list[str], *, n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[Generation]:
        check_sampling(n, temperature, max_new_tokens)
        was_training = self.model.training
        self.model.eval()
        try:
            per_prompt = 1 if temperature == 0 else n  # greedy samples are all equal: one is decoded
            step = max(1, min(self.batch_size, self.max_sequences // per_prompt))
            out: list[Generation] = []
            for start in range(0, len(prompts), step):
                chunk = prompts[start : start + step]
                out.extend(self._generate_chunk(chunk, n, temperature, max_new_tokens, seed + start))
            return out
        finally:
            if was_training:
                self.model.train()

    def _generate_chunk(self, prompts, n, temperature, max_new_tokens, seed) -> list[Generation]:
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.model.device)
        # Greedy samples are all equal: decode one per prompt and repeat it.
        per_prompt = 1 if temperature == 0 else n
        if self._own_loop:
            rng = torch.Generator(device=self.model.device).manual_seed(seed)
            decode = self._decode
        else:
            torch.manual_seed(seed)
            rng, decode = None, self._decode_with_generate
        # More samples than a batch holds: `generate` then passes one prompt, whose samples are drawn in
        # chunks that continue one random stream.
        size, rows = min(per_prompt, self.max_sequences), []
        for done in range(0, per_prompt, size):
            rows += decode(
                enc["input_ids"], enc["attention_mask"], min(size, per_prompt - done), temperature, max_new_tokens, rng
            )
        results = []
        for i, prompt in enumerate(prompts):
            g = Generation(prompt=prompt, prompt_ids=enc["input_ids"][i][enc["attention_mask"][i].bool()].tolist())
            for row in rows[i * per_prompt : (i + 1) * per_prompt]:
                finished = bool(row) and row[-1] in self.eos_ids
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                g.samples.extend(
                    Sample(text=text, token_ids=list(row), finished=finished) for _ in range(n // per_prompt)
                )
            results.append(g)
        return results

    def _decode(self, input_ids, attention_mask, n, temperature, max_new_tokens, rng) -> list[list[int]]:
        """Token ids per sample (prompt-major, n per prompt), each ending at its end token if it has one."""
        model, device = self.model, self.model.device
        cache = DynamicCache(config=model.config)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
        cache.batch_repeat_interleave(n)  # prefilled once, shared by the prompt's n samples
        logits, mask = logits.repeat_interleave(n, 0), attention_mask.repeat_interleave(n, 0)
        position = (positions[:, -1] + 1).repeat_interleave(n, 0)
        live = torch.arange(len(mask), device=device)  # which sample each batch row is
        out: list[list[int]] = [[] for _ in range(len(mask))]
        eos = torch.tensor(sorted(self.eos_ids), device=device)
        for step in range(max_new_tokens):
            if temperature == 0:
                token = logits.argmax(-1)
            else:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                token = torch.multinomial(probs, 1, generator=rng).squeeze(1)
            for row, t in zip(live.tolist(), token.tolist()):
                out[row].append(t)
            going = ~torch.isin(token, eos)
            if step == max_new_tokens - 1 or not going.any():
                break
            if not going.all():  # drop finished samples from the batch and the cache
                keep = going.nonzero().squeeze(1)
                live, token, position, mask = live[keep], token[keep], position[keep], mask[keep]
                cache.batch_select_indices(keep)
            mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=1)
            logits = model(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=position[:, None],
                past_key_values=cache,
                use_cache=True,
            ).logits[:, -1]
            position = position + 1
        return out

    def _decode_with_generate(self, input_ids, attention_mask, n, temperature, max_new_tokens, rng=None):
        """As _decode, through `model.generate` (seeded by the caller through torch's global generator)."""
        sampling = (
            dict(do_sample=False)
            if temperature == 0
            else dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        )
        seqs = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            **sampling,
            num_return_sequences=n,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids),
        )
        rows = []
        for row in seqs[:, input_ids.shape[1] :].tolist():
            end = next((j for j, t in enumerate(row) if t in self.eos_ids), None)
            rows.append(row[: end + 1] if end is not None else row)
        return rows
