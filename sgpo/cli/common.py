"""What every command shares: the --db option, JSON output, progress bars on stderr."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from sgpo.store import Store

DbOption = Annotated[Optional[Path], typer.Option("--db", help="SQLite store (default: $SGPO_DB, else ./runs/sgpo.db)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")]


def open_store(db: Path | None, **kw) -> Store:
    return Store.default(db, **kw)


def print_json(obj) -> None:
    """One JSON object on stdout; NaN and inf become null so any parser reads it."""
    sys.stdout.write(json.dumps(_clean(obj), default=_default) + "\n")
    sys.stdout.flush()


def _clean(obj):
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return _clean(float(obj))
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def human_flops(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if abs(x) >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f} FLOP"


def dataclass_options(cls, *, skip: tuple[str, ...] = (), help_prefix: str = "") -> list:
    """typer options generated from a config dataclass: one `--kebab-name` per field, with the field's
    default and its metadata["help"], so the dataclass stays the one source of names and defaults."""
    import dataclasses
    import inspect
    import typing

    hints = typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if inner and len(inner) < len(typing.get_args(hint)):  # `X | None`: typer reads Optional[X]
            hint = Optional[inner[0]]
        flag = "--" + f.name.replace("_", "-")
        decl = [f"{flag}/--no-{f.name.replace('_', '-')}"] if hint is bool else [flag]
        option = typer.Option(*decl, help=help_prefix + f.metadata.get("help", ""), show_default=True)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[hint, option]))
    return params


def with_options(*params):
    """Give a `**kw` command function the extra keyword-only options `params` (typer reads __signature__)."""
    import inspect
    import typing

    def wrap(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # string annotations -> real Annotated types
        fixed = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
                 if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fn.__signature__ = sig.replace(parameters=fixed + list(params))
        return fn

    return wrap
