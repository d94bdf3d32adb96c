"""Several processes on one run (`accelerate launch` / `torchrun` set RANK and WORLD_SIZE): the main
process creates the run and writes the store; the others learn its id and only train.

    rank, world = rank_and_world()
    run_id = on_main(lambda: create(...)["id"], device="cpu")   # the id, on every rank
"""

from __future__ import annotations

import os

from sgpo.errors import ConfigError, SgpoError


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def on_main(fn, *, device: str):
    """fn() on the main process, its value (or its SgpoError, as a ConfigError) on every process. With one
    process this is just fn()."""
    rank, world = rank_and_world()
    if world == 1:
        return fn()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    PartialState(cpu=device == "cpu")  # joins the process group accelerate launch set up
    box = [None]
    if rank == 0:
        try:
            box = [("ok", fn())]
        except SgpoError as exc:
            box = [("error", str(exc))]
            broadcast_object_list(box)
            raise
    broadcast_object_list(box)
    kind, value = box[0]
    if kind == "error":
        raise ConfigError(f"the main process refused the run: {value}")
    return value
