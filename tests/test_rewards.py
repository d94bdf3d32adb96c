import pytest

from sgpo.data import load_dataset
from sgpo.tasks.rewards import exact_match_reward, math_match, math_reward
from tests.conftest import require_gsm8k


def test_exact_match_reward_keeps_trl_signature():
    assert exact_match_reward(["cba", " cba\n", "abc"], answer=["cba"] * 3, task=["rev"] * 3) == [1.0, 1.0, 0.0]
    conversational = [[{"role": "assistant", "content": "42"}]]
    assert exact_match_reward(conversational, answer=["42"]) == [1.0]


@pytest.mark.slow
def test_every_gsm8k_gold_answer_verifies_against_itself_and_perturbations_fail():
    ds = load_dataset(str(require_gsm8k()))
    assert len(ds) == 1319 and ds.reward == "math"
    golds = ds.frame["answer"].tolist()
    assert math_reward(golds, answer=golds) == [1.0] * len(golds)
    failures = []
    for gold in golds:
        value = int(gold)
        for wrong in (str(value + 1), str(-value) if value else "-1", gold + "7"):
            if math_match(f"The answer is {wrong}.", gold) != 0.0:
                failures.append((gold, wrong))
    assert failures == []


def test_math_reward_reads_the_final_number_in_prose_and_latex():
    assert math_match("so she makes $18 a day. #### 18", "18") == 1.0
    assert math_match("\\boxed{\\frac{1}{2}}", "0.5") == 1.0
    assert math_match("1,000", "1000") == 1.0
    assert math_match("no number here", "18") == 0.0


def test_model_output_is_never_evaluated_as_code(tmp_path):
    canary = tmp_path / "canary"
    payload = f"__import__('pathlib').Path('{canary}').write_text('x')"
    math_match(payload, "1")
    exact_match_reward([payload], answer=["1"])
    assert not canary.exists()
