"""The child process behind sgpo.tasks.verify: math-verify on one request line at a time.

Runs as a plain script (`python -P verify_worker.py`) so it needs nothing but math-verify, and its
parent can kill it whenever a comparison overruns. Reads JSON lines `[gold, answer]` (both LaTeX
without delimiters) and replies one line each: 1 (equal), 0 (not equal, or the answer is not math),
or ? (math-verify cannot read the gold). Prints `ready` once math-verify is imported.
"""

import json
import logging
import sys

try:
    import resource

    HAS_RLIMIT = True
except ImportError:  # not POSIX: only the parent's time limit applies
    HAS_RLIMIT = False

MEMORY_LIMIT_BYTES = 4 << 30  # sympy expanding 10^(10^10) raises MemoryError here instead of swapping the host
CPU_LIMIT_S = 60  # per comparison, enforced by the kernel: bounds one whose parent died before it could kill it


def main() -> None:
    replies, sys.stdout = sys.stdout, sys.stderr  # a library's stray print must not pass for a reply
    if HAS_RLIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    logging.disable(logging.WARNING)  # math-verify warns that its timeouts are off: the parent's kill is the limit
    from math_verify import parse, verify

    print("ready", file=replies, flush=True)
    for line in iter(sys.stdin.readline, ""):  # end of input: the parent is gone
        gold, answer = json.loads(line)
        _allow_cpu(CPU_LIMIT_S)
        print(compare(parse, verify, gold, answer), file=replies, flush=True)


def compare(parse, verify, gold: str, answer: str) -> str:
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=None)
    except Exception:  # math-verify's parser can raise on odd LaTeX: an unreadable gold
        return "?"
    if not gold_parsed:
        return "?"
    try:
        parsed = parse(f"\\boxed{{{answer}}}", parsing_timeout=None)
        return "1" if parsed and verify(gold_parsed, parsed, timeout_seconds=None) else "0"
    except Exception:  # MemoryError, RecursionError, sympy errors: the answer scores 0
        return "0"


def _allow_cpu(seconds: int) -> None:
    # A thread or signal handler cannot stop sympy inside one long C call (a giant integer power);
    # the kernel's SIGXCPU at the soft limit can.
    if HAS_RLIMIT:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime) + seconds
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


if __name__ == "__main__":
    main()
