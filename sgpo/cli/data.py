"""`sgpo tasks`, `sgpo data inspect` and `sgpo starter ...`: the foundation's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from sgpo.cli.common import (
    DbOption,
    JsonOption,
    check_folder,
    check_option,
    dataset_field_options,
    dataset_fields,
    print_json,
    read_store,
    with_options,
)
from sgpo.data import inspect as inspect_dataset
from sgpo.data import load_dataset
from sgpo.data_spec import ROLES
from sgpo.model import resolve_model
from sgpo.starter.check import rl_check
from sgpo.starter.train import StarterConfig, train_starter
from sgpo.tasks.builtin import builtin_names, write_splits

tasks_app = typer.Typer(help="The built-in task suite.", invoke_without_command=True)
data_app = typer.Typer(help="Look at a dataset before profiling it.", no_args_is_help=True)
starter_app = typer.Typer(help="The shipped starter policy.", no_args_is_help=True)

# Where `sgpo tasks build` and `sgpo starter train` write by default: the current folder, never the installed
# package (the shipped files are package data; a checkout regenerates them with --out sgpo/tasks/data or
# --out sgpo/starter/policy).
TASKS_OUT = Path("tasks")
STARTER_OUT = Path("starter-policy")


@tasks_app.callback()
def tasks(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the built-in datasets: the spec first on each line, then size and difficulty levels."""
    if ctx.invoked_subcommand:
        return
    rows: list[dict[str, Any]] = []
    for name in builtin_names():
        ds = load_dataset(f"builtin:{name}")
        levels = sorted(ds.frame["difficulty"].unique().tolist())
        rows.append(
            {
                "spec": ds.spec,
                "rows": len(ds),
                "tasks": sorted(ds.frame["task"].unique().tolist()),
                "levels": [min(levels), max(levels)],
                "hash": ds.hash,
            }
        )
    if as_json:
        print_json({"tasks": rows})
        return
    for r in rows:
        typer.echo(
            f"{r['spec']:<22} {r['rows']:>5} queries  tasks {','.join(r['tasks']):<18} "
            f"levels {r['levels'][0]}-{r['levels'][1]}"
        )


@tasks_app.command("build")
def tasks_build(
    out: Annotated[Path, typer.Option(help="folder to write train.jsonl and eval.jsonl into")] = TASKS_OUT,
    seed: int = 20261124,
) -> None:
    """Regenerate the built-in train/eval splits (seeded, disjoint) as files; the shipped ones stay as they are."""
    check_option("--seed", seed, low=0)
    check_folder("--out", out)
    for split, path in write_splits(out, seed).items():
        typer.echo(f"{split}: {path}")


@data_app.command("inspect")
@with_options(*dataset_field_options(), before="db")
def inspect(spec: str, *, db: DbOption = None, as_json: JsonOption = False, **fields) -> None:
    """Row count, fields, hash, the mapping and reward it loads with (and why that reward), and the difficulty
    breakdown of a dataset. What the store recorded for it (a profile's mapping) fills the options not given."""
    info = inspect_dataset(spec, read_store(db), **dataset_fields(fields))
    if as_json:
        print_json(info)
        return
    roles = "  ".join(f"{role} <- {info['mapping'].get(f'{role}_field') or '-'}" for role in ROLES)
    typer.echo(
        f"{spec}  ({info['source']})\n  rows {info['rows']}   hash {info['hash']}\n  fields {', '.join(info['fields'])}\n"
        f"  mapping {roles}\n  reward {info['reward']}: {info['reward_reason']}"
    )
    for task, levels in info["difficulty"].items():
        typer.echo(f"  {task:<12} " + "  ".join(f"L{lvl}:{n}" for lvl, n in levels.items()))
    ex = info["example"]
    typer.echo(f"  example: {ex['prompt'][:70]!r} -> {ex['answer'][:30]!r}")


@starter_app.command("train")
def starter_train(
    out: Annotated[
        Path, typer.Option(help="folder to write the policy into (use it with --model FOLDER)")
    ] = STARTER_OUT,
    seed: int = 0,
    max_steps: int = 600,
) -> None:
    """Train a starter policy from scratch (about 5 minutes on 2 cores) and print its spread table. The
    shipped starter (`--model starter`) stays as it is."""
    check_option("--seed", seed, low=0)
    check_option("--max-steps", max_steps, low=1)
    check_folder("--out", out)
    train = load_dataset("builtin:train").frame.to_dict("records")
    held_out = set(load_dataset("builtin:eval").frame["prompt"])
    report = train_starter(out, train, held_out, StarterConfig(seed=seed, max_steps=max_steps), log=typer.echo)
    typer.echo(
        f"chosen step {report['chosen_step']}, {report['parameters']:,} parameters, {report['train_seconds']:.0f} s"
    )
    typer.echo(json.dumps(report["selection_spread"], indent=1))
    typer.echo(f"  next: sgpo profile builtin:train --model {out}")


@starter_app.command("check")
def starter_check(
    model: Annotated[Path | None, typer.Option(help="policy folder (default: the starter)")] = None,
    steps: int = 150,
    lr: float = 5e-5,
    seed: int = 0,
    as_json: JsonOption = False,
) -> None:
    """Show RL can move the policy: TRL GRPO on the learnable train queries, held-out middle before/after."""
    check_option("--steps", steps, low=1)
    check_option("--lr", lr, low=0, high=1, open_low=True)
    check_option("--seed", seed, low=0)
    ref = resolve_model(str(model) if model else "starter")
    report = rl_check(ref.path, steps=steps, lr=lr, seed=seed, log=lambda s: typer.echo(s, err=True))
    if as_json:
        print_json(report)
        return
    typer.echo(
        f"held-out middle ({report['middle_queries']} queries): {report['before']:.3f} -> "
        f"{report['after']:.3f} after {steps} GRPO steps ({report['train_seconds']:.0f} s); "
        f"seed noise {report['seed_noise']:.3f}"
    )
    for task, row in report["by_task"].items():
        typer.echo(f"  {task:<6} {row['queries']:>4} queries  {row['before']:.3f} -> {row['after']:.3f}")


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")
    app.add_typer(data_app, name="data")
    app.add_typer(starter_app, name="starter")
