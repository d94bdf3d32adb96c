"""What every command shares: the --db option, JSON output, progress bars on stderr, and groups whose
documented form is their default command (`sgpo profile DATASET`, `sgpo plan PROFILE`)."""

from __future__ import annotations

import inspect
import json
import math
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from typer.core import TyperGroup

from sgpo.data_spec import FIELDS, ROLES
from sgpo.errors import ConfigError, StoreError
from sgpo.knobs import KnobSpec, check_value
from sgpo.store import Store, default_path

DbOption = Annotated[Path | None, typer.Option("--db", help="SQLite store (default: $SGPO_DB, else ./runs/sgpo.db)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")]

FIELD_HELP = {
    "prompt": "field holding the prompt (auto-detected)",
    "answer": "field holding the gold answer (auto-detected)",
    "id": "field holding a unique id (default: row number)",
    "task": "field holding the task or family (default: 'task' if present)",
    "difficulty": "field holding the difficulty, its first whole number ('Level 3' is 3; default: 'difficulty' or "
    "'level')",
}
REWARD_HELP = (
    "exact, math (strict), math-lenient, or MODULE:FUNCTION / path/to/file.py:FUNCTION with TRL's reward "
    "signature f(completions, answer, **columns) -> list[float] (default: picked from the answers; shown)"
)


def open_store(db: Path | None, *, readonly: bool = False, create: bool = True) -> Store:
    """The store of `--db` (else $SGPO_DB, else ./runs/sgpo.db). Read-only commands pass readonly=True,
    and commands that only change what a store holds pass create=False: neither creates a file or a folder."""
    path = db_path(db)
    # a missing store opened read-only raises the store's own "does not exist, profile first" error
    return Store(path, readonly=readonly or (not create and not path.exists()))


def read_store(db: Path | None) -> Store | None:
    """The store of `--db` opened read-only to read what it recorded (a dataset's mapping), or None when it
    does not exist yet: nothing is created."""
    path = db_path(db)
    return Store(path, readonly=True) if path.exists() else None


def db_path(db: Path | None) -> Path:
    """The database a command works on (`--db`, else $SGPO_DB, else ./runs/sgpo.db), checked: not a folder,
    nothing above it a file, and a `--db` given in a folder that exists (the default ./runs is made when
    needed; a mistyped --db folder is not)."""
    path = default_path(db)
    check_db_path(path)
    if db is not None and not path.parent.is_dir():
        raise StoreError(
            f"--db {path}: the folder {path.parent} does not exist; create it first, or give a database "
            f"path in an existing folder"
        )
    return path


def check_db_path(path: Path) -> None:
    """A database path: an existing file, or a new one whose nearest existing folder above is a folder."""
    if path.is_dir():
        raise StoreError(f"--db {path} is a folder: give the database file (e.g. {path / 'sgpo.db'})")
    above = next(p for p in path.parents if p.exists())
    if not above.is_dir():
        raise StoreError(f"--db {path}: {above} is a file, not a folder: give a database path inside a folder")


def check_option(
    option: str, value: float, *, low: float | None = None, high: float | None = None, open_low: bool = False
) -> None:
    """An option that is not a config knob, checked as knobs are (sgpo/knobs.py): finite and in range."""
    name = option.lstrip("-").replace("-", "_")
    check_value(KnobSpec(name, "float", False, None, "", low, high, open_low), value)


def check_folder(option: str, path: Path) -> None:
    """A folder a command will write into: it may be missing, but neither it nor anything above it is a file."""
    above = next((p for p in [path, *path.parents] if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{option} {path}: {above} is a file, not a folder: give a folder")


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
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return _clean(float(obj))
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def config_options(cls, *, skip: tuple[str, ...] = (), help_prefix: str = "") -> list:
    """typer options generated from a config's knob specs (sgpo/knobs.py): one `--kebab-name` per knob
    with its default and help, so the config stays the one source of names, defaults and help. Ranges
    and choices are checked by the config itself, which names the option in its error."""
    hints = {"int": int, "float": float, "str": str, "bool": bool}
    params = []
    for spec in cls.specs():
        if spec.name in skip or spec.type == "dict":
            continue
        hint: Any = hints[spec.type]
        if spec.optional:
            hint = hint | None
        decl = [f"{spec.option}/--no-{spec.option[2:]}"] if spec.type == "bool" else [spec.option]
        extra = f" [choices: {', '.join(spec.choices)}]" if spec.choices else ""
        option = typer.Option(*decl, help=help_prefix + spec.help + extra, show_default=True)
        params.append(
            inspect.Parameter(
                spec.name, inspect.Parameter.KEYWORD_ONLY, default=spec.default, annotation=Annotated[hint, option]
            )
        )
    return params


def dataset_field_options() -> list:
    """typer options for how a dataset is read and scored, the DatasetSpec's fields (sgpo/data_spec.py): one
    `--ROLE-field` per role and `--reward`, as DatasetSpec.cli_args writes them. `dataset_fields` takes them
    back out of a command's `**kw`."""
    helps = [FIELD_HELP[role] for role in ROLES] + [REWARD_HELP]
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, typer.Option("--" + name.replace("_", "-"), help=help)],
        )
        for name, help in zip(FIELDS, helps, strict=True)
    ]


def dataset_fields(kw: dict) -> dict:
    """The dataset field options of `dataset_field_options`, popped out of a command's `**kw`: prompt_field,
    answer_field, id_field, task_field, difficulty_field and reward (None where not given)."""
    return {name: kw.pop(name) for name in FIELDS}


def with_options(*params, before: str | None = None):
    """Give a `**kw` command function the extra keyword-only options `params` (typer reads __signature__):
    after its own parameters, or in front of the one named `before`, a keyword-only one (--help lists them in
    that order)."""

    def wrap(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # string annotations -> real Annotated types
        fixed = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        at = [p.name for p in fixed].index(before) if before else len(fixed)
        fn.__signature__ = sig.replace(parameters=[*fixed[:at], *params, *fixed[at:]])
        return fn

    return wrap


class DefaultGroup(TyperGroup):
    """A group whose documented form is one of its commands: anything that is not a subcommand's name goes
    to `default_command` (`sgpo profile builtin:train` runs `sgpo profile run builtin:train`), and `--help`
    shows that form's arguments and options first, then the other subcommands."""

    default_command = "run"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter) -> None:
        command = self.commands[self.default_command]
        sub = typer.Context(command, info_name=ctx.info_name, parent=ctx.parent)
        formatter.write_usage(ctx.command_path, " ".join(command.collect_usage_pieces(sub)))
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")
        self.format_help_text(ctx, formatter)
        command.format_options(sub, formatter)
        self.format_commands(ctx, formatter)
