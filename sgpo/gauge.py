"""What the critical-batch gauge says about a run, in words, and the batch it recommends for a plan.

    from sgpo import gauge
    v = gauge.verdict(store.metrics_frame(run_id))      # a run's per-step metrics (sgpo/train/noise.py logs them)
    v["state"], v["words"]          # "step-limited", "sample-limited", "near the critical batch", ...
    v["critical_rollouts"], v["critical_informative"]   # B_simple in rollouts a step and in informative rollouts
    gauge.recommend(plan.forecast, v, source="baseline")  # rollouts a step for the plan (and for GRPO)
    gauge.pilot("first", PlanConfig(), store, steps=30)   # a throwaway run on the plan, its verdict (nothing stored)

The rule. B_simple (McCandlish et al. 2018) is the batch at which a step's gradient noise equals its signal:
well below it, doubling the batch almost halves the steps to a given loss (every sample counts: the run is
sample-limited); well above it, doubling the batch barely saves a step (the run is step-limited). The gauge
counts the batch in informative rollouts, the only ones with a gradient. A run's step holds I informative
rollouts on average over its latest WINDOW steps, against the smoothed B_simple at its latest step:

- step-limited when I > STEP_LIMITED x B_simple: fewer rollouts a step would reach the same loss for less
  compute; filtering out zero-advantage groups then saves only what the waste costs, never steps;
- sample-limited when I < SAMPLE_LIMITED x B_simple: denser steps learn more per step, which is where sGPO's
  plan pays (more informative rollouts in a step of the same rollouts);
- near the critical batch in between;
- not enough steps yet while fewer than MIN_STEPS steps carried an estimate (two informative groups or more).

The factors 2 and 0.5 are McCandlish's: at B = 2 B_simple a step already does 2/3 of what an infinite batch
would, and at B = B_simple / 2 a third (steps to a loss S = S_min (1 + B_simple / B)). TRL's engine logs no
gauge: its GRPOTrainer does not expose per-micro-batch gradients to callbacks, so its runs get a sentence
saying to run a short pilot on ours.

The recommended batch for a plan: B_simple in informative rollouts over the share of the plan's rollouts the
forecast expects to be informative (and the same for fixed-G GRPO over its share). That is the batch that
trades steps for compute evenly: to reach a loss a run takes S = S_min (1 + B_simple / B) steps and
E = E_min (1 + B / B_simple) rollouts, so at B_simple twice the fewest steps and twice the least compute, at
B_simple / 10 eleven times the fewest steps and 1.1x the least compute. Under a fixed FLOP budget the least
compute is what counts, and any batch well below B_simple does about as well (in the frontier benchmark, all
far below B_simple, GRPO's best accuracy at 64, 128 and 256 rollouts a step differ by 0.012-0.028, with no
batch best in every regime): so the recommendation also gives `least_compute_rollouts_per_step`,
LEAST_COMPUTE x B_simple over the share, the largest batch within 10% of the least compute. It is measured on
an earlier run (any run whose steps logged the gauge: one on the same profile is best) or on a pilot: a short
run of the plan on our engine with the gauge on, trained in a temporary folder and thrown away.
"""

from __future__ import annotations

import math
import secrets
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sgpo.errors import ConfigError
from sgpo.plan import PlanConfig
from sgpo.store import Store
from sgpo.train import TrainConfig
from sgpo.train.config import PLAN_FROM_RUN
from sgpo.train.loop import Trainer
from sgpo.train.setup import prepare

STEP_LIMITED, SAMPLE_LIMITED = 2.0, 0.5  # informative rollouts a step over B_simple (see the module docstring)
LEAST_COMPUTE = 0.1  # B / B_simple within 10% of the least compute to a loss: E = E_min (1 + B / B_simple)
MIN_STEPS = 20  # steps with a gauge estimate before a verdict (the EMA's estimates are heavy-tailed)
WINDOW = 50  # the latest steps whose mean rollouts and informative rollouts are set against B_simple
STATES = ("step-limited", "sample-limited", "near the critical batch", "not enough steps yet", "not measured")
TRL_WORDS = (
    "the TRL engine does not expose per-micro-batch gradients, so this run has no critical-batch gauge; run a short "
    "native pilot (sgpo plan PROFILE --pilot-steps 30, or sgpo train --engine native --steps 30) and read its gauge"
)


def verdict(metrics: pd.DataFrame, batch_rollouts: int | None = None, *, engine: str = "native") -> dict:
    """The gauge's verdict on a run from its metrics frame (one row per step; step 0 is ignored): `state` (one of
    STATES), `critical_rollouts` and `critical_informative` (B_simple at the latest step, None while unknown,
    inf when the noise still hides the mean gradient), `informative_per_step` and `rollouts_per_step` (means over
    the latest WINDOW steps), `ratio` (informative per step over B_simple), `steps` (steps with an estimate)
    and `words`. `batch_rollouts`: the run's --batch-rollouts, said in the words when the steps logged none."""
    out: dict = {
        "state": "not measured",
        "critical_rollouts": None,
        "critical_informative": None,
        "informative_per_step": None,
        "rollouts_per_step": None,
        "ratio": None,
        "steps": 0,
    }
    if engine == "trl":
        return {**out, "words": TRL_WORDS}
    steps = metrics[metrics["step"] > 0] if "step" in metrics else metrics
    estimated = steps["noise_g2"].notna() if "noise_g2" in steps else pd.Series(False, index=steps.index)
    out["steps"] = int(estimated.sum())
    if "noise_scale_informative" not in steps or not steps["noise_scale_informative"].notna().any():
        size = f" of {batch_rollouts} rollouts" if batch_rollouts else ""
        words = (
            f"no gauge: no step{size} held two informative groups, or the gauge was off (--gauge-chunks 0)"
            if len(steps)
            else "no step logged yet"
        )
        return {**out, "state": "not enough steps yet" if not len(steps) else "not measured", "words": words}
    latest = steps[steps["noise_scale_informative"].notna()].iloc[-1]
    critical_informative = float(latest["noise_scale_informative"])
    critical_rollouts = float(latest["noise_scale_rollouts"])
    recent = steps.tail(WINDOW)
    rollouts = float(recent["rollouts"].mean())
    informative = float((recent["rollouts"] - recent["wasted_rollouts"]).mean())
    ratio = informative / critical_informative if critical_informative > 0 else math.inf
    out.update(
        critical_informative=critical_informative,
        critical_rollouts=critical_rollouts,
        informative_per_step=informative,
        rollouts_per_step=rollouts,
        ratio=ratio,
    )
    return {**out, **_judge(out)}


def _judge(v: dict) -> dict:
    """The state and its words from the measured figures (see the module docstring)."""
    n, ratio = v["steps"], v["ratio"]
    informative, rollouts = v["informative_per_step"], v["rollouts_per_step"]
    holds = f"a step holds {informative:,.0f} informative rollouts of {rollouts:,.0f}"
    if n < MIN_STEPS:
        return {
            "state": "not enough steps yet",
            "words": f"not enough steps yet: {n} of the {MIN_STEPS} steps the gauge needs carried an estimate "
            f"(a step needs two informative groups); {holds}",
        }
    if not math.isfinite(v["critical_informative"]):
        return {
            "state": "sample-limited",
            "words": f"sample-limited, as far as {n} steps can tell: the smoothed mean gradient is still hidden in "
            f"the noise (its |G|^2 estimate is not above zero), which is what steps far below their critical batch "
            f"show; {holds}: denser steps learn more per step, which is where sGPO's plan pays",
        }
    b_inf, b_roll = v["critical_informative"], v["critical_rollouts"]
    critical = f"the critical batch B_simple of about {b_inf:,.0f} informative rollouts ({b_roll:,.0f} rollouts a step)"
    if ratio > STEP_LIMITED:
        return {
            "state": "step-limited",
            "words": f"step-limited: {holds}, {ratio:.1f}x {critical}: fewer rollouts a step would reach the same "
            f"loss for less compute, and filtering out wasted rollouts saves only their cost",
        }
    if ratio < SAMPLE_LIMITED:
        return {
            "state": "sample-limited",
            "words": f"sample-limited: {holds}, {1 / ratio:.1f}x below {critical}: denser steps learn more per step, "
            f"which is where sGPO's plan pays",
        }
    return {
        "state": "near the critical batch",
        "words": f"near the critical batch: {holds}, {ratio:.1f}x {critical} (between {SAMPLE_LIMITED:g}x and "
        f"{STEP_LIMITED:g}x): steps are about as large as they usefully get",
    }


def informative_share(side: dict) -> float | None:
    """The share of a forecast side's rollouts expected to be informative (None without rollouts)."""
    rollouts = side.get("rollouts") or 0.0
    return float(side["expected_informative_rollouts"]) / rollouts if rollouts else None


def recommend(forecast: dict, v: dict, *, source: str) -> dict:
    """Rollouts a step for a plan, from a gauge verdict `v` (of run `source`): B_simple in informative rollouts
    over the plan's forecast informative share over its planned run (sgpo.plan.forecast, `run.skip`), and the
    same for fixed-G GRPO over its share. None figures, with the reason in `basis`, when the gauge has no finite
    B_simple."""
    run = forecast["run"]["skip"]
    plan_share, grpo_share = informative_share(run["plan"]), informative_share(run["baseline"])
    b = v["critical_informative"]
    out = {
        "rollouts_per_step": None,
        "informative_per_step": None,
        "grpo_rollouts_per_step": None,
        "least_compute_rollouts_per_step": None,
        "least_compute_informative_per_step": None,
        "plan_informative_share": plan_share,
        "grpo_informative_share": grpo_share,
        "from": source,
        "steps": v["steps"],
        "state": v["state"],
    }
    if b is None or not math.isfinite(b) or b <= 0:
        return {
            **out,
            "basis": f"run {source!r}: {v['words']}; no finite critical batch to size the plan's steps by",
        }
    rollouts = int(math.ceil(b / plan_share)) if plan_share else None
    grpo = int(math.ceil(b / grpo_share)) if grpo_share else None
    least = int(math.ceil(LEAST_COMPUTE * b / plan_share)) if plan_share else None
    basis = (
        f"B_simple of {b:,.0f} informative rollouts measured over {v['steps']} steps of run {source!r}, over the "
        f"plan's forecast informative share {plan_share:.0%}"
        + (f" (GRPO's: {grpo_share:.0%})" if grpo_share else "")
        + (
            f": for the fewest steps train it with --batch-rollouts {rollouts} (--batch-informative "
            f"{int(np.ceil(b))}), at about twice the least compute; under a FLOP budget, --batch-rollouts {least} "
            f"or fewer spends within 10% of the least compute"
            if rollouts and least
            else ""
        )
    )
    return {
        **out,
        "rollouts_per_step": rollouts,
        "informative_per_step": b,
        "grpo_rollouts_per_step": grpo,
        "least_compute_rollouts_per_step": least,
        "least_compute_informative_per_step": LEAST_COMPUTE * b,
        "basis": basis,
    }


def pilot(profile_ref: str | int, plan_config: PlanConfig, store: Store, *, steps: int, log=None) -> dict:
    """The verdict of a pilot: `steps` steps of the plan of profile `profile_ref` at `plan_config`'s knobs (its batch
    and seed too), on our engine with the gauge on (--gauge-chunks 2), the profile's model, data and sampling, no
    evaluation. It trains in a temporary folder with a store of its own, thrown away after: nothing is written to
    `store`. ConfigError naming --pilot-steps when fewer than MIN_STEPS steps are asked for, or the run is refused."""
    if steps < MIN_STEPS:
        raise ConfigError(
            f"--pilot-steps {steps}: the gauge needs {MIN_STEPS} steps with an estimate before it says anything: "
            f"give {MIN_STEPS} or more (30 is a good start)"
        )
    row = store.find_profile(profile_ref)
    knobs = {k: v for k, v in plan_config.to_dict().items() if k not in PLAN_FROM_RUN or k == "seed"}
    name = f"gauge-pilot-{secrets.token_hex(4)}"  # checked against the store's runs; never created there
    try:
        cfg = TrainConfig(
            strategy="sgpo",
            profile=str(row["id"]),
            steps=steps,
            batch_rollouts=plan_config.run_batch_rollouts,
            seed=plan_config.seed,
            plan=knobs,
            gauge_chunks=2,
            eval_every=0,
            temperature=float(row["temperature"]),
            max_new_tokens=int(row["max_new_tokens"]),
            keep_completions=0,
            checkpoint_every=steps,
            force=True,
        )
        prep = prepare(cfg, store, name=name)
    except ConfigError as exc:
        raise ConfigError(f"--pilot-steps {steps}: the pilot run is refused: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="sgpo-pilot-") as tmp:
        own = Store(Path(tmp) / "pilot.db")
        trainer = Trainer(prep, own, own.create_run(**prep.run_row()), log=log)
        result = trainer.run()
        v = verdict(own.metrics_frame(result["run_id"]), cfg.batch_rollouts)
        own.close()
    return v


def pooled(frames: list[pd.DataFrame], *, draws: int = 400, seed: int = 0) -> dict:
    """B_simple over whole runs: the ratio of the means of the per-step unbiased estimates (`noise_trace`,
    `noise_g2`) over every step of `frames` (runs' metrics) that carried one, which is what an EMA as long as the
    runs gives; in informative rollouts and in rollouts (by the steps' informative share), with an 80% bootstrap
    interval over steps (an upper end of inf: the noise still hides the mean gradient in some resamples).
    {"critical_informative", "critical_rollouts", "low_informative", "high_informative", "informative_share",
    "steps"}; the figures are None when no step carried an estimate."""
    steps = [f[f["step"] > 0] if "step" in f else f for f in frames]
    both = pd.concat(steps, ignore_index=True) if steps else pd.DataFrame()
    out: dict = dict.fromkeys(
        ("critical_informative", "critical_rollouts", "low_informative", "high_informative", "informative_share")
    )
    out["steps"] = 0
    if both.empty or "noise_g2" not in both or not both["noise_g2"].notna().any():
        return out
    est = both[both["noise_g2"].notna()]
    g2, trace = est["noise_g2"].to_numpy(float), est["noise_trace"].to_numpy(float)
    share = float((both["rollouts"] - both["wasted_rollouts"]).sum() / both["rollouts"].sum())

    def ratio(idx: np.ndarray) -> float:
        mean_g2 = g2[idx].mean()
        return float(trace[idx].mean() / mean_g2) if mean_g2 > 0 else math.inf

    rng = np.random.default_rng(seed)
    resampled = np.sort([ratio(rng.integers(0, len(g2), len(g2))) for _ in range(draws)])  # inf sorts last
    b = ratio(np.arange(len(g2)))
    out.update(
        critical_informative=b,
        critical_rollouts=b / share if share > 0 else math.inf,
        low_informative=float(resampled[int(0.1 * draws)]),
        high_informative=float(resampled[int(0.9 * draws) - 1]),
        informative_share=share,
        steps=len(g2),
    )
    return out
