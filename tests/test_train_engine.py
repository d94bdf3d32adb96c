"""The engine seam and our engine on a device and dtype: bf16 trains under autocast with fp32 master
weights, its one-step loss close to fp32's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgpo.device import resolve_device, resolve_dtype
from sgpo.errors import ConfigError
from sgpo.train.grpo import Group
from sgpo.train.native import NativeEngine
from tests.toys import toy_config


def groups() -> list[Group]:
    rng = np.random.default_rng(0)
    return [
        Group(
            query=i,
            prompt_ids=[1, 5 + i, 7],
            completions=[[10 + k, 2] for k in range(4)],
            rewards=rng.integers(0, 2, 4).astype(float) if i else np.array([0.0, 1.0, 0.0, 1.0]),
        )
        for i in range(6)
    ]


def engine(toy, tmp_path, dtype):
    cfg = toy_config(toy, dtype="bfloat16" if dtype == torch.bfloat16 else "float32", device="cpu")
    return NativeEngine(cfg, toy.model, weights=toy.model, live_dir=tmp_path / "live", device="cpu", dtype=dtype)


def test_bf16_trains_with_fp32_master_weights_and_matches_fp32_loss(toy, tmp_path):
    fp32, bf16 = engine(toy, tmp_path, torch.float32), engine(toy, tmp_path, torch.bfloat16)
    before = {n: p.detach().clone() for n, p in bf16.model.named_parameters()}
    a, b = fp32.update(groups(), lr=1e-3), bf16.update(groups(), lr=1e-3)
    assert b.trained_sequences == a.trained_sequences > 0
    assert b.loss == pytest.approx(a.loss, rel=0.05, abs=1e-3)
    assert b.entropy == pytest.approx(a.entropy, rel=0.05)
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # master weights stay fp32
    state = bf16.optimizer.state[next(iter(bf16.model.parameters()))]
    assert state["exp_avg"].dtype == torch.float32  # and so does the optimizer state
    assert any(not torch.equal(before[n], p) for n, p in bf16.model.named_parameters())  # it trained


def test_device_and_dtype_are_resolved_and_honoured():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("auto", "cpu") == torch.float32 and resolve_dtype("auto", "cuda") == torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cuda: no CUDA GPU"):
            resolve_device("cuda")


def test_the_engine_runs_where_it_is_told(toy, tmp_path):
    e = engine(toy, tmp_path, torch.bfloat16)
    assert next(e.model.parameters()).device.type == "cpu"
    outs = e.generator.generate(["a1="], n=2, temperature=1.0, max_new_tokens=1, seed=0)  # sampled under autocast
    assert len(outs[0].samples) == 2


def test_profiling_honours_device_and_dtype(toy):
    from sgpo.profile import ProfileConfig, backend_options

    opts = backend_options(ProfileConfig(device="cpu", dtype="bfloat16"))
    assert opts == {"device": "cpu", "dtype": torch.bfloat16}
    from sgpo.generate.backends import make_generator

    gen = make_generator("hf", toy.model, **opts)
    assert next(gen.model.parameters()).dtype == torch.bfloat16
    assert len(gen.generate(["a1="], n=3, temperature=1.0, max_new_tokens=1, seed=0)[0].samples) == 3
    assert backend_options(ProfileConfig(backend="vllm", device="cpu")) == {"seed": 0}  # vLLM keeps CPU defaults
