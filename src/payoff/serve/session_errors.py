"""What the episode sessions (`payoff.serve.sessions`) answer with when they cannot serve a
request (each `SessionError` carries its HTTP status), the check of the assistant message a step
takes, and how a batch of session calls runs (`quick_then_fan`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

# An item slower than this sends the rest of its batch to run in parallel: above two GIL switch
# intervals (5 ms each), so a quick item that only waited for the GIL under load does not.
FAN_OUT_S = 0.01


def quick_then_fan(work: Callable[[int], Any], count: int, fan: Executor | None, fan_out_s: float = FAN_OUT_S) -> list[Any]:
    """``[work(0), ..., work(count - 1)]``: one after another in this thread while each is quick
    (handing a quick item to a thread and back costs more than the item), and the items left in
    parallel on `fan` as soon as one takes over `fan_out_s` (the items after a slow or hanging one
    wait for it once, then run side by side)."""
    results: list[Any] = [None] * count
    for index in range(count):
        began = time.perf_counter()
        results[index] = work(index)
        if fan is not None and time.perf_counter() - began > fan_out_s and index + 1 < count:
            rest = range(index + 1, count)
            for later, answer in zip(rest, fan.map(work, rest)):
                results[later] = answer
            break
    return results


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
