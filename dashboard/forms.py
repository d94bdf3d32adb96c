"""What the pages' forms build: the config a form describes and the exact command line it runs, shown under
the button so the dashboard never does what the CLI cannot. Plain functions over the widgets' values.

    forms.profile_line("builtin:train", "starter", ProfileConfig(samples=4), "first")   # `sgpo profile ...`
    forms.train_config("sgpo", profile, {"steps": 50})                                # a TrainConfig
    forms.train_argv(cfg, "sgpo-1")                                                   # `sgpo train ... --detach`
"""

from __future__ import annotations

import dataclasses
import shlex

from dashboard import state
from sgpo import launch, profiles
from sgpo.data_spec import ROLES, DatasetSpec
from sgpo.errors import ConfigError
from sgpo.knobs import KnobSpec
from sgpo.paths import check_allowed, check_spec_allowed
from sgpo.plan import PlanConfig
from sgpo.profile import ProfileConfig
from sgpo.tasks.reward_import import source_file
from sgpo.tasks.rewards import NAMES
from sgpo.train.config import PLAN_FROM_RUN, TrainConfig
from sgpo.train.setup import profiled_model

TRAIN_KNOBS = ("engine", "steps", "eval_every", "lr", "batch_rollouts", "group_size", "seed")  # always shown
FROM_PROFILE = ("strategy", "profile", "dataset", "model", "plan")  # set by the page, not typed


def unique_name(prefix: str, taken: set[str]) -> str:
    """The first of PREFIX-1, PREFIX-2, ... not in `taken`: a new name to offer."""
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"


# profile ---------------------------------------------------------------------------------------------
MAPPED = ROLES  # the fields the Data page's mapping names, as `sgpo profile --ROLE-field` does
REWARD_HINT = "picked from the answers"
REWARD_HELP = f"{', '.join(NAMES)}, or MODULE:FUNCTION (path/to/file.py:FUNCTION) with TRL's reward signature"


def dataset_spec(dataset: str, mapping: dict) -> DatasetSpec:
    """The dataset the Data page names: the spec typed, with the field mapping and reward given (empty ones
    left to the store's record for this file, then detection). A reward of the user's own is code this server
    would run: its file must lie in a folder the dashboard may read (sgpo.paths.check_allowed)."""
    spec = DatasetSpec.of(dataset.strip(), **{k: v.strip() for k, v in mapping.items() if v and v.strip()})
    if spec.reward is not None and spec.reward not in NAMES:
        source = source_file(spec.reward)
        if source is None:
            raise ConfigError(
                f"reward {spec.reward!r}: no file of its own to check; the dashboard takes {', '.join(NAMES)} or "
                f"path/to/file.py:FUNCTION inside the folders it may read"
            )
        check_allowed(source)
    check_spec_allowed(spec.spec, "dataset")  # nothing outside the allowed folders is inspected or profiled
    return spec


def mapping_words(info: dict) -> str:
    """What `sgpo data inspect` says of a mapping, in one line: rows, each role's field, the reward and why."""
    mapping = info["mapping"]
    roles = ", ".join(f"{r} <- {mapping.get(f'{r}_field') or '-'}" for r in ROLES)
    return f"{info['rows']:,} rows; {roles}; reward {info['reward']}: {info['reward_reason']}"


def profile_line(dataset: str | DatasetSpec, model: str, config: ProfileConfig, name: str) -> str:
    """The `sgpo profile` command that Start profiling runs (sgpo.profiles.cli_argv, the mapping and reward
    spelt as options); SgpoError on an input it would refuse."""
    return launch.cli_line(profiles.cli_argv(dataset, model, config, state.db_path(), name=name.strip()))


# plan ------------------------------------------------------------------------------------------------
def plan_cli_line(profile: dict, knobs: dict) -> str:
    return shlex.join(["sgpo", "plan", str(profile["name"]), *state.plan_config(knobs).cli_args()])


# train -----------------------------------------------------------------------------------------------
def train_knob_specs(more: bool = False) -> list[KnobSpec]:
    """TrainConfig's knob specs: the ones the Train page always shows, or with more=True every other one
    except those the profile decides."""
    specs = {k.name: k for k in TrainConfig.specs()}
    # the page spells out a step count (the CLI's "100 unless --flops-budget" is not a number to show)
    specs["steps"] = dataclasses.replace(specs["steps"], default=TrainConfig.DEFAULT_STEPS)
    if more:
        return [k for n, k in specs.items() if n not in TRAIN_KNOBS + FROM_PROFILE and k.type != "dict"]
    return [specs[n] for n in TRAIN_KNOBS]


def train_config(strategy: str, profile: dict | None, values: dict) -> TrainConfig:
    """The TrainConfig the Train page describes: the chosen profile's dataset and model (a run trains what
    was profiled), the knobs typed on the page, and for sgpo the Plan page's knobs (its seed is --seed)."""
    known = {k.name for k in TrainConfig.specs()}
    fields = {k: v for k, v in values.items() if k in known and v is not None}
    if profile:
        fields |= {"dataset": profile["dataset_spec"], "model": profiled_model(profile), "profile": profile["name"]}
    plan = {}
    if strategy == "sgpo":
        defaults = PlanConfig().to_dict()
        plan = {k: v for k, v in state.plan_config().to_dict().items() if k not in PLAN_FROM_RUN and v != defaults[k]}
    return TrainConfig(**fields, strategy=strategy, plan=plan)


def train_argv(cfg: TrainConfig, name: str) -> list[str]:
    """The `sgpo train` command that creates and starts the same run: the always-shown knobs spelt out
    (the run does what the page shows, whatever the CLI defaults), the others where they differ."""
    always = {"strategy", "profile", "dataset", "model"} | set(TRAIN_KNOBS)
    spelt = []
    for spec in cfg.specs():
        value = getattr(cfg, spec.name)
        if spec.name in always and value is not None and not (spec.name == "profile" and cfg.strategy != "sgpo"):
            spelt += [spec.option, repr(value) if isinstance(value, float) else str(value)]
    rest = cfg.cli_args(skip=tuple(always))
    plan = PlanConfig.from_dict(cfg.plan).cli_args() if cfg.strategy == "sgpo" else []
    return launch.sgpo_argv("train", *spelt, "--name", name, *rest, *plan, "--db", state.db_path(), "--detach")


def accelerate_argv(cfg: TrainConfig, name: str, processes: int) -> list[str]:
    """The same run as `accelerate launch` over `processes` GPUs (TRL engine): the multi-GPU config shipped in
    docs/accelerate/, every process running the same `sgpo train` (in the foreground: the launcher owns them)."""
    argv = train_argv(cfg, name)[1:-1]  # `-m sgpo train ... --db DB`, without the interpreter and --detach
    return [
        "accelerate",
        "launch",
        "--config_file",
        "docs/accelerate/multi_gpu.yaml",
        "--num_processes",
        str(processes),
        *argv,
    ]
