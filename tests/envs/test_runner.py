"""The episode runner and the tool-calling environment: limits, failures, bad tool calls."""

from __future__ import annotations

import time

import pytest

from payoff.core import Outcome, Sample, reward
from payoff.envs import CalculatorEnv, EpisodeLimits, Tool, ToolEnv, run_episode
from payoff.envs.base import schema_errors
from payoff.registry import get_reward
from tests.envs.scripted import Scripted, call, say, tool_messages

ROW = {"prompt": "What is 6 * 7?", "reference": "42"}


def _flaky_env(**kwargs) -> ToolEnv:
    def crash(x: str) -> str:
        raise RuntimeError("disk on fire")

    def hang(x: str) -> str:
        time.sleep(5)
        return "never"

    env = ToolEnv(reward=get_reward("math"), call_timeout_s=0.3, max_output_chars=100, **kwargs)
    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"], "additionalProperties": False}
    env.tools = [Tool("crash", "raises", schema, crash), Tool("hang", "hangs", schema, hang),
                 Tool("flood", "floods", schema, lambda x: "y" * 10_000), Tool("echo", "echoes", schema, lambda x: x)]
    return env


def test_a_calculator_episode_is_scored_on_its_final_answer() -> None:
    policy = Scripted(call("calculator", {"expression": "6 * 7"}), say("The answer is \\boxed{42}."))
    sample, outcome = run_episode(CalculatorEnv(reward=get_reward("math")), policy, ROW)
    assert outcome.status == "ok" and outcome.score == 1.0
    assert tool_messages(sample) == ["42"]
    assert sample.completion == "The answer is \\boxed{42}." and sample.messages[-1]["role"] == "assistant"
    assert outcome.info["turns"] == 2 and outcome.info["tool_calls"] == 1 and outcome.info["ended"] == "done"
    assert policy.tools[0]["function"]["name"] == "calculator" and policy.tools[0]["type"] == "function"


@pytest.mark.parametrize(("turn", "expected"), [
    (call("crash", {"x": "a"}), "raised RuntimeError: disk on fire"),
    (call("hang", {"x": "a"}), "no result within 0.3 s and was abandoned"),
    (call("flood", {"x": "a"}), "[output truncated: 100 of 10000 characters shown]"),
    (call("nope", {"x": "a"}), "unknown tool 'nope'"),
    (call("echo", {}), "missing required argument 'x'"),
    (call("echo", {"x": 3}), "argument 'x' must be string, got int"),
    (call("echo", {"x": "a", "y": 1}), "unknown argument 'y'"),
])
def test_a_failing_tool_is_a_tool_message_and_the_episode_goes_on(turn, expected) -> None:
    sample, outcome = run_episode(_flaky_env(), Scripted(turn, call("echo", {"x": "still here"}, "c2"), say("\\boxed{42}")), ROW)
    first, second = tool_messages(sample)
    assert expected in first and first.startswith("error") or "truncated" in first
    assert second == "still here"
    assert outcome.status == "ok" and outcome.score == 1.0


@pytest.mark.parametrize(("raw", "said"), [("{not json", "not valid JSON"), ('["a"]', "must be a JSON object, got list")])
def test_arguments_that_are_not_a_json_object_are_said_so_and_the_trajectory_is_an_error(raw, said) -> None:
    # The contract (payoff.episode) rejects a trajectory whose arguments are not a JSON object, so
    # the finished episode is an error outcome that says why, not a score.
    policy = Scripted(call("echo", raw), say("\\boxed{42}"))
    sample, outcome = run_episode(_flaky_env(), policy, ROW)
    assert said in policy.seen[1][-1]["content"]
    assert outcome.status == "error" and "not a valid trajectory" in outcome.info["error"]
    assert sample.meta["messages"][-1]["content"] == "\\boxed{42}"


@pytest.mark.parametrize(("limits", "turns", "reason"), [
    (EpisodeLimits(max_turns=2), 2, "max_turns"),
    (EpisodeLimits(max_tool_calls=2), 3, "max_tool_calls"),
    (EpisodeLimits(max_tokens=12), 2, "max_tokens"),  # words: 5 opening + 5 a turn (3 in the call, 2 back)
    (EpisodeLimits(max_tokens=40, tokenizer=len), 2, "max_tokens"),  # characters: 14 opening + 23 a turn
    (EpisodeLimits(wall_s=0.0), 0, "wall_s"),
])
def test_a_limit_ends_the_episode_with_its_reason(limits, turns, reason) -> None:
    looping = Scripted(*[call("echo", {"x": "one two"}, f"c{i}") for i in range(10)])
    sample, outcome = run_episode(_flaky_env(), looping, ROW, limits)
    assert outcome.info["ended"] == reason
    assert outcome.info["turns"] == turns
    if turns:
        assert outcome.status == "ok" and outcome.score == 0.0  # scored as it stands: no final answer
    else:  # no assistant turn at all: not an episode the contract accepts, and said so
        assert outcome.status == "error" and "not a valid trajectory" in outcome.info["error"]


class _Broken(CalculatorEnv):
    def reset(self, row):
        raise OSError("database missing")


@reward(name="explodes")
def _explodes(sample: Sample) -> Outcome:
    raise ValueError("reward bug")


def test_an_environment_that_fails_is_an_error_outcome_that_says_why() -> None:
    _, outcome = run_episode(_Broken(reward=get_reward("math")), Scripted(), ROW)
    assert outcome.status == "error" and outcome.info["error"] == "environment reset failed: OSError: database missing"
    _, outcome = run_episode(CalculatorEnv(reward=_explodes), Scripted(say("42")), ROW)
    assert outcome.status == "error" and "reward bug" in outcome.info["error"]
    _, outcome = run_episode(CalculatorEnv(), Scripted(say("42")), ROW)
    assert outcome.status == "error" and "no reward" in outcome.info["error"]

    def broken_policy(messages, tools):
        raise RuntimeError("model server down")

    _, outcome = run_episode(CalculatorEnv(reward=get_reward("math")), broken_policy, ROW)
    assert outcome.status == "error" and "policy failed: RuntimeError: model server down" == outcome.info["error"]


def test_schema_errors_table() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "f": {"type": "number"}}, "required": ["n"]}
    assert schema_errors({"n": 1, "f": 2}, schema) == []
    assert schema_errors({"n": True}, schema) == ["argument 'n' must be integer, got bool"]
    assert schema_errors({"n": 1.5}, schema) == ["argument 'n' must be integer, got float"]
    assert schema_errors({"n": 1, "extra": 1}, schema) == []  # additionalProperties not false


@reward(name="few_tool_calls")
def _few_tool_calls(sample: Sample) -> float:
    """An episode reward: reads the trajectory, not only the final answer."""
    calls = sum(len(m.get("tool_calls") or []) for m in sample.messages)
    return 1.0 / (1 + calls)


def test_a_rubric_scores_the_episode() -> None:
    from payoff.compose import Rubric

    rubric = Rubric([(get_reward("math"), 1.0), (_few_tool_calls, 0.5)])
    policy = Scripted(call("calculator", {"expression": "6 * 7"}), say("\\boxed{42}"))
    _, outcome = run_episode(CalculatorEnv(), policy, ROW, reward=rubric)
    assert outcome.status == "ok" and outcome.score == pytest.approx(1.0 + 0.5 * 0.5)
    assert outcome.info["turns"] == 2


def test_episode_rewards_score_an_environment_episode() -> None:
    # tool_call_validity reads the offered schemas from meta["tools"]: the unknown tool and the
    # call whose tool raised are invalid, the echo is valid.
    policy = Scripted(call("nope", {"x": "a"}, "c1"), call("crash", {"x": "a"}, "c2"), call("echo", {"x": "b"}, "c3"), say("\\boxed{42}"))
    sample, outcome = run_episode(_flaky_env(), policy, ROW, reward=get_reward("tool_call_validity"))
    assert [t["function"]["name"] for t in sample.meta["tools"]] == ["crash", "hang", "flood", "echo"]
    assert outcome.status == "ok" and outcome.score == pytest.approx(1 / 3)


def test_try_again_scores_a_feedback_episode_by_the_attempt_that_succeeded() -> None:
    from payoff.envs import get_env

    policy = Scripted(say("\\boxed{41}"), say("\\boxed{42}"))
    _, outcome = run_episode(get_env("feedback", tries=3), policy, ROW, reward=get_reward("try_again"))
    assert outcome.status == "ok" and outcome.score == 0.5  # gamma^(2 - 1)


class _Unclosable(CalculatorEnv):
    def close(self):
        raise OSError("cannot kill the session")


def test_an_environment_that_cannot_close_is_an_error() -> None:
    _, outcome = run_episode(_Unclosable(), Scripted(say("\\boxed{42}")), ROW, reward="math")
    assert outcome.status == "error" and outcome.info["error"] == "environment close failed: OSError: cannot kill the session"
