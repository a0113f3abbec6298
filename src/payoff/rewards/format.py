"""Format rewards: tag structure, tag counts, regular expressions, JSON against a schema."""

from __future__ import annotations

import json
import re
from typing import Any

from payoff.core import Outcome, Sample, reward
from payoff.rewards.common import after_reasoning

_THINK_ANSWER = re.compile(r"^\s*<think>(.+?)</think>\s*<answer>(.+?)</answer>\s*$", re.DOTALL)


@reward(name="tag_format")
def tag_format(sample: Sample) -> Outcome:
    """R1 format: the whole completion is ``<think>…</think><answer>…</answer>``, both non-empty
    (DeepSeek-R1, 2025; open-r1's format reward)."""
    match = _THINK_ANSWER.match(sample.completion)
    ok = bool(match and match.group(1).strip() and match.group(2).strip())
    return Outcome.ok(float(ok))


@reward(name="tag_count")
def tag_count(sample: Sample, tags: tuple[str, ...] = ("<think>", "</think>", "<answer>", "</answer>")) -> Outcome:
    """Partial credit per tag that occurs exactly once: 1/len(tags) each (open-r1's tag-count
    reward, a denser signal early in training)."""
    text = sample.completion
    counts = {tag: text.count(tag) for tag in tags}
    components = {f"once:{tag}": float(count == 1) for tag, count in counts.items()}
    return Outcome.ok(sum(components.values()) / len(tags), components)


@reward(name="regex_match")
def regex_match(sample: Sample, pattern: str | None = None, full: bool = True, flags: str = "s") -> Outcome:
    """1 if the completion matches a regular expression (``pattern``, or the reference when no
    pattern is given); ``full`` requires the whole completion to match."""
    source = pattern if pattern is not None else sample.reference
    if not source:
        return Outcome.abstain("no pattern: pass pattern=... or put it in the reference")
    compiled_flags = 0
    for letter in flags:
        compiled_flags |= {"s": re.DOTALL, "i": re.IGNORECASE, "m": re.MULTILINE}[letter]
    try:
        compiled = re.compile(str(source), compiled_flags)
    except re.error as error:
        return Outcome.error(f"invalid pattern: {error}")
    found = compiled.fullmatch(sample.completion) if full else compiled.search(sample.completion)
    return Outcome.ok(float(found is not None))


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _json_payload(text: str) -> Any:
    candidates = _FENCE.findall(text) or [text]
    for candidate in reversed(candidates):
        try:
            return json.loads(candidate.strip())
        except json.JSONDecodeError:
            start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
            if start >= 0:
                try:
                    return json.JSONDecoder().raw_decode(candidate[start:])[0]
                except json.JSONDecodeError:
                    continue
    raise ValueError("no JSON value found")


@reward(name="json_schema")
def json_schema(sample: Sample, schema: dict[str, Any] | None = None) -> Outcome:
    """1 if the completion holds JSON (bare or in a ```json fence) that validates against a JSON
    Schema (``schema``, or the reference); a reasoning model's JSON is read after its last
    ``</think>``. Components: parsed, valid. Structured-output RL."""
    import jsonschema

    spec = schema if schema is not None else sample.reference
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError:
            return Outcome.abstain("the reference is not a JSON Schema")
    if not isinstance(spec, dict):
        return Outcome.abstain("no schema: pass schema=... or put it in the reference")
    try:
        payload = _json_payload(after_reasoning(sample.completion))  # a JSON draft inside <think> is not the answer
    except ValueError as error:
        return Outcome.ok(0.0, {"parsed": 0.0, "valid": 0.0}, error=str(error))
    try:
        jsonschema.validate(payload, spec)
    except jsonschema.ValidationError as error:
        return Outcome.ok(0.0, {"parsed": 1.0, "valid": 0.0}, error=error.message[:300])
    except jsonschema.SchemaError as error:
        return Outcome.abstain(f"invalid schema: {error.message[:300]}")
    return Outcome.ok(1.0, {"parsed": 1.0, "valid": 1.0})
