"""Reward functions with TRL's signature: f(completions, answer, **columns) -> list[float].

They can be handed to TRL's GRPOTrainer unchanged; `SCORERS` holds the per-sample form
`(completion, answer) -> float` that the profiler and the trainer call. Every call returns: the math
rule reads the final answer with string work (sgpo.tasks.answers), compares plain numbers exactly
in-process, and sends anything else to math-verify behind a hard time limit (sgpo.tasks.verify).
Model output is never evaluated as code. The rule is documented in docs/REWARDS.md.
"""

from __future__ import annotations

import re

from sgpo.tasks import verify
from sgpo.tasks.answers import as_number, clean_answer, final_answer, normalise


def exact_match(completion: str, answer: str) -> float:
    """1.0 when the completion, stripped of surrounding whitespace, equals the answer."""
    return 1.0 if completion.strip() == str(answer).strip() else 0.0


def exact_match_reward(completions: list, answer: list, **columns) -> list[float]:
    return [exact_match(_text(c), a) for c, a in zip(completions, answer)]


def _text(completion) -> str:
    # TRL passes plain strings for plain-text prompts and lists of messages for conversational ones.
    if isinstance(completion, list):
        return completion[-1]["content"] if completion else ""
    return completion


def math_match(completion: str, answer: str) -> float:
    """1.0 when the completion's final answer equals the gold one, as a number or as math.

    A gold without digits or LaTeX ("Paris") is compared as text. Returns within about
    verify.TIME_LIMIT_S even on `\\boxed{10^{10^{10}}}`; a timeout scores 0 (see reward_stats())."""
    gold = clean_answer(str(answer)) or ""
    if not re.search(r"[\d\\]", gold):
        return _word_match(completion, gold)
    pred = final_answer(completion)
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


def _word_match(completion: str, gold: str) -> float:
    pred = final_answer(completion, words=True) or ""
    return float(bool(gold) and gold.casefold() in (pred.casefold(), normalise(completion or "").casefold()))


def math_reward(completions: list, answer: list, **columns) -> list[float]:
    return [math_match(_text(c), a) for c, a in zip(completions, answer)]


def reward_stats() -> dict[str, int]:
    """Math checks since start-up: timeouts and crashes (scored 0), too_large (refused, scored 0), worker calls."""
    return verify.stats()


REWARDS = {"exact": exact_match_reward, "math": math_reward}
SCORERS = {"exact": exact_match, "math": math_match}


def reward_function(kind: str):
    """The TRL-style reward function for a dataset's reward kind."""
    return REWARDS[kind]
