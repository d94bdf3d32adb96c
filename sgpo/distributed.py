"""Several processes on one run (`accelerate launch` / `torchrun` set RANK and WORLD_SIZE): the main
process creates the run and writes the store; the others learn its id and only train.

    rank, world = rank_and_world()
    run_id = on_main(lambda: create(...)["id"], device="auto")     # the id, on every rank
    trainer = on_every_rank(lambda: Trainer(...), device="auto")     # each rank's own, once all are ready
    stop = any_rank(stop)                                            # True everywhere if True on one rank

The device is resolved before the process group is joined (gloo on CPU, nccl on CUDA), so `--device auto`
on a machine without a GPU joins with gloo like `--device cpu`. A SgpoError on any rank during these
collective steps is one line on the main process (naming the rank when it was another one) and exit code
2 everywhere: the other ranks exit quietly, with no traceback. With one process each call is plain.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import TypeVar, cast

import torch
import torch.distributed as dist
from accelerate import PartialState

from sgpo.device import resolve_device
from sgpo.errors import ConfigError, SgpoError

T = TypeVar("T")
WAIT_FOR_MAIN = timedelta(seconds=60)  # how long another rank waits for the main process to report and exit


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank_and_world()[0] == 0


def join(device: str) -> None:
    """Join the process group that accelerate launch (torchrun) set up, on the backend of the resolved
    device: `auto` without a GPU is CPU, and CPU joins with gloo."""
    if not dist.is_initialized():
        PartialState(cpu=resolve_device(device) == "cpu")
        if dist.is_initialized():
            atexit.register(_leave)
    if not dist.is_initialized():  # accelerate did not set up a group (launched without torchrun's env)
        raise ConfigError(
            f"WORLD_SIZE={rank_and_world()[1]} but no process group could be joined: start several "
            f"processes with `accelerate launch --multi_gpu --num_processes N -m sgpo ...`"
        )


def _leave() -> None:
    """Leave the process group before the interpreter exits: a gloo group torn down by the interpreter's
    exit instead can abort the process ("terminate called without an active exception", exit -6) when
    another rank has already gone."""
    if dist.is_initialized():
        with suppress(Exception):
            dist.destroy_process_group()


@contextmanager
def main_reports() -> Iterator[None]:
    """A SgpoError off the main process ends that process quietly with the error's exit code, once the
    main process has had the time to say it (the launcher stops every process when one exits)."""
    try:
        yield
    except SgpoError as exc:
        if not is_main():
            _wait_for_main()
            raise SystemExit(exc.exit_code) from None
        raise


def _wait_for_main() -> None:
    """Block until the main process leaves (its connection closes, or the launcher ends this process),
    at most WAIT_FOR_MAIN: a barrier the main process never enters."""
    if not dist.is_initialized():
        return
    with suppress(Exception):  # the main process left: what we waited for, whatever the backend calls it
        dist.barrier(async_op=True).wait(timeout=WAIT_FOR_MAIN)


def on_main(fn: Callable[[], T], *, device: str) -> T:
    """fn() on the main process, its value on every process; its SgpoError raised on the main process
    and a quiet exit on the others."""
    rank, world = rank_and_world()
    if world == 1:
        return fn()
    with main_reports():
        join(device)
        value, error = _attempt(fn) if rank == 0 else (None, None)
        box = [(value, None if error is None else str(error))]
        dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        value, message = box[0]
        if message is not None:
            raise ConfigError(f"the main process refused the run: {message}")
        return cast(T, value)


def on_every_rank(fn: Callable[[], T], *, device: str) -> T:
    """fn() on every process, each keeping its own value, once every one of them succeeded. A SgpoError
    on any process: the main process raises it (its own, or one naming the rank that failed)."""
    rank, world = rank_and_world()
    if world == 1:
        return fn()
    with main_reports():
        join(device)
        value, error = _attempt(fn)
        errors: list[str | None] = [None] * world
        dist.all_gather_object(errors, None if error is None else str(error))
        if error is not None and rank == 0:
            raise error
        failed = [(r, message) for r, message in enumerate(errors) if message is not None]
        if failed:
            r, message = failed[0]
            raise ConfigError(f"process {r} of {world} failed: {message}")
        return cast(T, value)


def any_rank(flag: bool) -> bool:
    """True on every process if it is True on any (a stop asked of one process stops all at the same step);
    the flag itself outside a process group."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return flag
    on = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([float(flag)], device=on)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _attempt(fn: Callable[[], T]) -> tuple[T | None, SgpoError | None]:
    try:
        return fn(), None
    except SgpoError as exc:
        return None, exc
