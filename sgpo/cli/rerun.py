"""Re-run a command under another interpreter (the one with vLLM), streaming its output through ours."""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
import threading


def vllm_rerun_python(backend: str) -> str | None:
    """The interpreter to re-run this command under: vLLM's, when `backend` is vllm, this interpreter lacks
    it, and this process is not already such a re-run; else None (run here)."""
    if backend != "vllm" or os.environ.get("SGPO_VLLM_RERUN"):
        return None
    from sgpo.generate.vllm import vllm_python

    return vllm_python()


def rerun_env() -> dict:
    """The environment of a re-run `python -m sgpo`: marked as a re-run, with this checkout importable."""
    from sgpo.generate.vllm import PROJECT_ROOT

    return {**os.environ, "SGPO_VLLM_RERUN": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}


def rerun(python: str, argv: list) -> int:
    """Run `python -m sgpo ARGV` (an argument list, never a shell) where vLLM is installed, streaming its
    stdout and stderr through ours (so in-process callers capture them) and returning its exit code."""
    env = rerun_env()
    print(f"vLLM is not installed here: running under {python}", file=sys.stderr, flush=True)
    proc = subprocess.Popen([python, "-m", "sgpo", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    pumps = [threading.Thread(target=pump, args=(src, dst), daemon=True)
             for src, dst in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
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
