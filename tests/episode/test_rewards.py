"""The episode rewards against values computed by hand on small episodes."""

from __future__ import annotations

import pytest

import payoff
from payoff.core import Sample
from payoff.rewards import episode_cost, gated_turns, tool_call, tool_call_validity, try_again
from tests.episode.cases import CALC, call, calls, say, tool

CALC_TOOLS = [{"type": "function", "function": {"name": "calc", "parameters": {
    "type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}}}]
RETRIES = [say("user", "q"), say("assistant", "\\boxed{1}"), say("user", "Try again."), say("assistant", "\\boxed{2}"),
           say("user", "Try again."), say("assistant", "\\boxed{3}")]


def episode(messages: list[dict], reference: object = None, **meta: object) -> Sample:
    return Sample(messages=messages, reference=reference, meta=dict(meta))


# -- ToolRL: the tool_call reward reads an episode's calls ----------------------------------------
@pytest.mark.parametrize(("gold", "name", "params", "values", "correctness"), [
    # names: [calc, calc] vs [calc, calc, note] -> 2 / (2 + 3 - 2); each gold call finds its exact match
    ([{"name": "calc", "arguments": {"expression": "6*7"}}, {"name": "calc", "arguments": {"expression": "42+1"}}],
     2 / 3, 2.0, 2.0, 6 * (2 / 3 + 4) / 5 - 3),
    # one gold call: the best calc call (c2, value right) is taken, not the first (c1); names 1 / 3
    ([{"name": "calc", "arguments": {"expression": "42+1"}}], 1 / 3, 1.0, 1.0, 6 * (1 / 3 + 2) / 3 - 3),
    # a tool never called: names 0, nothing matched
    ([{"name": "search", "arguments": {"q": "x"}}], 0.0, 0.0, 0.0, -3.0),
    # the OpenAI form of a gold call is read too; every call matched exactly
    ([call("g1", "calc", expression="6*7"), call("g2", "calc", expression="42+1"), call("g3", "note", text="done")],
     1.0, 3.0, 3.0, 3.0),
])
def test_tool_call_on_an_episode(gold: list, name: float, params: float, values: float, correctness: float) -> None:
    outcome = tool_call(episode(CALC, gold))
    assert outcome.components["name"] == pytest.approx(name)
    assert (outcome.components["params"], outcome.components["values"]) == (params, values)
    assert outcome.components["correctness"] == pytest.approx(correctness)
    assert outcome.score == pytest.approx(1.0 + correctness)  # format 1: the contract checked the calls


def test_tool_call_on_an_episode_without_calls() -> None:
    quiet = [say("user", "q"), say("assistant", "no tools needed")]
    assert tool_call(episode(quiet, [])).score == 4.0  # no call expected, none made: the exact match
    assert tool_call(episode(quiet, [{"name": "calc", "arguments": {}}])).score == pytest.approx(1.0 - 3.0)


# -- validity ------------------------------------------------------------------------------------
FAILED = [*CALC[:5], tool("c2", "error: the tool calc raised ZeroDivisionError"), *CALC[6:]]
BAD_ARGS = [say("user", "q"), calls(call("a", "calc", expression=5), call("b", "calc")), tool("a", "5"), tool("b", "?"),
            say("assistant", "5")]


@pytest.mark.parametrize(("messages", "tools", "score", "turns", "counts"), [
    (CALC, None, 1.0, [1.0, 1.0, 1.0], {}),  # no schemas: every result is fine
    (CALC, CALC_TOOLS, 2 / 3, [1.0, 0.5, 1.0], {"unknown_tool": 1.0}),  # `note` is not a declared tool
    (FAILED, None, 2 / 3, [1.0, 0.5, 1.0], {"tool_error": 1.0}),
    (BAD_ARGS, CALC_TOOLS, 0.0, [0.0, 1.0], {"bad_arguments": 2.0}),  # a number, and a missing expression
    (CALC[:3] + [say("assistant", "gave up")], None, 0.0, [0.0, 1.0], {"unanswered": 1.0}),
])
def test_tool_call_validity(messages: list, tools: list | None, score: float, turns: list, counts: dict) -> None:
    meta = {"tools": tools} if tools is not None else {}
    outcome = tool_call_validity(episode(messages, **meta))
    assert outcome.score == pytest.approx(score)
    assert outcome.info["turn_rewards"] == pytest.approx(turns)
    for key, value in counts.items():
        assert outcome.components[key] == value


def test_tool_call_validity_abstains_without_calls_or_an_episode() -> None:
    assert tool_call_validity(episode([say("user", "q"), say("assistant", "a")])).status == "abstain"
    assert tool_call_validity(Sample("a")).status == "abstain"
    assert tool_call_validity(episode(CALC, tools="calc")).status == "abstain"


# -- Router-R1 cost ------------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "score", "turns"), [
    ({}, -0.6, [-0.2, -0.3, -0.1]),  # 3 turns + 3 calls = 6, over a budget of 10
    ({"prices": {"note": 0.5}}, -0.55, [-0.2, -0.25, -0.1]),
    ({"turn_cost": 0.0, "call_cost": 2.0, "budget": 4.0}, -1.0, [-0.5, -1.0, 0.0]),  # 6 / 4, clipped at -1
])
def test_episode_cost(params: dict, score: float, turns: list) -> None:
    outcome = episode_cost.configure(**params)(episode(CALC))
    assert outcome.score == pytest.approx(score)
    assert outcome.info["turn_rewards"] == pytest.approx(turns)
    assert (outcome.components["turns"], outcome.components["tool_calls"]) == (3.0, 3.0)


def test_episode_cost_of_a_plain_completion_is_one_turn() -> None:
    assert episode_cost(Sample("42")).score == pytest.approx(-0.1)


# -- G-RA ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("reference", "meta", "score", "turns"), [
    ("43", {}, 1.0 + 0.1 + 0.1, [0.1, 0.1, 0.0]),  # gate open: each calling turn's calls all succeeded
    ("42", {}, 0.0, [0.0, 0.0, 0.0]),  # wrong answer: the turn rewards do not count
    ("43", {"turn_rewards": [0.5, 0.25, 0.25]}, 2.0, [0.5, 0.25, 0.25]),  # the environment's own
    ("42", {"turn_rewards": [0.5, 0.25, 0.25]}, 0.0, [0.0, 0.0, 0.0]),
])
def test_gated_turns(reference: str, meta: dict, score: float, turns: list) -> None:
    outcome = gated_turns(episode(CALC, reference, **meta))
    assert outcome.score == pytest.approx(score)
    assert outcome.info["turn_rewards"] == pytest.approx(turns)
    assert outcome.components["gate"] == float(reference == "43")


def test_gated_turns_failed_tool_earns_less_and_bad_input_is_loud() -> None:
    assert gated_turns(episode(FAILED, "43")).score == pytest.approx(1.0 + 0.1 + 0.05)
    assert gated_turns.configure(threshold=0.5, turn_weight=1.0)(episode(CALC, "43")).score == pytest.approx(3.0)
    wrong_length = gated_turns(episode(CALC, "43", turn_rewards=[1.0]))
    assert wrong_length.status == "error" and "3 numbers" in wrong_length.info["error"]
    assert gated_turns.configure(outcome="exact_match")(episode(CALC, None)).status == "abstain"


# -- Try Again -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("messages", "reference", "params", "score", "turns", "solved_at"), [
    (RETRIES, "3", {}, 0.25, [0.0, 0.0, 0.25], 3.0),  # third attempt: 0.5^2
    (RETRIES, "3", {"gamma": 0.8}, 0.64, [0.0, 0.0, 0.64], 3.0),
    (RETRIES, "1", {}, 1.0, [1.0, 0.0, 0.0], 1.0),
    (RETRIES, "7", {}, 0.0, [0.0, 0.0, 0.0], 0.0),
    (CALC, "43", {}, 0.5, [0.0, 0.0, 0.5], 2.0),  # the tool-only turn is no attempt; "Adding one." is the first
])
def test_try_again(messages: list, reference: str, params: dict, score: float, turns: list, solved_at: float) -> None:
    outcome = try_again.configure(**params)(episode(messages, reference))
    assert outcome.score == pytest.approx(score)
    assert outcome.info["turn_rewards"] == pytest.approx(turns)
    assert outcome.components["solved_at"] == solved_at
    assert outcome.components["first_try"] == float(solved_at == 1.0)


def test_episode_rewards_run_in_worker_processes_and_are_listed() -> None:
    rows = [{"messages": RETRIES, "answer": "2"}, {"messages": CALC, "answer": "43"}]
    outcomes = payoff.score(rows, try_again, workers=1)
    assert [o.score for o in outcomes] == [0.5, 0.5]
    gated = payoff.score(rows, gated_turns.configure(outcome="math", turn_weight=1.0), workers=1)
    assert [o.score for o in gated] == pytest.approx([0.0, 3.0])  # the final answer of RETRIES is 3: gate shut
    from payoff.registry import list_rewards

    assert {"tool_call_validity", "episode_cost", "gated_turns", "try_again"} <= set(list_rewards())
