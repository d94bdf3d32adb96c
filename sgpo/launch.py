"""Starting `sgpo` in other processes: detached workers, and re-runs under the interpreter that has vLLM.
The one place processes are started (runs, profiles, the dashboard's jobs all come through here).

    proc = detach(sgpo_argv("runs", "start", "baseline", "--db", "runs/sgpo.db"), Path("runs/logs/baseline.log"))
    pid_alive(proc.pid)          # True while it runs; False once it exited (a zombie counts as exited)
    tail("runs/logs/baseline.log", lines=20)

Every process is an argument list, never a shell. A detached worker gets its own session (it outlives
the terminal or dashboard that started it) and a log file; a re-run streams its output through ours.
"""

from __future__ import annotations

import codecs
import json
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

from sgpo.errors import BackendError
from sgpo.generate import vllm as vllm_backend


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
    return vllm_backend.vllm_python()


def rerun_env() -> dict:
    """The environment of a child `python -m sgpo`: marked as a re-run, with this checkout importable (an
    installed sgpo adds nothing: the child's interpreter has its own)."""
    return {
        **os.environ,
        "SGPO_VLLM_RERUN": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(
                None,
                [str(vllm_backend.CHECKOUT_ROOT) if vllm_backend.CHECKOUT_ROOT else None, os.environ.get("PYTHONPATH")],
            )
        ),
    }


def detach(argv: list[str], log: Path) -> subprocess.Popen:
    """Start `argv` in its own session, stdin closed, stdout and stderr appended to `log`. A thread waits
    on it, so a finished worker is reaped at once (no zombie) even if nobody polls it. BackendError naming
    the command when it cannot be started (a log folder that cannot be made, a missing interpreter)."""
    log = Path(log)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=rerun_env(),
            )
    except OSError as exc:
        raise BackendError(f"cannot start `{cli_line(argv)}` (log {log}): {exc.strerror or exc}") from None
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc


def tail(path: str | os.PathLike | None, lines: int = 20) -> str:
    """The last lines of a log file ('' if there is none yet); reads only the file's end, and a progress
    bar's carriage returns count as line ends."""
    if not path or not Path(path).is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def last_error(path: str | os.PathLike | None) -> str | None:
    """A worker's own one-line `error: ...` message from its log, if it wrote one."""
    errors = [ln for ln in tail(path, 40).splitlines() if ln.startswith("error:")]
    return errors[-1] if errors else None


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


def rerun_json(python: str, argv: list) -> dict:
    """`python -m sgpo ARGV --json` where vLLM is installed: its stderr (progress, warnings) streamed through
    ours, its one JSON object on stdout returned. BackendError with the child's own error line if it fails."""
    print(f"vLLM is not installed here: running under {python}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(
        sgpo_argv(*argv, "--json", python=python), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rerun_env()
    )
    err: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None  # both piped above
    pumping = threading.Thread(target=pump, args=(proc.stderr, _Tee(sys.stderr, err)), daemon=True)
    pumping.start()
    try:
        out = proc.stdout.read()
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        code = proc.wait()
        out = b""
    pumping.join()
    if code:
        lines = [ln for ln in "".join(err).splitlines() if ln.startswith("error: ")]
        said = lines[-1][len("error: ") :] if lines else f"exit code {code}; its output is above"
        raise BackendError(f"`{cli_line(sgpo_argv(*argv))}` under {python} failed: {said}")
    return json.loads(out)


class _Tee:
    """Writes to `stream` and keeps a copy in `kept` (a list of strings)."""

    def __init__(self, stream, kept: list[str]):
        self.stream, self.kept = stream, kept

    def write(self, text: str) -> None:
        self.kept.append(text)
        self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


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
