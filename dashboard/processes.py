"""Background `sgpo profile` jobs started by this server.

Profiling runs as the real `sgpo profile` command (an argument list, never a shell), so the dashboard
can do nothing the CLI cannot, and the CLI line shown under the button is exactly what runs. Jobs live
in a module-level registry: it survives reruns and is shared by every browser session of one server,
and polling it reaps finished children (no zombies). Training runs are started through sgpo.runs,
which gives each its own detached worker (dashboard/state.py: launch_run).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from dashboard.state import db_path, store
from sgpo.errors import ModelError, StoreError
from sgpo.launch import cli_line, sgpo_argv

FIRST_PROFILE = {"dataset": "builtin:train", "model": "starter", "name": "starter-train"}


def profile_argv(dataset: str, model: str, name: str, config) -> list[str]:
    """`sgpo profile DATASET --model MODEL [knobs that differ from the defaults] --db DB --name NAME`."""
    return sgpo_argv("profile", dataset, "--model", model, *config.cli_args(), "--db", db_path(), "--name", name)


def checkpoint_profile(run: dict, step: int, base: dict | None) -> tuple[str, list[str]]:
    """(profile name, `sgpo profile` argv) for the difficulty audit of a run's checkpoint: the dataset and
    sampling of `base` (the profile the run trained from, so the two p_hats compare), else the run's own
    dataset and sampling knobs. The model is `run:NAME@STEP`, passed as is."""
    from sgpo.profile import ProfileConfig

    cfg = run.get("config") or {}
    knobs = {k: cfg[k] for k in ("temperature", "max_new_tokens", "backend") if cfg.get(k) is not None}
    dataset = cfg.get("dataset")
    if base:
        dataset = base.get("dataset_spec") or dataset
        knobs = {
            k: base[k]
            for k in ("samples", "temperature", "max_new_tokens", "backend", "seed")
            if base.get(k) is not None
        }
        if base.get("query_limit"):
            knobs["limit"] = base["query_limit"]
    if not dataset:
        raise StoreError(f"run {run['name']!r} records no dataset, so its checkpoint has nothing to be profiled on")
    name = f"{run['name']}-step{step}"
    return name, profile_argv(dataset, f"run:{run['name']}@{step}", name, ProfileConfig(**knobs))


# background jobs ----------------------------------------------------------------------------------
@dataclass
class Job:
    kind: str  # profile
    name: str  # the profile it makes
    argv: list[str]
    log: Path
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()  # reaps the child once it has exited

    @property
    def running(self) -> bool:
        return self.returncode is None

    def tail(self, lines: int = 20) -> str:
        return tail(self.log, lines)

    def error(self) -> str | None:
        """The child's own one-line `error: ...` message if it failed, else its last output line."""
        if self.returncode in (None, 0):
            return None
        text = self.tail(40).strip().splitlines()
        errors = [ln for ln in text if ln.startswith("error:")]
        return (errors[-1] if errors else (text[-1] if text else "")) + f" (exit code {self.returncode})"


_JOBS: list[Job] = []


def launch(kind: str, name: str, argv: list[str]) -> Job:
    """Start an sgpo command in the background; its stdout and stderr go to a log beside the store."""
    logs = db_path().parent / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{kind}-{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
    except OSError as exc:
        raise StoreError(f"cannot start `{cli_line(argv)}`: {exc}") from None
    job = Job(kind, name, argv, log, proc)
    _JOBS.append(job)
    return job


def jobs(kind: str | None = None, name: str | None = None) -> list[Job]:
    """Jobs started by this server, newest first; polling them here reaps the finished ones."""
    out = [j for j in reversed(_JOBS) if (kind is None or j.kind == kind) and (name is None or j.name == name)]
    for j in out:
        j.proc.poll()
    return out


def tail(path: str | os.PathLike | None, lines: int = 20) -> str:
    """The last lines of a log file ('' if there is none yet); reads only the file's end."""
    if not path or not Path(path).is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def first_profile_note() -> str:
    """Why an empty store was not profiled by itself, if it was not."""
    from sgpo.model import check_spec

    try:
        check_spec(FIRST_PROFILE["model"])
    except ModelError as exc:
        return f"The first start profiles builtin:train with the starter policy, but {exc}."
    if os.environ.get("SGPO_AUTOPROFILE", "1") == "0":
        return "Automatic first profiling is off (SGPO_AUTOPROFILE=0)."
    return ""


def maybe_start_first_profile() -> Job | None:
    """On a first start with an empty store, profile the built-in train split with the starter policy.

    Once per server; off when $SGPO_AUTOPROFILE is 0 (tests), or when the starter policy is missing."""
    from sgpo.model import check_spec
    from sgpo.profile import ProfileConfig

    if os.environ.get("SGPO_AUTOPROFILE", "1") == "0" or jobs("profile"):
        return None
    with store() as s:
        if s.profiles():
            return None
    try:
        model = check_spec(FIRST_PROFILE["model"])
    except ModelError:
        return None
    f = FIRST_PROFILE
    return launch("profile", f["name"], profile_argv(f["dataset"], model, f["name"], ProfileConfig()))
