"""One generation interface, two real backends (transformers and vLLM), used by profiling and training.

    gen = make_generator("hf", model_dir)             # from sgpo.generate.backends
    outs = gen.generate(["r abc="], n=8, temperature=1.0, max_new_tokens=20, seed=0)
    outs[0].samples[3].text

Both backends return the same records; `sgpo.generate.backends.make_generator` picks one. Temperature 0
means greedy. `fit_prompts` checks prompts against the model's context before anything is generated
(profiling and training both call it, through sgpo.model.fit_frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sgpo.errors import ConfigError, DataError

BACKENDS = ("hf", "vllm")


@dataclass
class Sample:
    text: str  # decoded completion, special tokens removed
    token_ids: list[int]  # generated ids, the end token included when one was produced
    finished: bool  # ended with the end token (False: cut at max_new_tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


@dataclass
class Generation:
    prompt: str
    prompt_ids: list[int]
    samples: list[Sample] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)


class Generator(Protocol):
    backend: str

    def generate(
        self, prompts: list[str], *, n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[Generation]: ...


def check_sampling(n: int, temperature: float, max_new_tokens: int) -> None:
    if n < 1:
        raise ConfigError(f"--samples must be at least 1 (got {n})")
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0 (got {temperature}); 0 means greedy")
    if max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be at least 1 (got {max_new_tokens})")


@dataclass
class FittedPrompts:
    prompts: list[str]  # as given, or cut to their end when truncating
    cut: list[str]  # ids of the queries whose prompt was cut
    budget: int  # most prompt tokens (special tokens included) that leave room for max_new_tokens

    def warning(self, context: int, max_new_tokens: int) -> str | None:
        """One line naming how many prompts were cut and a few of their ids; None when none was."""
        if not self.cut:
            return None
        some = ", ".join(map(repr, self.cut[:3])) + (", ..." if len(self.cut) > 3 else "")
        return (
            f"{len(self.cut)} of {len(self.prompts)} prompts were longer than the model's context of {context} "
            f"tokens minus --max-new-tokens {max_new_tokens}: kept the last {self.budget} tokens of each ({some})"
        )


def fit_prompts(
    prompts: list[str],
    ids: list[str],
    tokenizer,
    *,
    context: int | None,
    max_new_tokens: int,
    truncate: bool = False,
    option: str = "--truncate-prompts",
) -> FittedPrompts:
    """Prompts whose tokens plus `max_new_tokens` fit the model's `context` (None: unknown, nothing checked).

    A prompt that does not fit is refused (DataError naming the query and the numbers) unless `truncate`:
    then it keeps its END, where the question is, dropping text from the start. Token counts include the
    special tokens the tokenizer adds (BOS), as the generators count them."""
    if context is None:
        return FittedPrompts(list(prompts), [], 0)
    floor = len(tokenizer("")["input_ids"])  # the special tokens every prompt carries
    budget = context - max_new_tokens
    if budget <= floor:
        raise ConfigError(
            f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in the model's context of "
            f"{context} tokens: lower it to at most {context - floor - 1}"
        )
    lengths = [len(x) for x in tokenizer(list(prompts))["input_ids"]] if prompts else []
    over = [i for i, n in enumerate(lengths) if n > budget]
    if over and not truncate:
        i = over[0]
        more = f" (and {len(over) - 1} more queries)" if len(over) > 1 else ""
        raise DataError(
            f"query {ids[i]!r}: its prompt is {lengths[i]} tokens and --max-new-tokens is "
            f"{max_new_tokens}, {lengths[i] + max_new_tokens} > the model's context of {context} tokens"
            f"{more}: shorten the prompt, lower --max-new-tokens, or pass {option} to keep its last "
            f"{budget} tokens"
        )
    fitted = list(prompts)
    for i in over:
        fitted[i] = _keep_end(fitted[i], tokenizer, budget)
    return FittedPrompts(fitted, [ids[i] for i in over], budget)


def _keep_end(text: str, tokenizer, budget: int) -> str:
    """The longest end of `text` whose tokens fit `budget`. Searched over characters, not tokens, so the
    result is a plain string that any backend tokenizes the same way (decoding cut tokens may not be)."""

    def fits(start: int) -> bool:
        return len(tokenizer(text[start:])["input_ids"]) <= budget

    lo, hi = 0, len(text)  # fits(hi): the empty string carries only the special tokens, below budget
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    while not fits(lo):  # token counts are almost, not always, monotone in the cut point
        lo += 1
    return text[lo:]
