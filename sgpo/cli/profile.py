"""`sgpo profile DATASET ...` measures p_hat per query; `sgpo profile show|list` reads profiles back.

`profile` is both a command (with a positional DATASET) and a group: ProfileGroup sends anything that
is not a subcommand name to `run`, so `sgpo profile builtin:train` and `sgpo profile show 1` both work.
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from sgpo.cli.common import DbOption, JsonOption, config_options, open_store, print_json, with_options
from sgpo.cli.data import AnswerField, IdField, PromptField
from sgpo.launch import rerun, vllm_rerun_python
from sgpo.profile import ProfileConfig, describe, profile_summary, run_profile
from sgpo.profiles import list_profiles
from sgpo.store import check_name
from sgpo.units import flops as human_flops
from sgpo.vocab import INTERRUPTED


class ProfileGroup(TyperGroup):
    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


profile_app = typer.Typer(
    cls=ProfileGroup,
    no_args_is_help=True,
    help="`sgpo profile DATASET [OPTIONS]` measures p_hat per query (short for `sgpo profile "
    "run`; see `sgpo profile run --help`); `show` and `list` read profiles back.",
)


@profile_app.command("run")
@with_options(*config_options(ProfileConfig))
def run(
    dataset: Annotated[
        str, typer.Argument(help="builtin:NAME, a .jsonl/.csv/.parquet file, or hf:REPO[:CONFIG][:SPLIT]")
    ],
    model: Annotated[
        str,
        typer.Option(
            help="'starter', run:NAME[@STEP] (a checkpoint of a run of this store), a local model folder, or an HF id"
        ),
    ] = "starter",
    name: Annotated[str | None, typer.Option(help="profile name (default: dataset-model-backend-N-key)")] = None,
    prompt_field: PromptField = None,
    answer_field: AnswerField = None,
    id_field: IdField = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    **knobs,
) -> None:
    """Sample every query N times under the policy and store p_hat; re-running resumes or reuses it."""
    config = ProfileConfig(**knobs)
    if name is not None:
        name = check_name(name, "profile")
    python = vllm_rerun_python(config.backend)
    if python:
        argv = ["profile", "run", dataset, "--model", model, *config.cli_args()]
        for flag, value in (
            ("--name", name),
            ("--prompt-field", prompt_field),
            ("--answer-field", answer_field),
            ("--id-field", id_field),
            ("--db", db),
        ):
            if value is not None:
                argv += [flag, value]
        code = rerun(python, argv + (["--json"] if as_json else []))
        raise typer.Exit(code if code >= 0 else 128 - code)  # killed by signal 9 -> 137, as a shell says

    from sgpo.data import load_dataset
    from sgpo.model import resolve_model

    ds = load_dataset(dataset, prompt_field=prompt_field, answer_field=answer_field, id_field=id_field)
    ref = resolve_model(model, db)  # run:NAME[@STEP] is a checkpoint of a run of this store
    # the store is opened (and created) only once the data, model and prompts passed their checks
    summary = run_profile(ds, ref, config, lambda: open_store(db), name=name, progress=True)
    for warning in summary["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        print_json(summary)
        return
    verb = "already done" if summary["reused"] else "done"
    typer.echo(
        f"profile {summary['profile_id']} {summary['name']!r} {verb}: {summary['queries']} queries x "
        f"{_samples(summary)}, mean p_hat {summary['mean_p_hat']:.3f}"
    )
    _echo_cost(summary)
    typer.echo(f"  next: sgpo profile show {summary['profile_id']}")


@profile_app.command("show")
def show(
    profile: Annotated[str, typer.Argument(help="profile id or name")], db: DbOption = None, as_json: JsonOption = False
) -> None:
    """p_hat histogram, decision counts at the default plan knobs, p_hat by task and difficulty, cost."""
    store = open_store(db, readonly=True)
    row = store.find_profile(profile)
    summary = profile_summary(store, row["id"])
    view = describe(row, store.profile_frame(row["id"]))
    if as_json:
        print_json({**{k: v for k, v in summary.items() if k not in ("reused", "resumed")}, **view})
        return
    typer.echo(
        f"profile {row['id']} {row['name']!r} [{summary['status']}]  {row['dataset_spec']} under "
        f"{row['model_spec']} ({row['n_params'] or 0:,} params)\n  backend {row['backend']}, {_n(summary)}, "
        f"T={row['temperature']}, max {row['max_new_tokens']} new tokens, seed {row['seed']}; "
        f"{row['queries_done']}/{row['queries_total']} queries, mean p_hat {_fmt(summary['mean_p_hat'])}"
    )
    if summary["status"] == INTERRUPTED:
        typer.echo("  interrupted: its process is gone; run the same `sgpo profile` command again to resume it")
    typer.echo("\np_hat histogram")
    top = max([b["count"] for b in view["histogram"]] + [1])
    for b in view["histogram"]:
        bracket = "]" if b["high"] == 1.0 else ")"
        typer.echo(f"  [{b['low']:.1f}, {b['high']:.1f}{bracket} {b['count']:>6}  {'█' * round(40 * b['count'] / top)}")
    typer.echo(
        "\ndecisions at the default plan knobs: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in view["decisions"].items())
    )
    if view["group_sizes"]:
        typer.echo(
            "learnable queries by group size: " + ", ".join(f"G={g}: {n}" for g, n in view["group_sizes"].items())
        )
    typer.echo(
        "\nmean p_hat by task:       "
        + "  ".join(f"{r['task']} {r['mean_p_hat']:.3f} ({r['queries']})" for r in view["by_task"])
    )
    typer.echo(
        "mean p_hat by difficulty: "
        + "  ".join(f"L{r['difficulty']} {r['mean_p_hat']:.3f}" for r in view["by_difficulty"])
    )
    typer.echo("")
    _echo_cost(summary)


@profile_app.command("list")
def list_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every profile in the store, oldest first."""
    rows = list_profiles(open_store(db, readonly=True))
    if as_json:
        print_json({"profiles": rows})
        return
    if not rows:
        typer.echo("no profiles yet: sgpo profile builtin:train --model starter")
        return
    typer.echo(
        f"{'id':>3}  {'name':<36} {'status':<11} {'dataset':<16} {'model':<16} {'backend':<7} "
        f"{'N':>3} {'queries':>11} {'cost':>12} {'seconds':>8}"
    )
    for r in rows:
        typer.echo(
            f"{r['id']:>3}  {r['name'][:36]:<36} {r['status']:<11} {r['dataset_spec'][-16:]:<16} "
            f"{r['model_spec'][-16:]:<16} {r['backend']:<7} {r['samples']:>3} "
            f"{r['queries_done']:>5}/{r['queries_total']:<5} {human_flops(r['flops']):>12} {r['seconds'] or 0:>8.1f}"
        )


def _echo_cost(summary: dict) -> None:
    tok, thr = summary["tokens"], summary["throughput"]
    typer.echo(
        f"  cost: {tok['prompt']:,} prompt + {tok['completion']:,} completion tokens = "
        f"{human_flops(summary['flops'])} in {summary['seconds']:.1f} s "
        f"({_fmt(thr['completions_per_s'], '.0f')} completions/s, {_fmt(thr['tokens_per_s'], ',.0f')} tokens/s)"
    )


def _samples(summary: dict) -> str:
    """'8 samples', or '3.4 samples on average (2 to 16, at most 16)' when --adaptive stopped some early."""
    per = summary["samples_per_query"]
    if per is None or per["min"] == per["max"] == summary["samples"]:
        return f"{summary['samples']} samples"
    return f"{per['mean']:.1f} samples on average ({per['min']} to {per['max']}, at most {summary['samples']})"


def _n(summary: dict) -> str:
    """'N=8', or 'N=2..16 (mean 3.4, at most 16)'."""
    per = summary["samples_per_query"]
    if per is None or per["min"] == per["max"] == summary["samples"]:
        return f"N={summary['samples']}"
    return f"N={per['min']}..{per['max']} (mean {per['mean']:.1f}, at most {summary['samples']})"


def _fmt(x, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")
