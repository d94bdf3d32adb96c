"""Reward functions with TRL's signature: f(completions, answer, **columns) -> list[float].

They can be handed to TRL's GRPOTrainer unchanged. Extraction is string and regex work only: model
output is never evaluated as code (math-verify parses it symbolically, without eval).
"""

from __future__ import annotations


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
    """1.0 when math-verify finds the completion's final answer equal to the gold one.

    The gold is parsed as a number or LaTeX; the completion's last number or boxed expression is
    compared symbolically. Timeouts are off: they rely on signals, which fail outside the main thread
    (Streamlit, worker threads)."""
    from math_verify import parse, verify

    gold = parse(str(answer).replace(",", ""), parsing_timeout=None)
    if not gold:  # the gold is not math: fall back to the exact rule rather than reward nothing
        return exact_match(completion, answer)
    pred = parse(completion.replace(",", ""), parsing_timeout=None)
    return 1.0 if pred and verify(gold, pred, timeout_seconds=None) else 0.0


def math_reward(completions: list, answer: list, **columns) -> list[float]:
    return [math_match(_text(c), a) for c, a in zip(completions, answer)]


REWARDS = {"exact": exact_match_reward, "math": math_reward}
SCORERS = {"exact": exact_match, "math": math_match}


def reward_function(kind: str):
    """The TRL-style reward function for a dataset's reward kind."""
    return REWARDS[kind]
