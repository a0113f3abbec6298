"""A payoff environment's tools as Python functions, for trainers that take tools as functions
(TRL's environments, verifiers' MCP toolsets): the signature, type hints and Google-style
docstring are built from the tool's JSON schema, so the client's schema builder (transformers'
`get_json_schema`, MCP's) rebuilds the same name, description, argument types and required
arguments; a call is answered by the environment (`answer_call`), as in `run_episode`."""

from __future__ import annotations

import inspect
import json
import keyword
from collections.abc import Callable
from typing import Any

from payoff.envs import Environment

_JSON_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list, "object": dict}


def tool_function(function: dict[str, Any], call: Callable[..., Any], *, method: bool = False,
                  reserved: frozenset[str] = frozenset()) -> Callable[..., Any]:
    """A function for the tool `function` (an OpenAI schema's ``function`` part) that returns
    ``call(name, arguments)``; with `method`, ``call(self, name, arguments)`` and a leading
    ``self``. `call` may be a coroutine function (the tool is then async)."""
    name = function.get("name")
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name in reserved:
        taken = f", not {', '.join(sorted(reserved))}" if reserved else ""
        raise ValueError(f"tool name {name!r} cannot be a Python function name (an identifier, not _private{taken})")
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] if method else []
    annotations: dict[str, Any] = {}
    lines = []
    for arg, spec in properties.items():
        if not arg.isidentifier() or keyword.iskeyword(arg) or arg == "self":
            raise ValueError(f"tool {name!r}: argument {arg!r} cannot be a Python keyword argument")
        annotations[arg] = _python_type(spec)
        default = inspect.Parameter.empty if arg in required else None
        signature.append(inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotations[arg]))
        lines.append(f"    {arg}: {(spec or {}).get('description') or arg}")
    annotations["return"] = str

    if inspect.iscoroutinefunction(call):
        async def tool(*receiver: Any, **arguments: Any) -> Any:
            return await call(*receiver, name, arguments)
    else:
        def tool(*receiver: Any, **arguments: Any) -> Any:
            return call(*receiver, name, arguments)

    tool.__name__ = tool.__qualname__ = name
    tool.__signature__ = inspect.Signature(signature, return_annotation=str)  # type: ignore[attr-defined]
    tool.__annotations__ = annotations
    description = function.get("description") or name
    tool.__doc__ = description + ("\n\nArgs:\n" + "\n".join(lines) if lines else "")
    return tool


def _python_type(spec: Any) -> type:
    kind = (spec or {}).get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return _JSON_TYPES.get(kind, str)


def answer_call(env: Environment, name: str, arguments: dict[str, Any], call_id: str) -> tuple[Any, bool]:
    """Step `env` with one assistant message making this one call: (the tool message's content,
    whether the environment ended the episode). RuntimeError when it does not answer with exactly
    one tool message for the call."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    replies, done = env.step({"role": "assistant", "content": None, "tool_calls": [call]})
    answers = [m.get("content") for m in replies if m.get("role") == "tool" and m.get("tool_call_id") == call_id]
    if len(answers) != 1:
        raise RuntimeError(f"the environment answered tool call {name!r} with {len(answers)} tool messages, not one")
    return answers[0], done
