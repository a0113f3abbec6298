"""`run_episode`: a policy and an environment alternate until the episode ends, then the
environment's reward scores the finished episode.

A policy is any callable ``(messages, tools) -> assistant message`` (OpenAI chat format): a
scripted list in the tests, a language model later. The episode ends when the environment says
done or at the first limit reached (`EpisodeLimits`; the reason is ``info["ended"]``). A failing
environment (reset, step or reward raises) or policy gives an ``error`` Outcome that says which
and why, never a score.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payoff.core import Outcome, Reward, Sample, SampleError
from payoff.envs.base import Environment, Message
from payoff.episode import opening
from payoff.registry import get_reward

Policy = Callable[[list[Message], list[dict[str, Any]]], Message]


@dataclass(frozen=True)
class EpisodeLimits:
    """Where an episode stops. Tokens are counted over every message's text and tool-call
    arguments, the opening included, with `tokenizer` when given (a callable ``str -> int`` or an
    object with ``encode``), else as whitespace-separated words."""

    max_turns: int = 16  # assistant messages
    max_tool_calls: int = 64
    max_tokens: int = 32_768
    wall_s: float = 300.0  # the whole episode, policy time included
    tokenizer: Any = None


def count_tokens(messages: list[Message], tokenizer: Any = None) -> int:
    total = 0
    for message in messages:
        texts = [message.get("content") or ""]
        texts += [(call.get("function") or {}).get("arguments") or "" for call in message.get("tool_calls") or []]
        for text in texts:
            text = text if isinstance(text, str) else json.dumps(text)
            if tokenizer is None:
                total += len(text.split())
            elif callable(tokenizer) and not hasattr(tokenizer, "encode"):
                total += int(tokenizer(text))
            else:
                total += len(tokenizer.encode(text))
    return total


def episode_sample(messages: list[Message], row: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> Sample:
    """The finished episode as a Sample: `messages` the trajectory, `completion` its final
    assistant text, `prompt` its opening messages, ``meta["tools"]`` the tool schemas it was
    offered (episode rewards such as ``tool_call_validity`` check calls against them).
    SampleError when the trajectory is not a valid episode (the policy wrote tool-call arguments
    that are not JSON, for instance)."""
    meta = dict(row.get("meta") or {})
    if tools:
        meta["tools"] = tools
    return Sample(prompt=opening(messages), reference=row_reference(row), meta=meta, messages=messages)


def row_reference(row: dict[str, Any]) -> Any:
    for key in ("reference", "answer", "solution", "ground_truth", "gold"):
        if key in row:
            return row[key]
    return None


def run_episode(env: Environment, policy: Policy, row: dict[str, Any], limits: EpisodeLimits | None = None,
                reward: str | Reward | Callable[..., Any] | None = None) -> tuple[Sample, Outcome]:
    """Run one episode of `env` on `row` with `policy`; score it with `reward` (a name, a Reward
    or a function; default: the environment's). Returns the finished episode and its Outcome;
    the environment is closed whatever happened (a close that fails makes the Outcome an error)."""
    limits = limits or EpisodeLimits()
    scorer = get_reward(reward) if reward is not None else env.reward
    info: dict[str, Any] = {"turns": 0, "tool_calls": 0}
    try:
        sample, outcome = _play(env, policy, row, limits, scorer, info)
    finally:
        try:
            env.close()
            closed = None
        except Exception as error:  # noqa: BLE001
            closed = f"environment close failed: {type(error).__name__}: {error}"
    if closed is not None:  # what the episode held may still be running: not a result to train on
        return sample, Outcome.error(closed, **info)
    return sample, outcome


def _play(env: Environment, policy: Policy, row: dict[str, Any], limits: EpisodeLimits, scorer: Reward | None,
          info: dict[str, Any]) -> tuple[Sample, Outcome]:
    start = time.monotonic()
    messages: list[Message] = []
    tools: list[dict[str, Any]] = []
    try:
        messages, tools = env.reset(row)
        messages = list(messages)
    except Exception as error:  # noqa: BLE001 - a broken environment is an error outcome
        return _partial(messages, row), Outcome.error(f"environment reset failed: {type(error).__name__}: {error}", **info)
    ended = None
    while ended is None:
        ended = _limit_reached(messages, info, limits, start)
        if ended:
            break
        try:
            message = dict(policy(messages, tools))
        except Exception as error:  # noqa: BLE001
            return _partial(messages, row), Outcome.error(f"policy failed: {type(error).__name__}: {error}", **info)
        message.setdefault("role", "assistant")
        messages.append(message)
        info["turns"] += 1
        info["tool_calls"] += len(message.get("tool_calls") or [])
        if info["tool_calls"] > limits.max_tool_calls:
            ended = "max_tool_calls"
            break
        try:
            replies, done = env.step(message)
        except Exception as error:  # noqa: BLE001
            return _partial(messages, row), Outcome.error(f"environment step failed: {type(error).__name__}: {error}", **info)
        messages.extend(replies)
        if done:
            ended = "done"
    info["ended"] = ended
    info["tokens"] = count_tokens(messages, limits.tokenizer)
    info["wall_s"] = round(time.monotonic() - start, 4)
    try:
        sample = episode_sample(messages, row, tools)
    except SampleError as error:
        return _partial(messages, row), Outcome.error(f"the finished episode is not a valid trajectory: {error}", **info)
    if scorer is None:
        return sample, Outcome.error("the environment has no reward and none was given", **info)
    try:
        outcome = scorer.score_one(sample)
    except Exception as error:  # noqa: BLE001
        return sample, Outcome.error(f"reward {getattr(scorer, 'name', scorer)!r} failed: {type(error).__name__}: {error}", **info)
    outcome.info.update({k: v for k, v in info.items() if k not in outcome.info})
    return sample, outcome


def _partial(messages: list[Message], row: dict[str, Any]) -> Sample:
    """The episode so far, for an outcome that is an error: as a Sample when it is a valid
    trajectory, else with the messages unchecked in ``meta["messages"]``."""
    try:
        return episode_sample(messages, row)
    except SampleError:
        return Sample(completion="", reference=row_reference(row), meta={**(row.get("meta") or {}), "messages": messages})


def _limit_reached(messages: list[Message], info: dict[str, Any], limits: EpisodeLimits, start: float) -> str | None:
    if info["turns"] >= limits.max_turns:
        return "max_turns"
    if time.monotonic() - start >= limits.wall_s:
        return "wall_s"
    if count_tokens(messages, limits.tokenizer) >= limits.max_tokens:
        return "max_tokens"
    return None
