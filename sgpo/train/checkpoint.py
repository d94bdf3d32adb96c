"""Checkpoints that survive kill -9 at any moment: written to a temporary folder, renamed into place,
then the `latest` pointer file is replaced atomically. A checkpoint folder is also a model folder
(config, tokenizer, safetensors), so it can be passed to --model or loaded by vLLM.

    root/step-000010/  model.safetensors config.json tokenizer.json ... optimizer.pt state.json
    root/latest        "step-000010"

The engine writes its own files into the folder (sgpo/train/engine.py; both engines through `save_engine`:
weights, tokenizer, `optimizer.pt`, tensors and plain containers only, loaded with weights_only=True by
`load_engine`); everything else is JSON in state.json:
the state of every part of the run (`save_run` / `restore_run`: the session's counters, the evaluator's
bands, the engine's place in its data, i.e. the sampler's cursor and posterior or TRL's phase cursor)
and the Python and numpy RNG states.

    save_run(root, step, engine, [session, evaluator, engine])       # each part's state_dict, merged
    step = restore_run(path, engine, [session, evaluator, engine])   # each part's load_state_dict

A write that fails (full disk, read-only folder) removes its temporary folder and leaves `latest` on the
previous checkpoint (CheckpointError). `latest_checkpoint` returns the newest checkpoint that is complete
(state.json parses, safetensors headers cover their files, optimizer.pt is a whole zip): a truncated or
corrupt one, or a pointer to a missing folder, falls back to the previous one with a warning.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from sgpo.errors import SgpoError
from sgpo.store import V2_METRIC_NAMES

KEEP = 2  # checkpoints kept on disk; older ones are pruned once a newer one is in place
# how a full disk or a read-only folder shows up: pathlib/json, torch.save (RuntimeError), safetensors
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


class CheckpointError(SgpoError):
    """A checkpoint could not be written: names the folder; the previous checkpoint is kept."""


def rng_state() -> dict:
    version, keys, gauss = random.getstate()
    np_state = cast(tuple, np.random.get_state())  # (name, keys, pos, has_gauss, cached_gaussian)
    return {
        "python": [version, list(keys), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }


def set_rng_state(state: dict) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_engine(folder: Path, model, tokenizer, optimizer) -> None:
    """What both engines write into a checkpoint: a model folder (config, tokenizer, safetensors), loadable
    by --model and vLLM, plus optimizer.pt (the optimizer's state and torch's RNG)."""
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, folder / "optimizer.pt")


def load_engine(folder: Path, optimizer) -> None:
    """The optimizer's state and torch's RNG from a checkpoint `save_engine` wrote (the engine loaded the
    weights from `folder` when it was built)."""
    blob = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["torch_rng"])


def save_checkpoint(root: Path, step: int, engine, state: dict, keep: int = KEEP) -> Path:
    """Write `step`'s checkpoint and point `latest` at it. On a write failure nothing half-written stays:
    the temporary folder is removed, `latest` still names the previous checkpoint, CheckpointError."""
    final, tmp = root / f"step-{step:06d}", root / f".tmp-step-{step:06d}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-step-*"):  # left by a process killed while saving
            shutil.rmtree(stale, ignore_errors=True)
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
    except WRITE_ERRORS as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        (root / ".latest.tmp").unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write checkpoint {final}: {type(exc).__name__}: {exc} (disk full or "
            f"read-only?); `latest` still names the previous checkpoint"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)
    for old in sorted(root.glob("step-*"))[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def save_run(root: Path, step: int, engine, parts: list) -> Path:
    """Checkpoint a run at `step`: the engine's files and every part's state_dict() (JSON, merged)."""
    state: dict = {}
    for part in parts:
        state.update(part.state_dict())
    return save_checkpoint(root, step, engine, state)


def restore_run(path: Path, engine, parts: list, pace: dict | None = None) -> int:
    """Restore a run from the checkpoint at `path` (see load_checkpoint); each part reads its keys of the
    state. Returns the checkpoint's step."""
    state = load_checkpoint(path, engine, pace)
    for part in parts:
        part.load_state_dict(state)
    return int(state["step"])


def latest_checkpoint(root: Path, warn: Callable[[str], None] | None = None) -> Path | None:
    """The checkpoint to resume from: the one `latest` names if it is complete, else the newest complete
    one, and `warn` (default: warnings.warn) says which were passed over and why. None if there is none."""
    pointer, named, skipped = root / "latest", None, []
    if pointer.exists():
        try:
            named = root / pointer.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            skipped.append(f"the pointer {pointer} is unreadable ({exc})")
    others = sorted((p for p in root.glob("step-*") if p != named), reverse=True) if root.is_dir() else []
    found = None
    for path in ([named] if named is not None else []) + others:
        problem = checkpoint_problem(path)
        if problem is None:
            found = path
            break
        skipped.append(f"checkpoint {path} is {problem}")
    if skipped:
        then = f"resuming from {found.name} instead" if found else "no complete checkpoint left: starting from step 0"
        for reason in skipped:
            (warn or (lambda msg: warnings.warn(msg, stacklevel=4)))(f"{reason}; {then}")
    return found


def checkpoint_problem(path: Path) -> str | None:
    """Why `path` is not a complete checkpoint, or None. Cheap: headers and sizes, not the tensors."""
    try:
        if not path.is_dir():
            return "missing"
        state = json.loads((path / "state.json").read_text())
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            return "incomplete (state.json has no step)"
        weights = sorted(path.glob("*.safetensors"))
        if not weights:
            return "incomplete (no .safetensors weights)"
        index = path / "model.safetensors.index.json"
        shards = set(json.loads(index.read_text())["weight_map"].values()) if index.exists() else set()
        if not shards <= {w.name for w in weights}:
            return "incomplete (a weight shard is missing)"
        for w in weights:
            with safe_open(w, "pt"):  # checks the header and that it covers the file exactly
                pass
        if not zipfile.is_zipfile(path / "optimizer.pt"):  # torch.save's zip: truncation loses its directory
            return "incomplete (optimizer.pt missing or truncated)"
    except FileNotFoundError as exc:
        return f"incomplete ({Path(exc.filename or '?').name} missing)"
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        return f"corrupt ({type(exc).__name__}: {exc})"
    return None


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
    state["counters"] = {V2_METRIC_NAMES.get(k, k): v for k, v in state.get("counters", {}).items()}
    sampler = state.get("sampler", {})
    for i, ph in enumerate(sampler.get("phases", [])):
        if "members" in ph:
            sampler["phases"][i] = {
                "index": i,
                "group_size": ph["group_size"] or 0,
                "positions": ph["members"],
                "group_sizes": ph["sizes"],
                "pacing": dict(pace or {"advance": "pass"}),
            }
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
