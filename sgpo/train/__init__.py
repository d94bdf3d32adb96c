"""Training: one engine for sgpo (the plan), fixed-G GRPO and DAPO, with the same accounting.

    from sgpo.train import TrainConfig, train, resume
    result = train(TrainConfig(strategy="grpo", steps=50), Store("runs/sgpo.db"), run_name="baseline")
    result["flops_total"], result["wasted_fraction"], result["eval_accuracy"]
    resume("baseline", store)                      # after a crash, a kill -9 or `sgpo runs stop`

Modules, in data-flow order: config (knobs), setup (validation, plan), batches (which queries, which
G), grpo (the loss), evaluate (held-out accuracy), checkpoint (atomic saves), loop (the steps).
"""

from __future__ import annotations

from sgpo.train.config import TrainConfig, knobs


def train(cfg: TrainConfig, store, *, run_name: str | None = None, log=None) -> dict:
    """Validate everything, create the run row, train to the budget; returns the result dict."""
    from sgpo.train.loop import Trainer
    from sgpo.train.setup import create_run, prepare

    prep = prepare(cfg, store, run_name=run_name)
    return Trainer(prep, store, create_run(prep, store), log=log).run()


def resume(ref: str | int, store, *, log=None) -> dict:
    """Continue a run from its latest checkpoint (from step 0 if it has none)."""
    from sgpo.train.loop import Trainer
    from sgpo.train.setup import check_resumable, prepare

    run = store.find_run(ref)
    check_resumable(run, store)
    prep = prepare(TrainConfig.from_dict(run["config"]), store, run_name=run["name"], resuming=True)
    return Trainer(prep, store, run["id"], log=log).run()


__all__ = ["TrainConfig", "knobs", "train", "resume"]
