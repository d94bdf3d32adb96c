"""Where models run and in which precision: `--device auto|cpu|cuda`, `--dtype auto|float32|bfloat16`.

    device = resolve_device("auto")            # "cuda" when a GPU is visible, else "cpu"
    dtype = resolve_dtype("auto", device)      # torch.bfloat16 on cuda, torch.float32 on cpu

bfloat16 training keeps fp32 master weights and fp32 optimizer state, and runs forward and backward
under torch.autocast: the update is applied in fp32, so small learning rates are not lost to bf16's
8-bit mantissa (sgpo/train/engine.py).
"""

from __future__ import annotations

import contextlib

import torch

from sgpo.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16")


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda: no CUDA GPU is visible to torch (torch.cuda.is_available() is False): "
            "use --device cpu or --device auto"
        )
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: choose auto, cpu or cuda")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    except KeyError:
        raise ConfigError(f"--dtype {dtype!r}: choose auto, float32 or bfloat16") from None


def autocast(device: str, dtype: torch.dtype):
    """bf16 autocast on `device`, or nothing for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=dtype)
