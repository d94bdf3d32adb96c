"""`sgpo train --backend vllm`: the run re-launches itself under the vLLM interpreter, rolls out with a
colocated engine, and reloads the engine's weights after every optimizer step (a large learning rate
must change what the engine generates)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import vllm_interpreter
from tests.toys import tiny_model_dir, toy_cli_args, toy_dataset

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_vllm_backend_trains_and_reloads_weights_every_step(tmp_path):
    vllm_interpreter()  # skips (or fails in CI) when vLLM is missing
    model = tiny_model_dir(tmp_path / "m", hidden=96)  # vLLM's CPU attention has no kernel for head_dim 16
    toy = SimpleNamespace(model=model, data=toy_dataset(tmp_path / "toy.jsonl", model))
    args = [
        *toy_cli_args(toy),
        "--strategy",
        "grpo",
        "--backend",
        "vllm",
        "--steps",
        2,
        "--eval-every",
        2,
        "--lr",
        0.05,
        "--db",
        tmp_path / "sgpo.db",
        "--json",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "sgpo", "train", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["steps"] == 2
    assert result["eval_accuracy"] != result["eval_accuracy_initial"]
    assert (tmp_path / "checkpoints" / result["run_name"] / "live" / "model.safetensors").exists()
