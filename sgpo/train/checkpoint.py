"""Checkpoints that survive kill -9 at any moment: written to a temporary folder, renamed into place,
then the `latest` pointer file is replaced atomically. A checkpoint folder is also a model folder
(config, tokenizer, safetensors), so it can be passed to --model or loaded by vLLM.

    root/step-000010/  model.safetensors config.json tokenizer.json ... optimizer.pt state.json
    root/latest        "step-000010"

`optimizer.pt` holds only tensors and plain containers (loaded with weights_only=True); everything else
(counters, sampler cursor, posterior, RNG states) is JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

KEEP = 2  # checkpoints kept on disk; older ones are pruned once a newer one is in place


def rng_state() -> dict:
    version, keys, gauss = random.getstate()
    np_state = np.random.get_state()
    return {"python": [version, list(keys), gauss],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}


def set_rng_state(state: dict, torch_state: torch.Tensor) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch_state)


def save_checkpoint(root: Path, step: int, model, tokenizer, optimizer, state: dict, keep: int = KEEP) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final, tmp = root / f"step-{step:06d}", root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "rng": rng_state()}))
    _fsync_dir(tmp)
    if final.exists():  # a step redone after a resume: replace the earlier copy
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = root / ".latest.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, root / "latest")
    _fsync_dir(root)
    for old in sorted(root.glob("step-*"))[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    pointer = root / "latest"
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    return path if (path / "state.json").exists() else None


def load_checkpoint(path: Path, optimizer) -> dict:
    """Restore the optimizer and every RNG; return the JSON state (the model is loaded from `path`)."""
    blob = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    state = json.loads((path / "state.json").read_text())
    set_rng_state(state["rng"], blob["torch_rng"])
    return state


def _fsync_dir(path: Path) -> None:
    for f in list(path.iterdir()) + [path]:
        try:
            fd = os.open(f, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
