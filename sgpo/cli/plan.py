"""`sgpo plan PROFILE [knobs]`: decisions, phases and the compute forecast next to fixed-G GRPO; `sgpo plan
list` and `sgpo plan show NAME` read saved plans back. A thin face over sgpo.plans, the plan lifecycle.

The knob options are generated from PlanConfig. `--save NAME` stores the plan; `--export-trl DIR` writes one
dataset file per phase and a manifest with `num_generations` per phase (sgpo/export.py), so a TRL user can
run the plan with an unmodified GRPOTrainer, phase after phase; `--export-verl DIR` does the same for verl.
`plan` is a group whose documented form is `make`: `sgpo plan 1` runs `sgpo plan make 1`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sgpo import plans
from sgpo.cli.common import DbOption, DefaultGroup, JsonOption, config_options, open_store, print_json, with_options
from sgpo.export import written
from sgpo.plan import PlanConfig
from sgpo.plan.forecast import ENGINE_BEHAVIOURS, READING
from sgpo.store import check_name
from sgpo.units import count, factor, percent
from sgpo.units import flops as human_flops


class PlanGroup(DefaultGroup):
    default_command = "make"


plan_app = typer.Typer(
    cls=PlanGroup,
    no_args_is_help=True,
    help="`sgpo plan PROFILE [KNOBS]` plans a run from a profile (short for `sgpo plan make`); `list` and "
    "`show` read saved plans back.",
)


@plan_app.command("make")
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
    dataset: Annotated[
        str | None,
        typer.Option(help="where the profiled data is read from for the exports (default: where it was profiled)"),
    ] = None,
    reward: Annotated[
        str | None,
        typer.Option(
            "--reward",
            help="the exports' reward: exact, math, math-lenient or MODULE:FUNCTION (default: the one the "
            "profile measured with, recorded with its dataset)",
        ),
    ] = None,
    data_source: Annotated[
        str | None,
        typer.Option(
            "--data-source",
            help="--export-verl: the rows' data_source (default: the dataset's name, e.g. openai/gsm8k or "
            "gsm8k/test for data/gsm8k/test.jsonl)",
        ),
    ] = None,
    pilot_run: Annotated[
        str | None,
        typer.Option(
            "--pilot-run",
            help="recommend rollouts a step from this run's critical-batch gauge (any run that logged it, best one on "
            "this profile): forecast.recommended",
        ),
    ] = None,
    pilot_steps: Annotated[
        int | None,
        typer.Option(
            "--pilot-steps",
            help="recommend rollouts a step from a throwaway pilot: K steps of this plan on our engine with the gauge "
            "on (at least 20; nothing is stored)",
        ),
    ] = None,
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
    if save is not None:
        store.check_new_name("plan", save, "--save name")
    made = plans.make(profile, config, store)
    if pilot_run is not None or pilot_steps is not None:  # refused in one line before anything is written
        plans.recommend(
            made, store, pilot_run=pilot_run, pilot_steps=pilot_steps, log=lambda m: typer.echo(m, err=True)
        )
    out = made.to_json()
    wrote = []
    for target, folder in (("trl", export_trl), ("verl", export_verl)):
        if folder is not None:
            folder = plans.export(made, target, folder, store, dataset=dataset, reward=reward, data_source=data_source)
            key = "export" if target == "trl" else "export_verl"
            out[key], out[f"{key}_files"] = str(folder), [str(p) for p in written(folder)]
            wrote.append((target, out[f"{key}_files"]))
    if save:
        out["plan_id"] = plans.save(made, save, store, option="--save name")
    for warning in made.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        print_json(out)
        return
    print_plan(made.profile, out, config)
    for target, files in wrote:
        typer.echo(f"  {target} export: " + ", ".join(files))
    if save:
        typer.echo(f"  saved as plan {out['plan_id']} {save!r}: train it with sgpo train --plan {save}")


@plan_app.command("list")
def list_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every saved plan, oldest first: its profile, decisions and forecast compute ratio."""
    rows = plans.list_plans(open_store(db, readonly=True))
    if as_json:
        print_json({"plans": rows})
        return
    if not rows:
        typer.echo("no saved plans yet: sgpo plan PROFILE --save NAME")
        return
    typer.echo(f"{'id':>3}  {'name':<28} {'profile':<36} {'trivial':>8} {'learnable':>9} {'unsolved':>8} {'ratio':>7}")
    for r in rows:
        c = r["counts"]
        typer.echo(
            f"{r['id']:>3}  {r['name'][:28]:<28} {str(r['profile'])[:36]:<36} {c.get('trivial', 0):>8} "
            f"{c.get('learnable', 0):>9} {c.get('unsolved_kept', 0):>8} {factor(r['ratio']):>7}"
        )


@plan_app.command("show")
def show(
    plan: Annotated[str, typer.Argument(help="saved plan id or name (`sgpo plan list`)")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """A saved plan as it was saved: its profile, knobs, decisions, phases and forecast."""
    store = open_store(db, readonly=True)
    saved = plans.load(plan, store)
    made = plans.remake(saved["id"], store)  # the phases are not stored: remade from the profile and the knobs
    out = {**made.to_json(), "plan_id": saved["id"], "name": saved["name"], "counts": saved["counts"]}
    out["forecast"] = saved["forecast"]
    if as_json:
        print_json(out)
        return
    typer.echo(f"plan {saved['id']} {saved['name']!r} (profile {saved['profile']!r})")
    print_plan(made.profile, out, made.plan.config)


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
    too_few = (fc.get("basis") or {}).get("too_few")
    if not c["learnable"]:
        typer.echo(
            "  compute ratio: none: nothing learnable (no query between unsolved and trivial), so the plan "
            "trains only on unsolved queries"
        )
    elif too_few:
        typer.echo(f"  compute ratio: none: {fc['basis']['reason']}")
    else:
        typer.echo(
            f"  compute ratio GRPO / plan: {ratio:.2f}x (profiling included)"
            if ratio
            else "  compute ratio: n/a (model size unknown)"
        )
    if too_few:  # no row of numbers beside a verdict that says there is none to give
        print_no_forecast(fc["run"], fc["basis"])
    else:
        print_run_forecast(fc["run"], config)
    if fc.get("recommended"):
        print_recommended(fc["recommended"])
    if config.cli_args():
        typer.echo(f"  reproduce: sgpo plan {row['id']} {' '.join(config.cli_args())}")


def print_recommended(rec: dict) -> None:
    """The batch the critical-batch gauge recommends for the plan (sgpo.gauge.recommend), and what it rests on."""
    if rec["rollouts_per_step"] is None:
        typer.echo(f"  recommended batch: none. {rec['basis']}")
        return
    grpo = rec["grpo_rollouts_per_step"]
    typer.echo(
        f"  recommended batch: {rec['rollouts_per_step']:,} rollouts a step ({rec['informative_per_step']:,.0f} "
        f"informative)" + (f"; fixed-G GRPO: {grpo:,}" if grpo else "") + f" ({rec['state']} where measured)"
    )
    if rec.get("least_compute_rollouts_per_step"):
        typer.echo(
            f"  under a FLOP budget: {rec['least_compute_rollouts_per_step']:,} rollouts a step or fewer (within 10% "
            f"of the least compute; the batch above takes about twice the least compute in the fewest steps)"
        )
    typer.echo(f"    {rec['basis']}")


def print_no_forecast(run: dict, basis: dict) -> None:
    """The planned run when the forecast rests on too few learnable queries: the reason, each verdict, and no
    table of reduction factors, break-even steps or FLOPs per informative rollout."""
    typer.echo(f"  forecast over {run['steps']:,} steps: none. {basis['reason'][0].upper()}{basis['reason'][1:]}.")
    for behaviour in ENGINE_BEHAVIOURS:
        typer.echo(f"  {behaviour}: {run[behaviour]['verdict']}")


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
    app.add_typer(plan_app, name="plan")
