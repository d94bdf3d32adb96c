"""`sgpo profile DATASET ...` measures p_hat per query; `sgpo profile show|list|resume|drift|checkpoint` read
profiles back, continue them and compare them. A thin face over sgpo.profiles, the profile lifecycle.

`profile` is both a command (with a positional DATASET) and a group: DefaultGroup sends anything that is not
a subcommand name to `run`, so `sgpo profile builtin:train` and `sgpo profile show 1` both work, and
`sgpo profile --help` shows the options of the documented form, then the subcommands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sgpo import drift as drifts
from sgpo import paths, profiles
from sgpo.cli.common import (
    DbOption,
    DefaultGroup,
    JsonOption,
    check_option,
    config_options,
    dataset_field_options,
    dataset_fields,
    db_path,
    open_store,
    print_json,
    with_options,
)
from sgpo.data_spec import ROLES
from sgpo.errors import ConfigError
from sgpo.profile import ProfileConfig
from sgpo.store import check_name
from sgpo.units import flops as human_flops
from sgpo.vocab import INTERRUPTED

ProfileArg = Annotated[str, typer.Argument(help="profile id or name (`sgpo profile list`)")]
DetachOption = Annotated[
    bool, typer.Option("--detach", help="profile in a background worker; `sgpo profile list` shows it")
]


class ProfileGroup(DefaultGroup):
    default_command = "run"


profile_app = typer.Typer(
    cls=ProfileGroup,
    no_args_is_help=True,
    help="`sgpo profile DATASET [OPTIONS]` samples every query N times under the policy and stores p_hat "
    "(short for `sgpo profile run`); the commands below read profiles back, continue and compare them.",
)


@profile_app.command("run")
@with_options(*dataset_field_options(), before="detach")
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
    *,
    detach: DetachOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
    **knobs,
) -> None:
    """Sample every query N times under the policy and store p_hat; re-running resumes or reuses it. The field
    mapping and reward are stored with the dataset: later commands (plan, export, train) read them back."""
    fields = dataset_fields(knobs)
    config = ProfileConfig(**knobs)
    if name is not None:
        name = check_name(name, "profile")
    path = db_path(db)
    # the store is opened (and created) only once the data, model and prompts passed their checks
    summary = profiles.start(dataset, model, config, path, name=name, detach=detach, progress=True, fields=fields)
    _report_start(summary, as_json)


def _report_start(summary: dict, as_json: bool) -> None:
    for warning in summary.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        print_json(summary)
        return
    if summary.get("reward"):
        typer.echo(f"reward {summary['reward']}: {summary['reward_reason']}", err=True)
    if "profile_id" not in summary:  # detached
        if summary["status"] == "started":
            typer.echo(
                f"profile {summary['name']!r} started in the background (pid {summary['pid']}); "
                f"log: {summary['log_path']}\n  watch: sgpo profile list    then: sgpo profile show {summary['name']}"
            )
        else:
            typer.echo(f"profile {summary['name']!r} is already done: sgpo profile show {summary['name']}")
        return
    verb = "already done" if summary["reused"] else "done"
    typer.echo(
        f"profile {summary['profile_id']} {summary['name']!r} {verb}: {summary['queries']} queries x "
        f"{_samples(summary)}, mean p_hat {summary['mean_p_hat']:.3f}"
    )
    _echo_cost(summary)
    typer.echo(f"  next: sgpo profile show {summary['profile_id']}")


@profile_app.command("show")
def show(profile: ProfileArg, db: DbOption = None, as_json: JsonOption = False) -> None:
    """p_hat histogram, decision counts at the default plan knobs, p_hat by task and difficulty, cost."""
    view = profiles.show(profile, open_store(db, readonly=True))
    if as_json:
        print_json(view)
        return
    typer.echo(
        f"profile {view['profile_id']} {view['name']!r} [{view['status']}]  {view['dataset']['spec']} under "
        f"{view['model']['spec']} ({view['model']['n_params'] or 0:,} params)\n  backend {view['backend']}, "
        f"{_n(view)}, T={view['temperature']}, max {view['max_new_tokens']} new tokens, seed {view['seed']}; "
        f"{view['queries']}/{view['queries_total']} queries, mean p_hat {_fmt(view['mean_p_hat'])}"
    )
    if view.get("reward"):
        typer.echo(f"  reward {view['reward']}; {_mapping_words(view['dataset'].get('mapping'))}")
    if view["status"] == INTERRUPTED:
        typer.echo(
            f"  interrupted: its process is gone; `sgpo profile resume {view['name']}` (or the same "
            f"`sgpo profile` command again) continues it"
        )
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
    _echo_cost(view)


@profile_app.command("list")
def list_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every profile in the store, oldest first, with its status (interrupted when its process is gone)."""
    rows = profiles.list_profiles(open_store(db, readonly=True))
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


@profile_app.command("resume")
def resume(profile: ProfileArg, detach: DetachOption = False, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Continue an interrupted profile with the settings it recorded (its data, model, sampling and subset)."""
    _report_start(profiles.resume(profile, open_store(db, create=False), detach=detach, progress=True), as_json)


@profile_app.command("checkpoint")
def checkpoint(
    checkpoint: Annotated[
        str, typer.Argument(help="a run's checkpoint, RUN@STEP (or run:RUN@STEP): `sgpo runs status RUN` names the run")
    ],
    name: Annotated[str | None, typer.Option(help="profile name (default: RUN-stepSTEP)")] = None,
    detach: DetachOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Profile a run's checkpoint with the data and sampling of the profile the run trained from, so the two
    p_hats compare (`sgpo profile drift BEFORE AFTER` then shows what changed)."""
    spec = checkpoint if paths.is_run_model(checkpoint) else paths.RUN_MODEL_PREFIX + checkpoint
    try:
        run, step = paths.parse_run_model(spec)
    except ValueError as exc:
        raise ConfigError(f"CHECKPOINT {exc}") from None
    if step is None:
        raise ConfigError(f"CHECKPOINT {checkpoint!r}: name the step, RUN@STEP (e.g. {run}@40)")
    started = profiles.checkpoint_profile(
        run, step, open_store(db, create=False), detach=detach, name=name, progress=True
    )
    if as_json:
        print_json(started)
        return
    _report_start(started, False)
    if started.get("before"):
        typer.echo(f"  compare: sgpo profile drift {started['before']} {started['name']}")


@profile_app.command("drift")
def drift(
    before: Annotated[str, typer.Argument(help="the earlier profile (id or name), e.g. the initial policy's")],
    after: Annotated[str, typer.Argument(help="the later profile of the same data, e.g. a checkpoint's")],
    min_change: Annotated[
        float, typer.Option("--min-change", help="learned / forgotten: p_hat moved by at least this much")
    ] = 0.5,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Two profiles of the same data, query by query: how queries moved between the plan's buckets (trivial,
    G=2, G=4, ..., unsolved at the default plan knobs), p_hat before and after by task and difficulty, and the
    queries learned and forgotten."""
    check_option("--min-change", min_change, low=0, high=1, open_low=True)
    store = open_store(db, readonly=True)
    both = profiles.drift(before, after, store)
    counts = drifts.transition_matrix(both)
    names = store.find_profile(before)["name"], store.find_profile(after)["name"]
    learned, forgotten = drifts.moved(both, min_change, up=True), drifts.moved(both, min_change, up=False)
    report = {
        "before": names[0],
        "after": names[1],
        "queries": len(both),
        "summary": {label: value for _, label, value, _ in drifts.summary(both, counts)},
        "mean_p_hat_before": float(both["p_hat_before"].mean()) if len(both) else None,
        "mean_p_hat_after": float(both["p_hat_after"].mean()) if len(both) else None,
        "transitions": {b: {a: int(n) for a, n in row.items()} for b, row in counts.iterrows()},
        "by_task": _records(drifts.drift(both, "task"), "task"),
        "by_difficulty": _records(drifts.drift(both, "difficulty"), "difficulty"),
        "min_change": min_change,
        "learned": learned["id"].tolist(),
        "forgotten": forgotten["id"].tolist(),
    }
    if as_json:
        print_json(report)
        return
    typer.echo(f"{names[0]} -> {names[1]}: " + ", ".join(f"{k} {v}" for k, v in report["summary"].items()))
    width = max(len(b) for b in counts.index) + 2
    typer.echo("\nqueries by bucket, before (rows) -> after (columns)")
    typer.echo(" " * width + "".join(f"{a:>10}" for a in counts.columns))
    for b, row in counts.iterrows():
        typer.echo(f"{b:<{width}}" + "".join(f"{int(n):>10}" for n in row))
    for by in ("task", "difficulty"):
        table = drifts.human(drifts.drift(both, by))
        typer.echo(f"\nby {by}\n" + table.to_string())
    for label, moved in (("learned", learned), ("forgotten", forgotten)):
        ids = moved["id"].tolist()
        shown = ", ".join(ids[:10]) + (f", ... ({len(ids) - 10} more)" if len(ids) > 10 else "")
        typer.echo(f"\n{label} (p_hat moved by {min_change:g} or more): {len(ids)}" + (f": {shown}" if ids else ""))


def _mapping_words(mapping: dict | None) -> str:
    """'fields prompt <- Question Text, answer <- gold_label, ...' as the dataset was read."""
    if not mapping:
        return "fields as detected"
    roles = [(r, mapping.get(f"{r}_field")) for r in ROLES]
    return "fields " + ", ".join(f"{r} <- {f}" for r, f in roles if f)


def _records(table, key: str) -> list[dict]:
    return [{key: k if key != "difficulty" else int(k), **row} for k, row in table.to_dict("index").items()]


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
