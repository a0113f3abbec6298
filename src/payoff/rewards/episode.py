"""Rewards over episodes: the tool calls an episode made, what its turns and calls cost, per-turn
rewards gated on the outcome (G-RA), and reward by the attempt that succeeded ("Try Again").

Each reads only what the model wrote (the assistant turns and their tool calls) plus what the
tools answered; each puts its per-turn rewards in ``info["turn_rewards"]``, one per assistant
turn, beside ``info["step_rewards"]`` of the process rewards. ToolRL's correctness against
reference calls is the `tool_call` reward (payoff/rewards/code_text.py), which reads an episode's
calls when the sample has messages.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le

from payoff.core import Outcome, Reward, Sample, reward
from payoff.episode import argument_errors, assistant_turns, is_tool_error, text_of, tool_calls


def _episode(sample: Sample) -> list[dict[str, Any]] | None:
    return sample.messages


def _schemas(tools: Any) -> dict[str, dict[str, Any]] | None:
    """Tool name -> parameter schema, from OpenAI tool definitions ({"type": "function",
    "function": {"name", "parameters"}}) or plain {"name", "parameters"}; None if unreadable."""
    if not isinstance(tools, list):
        return None
    schemas = {}
    for tool in tools:
        spec = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return None
        schemas[spec["name"]] = spec.get("parameters") or {}
    return schemas


def _results(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["tool_call_id"]: m for m in messages if m.get("role") == "tool"}


@reward(name="tool_call_validity")
def tool_call_validity(sample: Sample) -> Outcome:
    """The share of an episode's tool calls that were valid: a known tool, arguments that satisfy
    its parameter schema, and a result that is not an error (ToolRL's format term, Qian et al.
    2025, for episodes in the OpenAI format, whose structure the contract already checks).

    score = (1/C) * sum_c valid(c) over the C calls; the tools are ``meta["tools"]`` (OpenAI tool
    definitions); without them only the results are checked. ``turn_rewards[t]`` is the share of
    turn t's calls that were valid (1 for a turn that calls nothing). No call: abstain (nothing
    to judge); a plain completion (no messages): abstain.
    """
    messages = _episode(sample)
    if messages is None:
        return Outcome.abstain("no episode: the sample has no messages")
    schemas = None
    if "tools" in sample.meta:
        schemas = _schemas(sample.meta["tools"])
        if schemas is None:
            return Outcome.abstain("meta['tools'] is not a list of tool definitions with names")
    calls = tool_calls(messages)
    if not calls:
        return Outcome.abstain("the episode makes no tool call")
    results = _results(messages)
    counts = {"unknown_tool": 0.0, "bad_arguments": 0.0, "tool_error": 0.0, "unanswered": 0.0}
    per_turn: list[list[float]] = [[] for _ in assistant_turns(messages)]
    problems = []
    for call in calls:
        problem = None
        if schemas is not None and call.name not in schemas:
            problem, key = f"unknown tool {call.name!r}", "unknown_tool"
        elif schemas is not None and (errors := argument_errors(call.arguments, schemas[call.name])):
            problem, key = "; ".join(errors), "bad_arguments"
        elif call.id not in results:
            problem, key = "no tool message answers it", "unanswered"
        elif is_tool_error(results[call.id]):
            problem, key = text_of(results[call.id].get("content"))[:200], "tool_error"
        if problem is not None:
            counts[key] += 1
            problems.append(f"{call.id} ({call.name}): {problem}")
        per_turn[call.turn].append(float(problem is None))
    valid = sum(1 for turn in per_turn for v in turn if v)
    turn_rewards = [sum(turn) / len(turn) if turn else 1.0 for turn in per_turn]
    return Outcome.ok(valid / len(calls), {"calls": float(len(calls)), "valid": float(valid), **counts},
                      turn_rewards=turn_rewards, problems=problems[:20])


@reward(name="episode_cost")
def episode_cost(
    sample: Sample,
    turn_cost: Annotated[float, Ge(0)] = 1.0,
    call_cost: Annotated[float, Ge(0)] = 1.0,
    prices: dict[str, float] | None = None,
    budget: Annotated[float, Gt(0)] = 10.0,
) -> Outcome:
    """What an episode spent, as a penalty in [-1, 0] (Router-R1's cost reward, Zhang et al.
    2025, which charges each routed call by its model's price; payoff charges turns and tool
    calls).

    cost = turn_cost * T + sum_c price(c), with T assistant turns and price(c) = prices[name] or
    call_cost; score = -min(1, cost / budget). Router-R1's whole reward,
    R_format + (1 - alpha) * R_outcome + alpha * R_cost, is a Rubric of the answer reward (weight
    1 - alpha) and this one (weight alpha). ``turn_rewards[t]`` = -(turn_cost + the prices of
    turn t's calls) / budget. A plain completion is one turn and no call.
    """
    price = dict(prices or {})
    messages = _episode(sample) or [{"role": "assistant", "content": sample.completion}]
    turns = assistant_turns(messages)
    per_turn = [turn_cost] * len(turns)
    calls = tool_calls(messages)
    for call in calls:
        per_turn[call.turn] += float(price.get(call.name, call_cost))
    cost = sum(per_turn)
    return Outcome.ok(-min(1.0, cost / budget), {"turns": float(len(turns)), "tool_calls": float(len(calls)), "cost": cost},
                      turn_rewards=[-c / budget for c in per_turn])


@functools.lru_cache(maxsize=32)
def _named(name: str) -> Reward:
    # By name through the registry, as the library's verifiers are: a reward that wraps another
    # keeps plain, picklable parameters (the wrapped reward's name).
    from payoff.registry import get_reward

    return get_reward(name)


def _tool_success(messages: list[dict[str, Any]], weight: float) -> list[float]:
    """Per assistant turn: weight x the share of its calls whose result is not an error (0 for
    a turn that calls nothing)."""
    results = _results(messages)
    per_turn: list[list[float]] = [[] for _ in assistant_turns(messages)]
    for call in tool_calls(messages):
        answered = results.get(call.id)
        per_turn[call.turn].append(float(answered is not None and not is_tool_error(answered)))
    return [weight * sum(t) / len(t) if t else 0.0 for t in per_turn]


@reward(name="gated_turns")
def gated_turns(
    sample: Sample,
    outcome: str = "math",
    threshold: float = 1.0,
    turn_weight: Annotated[float, Ge(0)] = 0.1,
) -> Outcome:
    """Dense per-turn rewards that count only once the episode's outcome passes its gate (G-RA,
    "Stabilizing Long-term Multi-turn RL with Gated Rewards", 2025).

    R = R_outcome + 1[R_outcome >= threshold] * sum_t r_t, with R_outcome the `outcome` reward
    (a registered name) on the final answer and r_t the immediate reward of assistant turn t:
    ``meta["turn_rewards"]`` when the environment gave them (one number per assistant turn),
    else turn_weight x the share of turn t's tool calls that returned without error.
    ``turn_rewards`` holds the gated r_t (all 0 when the gate is shut). An outcome that is not ok
    is passed on as it is.
    """
    messages = _episode(sample) or [{"role": "assistant", "content": sample.completion}]
    given = sample.meta.get("turn_rewards")
    turns = len(assistant_turns(messages))
    if given is not None:
        if (not isinstance(given, list) or len(given) != turns
                or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in given)):
            return Outcome.error(f"meta['turn_rewards'] must be {turns} numbers, one per assistant turn")
        immediate = [float(r) for r in given]
    else:
        immediate = _tool_success(messages, turn_weight)
    base = _named(outcome).score_one(sample)
    if not base.is_ok:
        return base
    assert base.score is not None
    opened = base.score >= threshold
    gated = [r if opened else 0.0 for r in immediate]
    return Outcome.ok(base.score + sum(gated), {"outcome": base.score, "gate": float(opened), "turns": sum(immediate)},
                      turn_rewards=gated)


@reward(name="try_again")
def try_again(
    sample: Sample,
    outcome: str = "math",
    threshold: float = 1.0,
    gamma: Annotated[float, Gt(0), Le(1)] = 0.5,
) -> Outcome:
    """Reward by the attempt that succeeded, discounted per retry ("A Simple 'Try Again' Can
    Elicit Multi-Turn LLM Reasoning", UFO, 2025): after a wrong answer the user says to try again.

    Each assistant turn with text is an attempt, scored alone by the `outcome` reward (a
    registered name); with t the first attempt (from 1) scoring >= threshold,
    R = gamma^(t - 1), else 0. ``turn_rewards`` holds R on the turn that succeeded, 0 elsewhere.
    Components: attempts, solved_at (t, 0 if never), first_try (1 if t = 1). An attempt whose
    outcome is not ok (before any success) is passed on, naming the attempt.
    """
    messages = _episode(sample) or [{"role": "assistant", "content": sample.completion}]
    turns = assistant_turns(messages)
    scorer = _named(outcome)
    turn_rewards = [0.0] * len(turns)
    attempts = 0
    for index, turn in enumerate(turns):
        text = text_of(turn.get("content"))
        if not text.strip():
            continue  # a turn that only calls tools is not an answer
        attempts += 1
        verdict = scorer.score_one(Sample(text, sample.prompt, sample.reference, sample.meta, sample.group))
        if not verdict.is_ok:
            verdict.info["attempt"] = attempts
            return verdict
        assert verdict.score is not None
        if verdict.score >= threshold:
            value = gamma ** (attempts - 1)
            turn_rewards[index] = value
            return Outcome.ok(value, {"attempts": float(attempts), "solved_at": float(attempts), "first_try": float(attempts == 1)},
                              turn_rewards=turn_rewards)
    return Outcome.ok(0.0, {"attempts": float(attempts), "solved_at": 0.0, "first_try": 0.0}, turn_rewards=turn_rewards)
