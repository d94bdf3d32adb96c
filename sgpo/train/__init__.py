"""Training: one run of sgpo (the plan), fixed-G GRPO, DAPO or GRESO on our engine or TRL's, with the same
metrics and accounting.

    from sgpo import runs
    from sgpo.train import TrainConfig
    result = runs.train(TrainConfig(strategy="grpo", steps=50), Store("runs/sgpo.db"), name="baseline")
    result["flops_total"], result["run_wasted_fraction"], result["eval_accuracy"]
    runs.resume("baseline", store)                 # after a crash, a kill -9 or `sgpo runs stop`

Modules, in data-flow order:
- config (the knobs), setup (checks, the plan made once), trl_config (the knobs as TRL's GRPOConfig;
  the one import of trl)
- sampling (which queries, which G: the strategy's sampler from batches, or TRL's phases; first_epoch: the plan
  made from the run's own first epoch), rollouts (generation and rewards), grpo (the loss), noise (the
  critical-batch gauge read off the loss's gradient accumulation; sgpo/gauge.py says what it means)
- engine (the seam: Engine and Session), native (our engine), trl_engine + trl_callback (TRL's)
- session (the step sink: steps, totals, budget, stop), metrics (each step's row), evaluate (held-out
  accuracy), recorder (every store write, main process only), checkpoint (atomic saves, every part's
  state), signals (SIGTERM and Ctrl-C)
- loop (the Trainer: the units wired together, one run from start or checkpoint to its end)
The run lifecycle (create, start, stop, resume, status) is sgpo/runs.py; FLOPs rules are sgpo/accounting.py.
"""

from __future__ import annotations

from sgpo.train.config import TrainConfig

__all__ = ["TrainConfig"]
