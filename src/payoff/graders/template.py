"""OpenAI's grader templates: ``{{ namespace.path }}`` with the namespaces ``item`` and ``sample``,
paths in a JSON-path-like syntax (``item.answer.value``, ``item.steps[0]``, ``sample.output_json.name``).

What a payoff `Sample` gives each namespace:
- ``sample.output_text``: the completion (what the model wrote);
- ``sample.output_json``: the completion parsed as a JSON object (absent when it is not one);
- ``sample.output_tools``: the tool calls of the model's final turn, in the Chat Completions form
  (``meta["output_tools"]`` or ``meta["tool_calls"]``; else the last assistant message's
  ``tool_calls`` in a chat-message prompt; else an empty list);
- ``sample.choices``: one Chat Completions choice holding that message;
- ``item``: the dataset row: the sample's ``meta``, plus ``prompt`` and ``reference`` (when there is
  one; when the reference is an object, its keys too), so a row's ``reference_answer`` is ``{{item.reference_answer}}``
  when it is in ``meta`` or in the ``reference`` object.

A string renders as itself; any other value as JSON. A path that is not there is a
`TemplateError` (the sample's error outcome), never an empty string.
"""

from __future__ import annotations

import json
import re
from typing import Any

from payoff.core import Sample

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_STEP = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")
_MISSING = object()


class TemplateError(ValueError):
    """A template names a variable the sample or the item does not have."""


def namespaces(sample: Sample) -> dict[str, Any]:
    """``{"sample": ..., "item": ...}`` for a payoff Sample (see the module's docstring)."""
    message: dict[str, Any] = {"role": "assistant", "content": sample.completion}
    tools = output_tools(sample)
    if tools:
        message["tool_calls"] = tools
    graded: dict[str, Any] = {"output_text": sample.completion, "output_tools": tools,
                              "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tools else "stop"}]}
    parsed = _json_object(sample.completion)
    if parsed is not _MISSING:
        graded["output_json"] = parsed
    item: dict[str, Any] = {}
    if isinstance(sample.reference, dict):
        item.update(sample.reference)
    item.update(sample.meta)
    item.setdefault("prompt", sample.prompt)
    if sample.reference is not None:  # no reference is a missing variable (an error), not the text "null"
        item.setdefault("reference", sample.reference)
    return {"sample": graded, "item": item}


def output_tools(sample: Sample) -> list[Any]:
    for key in ("output_tools", "tool_calls"):
        if isinstance(sample.meta.get(key), list):
            return sample.meta[key]
    if isinstance(sample.prompt, list):
        for message in reversed(sample.prompt):
            if isinstance(message, dict) and message.get("role") == "assistant":
                return list(message.get("tool_calls") or [])
    return []


def _json_object(text: str) -> Any:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return _MISSING
    return value if isinstance(value, dict) else _MISSING


def lookup(path: str, scope: dict[str, Any]) -> Any:
    """The value at ``path`` (``item.a.b[0]``) in ``scope``; TemplateError when absent."""
    namespace, _, rest = path.partition(".")
    if namespace not in ("item", "sample"):
        raise TemplateError(f"{{{{{path}}}}}: the namespace must be item or sample")
    value = scope[namespace]
    position = 0
    while position < len(rest):
        step = _STEP.match(rest, position)
        if step is None or step.end() == position:
            raise TemplateError(f"{{{{{path}}}}}: cannot read the path at {rest[position:]!r}")
        key, index, quoted, single = step.groups()
        position = step.end()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                raise TemplateError(f"{{{{{path}}}}}: no element [{index}]" + _why(namespace, rest))
            value = value[int(index)]
            continue
        name = key if key is not None else quoted if quoted is not None else single
        if not isinstance(value, dict) or name not in value:
            raise TemplateError(f"{{{{{path}}}}}: no {name!r}" + _why(namespace, rest))
        value = value[name]
    return value


def _why(namespace: str, rest: str) -> str:
    if namespace == "sample" and rest.startswith("output_json"):
        return " (the completion is not a JSON object, or lacks it)"
    if namespace == "item":
        return " in the item (put dataset fields in the sample's meta, or make the reference an object)"
    return ""


def render(template: str, scope: dict[str, Any]) -> str:
    """The template with every ``{{ ... }}`` replaced by its value."""

    def value(match: re.Match[str]) -> str:
        found = lookup(match.group(1), scope)
        return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)

    return PLACEHOLDER.sub(value, template)
