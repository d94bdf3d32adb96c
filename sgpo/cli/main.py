"""`sgpo`: the command line. Each area registers its commands from its own module; every command is a
thin face over the library. A SgpoError becomes one clear line on stderr and exit code 2."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from sgpo.errors import SgpoError
from sgpo.generate.vllm import VLLM_PYTHON_ENV, VLLM_PYTHON_OPTION

try:  # typer >= 0.29 ships its own copy of click: usage errors are its ClickException
    from typer._click.exceptions import ClickException
except ImportError:  # older typer runs on click itself
    from click import ClickException  # type: ignore[assignment]

app = typer.Typer(
    help="sGPO Studio: profile query difficulty, plan rollouts, train, and watch it live.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def version_text() -> str:
    """`sgpo VERSION`, from the installed distribution's metadata (pyproject takes it from sgpo.__version__)."""
    return f"sgpo {importlib.metadata.version('sgpo')}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
    vllm_python: Annotated[
        Path | None,
        typer.Option(
            VLLM_PYTHON_OPTION,
            help=f"a python that has vLLM, for --backend vllm when this one lacks it (sets ${VLLM_PYTHON_ENV})",
        ),
    ] = None,
) -> None:
    if vllm_python is not None:  # re-runs and the dashboard's workers inherit it; it is checked where it is used
        os.environ[VLLM_PYTHON_ENV] = str(vllm_python.expanduser())


from sgpo.cli import compare as _compare  # noqa: E402
from sgpo.cli import dashboard as _dashboard  # noqa: E402
from sgpo.cli import data as _data  # noqa: E402
from sgpo.cli import plan as _plan  # noqa: E402
from sgpo.cli import profile as _profile  # noqa: E402
from sgpo.cli import rollouts as _rollouts  # noqa: E402
from sgpo.cli import train as _train  # noqa: E402

for _module in (_data, _profile, _plan, _train, _rollouts, _compare, _dashboard):
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        # outside standalone mode, typer returns the code of a `typer.Exit(n)` instead of raising it
        code = command.main(args=argv, prog_name="sgpo", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except SgpoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except ClickException as exc:  # usage errors: a bad option value, a missing argument
        exc.show()
        return 2
    except BrokenPipeError:  # `sgpo tasks | head`: the reader left, nothing to report
        return 0
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
