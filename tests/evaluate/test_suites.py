"""Each suite's scoring against hand-computed examples."""

from __future__ import annotations

import math

import pytest

from payoff.evaluate.processbench import first_wrong_step, processbench_scores
from payoff.evaluate.suites import best_of_n_credit, one_vs_many, pairs_accuracy, rewardbench, rewardbench2, rmbench, ties_score


def pair(c, r, subset=None):
    return {"chosen_score": c, "rejected_score": r, "subset": subset}


def test_a_tie_loses_and_unscored_answers_never_win() -> None:
    result = pairs_accuracy([pair(1, 0), pair(1, 1), pair(None, 0), pair(2, None)])
    assert result["overall"] == 0.25 and result["tie_rate"] == 0.25 and result["unscored"] == 2


def test_rewardbench_sections_are_count_weighted_and_overall_is_their_mean() -> None:
    rows = [pair(1, 0, "alpacaeval-easy")] * 4 + [pair(0, 1, "mt-bench-easy")] * 2  # Chat: 1.0 (100) and 0.0 (28)
    rows += [pair(1, 0, "math-prm"), pair(0, 1, "math-prm"), pair(1, 0, "hep-python")]  # Reasoning: 0.5 (984), 1.0 (164)
    rows += [pair(3, 3, "alpacaeval-hard"), pair(1, 0, "some-prior-set")]  # a tie loses; unknown subsets are "other"
    result = rewardbench(rows)
    chat = (1.0 * 100 + 0.0 * 28 + 0.0 * 95) / (100 + 28 + 95)
    reasoning = (0.5 * 984 + 1.0 * 164) / (984 + 164)
    assert result["sections"]["Chat"] == pytest.approx(chat)
    assert result["sections"]["Reasoning"] == pytest.approx(reasoning)
    assert set(result["sections"]) == {"Chat", "Reasoning"}
    assert result["overall"] == pytest.approx((chat + reasoning) / 2)
    assert result["other"] == ["some-prior-set"] and result["subsets"]["alpacaeval-hard"] == 0.0


def test_best_of_four_with_tie_credit() -> None:
    assert best_of_n_credit(2.0, [1.0, 0.0, 1.5]) == 1.0
    assert best_of_n_credit(2.0, [2.0, 0.0, 1.5]) == 0.5  # tied with one: a coin flip
    assert best_of_n_credit(2.0, [2.0, 2.0, 2.0]) == 0.25
    assert best_of_n_credit(1.0, [2.0, 0.0, 0.0]) == 0.0
    assert best_of_n_credit(None, [0.0]) == 0.0 and best_of_n_credit(1.0, [None, 0.0]) == 1.0


def test_ties_formula_by_hand() -> None:
    prompts = [
        # prompt 1: tied answers 5, 4 vs wrong 1 -> accurate, spread 1, gap 3; its ref: 6 vs 2 -> gap 4
        {"kind": "tied", "id": "1", "correct": [5.0, 4.0], "incorrect": [1.0]},
        {"kind": "ref", "id": "1", "correct": [6.0], "incorrect": [2.0]},
        # prompt 2: tied 5, 1 vs wrong 2 -> not accurate, spread 4, gap -1; ref: 3 vs 4 -> gap -1, not accurate
        {"kind": "tied", "id": "2", "correct": [5.0, 1.0], "incorrect": [2.0]},
        {"kind": "ref", "id": "2", "correct": [3.0], "incorrect": [4.0]},
    ]
    got = ties_score(prompts)
    assert got["accuracy_tied"] == 0.5 and got["accuracy_ref"] == 0.5
    assert got["correctness_preferred"] == 0.5  # 3 > 1 yes; -1 > 4 no
    assert got["correctness_preferred_hard"] == 0.5  # min(4, 3) = 3 > 1 yes; min(-1, -1) > 4 no
    margin = (math.tanh(3 / 1 - 1) + math.tanh(-1 / 4 - 1)) / 2
    assert got["margin_score"] == pytest.approx(margin)
    assert got["score"] == pytest.approx(0.3 * 0.5 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5 + 0.01 * margin)
    whole = rewardbench2([{"chosen_score": 2.0, "rejected_scores": [2.0, 0.0, 0.0], "subset": "Math"}], prompts)
    assert whole["subsets"] == {"Math": 0.5, "Ties": pytest.approx(got["score"])}
    assert whole["overall"] == pytest.approx((0.5 + got["score"]) / 2)


def test_rmbench_grid_hard_normal_easy() -> None:
    # chosen concise 1, detailed 2, markdown 3; rejected concise 1.5, detailed 2.5, markdown 3.5
    result = rmbench([{"chosen_scores": [1.0, 2.0, 3.0], "rejected_scores": [1.5, 2.5, 3.5]}])
    grid = result["grid"]
    assert grid["concise"] == {"concise": 0.0, "detailed_plain": 0.0, "detailed_markdown": 0.0}
    assert grid["detailed_markdown"] == {"concise": 1.0, "detailed_plain": 1.0, "detailed_markdown": 0.0}
    assert result["hard"] == 0.0  # plainer chosen never beats the fancier rejected
    assert result["normal"] == 0.0  # 1 < 1.5, 2 < 2.5, 3 < 3.5
    assert result["easy"] == 1.0  # 2 > 1.5, 3 > 1.5, 3 > 2.5
    assert result["overall"] == pytest.approx(sum(sum(row.values()) for row in grid.values()) / 9)


def test_one_vs_many_accuracy_and_mrr() -> None:
    rows = [{"chosen_score": 3.0, "rejected_scores": [1.0, 2.0]},  # rank 1
            {"chosen_score": 2.0, "rejected_scores": [3.0, 1.0]},  # rank 2
            {"chosen_score": 1.0, "rejected_scores": [1.0, 0.0]}]  # a tie ranks pessimistically: rank 2
    result = one_vs_many(rows)
    assert result["accuracy"] == pytest.approx(1 / 3)
    assert result["mrr"] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_processbench_f1_all_right_all_wrong_and_mixed() -> None:
    labels = [-1, -1, 2, 0, 3]
    perfect = processbench_scores([{"label": x, "prediction": x} for x in labels])
    assert perfect["overall"] == 1.0
    hopeless = processbench_scores([{"label": x, "prediction": 1 if x == -1 else -1} for x in labels])
    assert hopeless["overall"] == 0.0
    # errors found 1 of 3, correct ones 2 of 2: F1 = 2 * (1/3) * 1 / (1/3 + 1) = 0.5
    mixed = processbench_scores([{"label": -1, "prediction": -1}, {"label": -1, "prediction": -1}, {"label": 2, "prediction": 2},
                                 {"label": 0, "prediction": 1}, {"label": 3, "prediction": -1}])
    assert mixed["overall"] == pytest.approx(0.5)
    by_subset = processbench_scores([{"label": 0, "prediction": 0, "subset": "gsm8k"}, {"label": -1, "prediction": -1, "subset": "gsm8k"},
                                     {"label": 0, "prediction": -1, "subset": "math"}, {"label": -1, "prediction": -1, "subset": "math"}])
    assert by_subset["subsets"] == {"gsm8k": 1.0, "math": 0.0} and by_subset["overall"] == 0.5


def test_first_wrong_step_from_scores() -> None:
    assert first_wrong_step([0.9, 0.8, 0.1, 0.9]) == 2
    assert first_wrong_step([0.9, 0.9]) == -1
    assert first_wrong_step([0.9, None]) == 1  # an unscored step is not a right one
