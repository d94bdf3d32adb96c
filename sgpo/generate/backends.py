"""The generator for a backend name: `make_generator("hf" | "vllm", model_dir, **options)`. Kept apart from the
records in sgpo.generate, which both backends (and sgpo.model) import."""

from __future__ import annotations

from pathlib import Path

from sgpo.errors import BackendError
from sgpo.generate import BACKENDS, Generator
from sgpo.generate.hf import HFGenerator
from sgpo.generate.vllm import VLLMGenerator


def make_generator(backend: str, model_dir: str | Path, **kwargs) -> Generator:
    """A generator for a local model folder (see sgpo.model.resolve_model for names and ids)."""
    if backend == "hf":
        return HFGenerator(model_dir, **kwargs)
    if backend == "vllm":
        return VLLMGenerator(model_dir, **kwargs)
    raise BackendError(f"--backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
