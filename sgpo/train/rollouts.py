"""Rollouts and rewards: one group of G completions per query, generated with the engine's current
weights and scored by the dataset's own reward rule (sgpo/tasks/rewards.py).

    rollouts = Rollouts(engine.generator, dataset, temperature=1.0, max_new_tokens=20)
    groups = rollouts(rows=[3, 7], sizes=[2, 8], seed=s)     # Group(query, prompt_ids, completions, rewards)

The samplers (sgpo/train/batches.py) call it to fill a batch. Prompts of equal G share one generate call,
seeded by `seed + 104729 * G`, so a batch's groups depend only on the step's seed and the weights.
"""

from __future__ import annotations

import numpy as np

from sgpo.data import Dataset
from sgpo.generate import Generator
from sgpo.tasks.rewards import SCORERS
from sgpo.train.grpo import Group

SIZE_SEED = 104729  # added per group size: each size's generate call has its own seed


class Rollouts:
    def __init__(self, generator: Generator, dataset: Dataset, *, temperature: float, max_new_tokens: int):
        self.generator, self.temperature, self.max_new_tokens = generator, temperature, max_new_tokens
        self.prompts = dataset.frame["prompt"].to_numpy()
        self.answers = dataset.frame["answer"].to_numpy()
        self.score = SCORERS[dataset.reward]

    def __call__(self, rows: list[int], sizes: list[int], seed: int) -> list[Group]:
        """Generate and score one group per row, rows[i] with sizes[i] completions."""
        groups: list[Group | None] = [None] * len(rows)
        for g in sorted(set(sizes)):
            idx = [i for i, s in enumerate(sizes) if s == g]
            outs = self.generator.generate(
                [self.prompts[rows[i]] for i in idx],
                n=g,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                seed=seed + SIZE_SEED * g,
            )
            for i, out in zip(idx, outs):
                rewards = np.array([self.score(s.text, self.answers[rows[i]]) for s in out.samples], dtype=float)
                groups[i] = Group(
                    query=rows[i],
                    prompt_ids=list(out.prompt_ids),
                    completions=[list(s.token_ids) for s in out.samples],
                    rewards=rewards,
                )
        return groups  # type: ignore[return-value]  # every slot is filled: each row has a size
