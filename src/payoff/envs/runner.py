"""`run_episode`: a policy and an environment alternate until the episode ends, then the
environment's reward scores the finished episode.

A policy is any callable ``(messages, tools) -> assistant message`` (OpenAI chat format): a
scripted list in the tests, a language model later. The episode ends when the environment says
done or at the first limit reached (`EpisodeLimits`; the reason is ``info["ended"]``). A failing
environment (reset, step or reward raises) or policy gives an ``error`` Outcome that says which
and why, never a score.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payoff.core import Outcome, Reward, Sample
from payoff.envs.base import Environment, Message

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


def final_text(messages: list[Message]) -> str:
    """The last assistant message's text: the episode's `completion`."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def episode_sample(messages: list[Message], row: dict[str, Any], opening: int) -> Sample:
    """The finished episode as a Sample: `completion` is the final assistant text, `prompt` the
    opening messages. The trajectory goes in `Sample.messages` where the contract has it, else in
    ``meta["messages"]`` (until the episode contract lands)."""
    meta = dict(row.get("meta") or {})
    sample = Sample(completion=final_text(messages), prompt=messages[:opening], reference=row_reference(row), meta=meta)
    if any(f.name == "messages" for f in dataclasses.fields(Sample)):
        sample.messages = messages  # type: ignore[attr-defined]
    else:
        meta["messages"] = messages
    return sample


def row_reference(row: dict[str, Any]) -> Any:
    for key in ("reference", "answer", "solution", "ground_truth", "gold"):
        if key in row:
            return row[key]
    return None


def run_episode(env: Environment, policy: Policy, row: dict[str, Any], limits: EpisodeLimits | None = None,
                reward: Reward | None = None) -> tuple[Sample, Outcome]:
    """Run one episode of `env` on `row` with `policy`; score it with `reward` (default: the
    environment's). Returns the finished episode and its Outcome; the environment is closed."""
    limits = limits or EpisodeLimits()
    start = time.monotonic()
    messages: list[Message] = []
    info: dict[str, Any] = {"turns": 0, "tool_calls": 0}
    try:
        try:
            messages, tools = env.reset(row)
            messages = list(messages)
        except Exception as error:  # noqa: BLE001 - a broken environment is an error outcome
            return episode_sample(messages, row, 0), Outcome.error(f"environment reset failed: {type(error).__name__}: {error}", **info)
        opening = len(messages)
        ended = None
        while ended is None:
            ended = _limit_reached(messages, info, limits, start)
            if ended:
                break
            try:
                message = dict(policy(messages, tools))
            except Exception as error:  # noqa: BLE001
                return episode_sample(messages, row, opening), Outcome.error(f"policy failed: {type(error).__name__}: {error}", **info)
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
                return episode_sample(messages, row, opening), Outcome.error(f"environment step failed: {type(error).__name__}: {error}", **info)
            messages.extend(replies)
            if done:
                ended = "done"
        info["ended"] = ended
        info["tokens"] = count_tokens(messages, limits.tokenizer)
        info["wall_s"] = round(time.monotonic() - start, 4)
        sample = episode_sample(messages, row, opening)
        scorer = reward if reward is not None else env.reward
        if scorer is None:
            return sample, Outcome.error("the environment has no reward and none was given", **info)
        try:
            outcome = scorer.score_one(sample)
        except Exception as error:  # noqa: BLE001
            return sample, Outcome.error(f"reward {getattr(scorer, 'name', scorer)!r} failed: {type(error).__name__}: {error}", **info)
        outcome.info.update({k: v for k, v in info.items() if k not in outcome.info})
        return sample, outcome
    finally:
        env.close()


def _limit_reached(messages: list[Message], info: dict[str, Any], limits: EpisodeLimits, start: float) -> str | None:
    if info["turns"] >= limits.max_turns:
        return "max_turns"
    if time.monotonic() - start >= limits.wall_s:
        return "wall_s"
    if count_tokens(messages, limits.tokenizer) >= limits.max_tokens:
        return "max_tokens"
    return None
