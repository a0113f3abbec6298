"""What the episode sessions (`payoff.serve.sessions`) answer with when they cannot serve a
request (each `SessionError` carries its HTTP status), and the check of the assistant message a
step takes."""

from __future__ import annotations

from typing import Any


class SessionError(Exception):
    """A request the sessions cannot serve; `status` is its HTTP status."""

    status = 400

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message, retry_after)  # both in args: the error survives pickling (Ray)
        self.message, self.retry_after = message, retry_after

    def __str__(self) -> str:
        return self.message


class BadRequest(SessionError):
    status = 422


class UnknownSession(SessionError):
    status = 404


class ExpiredSession(SessionError):
    status = 410


class Busy(SessionError):
    status = 409


class SessionsFull(SessionError):
    status = 503


class EnvironmentFailed(SessionError):
    status = 500


def check_message(message: Any) -> dict[str, Any]:
    """The assistant message a step takes, or BadRequest naming what is wrong. Only what would
    break the environment is refused here; what `run_episode` takes from a policy (tool-call
    arguments that are not JSON, an unknown tool) is taken, and answered the same way."""
    if not isinstance(message, dict):
        raise BadRequest(f"message: expected an object, got {type(message).__name__}")
    if message.get("role", "assistant") != "assistant":
        raise BadRequest(f"message.role: a step takes the assistant's message, got {message.get('role')!r}")
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise BadRequest(f"message.content: a string, a list of parts or null, got {type(content).__name__}")
    calls = message.get("tool_calls")
    if calls is None:
        if content is None:
            raise BadRequest("message: an assistant message needs content or tool_calls")
        return message
    if not isinstance(calls, list):
        raise BadRequest(f"message.tool_calls: expected a list, got {type(calls).__name__}")
    for index, call in enumerate(calls):
        where = f"message.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest(f"{where}: expected {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}")
        if not isinstance(function.get("arguments", ""), (str, dict)):
            raise BadRequest(f"{where}.function.arguments: a JSON string, got {type(function['arguments']).__name__}")
    return message
