"""`sgpo runs rollouts | history | heatmap`: what each query learned, a thin face over sgpo.rollouts.

sgpo runs rollouts RUN [--step S | --steps A:B] [--per-step] [--json] [--out FILE.csv|.parquet]
sgpo runs history RUN QUERY [--json] [--out FILE]
sgpo runs heatmap RUN [--bins N] [--min-change X] [--json] [--out FILE]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sgpo import rollouts
from sgpo.cli.common import DbOption, JsonOption, check_option, open_store, print_json
from sgpo.cli.train import RunArg, runs_app
from sgpo.errors import ConfigError
from sgpo.units import count, percent

OutOption = Annotated[
    Path | None, typer.Option("--out", help="also write the table to this .csv or .parquet file (lists as JSON in CSV)")
]
GROUP_COLUMNS = ("step", "query_id", "task", "band", "group_size", "successes", "outcome", "status", "rewards")
SHOWN = 50  # groups printed as text at most (--json and --out hold all)


def steps_range(step: int | None, steps: str | None) -> tuple[int, int] | None:
    """--step S or --steps A:B as (first, last); None for the run's last step with groups."""
    if step is not None and steps is not None:
        raise ConfigError("give --step or --steps, not both")
    if step is not None:
        check_option("--step", step, low=0)
        return step, step
    if steps is None:
        return None
    first, colon, last = steps.partition(":")
    if not colon or not first.strip().isdigit() or not last.strip().isdigit() or int(first) > int(last):
        raise ConfigError(f"--steps {steps!r}: write FIRST:LAST, e.g. --steps 10:20")
    return int(first), int(last)


def rollouts_command(
    run: RunArg,
    step: Annotated[int | None, typer.Option(help="this step's groups (default: the last step with groups)")] = None,
    steps: Annotated[str | None, typer.Option(help="the groups of steps FIRST:LAST")] = None,
    per_step: Annotated[
        bool,
        typer.Option(
            "--per-step",
            help="one row per step instead: all-correct and all-wrong shares, pass rate, and the pass rate of "
            "the hardest 10/25/50% of its queries",
        ),
    ] = False,
    db: DbOption = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """A step's groups: query, G, rewards, advantages, outcome (all-correct, mixed, all-wrong), trained,
    skipped or dropped, and the kept completions (--json, --out)."""
    store = open_store(db, readonly=True)
    name = store.find_run(run)["name"]
    if per_step:
        summary = rollouts.step_summary(run, store)
        frame = summary.frame
        _write(frame, out)
        if as_json:
            print_json({"run": name, "hardest_by": summary.basis, "steps": frame.to_dict("records")})
            return
        typer.echo(f"run {name!r}: per step; hardest queries judged {summary.basis}")
        _table(frame, [(c, c, count if c in ("step", "groups") else percent) for c in rollouts.SUMMARY_COLUMNS])
        return
    frame = rollouts.groups(run, store, steps=steps_range(step, steps))
    _write(frame, out)
    if as_json:
        print_json({"run": name, "groups": frame.to_dict("records")})
        return
    if frame.empty:
        typer.echo(f"run {name!r} has no stored groups there (runs trained before sgpo stored them have none)")
        return
    first, last = int(frame["step"].min()), int(frame["step"].max())
    where = f"step {first}" if first == last else f"steps {first}-{last}"
    typer.echo(
        f"run {name!r}, {where}: {len(frame)} groups" + (f", the first {SHOWN} shown" if len(frame) > SHOWN else "")
    )
    _table(frame.head(SHOWN), [(c, c, str) for c in GROUP_COLUMNS])


def history_command(
    run: RunArg,
    query: Annotated[str, typer.Argument(help="the query's id (`sgpo runs rollouts RUN` shows them)")],
    db: DbOption = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """One query over training: each of its groups (step, phase, G, pass rate, trained or skipped), and its
    p_hat in the run's initial profile and in profiles of the run's checkpoints."""
    store = open_store(db, readonly=True)
    h = rollouts.history(run, query, store)
    _write(h.groups, out)
    if as_json:
        print_json({"query": h.query, "groups": h.groups.to_dict("records"), "marks": h.marks.to_dict("records")})
        return
    typer.echo(f"query {query} ({h.query.get('task')}): {h.query.get('prompt')!r}")
    for m in h.marks.to_dict("records"):
        typer.echo(f"  p_hat {m['p_hat']:.3f} at step {m['step']} ({m['kind']} profile {m['profile']})")
    _table(
        h.groups,
        [("step", "step", str), ("phase", "phase", str), ("group_size", "G", str), ("pass_rate", "pass rate", percent)]
        + [("status", "status", str), ("rewards", "rewards", str)],
    )


def heatmap_command(
    run: RunArg,
    bins: Annotated[int, typer.Option(help="step bins (columns) at most")] = rollouts.MATRIX_BINS,
    min_change: Annotated[
        float,
        typer.Option(help="a query moved by at least this much between its start and end is learned or forgotten"),
    ] = 0.5,
    db: DbOption = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every query's success over training (query x step bin, ordered by initial p_hat), and the queries
    learned and forgotten. --out writes the matrix one row per query and bin."""
    check_option("--min-change", min_change, low=0, high=1, open_low=True)
    store = open_store(db, readonly=True)
    m = rollouts.success_matrix(run, store, bins=bins, min_change=min_change)
    long = rollouts.matrix_long(m)
    _write(long, out)
    learned, forgotten = m.queries[m.queries["learned"]], m.queries[m.queries["forgotten"]]
    if as_json:
        print_json(
            {
                "order": m.order,
                "bin_steps": m.bin_steps,
                "cells": long.to_dict("records"),
                "queries": m.queries.to_dict("records"),
            }
        )
        return
    typer.echo(
        f"{len(m.queries)} queries x {len(m.frame.columns)} bins of {m.bin_steps} steps, ordered by {m.order}: "
        f"{len(learned)} learned, {len(forgotten)} forgotten (moved by {min_change:g} or more)"
    )
    for label, part in (("learned", learned), ("forgotten", forgotten)):
        if len(part):
            typer.echo(f"{label}:")
            _table(part.head(SHOWN), [("query_id", "query", str), ("start", "start", percent), ("end", "end", percent)])


def _write(frame, out: Path | None) -> None:
    if out is not None:
        path = rollouts.export(frame, out)
        typer.echo(f"wrote {len(frame)} rows to {path}", err=True)


def _table(frame, columns) -> None:
    cells = [[_cell(row.get(c), fmt) for c, _, fmt in columns] for row in frame.to_dict("records")]
    widths = [max([len(label)] + [len(r[i]) for r in cells]) for i, (_, label, _) in enumerate(columns)]
    typer.echo("  ".join(f"{label:<{w}}" for (_, label, _), w in zip(columns, widths)))
    for r in cells:
        typer.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths)))


def _cell(value, fmt) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, list):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return fmt(value)


def register(app: typer.Typer) -> None:
    runs_app.command("rollouts")(rollouts_command)
    runs_app.command("history")(history_command)
    runs_app.command("heatmap")(heatmap_command)
