"""Everything a run needs, checked before anything is written, and read back when the run starts.

    prep = prepare(TrainConfig(strategy="sgpo", profile="1", steps=50), store, name="a")   # checks, builds the plan
    run_id = store.create_run(**prep.run_row())                                           # the plan is stored once
    prep = load(store.find_run(run_id), store)           # in the process that trains: nothing is re-planned

A bad input raises SgpoError naming the option, and no run row or folder exists yet. The plan is made
once, in `prepare`, and stored with the run (phases included), so the trainer runs exactly the plan
that `sgpo plan` and the dashboard showed, whichever process starts it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sgpo.data import Dataset, load_dataset
from sgpo.device import resolve_device
from sgpo.distributed import rank_and_world
from sgpo.errors import ConfigError, StoreError
from sgpo.generate import fit_prompts
from sgpo.knobs import option
from sgpo.model import ModelRef, context_length, load_tokenizer, resolve_model
from sgpo.paths import checkpoint_root
from sgpo.plan import Phase, PlanConfig, make_plan
from sgpo.store import Store, check_name
from sgpo.train import trl_config
from sgpo.train.config import TrainConfig
from sgpo.vocab import PROFILE_DONE


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
    phases: list[Phase] = field(default_factory=list)  # the plan the sampler runs (sgpo)
    plan_record: dict | None = None  # what the run stores: config, counts, forecast, phases
    warnings: list[str] = field(default_factory=list)  # printed by the CLI, kept in the run's events

    @property
    def flops_profile(self) -> float:
        return float(self.profile["flops"] or 0.0) if self.profile else 0.0

    @property
    def plan_config(self) -> PlanConfig | None:
        return PlanConfig.from_dict(self.plan_record["config"]) if self.plan_record else None

    def run_row(self) -> dict:
        cfg = self.config
        return {
            "name": self.run_name,
            "strategy": cfg.strategy,
            "config": cfg.to_dict(),
            "plan": self.plan_record,
            "profile_id": self.profile["id"] if self.profile else None,
            "dataset_hash": self.dataset.hash,
            "model_hash": self.model.weights_hash,
        }


def prepare(cfg: TrainConfig, store: Store | None, *, name: str | None, db_path=None) -> Prepared:
    """Check a new run's config against the store, its data, model and profile, and make its plan.
    store=None: the store at db_path does not exist yet (so it holds no run and no profile)."""
    cfg.validate()
    if cfg.strategy == "sgpo" and not cfg.profile:
        raise ConfigError(
            "--strategy sgpo needs --profile PROFILE (an id or name from `sgpo profile list`): "
            "the plan is made from its p_hat"
        )
    name = name or f"{cfg.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"
    db_path = store.path if store is not None else db_path
    if store is None:  # no store yet: no name is taken
        name = check_name(name, "run")
    else:
        try:
            name = store.check_new_name("run", name)
        except StoreError as exc:
            raise ConfigError(f"--name {name!r}: {exc}") from None
    stale = checkpoint_root(db_path, name)
    if stale.exists() and any(stale.iterdir()):
        # another store in the same folder (or a deleted one) used this name: its weights are not this run's
        raise ConfigError(
            f"--name {name!r}: {stale} already holds checkpoints that no run of {db_path} owns "
            f"(another store in that folder used the name): choose another name or remove that folder"
        )
    device = resolve_device(cfg.device)  # --device cuda without a GPU is refused here, before anything is written
    world = rank_and_world()[1]
    if cfg.engine == "trl":
        trl_config.check_grpo_config(cfg, device, world)
        if cfg.strategy != "sgpo":
            trl_config.check_batch(cfg.batch_rollouts, cfg.group_size, world)
    prep = _load_inputs(cfg, name)
    if cfg.strategy == "sgpo":
        if store is None:
            raise ConfigError(
                f"--profile {cfg.profile}: the store {db_path} does not exist yet, so it holds no "
                f"profile: profile the dataset first (sgpo profile {cfg.dataset} --db {db_path})"
            )
        _attach_profile(prep, store)
        _make_plan(prep)
        prep.warnings += sampling_mismatch(prep.profile or {}, cfg)
        if cfg.engine == "trl":  # what TRL cannot run is refused; a small phase trains fewer prompts a step
            prep.warnings += trl_config.check_phases(prep.phases, cfg.batch_rollouts, world)
    if cfg.flops_budget is not None and cfg.flops_budget <= prep.flops_profile:
        raise ConfigError(
            f"--flops-budget {cfg.flops_budget:.3g} is spent by profiling alone "
            f"({prep.flops_profile:.3g} FLOPs in profile {cfg.profile}): raise it"
        )
    return prep


def load(run: dict, store: Store) -> Prepared:
    """A stored run's inputs, in the process that trains it: its plan is read back, never remade."""
    cfg = TrainConfig.from_dict(run["config"])
    prep = _load_inputs(cfg, run["name"])
    if prep.model.weights_hash != run.get("model_hash", prep.model.weights_hash):
        raise ConfigError(
            f"run {run['name']!r} trained {cfg.model} with weights {run['model_hash']}, but "
            f"{prep.model.path} now holds {prep.model.weights_hash}: start a new run"
        )
    if cfg.strategy == "sgpo":
        _attach_profile(prep, store)
        if run.get("plan"):
            prep.plan_record = run["plan"]
            prep.phases = [Phase.from_dict(d) for d in run["plan"]["phases"]]
        else:  # a run created before plans were stored with their runs (store schema v1)
            _make_plan(prep)
    return prep


def _load_inputs(cfg: TrainConfig, name: str) -> Prepared:
    dataset = load_dataset(cfg.dataset)
    model = resolve_model(cfg.model)
    eval_ds = load_dataset(cfg.eval_dataset) if cfg.eval_every else None
    warnings = []
    for ds in filter(None, (dataset, eval_ds)):
        warnings += _fit_to_context(ds, model, cfg)
    return Prepared(config=cfg, run_name=name, dataset=dataset, model=model, eval_dataset=eval_ds, warnings=warnings)


def _fit_to_context(ds: Dataset, model: ModelRef, cfg: TrainConfig) -> list[str]:
    """Prompts must fit the model's context with --max-new-tokens after them: refused, naming the query,
    unless --truncate-prompts (which keeps each prompt's end, where the question is)."""
    context = context_length(model.path)
    if context is None:
        return []
    frame = ds.frame
    fitted = fit_prompts(
        frame["prompt"].tolist(),
        frame["id"].tolist(),
        load_tokenizer(model.path),
        context=context,
        max_new_tokens=cfg.max_new_tokens,
        truncate=cfg.truncate_prompts,
    )
    if not fitted.cut:
        return []
    ds.frame = frame.assign(prompt=fitted.prompts)
    return [f"{ds.spec}: {fitted.warning(context, cfg.max_new_tokens)}"]


def _attach_profile(prep: Prepared, store: Store) -> None:
    cfg = prep.config
    if cfg.profile is None:
        raise ConfigError("--strategy sgpo needs --profile PROFILE (an id or name from `sgpo profile list`)")
    try:
        profile = store.find_profile(cfg.profile)
    except StoreError as exc:
        raise ConfigError(f"--profile {cfg.profile}: {exc}") from None
    if profile["status"] != PROFILE_DONE:
        raise ConfigError(
            f"--profile {cfg.profile} is unfinished ({profile['queries_done']} of "
            f"{profile['queries_total']} queries): run the same `sgpo profile` command again to finish it"
        )
    if profile["dataset_hash"] != prep.dataset.hash:
        raise ConfigError(
            f"--profile {cfg.profile} was made on dataset {profile['dataset_spec']} (hash "
            f"{profile['dataset_hash']}), not on --dataset {cfg.dataset} (hash {prep.dataset.hash}): "
            f"pass the profile's dataset, or profile this one first"
        )
    if profile["model_hash"] != prep.model.weights_hash:
        raise ConfigError(
            f"--profile {cfg.profile} measured model {profile['model_spec']} (weights "
            f"{profile['model_hash']}), not --model {cfg.model} (weights {prep.model.weights_hash}): "
            f"profile this model first (sgpo profile {cfg.dataset} --model {cfg.model})"
        )
    frame = store.profile_frame(profile["id"])
    index = pd.Series(np.arange(len(prep.dataset)), index=prep.dataset.frame["id"].to_numpy())
    missing = ~frame["id"].isin(index.index)
    if missing.any():
        raise ConfigError(
            f"--profile {cfg.profile} holds query ids absent from --dataset {cfg.dataset} "
            f"(e.g. {frame['id'][missing].iloc[0]!r})"
        )
    prep.profile, prep.profile_frame = profile, frame
    prep.rows = index.loc[frame["id"].to_numpy()].to_numpy()


def _make_plan(prep: Prepared) -> None:
    cfg = prep.config
    run = {
        "run_steps": cfg.max_steps or PlanConfig.spec("run_steps").default,
        "run_flops": cfg.flops_budget,
        "run_batch_rollouts": cfg.batch_rollouts,
    }  # the forecast is of this run
    plan_config = PlanConfig.from_dict({**cfg.plan, "seed": cfg.plan.get("seed", cfg.seed), **run})
    try:
        plan = make_plan(
            prep.profile_frame, plan_config, n_params=prep.model.n_params, flops_profile=prep.flops_profile
        )
    except ConfigError as exc:
        raise ConfigError(f"the plan of --profile {cfg.profile} keeps no query to train on: {exc}") from None
    prep.phases, prep.plan_record = plan.phases, plan.to_record()


def sampling_mismatch(profile: dict, cfg: TrainConfig) -> list[str]:
    """p_hat means "success rate under the training sampler": say so when the profile sampled otherwise."""
    out = []
    for knob, theirs, ours in (
        ("temperature", float(profile["temperature"]), float(cfg.temperature)),
        ("max_new_tokens", int(profile["max_new_tokens"]), int(cfg.max_new_tokens)),
    ):
        if theirs != ours:
            out.append(
                f"profile {profile['name']!r} sampled with {knob}={theirs:g} but training uses {ours:g}: "
                f"its p_hat may not be the training success rate (profile again with {option(knob)} {ours:g}, "
                f"or train with {option(knob)} {theirs:g})"
            )
    return out
