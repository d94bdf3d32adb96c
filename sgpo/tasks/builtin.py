"""The built-in dataset: a seeded, disjoint train / eval split over all task families.

The files are package data (sgpo/tasks/data/*.jsonl), shipped so nobody has to run the generator:
`sgpo tasks build` writes a fresh copy to ./tasks (or --out DIR), and `python -m sgpo.tasks.builtin`
rewrites the shipped files in a source checkout. Names usable as `builtin:NAME`: `train`, `eval`, and
one per family and split, e.g. `rev-train`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from sgpo.tasks.families import FAMILIES, sample

DATA_DIR = Path(__file__).resolve().parent / "data"
SPLITS = {"train": 1000, "eval": 200}  # queries per family
SEED = 20261124


def builtin_names() -> list[str]:
    names = list(SPLITS)
    names += [f"{fam}-{split}" for fam in FAMILIES for split in SPLITS]
    return names


def builtin_file(name: str) -> tuple[Path, str | None]:
    """(file, family filter or None) for a builtin name; KeyError if unknown."""
    if name in SPLITS:
        return DATA_DIR / f"{name}.jsonl", None
    family, _, split = name.rpartition("-")
    if family in FAMILIES and split in SPLITS:
        return DATA_DIR / f"{split}.jsonl", family
    raise KeyError(name)


def generate_splits(seed: int = SEED) -> dict[str, list[dict]]:
    """Every split, disjoint by prompt; each family contributes SPLITS[split] queries."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for split in ("eval", "train"):  # eval first so short levels are not used up by train
        for family in FAMILIES:
            n, tries = 0, 0
            while n < SPLITS[split]:
                tries += 1
                if tries > 200 * SPLITS[split]:
                    raise RuntimeError(f"could not draw enough distinct {family} queries")
                prompt, answer, level = sample(family, rng)
                if prompt in seen:
                    continue
                seen.add(prompt)
                out[split].append(
                    {
                        "id": f"{family}-{split}-{n:05d}",
                        "prompt": prompt,
                        "answer": answer,
                        "task": family,
                        "difficulty": level,
                    }
                )
                n += 1
    return out


def write_splits(directory: Path, seed: int = SEED) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in generate_splits(seed).items():
        path = directory / f"{split}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        tmp.replace(path)
        paths[split] = path
    return paths


if __name__ == "__main__":
    for split, path in write_splits(DATA_DIR).items():
        print(split, path)
