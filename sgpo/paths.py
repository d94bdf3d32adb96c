"""Where things live beside a store: one owner for every path the CLI, the dashboard and the trainer share.

    paths.checkpoint_root(store, "baseline")          # <store folder>/checkpoints/baseline/
    paths.run_log(store, "baseline")                  # <store folder>/logs/baseline.log
    paths.job_log(store, "profile", "starter-train")  # <store folder>/logs/profile-starter-train.log
    paths.parse_run_model("run:baseline@40")          # ("baseline", 40); ("baseline", None) for the latest

`store` is a Store or the path of its database file (anything with a `.path`, or a path): this module
imports nothing of ours, so every layer can use it. A checkpoint folder's own layout (step-NNNNNN,
the `latest` pointer) belongs to sgpo/train/checkpoint.py.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN_MODEL_PREFIX = "run:"  # a model spec naming a run's checkpoint: run:NAME[@STEP]


def store_folder(store) -> Path:
    """The folder that holds the store's database file."""
    return Path(getattr(store, "path", store)).resolve().parent


def checkpoint_root(store, name: str) -> Path:
    """`checkpoints/NAME/` beside the store: every checkpoint of run NAME."""
    return store_folder(store) / "checkpoints" / name


def logs_folder(store) -> Path:
    return store_folder(store) / "logs"


def run_log(store, name: str) -> Path:
    """The log of run NAME's detached worker."""
    return logs_folder(store) / f"{name}.log"


def job_log(store, kind: str, name: str) -> Path:
    """The log of a detached job that is not a run (`kind` = profile, ...): `logs/KIND-NAME.log`."""
    return logs_folder(store) / f"{kind}-{name}.log"


def is_run_model(spec: str | os.PathLike) -> bool:
    return str(spec).startswith(RUN_MODEL_PREFIX)


def parse_run_model(spec: str) -> tuple[str, int | None]:
    """`run:NAME[@STEP]` -> (NAME, STEP or None for the latest checkpoint). ValueError names what is wrong."""
    if not is_run_model(spec):
        raise ValueError(f"{spec!r} is not a run's checkpoint: write run:NAME or run:NAME@STEP")
    name, at, step = spec[len(RUN_MODEL_PREFIX) :].partition("@")
    if not name:
        raise ValueError(f"{spec!r} names no run: write run:NAME or run:NAME@STEP")
    if at and not step.isdigit():
        raise ValueError(f"{spec!r}: the step after @ must be a whole number, e.g. run:{name}@40")
    return name, int(step) if at else None


def run_model(name: str, step: int | None = None) -> str:
    """The model spec of run NAME's checkpoint at `step` (the latest when None)."""
    return f"{RUN_MODEL_PREFIX}{name}" + (f"@{int(step)}" if step is not None else "")
