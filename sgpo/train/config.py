"""Every training knob in one dataclass: name, default, help and range, read by the CLI and the dashboard.

    cfg = TrainConfig(strategy="sgpo", profile="1", steps=300).validate()
    TrainConfig.from_dict(cfg.to_dict()) == cfg

The planner's knobs (threshold, group-size rule, curriculum, ...) live in `plan`, a dict of
sgpo.plan.PlanConfig fields: they keep the names `sgpo plan` gives them. Defaults for the starter
policy were measured on it (README, "The starter policy"): lr 5e-5 after 20 warmup steps, temperature 1, beta 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sgpo.device import DEVICES, DTYPES
from sgpo.errors import ConfigError
from sgpo.generate import BACKENDS
from sgpo.knobs import Knobs, knob
from sgpo.plan import PlanConfig
from sgpo.train.trl_config import check_trl_options
from sgpo.vocab import STRATEGIES

AGGREGATIONS = ("token-mean", "sequence-mean")
# PlanConfig knobs a training run sets from its own: the plan's seed is --seed, and its forecast is of
# this run (--steps or --flops-budget, --batch-rollouts)
PLAN_FROM_RUN = ("seed", "run_steps", "run_flops", "run_batch_rollouts")
ENGINES = ("native", "trl")


@dataclass
class TrainConfig(Knobs):
    strategy: str = knob(
        "sgpo",
        "sgpo (the plan: selection, per-query G, curriculum), grpo (fixed G on the "
        "shuffled dataset), dapo (fixed G, zero-variance groups dropped and refilled) or "
        "greso (fixed G, queries whose recent groups had zero variance skipped before "
        "rollout)",
        choices=STRATEGIES,
    )
    engine: str = knob(
        "native",
        "native (ours: per-query G in one batch, zero-advantage groups skipped) or trl "
        "(TRL's GRPOTrainer, one trainer per plan phase; runs under accelerate launch)",
        choices=ENGINES,
    )
    dataset: str | None = knob(
        None,
        "training dataset spec (builtin:NAME, a file, or hf:REPO), read with the field mapping and reward "
        "recorded for it; default: the --profile's dataset, else builtin:train",
    )
    profile: str | None = knob(None, "profile id or name (required for sgpo; its p_hat drives the plan)")
    plan_from_first_epoch: bool = knob(
        False,
        "sgpo without a separate profile: the first epoch trains grpo at --group-size over the training set, its "
        "groups' success counts become the run's profile (RUN-epoch1; no profiling FLOPs: they are training's), and "
        "the plan made from them with the plan knobs trains from then on",
    )
    reward: str | None = knob(
        None,
        "exact, math, math-lenient or MODULE:FUNCTION (TRL's reward signature); default: the one recorded with "
        "the dataset (the profile's), else picked from the answers",
    )
    model: str | None = knob(
        None, "policy to train: starter, a local folder, or an HF id; default: the --profile's model, else starter"
    )
    steps: int | None = knob(None, "optimizer steps to run (default 100 when no --flops-budget)", min=1)
    flops_budget: float | None = knob(
        None, "stop once total FLOPs (profiling included for sgpo) reach this", min=0, open_min=True
    )
    batch_rollouts: int = knob(
        256,
        "rollouts per step: a batch is a rollout budget, so G=2 groups hold 4x the queries of G=8 ones",
        min=1,
        max=65536,
    )
    group_size: int = knob(8, "G for grpo and dapo (sgpo takes G from the plan)", min=2, max=64)
    batch_informative: float = knob(
        0.0,
        "sgpo: size each step by what it teaches: fill it until its queries are expected to hold this many "
        "informative rollouts (the sum of G x P_inf(p, G) under the plan's posterior of each query), "
        "--batch-rollouts staying the cap (0: off, every step holds --batch-rollouts)",
        min=0.0,
    )
    temperature: float = knob(1.0, "sampling temperature for rollouts and sampled eval", min=0, open_min=True)
    max_new_tokens: int = knob(20, "completion length cap, in tokens", min=1, max=8192)
    truncate_prompts: bool = knob(
        False,
        "cut prompts longer than the model's context minus --max-new-tokens, "
        "keeping their END; off: such a prompt is refused, naming its query",
    )
    lr: float = knob(5e-5, "peak learning rate (AdamW)", min=0, open_min=True)
    warmup_steps: int = knob(20, "linear warmup steps, then constant", min=0)
    weight_decay: float = knob(0.0, "AdamW weight decay", min=0)
    max_grad_norm: float = knob(1.0, "gradient clipping norm (0: off)", min=0)
    beta: float = knob(0.0, "KL coefficient to the initial policy (0: no reference model)", min=0)
    epsilon: float = knob(0.2, "lower clip of the ratio: 1 - epsilon", min=0)
    epsilon_high: float = knob(0.2, "upper clip of the ratio: 1 + epsilon_high (DAPO uses 0.28)", min=0)
    scale_rewards: bool = knob(True, "divide advantages by the group's reward std (off: Dr. GRPO)")
    loss_aggregation: str = knob(
        "token-mean",
        "token-mean (over all completion tokens of the batch, TRL's "
        "default) or sequence-mean (per sequence, then over sequences)",
        choices=AGGREGATIONS,
    )
    skip_zero_advantage: bool = knob(
        True, "leave zero-advantage groups out of the backward pass (same gradient when beta = 0, less compute)"
    )
    dapo_max_rounds: int = knob(8, "dapo: generation rounds per step before training on a partly filled batch", min=1)
    greso_explore: float = knob(
        0.5,
        "greso: starting chance p that a query whose last z groups all had equal rewards "
        "is rolled out anyway (kept with chance max(p^z, 0.01)); it moves by 0.01 a step "
        "toward greso_target",
        min=0.0,
        max=1.0,
        open_min=True,
    )
    greso_target: float = knob(
        0.25,
        "greso: share of the batch in zero-variance groups that greso_explore steers to "
        "(a third all-success, two thirds all-failure)",
        min=0.0,
        max=1.0,
    )
    refresh: bool = knob(False, "sgpo: Beta posterior per query from its training rollouts, and re-plan with it")
    refresh_every: int = knob(0, "sgpo --refresh: re-plan every K steps (0: at each phase boundary)", min=0)
    refresh_decay: float = knob(
        1.0, "sgpo --refresh: weight kept by old evidence at each new group (1: none forgotten)", min=0, max=1
    )
    eval_every: int = knob(
        25, "held-out eval every K steps, plus before the first and after the last (0: never)", min=0
    )
    eval_dataset: str | None = knob(
        None,
        "held-out dataset spec; default: builtin:eval for built-in training data, else a seeded share of the "
        "training data held out (--held-out-share)",
    )
    held_out_share: float = knob(
        0.1,
        "without --eval-dataset, the share of your own dataset's distinct prompts held out for evaluation "
        "(at least 20 prompts; seeded, disjoint by prompt, the same for every run on that data)",
        min=0.0,
        max=0.5,
        open_min=True,
    )
    force: bool = knob(False, "train a plan with too few learnable queries to forecast (refused otherwise)")
    eval_samples: int = knob(4, "samples per held-out query at the training temperature", min=1, max=64)
    eval_greedy: bool = knob(True, "also measure greedy accuracy (one more sample per query)")
    eval_limit: int = knob(0, "evaluate a fixed random subset of this many queries (0: all)", min=0)
    checkpoint_every: int = knob(10, "checkpoint every K steps, and at the end", min=1)
    keep_completions: int = knob(
        2,
        "groups a step whose completion texts are stored in full (a seeded choice; 0: none); every group's "
        "rewards and lengths are stored whatever this is (README, Rollouts)",
        min=0,
        max=4096,
    )
    backend: str = knob(
        "hf",
        "rollout backend: hf (the training model itself) or vllm (colocated engine, weights reloaded after each step)",
        choices=BACKENDS,
    )
    device: str = knob(
        "auto",
        "where the policy, reference model, generation and loss run: auto = cuda when available",
        choices=DEVICES,
    )
    dtype: str = knob(
        "auto",
        "weights dtype: auto = bfloat16 on cuda, float32 on cpu; bfloat16 trains with fp32 "
        "master weights and optimizer state under autocast",
        choices=DTYPES,
    )
    gpu_memory_utilization: float = knob(
        0.3,
        "--backend vllm: share of GPU memory the colocated vLLM engine may take (training needs the rest)",
        min=0.0,
        max=1.0,
        open_min=True,
    )
    tensor_parallel_size: int = knob(1, "--backend vllm: GPUs the vLLM engine shards the model over", min=1, max=64)
    trl: dict = knob(dict, "--engine trl: GRPOConfig fields set as given (--trl KEY=VALUE, --trl-config FILE.yaml)")
    micro_batch: int = knob(128, "sequences per forward/backward pass", min=1, max=4096)
    gauge_chunks: int | None = knob(
        None,
        "critical-batch gauge: split each step's informative groups into K >= 2 chunks and estimate the gradient "
        "noise scale from their gradient norms (metrics noise_*; sgpo/train/noise.py); 0: off; default: 2 where a "
        "step holds two groups or more on --engine native, else off",
        min=0,
        max=64,
    )
    threads: int = knob(0, "torch CPU threads (0: all cores)", min=0)
    seed: int = knob(0, "seed for data order, sampling and the plan", min=0)
    plan: dict = knob(dict, "sgpo plan knobs (sgpo.plan.PlanConfig fields)")

    DEFAULT_STEPS = 100

    def check(self) -> None:
        if self.strategy == "sgpo":
            PlanConfig.from_dict(self.plan)  # a bad plan knob is refused here, before anything is written
        if self.engine == "trl":
            check_trl_options(self.trl)
            if self.strategy in ("dapo", "greso"):
                raise ConfigError(
                    f"--engine trl runs --strategy sgpo or grpo: TRL has no DAPO dynamic sampling "
                    f"(trl issue 3708) and no GRESO pre-rollout skip; use --engine native for "
                    f"{self.strategy}"
                )
            if self.refresh:
                raise ConfigError(
                    "--refresh re-plans inside a phase: use --engine native (TRL's trainer keeps its phase's dataset)"
                )
        elif self.trl:
            raise ConfigError("--trl sets GRPOConfig fields: it needs --engine trl")
        if self.refresh and self.strategy != "sgpo":
            raise ConfigError(f"--refresh applies to --strategy sgpo only (got {self.strategy})")
        if self.batch_informative:
            self._check_batch_informative()
        if self.plan_from_first_epoch:
            self._check_first_epoch()
        if self.batch_rollouts < self.group_size and self.strategy != "sgpo":
            raise ConfigError(
                f"--batch-rollouts ({self.batch_rollouts}) must hold at least one group of "
                f"--group-size {self.group_size}"
            )
        self._check_gauge()

    def _check_first_epoch(self) -> None:
        """Planning from the first epoch is sgpo's, on our engine, and replaces a profile."""
        if self.strategy != "sgpo":
            raise ConfigError(
                f"--plan-from-first-epoch makes an sgpo plan from the first epoch, and --strategy {self.strategy} "
                f"has no plan: use --strategy sgpo"
            )
        if self.engine == "trl":
            raise ConfigError(
                "--plan-from-first-epoch switches from GRPO to the plan inside a run, which TRL's trainers (one per "
                "phase) cannot: use --engine native"
            )
        if self.profile:
            raise ConfigError(
                f"--plan-from-first-epoch makes the run's profile from its first epoch, and --profile {self.profile} "
                f"names one already: drop one of the two"
            )
        if self.batch_rollouts < self.group_size:
            raise ConfigError(
                f"--plan-from-first-epoch: the first epoch trains groups of --group-size {self.group_size}, more "
                f"than --batch-rollouts {self.batch_rollouts} holds: raise --batch-rollouts or lower --group-size"
            )

    def _check_batch_informative(self) -> None:
        """Steps sized by expected informative rollouts need the plan's beliefs and our engine's sampler."""
        n = f"{self.batch_informative:g}"
        if self.strategy != "sgpo":
            raise ConfigError(
                f"--batch-informative {n} sizes sgpo's steps by the plan's beliefs, and --strategy {self.strategy} "
                f"has no plan: use --strategy sgpo, or size {self.strategy}'s steps with --batch-rollouts"
            )
        if self.engine == "trl":
            raise ConfigError(
                f"--batch-informative {n}: TRL's GRPOTrainer generates a fixed number of prompts a step: use "
                f"--engine native, or size the steps with --batch-rollouts"
            )
        if self.batch_informative > self.batch_rollouts:
            raise ConfigError(
                f"--batch-informative {n} is above --batch-rollouts {self.batch_rollouts}, the cap on a step's "
                f"rollouts, so no step could reach it: raise --batch-rollouts or lower --batch-informative"
            )

    def _check_gauge(self) -> None:
        """A gauge asked of a run that cannot have two chunks a step is refused, naming --gauge-chunks."""
        k = self.gauge_chunks
        if k is None or k == 0:
            return
        if k == 1:
            raise ConfigError(
                "--gauge-chunks 1: the gauge compares the gradients of two chunks of a step or more: give 2 or "
                "more, or 0 to turn it off"
            )
        if self.engine == "trl":
            raise ConfigError(
                f"--gauge-chunks {k}: TRL's GRPOTrainer does not expose per-micro-batch gradients (its callbacks see "
                f"the step's gradients once, clipped): run a short pilot on --engine native, or drop --gauge-chunks"
            )
        if self.groups_a_step() < 2:
            g = self._smallest_group()
            raise ConfigError(
                f"--gauge-chunks {k}: a step of --batch-rollouts {self.batch_rollouts} holds at most one group of "
                f"{g} rollouts, and the gauge needs two groups a step: raise --batch-rollouts to at least {2 * g}, "
                f"or give --gauge-chunks 0"
            )

    def _smallest_group(self) -> int:
        return PlanConfig.from_dict(self.plan).g_min if self.strategy == "sgpo" else self.group_size

    def groups_a_step(self) -> int:
        """The most groups a step can hold: --batch-rollouts over --group-size (sgpo: over the plan's --g-min)."""
        return self.batch_rollouts // self._smallest_group()

    @property
    def gauge(self) -> int:
        """Chunks a step for the critical-batch gauge (0: off): --gauge-chunks, else 2 where a step holds two groups
        or more on our engine."""
        if self.gauge_chunks is not None:
            return self.gauge_chunks
        return 2 if self.engine == "native" and self.groups_a_step() >= 2 else 0

    @property
    def max_steps(self) -> int | None:
        """The step budget: --steps, else the default when no FLOPs budget is given, else none."""
        if self.steps is not None:
            return self.steps
        return None if self.flops_budget is not None else self.DEFAULT_STEPS

    @property
    def num_threads(self) -> int:
        return self.threads or os.cpu_count() or 1
