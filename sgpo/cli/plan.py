"""`sgpo plan PROFILE [knobs]`: decisions, phases and the compute forecast next to fixed-G GRPO.

The knob options are generated from PlanConfig. `--save NAME` stores the plan; `--export-trl DIR`
writes one dataset file per phase and a manifest with `num_generations` per phase (sgpo/export.py), so
a TRL user can run the plan with an unmodified GRPOTrainer, phase after phase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sgpo import export
from sgpo.cli.common import DbOption, JsonOption, config_options, open_store, print_json, with_options
from sgpo.errors import DataError, StoreError
from sgpo.plan import PlanConfig, make_plan
from sgpo.plan.forecast import ENGINE_BEHAVIOURS, READING
from sgpo.profile import plan_warnings
from sgpo.store import check_name
from sgpo.units import count, factor, percent
from sgpo.units import flops as human_flops


@with_options(*config_options(PlanConfig))
def plan_command(
    profile: Annotated[str, typer.Argument(help="profile id or name (`sgpo profile list`)")],
    save: Annotated[str | None, typer.Option("--save", help="store the plan under this name")] = None,
    export_trl: Annotated[Path | None, typer.Option("--export-trl", help="write per-phase TRL datasets here")] = None,
    export_verl: Annotated[
        Path | None,
        typer.Option(
            "--export-verl",
            help="write one parquet per phase in verl's RL dataset schema here, with a manifest of "
            "each phase's rollout.n and command",
        ),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="dataset spec for the exports (default: the profile's)")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    **knobs,
) -> None:
    """Plan a run from a profile: which queries to keep, their group sizes, the phases, and the cost."""
    config = PlanConfig.from_dict(knobs)
    if save is not None:
        save = check_name(save, "plan", "--save")
    # only --save writes, and only into a store that exists (a plan needs a profile there)
    store = open_store(db, readonly=save is None, create=False)
    row = store.find_profile(profile)
    if save is not None:
        _check_plan_name_free(store, save)
    frame = store.profile_frame(row["id"])
    plan = make_plan(frame, config, n_params=row["n_params"], flops_profile=row["flops"] or 0.0)
    warnings = plan_warnings(row, plan)
    out = {"profile_id": row["id"], **plan.to_json(ids=False), "warnings": warnings}
    for option, folder, write in (
        ("--export-trl", export_trl, export.export_trl),
        ("--export-verl", export_verl, export.export_verl),
    ):
        if folder is None:
            continue
        try:
            out["export" if option == "--export-trl" else "export_verl"] = str(write(plan, row, folder, dataset))
        except OSError as exc:  # a parent that is a file, no permission, a full disk
            raise DataError(
                f"{option} {folder}: cannot write there ({exc.strerror or exc}): give a writable folder"
            ) from None
    if save:
        out["plan_id"] = store.save_plan(
            name=save, profile_id=row["id"], config=config.to_dict(), counts=out["counts"], forecast=out["forecast"]
        )
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        print_json(out)
        return
    print_plan(row, out, config)


def _check_plan_name_free(store, name: str) -> None:
    try:
        store.find_plan(name)
    except StoreError:
        return
    raise StoreError(f"a plan named {name!r} already exists in {store.path}: choose another --save name")


def print_plan(row: dict, out: dict, config: PlanConfig) -> None:
    c, fc = out["counts"], out["forecast"]
    typer.echo(f"profile {row['id']} ({row['dataset_spec']}, {row['model_spec']}, N={row['samples']})")
    typer.echo(
        f"  trivial {c['trivial']}   learnable {c['learnable']}   unsolved kept {c['unsolved_kept']}   "
        f"unsolved dropped {c['unsolved_dropped']}"
    )
    typer.echo("  learnable by G: " + "  ".join(f"G={g}: {n}" for g, n in c["by_group_size"].items()))
    typer.echo(f"  phases ({config.curriculum}):")
    for ph in out["phases"]:
        g = ph["group_size"] or "mixed"
        typer.echo(f"    {ph['phase']}: G={g:<5} {ph['count']:>6} queries  {ph['rollouts']:>7} rollouts")
    plan, base = fc["plan"], fc["baseline"]
    typer.echo(f"  forecast per epoch        {'plan':>14} {'GRPO G=' + str(config.fixed_group_size):>14}")
    typer.echo(f"    rollouts                {plan['rollouts']:>14,} {base['rollouts']:>14,}")
    typer.echo(
        f"    informative groups      {percent(plan['forecast_informative_fraction']):>14} "
        f"{percent(base['forecast_informative_fraction']):>14}"
    )
    typer.echo(
        f"    wasted rollouts         {percent(plan['forecast_wasted_fraction']):>14} "
        f"{percent(base['forecast_wasted_fraction']):>14}"
    )
    typer.echo(f"    FLOPs (rollout + train) {human_flops(plan['flops']):>14} {human_flops(base['flops']):>14}")
    typer.echo(f"    profiling FLOPs spent   {human_flops(fc['flops_profile']):>14}")
    ratio = fc.get("ratio")
    if not c["learnable"]:
        typer.echo(
            "  compute ratio: none: nothing learnable (no query between unsolved and trivial), so the plan "
            "trains only on unsolved queries"
        )
    else:
        typer.echo(
            f"  compute ratio GRPO / plan: {ratio:.2f}x (profiling included)"
            if ratio
            else "  compute ratio: n/a (model size unknown)"
        )
    print_run_forecast(fc["run"], config)
    if config.cli_args():
        typer.echo(f"  reproduce: sgpo plan {row['id']} {' '.join(config.cli_args())}")


def print_run_forecast(run: dict, config: PlanConfig) -> None:
    """The planned run under both engine behaviours, then each verdict in words."""
    length = (
        f"{run['steps']:,} steps of {run['batch_rollouts']} rollouts"
        if run["flops"] is None
        else f"{human_flops(run['flops'])}"
    )
    rates = "fitted to the profile" if run["prior"] == "fitted" else "the plan's p estimates"
    typer.echo(f"  forecast over {length} (success rates {rates}, drift x{run['drift']:g})")
    typer.echo(f"    {'engine':<36} {'skip zero-adv.':>15} {'train all':>15}")
    skip, every = run["skip"], run["train_all"]
    rows = [
        ("steps: plan / GRPO", lambda b: f"{b['plan']['steps']:,} / {b['baseline']['steps']:,}"),
        ("informative groups: plan", lambda b: percent(b["plan"]["forecast_informative_fraction"])),
        (
            f"informative groups: GRPO G={config.fixed_group_size}",
            lambda b: percent(b["baseline"]["forecast_informative_fraction"]),
        ),
        ("FLOPs / informative rollout: plan", lambda b: human_flops(b["plan"]["flops_per_informative_rollout"])),
        ("FLOPs / informative rollout: GRPO", lambda b: human_flops(b["baseline"]["flops_per_informative_rollout"])),
        ("profiling share of the plan's FLOPs", lambda b: percent(b["flops_profile_share"])),
        ("break-even step", lambda b: count(b["break_even_step"]) if b["break_even_step"] else "none"),
        ("reduction factor (GRPO / plan FLOPs)", lambda b: factor(b["reduction_factor"])),
    ]
    for label, cell in rows:
        typer.echo(f"    {label:<36} {cell(skip):>15} {cell(every):>15}")
    for behaviour in ENGINE_BEHAVIOURS:
        typer.echo(f"  {behaviour}: {run[behaviour]['verdict']}")
    typer.echo(f"  {READING}")


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
