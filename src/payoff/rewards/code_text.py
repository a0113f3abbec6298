"""Rewards on structured model output: patches (SWE-RL) and tool calls (ToolRL, Router-R1)."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from typing import Annotated, Any

from annotated_types import Ge

from payoff.core import Outcome, Sample, reward
from payoff.episode import tool_calls
from payoff.rewards.common import after_reasoning

_DIFF_FENCE = re.compile(r"```(?:diff|patch)\s*\n(.*?)```", re.DOTALL)
_DIFF_START = re.compile(r"^(?:diff --git |--- |\+\+\+ |@@ )", re.MULTILINE)


def extract_patch(text: str) -> str | None:
    """A unified diff from a ```diff fence, or from the first diff header on."""
    fenced = _DIFF_FENCE.findall(text)
    if fenced:
        return fenced[-1].strip("\n")
    start = _DIFF_START.search(text)
    return text[start.start() :].strip("\n") if start else None


@reward(name="patch_similarity")
def patch_similarity(sample: Sample) -> Outcome:
    """SWE-RL (Wei et al. 2025): difflib.SequenceMatcher(None, predicted, gold).ratio() between
    the predicted and the reference patch; -1 when the completion holds no parsable patch."""
    gold = str(sample.reference or "").strip("\n")
    if not gold:
        return Outcome.abstain("no reference patch")
    predicted = extract_patch(after_reasoning(sample.completion))
    if predicted is None:
        return Outcome.ok(-1.0, rule="no_patch")
    return Outcome.ok(difflib.SequenceMatcher(None, predicted, gold).ratio())


_TOOL_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


def parse_tool_calls(value: Any) -> list[dict[str, Any]]:
    """Tool calls as [{"name", "arguments": dict}] from OpenAI tool-call JSON
    ({"type": "function", "function": {"name", "arguments": "<json>"}}), a plain
    {"name", "arguments"} object or list, or ``<tool_call>`` blocks. Raises ValueError."""
    if isinstance(value, str):
        blocks = _TOOL_BLOCK.findall(value)
        texts = blocks or [value]
        calls: list[dict[str, Any]] = []
        for text in texts:
            try:
                calls.extend(parse_tool_calls(json.loads(text.strip())))
            except json.JSONDecodeError as error:
                raise ValueError(f"tool call is not JSON: {error.msg}") from error
        return calls
    if isinstance(value, dict):
        if "tool_calls" in value:
            return parse_tool_calls(value["tool_calls"])
        if "function" in value:
            value = value["function"]
        name, arguments = value.get("name"), value.get("arguments", {})
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise ValueError("a tool call needs a string name and object arguments")
        return [{"name": name, "arguments": arguments}]
    if isinstance(value, list):
        return [call for item in value for call in parse_tool_calls(item)]
    raise ValueError(f"cannot read tool calls from {type(value).__name__}")


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _multiset_jaccard(a: list[str], b: list[str]) -> float:
    """ToolRL's name overlap: a name called twice counts twice, so an extra call costs."""
    if sorted(a) == sorted(b):
        return 1.0
    both = sum((Counter(a) & Counter(b)).values())
    return both / (len(a) + len(b) - both)


@reward(name="tool_call")
def tool_call(sample: Sample, cost_weight: Annotated[float, Ge(0)] = 0.0, cost_per_call: Annotated[float, Ge(0)] = 1.0) -> Outcome:
    """ToolRL (Qian et al. 2025): format (0/1) + correctness in [-3, 3].

    Correctness = 6 * (r_name + r_params + r_values) / R_max - 3, where r_name is the Jaccard of
    the tool names (as multisets: a repeated call counts), r_params sums the Jaccard of parameter
    names over name-matched calls (each gold call takes the best unused call of its name, by
    r_params + r_values, as ToolRL's code does), r_values counts exactly matching parameter
    values, and R_max = 1 + |gold calls| + |gold parameters|. The predicted calls are an
    episode's tool calls (all assistant turns) when the sample has messages, else those written
    in the completion. Router-R1's cost term, - cost_weight * cost_per_call * |predicted calls|,
    is off by default.
    """
    try:
        gold = parse_tool_calls(sample.reference)
    except (ValueError, json.JSONDecodeError) as error:
        return Outcome.abstain(f"reference tool calls unreadable: {error}")
    try:
        if sample.messages is not None:  # the contract has checked the calls: the format holds
            predicted = [{"name": c.name, "arguments": c.arguments} for c in tool_calls(sample.messages)]
        else:
            predicted = parse_tool_calls(sample.completion)
        format_ok = 1.0
    except (ValueError, json.JSONDecodeError) as error:
        return Outcome.ok(-3.0, {"format": 0.0, "correctness": -3.0}, error=str(error)[:200])
    names_score = _multiset_jaccard([c["name"] for c in gold], [c["name"] for c in predicted])
    params_score = values_score = 0.0
    unmatched = list(predicted)
    for call in gold:
        scored = [(_jaccard(set(call["arguments"]), set(p["arguments"])),
                   sum(1.0 for k, v in call["arguments"].items() if k in p["arguments"] and p["arguments"][k] == v), i)
                  for i, p in enumerate(unmatched) if p["name"] == call["name"]]
        if not scored:
            continue
        params, values, best = max(scored, key=lambda t: (t[0] + t[1], -t[2]))
        del unmatched[best]
        params_score += params
        values_score += values
    r_max = 1 + len(gold) + sum(len(c["arguments"]) for c in gold)
    correctness_score = 6.0 * (names_score + params_score + values_score) / r_max - 3.0
    cost = cost_weight * cost_per_call * len(predicted)
    components = {"format": format_ok, "correctness": correctness_score, "name": names_score, "params": params_score, "values": values_score}
    if cost_weight:
        components["cost"] = -cost
    return Outcome.ok(format_ok + correctness_score - cost, components)
