"""`sgpo train` (sgpo, grpo or dapo), `sgpo runs` (list) and `sgpo runs stop RUN`.

The options of `sgpo train` are generated from TrainConfig and from the planner's PlanConfig (same
names as `sgpo plan`), so the dataclasses stay the one source of names, defaults and help.
`--detach` validates, creates the run, then starts `python -m sgpo train --resume RUN` in the
background (an argument list, never a shell) with its output in a log file beside the database.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from sgpo.cli.common import (DbOption, JsonOption, dataclass_options, human_flops, open_store, print_json,
                             with_options)
from sgpo.cli.rerun import rerun, rerun_env, vllm_rerun_python
from sgpo.errors import BackendError, ConfigError
from sgpo.plan import PlanConfig
from sgpo.train.config import TrainConfig

PLAN_SKIP = ("seed",)  # the plan's seed follows --seed
EXTRA = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, opt])
    for name, hint, default, opt in [
        ("run_name", Optional[str], None, typer.Option("--run-name", help="unique run name (default: strategy-time)")),
        ("resume", Optional[str], None, typer.Option("--resume", help="continue run RUN (id or name) from its last "
                                                                      "checkpoint; the other knobs come from the run")),
        ("detach", bool, False, typer.Option("--detach", help="run in the background; `sgpo runs` shows it")),
        ("db", Optional[Path], None, DbOption.__metadata__[0]),
        ("as_json", bool, False, JsonOption.__metadata__[0]),
    ]]


@with_options(*dataclass_options(TrainConfig, skip=("plan",)),
              *dataclass_options(PlanConfig, skip=PLAN_SKIP, help_prefix="plan: "), *EXTRA)
def train_command(**kw) -> None:
    """Train a policy with sgpo (profile-driven plan), fixed-G GRPO or DAPO, with FLOPs accounting."""
    run_name, resume_ref, detach, db, as_json = (kw.pop(k) for k in ("run_name", "resume", "detach", "db", "as_json"))
    store = open_store(db)
    if resume_ref is not None:
        from sgpo.train.setup import check_resumable

        run = store.find_run(resume_ref)
        check_resumable(run, store)
        cfg = TrainConfig.from_dict(run["config"])
        if detach or vllm_rerun_python(cfg.backend):
            return _launch(store, run["id"], run["name"], detach=detach, as_json=as_json)
        from sgpo.train import resume

        return _report(resume(run["id"], store), as_json)
    plan = {f.name: kw.pop(f.name) for f in fields(PlanConfig) if f.name not in PLAN_SKIP}
    cfg = TrainConfig(**kw, plan=plan if kw.get("strategy") == "sgpo" else {})
    from sgpo.train.setup import create_run, prepare

    prep = prepare(cfg, store, run_name=run_name)
    if detach or vllm_rerun_python(cfg.backend):
        run_id = create_run(prep, store)
        return _launch(store, run_id, prep.run_name, detach=detach, as_json=as_json)
    from sgpo.train.loop import Trainer

    _report(Trainer(prep, store, create_run(prep, store)).run(), as_json)


def _launch(store, run_id: int, name: str, *, detach: bool, as_json: bool) -> None:
    """Start `sgpo train --resume RUN` in another process: detached (log file), or in the foreground under
    the interpreter that has vLLM (output streamed through)."""
    from sgpo.train.setup import log_path

    python = sys.executable
    if store.find_run(run_id)["config"].get("backend") == "vllm":
        from sgpo.generate.vllm import vllm_python

        python = vllm_python() or python
    argv = ["train", "--resume", str(run_id), "--db", str(store.path.resolve())]
    if not detach:
        code = rerun(python, argv + (["--json"] if as_json else []))
        if code:
            raise BackendError(f"training under {python} failed (exit code {code}); its error is above. The run "
                               f"can continue with `sgpo train --resume {name}`")
        return
    log = log_path(store, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen([python, "-m", "sgpo", *argv], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=rerun_env())
    store.update_run(run_id, pid=proc.pid, log_path=str(log))
    info = {"run_id": run_id, "run_name": name, "pid": proc.pid, "status": "started", "log_path": str(log)}
    if as_json:
        print_json(info)
    else:
        typer.echo(f"run {run_id} {name!r} started in the background (pid {proc.pid}); log: {log}\n"
                   f"  watch: sgpo runs    stop: sgpo runs stop {name}")


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    typer.echo(f"run {result['run_id']} {result['run_name']!r} {result['status']} after {result['steps']} steps: "
               f"{human_flops(result['flops_total'])} total (profile {human_flops(result['flops_profile'])}, rollout "
               f"{human_flops(result['flops_rollout'])}, train {human_flops(result['flops_train'])}), wasted "
               f"{result['wasted_fraction']:.1%} of {result['rollouts_total']:,.0f} rollouts")
    if result.get("eval_accuracy") is not None:
        typer.echo(f"  held-out accuracy {_f(result['eval_accuracy_initial'])} -> {_f(result['eval_accuracy'])}; "
                   f"middle band {_f(result['eval_middle_accuracy_initial'])} -> {_f(result['eval_middle_accuracy'])}")
    typer.echo(f"  weights: {result['checkpoint']}")


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


runs_app = typer.Typer(help="List training runs, or stop one.", invoke_without_command=True)


@runs_app.callback(invoke_without_command=True)
def runs(ctx: typer.Context, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every run, oldest first, with status, step and results."""
    if ctx.invoked_subcommand is not None:
        return
    from sgpo.train.setup import pid_alive

    rows = open_store(db).runs()
    for r in rows:
        r["alive"] = bool(r["pid"]) and pid_alive(r["pid"])
        r["result"] = json.loads(r["result"]) if r.get("result") else None
        r.pop("config", None)
    if as_json:
        print_json({"runs": rows})
        return
    if not rows:
        typer.echo("no runs yet: sgpo train --strategy grpo --steps 50")
        return
    typer.echo(f"{'id':>3}  {'name':<28} {'strategy':<8} {'status':<9} {'step':>6} {'FLOPs':>12} {'eval':>6}  pid")
    for r in rows:
        res = r["result"] or {}
        typer.echo(f"{r['id']:>3}  {r['name'][:28]:<28} {r['strategy']:<8} {r['status']:<9} {r['step'] or 0:>6} "
                   f"{human_flops(res.get('flops_total')):>12} {_f(res.get('eval_accuracy')):>6}  "
                   f"{r['pid'] if r['alive'] else ''}")


@runs_app.command("stop")
def stop(run: Annotated[str, typer.Argument(help="run id or name")], db: DbOption = None,
         wait: Annotated[float, typer.Option(help="seconds to wait for the run to checkpoint and stop (0: don't)")] = 120,
         as_json: JsonOption = False) -> None:
    """Ask a running run to stop: it finishes its step, checkpoints, and ends with status 'stopped'."""
    import signal

    from sgpo.train.setup import pid_alive

    store = open_store(db)
    row = store.find_run(run)
    if row["status"] not in ("running", "created"):
        raise ConfigError(f"run {row['name']!r} is not running (status {row['status']}); nothing to stop")
    pid = row["pid"]
    if not pid or not pid_alive(pid):
        store.update_run(row["id"], status="stopped", pid=None)
        store.event(row["id"], "stopped", "marked stopped: its process was gone")
        status = "stopped"
    else:
        os.kill(pid, signal.SIGTERM)
        deadline, status = time.time() + wait, "stopping"
        while time.time() < deadline:
            status = store.find_run(row["id"])["status"]
            if status not in ("running", "created") or not pid_alive(pid):
                break
            time.sleep(0.5)
        status = store.find_run(row["id"])["status"] if wait else "stopping"
    if as_json:
        print_json({"run_id": row["id"], "run_name": row["name"], "pid": pid, "status": status})
    else:
        typer.echo(f"run {row['id']} {row['name']!r}: {status}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.add_typer(runs_app, name="runs")
