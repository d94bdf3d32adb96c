"""Everything a run needs, checked before anything is written: dataset, model, profile, plan, budget,
run name. A bad input raises SgpoError naming the option, and no run row or folder exists yet.

    prep = prepare(TrainConfig(strategy="sgpo", profile="1", steps=50), store, run_name="a")
    run_id = create_run(prep, store)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sgpo.data import Dataset, load_dataset
from sgpo.errors import ConfigError, StoreError
from sgpo.model import ModelRef, resolve_model
from sgpo.store import Store
from sgpo.train.batches import Pacing, Phase
from sgpo.train.config import TrainConfig, option

RUN_STATUSES = ("created", "running", "stopped", "finished", "failed")


@dataclass
class Prepared:
    config: TrainConfig
    run_name: str
    dataset: Dataset
    model: ModelRef
    eval_dataset: Dataset | None
    profile: dict | None = None  # the profiles row (sgpo)
    profile_frame: pd.DataFrame | None = None
    rows: np.ndarray | None = None  # dataset row of each profile position
    plan: object | None = None  # sgpo.plan.Plan
    plan_config: object | None = None
    warnings: list[str] = field(default_factory=list)  # printed by the CLI, kept in the run's events

    @property
    def flops_profile(self) -> float:
        return float(self.profile["flops"] or 0.0) if self.profile else 0.0


def prepare(cfg: TrainConfig, store: Store, *, run_name: str | None, resuming: bool = False) -> Prepared:
    cfg.validate()
    name = run_name or f"{cfg.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not resuming and list(store.db["runs"].rows_where("name = ?", [name])):
        raise ConfigError(f"--run-name {name!r} is taken by another run in {store.path}: choose another name, or "
                          f"continue that run with --resume {name}")
    stale = checkpoint_root(store, name)
    if not resuming and stale.exists() and any(stale.iterdir()):
        # another store in the same folder (or a deleted one) used this name: its weights are not this run's
        raise ConfigError(f"--run-name {name!r}: {stale} already holds checkpoints that no run of {store.path} owns "
                          f"(another store in that folder used the name): choose another name or remove that folder")
    dataset = load_dataset(cfg.dataset)
    model = resolve_model(cfg.model)
    eval_ds = load_dataset(cfg.eval_dataset) if cfg.eval_every else None
    prep = Prepared(config=cfg, run_name=name, dataset=dataset, model=model, eval_dataset=eval_ds)
    if cfg.strategy == "sgpo":
        _attach_plan(prep, store)
    if cfg.flops_budget is not None and cfg.flops_budget <= prep.flops_profile:
        raise ConfigError(f"--flops-budget {cfg.flops_budget:.3g} is spent by profiling alone "
                          f"({prep.flops_profile:.3g} FLOPs in profile {cfg.profile}): raise it")
    return prep


def _attach_plan(prep: Prepared, store: Store) -> None:
    from sgpo.plan import PlanConfig, make_plan

    cfg = prep.config
    try:
        profile = store.find_profile(cfg.profile)
    except StoreError as exc:
        raise ConfigError(f"--profile {cfg.profile}: {exc}") from None
    if profile["status"] != "done":
        raise ConfigError(f"--profile {cfg.profile} is unfinished ({profile['queries_done']} of "
                          f"{profile['queries_total']} queries): run the same `sgpo profile` command again to finish it")
    if profile["dataset_hash"] != prep.dataset.hash:
        raise ConfigError(f"--profile {cfg.profile} was made on dataset {profile['dataset_spec']} (hash "
                          f"{profile['dataset_hash']}), not on --dataset {cfg.dataset} (hash {prep.dataset.hash}): "
                          f"pass the profile's dataset, or profile this one first")
    if profile["model_hash"] != prep.model.weights_hash:
        raise ConfigError(f"--profile {cfg.profile} measured model {profile['model_spec']} (weights "
                          f"{profile['model_hash']}), not --model {cfg.model} (weights {prep.model.weights_hash}): "
                          f"profile this model first (sgpo profile {cfg.dataset} --model {cfg.model})")
    prep.profile = profile
    frame = store.profile_frame(profile["id"])
    index = pd.Series(np.arange(len(prep.dataset)), index=prep.dataset.frame["id"].to_numpy())
    missing = ~frame["id"].isin(index.index)
    if missing.any():
        raise ConfigError(f"--profile {cfg.profile} holds query ids absent from --dataset {cfg.dataset} "
                          f"(e.g. {frame['id'][missing].iloc[0]!r})")
    plan_config = PlanConfig.from_dict({**cfg.plan, "seed": cfg.plan.get("seed", cfg.seed)})
    try:
        plan = make_plan(frame, plan_config, n_params=prep.model.n_params, flops_profile=prep.flops_profile)
    except ConfigError as exc:
        raise ConfigError(f"the plan of --profile {cfg.profile} keeps no query to train on: {exc} (options "
                          f"--trivial-threshold, --unsolved-keep)") from None
    if not phases_from_plan(plan):
        raise ConfigError(f"the plan of --profile {cfg.profile} keeps no query to train on ({plan.counts}): raise "
                          f"--trivial-threshold or --unsolved-keep")
    prep.profile_frame, prep.plan, prep.plan_config = frame, plan, plan_config
    prep.warnings += sampling_mismatch(profile, cfg)
    prep.rows = index.loc[frame["id"].to_numpy()].to_numpy()


def sampling_mismatch(profile: dict, cfg: TrainConfig) -> list[str]:
    """p_hat means "success rate under the training sampler": say so when the profile sampled otherwise."""
    out = []
    for knob, theirs, ours in (("temperature", float(profile["temperature"]), float(cfg.temperature)),
                               ("max_new_tokens", int(profile["max_new_tokens"]), int(cfg.max_new_tokens))):
        if theirs != ours:
            out.append(f"profile {profile['name']!r} sampled with {knob}={theirs:g} but training uses {ours:g}: "
                       f"its p_hat may not be the training success rate (profile again with {option(knob)} {ours:g}, "
                       f"or train with {option(knob)} {theirs:g})")
    return out


def phases_from_plan(plan) -> list[Phase]:
    """The trainer's view of a plan's phases (profile positions, G per member); empty phases left out."""
    ordered = plan.config.curriculum == "sorted"
    return [Phase(group_size=int(ph.group_size) or None, members=np.asarray(ph.positions, dtype=np.int64),
                  sizes=np.asarray(ph.group_sizes, dtype=np.int64), ordered=ordered)
            for ph in plan.phases if ph.count]


def pacing_of(plan_config) -> Pacing:
    return Pacing(curriculum=plan_config.curriculum, steps_per_phase=plan_config.steps_per_phase,
                  plateau_patience=plan_config.plateau_patience, plateau_min_delta=plan_config.plateau_min_delta)


def create_run(prep: Prepared, store: Store) -> int:
    cfg = prep.config
    return store.create_run(name=prep.run_name, strategy=cfg.strategy, config=cfg.to_dict(),
                            profile_id=prep.profile["id"] if prep.profile else None,
                            dataset_hash=prep.dataset.hash, model_hash=prep.model.weights_hash)


def checkpoint_root(store: Store, run_name: str) -> Path:
    return store.path.resolve().parent / "checkpoints" / run_name


def log_path(store: Store, run_name: str) -> Path:
    return store.path.resolve().parent / "logs" / f"{run_name}.log"


def check_resumable(run: dict, store: Store) -> None:
    """A finished run cannot resume; a live one must not be run twice."""
    import os

    if run["status"] == "finished":
        raise ConfigError(f"--resume {run['name']}: that run finished at step {run['step']}; start a new run "
                          f"(another --run-name) to train further")
    pid = run.get("pid")
    if run["status"] == "running" and pid and pid != os.getpid() and pid_alive(pid):
        raise ConfigError(f"--resume {run['name']}: it is running now (pid {pid}); stop it first with "
                          f"`sgpo runs stop {run['name']}`")


def pid_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
