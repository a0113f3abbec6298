"""A scripted policy: the assistant messages of an episode, written in advance."""

from __future__ import annotations

import json
from typing import Any


def call(name: str, arguments: Any, call_id: str = "c1") -> dict[str, Any]:
    """An assistant message with one tool call (`arguments` a dict, or a raw string as written)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}]}


def say(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


class Scripted:
    """Plays `turns` in order; records what it was shown."""

    def __init__(self, *turns: dict[str, Any]) -> None:
        self.turns = list(turns)
        self.seen: list[list[dict[str, Any]]] = []
        self.tools: list[dict[str, Any]] = []

    def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        self.seen.append([dict(m) for m in messages])
        self.tools = tools
        if not self.turns:
            raise AssertionError("the script ran out of turns")
        return self.turns.pop(0)


def tool_messages(sample: Any) -> list[str]:
    return [m["content"] for m in sample.messages if m["role"] == "tool"]
