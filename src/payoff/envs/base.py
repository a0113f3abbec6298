"""The environment protocol and the tool-calling environment most built-ins are.

An environment is a small object, as in Gymnasium and SkyRL-gym:

- ``reset(row) -> (messages, tools)``: the opening messages (OpenAI chat format) and the tool
  schemas (OpenAI ``tools`` format) for one task row;
- ``step(message) -> (messages, done)``: given the policy's assistant message, the new ``tool``
  or ``user`` messages and whether the episode is over;
- ``reward``: any payoff Reward or Rubric, scored over the finished episode (a Sample whose
  ``completion`` is the final assistant text);
- ``close()``: release what the episode holds (processes, connections). Always called.

`ToolEnv` answers each tool call of an assistant message with one tool message, and ends the
episode at the first assistant message without tool calls (the final answer). Whatever a tool
does wrong (raises, hangs past its time limit, floods output, is unknown, gets arguments that are
not JSON or do not match its schema) becomes a tool message that says so; the episode goes on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from payoff.core import Reward
from payoff.episode import argument_errors

Message = dict[str, Any]


@runtime_checkable
class Environment(Protocol):
    reward: Reward | None

    def reset(self, row: dict[str, Any]) -> tuple[list[Message], list[dict[str, Any]]]: ...

    def step(self, message: Message) -> tuple[list[Message], bool]: ...

    def close(self) -> None: ...


@dataclass
class Tool:
    """One function the policy may call: `fn(**arguments) -> str`; `parameters` is its JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    timeout_s: float | None = None  # None: the environment's per-call limit
    # The tool stops itself at the limit (the Python session interrupts or kills its cell, a SQL
    # query is interrupted) or cannot run long (the calculator's bounded arithmetic): called
    # directly, without the watching thread.
    enforces_limit: bool = False

    def schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def schema_errors(arguments: Any, schema: dict[str, Any]) -> list[str]:
    """What is wrong with a tool call's parsed `arguments` against its tool's schema: not an object,
    or `payoff.episode.argument_errors` (the one checker, shared with the episode rewards)."""
    if not isinstance(arguments, dict):
        return [f"arguments must be a JSON object, got {type(arguments).__name__}"]
    return argument_errors(arguments, schema)


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[output truncated: {limit} of {len(text)} characters shown]"


def call_with_timeout(fn: Callable[..., Any], arguments: dict[str, Any], timeout_s: float) -> tuple[str, Any]:
    """("ok", value), ("error", exception) or ("timeout", None). An in-process tool that hangs is
    left running on its daemon thread (Python cannot kill a thread): tools whose work can hang for
    real (code) run in a process the environment can kill, and SQL queries are interrupted."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(**arguments)
        except BaseException as error:  # noqa: BLE001 - the tool's failure becomes its message
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True, name="payoff-tool")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("value")


@dataclass
class ToolEnv:
    """An environment of tools: subclasses set `tools` in `reset` and may override `opening`,
    `on_tool_call` (a tool the environment runs itself, like the Python session) or `finish`."""

    reward: Reward | None = None
    call_timeout_s: float = 10.0
    max_output_chars: int = 4000
    system: str = ""
    tools: list[Tool] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict)

    def opening(self, row: dict[str, Any]) -> list[Message]:
        prompt = row.get("prompt", "")
        messages = [] if not self.system else [{"role": "system", "content": self.system}]
        if isinstance(prompt, list):
            return messages + [dict(m) for m in prompt]
        return messages + [{"role": "user", "content": str(prompt)}]

    def reset(self, row: dict[str, Any]) -> tuple[list[Message], list[dict[str, Any]]]:
        self.row = row
        return self.opening(row), [tool.schema() for tool in self.tools]

    def step(self, message: Message) -> tuple[list[Message], bool]:
        calls = message.get("tool_calls") or []
        if not calls:
            return self.finish(message)
        return [self.answer(call) for call in calls], False

    def finish(self, message: Message) -> tuple[list[Message], bool]:
        """An assistant message without tool calls: the final answer, by default."""
        return [], True

    def answer(self, call: dict[str, Any]) -> Message:
        """The tool message for one tool call, whatever happens."""
        call_id = call.get("id", "")
        function = call.get("function") or {}
        name = function.get("name")
        by_name = {tool.name: tool for tool in self.tools}
        if name not in by_name:
            return _tool_message(call_id, name, f"error: unknown tool {name!r}; the tools are {sorted(by_name)}")
        tool = by_name[name]
        raw = function.get("arguments", "{}")
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as error:
            return _tool_message(call_id, name, f"error: the arguments are not valid JSON ({error.msg} at position {error.pos})")
        errors = schema_errors(arguments, tool.parameters)
        if errors:
            return _tool_message(call_id, name, "error: " + "; ".join(errors))
        timeout = tool.timeout_s if tool.timeout_s is not None else self.call_timeout_s
        if tool.enforces_limit:
            try:
                status, value = "ok", tool.fn(**arguments)
            except Exception as error:  # noqa: BLE001 - the tool's failure becomes its message
                status, value = "error", error
        else:
            status, value = call_with_timeout(tool.fn, arguments, timeout)
        if status == "timeout":
            text = f"error: the tool {name} gave no result within {timeout:g} s and was abandoned"
        elif status == "error":
            text = f"error: the tool {name} raised {type(value).__name__}: {value}"
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
        return _tool_message(call_id, name, truncate(text, self.max_output_chars))

    def close(self) -> None:
        pass


def _tool_message(call_id: str, name: Any, content: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}
