"""`run_episode`: a policy and an environment alternate until the episode ends, then the
environment's reward scores the finished episode.

A policy is any callable ``(messages, tools) -> assistant message`` (OpenAI chat format): a
scripted list in the tests, a language model later. The episode ends when the environment says
done or at the first limit reached (`EpisodeLimits`; the reason is ``info["ended"]``). A failing
environment (reset, step or reward raises) or policy gives an ``error`` Outcome that says which
and why, never a score. `Episode` is the loop's state, stepped from outside: `payoff serve`'s
episode sessions (payoff.serve.sessions) play the same episode one request at a time.
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
    episode = Episode(env, row, limits, reward)
    if episode.open():
        while episode.ended is None:
            try:
                message = dict(policy(episode.messages, episode.tools))
            except Exception as error:  # noqa: BLE001
                episode.fail(f"policy failed: {type(error).__name__}: {error}")
                break
            episode.step(message)
    return episode.finish()


class Episode:
    """One episode stepped from outside: `run_episode`'s loop, and a server session (payoff
    serve), which gets the policy's messages one request at a time.

    `open` resets the environment; `step(message)` adds one assistant message and the
    environment's replies, then sets `ended` ("done", or the limit reached) as the loop checks
    it before asking the policy again; `finish` scores the episode with the environment's reward
    (or `reward`) and closes the environment, once: a second call returns the same result. A
    failure (reset, step, policy) ends the episode with an ``error`` Outcome that says which."""

    def __init__(self, env: Environment, row: dict[str, Any], limits: EpisodeLimits | None = None,
                 reward: str | Reward | Callable[..., Any] | None = None) -> None:
        self.env, self.row, self.limits = env, row, limits or EpisodeLimits()
        self.scorer = get_reward(reward) if reward is not None else env.reward
        self.info: dict[str, Any] = {"turns": 0, "tool_calls": 0}
        self.messages: list[Message] = []
        self.tools: list[dict[str, Any]] = []
        self.ended: str | None = None
        self.failure: str | None = None
        self.result: tuple[Sample, Outcome] | None = None
        self._token_count = (0, 0)  # (messages counted, their tokens)
        self._prepared: tuple[Sample, Outcome | None] | None = None  # the sample to score, once the episode is over
        self.start = time.monotonic()

    def open(self) -> bool:
        """Reset the environment; False (and the episode failed) when that raises."""
        try:
            messages, self.tools = self.env.reset(self.row)
            self.messages = list(messages)
        except Exception as error:  # noqa: BLE001 - a broken environment is an error outcome
            self.fail(f"environment reset failed: {type(error).__name__}: {error}")
            return False
        self.ended = _limit_reached(self._tokens(), self.info, self.limits, self.start)
        return True

    def _tokens(self) -> int:
        """The episode's tokens so far (`count_tokens`), each message counted once: messages are
        only ever appended, and a step must not recount the whole episode."""
        counted, total = self._token_count
        if counted > len(self.messages):  # someone shortened the list (a policy that edits it): count again
            counted, total = 0, 0
        if counted < len(self.messages):
            total += count_tokens(self.messages[counted:], self.limits.tokenizer)
            self._token_count = (len(self.messages), total)
        return total

    def fail(self, reason: str) -> None:
        self.failure, self.ended = reason, "error"

    def step(self, message: Message) -> list[Message]:
        """Add the policy's assistant `message`; the environment's replies (none when a limit
        stopped the episode before the environment saw it)."""
        message = dict(message)
        message.setdefault("role", "assistant")
        self.messages.append(message)
        self.info["turns"] += 1
        self.info["tool_calls"] += len(message.get("tool_calls") or [])
        if self.info["tool_calls"] > self.limits.max_tool_calls:
            self.ended = "max_tool_calls"
            return []
        try:
            replies, done = self.env.step(message)
        except Exception as error:  # noqa: BLE001
            self.fail(f"environment step failed: {type(error).__name__}: {error}")
            return []
        self.messages.extend(replies)
        self.ended = "done" if done else _limit_reached(self._tokens(), self.info, self.limits, self.start)
        return list(replies)

    def finish(self, scored: Outcome | None = None) -> tuple[Sample, Outcome]:
        """The finished episode and its Outcome; the environment closed (a close that fails makes
        the Outcome an error: what the episode held may still be running, not a result to train on).
        `scored`: the reward's Outcome for `to_score()`'s sample, from a caller that scores many
        episodes at once (the server, in its engine's workers); else the reward is called here."""
        if self.result is not None:
            return self.result
        try:
            sample, outcome = self._score(scored)
        finally:
            try:
                self.env.close()
                closed = None
            except Exception as error:  # noqa: BLE001
                closed = f"environment close failed: {type(error).__name__}: {error}"
        self.result = (sample, Outcome.error(closed, **self.info) if closed is not None else outcome)
        return self.result

    def _counts(self) -> dict[str, Any]:
        return {"turns": self.info["turns"], "tool_calls": self.info["tool_calls"]}

    def to_score(self) -> Sample | None:
        """The finished episode's Sample when its Outcome is the reward's to give, else None (a
        failure, a trajectory that is not valid, no reward: `finish` gives the error itself)."""
        sample, outcome = self._prepare()
        return sample if outcome is None else None

    def _prepare(self) -> tuple[Sample, Outcome | None]:
        if self._prepared is None:
            self._prepared = self._finished_sample()
        return self._prepared

    def _finished_sample(self) -> tuple[Sample, Outcome | None]:
        if self.failure is not None:
            return _partial(self.messages, self.row), Outcome.error(self.failure, **self._counts())
        info = self.info
        info["ended"] = self.ended
        info["tokens"] = self._tokens()
        info["wall_s"] = round(time.monotonic() - self.start, 4)
        try:
            sample = episode_sample(self.messages, self.row, self.tools)
        except SampleError as error:
            return _partial(self.messages, self.row), Outcome.error(f"the finished episode is not a valid trajectory: {error}", **info)
        if self.scorer is None:
            return sample, Outcome.error("the environment has no reward and none was given", **info)
        return sample, None

    def _score(self, scored: Outcome | None = None) -> tuple[Sample, Outcome]:
        sample, outcome = self._prepare()
        if outcome is not None:
            return sample, outcome
        if scored is not None:
            outcome = scored
        else:
            try:
                outcome = self.scorer.score_one(sample)  # type: ignore[union-attr]
            except Exception as error:  # noqa: BLE001
                failed = f"reward {getattr(self.scorer, 'name', self.scorer)!r} failed: {type(error).__name__}: {error}"
                return sample, Outcome.error(failed, **self.info)
        outcome.info.update({k: v for k, v in self.info.items() if k not in outcome.info})
        return sample, outcome


def _partial(messages: list[Message], row: dict[str, Any]) -> Sample:
    """The episode so far, for an outcome that is an error: as a Sample when it is a valid
    trajectory, else with the messages unchecked in ``meta["messages"]``."""
    try:
        return episode_sample(messages, row)
    except SampleError:
        return Sample(completion="", reference=row_reference(row), meta={**(row.get("meta") or {}), "messages": messages})


def _limit_reached(tokens: int, info: dict[str, Any], limits: EpisodeLimits, start: float) -> str | None:
    if info["turns"] >= limits.max_turns:
        return "max_turns"
    if time.monotonic() - start >= limits.wall_s:
        return "wall_s"
    if tokens >= limits.max_tokens:
        return "max_tokens"
    return None
