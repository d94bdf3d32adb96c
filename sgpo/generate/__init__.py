"""One generation interface, two real backends (transformers and vLLM), used by profiling and training.

    gen = make_generator("hf", model_dir)
    outs = gen.generate(["r abc="], n=8, temperature=1.0, max_new_tokens=20, seed=0)
    outs[0].samples[3].text

Both backends return the same records. Temperature 0 means greedy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sgpo.errors import BackendError, ConfigError

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

    def generate(self, prompts: list[str], *, n: int, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Generation]: ...


def check_sampling(n: int, temperature: float, max_new_tokens: int) -> None:
    if n < 1:
        raise ConfigError(f"--samples must be at least 1 (got {n})")
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0 (got {temperature}); 0 means greedy")
    if max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be at least 1 (got {max_new_tokens})")


def make_generator(backend: str, model_dir: str | Path, **kwargs) -> Generator:
    """A generator for a local model folder (see sgpo.model.resolve_model for names and ids)."""
    if backend == "hf":
        from sgpo.generate.hf import HFGenerator

        return HFGenerator(model_dir, **kwargs)
    if backend == "vllm":
        from sgpo.generate.vllm import VLLMGenerator

        return VLLMGenerator(model_dir, **kwargs)
    raise BackendError(f"--backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
