"""Rollouts and rewards: one group of G completions per query, generated with the engine's current
weights and scored by the dataset's own reward rule (sgpo/tasks/rewards.py).

    rollouts = Rollouts(engine.generator, dataset, temperature=1.0, max_new_tokens=20)
    groups = rollouts(rows=[3, 7], sizes=[2, 8], seed=s)     # Group(query, prompt_ids, completions, rewards)

The samplers (sgpo/train/batches.py) call it to fill a batch. Prompts of equal G share one generate call,
seeded by `seed + 104729 * G`, so a batch's groups depend only on the step's seed and the weights.

What a step's groups leave in the store (sgpo/rollouts.py reads them back), built here for every engine:

    log = step_groups(records, queries)          # what a step's row carries under ROLLOUTS_KEY to the recorder
    group_record(query=3, rewards=[1, 0], lengths=[5, 7], phase=0, trained=True, texts=None)
    kept_slots(groups=32, keep=2, seed=0, step=7) # which groups of a step keep their completion texts (seeded)
    query_record(dataset.frame, row=3)            # a query's id, task, difficulty and prompt, stored once a run
"""

from __future__ import annotations

import numpy as np

from sgpo.data import Dataset
from sgpo.generate import Generator
from sgpo.train.grpo import Group

SIZE_SEED = 104729  # added per group size: each size's generate call has its own seed
KEEP_SEED = 7877  # keyed with the run's seed and the step: which groups keep their completion texts
ROLLOUTS_KEY = "rollout_groups"  # a step's groups ride in its data to the recorder, which writes them apart
SUCCESS = 0.5  # a sample whose reward is above this is a success (rewards are binary: 1.0 is a success)


class Rollouts:
    def __init__(self, generator: Generator, dataset: Dataset, *, temperature: float, max_new_tokens: int):
        self.generator, self.temperature, self.max_new_tokens = generator, temperature, max_new_tokens
        frame = dataset.frame
        self.prompts, self.answers = frame["prompt"].to_numpy(), frame["answer"].to_numpy()
        self.ids, self.tasks, self.levels = frame["id"].to_numpy(), frame["task"].to_numpy(), frame["difficulty"]
        self.score = dataset.scorer()  # a user's function sees the query's columns, as TRL passes them

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
                r = rows[i]
                columns = {"prompts": self.prompts[r], "id": self.ids[r], "task": self.tasks[r]}
                columns["difficulty"] = int(self.levels.iat[r])
                rewards = np.array([self.score(s.text, self.answers[r], **columns) for s in out.samples], dtype=float)
                groups[i] = Group(
                    query=rows[i],
                    prompt_ids=list(out.prompt_ids),
                    completions=[list(s.token_ids) for s in out.samples],
                    rewards=rewards,
                )
        return groups  # type: ignore[return-value]  # every slot is filled: each row has a size


# what the store keeps of a step's groups ---------------------------------------------------------------
def group_record(
    *, query: int, rewards, lengths, phase: int | None, trained: bool, dropped: bool = False, texts=None
) -> dict:
    """One group as the store keeps it (sgpo.store.Store.log_step): its dataset row, rewards, completion lengths
    in tokens, successes, whether it was informative (two different rewards), trained, or dropped after
    generation (DAPO), and its completion texts when kept (None otherwise)."""
    rewards = np.asarray(rewards, dtype=float)
    return {
        "query": int(query),
        "phase": None if phase is None else int(phase),
        "rewards": rewards.tolist(),
        "successes": int(np.sum(rewards > SUCCESS)),
        "informative": bool(np.ptp(rewards) > 0) if rewards.size else False,
        "trained": bool(trained),
        "dropped": bool(dropped),
        "lengths": [int(n) for n in lengths],
        "completions": None if texts is None else [str(t) for t in texts],
    }


def kept_slots(groups: int, keep: int, *, seed: int, step: int) -> set[int]:
    """The `keep` groups of a step (out of `groups`, by generation order) whose completion texts are stored:
    a seeded choice, so a step replayed after a resume keeps the same ones."""
    if keep <= 0 or groups <= 0:
        return set()
    rng = np.random.default_rng([seed, KEEP_SEED, step])
    return set(rng.choice(groups, size=min(keep, groups), replace=False).tolist())


def query_record(frame, row: int) -> dict:
    """A query as the run's store keeps it once: dataset row, id, task, difficulty (None where the dataset has
    none) and prompt."""
    r = frame.iloc[int(row)]
    difficulty = r.get("difficulty")
    return {
        "query": int(row),
        "query_id": str(r["id"]) if "id" in r else str(row),
        "task": None if r.get("task") is None else str(r.get("task")),
        "difficulty": None if difficulty is None or difficulty != difficulty else int(difficulty),
        "prompt": str(r["prompt"]),
    }


def step_groups(records: list[dict], queries: list[dict]) -> dict:
    """What a step's data carries under ROLLOUTS_KEY: its groups and the queries they came from; the recorder
    writes both in the step's own transaction (sgpo/train/recorder.py)."""
    return {"groups": records, "queries": queries}


def native_groups(batch, *, step: int, seed: int, keep: int, skip_zero_advantage: bool, frame, decode) -> dict:
    """Our engine's step (a sgpo.train.batches.Batch): every generated group, trained (skipped when it had no
    advantage and the engine leaves such groups out) or dropped (DAPO), the texts of `keep` of them (decoded
    from the token ids with `decode`), and the queries they came from."""
    generated = batch.generated
    texts = kept_slots(len(generated), keep, seed=seed, step=step)
    records = []
    for slot, g in enumerate(generated):
        dropped = slot >= len(batch.groups)
        records.append(
            group_record(
                query=g.query,
                rewards=g.rewards,
                lengths=[len(c) for c in g.completions],
                phase=batch.phase,
                trained=not dropped and (g.informative or not skip_zero_advantage),
                dropped=dropped,
                texts=[decode(c) for c in g.completions] if slot in texts else None,
            )
        )
    rows = sorted({g.query for g in generated})
    return step_groups(records, [query_record(frame, r) for r in rows])
