"""Episodes for the tests: valid trajectories and one of each kind of malformed one."""

from __future__ import annotations

import copy
import json
from typing import Any


def call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def calls(*made: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    return {"role": "assistant", "content": content, "tool_calls": list(made)}


def tool(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def say(role: str, content: Any) -> dict[str, Any]:
    return {"role": role, "content": content}


# A calculator episode: the model calls a tool twice (once in parallel), reads, answers.
CALC = [
    say("system", "You can call calc."),
    say("user", "What is 6*7 + 1?"),
    calls(call("c1", "calc", expression="6*7")),
    tool("c1", "42"),
    calls(call("c2", "calc", expression="42+1"), call("c3", "note", text="done"), content="Adding one."),
    tool("c2", "43"),
    tool("c3", "ok"),
    say("assistant", "The answer is \\boxed{43}"),
]

# name -> (messages, final assistant text, opening messages' count)
VALID: dict[str, tuple[list[dict[str, Any]], str, int]] = {
    "tool episode": (CALC, "The answer is \\boxed{43}", 2),
    "one turn": ([say("user", "hi"), say("assistant", "hello")], "hello", 1),
    "no prompt": ([say("assistant", "hello")], "hello", 0),
    "ends in a tool call": ([say("user", "q"), calls(call("a", "f"))], "", 1),
    "content parts": ([say("user", [{"type": "text", "text": "q"}]),
                       say("assistant", [{"type": "text", "text": "an"}, {"type": "text", "text": "swer"}])], "answer", 1),
    "retries": ([say("user", "q"), say("assistant", "1"), say("user", "wrong, try again"), say("assistant", "2")], "2", 1),
}


def _edit(index: int, **changes: Any) -> list[dict[str, Any]]:
    messages = copy.deepcopy(CALC)
    messages[index].update(changes)
    return messages


# name -> (messages, a phrase the error must hold)
MALFORMED: dict[str, tuple[Any, str]] = {
    "not a list": ({"role": "user"}, "'messages' must be a list of messages, got dict"),
    "message not an object": ([say("user", "q"), "hello"], "messages[1]: expected an object, got str"),
    "unknown role": ([say("user", "q"), say("robot", "x")], "messages[1]: unknown role 'robot'"),
    "missing role": ([{"content": "x"}, say("assistant", "a")], "messages[0]: unknown role None"),
    "content a number": ([say("user", 7), say("assistant", "a")], "messages[0]: 'content' must be a string or a list"),
    "user content None": ([say("user", None), say("assistant", "a")], "messages[0]: 'content' must be"),
    "assistant with nothing": ([say("user", "q"), say("assistant", None)], "messages[1]: an assistant message needs content or tool_calls"),
    "bad content part": ([say("user", [{"text": "q"}]), say("assistant", "a")], "messages[0]: content part 0"),
    "no assistant turn": ([say("user", "q")], "holds no assistant turn"),
    "empty": ([], "holds no assistant turn"),
    "tool without its call": ([say("user", "q"), tool("zz", "4"), say("assistant", "a")],
                              "messages[1]: tool message answers 'zz', which no earlier assistant turn called"),
    "tool before its call": ([say("user", "q"), tool("c1", "4"), calls(call("c1", "f")), say("assistant", "a")],
                             "messages[1]: tool message answers 'c1'"),
    "tool answered twice": (CALC[:4] + [tool("c1", "again"), say("assistant", "a")], "messages[4]: a second tool message for call 'c1'"),
    "tool without id": ([say("user", "q"), calls(call("c1", "f")), {"role": "tool", "content": "4"}, say("assistant", "a")],
                        "messages[2]: a tool message needs a 'tool_call_id' string"),
    "duplicate call id": (_edit(4, tool_calls=[call("c1", "calc", expression="1")]), "messages[4]: duplicate tool call id 'c1'"),
    "duplicate id in one turn": ([say("user", "q"), calls(call("x", "f"), call("x", "g")), say("assistant", "a")],
                                 "messages[1]: duplicate tool call id 'x'"),
    "arguments not JSON": (_edit(2, tool_calls=[{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "{6*7"}}]),
                           "messages[2].tool_calls[0]: function.arguments is not JSON"),
    "arguments a dict": (_edit(2, tool_calls=[{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": {}}}]),
                         "messages[2].tool_calls[0]: function.arguments must be a JSON string, got dict"),
    "arguments a JSON list": (_edit(2, tool_calls=[{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "[1]"}}]),
                              "function.arguments must be a JSON object, got list"),
    "call without name": (_edit(2, tool_calls=[{"id": "c1", "type": "function", "function": {"arguments": "{}"}}]),
                          "messages[2].tool_calls[0]: needs 'function' with a 'name' string"),
    "call without id": (_edit(2, tool_calls=[{"type": "function", "function": {"name": "f", "arguments": "{}"}}]),
                        "messages[2].tool_calls[0]: needs an 'id' string"),
    "call of wrong type": (_edit(2, tool_calls=[{"id": "c1", "type": "retrieval", "function": {"name": "f", "arguments": "{}"}}]),
                           "type must be 'function'"),
    "tool_calls not a list": (_edit(2, tool_calls={"id": "c1"}), "messages[2]: 'tool_calls' must be a list"),
    "tool_calls on a user turn": ([{"role": "user", "content": "q", "tool_calls": [call("a", "f")]}, say("assistant", "a")],
                                  "messages[0]: only an assistant message may carry tool_calls"),
}
