"""Every library reward against its formula (one or two hand-computed cases each) plus the
properties worth generating."""

from __future__ import annotations

import difflib
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import payoff
from payoff.rewards import (
    budget_length,
    confidence_brier,
    cosine_length,
    empo,
    grpo_lambda,
    json_schema,
    laser,
    majority_vote,
    multiple_choice,
    overlong_penalty,
    patch_similarity,
    regex_match,
    repetition_penalty,
    tag_count,
    tag_format,
    tool_call,
)


def s(completion: str, **kw: object) -> dict:
    return {"completion": completion, **kw}


# -- format ---------------------------------------------------------------------------------------
def test_tag_format_and_counts() -> None:
    assert tag_format(s("<think>a</think><answer>4</answer>")).score == 1.0
    assert tag_format(s("<think></think><answer>4</answer>")).score == 0.0
    assert tag_format(s("x <think>a</think><answer>4</answer>")).score == 0.0
    assert tag_count(s("<think>a</think>")).score == 0.5
    assert tag_count(s("<think><think>a</think><answer>4</answer>")).score == 0.75


def test_regex_and_json_schema() -> None:
    assert regex_match.configure(pattern=r"\d+")(s("42")).score == 1.0
    assert regex_match.configure(pattern=r"\d+")(s("42 apples")).score == 0.0
    assert regex_match.configure(pattern=r"\d+", full=False)(s("42 apples")).score == 1.0
    assert regex_match(s("abc", reference="a.c")).score == 1.0
    assert regex_match.configure(pattern="(")(s("x")).status == "error"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert json_schema(s('Here: ```json\n{"n": 3}\n```', reference=schema)).score == 1.0
    wrong_type = json_schema(s('{"n": "three"}', reference=json.dumps(schema)))
    assert wrong_type.score == 0.0 and wrong_type.components == {"parsed": 1.0, "valid": 0.0}
    assert json_schema(s("no json", reference=schema)).components["parsed"] == 0.0
    assert json_schema(s("{}")).status == "abstain"


def test_json_schema_reads_the_json_after_the_reasoning() -> None:
    """A valid JSON draft inside <think> credited an invalid answer after it (a hack: put one valid
    object in the reasoning), and an invalid draft there failed a valid answer."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert json_schema(s('<think>Maybe {"n": 3}.</think>\n{"n": "three"}', reference=schema)).score == 0.0
    assert json_schema(s('<think>Not {"n": "x"}.</think>\n{"n": 3}', reference=schema)).score == 1.0
    assert json_schema(s('<think>{"n": 3}</think>', reference=schema)).components["parsed"] == 0.0


# -- length ---------------------------------------------------------------------------------------
@given(st.integers(0, 3000), st.booleans())
def test_cosine_length_formula_and_ordering(size: int, correct: bool) -> None:
    sample = s("w " * 3, meta={"correct": correct, "num_tokens": size})
    value = cosine_length.configure(max_length=1000)(sample).score
    cosine = math.cos(min(size / 1000, 1) * math.pi)
    expected = (0.5 + 0.25 * (1 + cosine)) if correct else (-0.5 - 0.25 * (1 + cosine))
    assert value == pytest.approx(expected)
    assert (0.5 <= value <= 1.0) if correct else (-1.0 <= value <= -0.5)  # any correct beats any wrong


def test_cosine_length_uses_the_verifier_without_meta() -> None:
    assert cosine_length(s("\\boxed{4}", reference="4")).components["correct"] == 1.0
    assert cosine_length(s("\\boxed{4}")).status == "abstain"


@pytest.mark.parametrize("size, expected", [(3000, 0.0), (3584, 0.0), (3840, -0.5), (4096, -1.0), (5000, -1.0)])
def test_overlong_penalty(size: int, expected: float) -> None:
    assert overlong_penalty(s("x", meta={"num_tokens": size})).score == pytest.approx(expected)


def test_laser_and_budget() -> None:
    short_right = s("x", meta={"correct": True, "num_tokens": 100})
    long_right = s("x", meta={"correct": True, "num_tokens": 5000})
    short_wrong = s("x", meta={"correct": False, "num_tokens": 100})
    assert laser(short_right).score == 1.5 and laser(long_right).score == 1.0 and laser(short_wrong).score == 0.0
    assert laser.configure(reward_wrong_short=True)(short_wrong).score == 0.5
    budget = budget_length.configure(start_budget=1000, end_budget=200, total_steps=10, penalty=0.5)
    assert budget(s("x", meta={"correct": True, "num_tokens": 600, "step": 0})).score == 1.0
    late = budget(s("x", meta={"correct": True, "num_tokens": 600, "step": 10}))
    assert late.components["budget"] == 200 and late.score == 0.5  # 1 - 0.5 * min(400/200, 1)
    assert budget(s("x", meta={"correct": True, "num_tokens": 300, "step": 5})).score == 1.0  # budget 600


def test_grpo_lambda_penalises_length_only_in_solved_groups() -> None:
    easy = [s("x", meta={"correct": True, "num_tokens": n}) for n in (100, 200, 300)] + [s("x", meta={"correct": False, "num_tokens": 50})]
    scores = [o.score for o in grpo_lambda(easy)]
    assert scores == pytest.approx([1.0, 0.75, 0.5, 0.0])
    hard = [s("x", meta={"correct": c, "num_tokens": n}) for c, n in ((True, 300), (False, 100), (False, 100))]
    assert [o.score for o in grpo_lambda(hard)] == [1.0, 0.0, 0.0]


# -- choice, confidence, repetition ---------------------------------------------------------------
@pytest.mark.parametrize(
    "completion, expected",
    [("The answer is (B).", 1.0), ("\\boxed{B}", 1.0), ("<answer>C</answer>", 0.0), ("Answer: A or B", 0.0),
     ("The answer is A, B, C, D", 0.0), ("Thinking...\nB", 1.0), ("I cannot tell", 0.0),
     # false negatives found by benchmarks/hack_matrix.py: a bold letter alone, "the correct option is"
     ("**B**", 1.0), ("The correct option is B.", 1.0), ("Option: A or B", 0.0), ("**A**", 0.0),
     # a reasoning model's tries inside <think> are not its answer: what follows </think> is
     ("<think>The answer is A? No, that misreads the question.</think>\nB", 1.0),
     ("<think>Maybe the answer is B.</think>\nThe answer is (A).", 0.0)],
)
def test_multiple_choice(completion: str, expected: float) -> None:
    assert multiple_choice(s(completion, reference="B")).score == expected


@given(st.floats(0, 1), st.booleans())
def test_confidence_brier_formula(q: float, correct: bool) -> None:
    outcome = confidence_brier(s(f"<confidence>{q:.6f}</confidence>", meta={"correct": correct}))
    c = float(correct)
    stated = float(f"{q:.6f}")
    assert outcome.score == pytest.approx(c - (stated - c) ** 2)


def test_confidence_missing_is_the_worst_and_percent_is_read() -> None:
    assert confidence_brier(s("no confidence", meta={"correct": True})).score == 0.0
    assert confidence_brier(s("no confidence", meta={"correct": False})).score == -1.0
    assert confidence_brier(s("Confidence: 90%", meta={"correct": True})).score == pytest.approx(1 - 0.01)


def test_repetition_penalty() -> None:
    assert repetition_penalty(s("a b c d e f")).score == 0.0
    looped = repetition_penalty(s("a b c " * 10))
    grams = [tuple(("a b c " * 10).split()[i : i + 3]) for i in range(28)]
    assert looped.score == pytest.approx(-(1 - len(set(grams)) / len(grams)))


# -- patches and tools ----------------------------------------------------------------------------
def test_patch_similarity() -> None:
    gold = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2"
    exact = patch_similarity(s(f"Fix:\n```diff\n{gold}\n```", reference=gold))
    assert exact.score == 1.0
    near = gold.replace("a = 2", "a = 3")
    assert patch_similarity(s(near, reference=gold)).score == pytest.approx(difflib.SequenceMatcher(None, near, gold).ratio())
    assert patch_similarity(s("I would change a to 2", reference=gold)).score == -1.0


def test_tool_call_scoring() -> None:
    gold = [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}]
    openai_style = json.dumps([{"type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "C"})}}])
    perfect = tool_call(s(openai_style, reference=gold))
    assert perfect.score == 4.0 and perfect.components["correctness"] == 3.0
    half = tool_call(s(json.dumps({"name": "get_weather", "arguments": {"city": "Lyon"}}), reference=gold))
    # names 1 + params jaccard 1/2 + values 0, over R_max = 1 + 1 + 2
    assert half.components["correctness"] == pytest.approx(6 * 1.5 / 4 - 3) and half.components["format"] == 1.0
    assert tool_call(s("<tool_call>not json</tool_call>", reference=gold)).score == -3.0
    costly = tool_call.configure(cost_weight=0.1)(s(openai_style, reference=gold))
    assert costly.score == pytest.approx(3.9) and costly.components["cost"] == pytest.approx(-0.1)


# -- group rewards --------------------------------------------------------------------------------
def test_majority_vote_and_empo_cluster_equivalent_answers() -> None:
    group = [s("\\boxed{\\frac12}"), s("\\boxed{0.5}"), s("\\boxed{2/4}"), s("\\boxed{3}"), s("no idea")]
    assert [o.score for o in majority_vote(group)] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert [o.score for o in empo(group)] == pytest.approx([0.6, 0.6, 0.6, 0.2, 0.0])


def test_group_rewards_through_the_engine_see_whole_groups() -> None:
    samples = [{"completion": f"\\boxed{{{a}}}", "group": g} for g, a in [("p", 1), ("q", 2), ("p", 1), ("q", 3), ("p", 2), ("q", 3)]]
    outcomes = payoff.score(samples, "majority_vote", workers=2)
    assert [o.score for o in outcomes] == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]


def test_every_builtin_is_registered_with_a_paper_or_source_in_its_doc() -> None:
    rewards = payoff.list_rewards()
    for name in ("tag_format", "tag_count", "regex_match", "json_schema", "cosine_length", "overlong_penalty", "laser",
                 "budget_length", "grpo_lambda", "multiple_choice", "confidence_brier", "repetition_penalty",
                 "patch_similarity", "tool_call", "majority_vote", "empo", "math"):
        assert rewards[name].summary, name


def test_length_rewards_record_the_unit_and_warn_once_when_tokens_fall_back_to_words(monkeypatch) -> None:
    import warnings

    from payoff.rewards import common

    monkeypatch.setattr(common, "_warned_fallback", False)
    reward = payoff.get_reward("overlong_penalty").configure(max_length=10, cache=5)
    counted = reward({"completion": "a b c", "meta": {"num_tokens": 7}})
    assert counted.components["length"] == 7.0 and counted.components["length_in_tokens"] == 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = reward({"completion": "a b c"})
        reward({"completion": "a b c d"})
    assert first.components["length"] == 3.0 and first.components["length_in_words"] == 1.0
    assert len([w for w in caught if "num_tokens" in str(w.message)]) == 1
