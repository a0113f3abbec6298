"""Episodes: a whole multi-turn, tool-using trajectory in the OpenAI chat format, checked and read.

A trajectory is a list of messages with roles ``system``, ``user``, ``assistant`` and ``tool``.
An assistant message may call tools (``tool_calls``: each with an ``id``, ``type`` "function" and
``function`` {``name``, ``arguments``: a JSON string}); its ``content`` may then be None. A ``tool``
message answers one earlier call by its ``tool_call_id``. What the model wrote is only ever the
assistant turns: the helpers here never hand a tool's or the user's text out as the model's.

It imports nothing of payoff, so the contract (`payoff.core`) can build on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ROLES = ("system", "user", "assistant", "tool")


class EpisodeError(ValueError):
    """A trajectory that is not a valid episode; the message names the message index."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call an assistant turn made: `turn` counts assistant turns from 0, `index` is the
    message's position in the trajectory, `arguments` the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]
    turn: int
    index: int


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """`messages` if it is a valid episode, else an `EpisodeError` that says which message and
    what is wrong: not a list, a message that is not an object, an unknown role, content of the
    wrong type, a malformed tool call or arguments that are not a JSON object, a duplicate call
    id, a tool message that answers no earlier call (or one already answered), no assistant turn."""
    if not isinstance(messages, list):
        raise EpisodeError(f"'messages' must be a list of messages, got {type(messages).__name__}")
    called: set[str] = set()
    answered: set[str] = set()
    assistants = 0
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise EpisodeError(f"{where}: expected an object, got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise EpisodeError(f"{where}: unknown role {role!r} (expected one of {', '.join(ROLES)})")
        content = message.get("content")
        if role == "assistant":
            assistants += 1
            calls = message.get("tool_calls") or []
            if content is None and not calls:
                raise EpisodeError(f"{where}: an assistant message needs content or tool_calls")
            _check_content(content, where, allow_none=True)
            for call_id in _check_calls(calls, where):
                if call_id in called:
                    raise EpisodeError(f"{where}: duplicate tool call id {call_id!r}")
                called.add(call_id)
        else:
            _check_content(content, where, allow_none=False)
            if "tool_calls" in message and message["tool_calls"]:
                raise EpisodeError(f"{where}: only an assistant message may carry tool_calls, not a {role} message")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise EpisodeError(f"{where}: a tool message needs a 'tool_call_id' string")
            if call_id not in called:
                raise EpisodeError(f"{where}: tool message answers {call_id!r}, which no earlier assistant turn called")
            if call_id in answered:
                raise EpisodeError(f"{where}: a second tool message for call {call_id!r}")
            answered.add(call_id)
    if not assistants:
        raise EpisodeError("'messages' holds no assistant turn")
    return messages


def _check_content(content: Any, where: str, allow_none: bool) -> None:
    if content is None and allow_none or isinstance(content, str):
        return
    if isinstance(content, list):  # OpenAI content parts: [{"type": "text", "text": ...}, ...]
        for number, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise EpisodeError(f"{where}: content part {number} must be an object with a 'type'")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                raise EpisodeError(f"{where}: text content part {number} needs a 'text' string")
        return
    raise EpisodeError(f"{where}: 'content' must be a string or a list of content parts, got {type(content).__name__}")


def _check_calls(calls: Any, where: str) -> list[str]:
    if not isinstance(calls, list):
        raise EpisodeError(f"{where}: 'tool_calls' must be a list, got {type(calls).__name__}")
    ids = []
    for number, call in enumerate(calls):
        at = f"{where}.tool_calls[{number}]"
        if not isinstance(call, dict):
            raise EpisodeError(f"{at}: expected an object, got {type(call).__name__}")
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise EpisodeError(f"{at}: needs an 'id' string")
        if call.get("type", "function") != "function":
            raise EpisodeError(f"{at}: type must be 'function', got {call.get('type')!r}")
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise EpisodeError(f"{at}: needs 'function' with a 'name' string")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            raise EpisodeError(f"{at}: function.arguments must be a JSON string, got {type(arguments).__name__}")
        try:
            parsed = json.loads(arguments)
        except ValueError as error:
            raise EpisodeError(f"{at}: function.arguments is not JSON ({error})") from None
        if not isinstance(parsed, dict):
            raise EpisodeError(f"{at}: function.arguments must be a JSON object, got {type(parsed).__name__}")
        if call["id"] in ids:
            raise EpisodeError(f"{where}: duplicate tool call id {call['id']!r}")
        ids.append(call["id"])
    return ids


def text_of(content: Any) -> str:
    """A message's content as text: a string as it is, the text parts of a list joined, None as ""."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return ""


def assistant_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The assistant messages, in order: what the model wrote (turn i is the i-th of these)."""
    return [m for m in messages if m.get("role") == "assistant"]


def final_text(messages: list[dict[str, Any]]) -> str:
    """The last assistant turn's text ("" when that turn only calls tools): the episode's answer."""
    turns = assistant_turns(messages)
    return text_of(turns[-1].get("content")) if turns else ""


def opening(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages before the first assistant turn: the episode's prompt."""
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            return messages[:index]
    return list(messages)


def tool_calls(messages: list[dict[str, Any]]) -> list[ToolCall]:
    """Every tool call of the episode, in order, with its arguments parsed (the episode must have
    passed `check_messages`)."""
    calls = []
    turn = -1
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        turn += 1
        for call in message.get("tool_calls") or []:
            function = call["function"]
            calls.append(ToolCall(call["id"], function["name"], json.loads(function["arguments"]), turn, index))
    return calls


def tool_result(messages: list[dict[str, Any]], call_id: str) -> str | None:
    """The text the tool returned for call `call_id`, or None if no tool message answers it."""
    for message in messages:
        if message.get("role") == "tool" and message.get("tool_call_id") == call_id:
            return text_of(message.get("content"))
    return None


def turn_texts(messages: list[dict[str, Any]]) -> list[str]:
    """The text of each assistant turn, in order ("" for a turn that only calls tools)."""
    return [text_of(m.get("content")) for m in assistant_turns(messages)]


def with_final_text(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """A copy of the episode whose last assistant turn says `text` (its tool calls kept)."""
    copy = list(messages)
    for index in range(len(copy) - 1, -1, -1):
        if copy[index].get("role") == "assistant":
            copy[index] = {**copy[index], "content": text}
            return copy
    return [*copy, {"role": "assistant", "content": text}]


def is_tool_error(message: dict[str, Any]) -> bool:
    """Whether a tool message reports a failure: ``is_error`` set, or text that opens with
    "error" (what payoff's environments write for a tool that raised, hung or was misused)."""
    return message.get("is_error") is True or text_of(message.get("content")).lstrip().lower().startswith("error")


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
                                                   "object": dict, "array": list, "null": type(None)}


def argument_errors(arguments: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """What is wrong with a call's arguments against its tool's parameter schema (the subset of
    JSON Schema tool schemas use): a missing required key, an unknown key when
    ``additionalProperties`` is false, a value of the wrong JSON type."""
    properties = schema.get("properties") or {}
    errors = [f"missing required argument {key!r}" for key in schema.get("required") or [] if key not in arguments]
    for key, value in arguments.items():
        if key not in properties:
            if schema.get("additionalProperties", True) is False:
                errors.append(f"unknown argument {key!r}")
            continue
        wanted = properties[key].get("type") if isinstance(properties[key], dict) else None
        types = [] if wanted is None else wanted if isinstance(wanted, list) else [wanted]
        # bool is an int in Python but not a JSON integer or number.
        if types and not any(isinstance(value, _JSON_TYPES.get(t, object)) and not (t in ("integer", "number") and isinstance(value, bool))
                             for t in types):
            errors.append(f"argument {key!r} must be {' or '.join(types)}, got {type(value).__name__}")
    return errors
