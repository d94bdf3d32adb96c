"""How long make_plan (decisions, group sizes, phases and forecast) takes on 1,000,000 profiled queries.

    .venv/bin/python bench/plan_speed.py [--queries 1000000] [--repeats 5]

Synthetic profile: p ~ Beta(0.5, 0.7) per query, N = 8 samples, successes ~ Binomial(8, p), so about a
third of the queries are unsolved or trivial, as in a real profile. Prints the median wall time per
group rule and curriculum; the dashboard re-plans on every slider move, so the default should stay
well under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import pandas as pd

from sgpo.plan import CURRICULA, GROUP_RULES, PlanConfig, make_plan


def synthetic_profile(n: int, samples: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    successes = rng.binomial(samples, rng.beta(0.5, 0.7, n))
    return pd.DataFrame(
        {
            "id": pd.Series(np.arange(n)).astype(str).radd("q").to_numpy(dtype=object),
            "task": np.where(rng.random(n) < 0.5, "arith", "logic").astype(object),
            "difficulty": rng.integers(1, 6, n),
            "samples": samples,
            "successes": successes,
            "p_hat": successes / samples,
            "prompt_tokens": rng.integers(30, 200, n),
            "completion_tokens_mean": rng.uniform(40, 400, n),
        }
    )


def median_ms(frame: pd.DataFrame, config: PlanConfig, repeats: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds; CPU time shows the cost when other work shares the cores."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        make_plan(frame, config, n_params=1_500_000_000, flops_profile=1e15)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    frame = synthetic_profile(args.queries)
    plan = make_plan(frame, PlanConfig(), n_params=1_500_000_000)
    print(f"{args.queries:,} queries, counts {plan.counts}")
    print(
        f"default plan forecast ratio {plan.forecast['ratio']:.2f}x, "
        f"wasted {plan.forecast['plan']['forecast_wasted_fraction']:.1%} vs GRPO "
        f"{plan.forecast['baseline']['forecast_wasted_fraction']:.1%}"
    )
    print(
        f"median of {args.repeats} runs of make_plan + forecast, wall / CPU ms "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
    )
    print(f"{'group_rule':<10}" + "".join(f"{c:>14}" for c in CURRICULA))
    for rule in GROUP_RULES:
        cells = [median_ms(frame, PlanConfig(group_rule=rule, curriculum=c), args.repeats) for c in CURRICULA]
        print(f"{rule:<10}" + "".join(f"{f'{w:.0f} / {c:.0f}':>14}" for w, c in cells))
    wall, cpu = median_ms(frame, PlanConfig(), max(args.repeats, 7))
    verdict = "ok" if wall < 200 else "over"
    print(f"default config (pow2, sequential): {wall:.0f} ms wall, {cpu:.0f} ms CPU (target < 200 ms wall: {verdict})")


if __name__ == "__main__":
    main()
