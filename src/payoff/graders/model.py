"""``score_model`` and ``label_model`` graders on payoff's judge backends.

OpenAI runs these on its own models with structured outputs (the reply is forced into a score or
one of the labels). Locally the grader's templated messages go, as written, to:
- ``backend="openai"``: any OpenAI-compatible ``/chat/completions`` server (``base_url``; the
  model is the grader's ``model`` unless the reward's ``model`` overrides it), greedy, with the
  judge backend's retries, concurrency limit and judgment cache. In place of the structured output
  one last user message asks for the bare answer ("Reply with only a number between 0 and 1" / "...
  only one of these labels: ..."), and the reply is read strictly: a JSON ``{"result": ...}`` or
  the bare answer (the first number; the one label named). A reply with no score, a score outside
  ``range``, or no single label is an ``error`` outcome, never a number. A ``developer`` message
  is sent as ``system`` (what most such servers accept).
- ``backend="local"``: a local causal LM (the embedded SmolLM2 by default) read from its next-token
  probabilities, with the messages flattened into one prompt: ``label_model`` takes the most
  probable label (labels must begin with different tokens), ``score_model`` the expectation over
  the whole numbers in ``range`` (a range with fewer than two whole numbers cannot be read so).

``sampling_params``: ``max_completions_tokens`` caps the reply (default 64); ``temperature``,
``top_p``, ``seed`` and ``reasoning_effort`` are not used (greedy decoding, reproducible).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from payoff.core import Outcome
from payoff.graders.template import TemplateError, render
from payoff.judges.backends import make_backend

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class ModelOptions:
    """How the reward reaches a model: backend, server and limits (the reward's parameters)."""

    def __init__(self, backend: str, base_url: str | None, model: str | None, concurrency: int, call_timeout_s: float, retries: int,
                 cache: str | None) -> None:
        self.backend, self.base_url, self.model = backend, base_url, model
        self.concurrency, self.call_timeout_s, self.retries, self.cache = concurrency, call_timeout_s, retries, cache


def _content(message: dict[str, Any], scope: dict[str, Any]) -> str:
    content = message["content"]
    parts = [content] if isinstance(content, dict) else content
    text = content if isinstance(content, str) else "".join(p["text"] for p in parts)
    return render(text, scope)


def _instruction(grader: dict[str, Any]) -> str:
    if grader["type"] == "score_model":
        low, high = grader.get("range", [0, 1])
        return f"Reply with only a number between {low:g} and {high:g}."
    return "Reply with only one of these labels: " + ", ".join(grader["labels"]) + "."


def grade(grader: dict[str, Any], scopes: list[dict[str, Any]], options: ModelOptions) -> list[Outcome]:
    """One outcome per scope (sample): the model's score or label."""
    outcomes: list[Outcome | None] = [None] * len(scopes)
    prompts: list[list[dict[str, str]]] = []
    asked: list[int] = []
    for index, scope in enumerate(scopes):
        try:
            # "developer" is OpenAI's newer name for "system"; most OpenAI-compatible servers
            # (llama.cpp's among them) know only the older one
            messages = [{"role": "system" if m["role"] == "developer" else m["role"], "content": _content(m, scope)} for m in grader["input"]]
        except TemplateError as error:
            outcomes[index] = Outcome.error(str(error))
            continue
        prompts.append(messages + [{"role": "user", "content": _instruction(grader)}])
        asked.append(index)
    if prompts:
        read = _ask_server if options.backend == "openai" else _ask_local
        for index, outcome in zip(asked, read(grader, prompts, options)):
            outcomes[index] = outcome
    return [o for o in outcomes if o is not None]


def _ask_server(grader: dict[str, Any], prompts: list[list[dict[str, str]]], options: ModelOptions) -> list[Outcome]:
    tokens = (grader.get("sampling_params") or {}).get("max_completions_tokens") or 64
    backend = make_backend("openai", options.model or grader.get("model") or "default", options.base_url, concurrency=options.concurrency,
                           timeout_s=options.call_timeout_s, retries=options.retries, cache=options.cache, max_tokens=tokens)
    outcomes = []
    for reply in backend.replies(prompts, version="openai-grader-1"):
        if isinstance(reply, BaseException):
            outcomes.append(Outcome.error(f"grader model call failed: {reply}"))
            continue
        text = (((reply.get("choices") or [{}])[0].get("message") or {}).get("content") or "").strip()
        try:
            value = _read_score(grader, text) if grader["type"] == "score_model" else _read_label(grader, text)
        except ValueError as error:
            outcomes.append(Outcome.error(str(error), reply=text[:500]))
            continue
        outcomes.append(_outcome(grader, value, reply=text[:500]))
    return outcomes


def _result(text: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data.get("result") if isinstance(data, dict) else None


def _read_score(grader: dict[str, Any], text: str) -> float:
    low, high = grader.get("range", [0, 1])
    value = _result(text)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        found = _NUMBER.search(text)
        if found is None:
            raise ValueError(f"no score in the grader model's reply {text[:80]!r}")
        value = float(found.group())
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"the grader model's score {value:g} is outside the range [{low:g}, {high:g}]")
    return float(value)


def _read_label(grader: dict[str, Any], text: str) -> str:
    labels = grader["labels"]
    by_name = {label.strip().lower(): label for label in labels}
    value = _result(text)
    candidate = (value if isinstance(value, str) else text).strip().strip("\"'.`*").strip().lower()
    if candidate in by_name:
        return by_name[candidate]
    named = [label for label in labels if re.search(rf"(?<!\w){re.escape(label.strip().lower())}(?!\w)", text.lower())]
    if len(named) == 1:
        return named[0]
    raise ValueError(f"the grader model's reply {text[:80]!r} names {'no' if not named else 'more than one'} label of {labels}")


def _outcome(grader: dict[str, Any], value: float | str, **info: Any) -> Outcome:
    if grader["type"] == "label_model":
        passed = value in grader["passing_labels"]
        return Outcome.ok(1.0 if passed else 0.0, label=value, passed=passed, **info)
    return Outcome.ok(float(value), **info)


def _ask_local(grader: dict[str, Any], prompts: list[list[dict[str, str]]], options: ModelOptions) -> list[Outcome]:
    backend = make_backend("local", options.model)
    flat = ["\n\n".join(f"{m['role']}: {m['content']}" for m in messages) for messages in prompts]
    if grader["type"] == "label_model":
        choices = list(grader["labels"])
        _, tokenizer = backend._load()
        tokens = list(backend._choice_tokens(tokenizer, choices).values())
        if any(tokens[i] & tokens[j] for i in range(len(tokens)) for j in range(i + 1, len(tokens))):
            return [Outcome.error(f"labels {choices} begin with the same token: the local backend cannot tell them apart") for _ in prompts]
    else:
        low, high = grader.get("range", [0, 1])
        choices = [str(v) for v in range(math.ceil(low), math.floor(high) + 1)]
        if len(choices) < 2:
            return [Outcome.error(f"range {grader.get('range')} holds fewer than two whole numbers: the local backend reads "
                                  "whole-number verdicts") for _ in prompts]
    outcomes = []
    for verdict in backend.verdicts(flat, choices):
        if isinstance(verdict, Exception):
            outcomes.append(Outcome.error(f"local grader model: {verdict}"))
            continue
        probabilities = {c: verdict[c] for c in choices}
        if grader["type"] == "label_model":
            outcomes.append(_outcome(grader, max(probabilities, key=probabilities.__getitem__), probabilities=probabilities))
        else:
            outcomes.append(_outcome(grader, sum(float(c) * p for c, p in probabilities.items()), probabilities=probabilities))
    return outcomes
