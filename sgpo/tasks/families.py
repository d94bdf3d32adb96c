"""The built-in task families: short character-level problems with one exact answer each.

Every family draws an instance for an explicit difficulty level and knows its answer, so rewards
are exact string matches. The formats follow what made a tiny model show a graded spread of
difficulty (measured when the starter was built): addition writes its sum least-significant digit first, which a
left-to-right model can compute carry by carry.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    levels: tuple[int, ...]  # difficulty levels, easiest first
    level_meaning: str
    make: Callable[[random.Random, int], tuple[str, str]]  # (rng, level) -> (prompt, answer)


def _addition(rng: random.Random, digits: int) -> tuple[str, str]:
    lo, hi = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1
    a, b = rng.randint(lo, hi), rng.randint(lo, hi)
    return f"{a}+{b}=", str(a + b)[::-1]


def _reversal(rng: random.Random, length: int) -> tuple[str, str]:
    s = "".join(rng.choice(string.ascii_lowercase) for _ in range(length))
    return f"r {s}=", s[::-1]


def _counting(rng: random.Random, length: int) -> tuple[str, str]:
    letters = "abcdef"
    s = "".join(rng.choice(letters) for _ in range(length))
    target = rng.choice(letters)
    return f"c {target} {s}=", str(s.count(target))


def _sorting(rng: random.Random, length: int) -> tuple[str, str]:
    s = "".join(rng.choice(string.digits) for _ in range(length))
    return f"s {s}=", "".join(sorted(s))


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family(
            "add",
            "addition, sum written least-significant digit first: 4821+3907= -> 8278",
            tuple(range(1, 8)),
            "digits per operand",
            _addition,
        ),
        Family("rev", "string reversal: r abc= -> cba", tuple(range(3, 17)), "string length", _reversal),
        Family("count", "count a letter: c b abfcbbd= -> 3", tuple(range(4, 21)), "string length", _counting),
        Family("sort", "sort digits: s 31415= -> 11345", tuple(range(3, 13)), "number of digits", _sorting),
    ]
}


def sample(family: str, rng: random.Random) -> tuple[str, str, int]:
    """One instance of `family` at a uniformly drawn level: (prompt, answer, level)."""
    fam = FAMILIES[family]
    level = rng.choice(fam.levels)
    prompt, answer = fam.make(rng, level)
    return prompt, answer, level
