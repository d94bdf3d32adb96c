"""A user's own reward function, loaded by import and checked before anything trains on it.

    fn, name = load_function("my_rewards:score")       # a module on sys.path, or my_rewards.py in the folder
    fn, name = load_function("path/to/rewards.py:score")
    probe(fn, name, {"completions": ["18", ""], "answer": ["18", "18"], "prompts": ["q", "q"]})
    floats(fn(**columns), 2, name)                     # what every call's return must be

The function has TRL's reward signature, f(completions, answer, **columns) -> list[float]: it is called
with keyword arguments (TRL's `prompts`, `completions`, and the dataset's columns: `answer`, `id`, `task`,
`difficulty`) and returns one finite number per completion. `name` comes back canonical: a file is named
by its absolute path, so a detached trainer or a verl worker in another folder loads the same function.
Every problem is a RewardError naming the --reward option, the function and what to do.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from sgpo.errors import RewardError

OPTION = "--reward"
SIGNATURE = "f(completions, answer, **columns) -> list[float]"


def load_function(name: str, option: str = OPTION) -> tuple[Callable, str]:
    """(the function, its canonical name) for `MODULE:FUNCTION` or `FILE.py:FUNCTION`."""
    module_part, _, function = name.strip().rpartition(":")
    if not module_part or not function.isidentifier():
        raise RewardError(
            f"{option} {name!r}: a custom reward is written MODULE:FUNCTION or path/to/file.py:FUNCTION, "
            f"a function with TRL's reward signature {SIGNATURE}"
        )
    module, where = _import(module_part, name, option)
    fn = getattr(module, function, None)
    if fn is None:
        public = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise RewardError(
            f"{option} {name}: {where} has no {function!r} (its functions: {', '.join(public) or 'none'}); "
            f"name the reward function after the colon"
        )
    if not callable(fn):
        raise RewardError(f"{option} {name}: {where}.{function} is a {type(fn).__name__}, not a function")
    return fn, f"{where}:{function}"


def _import(module_part: str, name: str, option: str):
    """(module, how it is named canonically): a file path, or a dotted module found on sys.path or, failing
    that, as a .py file in the current folder."""
    looks_like_file = module_part.endswith(".py") or "/" in module_part or "\\" in module_part
    if not looks_like_file:
        try:
            return importlib.import_module(module_part), module_part
        except ModuleNotFoundError as exc:
            local = Path(*module_part.split(".")).with_suffix(".py")
            if exc.name != module_part.split(".")[0] or not local.is_file():
                raise RewardError(
                    f"{option} {name}: cannot import {module_part} ({exc}); put its folder on PYTHONPATH, "
                    f"or give the file: path/to/{local.name}:{name.rpartition(':')[2]}"
                ) from None
            module_part = str(local)
        except Exception as exc:  # the user's module raised while importing
            raise RewardError(f"{option} {name}: importing {module_part} raised {said(exc)}") from None
    path = Path(module_part).expanduser().resolve()
    if not path.is_file():
        raise RewardError(f"{option} {name}: reward file {path} does not exist; check the path")
    key = "sgpo_reward_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if key in sys.modules:
        return sys.modules[key], str(path)
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or spec.loader is None:
        raise RewardError(f"{option} {name}: {path} cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # before running it: dataclasses and pickling look their module up there
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[key]
        raise RewardError(f"{option} {name}: importing {path} raised {said(exc)}") from None
    return module, str(path)


def source_file(name: str) -> Path | None:
    """The file a MODULE:FUNCTION (or path.py:FUNCTION) reward would be imported from, found without running
    anything: the dashboard checks it lies in a folder it may read before importing it. None when the module
    has no file of its own (one built into Python) or is not found."""
    module_part = name.strip().rpartition(":")[0]
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        return Path(module_part).expanduser().resolve()
    parts = module_part.split(".")
    try:
        found = importlib.util.find_spec(parts[0])  # a top-level name is found, not imported
    except (ImportError, ValueError):
        found = None
    if found is None:
        local = Path(*parts).with_suffix(".py")  # what _import falls back to
        return local.resolve() if local.is_file() else None
    if len(parts) == 1:
        return Path(found.origin).resolve() if found.origin and Path(found.origin).is_file() else None
    for folder in found.submodule_search_locations or []:
        for candidate in (Path(folder, *parts[1:]).with_suffix(".py"), Path(folder, *parts[1:], "__init__.py")):
            if candidate.is_file():
                return candidate.resolve()
    return None


def probe(fn: Callable, name: str, columns: dict[str, list], option: str = OPTION) -> None:
    """Call `fn` once on `columns` (keyword lists, `completions` among them) and check its return."""
    try:
        values = fn(**columns)
    except Exception as exc:
        raise RewardError(
            f"{option} {name}: calling it on {len(columns['completions'])} probe completions with "
            f"{', '.join(columns)} raised {said(exc)}; a reward has TRL's signature {SIGNATURE}"
        ) from None
    floats(values, len(columns["completions"]), name, option)


def floats(values, n: int, name: str, option: str = OPTION) -> list[float]:
    """`values` as n finite floats; RewardError saying what came back otherwise."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        raise RewardError(
            f"{option} {name} returned {type(values).__name__}, not a list of {n} floats; "
            f"a reward has TRL's signature {SIGNATURE}"
        )
    values = list(values)
    if len(values) != n:
        raise RewardError(
            f"{option} {name} returned {len(values)} values for {n} completions; return one float per completion"
        )
    out = []
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not math.isfinite(number):
            raise RewardError(
                f"{option} {name} returned {value!r} ({type(value).__name__}) for completion {i}, not a "
                f"finite number; return 0.0 for a completion it cannot score"
            )
        out.append(number)
    return out


def said(exc: BaseException) -> str:
    """`KeyError: 'task' (at my_rewards.py:12)`: the exception and the line of the user's code that raised it."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    frames = traceback.extract_tb(exc.__traceback__)
    at = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__) + at
