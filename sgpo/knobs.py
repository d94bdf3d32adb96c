"""One config style for every stage: a dataclass whose fields carry default, range, choices and help.

    @dataclass
    class ProfileConfig(Knobs):
        samples: int = knob(8, "samples per query (the paper's N)", min=1, max=1024)

    ProfileConfig(samples=0)        # ConfigError: --samples=0 is outside [1, 1024]: raise it (default 8)
    ProfileConfig.specs()           # name, option, type, default, range, choices, help: CLI and widgets
    cfg.cli_args()                  # ['--samples', '16']: the flags that reproduce cfg (non-defaults)

`Knobs` validates on construction, so a config that exists is a valid one. Errors name the knob as the
user typed it on the command line (`--trivial-threshold`), coerce numbers (an int knob given 3.0 is 3),
and refuse non-finite numbers. The CLI (sgpo/cli/common.py: `config_options`) and the dashboard
(dashboard/widgets.py: `knob_input`) are both generated from `specs()`, so names, defaults, ranges and
help text live in one place. Written here rather than taken from pydantic: the whole mechanism is this
file, and field metadata on plain dataclasses is what TRL's GRPOConfig does too.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, dataclass

from sgpo.errors import ConfigError


def knob(default, help: str, *, min=None, max=None, open_min: bool = False, choices=None):
    """A config field: `default` (a callable means a factory, e.g. dict), help text, optional [min, max]
    range (open at the bottom with open_min) or a tuple of allowed choices."""
    meta = {"help": help, "min": min, "max": max, "open_min": open_min, "choices": tuple(choices) if choices else None}
    if callable(default):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def option(name: str) -> str:
    """The command-line spelling of a knob: flops_budget -> --flops-budget."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class KnobSpec:
    name: str
    type: str  # int | float | str | bool | dict
    optional: bool  # None is allowed (and means "not set")
    default: object
    help: str
    min: float | None = None
    max: float | None = None
    open_min: bool = False
    choices: tuple | None = None

    @property
    def option(self) -> str:
        return option(self.name)

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    def interval(self) -> str:
        lo = "(-inf" if self.min is None else ("(" if self.open_min else "[") + f"{self.min:g}"
        hi = "inf)" if self.max is None else f"{self.max:g}]"
        return f"{lo}, {hi}"


class Knobs:
    """Base of every stage's config dataclass (profile, plan, train)."""

    def __post_init__(self):
        self.validate()

    @classmethod
    def specs(cls) -> list[KnobSpec]:
        return list(_specs(cls))

    @classmethod
    def spec(cls, name: str) -> KnobSpec:
        return next(s for s in _specs(cls) if s.name == name)

    def validate(self):
        """Coerce and check every knob, then the cross-knob rules of `check()`; ConfigError names the option."""
        for s in _specs(type(self)):
            setattr(self, s.name, check_value(s, getattr(self, s.name)))
        self.check()
        return self

    def check(self) -> None:
        """Rules that span several knobs; subclasses override."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]  # every Knobs subclass is a dataclass

    @classmethod
    def from_dict(cls, values: dict):
        """A config from a plain dict (a stored run, a form); unknown keys are a ConfigError."""
        known = {s.name for s in _specs(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(option(u) for u in unknown)}: known are "
                f"{', '.join(option(k) for k in sorted(known))}"
            )
        return cls(**values)

    def cli_args(self, *, skip: tuple[str, ...] = ()) -> list[str]:
        """The flags that reproduce this config, non-defaults only: ['--trivial-threshold', '0.6', ...]."""
        out = []
        for s in _specs(type(self)):
            value = getattr(self, s.name)
            if s.name in skip or s.type == "dict" or value == s.default:
                continue
            if s.type == "bool":
                out.append(s.option if value else "--no-" + s.option[2:])
            elif value is not None:
                out += [s.option, repr(value) if isinstance(value, float) else str(value)]
        return out


_CACHE: dict[type, tuple[KnobSpec, ...]] = {}


def _specs(cls) -> tuple[KnobSpec, ...]:
    if cls not in _CACHE:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = bool(args) and len(args) < len(typing.get_args(hint))
            base = args[0] if optional else hint
            base = typing.get_origin(base) or base
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
            m = f.metadata
            out.append(
                KnobSpec(
                    f.name,
                    base.__name__,
                    optional,
                    default,
                    m.get("help", ""),
                    m.get("min"),
                    m.get("max"),
                    bool(m.get("open_min")),
                    m.get("choices"),
                )
            )
        _CACHE[cls] = tuple(out)
    return _CACHE[cls]


def check_value(s: KnobSpec, value):
    """`value` coerced to the knob's type and checked against its choices and range; ConfigError naming
    `s.option` otherwise. Also serves command-line options that are not config knobs (sgpo/cli/common.py)."""
    opt = s.option
    if value is None:
        if s.optional:
            return None
        raise ConfigError(f"{opt} needs a value (default {s.default})")
    if s.choices:
        if value not in s.choices:
            raise ConfigError(
                f"{opt}={value!r} is not one of {', '.join(map(str, s.choices))}: choose one of "
                f"them (default {s.default})"
            )
        return value
    if s.type == "bool":
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise ConfigError(f"{opt}={value!r} is not true or false")
        return bool(value)
    if s.type in ("int", "float"):
        value = _number(opt, value, s.type)
        if s.min is not None and (value <= s.min if s.open_min else value < s.min):
            raise ConfigError(f"{opt}={value:g} is outside {s.interval()}: raise it{_default(s)}")
        if s.max is not None and value > s.max:
            raise ConfigError(f"{opt}={value:g} is outside {s.interval()}: lower it{_default(s)}")
        return value
    if s.type == "str" and not isinstance(value, str):
        raise ConfigError(f"{opt}={value!r} is not text")
    if s.type == "dict" and not isinstance(value, dict):
        raise ConfigError(f"{opt}={value!r} is not a mapping")
    return value


def _default(s: KnobSpec) -> str:
    return "" if s.default is None else f" (default {s.default})"


def _number(opt: str, value, kind: str):
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise ConfigError(f"{opt}={value!r} is not a number: give a {kind}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{opt}={value!r} is not a number: give a {kind}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{opt}={value!r} is not a finite number: give a {kind}")
    if kind == "int":
        if x != int(x):
            raise ConfigError(f"{opt}={value!r} is not a whole number: give an int")
        return int(x)
    return x
