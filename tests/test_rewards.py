import json
import logging
import threading

import pandas as pd
import pytest

from sgpo.data import load_dataset
from sgpo.errors import RewardError, SgpoError
from sgpo.tasks import verify
from sgpo.tasks.answers import as_number, final_answer
from sgpo.tasks.rewards import (
    REWARDS,
    SCORERS,
    exact_match_reward,
    math_match,
    math_reward,
    pick_reward,
    resolve_reward,
    reward_function,
    reward_stats,
)
from tests.conftest import require_gsm8k

ECHO = (
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck "
    "egg. How much in dollars does she make every day at the farmers' market?"
)
FEW_SHOT = "Question: Tom has 8 boxes of 9 pens. How many pens?\nAnswer: 8 * 9 = 72\n#### 72\n\nQuestion: " + ECHO

# (completion, gold answer, expected score), by theme. The rule is in docs/REWARDS.md.
CASES = {
    "money": [
        ("\\$18", "18", 1),
        ("She makes \\$18 every day.", "18", 1),
        ("The answer is $18.", "18", 1),
        ("The answer is $18.00.", "18", 1),
        ("#### $1,000", "1000", 1),
        ("She makes 9 * 2 = 18 dollars a day.", "18", 1),
        ("\\boxed{\\$18}", "18", 1),
        ("\\boxed{18 \\text{ dollars}}", "18", 1),
        ("It costs $5 per hour, so she earns $40.", "40", 1),
        ("The answer is €12.50.", "12.5", 1),
        ("The answer is \\$17.", "18", 0),
    ],
    "fractions": [
        ("\\boxed{\\frac{1}{2}}", "0.5", 1),
        ("The answer is 3/4.", "3/4", 1),
        ("The answer is 3/4.", "0.75", 1),
        ("\\boxed{\\dfrac{3}{4}}", "\\frac{3}{4}", 1),
        ("The answer is 0.75", "\\frac{3}{4}", 1),
        ("\\boxed{\\frac{6}{8}}", "3/4", 1),
        ("\\boxed{-\\frac{1}{2}}", "-0.5", 1),
        ("The answer is 1/3.", "0.33", 0),
        ("The answer is 18.0", "18", 1),
    ],
    "latex": [
        ("The final answer is $\\boxed{18}$. I hope it is correct.", "18", 1),
        ("\\[\\boxed{2^{10}}\\]", "1024", 1),
        ("\\boxed{\\sqrt{324}}", "18", 1),
        ("\\boxed{\\pi/2}", "\\frac{\\pi}{2}", 1),
        ("\\boxed{\\frac{\\pi}{3}}", "\\frac{\\pi}{2}", 0),
        ("so $x = \\frac{3}{4}$", "0.75", 1),
        ("\\boxed{1{,}000}", "1000", 1),
        ("\\boxed{90^\\circ}", "90", 1),
        ("\\boxed{25\\%}", "25", 1),
        ("\\boxed{x+1}", "1+x", 1),
        ("\\fbox{7}", "7", 1),
    ],
    "negatives": [
        ("The answer is -5.", "-5", 1),
        ("The answer is −5.", "-5", 1),
        ("\\boxed{-5}", "-5", 1),
        ("The answer is 5.", "-5", 0),
        ("10 - 15 = -5", "-5", 1),
        ("#### -10", "-10", 1),
        ("It drops 3 - 8 = -5 degrees.", "-5", 1),
    ],
    "corrections": [
        ("The answer is 42. Wait, actually 43.", "43", 1),
        ("The answer is 42. Wait, actually 43.", "42", 0),
        ("The answer is 42, actually 43.", "43", 1),
        ("The answer is 42. Oops, I made a mistake. It is 6 * 7 + 1 = 43.", "43", 1),
        ("The answer is 42. Sorry, I meant 44.", "44", 1),
        ("The answer is 42. No wait, the answer is 43.", "43", 1),
        ("The answer is 42. Wait, let me double-check: 6 * 7 = 42.", "42", 1),
        ("The answer is 42. Wait, is it 6 * 7? Yes.", "42", 1),
        ("42. Actually 43.", "43", 1),
    ],
    "checks after the answer": [
        ("The answer is 42. Check: 42 * 2 = 84.", "42", 1),
        ("The answer is 42. Check: 42 * 2 = 84.", "84", 0),
        ("\\boxed{42}\nVerification: 6 * 7 = 42, and 84 / 2 = 42. Also 100 - 58 = 42.", "42", 1),
        ("#### 18\nCheck: 9 * 2 = 18, 18 + 2 = 20.", "18", 1),
        ("The answer is 7.\n\nTo verify: 3 + 4 = 7, and 7 * 2 = 14.", "7", 1),
    ],
    "scientific notation": [
        ("1e3", "1000", 1),
        ("The answer is 1e3.", "1000", 1),
        ("The answer is 1e3.", "100", 0),
        ("\\boxed{1.5 \\times 10^{3}}", "1500", 1),
        ("The answer is 1.5 × 10^3.", "1500", 1),
        ("The distance is 2.5E2 meters.", "250", 1),
        ("The answer is 3e-2.", "0.03", 1),
    ],
    "huge powers": [
        ("9^9^9", "1", 0),
        ("\\boxed{10^{10^{10}}}", "1", 0),
        ("\\boxed{(10^{10})!}", "1", 0),
        ("The answer is 9**9**9.", "1", 0),
        ("\\boxed{2^{100000}}", "2", 0),
        ("\\boxed{9^{99}^{99}}", "1", 0),
        ("\\boxed{10^{10^{10}}}", "10^{10^{10}}", 1),  # the same text: equal without evaluating anything
    ],
    "empty and garbage": [
        ("", "18", 0),
        ("   \n ", "18", 0),
        ("asdf qwer", "18", 0),
        ("The answer is", "18", 0),
        ("\\boxed{", "18", 0),
        ("}}}{{{$$$\\\\", "18", 0),
        ("#### ", "18", 0),
        ("The answer is eighteen.", "18", 0),
        ("1" * 5000, "1", 0),
    ],
    "prompt echoes": [
        (ECHO, "18", 0),
        (ECHO + "\nAnswer: 18", "18", 1),
        ("Question: What is 6 times 7?\nAnswer: 42", "42", 1),
        ("Question: What is 6 times 7?\nAnswer:", "42", 0),
        (FEW_SHOT + "\nShe makes 9 * 2 = 18 dollars.\n#### 18", "18", 1),
        (FEW_SHOT + "\nShe makes 9 * 2 = 18 dollars.", "18", 0),  # the echoed marker wins over a bare number
    ],
    "markers": [
        ("Amy answered 5 questions correctly, 3 points each.\n#### 15", "15", 1),
        ("Express the answer as a percentage: 32 / 96 * 100% = 33.333...%, rounded down 33%\n#### 33", "33", 1),
        ("The answer is 12. Then the final answer is 15.", "15", 1),
        ("Answer: Janet sells 16 - 3 - 4 = 9 eggs. She makes 9 * 2 = 18 dollars.", "18", 1),
        ("#### Step 1: add\n3 + 4 = 7\n#### Step 2: double\nSo 7 * 2 = 14.", "14", 1),
        ("**Answer:** 42", "42", 1),
        ("The answer is not obvious. 6 * 7 = 42", "42", 1),
    ],
    "thousands separators": [
        ("The answer is 1,234,567.", "1234567", 1),
        ("The answer is 1,000.", "1000", 1),
        ("\\boxed{1\\,000}", "1000", 1),
        ("The numbers are 1,2,3 so the sum is 6", "6", 1),
        ("The answer is 1,000.", "100", 0),
    ],
    "word answers": [
        ("The answer is Paris.", "Paris", 1),
        ("\\boxed{\\text{Paris}}", "Paris", 1),
        ("Paris", "Paris", 1),
        ("The answer is London.", "Paris", 0),
    ],
}
TABLE = [pytest.param(c, g, e, id=f"{theme}-{i}") for theme, rows in CASES.items() for i, (c, g, e) in enumerate(rows)]


def test_the_table_covers_every_theme_with_at_least_60_cases():
    assert len(TABLE) >= 60 and all(len(rows) >= 4 for rows in CASES.values())


@pytest.mark.timeout(60)  # a hang guard: the scorer must return on every row
@pytest.mark.parametrize("completion, gold, expected", TABLE)
def test_math_reward_scores_the_table(completion, gold, expected):
    assert math_match(completion, gold) == float(expected)


def test_exact_match_reward_keeps_trl_signature():
    assert exact_match_reward(["cba", " cba\n", "abc"], answer=["cba"] * 3, task=["rev"] * 3) == [1.0, 1.0, 0.0]
    conversational = [[{"role": "assistant", "content": "42"}]]
    assert exact_match_reward(conversational, answer=["42"]) == [1.0]
    assert math_reward([[{"role": "assistant", "content": "#### 42"}]], answer=["42"]) == [1.0]


def test_every_gsm8k_reference_solution_scores_one_in_process():
    rows = [json.loads(line) for line in require_gsm8k().open(encoding="utf-8")]
    golds = load_dataset(str(require_gsm8k())).frame["answer"].tolist()  # the text after ####, no commas
    before = reward_stats()["worker_calls"]
    scores = math_reward([r["answer"] for r in rows], answer=golds)
    assert len(scores) == 1319 and [i for i, s in enumerate(scores) if s != 1.0] == []
    assert reward_stats()["worker_calls"] == before  # all on the numeric fast path, no math-verify


def test_gsm8k_gold_answers_verify_against_themselves_and_perturbations_fail():
    golds = load_dataset(str(require_gsm8k())).frame["answer"].tolist()
    assert math_reward(golds, answer=golds) == [1.0] * len(golds)
    failures = []
    for gold in golds:
        value = int(gold)
        for wrong in (str(value + 1), str(-value) if value else "-1", gold + "7"):
            if math_match(f"The answer is {wrong}.", gold) != 0.0:
                failures.append((gold, wrong))
    assert failures == []


def test_extraction_reads_the_marker_and_normalises_numbers():
    assert final_answer("The answer is \\$1,000. Check: 2 * 500 = 1000.") == "1000"
    assert final_answer("no number here") is None
    assert as_number("1e3") == 1000 and as_number("\\frac{3}{4}") == as_number("0.75") == as_number("3/4")
    assert as_number("1e99999") is None and as_number("2^{10}") is None  # left to math-verify, behind the limit


@pytest.mark.timeout(60)
def test_huge_powers_are_refused_before_they_reach_sympy():
    before = reward_stats()
    for completion in ("9^9^9", "\\boxed{10^{10^{10}}}", "\\boxed{(10^{10})!}"):
        assert SCORERS["math"](completion, "1") == 0.0
    after = reward_stats()
    assert after["too_large"] - before["too_large"] == 3 and after["worker_calls"] == before["worker_calls"]


@pytest.mark.timeout(60)
def test_time_limit_holds_in_a_thread_and_the_checker_recovers(monkeypatch, caplog):
    monkeypatch.setattr(verify, "TIME_LIMIT_S", 1.0)
    monkeypatch.setattr(verify, "too_large", lambda answer: False)  # what the guard would miss
    before = reward_stats()["timeouts"]
    scores = []
    batch = ["\\boxed{2^{10}}", "\\boxed{10^{10^{10}}}", "\\boxed{\\sqrt{1024^2}}", "#### 1024"]
    worker = threading.Thread(target=lambda: scores.extend(math_reward(batch, answer=["1024"] * 4)))
    with caplog.at_level(logging.WARNING, logger="sgpo.rewards"):
        worker.start()
        worker.join()
    assert scores == [1.0, 0.0, 1.0, 1.0]  # every item scored; the one that overran scores 0
    assert reward_stats()["timeouts"] == before + 1
    assert "took over 1 s" in caplog.text and "10^{10^{10}}" in caplog.text


@pytest.mark.timeout(60)
def test_a_checker_that_cannot_start_or_dies_is_reported_not_waited_for(monkeypatch, tmp_path):
    monkeypatch.setattr(verify, "_worker", None)
    broken = tmp_path / "broken.py"
    broken.write_text("import sys; sys.exit(3)\n")
    monkeypatch.setattr(verify, "WORKER", broken)
    with pytest.raises(SgpoError, match="did not start.*math-verify is installed"):
        math_match("\\boxed{\\sqrt{4}}", "2")
    dying = tmp_path / "dying.py"
    dying.write_text("print('ready', flush=True)\nimport sys; sys.stdin.readline()\n")
    monkeypatch.setattr(verify, "WORKER", dying)
    before = reward_stats()["crashes"]
    assert math_match("\\boxed{\\sqrt{4}}", "2") == 0.0
    assert reward_stats()["crashes"] == before + 1


def test_model_output_is_never_evaluated_as_code(tmp_path):
    canary = tmp_path / "canary"
    payload = f"__import__('pathlib').Path('{canary}').write_text('x')"
    for completion in (payload, f"\\boxed{{{payload}}}", f"The answer is {payload}"):
        math_match(completion, "1")
        math_match(completion, "\\frac{1}{2}")
    exact_match_reward([payload], answer=["1"])
    assert not canary.exists()


# the named rules, the automatic pick -------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion, gold, strict, lenient",
    [
        ("2odnoci", "2", 0.0, 1.0),  # the starter's lucky GSM8K "answer": the last number of noise
        ("She makes 18 dollars every day.", "18", 0.0, 1.0),
        ("#### 18", "18", 1.0, 1.0),
        ("The answer is 18. Check: 9 * 2 = 18.", "18", 1.0, 1.0),
        ("18", "18", 1.0, 1.0),
        ("$18.", "18", 1.0, 1.0),
        ("\\boxed{\\frac{6}{8}}", "3/4", 1.0, 1.0),
        ("Paris", "Paris", 1.0, 1.0),
    ],
)
def test_math_is_strict_and_math_lenient_reads_the_last_number(completion, gold, strict, lenient):
    assert resolve_reward("math").score(completion, gold) == strict == SCORERS["math"](completion, gold)
    assert resolve_reward("math-lenient").score(completion, gold) == lenient == math_match(completion, gold)


def test_each_named_reward_gives_the_same_scores_in_both_forms():
    completions, golds = ["#### 3", "3 apples", " 3\n", "4"], ["3"] * 4
    for name in ("exact", "math", "math-lenient"):
        reward = resolve_reward(name)
        assert reward.trl(completions, answer=golds, task=["t"] * 4) == [
            reward.score(c, g) for c, g in zip(completions, golds)
        ]
        assert REWARDS[name] is reward.trl and reward_function(name) is reward.trl


def test_an_unknown_reward_name_is_one_line_naming_the_option_and_the_choices():
    with pytest.raises(RewardError, match=r"^--reward 'fuzzy': choose exact, math, math-lenient, or MODULE:FUNCTION"):
        resolve_reward("fuzzy")
    with pytest.raises(RewardError, match="--reward"):
        SCORERS["fuzzy"]


def frame_of(answers, tasks=None):
    return pd.DataFrame({"answer": answers, "task": tasks or ["default"] * len(answers)})


def test_digit_strings_with_leading_zeros_are_not_picked_as_math():
    f = frame_of(["01346", "11345", "0789", "2235"])
    pick = pick_reward(f["answer"], f["task"])
    assert pick.name == "exact" and "leading zero" in pick.reason and "'01346'" in pick.reason


def test_the_built_in_families_are_compared_as_written_whatever_their_answers_look_like():
    f = frame_of(["11345", "2235", "3"], ["sort", "sort", "count"])
    assert pick_reward(f["answer"], f["task"]).name == "exact"


@pytest.mark.parametrize(
    "answers, expected",
    [(["18", "-3", "2.5", "\\frac{1}{2}"], "math"), (["Paris", "cba", "18"], "exact"), (["1,000", "7"], "math")],
)
def test_the_pick_says_which_reward_and_why(answers, expected):
    pick = pick_reward(frame_of(answers)["answer"])
    assert pick.name == expected and "of the answers are numbers or LaTeX" in pick.reason


def test_a_sorting_file_loads_with_exact_so_a_formatted_number_does_not_pass(tmp_path):
    path = tmp_path / "sort.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"s {a[::-1]}=", "answer": a}) + "\n" for a in ["01346", "2235"]))
    ds = load_dataset(str(path))
    assert ds.reward == "exact" and "leading zero" in ds.reward_reason and "--reward overrides" in ds.reward_reason
    assert ds.scorer()("1,346", "01346") == 0.0 and ds.scorer()("01346", "01346") == 1.0
    named = load_dataset(str(path), reward="math")
    assert named.reward == "math" and named.reward_reason.startswith("named with --reward")
    assert named.scorer()("1,346", "01346") == 1.0


def test_gsm8k_is_picked_as_strict_math_with_its_reason():
    ds = load_dataset(str(require_gsm8k()))
    assert ds.reward == "math" and "'####'" in ds.reward_reason


def test_a_reward_other_than_the_picked_one_makes_another_dataset_hash(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n" for i in range(5)))
    picked, same, other = (load_dataset(str(path), reward=r) for r in (None, "math", "math-lenient"))
    assert picked.reward == same.reward == "math" and picked.hash == same.hash
    assert other.hash != picked.hash  # a profile under one reward is never reused for another
