"""Training: one engine for sgpo (the plan), fixed-G GRPO and DAPO, with the same accounting.

    from sgpo import runs
    from sgpo.train import TrainConfig
    result = runs.train(TrainConfig(strategy="grpo", steps=50), Store("runs/sgpo.db"), name="baseline")
    result["flops_total"], result["run_wasted_fraction"], result["eval_accuracy"]
    runs.resume("baseline", store)                 # after a crash, a kill -9 or `sgpo runs stop`

Modules, in data-flow order: config (knobs), setup (checks, the plan made once), batches (which
queries, which G), grpo (the loss), engine (the seam: what an engine does; ours is NativeEngine),
evaluate (held-out accuracy), checkpoint (atomic saves), loop (what every engine shares). The run
lifecycle (create, start, stop, resume, status) is sgpo/runs.py.
"""

from __future__ import annotations

from sgpo.train.config import TrainConfig

__all__ = ["TrainConfig"]
