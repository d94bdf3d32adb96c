"""`sgpo train` (sgpo, grpo or dapo) and `sgpo runs` (list, status, start, stop, resume): thin faces over
sgpo.runs, the run lifecycle.

The options of `sgpo train` are generated from TrainConfig and from the planner's PlanConfig (same
names as `sgpo plan`), so the configs stay the one source of names, defaults and help.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, get_args

import typer
import yaml

from sgpo import plans
from sgpo import runs as lifecycle
from sgpo.cli.common import (
    DbOption,
    JsonOption,
    check_folder,
    check_option,
    config_options,
    db_path,
    open_store,
    print_json,
    with_options,
)
from sgpo.distributed import rank_and_world
from sgpo.errors import ConfigError
from sgpo.plan import PlanConfig
from sgpo.train.config import PLAN_FROM_RUN, TrainConfig
from sgpo.units import count, percent
from sgpo.units import flops as human_flops

PLAN_SKIP = PLAN_FROM_RUN  # the plan's seed follows --seed, its forecast --steps/--flops-budget/--batch-rollouts
RunArg = Annotated[str, typer.Argument(help="run id or name")]
EXTRA = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, opt])
    for name, hint, default, opt in [
        ("name", str | None, None, typer.Option("--name", help="unique run name (default: strategy-time)")),
        (
            "run_name",
            str | None,
            None,
            typer.Option("--run-name", hidden=True, help="deprecated spelling of --name"),
        ),
        (
            "resume",
            str | None,
            None,
            typer.Option(
                "--resume",
                help="continue run RUN (id or name) from its last checkpoint; the other knobs come from the run",
            ),
        ),
        (
            "saved_plan",
            str | None,
            None,
            typer.Option(
                "--plan",
                help="train saved plan NAME (`sgpo plan list`): its profile and knobs; an option that "
                "contradicts it is refused",
            ),
        ),
        ("detach", bool, False, typer.Option("--detach", help="run in the background; `sgpo runs` shows it")),
        (
            "trl_options",
            list[str] | None,
            None,
            typer.Option(
                "--trl", help="--engine trl: a GRPOConfig field, KEY=VALUE (the value read as YAML); repeat it"
            ),
        ),
        (
            "trl_config",
            Path | None,
            None,
            typer.Option("--trl-config", help="--engine trl: a YAML file of GRPOConfig fields (--trl wins over it)"),
        ),
        ("db", Path | None, None, get_args(DbOption)[1]),
        ("as_json", bool, False, get_args(JsonOption)[1]),
    ]
]


@with_options(*config_options(TrainConfig), *config_options(PlanConfig, skip=PLAN_SKIP, help_prefix="plan: "), *EXTRA)
def train_command(**kw) -> None:
    """Train a policy with sgpo (profile-driven plan), fixed-G GRPO or DAPO, with FLOPs accounting."""
    name, run_name, resume_ref, saved_plan, detach, db, as_json, trl_options, trl_config = (
        kw.pop(k)
        for k in ("name", "run_name", "resume", "saved_plan", "detach", "db", "as_json", "trl_options", "trl_config")
    )
    if run_name is not None:
        typer.echo(
            "warning: --run-name is deprecated, use --name (it names the run, as it names a profile or a plan)",
            err=True,
        )
        name = name or run_name
    if resume_ref is not None:
        return _report(lifecycle.resume(resume_ref, open_store(db, create=False), detach=detach), as_json)
    plan = {s.name: kw.pop(s.name) for s in PlanConfig.specs() if s.name not in PLAN_SKIP}
    if saved_plan is not None:  # the saved plan's profile and knobs; an option given against them is refused
        given = {k: v for k, v in plan.items() if v != PlanConfig.spec(k).default}
        given |= {k: kw[k] for k in ("profile", "strategy") if kw[k] != TrainConfig.spec(k).default}
        cfg = plans.train_config(
            saved_plan,
            TrainConfig(**kw, trl=trl_fields(trl_options or [], trl_config)),
            open_store(db, readonly=True),
            given=given,
        )
    else:
        cfg = TrainConfig(
            **kw, plan=plan if kw.get("strategy") == "sgpo" else {}, trl=trl_fields(trl_options or [], trl_config)
        )
    path = db_path(db)
    run = lifecycle.create(cfg, path, name=name)  # the store is created only once every check passed
    store = open_store(db)
    if detach:  # in the foreground the trainer says them as it starts: each warning once
        for warning in run["warnings"]:
            typer.echo(f"warning: {warning}", err=True)
    _report(lifecycle.start(run["id"], store, detach=detach), as_json)


def trl_fields(pairs: list[str], path: Path | None) -> dict:
    """GRPOConfig fields from --trl-config FILE.yaml and --trl KEY=VALUE (later ones win); YAML values."""
    fields: dict = {}
    if path is not None:
        try:
            fields = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"--trl-config {path}: cannot read it as YAML ({exc})") from None
        if not isinstance(fields, dict):
            raise ConfigError(
                f"--trl-config {path}: expected a mapping of GRPOConfig fields, got {type(fields).__name__}"
            )
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--trl {pair!r}: expected KEY=VALUE, e.g. --trl vllm_mode=colocate")
        try:
            fields[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--trl {pair!r}: the value is not valid YAML ({exc})") from None
    return fields


def _report(result: dict, as_json: bool) -> None:
    if rank_and_world()[0] > 0:  # under accelerate launch the main process reports
        return
    if as_json:
        print_json(result)
        return
    if result.get("status") == "started":
        typer.echo(
            f"run {result['run_id']} {result['run_name']!r} started in the background (pid {result['pid']}); "
            f"log: {result['log_path']}\n  watch: sgpo runs    stop: sgpo runs stop {result['run_name']}"
        )
        return
    typer.echo(
        f"run {result['run_id']} {result['run_name']!r} {result['status']} after {result['steps']} steps: "
        f"{human_flops(result['flops_total'])} total (profile {human_flops(result['flops_profile'])}, rollout "
        f"{human_flops(result['flops_rollout'])}, train {human_flops(result['flops_train'])}), wasted "
        f"{percent(result['run_wasted_fraction'])} of {result['rollouts_total']:,.0f} rollouts"
    )
    if result.get("eval_accuracy") is not None:
        typer.echo(
            f"  held-out accuracy {_f(result['eval_accuracy_initial'])} -> {_f(result['eval_accuracy'])}; "
            f"middle band {_f(result['eval_middle_accuracy_initial'])} -> {_f(result['eval_middle_accuracy'])}"
        )
    typer.echo(f"  weights: {result['checkpoint']}")


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


runs_app = typer.Typer(help="List, inspect, start, stop and resume training runs.", invoke_without_command=True)


@runs_app.callback(invoke_without_command=True)
def runs(ctx: typer.Context, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every run, oldest first, with status, step and results."""
    if ctx.invoked_subcommand is not None:
        return
    rows = lifecycle.list_runs(open_store(db, readonly=True))
    if as_json:
        print_json({"runs": rows})
        return
    if not rows:
        typer.echo("no runs yet: sgpo train --strategy grpo --steps 50")
        return
    typer.echo(f"{'id':>3}  {'name':<28} {'strategy':<8} {'status':<11} {'step':>6} {'FLOPs':>12} {'eval':>6}  pid")
    for r in rows:
        res = r["result"] or {}
        typer.echo(
            f"{r['id']:>3}  {r['name'][:28]:<28} {r['strategy']:<8} {r['status']:<11} {r['step'] or 0:>6} "
            f"{human_flops(res.get('flops_total')):>12} {_f(res.get('eval_accuracy')):>6}  "
            f"{r['pid'] if r['alive'] else ''}"
        )


@runs_app.command("status")
def status(run: RunArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """One run: status (interrupted when its process is gone), step, pid, log and result."""
    row = lifecycle.status(run, open_store(db, readonly=True))
    row.pop("plan", None)
    if as_json:
        print_json(row)
        return
    typer.echo(
        f"run {row['id']} {row['name']!r} [{row['status']}] {row['strategy']}, step {row['step'] or 0}"
        f"{', pid ' + str(row['pid']) if row['alive'] else ''}\n  log: {row.get('log_path') or 'none'}"
    )


@runs_app.command("start")
def start(
    run: RunArg,
    db: DbOption = None,
    detach: Annotated[bool, typer.Option("--detach", help="run in the background")] = False,
    as_json: JsonOption = False,
) -> None:
    """Train a created run (what `sgpo train --detach` runs in its worker)."""
    _report(lifecycle.start(run, open_store(db, create=False), detach=detach), as_json)


@runs_app.command("resume")
def resume(
    run: RunArg,
    db: DbOption = None,
    detach: Annotated[bool, typer.Option("--detach", help="run in the background")] = False,
    as_json: JsonOption = False,
) -> None:
    """Continue a stopped, failed or interrupted run from its latest checkpoint."""
    _report(lifecycle.resume(run, open_store(db, create=False), detach=detach), as_json)


@runs_app.command("stop")
def stop(
    run: RunArg,
    db: DbOption = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for the run to checkpoint and stop (0: don't)")] = 120,
    as_json: JsonOption = False,
) -> None:
    """Ask a running run to stop: it finishes its step, checkpoints, and ends with status 'stopped'."""
    check_option("--wait", wait, low=0)
    info = lifecycle.stop(run, open_store(db, create=False), wait=wait)
    if as_json:
        print_json(info)
    else:
        typer.echo(f"run {info['run_id']} {info['run_name']!r}: {info['status']}")


METRIC_COLUMNS = (  # what `sgpo runs metrics` prints per step (every column is in --json and --csv)
    ("step", "step", count),
    ("phase", "phase", count),
    ("reward_mean", "reward", lambda x: f"{x:.3f}"),
    ("step_wasted_fraction", "wasted", percent),
    ("run_wasted_fraction", "run wasted", percent),
    ("flops_total", "total compute", human_flops),
    ("wall_seconds", "seconds", lambda x: f"{x:.1f}"),
)


@runs_app.command("metrics")
def metrics(
    run: RunArg,
    csv: Annotated[Path | None, typer.Option("--csv", help="write every metric of every step to this CSV file")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One row per logged step (step 0 is the run before training), in the vocabulary's names."""
    if csv is not None:
        check_folder("--csv", csv.parent)
        if csv.is_dir():
            raise ConfigError(f"--csv {csv} is a folder: give a file name, e.g. {csv / 'metrics.csv'}")
    store = open_store(db, readonly=True)
    name = store.find_run(run)["name"]
    frame = lifecycle.metrics(run, store)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        tmp = csv.with_name(csv.name + ".tmp")
        frame.to_csv(tmp, index=False)
        tmp.replace(csv)
    if as_json:
        print_json({"run": name, "metrics": frame.to_dict("records"), **({"csv": str(csv)} if csv else {})})
        return
    if csv is not None:
        typer.echo(f"run {name!r}: {len(frame)} steps x {len(frame.columns)} metrics written to {csv}")
        return
    if frame.empty:
        typer.echo(f"run {name!r} has logged no step yet")
        return
    shown = [(c, label, fmt) for c, label, fmt in METRIC_COLUMNS if c in frame]
    cells = [[_cell(row.get(c), fmt) for c, _, fmt in shown] for row in frame.to_dict("records")]
    widths = [max([len(label)] + [len(r[i]) for r in cells]) for i, (_, label, _) in enumerate(shown)]
    typer.echo("  ".join(f"{label:>{w}}" for (_, label, _), w in zip(shown, widths)))
    for r in cells:
        typer.echo("  ".join(f"{cell:>{w}}" for cell, w in zip(r, widths)))


def _cell(value, fmt) -> str:
    return "n/a" if value is None or value != value else fmt(value)  # value != value: NaN


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.add_typer(runs_app, name="runs")
