"""Rewards: three named rules and a user's own function, each resolved into one `Reward`.

    reward = resolve_reward("math")       # exact | math | math-lenient | MODULE:FUNCTION | path/to/file.py:FUNCTION
    reward.score("The answer is 18.", "18")                 # 1.0: one completion (the profiler, our trainer)
    reward.trl(["#### 18", "17 apples"], answer=["18", "18"])   # [1.0, 0.0]: TRL's signature, for GRPOTrainer
    pick_reward(frame["answer"], frame["task"])             # Pick("math", "98% of the answers are numbers ...")

    exact         the completion, stripped of surrounding whitespace, equals the answer
    math          strict: the final answer after a marker (`#### X`, `\\boxed{X}`, "the answer is X"), or the
                  whole completion when it is one answer ("18", "$18."), equals the gold as a number or as
                  math; the last number of prose ("2odnoci" for 2) counts for nothing
    math-lenient  as math, but without a marker the last number in the text is the answer

A user's function has TRL's reward signature f(completions, answer, **columns) -> list[float]; it is
imported and probed once (sgpo/tasks/reward_import.py), and both forms of its Reward call it, so the
profiler, our trainer, TRL and verl (sgpo/tasks/verl_reward.py) score alike. `SCORERS[name]` and
`REWARDS[name]` are the two forms by name. The math rules read the final answer with string work
(sgpo.tasks.answers), compare plain numbers exactly in-process, and send anything else to math-verify
behind a hard time limit (sgpo.tasks.verify); model output is never evaluated as code. docs/REWARDS.md
states the rules and how the automatic pick works.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd

from sgpo.errors import RewardError
from sgpo.tasks import reward_import, verify
from sgpo.tasks.answers import as_number, clean_answer, final_answer, normalise
from sgpo.tasks.families import FAMILIES

OPTION = reward_import.OPTION
MATH_SHARE = 0.9  # the automatic pick takes math when more of the answers than this are numbers or LaTeX
LEADING_ZERO_SHARE = 0.01  # ... and exact when at least this share are digit strings like "01346"
PICK_SAMPLE = 1000  # answers the pick looks at (the first ones)


# the rules, one completion at a time ------------------------------------------------------------------
def exact_match(completion: str, answer: str, **columns) -> float:
    """1.0 when the completion, stripped of surrounding whitespace, equals the answer."""
    return 1.0 if completion.strip() == str(answer).strip() else 0.0


def math_match(completion: str, answer: str, **columns) -> float:
    """The lenient math rule (`math-lenient`): 1.0 when the completion's final answer equals the gold
    one, as a number or as math; without a marker the last number in the text is the answer.

    A gold without digits or LaTeX ("Paris") is compared as text. Returns within about
    verify.TIME_LIMIT_S even on `\\boxed{10^{10^{10}}}`; a timeout scores 0 (see reward_stats())."""
    return _math(completion, answer, strict=False)


def math_strict_match(completion: str, answer: str, **columns) -> float:
    """The strict math rule (`math`): as math_match, but a completion without a marker must be one answer
    and nothing else ("18", "$18."); prose whose last number happens to be the gold scores 0."""
    return _math(completion, answer, strict=True)


def _math(completion: str, answer: str, *, strict: bool) -> float:
    gold = clean_answer(str(answer)) or ""
    if not re.search(r"[\d\\]", gold):
        return _word_match(completion, gold, strict)
    pred = final_answer(completion, strict=strict)
    if pred is None:
        return 0.0
    gold_number, pred_number = as_number(gold), as_number(pred)
    if gold_number is not None and pred_number is not None:
        return float(gold_number == pred_number)
    if pred == gold:
        return 1.0
    if gold_number is not None and not re.search(r"\d", pred):  # a number against words: math-verify agrees
        return 0.0
    score = verify.verify(gold, pred)
    return score if score is not None else float(pred.casefold() == gold.casefold())


def _word_match(completion: str, gold: str, strict: bool) -> float:
    pred = final_answer(completion, words=True, strict=strict) or ""
    return float(bool(gold) and gold.casefold() in (pred.casefold(), normalise(completion or "").casefold()))


# the same rules in TRL's form ------------------------------------------------------------------------
def _text(completion) -> str:
    # TRL passes plain strings for plain-text prompts and lists of messages for conversational ones.
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return completion


def exact_match_reward(completions: list, answer: list, **columns) -> list[float]:
    return [exact_match(_text(c), a) for c, a in zip(completions, answer)]


def math_reward(completions: list, answer: list, **columns) -> list[float]:
    """math_match (the lenient rule) in TRL's form."""
    return [math_match(_text(c), a) for c, a in zip(completions, answer)]


def math_strict_reward(completions: list, answer: list, **columns) -> list[float]:
    """math_strict_match (the `math` rule) in TRL's form."""
    return [math_strict_match(_text(c), a) for c, a in zip(completions, answer)]


def reward_stats() -> dict[str, int]:
    """Math checks since start-up: timeouts and crashes (scored 0), too_large (refused, scored 0), worker calls."""
    return verify.stats()


# one resolved reward -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reward:
    """A reward in the two forms its callers need, made from one function.

    score(completion, answer, **columns) -> float: one completion; columns are that query's own values
    under TRL's names (`prompts`, `id`, `task`, `difficulty`), used only by a user's function.
    trl(completions, answer, **columns) -> list[float]: TRL's reward signature, handed to GRPOTrainer."""

    name: str  # exact | math | math-lenient, or MODULE:FUNCTION (a file named by its absolute path)
    score: Callable[..., float]
    trl: Callable[..., list[float]]
    description: str


RULES: dict[str, Reward] = {
    r.name: r
    for r in (
        Reward("exact", exact_match, exact_match_reward, "the completion, stripped, equals the answer"),
        Reward(
            "math",
            math_strict_match,
            math_strict_reward,
            "strict math: the answer after ####, \\boxed or 'the answer is' (or a completion that is only "
            "the answer) equals the gold as a number or as math",
        ),
        Reward(
            "math-lenient",
            math_match,
            math_reward,
            "lenient math: as math, but without a marker the last number in the text is the answer",
        ),
    )
}
NAMES = tuple(RULES)


def resolve_reward(name: str, *, probe: dict[str, list] | None = None, option: str = OPTION) -> Reward:
    """The Reward called `name`: a named rule, or a user's MODULE:FUNCTION imported once and, given a
    `probe` (keyword lists as TRL passes them, `completions` among them), called on it and checked.
    RewardError naming `option` for an unknown name or a function that fails its checks."""
    name = str(name or "").strip()
    if name in RULES:
        return RULES[name]
    if ":" not in name:
        raise RewardError(
            f"{option} {name!r}: choose {', '.join(NAMES)}, or MODULE:FUNCTION for your own function with "
            f"TRL's reward signature {reward_import.SIGNATURE}"
        )
    reward = _custom(name, option)
    if probe is not None:
        reward_import.probe(reward.trl, reward.name, probe, option)
    return reward


@functools.lru_cache(maxsize=64)
def _custom(name: str, option: str) -> Reward:
    fn, canonical = reward_import.load_function(name, option)

    @functools.wraps(fn)  # TRL logs a reward under its function's __name__
    def trl(completions, answer=None, **columns) -> list[float]:
        try:
            values = fn(completions=completions, answer=answer, **columns)
        except Exception as exc:
            raise RewardError(
                f"{option} {canonical} raised {reward_import.said(exc)} on {len(completions)} completions"
            ) from exc
        return reward_import.floats(values, len(completions), canonical, option)

    def score(completion, answer, **columns) -> float:
        return trl([completion], answer=[answer], **{k: [v] for k, v in columns.items()})[0]

    return Reward(canonical, score, trl, f"your function {canonical}, TRL's reward signature")


class _ByName(Mapping):
    """name -> one form of resolve_reward(name): the named rules, and MODULE:FUNCTION when asked for."""

    def __init__(self, form: str):
        self.form = form

    def __getitem__(self, name: str) -> Callable:
        return getattr(resolve_reward(name), self.form)

    def __iter__(self):
        return iter(RULES)

    def __len__(self) -> int:
        return len(RULES)

    def __contains__(self, name) -> bool:
        return name in RULES


SCORERS: Mapping[str, Callable[..., float]] = _ByName("score")
REWARDS: Mapping[str, Callable[..., list[float]]] = _ByName("trl")


def reward_function(kind: str):
    """The TRL-style reward function for a dataset's reward name."""
    return resolve_reward(kind).trl


# the automatic pick ------------------------------------------------------------------------------------
class Pick(NamedTuple):
    name: str  # the reward picked
    reason: str  # why, in words: shown beside the name, with how to override it


_MATHY = r"-?[\d,]*\.?\d+|.*\\(frac|boxed|sqrt).*|\$.*\$"


def pick_reward(answers: pd.Series, tasks: pd.Series | None = None, *, gsm8k: bool = False) -> Pick:
    """The reward a dataset gets when none is named, and why. In order: GSM8K's `####` mark -> math; the
    built-in task families -> exact; digit strings with a leading zero ("01346", a sorted string, a code)
    in at least LEADING_ZERO_SHARE of the answers -> exact, since math would read "1,346" as equal; over
    MATH_SHARE of the answers numbers or LaTeX -> math; else exact. Looks at the first PICK_SAMPLE answers."""
    if gsm8k:
        return Pick("math", "the answers carry GSM8K's '####' mark")
    if tasks is not None and len(tasks) and set(tasks.unique()) <= set(FAMILIES):
        return Pick("exact", f"the tasks are sgpo's built-in families ({', '.join(sorted(set(tasks.unique())))})")
    sample = answers.head(PICK_SAMPLE).astype(str).str.strip()
    if sample.empty:
        return Pick("exact", "there are no answers to look at")
    padded = sample[sample.str.fullmatch(r"0\d+")]
    if len(padded) and len(padded) >= LEADING_ZERO_SHARE * len(sample):
        example = padded.iloc[0]
        return Pick(
            "exact",
            f"{len(padded):,} of {len(sample):,} answers are digit strings with a leading zero (e.g. {example!r}): "
            f"they are compared as written, since math would count {int(example):,} as {example!r}",
        )
    share = float(sample.str.fullmatch(_MATHY).mean())
    if share > MATH_SHARE:
        return Pick("math", f"{share:.0%} of the answers are numbers or LaTeX")
    return Pick("exact", f"{share:.0%} of the answers are numbers or LaTeX (math is picked above {MATH_SHARE:.0%})")
