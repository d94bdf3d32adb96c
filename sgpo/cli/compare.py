"""`sgpo compare RUN... [--baseline RUN]`: the compute-reduction factor at matched accuracy, per run or per
setting over seeds (`--seeds`), what the dashboard's Compare page shows. A thin face over sgpo.compare."""

from __future__ import annotations

from typing import Annotated

import typer

from sgpo import compare
from sgpo.accounting import ENGINE_BEHAVIOURS
from sgpo.cli.common import DbOption, JsonOption, open_store, print_json
from sgpo.errors import ConfigError
from sgpo.units import count, factor, percent
from sgpo.units import flops as human_flops


def compare_command(
    runs: Annotated[list[str], typer.Argument(help="runs (ids or names) to compare; `sgpo runs` lists them")],
    baseline: Annotated[
        str | None,
        typer.Option(
            help="the run every factor is measured against (default: the first grpo run given, else the first)"
        ),
    ] = None,
    behaviour: Annotated[
        str | None,
        typer.Option(
            help="price every run as if it trained this way: skip (zero-advantage groups left out of the backward "
            "pass) or train_all (every rollout trained); default: as each run trained"
        ),
    ] = None,
    seeds: Annotated[
        bool,
        typer.Option(
            "--seeds",
            help="group runs whose configs differ only in seed and compare settings, seeds averaged",
        ),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The FLOPs the baseline needs to reach its final accuracy over the FLOPs each run needs to reach it
    (seeds averaged on one FLOPs grid, linear between evaluations, profiling included): above 1, cheaper."""
    if behaviour is not None and behaviour not in ENGINE_BEHAVIOURS:
        raise ConfigError(f"--behaviour {behaviour!r}: one of {', '.join(ENGINE_BEHAVIOURS)}")
    store = open_store(db, readonly=True)
    rows = [store.find_run(r) for r in runs]
    if baseline is None:
        grpo = [r for r in rows if r["strategy"] == "grpo"]
        baseline = (grpo or rows)[0]["name"]
    base = store.find_run(baseline)["name"]
    names = [r["name"] for r in rows]
    if seeds:
        table = compare.by_setting(store, names, base, behaviour=behaviour)
    else:
        table = compare.table(store, names, base, behaviour=behaviour)
    out = {"baseline": base, "behaviour": behaviour or "as trained", "rows": table.to_dict("records")}
    if as_json:
        print_json(out)
        return
    typer.echo(f"compute reduction against {base} ({out['behaviour']})")
    if seeds:
        columns = [
            ("setting", "setting", str),
            ("seeds", "seeds", count),
            ("final_accuracy_mean", "final accuracy", percent),
            ("flops_total_mean", "total compute", human_flops),
            ("run_wasted_fraction", "wasted", percent),
            ("reduction", "reduction", str),
            ("reduction_min", "seed min", factor),
            ("reduction_max", "seed max", factor),
            ("reached", "seeds reaching", count),
        ]
    else:
        columns = [
            ("run", "run", str),
            ("strategy", "strategy", str),
            ("status", "status", str),
            ("final_accuracy", "final accuracy", percent),
            ("flops_total", "total compute", human_flops),
            ("run_wasted_fraction", "wasted", percent),
            ("reduction", "reduction", str),
            ("forecast_reduction", "forecast", factor),
        ]
    cells = [[_cell(r.get(key), fmt) for key, _, fmt in columns] for r in out["rows"]]
    widths = [max([len(label)] + [len(c[i]) for c in cells]) for i, (_, label, _) in enumerate(columns)]
    typer.echo("  ".join(f"{label:<{w}}" for (_, label, _), w in zip(columns, widths)))
    for c in cells:
        typer.echo("  ".join(f"{cell:<{w}}" for cell, w in zip(c, widths)))
    targets = [_cell(r.get("target_accuracy"), percent) for r in out["rows"]]
    target = next((t for t in targets if t != "n/a"), None)
    if target:
        typer.echo(f"target: {target}, the final accuracy of {base}'s mean curve")


def _cell(value, fmt) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return fmt(value)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
