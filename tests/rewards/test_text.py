from __future__ import annotations

import pytest

from payoff.rewards import exact_match, think_format


@pytest.mark.parametrize(
    "completion, reference, expected",
    [
        ("Paris", "paris", 1.0),
        ("  The  Eiffel\nTower. ", "the eiffel tower", 1.0),
        ("<answer>Paris</answer>", "Paris", 1.0),
        ("<think>maybe Lyon</think> Paris", "Paris", 1.0),
        ("<think>Paris</think> Lyon", "Paris", 0.0),
        ("ｐａｒｉｓ", "paris", 1.0),  # full-width letters, NFKC
        ("Blue", ["red", "blue"], 1.0),
        ("Paris, France", "Paris", 0.0),
    ],
)
def test_exact_match(completion: str, reference: object, expected: float) -> None:
    assert exact_match({"completion": completion, "reference": reference}).score == expected


def test_exact_match_abstains_without_reference() -> None:
    assert exact_match({"completion": "x"}).status == "abstain"
    assert exact_match({"completion": "x", "reference": "  "}).status == "abstain"


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<think>reasoning</think> 42", 1.0),
        ("\n<think>a\nb</think>\n<answer>42</answer>", 1.0),
        ("<think></think> 42", 0.0),
        ("<think>reasoning</think>", 0.0),
        ("42 <think>late</think> 42", 0.0),
        ("<think>a</think><think>b</think> 42", 0.0),
        ("<think>unclosed 42", 0.0),
        ("no tags at all", 0.0),
    ],
)
def test_think_format(completion: str, expected: float) -> None:
    outcome = think_format({"completion": completion})
    assert outcome.score == expected
    assert set(outcome.components) == {"single_think_block", "thought_nonempty", "answer_nonempty"}
