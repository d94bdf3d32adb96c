"""The plan lifecycle, as library calls. `sgpo plan ...` and the dashboard's Plan page only call these.

    from sgpo import plans
    from sgpo.plan import PlanConfig
    made = plans.make("first", PlanConfig(trivial_threshold=0.6), store)   # the profile's p_hat + the planner
    made.plan.counts["learnable"], made.warnings, made.to_json()["forecast"]["ratio"]
    plans.save(made, "easy-first", store)              # the one check of the name; returns the plan's id
    plans.load("easy-first", store)["counts"]          # what was saved (config, counts, forecast)
    [p["name"] for p in plans.list_plans(store)]
    plans.export(made, "trl", tmp / "trl-plan", store)       # phase-K.jsonl + manifest.json for TRL
    plans.export("easy-first", "verl", tmp / "verl-plan", store)   # a saved plan, remade: verl parquet
    plans.train_config("easy-first", TrainConfig(steps=50), store)  # what `sgpo train --plan easy-first` runs
    plans.recommend(made, store, pilot_run="baseline")  # rollouts a step from a run's critical-batch gauge

The planner itself is pure (sgpo/plan/); this module reads its profile from the store and writes what the
user asks for. A saved plan keeps its config, counts and forecast; remaking it from its profile and config
gives the same plan while the profile is finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from sgpo import export as exporters
from sgpo import gauge
from sgpo.errors import ConfigError, DataError, StoreError
from sgpo.knobs import option
from sgpo.plan import Plan, PlanConfig, make_plan
from sgpo.profile import plan_warnings
from sgpo.store import Store
from sgpo.train.config import PLAN_FROM_RUN, TrainConfig

TARGETS = ("trl", "verl")  # trainers a plan is exported for


@dataclass
class Made:
    """A plan with the profile it was made from and what it should be read with (plan_warnings)."""

    plan: Plan
    profile: dict  # the profile's row
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """What `sgpo plan --json` prints: the profile's id, counts, phases (without query ids), forecast,
        config and warnings."""
        return {"profile_id": self.profile["id"], **self.plan.to_json(ids=False), "warnings": self.warnings}


def make(profile_ref: str | int, config: PlanConfig | None, store: Store, *, frame: pd.DataFrame | None = None) -> Made:
    """The plan for a profile (id or name) at `config`'s knobs (default PlanConfig()), priced with the
    profile's model size and profiling FLOPs. `frame`: the profile's frame when the caller holds it already
    (the dashboard caches it); read from the store otherwise. ConfigError when the knobs keep nothing.

    >>> plans.make("first", PlanConfig(group_rule="pow2"), store).plan.counts["by_group_size"]
    """
    row = store.find_profile(profile_ref)
    frame = store.profile_frame(row["id"]) if frame is None else frame
    plan = make_plan(
        frame, config or PlanConfig(), n_params=row["n_params"] or None, flops_profile=float(row["flops"] or 0.0)
    )
    return Made(plan, row, plan_warnings(row, plan))


def save(made: Made, name: str, store: Store, *, option: str = "--save") -> int:
    """Store the plan under a new name (checked once, by the store: `option` is what the error names);
    returns its id.

    >>> plans.save(plans.make("first", None, store), "defaults", store)
    """
    name = store.check_new_name("plan", name, option)
    out = made.to_json()
    return store.save_plan(
        name=name,
        profile_id=made.profile["id"],
        config=made.plan.config.to_dict(),
        counts=out["counts"],
        forecast=out["forecast"],
    )


def load(ref: str | int, store: Store) -> dict:
    """A saved plan (id or name): its row with config, counts and forecast, and its profile's name.

    >>> plans.load("easy-first", store)["config"]["trivial_threshold"]
    """
    saved = store.find_plan(ref)
    return {**saved, "profile": store.find_profile(saved["profile_id"])["name"]}


def remake(ref: str | int, store: Store) -> Made:
    """A saved plan made again from its profile and its stored config.

    >>> plans.remake("easy-first", store).plan.counts
    """
    saved = store.find_plan(ref)
    return make(saved["profile_id"], PlanConfig.from_dict(saved["config"]), store)


def list_plans(store: Store) -> list[dict]:
    """Every saved plan, oldest first: id, name, profile id and name, when, its counts and its forecast's
    compute ratio.

    >>> [(p["name"], p["profile"]) for p in plans.list_plans(store)]
    """
    names = {p["id"]: p["name"] for p in store.profiles()}
    out = []
    for row in store.plans():
        saved = store.find_plan(row["id"])
        out.append(
            {
                "id": saved["id"],
                "name": saved["name"],
                "profile_id": saved["profile_id"],
                "profile": names.get(saved["profile_id"]),
                "created": saved["created"],
                "counts": saved["counts"],
                "ratio": saved["forecast"].get("ratio"),
            }
        )
    return out


def export(
    plan: Made | str | int,
    target: str,
    out_dir: str | Path,
    store: Store,
    *,
    dataset: str | None = None,
    reward: str | None = None,
    ability: str | None = None,
    data_source: str | None = None,
) -> Path:
    """Write the plan for another trainer into `out_dir` (created if missing; an older export there is
    replaced, a folder holding anything else refused): "trl" (phase-K.jsonl with num_generations per phase in
    manifest.json) or "verl" (phase-K.parquet in verl's RL schema, data_source `data_source` (default the
    dataset's name), each phase's command hooking up sgpo's compute_score). `plan`: a made plan, or a saved
    plan's id or name (remade from its profile). The rows are the profile's own, read with the mapping and
    reward its dataset was recorded with; `dataset` says where they are read from when the file moved, and
    `reward` scores them with another reward than the one the profile measured with. DataError
    naming the option on a folder that cannot be written. Returns the folder (sgpo.export.written lists the
    files).

    >>> plans.export(plans.make("first", None, store), "trl", tmp / "trl-defaults", store)
    """
    if target not in TARGETS:
        raise ConfigError(f"export target {target!r}: one of {', '.join(TARGETS)}")
    made = plan if isinstance(plan, Made) else remake(plan, store)
    option = f"--export-{target}"
    try:
        if target == "trl":
            return exporters.export_trl(made.plan, made.profile, Path(out_dir), dataset, store=store, reward=reward)
        return exporters.export_verl(
            made.plan,
            made.profile,
            Path(out_dir),
            dataset,
            store=store,
            reward=reward,
            ability=ability,
            data_source=data_source,
        )
    except OSError as exc:  # a parent that is a file, no permission, a full disk
        raise DataError(
            f"{option} {out_dir}: cannot write there ({exc.strerror or exc}): give a writable folder"
        ) from None


def train_config(ref: str | int, config: TrainConfig, store: Store, *, given: dict | None = None) -> TrainConfig:
    """`config` set to train saved plan `ref` (`sgpo train --plan NAME`): strategy sgpo, the plan's profile
    and its knobs (the run's own seed, steps, FLOPs budget and batch stay the run's). `given`: the options the
    caller set (name -> value, e.g. {"profile": "other", "trivial_threshold": 0.6}); one that contradicts the
    saved plan is refused in one line naming it.

    >>> cfg = plans.train_config("easy-first", TrainConfig(steps=50), store)
    """
    saved = load(ref, store)
    knobs = {k: v for k, v in saved["config"].items() if k not in PLAN_FROM_RUN or k == "seed"}
    wanted = {"profile": saved["profile"], "strategy": "sgpo", **{f"plan.{k}": v for k, v in knobs.items()}}
    for key, value in (given or {}).items():
        theirs = wanted.get(key if key in ("profile", "strategy") else f"plan.{key}")
        if value is None or theirs is None or value == theirs:
            continue
        if key == "profile" and str(value) in (str(saved["profile_id"]), saved["profile"]):
            continue
        raise ConfigError(
            f"{option(key)} {value} contradicts saved plan {saved['name']!r} ({option(key)} {theirs}): drop the "
            f"option to train the plan as saved, or make and save another plan"
        )
    return replace(config, strategy="sgpo", profile=saved["profile"], plan=knobs)


def recommend(
    made: Made, store: Store, *, pilot_run: str | int | None = None, pilot_steps: int | None = None, log=None
) -> dict:
    """The rollouts a step recommended for the plan from a measured critical-batch gauge (sgpo.gauge.recommend:
    B_simple in informative rollouts over the plan's forecast informative share, and GRPO's): an earlier run's
    (`pilot_run`: any run whose steps logged the gauge, best one on the same profile) or a throwaway pilot of
    `pilot_steps` steps on the plan (sgpo.gauge.pilot: nothing is written to the store). Kept in the plan's
    forecast as "recommended" (so `sgpo plan --json`, a saved plan and the Plan page carry it) and returned.
    ConfigError naming the option: both or neither given, a plan with nothing learnable, a run without gauge.

    >>> plans.recommend(plans.make("first", None, store), store, pilot_run="baseline")["rollouts_per_step"]
    """
    if (pilot_run is None) == (pilot_steps is None):
        raise ConfigError("--pilot-run RUN or --pilot-steps K measures the critical batch: give one of them")
    option = f"--pilot-run {pilot_run}" if pilot_run is not None else f"--pilot-steps {pilot_steps}"
    if not made.plan.counts["learnable"]:
        raise ConfigError(
            f"{option}: the plan of profile {made.profile['name']!r} has nothing learnable (no query between "
            f"unsolved and trivial), so it has no informative rollouts to size its steps by"
        )
    if pilot_run is None:
        assert pilot_steps is not None  # one of the two: checked above
        verdict = gauge.pilot(made.profile["id"], made.plan.config, store, steps=pilot_steps, log=log)
        source = f"a {pilot_steps}-step pilot"
    else:
        try:
            run = store.find_run(pilot_run)
        except StoreError as exc:
            raise ConfigError(f"{option}: {exc}") from None
        config = TrainConfig.from_dict(run["config"])
        verdict = gauge.verdict(store.metrics_frame(run["id"]), config.batch_rollouts, engine=config.engine)
        if not verdict["steps"]:
            raise ConfigError(
                f"{option}: run {run['name']!r} logged no critical-batch gauge ({verdict['words']}): pick a run that "
                f"did (sgpo train on --engine native), or measure one with --pilot-steps 30"
            )
        source = run["name"]
    made.plan.forecast["recommended"] = gauge.recommend(made.plan.forecast, verdict, source=source)
    return made.plan.forecast["recommended"]
