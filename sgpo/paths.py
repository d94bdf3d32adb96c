"""Where things live beside a store: one owner for every path the CLI, the dashboard and the trainer share.

    paths.checkpoint_root(store, "baseline")          # <store folder>/checkpoints/baseline/
    paths.run_log(store, "baseline")                  # <store folder>/logs/baseline.log
    paths.job_log(store, "profile", "starter-train")  # <store folder>/logs/profile-starter-train.log
    paths.parse_run_model("run:baseline@40")          # ("baseline", 40); ("baseline", None) for the latest
    paths.check_spec_allowed("/etc/passwd", "dataset")  # ConfigError: outside the dashboard's --allow-root folders

`store` is a Store or the path of its database file (anything with a `.path`, or a path): this module
imports nothing of ours but the error type, so every layer can use it. A checkpoint folder's own layout (step-NNNNNN,
the `latest` pointer) belongs to sgpo/train/checkpoint.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from sgpo.errors import ConfigError

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


# what a dashboard may read ----------------------------------------------------------------------------
ALLOWED_ROOTS_ENV = "SGPO_ALLOWED_ROOTS"  # set by `sgpo dashboard --allow-root`: folders joined by os.pathsep


def allowed_roots(roots=None) -> list[Path]:
    """The folders that local dataset and model paths typed into the dashboard may point into: `roots`, else
    $SGPO_ALLOWED_ROOTS (os.pathsep-separated, set by `sgpo dashboard --allow-root`), else the working
    directory. Resolved: symlinks followed."""
    if roots is None:
        listed = os.environ.get(ALLOWED_ROOTS_ENV, "")
        roots = [r for r in listed.split(os.pathsep) if r] or [Path.cwd()]
    return [Path(r).expanduser().resolve() for r in roots]


def check_allowed(path: str | os.PathLike, roots=None) -> Path:
    """`path` resolved (relative to the working directory, symlinks followed) when it lies inside one of the
    allowed roots (allowed_roots); ConfigError in one line otherwise, naming the path and --allow-root."""
    resolved = Path(path).expanduser().resolve()
    inside = allowed_roots(roots)
    if not any(resolved == root or resolved.is_relative_to(root) for root in inside):
        raise ConfigError(
            f"{path} is outside the folders this dashboard may read ({', '.join(map(str, inside))}): "
            f"restart it with `sgpo dashboard --allow-root FOLDER` to allow another folder"
        )
    return resolved


def check_spec_allowed(spec: str, kind: str, roots=None) -> str:
    """A dataset or model spec (`kind`: "dataset" or "model") checked by check_allowed when it names a local
    file or folder: a dataset other than builtin:NAME or hf:..., a model other than `starter`, run:NAME[@STEP]
    or a hub id (org/name, which names no existing path). Returns the spec unchanged.

        check_spec_allowed("data/train.jsonl", "dataset")     # inside the working directory: fine
        check_spec_allowed("/etc/passwd", "dataset")          # ConfigError: outside the allowed folders"""
    spec = str(spec).strip()
    if not spec:
        return spec
    if kind == "dataset":
        local = not spec.startswith(("builtin:", "hf:"))
    else:
        looks_local = spec.startswith(("/", ".", "~")) or Path(spec).expanduser().exists()
        local = spec != "starter" and not is_run_model(spec) and looks_local
    if local:
        check_allowed(spec, roots)
    return spec
