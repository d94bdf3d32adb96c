"""Checkpoints that survive kill -9 at any moment: written to a temporary folder, renamed into place,
then the `latest` pointer file is replaced atomically. A checkpoint folder is also a model folder
(config, tokenizer, safetensors), so it can be passed to --model or loaded by vLLM.

    root/step-000010/  model.safetensors config.json tokenizer.json ... optimizer.pt state.json
    root/latest        "step-000010"

The engine writes its own state into the folder (sgpo/train/engine.py: weights, tokenizer, and for our
engine `optimizer.pt`, tensors and plain containers only, loaded with weights_only=True); everything
the shared loop keeps (counters, sampler cursor, posterior, Python and numpy RNG states) is JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
KEEP = 2  # checkpoints kept on disk; older ones are pruned once a newer one is in place


def rng_state() -> dict:
    version, keys, gauss = random.getstate()
    np_state = np.random.get_state()
    return {"python": [version, list(keys), gauss],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}


def set_rng_state(state: dict) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(root: Path, step: int, engine, state: dict, keep: int = KEEP) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final, tmp = root / f"step-{step:06d}", root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    engine.save(tmp)
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


def load_checkpoint(path: Path, engine, pace: dict | None = None) -> dict:
    """Restore the engine's state and every RNG; return the JSON state (the weights come from `path`).
    `pace`: the plan's pacing, for checkpoints older than the planner's Phase records (upgrade_state)."""
    engine.load(path)
    state = upgrade_state(json.loads((path / "state.json").read_text()), pace)
    set_rng_state(state["rng"])
    return state


def upgrade_state(state: dict, pace: dict | None = None) -> dict:
    """A checkpoint written before the store's schema v2 (sgpo/store.py): old counter names, and the
    trainer's former phase records (members / sizes / ordered) as the planner's Phase dicts."""
    from sgpo.store import V2_METRIC_NAMES

    state["counters"] = {V2_METRIC_NAMES.get(k, k): v for k, v in state.get("counters", {}).items()}
    sampler = state.get("sampler", {})
    for i, ph in enumerate(sampler.get("phases", [])):
        if "members" in ph:
            sampler["phases"][i] = {"index": i, "group_size": ph["group_size"] or 0, "positions": ph["members"],
                                    "group_sizes": ph["sizes"], "pacing": dict(pace or {"advance": "pass"})}
            sampler["phases"][i]["pacing"]["order"] = "planned" if ph.get("ordered") else "shuffled"
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
