"""Episode rollouts: the policy plays many episodes at once, one batched generation per turn over
every live episode, the environments answering in between.

Each episode's context is token ids, never text that is tokenized again: the opening (the
environment's first messages and its tool schemas, through the chat template) is tokenized once,
then every turn appends the ids the policy sampled (loss mask 1) and the tokenized text the
environment wrote after them (its tool or user messages and the next turn's opening, mask 0;
`payoff.models.tool_text.render_replies`). So the ids trained on are exactly the ids sampled.

A turn's text becomes an assistant message by `payoff.models.tool_text.parse_tool_calls`; the
environments step concurrently in a thread pool (tools that wait on a process, SQLite or a
sandbox release the GIL); a failing reset, step or close ends that episode with an ``error``
outcome.

With ``overlap`` the episodes are split into two fixed cohorts (the first and the second half of
``rows``) that take turns: while one cohort's environments step in the pool, the other cohort
generates its next turn, so slow tools hide behind generation. Which episodes share a generation
call, and the order of the calls, depend only on the rows and on what the environments answered,
never on timing: a seeded run samples the same ids with or without the machine busy (given
environments that draw only from their own seeded state, not the process's global RNGs, which
generation also draws from). The cost is a generation batch half as wide, which on a CPU is not
much faster per token than the whole one: worth it only when a turn's tools take about as long
as a turn's generation (a Python session, a sandbox), not for a calculator.

Limits (`payoff.rl.config.EnvConfig`): assistant turns, tool calls, total tokens (prompt and
completion ids, exactly), and wall time.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from payoff.core import Outcome, Sample, SampleError
from payoff.envs import get_env
from payoff.envs.base import Environment, Message
from payoff.envs.runner import episode_sample, row_reference
from payoff.episode import final_text as episode_final_text
from payoff.episode import is_tool_error
from payoff.models.rollout import Generator, Rollouts, SamplingParams
from payoff.models.tool_text import parse_tool_calls, render_opening, render_replies


@dataclass
class EpisodeRecord:
    """One played episode: its trajectory, its ids and where each assistant turn ends in them."""

    row: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # everything after the prompt
    mask: list[int] = field(default_factory=list)  # 1: sampled by the policy; 0: written by the environment
    turn_ends: list[int] = field(default_factory=list)  # index in `ids` of each assistant turn's last sampled token
    sampled: list[list[int]] = field(default_factory=list)  # each turn's sampled ids, as the generator returned them
    tool_calls: int = 0
    tool_errors: int = 0
    ended: str | None = None  # done, max_turns, max_tool_calls, max_tokens, wall_s, error
    error: str | None = None
    truncated: bool = False  # the last turn hit max_new_tokens
    seconds_env: float = 0.0
    correct: bool | None = None  # the verdict on the final answer, once scored
    first_correct: bool | None = None  # the verdict on the first answer
    started: float = field(default_factory=time.monotonic)
    env: Any = None

    @property
    def turns(self) -> int:
        return len(self.turn_ends)

    @property
    def policy_tokens(self) -> int:
        return sum(self.mask)

    @property
    def env_tokens(self) -> int:
        return len(self.mask) - sum(self.mask)

    def answers(self) -> list[Message]:
        """The assistant turns that answer (call no tool)."""
        return [m for m in self.messages if m.get("role") == "assistant" and not m.get("tool_calls")]


@dataclass
class Limits:
    max_turns: int = 4
    max_tool_calls: int = 8
    max_tokens: int = 1024
    wall_s: float | None = None  # None: no wall limit (the run then does not depend on the machine's speed)


def env_factory(name: str, options: dict[str, Any], reward: str | None = None) -> Callable[[int], Environment]:
    """``make(seed)``: a fresh environment `name` with `options`; `seed` is passed to factories
    that take one (an environment that draws at random is then re-seeded the same way when a
    resumed run redoes a step)."""
    from payoff.envs import ENVS

    if name not in ENVS:
        raise KeyError(f"no environment named {name!r}; registered: {', '.join(sorted(ENVS))}")
    factory = ENVS[name][0]
    try:
        takes_seed = "seed" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_seed = False

    def make(seed: int) -> Environment:
        extra = {"seed": seed} if takes_seed and "seed" not in options else {}
        return get_env(name, reward=reward, **options, **extra)

    return make


def play(generator: Generator, tokenizer: Any, rows: Sequence[dict[str, Any]], make_env: Callable[[int], Environment],
         params: SamplingParams, limits: Limits, seed: int = 0, greedy: bool = False, chat_template: bool = True,
         system: str | None = None, workers: int = 8, overlap: bool = False) -> tuple[list[EpisodeRecord], dict[str, float]]:
    """One episode per row (repeat a row for a group), played to the end. Returns the records and
    the seconds: ``generate`` (in generation calls), ``env`` (waiting for the environments: their
    resets, steps and closes not hidden behind generation) and ``env_hidden`` (environment steps
    that ran while a generation call did; 0 without ``overlap``). Environments are closed before
    it returns, whatever happened."""
    records = [EpisodeRecord(row=dict(row)) for row in rows]
    seconds = {"generate": 0.0, "env": 0.0, "env_hidden": 0.0}
    eos_ids = set(getattr(generator, "eos_ids", None) or [tokenizer.eos_token_id])
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="payoff-env") as pool:
        began = time.perf_counter()
        list(pool.map(lambda pair: _open(pair[1], make_env, seed * 100_003 + pair[0], tokenizer, limits, chat_template, system),
                      enumerate(records)))
        seconds["env"] += time.perf_counter() - began
        half = (len(records) + 1) // 2
        cohorts = [records[:half], records[half:]] if overlap and len(records) > 1 else [records]
        pending: list[tuple[list[EpisodeRecord], list[Any]] | None] = [None] * len(cohorts)
        try:
            while any(r.ended is None for r in records) or any(pending):
                for c, cohort in enumerate(cohorts):
                    if pending[c] is not None:  # this cohort's environments, stepping since its last turn
                        stepping, futures = pending[c]
                        pending[c] = None
                        began = time.perf_counter()
                        replies = [future.result() for future in futures]
                        seconds["env"] += time.perf_counter() - began
                        for record, reply in zip(stepping, replies):
                            _after_step(record, reply, tokenizer, limits, eos_ids, chat_template)
                    live = [r for r in cohort if r.ended is None]
                    if not live:
                        continue
                    stepping_others = [(p[1], time.perf_counter()) for p in pending if p is not None]
                    began = time.perf_counter()
                    out = generator.generate_ids([r.prompt_ids + r.ids for r in live], params, greedy)
                    seconds["generate"] += time.perf_counter() - began
                    seconds["env_hidden"] += sum(_busy_since(futures, since) for futures, since in stepping_others)
                    for record, ids, truncated in zip(live, out.completion_ids, out.truncated):
                        _take_turn(record, list(ids), truncated, tokenizer, limits)
                    stepping = [r for r in live if r.ended is None]
                    pending[c] = (stepping, [pool.submit(_step, r) for r in stepping])
        finally:
            running = [f for entry in pending if entry for f in entry[1] if not f.cancel()]  # after an error
            wait(running)  # an environment is never closed while it steps
            began = time.perf_counter()
            list(pool.map(_close, records))
            seconds["env"] += time.perf_counter() - began
    return records, seconds


def _busy_since(futures: list[Any], since: float) -> float:
    """Seconds of environment stepping (the longest step among `futures`) that fell after `since`:
    the part of it a generation call started at `since` hid. Steps still running count up to now."""
    now = time.perf_counter()
    ends = [f.result()[4] if f.done() else now for f in futures]
    return max([0.0, *(min(end, now) - since for end in ends)])


def _open(record: EpisodeRecord, make_env: Callable[[int], Environment], seed: int, tokenizer: Any, limits: Limits,
          chat_template: bool, system: str | None) -> None:
    try:
        record.env = make_env(seed)
        messages, tools = record.env.reset(record.row)
    except Exception as error:  # noqa: BLE001 - a broken environment is this episode's error
        record.ended, record.error = "error", f"environment reset failed: {type(error).__name__}: {error}"
        return
    messages = [dict(m) for m in messages]
    if system is not None and (not messages or messages[0].get("role") != "system"):
        messages = [{"role": "system", "content": system}, *messages]
    record.messages, record.tools = messages, list(tools)
    text = render_opening(tokenizer, messages, record.tools, chat_template)
    record.prompt_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(record.prompt_ids) >= limits.max_tokens:
        record.ended, record.error = "error", f"the opening alone is {len(record.prompt_ids)} tokens (max_tokens {limits.max_tokens})"


def _take_turn(record: EpisodeRecord, ids: list[int], truncated: bool, tokenizer: Any, limits: Limits) -> None:
    """Append one sampled turn (cut to the token budget) and parse it into an assistant message."""
    room = limits.max_tokens - len(record.prompt_ids) - len(record.ids)
    cut = len(ids) > room
    ids = ids[:max(room, 0)]
    record.sampled.append(list(ids))
    record.ids += ids
    record.mask += [1] * len(ids)
    record.turn_ends.append(len(record.ids) - 1)
    record.truncated = truncated or cut
    message = parse_tool_calls(tokenizer.decode(ids, skip_special_tokens=True), record.turns - 1)
    record.messages.append(message)
    record.tool_calls += len(message.get("tool_calls") or [])
    if cut:
        record.ended = "max_tokens"
    elif record.tool_calls > limits.max_tool_calls:
        record.ended = "max_tool_calls"


def _step(record: EpisodeRecord) -> tuple[list[Message], bool, str | None, float, float]:
    """The environment's reply to the last turn: replies, done, an error, seconds, and when it ended."""
    began = time.perf_counter()
    try:
        replies, done = record.env.step(record.messages[-1])
        ended = time.perf_counter()
        return [dict(m) for m in replies], bool(done), None, ended - began, ended
    except Exception as error:  # noqa: BLE001
        ended = time.perf_counter()
        return [], True, f"environment step failed: {type(error).__name__}: {error}", ended - began, ended


def _after_step(record: EpisodeRecord, reply: tuple[list[Message], bool, str | None, float, float], tokenizer: Any,
                limits: Limits, eos_ids: set[int], chat_template: bool) -> None:
    replies, done, error, spent, _ = reply
    record.seconds_env += spent
    if error is not None:
        record.ended, record.error = "error", error
        return
    record.messages += replies
    record.tool_errors += sum(1 for m in replies if m.get("role") == "tool" and is_tool_error(m))
    if done:
        record.ended = "done"
        return
    if record.turns >= limits.max_turns:
        record.ended = "max_turns"
        return
    if limits.wall_s is not None and time.monotonic() - record.started >= limits.wall_s:
        record.ended = "wall_s"
        return
    finished = bool(record.ids) and record.ids[-1] in eos_ids
    text = render_replies(tokenizer, replies, finished, chat_template)
    written = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(record.prompt_ids) + len(record.ids) + len(written) >= limits.max_tokens:
        record.ended = "max_tokens"  # no room left for the policy to answer
        return
    record.ids += written
    record.mask += [0] * len(written)


def _close(record: EpisodeRecord) -> None:
    if record.env is None:
        return
    try:
        record.env.close()
    except Exception as error:  # noqa: BLE001 - what it held may still run: not a result to train on
        record.ended, record.error = "error", f"environment close failed: {type(error).__name__}: {error}"
    record.env = None


def to_rollouts(records: Sequence[EpisodeRecord]) -> Rollouts:
    """The episodes as rollouts: prompt ids, completion ids (every turn, sampled and written),
    the final answer's text and the loss masks."""
    roll = Rollouts()
    for record in records:
        roll.prompt_ids.append(record.prompt_ids)
        roll.completion_ids.append(record.ids)
        roll.texts.append(final_text(record))
        roll.truncated.append(record.truncated)
        roll.loss_masks.append(record.mask)
    return roll


def final_text(record: EpisodeRecord) -> str:
    """The final assistant text, as `payoff.core.Sample` derives it from the trajectory."""
    return episode_final_text(record.messages) if any(m.get("role") == "assistant" for m in record.messages) else ""


def to_sample(record: EpisodeRecord, group: int | None, step: int) -> tuple[Sample, Outcome | None]:
    """The finished episode as a Sample, and an ``error`` Outcome when it is not one to score (an
    environment failed, no turn was played, the trajectory is malformed)."""
    meta = {**(record.row.get("meta") or {}), "step": step, "turns": record.turns, "tool_calls": record.tool_calls,
            "ended": record.ended, "policy_tokens": record.policy_tokens, "env_tokens": record.env_tokens,
            "truncated": record.truncated}
    row = {**record.row, "meta": meta}
    info = {"turns": record.turns, "tool_calls": record.tool_calls, "ended": record.ended}
    if record.error is None and record.turns:
        try:
            sample = episode_sample(record.messages, row, record.tools)
            sample.group = group
            return sample, None
        except SampleError as error:
            problem = f"the finished episode is not a valid trajectory: {error}"
    else:
        problem = record.error or "the episode ended before its first turn"
    sample = Sample(completion=final_text(record), reference=row_reference(record.row), meta={**meta, "messages": record.messages},
                    group=group)
    return sample, Outcome.error(problem, **info)
