"""Several processes on one run: the device is resolved before the process group is joined, the main
process's value reaches every rank, and a failure on any rank is one line on the main process while the
others exit quietly. Two real processes over gloo, as `accelerate launch` / torchrun start them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from bench.browser import free_port
from sgpo.distributed import on_every_rank, on_main, rank_and_world
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import sys
    from sgpo.distributed import any_rank, on_every_rank, on_main, rank_and_world
    from sgpo.errors import ConfigError

    rank = rank_and_world()[0]

    def fail_on(bad):
        def fn():
            if rank == bad:
                raise ConfigError(f"no weights on rank {rank}")
            return rank
        return fn

    case = sys.argv[1]
    if case == "agree":
        print(on_main(lambda: f"run {rank}", device="auto"), on_every_rank(lambda: rank * 10, device="auto"),
              any_rank(rank == 1), any_rank(False), flush=True)
    else:  # a SgpoError on rank `case`, as the CLI shows one
        try:
            on_every_rank(fail_on(int(case)), device="auto")
        except ConfigError as exc:
            print(f"error: {exc}", flush=True)
            sys.exit(2)
""")


def two_ranks(tmp_path, case: str) -> list[subprocess.CompletedProcess]:
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",  # --device auto must resolve to CPU and join with gloo
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), case], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=180), *p.communicate()) for p in procs]


def test_every_rank_gets_the_main_value_and_a_stop_on_one_rank_stops_all(tmp_path):
    main, other = two_ranks(tmp_path, "agree")
    assert main.returncode == other.returncode == 0, main.stderr[-2000:] + other.stderr[-2000:]
    assert main.stdout.split() == ["run", "0", "0", "True", "False"]
    assert other.stdout.split() == ["run", "0", "10", "True", "False"]


@pytest.mark.parametrize("bad", [1, 0])
def test_a_failure_on_any_rank_is_one_line_on_the_main_process_and_a_quiet_exit_elsewhere(tmp_path, bad):
    main, other = two_ranks(tmp_path, str(bad))
    assert main.returncode == 2 and other.returncode == 2
    who = "process 1 of 2 failed: " if bad == 1 else ""
    assert main.stdout.strip() == f"error: {who}no weights on rank {bad}"
    assert "Traceback" not in main.stderr and other.stdout == "" and "Traceback" not in other.stderr


def test_with_one_process_each_call_is_plain():
    assert rank_and_world() == (0, 1)
    assert on_main(lambda: 3, device="cuda") == 3 and on_every_rank(lambda: 4, device="cuda") == 4  # joins nothing
