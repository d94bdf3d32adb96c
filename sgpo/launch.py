"""Starting `sgpo` in other processes: detached workers, and re-runs under the interpreter that has vLLM.

Every process is an argument list, never a shell. A detached worker gets its own session (it outlives
the terminal or dashboard that started it) and a log file; a re-run streams its output through ours.
"""

from __future__ import annotations

import codecs
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path


def sgpo_argv(*args, python: str | None = None) -> list[str]:
    """`python -m sgpo ARGS` as an argument list."""
    return [python or sys.executable, "-m", "sgpo", *[str(a) for a in args]]


def cli_line(argv: list[str]) -> str:
    """What a user would type for an argv: `sgpo ...`, quoted for a POSIX shell (the process gets the list)."""
    args = argv[3:] if argv[1:3] == ["-m", "sgpo"] else argv
    return shlex.join(["sgpo", *map(str, args)])


def vllm_rerun_python(backend: str) -> str | None:
    """The interpreter to re-run this command under: vLLM's, when `backend` is vllm, this interpreter lacks
    it, and this process is not already such a re-run; else None (run here)."""
    if backend != "vllm" or os.environ.get("SGPO_VLLM_RERUN"):
        return None
    from sgpo.generate.vllm import vllm_python

    return vllm_python()


def rerun_env() -> dict:
    """The environment of a child `python -m sgpo`: marked as a re-run, with this checkout importable."""
    from sgpo.generate.vllm import PROJECT_ROOT

    return {
        **os.environ,
        "SGPO_VLLM_RERUN": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }


def detach(argv: list[str], log: Path) -> subprocess.Popen:
    """Start `argv` in its own session, stdin closed, stdout and stderr appended to `log`. A thread waits
    on it, so a finished worker is reaped at once (no zombie) even if nobody polls it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=rerun_env()
        )
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc


def rerun(python: str, argv: list, *, stdout_to_stderr: bool = False) -> int:
    """Run `python -m sgpo ARGV` where vLLM is installed, streaming its stdout and stderr through ours (so
    in-process callers capture them) and returning its exit code. stdout_to_stderr: the caller prints the
    result itself, so the child's report goes to stderr and stdout stays one JSON object."""
    print(f"vLLM is not installed here: running under {python}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(
        sgpo_argv(*argv, python=python), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rerun_env()
    )
    pumps = [
        threading.Thread(target=pump, args=(src, dst), daemon=True)
        for src, dst in ((proc.stdout, sys.stderr if stdout_to_stderr else sys.stdout), (proc.stderr, sys.stderr))
    ]
    for t in pumps:
        t.start()
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        code = proc.wait()
    for t in pumps:
        t.join()
    return code


def pump(src, dst) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    for chunk in iter(lambda: src.read1(1 << 16), b""):  # chunks, not lines: progress bars use \r
        try:
            dst.write(decoder.decode(chunk))
            dst.flush()
        except (BrokenPipeError, ValueError):  # our reader went away (e.g. `| head`): keep draining the child
            pass


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists and is not a zombie (exited, not yet reaped)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
