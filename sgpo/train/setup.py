"""Everything a run needs, checked before anything is written, and read back when the run starts.

    prep = prepare(TrainConfig(strategy="sgpo", profile="1", steps=50), store, name="a")   # checks, builds the plan
    run_id = store.create_run(**prep.run_row())                                           # the plan is stored once
    prep = load(store.find_run(run_id), store)           # in the process that trains: nothing is re-planned

A bad input raises SgpoError naming the option, and no run row or folder exists yet. The plan is made
once, in `prepare`, and stored with the run (phases included), so the trainer runs exactly the plan
that `sgpo plan` and the dashboard showed, whichever process starts it.

The data: `--profile P` without `--dataset` trains on P's dataset, read with the mapping and reward recorded
with it (sgpo.data.profiled_dataset); a dataset named alone is read with what the store recorded for it
(sgpo.data.recall). The held-out set (sgpo.data_split.held_out_for): --eval-dataset when given, builtin:eval
for built-in data, else a seeded share of the user's own data, split off once (by prompt, the same for every
run on that data), kept out of training and out of the plan, and made again identically on resume. Prompts are
fitted to the model's context once per dataset, so a truncation warning is said once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sgpo.data import Dataset, DatasetSpec, load_dataset, profiled_dataset, recall, recorded_dataset
from sgpo.data_split import Split, held_out_for, resplit
from sgpo.device import resolve_device
from sgpo.distributed import rank_and_world
from sgpo.errors import ConfigError, DataError, StoreError
from sgpo.knobs import option
from sgpo.model import ModelRef, fit_frame, resolve_model
from sgpo.paths import checkpoint_root
from sgpo.plan import Phase, PlanConfig, make_plan, too_few_learnable
from sgpo.store import Store, check_name
from sgpo.train import trl_config
from sgpo.train.config import TrainConfig
from sgpo.vocab import PROFILE_DONE


@dataclass
class Prepared:
    config: TrainConfig  # with the dataset it trains on named (`--profile`'s when none was given)
    run_name: str
    dataset: Dataset  # what is trained on: the training data, without the held-out part split off it
    model: ModelRef
    eval_dataset: Dataset | None  # the held-out set (None: no evaluation)
    source_hash: str = ""  # the whole training dataset's hash (the profile's and the run's dataset_hash)
    split: Split | None = None  # how the held-out set was chosen (split.record is stored with the run)
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
            "dataset_hash": self.source_hash or self.dataset.hash,
            "model_hash": self.model.weights_hash,
            "held_out": self.split.record if self.split is not None else None,
        }

    def start_words(self) -> str:
        """The run's start line: what it trains on, the reward it scores with and why, and its held-out set."""
        reward = f"reward {self.dataset.reward} ({self.dataset.reward_reason})"
        held = self.split.words if self.split is not None else "no held-out evaluation (--eval-every 0)"
        cfg = self.config
        first = (
            f"; GRPO at G={cfg.group_size} over its first epoch ({len(self.dataset):,} queries), whose groups become "
            f"profile {first_epoch_profile(self.run_name)!r}, then the plan made from it"
            if cfg.plan_from_first_epoch
            else ""
        )
        return f"trains on {cfg.dataset}{first}; {reward}; {held}"


def prepare(cfg: TrainConfig, store: Store | None, *, name: str | None, db_path=None) -> Prepared:
    """Check a new run's config against the store, its data, model and profile, and make its plan.
    store=None: the store at db_path does not exist yet (so it holds no run and no profile)."""
    cfg.validate()
    if cfg.strategy == "sgpo" and not cfg.profile and not cfg.plan_from_first_epoch:
        raise ConfigError(
            "--strategy sgpo needs --profile PROFILE (an id or name from `sgpo profile list`): "
            "the plan is made from its p_hat; or --plan-from-first-epoch to make it from the run's first epoch"
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
    prep = _load_inputs(cfg, name, store)
    if cfg.plan_from_first_epoch:
        _first_epoch_table(prep, store)
    elif cfg.strategy == "sgpo":
        if store is None:
            raise ConfigError(
                f"--profile {cfg.profile}: the store {db_path} does not exist yet, so it holds no "
                f"profile: profile the dataset first (sgpo profile {cfg.dataset or 'DATASET'} --db {db_path})"
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
    prep = _load_inputs(cfg, run["name"], store, run=run)
    if prep.model.weights_hash != run.get("model_hash", prep.model.weights_hash):
        raise ConfigError(
            f"run {run['name']!r} trained {cfg.model} with weights {run['model_hash']}, but "
            f"{prep.model.path} now holds {prep.model.weights_hash}: start a new run"
        )
    if cfg.plan_from_first_epoch:  # its plan is in the checkpoint's sampler state, made at the end of epoch 1
        _first_epoch_table(prep, None)
    elif cfg.strategy == "sgpo":
        _attach_profile(prep, store)
        if run.get("plan"):
            prep.plan_record = run["plan"]
            prep.phases = [Phase.from_dict(d) for d in run["plan"]["phases"]]
        else:  # a run created before plans were stored with their runs (store schema v1)
            _make_plan(prep)
    return prep


def _load_inputs(cfg: TrainConfig, name: str, store: Store | None, *, run: dict | None = None) -> Prepared:
    """The data, model and held-out set of a run: a new one (`run` None: the config's dataset named, from its
    profile if none was) or a stored one (`run`: its dataset by the hash it recorded, its held-out set made again
    as recorded). Each dataset's prompts are fitted to the context once."""
    # sgpo plans from its profile; another strategy reads from it only the data and model not named
    data_from_profile = cfg.strategy == "sgpo" or cfg.dataset is None
    wanted = cfg.profile and (data_from_profile or cfg.model is None)
    profile = _find_profile(cfg, store) if wanted else None
    if run is None or not run.get("dataset_hash"):
        dataset = _training_data(cfg, store, profile if data_from_profile else None)
        # the run records what it trains on, a file by its absolute path: a worker or a resume reads the same
        cfg = replace(cfg, dataset=(dataset.mapping or DatasetSpec(dataset.spec)).spec)
    else:
        dataset = recorded_dataset(
            store,
            run.get("dataset_hash") or "",
            spec=cfg.dataset,
            fallback=cfg.dataset or "builtin:train",
            owner=f"run {run['name']!r} trained on",
            remedy="restore the file, or start a new run",
            reward=cfg.reward,
        )
    if cfg.model is None:  # the profile's model (what its p_hat measured), else the starter
        cfg = replace(cfg, model=profiled_model(profile) if profile else "starter")
    assert cfg.model is not None
    model = resolve_model(cfg.model)
    warnings = _fit_to_context(dataset, model, cfg)
    split = None
    if cfg.eval_every:
        held = None
        if cfg.eval_dataset is not None:
            held = load_dataset(recall(store, cfg.eval_dataset))
            cfg = replace(cfg, eval_dataset=(held.mapping or DatasetSpec(held.spec)).spec)
            if held.hash == dataset.hash:  # the same data: its prompts are fitted already, and said so once
                held = dataset
            else:
                warnings += _fit_to_context(held, model, cfg)
        recorded = (run or {}).get("held_out")
        if recorded:  # a stored run: the same held-out set again (DataError when the data changed under it)
            split = resplit(dataset, recorded) if recorded["kind"] == "split" else held_out_for(dataset, held)
        else:
            split = held_out_for(dataset, held, share=cfg.held_out_share)
        if split.record["kind"] == "builtin":
            warnings += _fit_to_context(split.held_out, model, cfg)
    return Prepared(
        config=cfg,
        run_name=name,
        dataset=split.train if split else dataset,
        model=model,
        eval_dataset=split.held_out if split else None,
        source_hash=dataset.hash,
        split=split,
        profile=profile if cfg.strategy == "sgpo" else None,  # only sgpo's plan (and FLOPs) come from it
        warnings=warnings,
    )


def _training_data(cfg: TrainConfig, store: Store | None, profile: dict | None) -> Dataset:
    """A new run's whole training dataset: --dataset (else the profile's dataset, else builtin:train), read with
    the mapping and reward the store recorded for it (the profile's, when there is one), --reward over it."""
    if profile is None:
        return load_dataset(recall(store, cfg.dataset or "builtin:train", reward=cfg.reward))
    try:
        return profiled_dataset(store, profile, spec=cfg.dataset, reward=cfg.reward)
    except DataError as exc:
        if cfg.dataset is None and cfg.reward is None:
            raise
        named = " and ".join(o for o, v in (("--dataset", cfg.dataset), ("--reward", cfg.reward)) if v)
        raise ConfigError(
            f"--profile {cfg.profile} was made on dataset {profile['dataset_spec']} (hash {profile['dataset_hash']}), "
            f"not on what {named} name ({exc}); drop {named} to train on the profile's data, or profile this one"
        ) from None


def profiled_model(profile: dict) -> str:
    """The model a profile measured, as any process can load it: 'starter', else the folder it was loaded from
    (a local folder, a run's checkpoint, a hub model's download) while that folder exists, else its spec."""
    spec = profile.get("model_spec") or "starter"
    path = profile.get("model_path")
    return str(path) if spec != "starter" and path and Path(path).is_dir() else spec


def _find_profile(cfg: TrainConfig, store: Store | None) -> dict:
    assert cfg.profile is not None  # asked for only when one is named
    if store is None:
        raise ConfigError(f"--profile {cfg.profile}: the store does not exist yet, so it holds no profile")
    try:
        return store.find_profile(cfg.profile)
    except StoreError as exc:
        raise ConfigError(f"--profile {cfg.profile}: {exc}") from None


def _fit_to_context(ds: Dataset, model: ModelRef, cfg: TrainConfig) -> list[str]:
    """Prompts must fit the model's context with --max-new-tokens after them (sgpo.model.fit_frame): the
    dataset's frame is replaced by the fitted one; the warnings name the dataset."""
    ds.frame, warning = fit_frame(
        ds.frame, model.path, max_new_tokens=cfg.max_new_tokens, truncate=cfg.truncate_prompts
    )
    return [f"{ds.spec}: {warning}"] if warning else []


def _attach_profile(prep: Prepared, store: Store) -> None:
    """The profile's frame as the plan and the sampler read it: without the held-out queries (a split of the
    profiled data keeps them out of the plan, on resume too, so stored phase positions stay valid), each
    position mapped to its row of the training data."""
    cfg = prep.config
    if cfg.profile is None:
        raise ConfigError("--strategy sgpo needs --profile PROFILE (an id or name from `sgpo profile list`)")
    profile = prep.profile or _find_profile(cfg, store)
    if profile["status"] != PROFILE_DONE:
        raise ConfigError(
            f"--profile {cfg.profile} is unfinished ({profile['queries_done']} of "
            f"{profile['queries_total']} queries): run the same `sgpo profile` command again to finish it"
        )
    if profile["dataset_hash"] != prep.source_hash:
        raise ConfigError(
            f"--profile {cfg.profile} was made on dataset {profile['dataset_spec']} (hash "
            f"{profile['dataset_hash']}), not on --dataset {cfg.dataset} (hash {prep.source_hash}): "
            f"pass the profile's dataset, or profile this one first"
        )
    if profile["model_hash"] != prep.model.weights_hash:
        raise ConfigError(
            f"--profile {cfg.profile} measured model {profile['model_spec']} (weights "
            f"{profile['model_hash']}), not --model {cfg.model} (weights {prep.model.weights_hash}): "
            f"profile this model first (sgpo profile {cfg.dataset} --model {cfg.model})"
        )
    frame = store.profile_frame(profile["id"])
    if prep.split is not None and len(prep.split.held_out_ids):
        frame = frame[~frame["id"].isin(prep.split.held_out_ids)].reset_index(drop=True)
    index = pd.Series(np.arange(len(prep.dataset)), index=prep.dataset.frame["id"].to_numpy())
    missing = ~frame["id"].isin(index.index)
    if missing.any():
        raise ConfigError(
            f"--profile {cfg.profile} holds query ids absent from --dataset {cfg.dataset} "
            f"(e.g. {frame['id'][missing].iloc[0]!r})"
        )
    prep.profile, prep.profile_frame = profile, frame
    prep.rows = index.loc[frame["id"].to_numpy()].to_numpy()


def run_plan_config(cfg: TrainConfig) -> PlanConfig:
    """The PlanConfig of an sgpo run: its plan knobs, its seed, and its own length and batch for the forecast."""
    run = {
        "run_steps": cfg.max_steps or PlanConfig.spec("run_steps").default,
        "run_flops": cfg.flops_budget,
        "run_batch_rollouts": cfg.batch_rollouts,
    }  # the forecast is of this run
    return PlanConfig.from_dict({**cfg.plan, "seed": cfg.plan.get("seed", cfg.seed), **run})


def first_epoch_profile(run_name: str) -> str:
    """The name of the profile a --plan-from-first-epoch run's first epoch becomes (sgpo/train/first_epoch.py)."""
    return f"{run_name}-epoch1"


def _first_epoch_table(prep: Prepared, store: Store | None) -> None:
    """--plan-from-first-epoch: the run's profile table before any group was seen, one row per query of the
    training data (its first epoch fills the counts in); a new run's profile name must be free."""
    if store is not None:
        try:  # the profile the first epoch becomes is named after the run
            store.check_new_name("profile", first_epoch_profile(prep.run_name))
        except StoreError as exc:
            raise ConfigError(f"--plan-from-first-epoch: {exc}") from None
    frame = prep.dataset.frame
    n = len(frame)
    zeros = np.zeros(n)
    prep.profile_frame = pd.DataFrame(
        {
            "position": np.arange(n),  # the query's row in the training data
            "id": frame["id"].astype(str).to_numpy(),
            "task": frame["task"].astype(str).to_numpy(),
            "difficulty": pd.to_numeric(frame["difficulty"], errors="coerce").fillna(0).astype(np.int64).to_numpy(),
            **{c: zeros for c in ("samples", "successes", "p_hat", "prompt_tokens", "completion_tokens_mean")},
            "completion_tokens_total": zeros,
        }
    )
    prep.rows = np.arange(n)


def _make_plan(prep: Prepared) -> None:
    cfg = prep.config
    plan_config = run_plan_config(cfg)
    try:
        plan = make_plan(
            prep.profile_frame, plan_config, n_params=prep.model.n_params, flops_profile=prep.flops_profile
        )
    except ConfigError as exc:
        raise ConfigError(f"the plan of --profile {cfg.profile} keeps no query to train on: {exc}") from None
    side = plan.forecast["run"]["skip"]["plan"]
    if cfg.batch_informative and side["expected_informative_rollouts"] > 0:
        # steps sized by what they teach hold about N / (informative share) rollouts: the forecast lays them out so
        held = math.ceil(cfg.batch_informative * side["rollouts"] / side["expected_informative_rollouts"])
        plan_config = replace(plan_config, run_batch_rollouts=min(cfg.batch_rollouts, held))
        plan = make_plan(
            prep.profile_frame, plan_config, n_params=prep.model.n_params, flops_profile=prep.flops_profile
        )
    prep.phases, prep.plan_record = plan.phases, plan.to_record()
    if (why := too_few_learnable(prep.plan_record)) and not cfg.force:
        raise ConfigError(f"--profile {cfg.profile}: {why}")


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
