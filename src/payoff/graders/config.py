"""Reading an OpenAI grader config (the JSON of OpenAI's fine-tuning and evals graders) and
checking it whole before any sample is graded: a bad config is one `GraderConfigError` that names
the field (``graders.name.operation: ...``), never a reward that scores 0.

Known types: ``string_check``, ``text_similarity``, ``score_model``, ``label_model``, ``python``
and ``multi`` (its ``graders`` an object of named graders, ``calculate_output`` a formula over
their names, see `payoff.graders.formula`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

STRING_OPERATIONS = ("eq", "ne", "like", "ilike")
SIMILARITY_METRICS = ("fuzzy_match", "bleu", "gleu", "meteor", "cosine", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l")
TYPES = ("string_check", "text_similarity", "score_model", "label_model", "python", "multi")
ROLES = ("system", "developer", "user", "assistant")


class GraderConfigError(ValueError):
    """A grader config that cannot be run as written; the message names the field."""


def load_config(config: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The checked grader config from a dict, a path to a JSON file, or a JSON string."""
    if isinstance(config, dict):
        data = config
    elif isinstance(config, (str, Path)):
        text = str(config)
        if isinstance(config, str) and text.lstrip().startswith("{"):
            source = "the config string"
        else:
            path = Path(text).expanduser()
            if not path.is_file():
                raise GraderConfigError(f"no grader config file {text!r}")
            text, source = path.read_text(), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise GraderConfigError(f"{source} is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    else:
        raise GraderConfigError(f"a grader config is a dict, a JSON file path or a JSON string, not {type(config).__name__}")
    check(data)
    return data


def check(grader: Any, where: str = "grader") -> None:
    """Raise GraderConfigError at the first field that cannot work."""
    if not isinstance(grader, dict):
        raise GraderConfigError(f"{where}: a grader is a JSON object, got {type(grader).__name__}")
    kind = grader.get("type")
    if kind not in TYPES:
        raise GraderConfigError(f"{where}.type: {kind!r} is not a grader type; expected one of {', '.join(TYPES)}")
    if "name" in grader and not isinstance(grader["name"], str):
        raise GraderConfigError(f"{where}.name: must be a string")
    if "pass_threshold" in grader and grader["pass_threshold"] is not None:
        _number(grader["pass_threshold"], f"{where}.pass_threshold")
    {"string_check": _string_check, "text_similarity": _text_similarity, "score_model": _score_model,
     "label_model": _label_model, "python": _python, "multi": _multi}[kind](grader, where)


def _text(grader: dict[str, Any], key: str, where: str) -> None:
    if not isinstance(grader.get(key), str):
        raise GraderConfigError(f"{where}.{key}: a template string is required, got {grader.get(key)!r}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GraderConfigError(f"{where}: must be a finite number, got {value!r}")
    return float(value)


def _string_check(grader: dict[str, Any], where: str) -> None:
    _text(grader, "input", where)
    _text(grader, "reference", where)
    if grader.get("operation") not in STRING_OPERATIONS:
        raise GraderConfigError(f"{where}.operation: {grader.get('operation')!r} is not one of {', '.join(STRING_OPERATIONS)}")


def _text_similarity(grader: dict[str, Any], where: str) -> None:
    _text(grader, "input", where)
    _text(grader, "reference", where)
    if grader.get("evaluation_metric") not in SIMILARITY_METRICS:
        raise GraderConfigError(f"{where}.evaluation_metric: {grader.get('evaluation_metric')!r} is not one of {', '.join(SIMILARITY_METRICS)}")


def _messages(grader: dict[str, Any], where: str) -> None:
    messages = grader.get("input")
    if not isinstance(messages, list) or not messages:
        raise GraderConfigError(f"{where}.input: a model grader needs a non-empty list of messages")
    for index, message in enumerate(messages):
        at = f"{where}.input.{index}"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise GraderConfigError(f"{at}: a message with a role in {', '.join(ROLES)} is required")
        content = message.get("content")
        if isinstance(content, dict):
            content = [content]
        if isinstance(content, list):
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text") or not isinstance(part.get("text"), str):
                    raise GraderConfigError(f"{at}.content: only text parts (input_text, output_text) run locally; got {part!r}")
        elif not isinstance(content, str):
            raise GraderConfigError(f"{at}.content: a string or text parts, got {content!r}")
    if not isinstance(grader.get("model", ""), str):
        raise GraderConfigError(f"{where}.model: must be a string")
    params = grader.get("sampling_params") or {}
    if not isinstance(params, dict):
        raise GraderConfigError(f"{where}.sampling_params: must be an object")
    if params.get("max_completions_tokens") is not None:
        tokens = params["max_completions_tokens"]
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise GraderConfigError(f"{where}.sampling_params.max_completions_tokens: a whole number >= 1, got {tokens!r}")


def _score_model(grader: dict[str, Any], where: str) -> None:
    _messages(grader, where)
    bounds = grader.get("range", [0, 1])
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise GraderConfigError(f"{where}.range: two numbers [low, high], got {bounds!r}")
    low, high = (_number(b, f"{where}.range") for b in bounds)
    if not low < high:
        raise GraderConfigError(f"{where}.range: low must be below high, got {bounds!r}")


def _label_model(grader: dict[str, Any], where: str) -> None:
    _messages(grader, where)
    labels, passing = grader.get("labels"), grader.get("passing_labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
        raise GraderConfigError(f"{where}.labels: a non-empty list of label strings is required")
    if len({x.strip().lower() for x in labels}) != len(labels):
        raise GraderConfigError(f"{where}.labels: labels must differ (case-insensitively), got {labels!r}")
    if not isinstance(passing, list) or not passing or not set(passing) <= set(labels):
        raise GraderConfigError(f"{where}.passing_labels: a non-empty subset of labels is required, got {passing!r}")


def _python(grader: dict[str, Any], where: str) -> None:
    source = grader.get("source")
    if not isinstance(source, str):
        raise GraderConfigError(f"{where}.source: the grader's Python source is required")
    try:
        tree = compile(source, "<grader>", "exec", flags=0x400, dont_inherit=True)  # 0x400: PyCF_ONLY_AST
    except SyntaxError as error:
        raise GraderConfigError(f"{where}.source: not valid Python: {error.msg} (line {error.lineno})") from None
    import ast

    if not any(isinstance(node, ast.FunctionDef) and node.name == "grade" for node in tree.body):  # type: ignore[attr-defined]
        raise GraderConfigError(f"{where}.source: defines no top-level function grade(sample, item)")


def _multi(grader: dict[str, Any], where: str) -> None:
    from payoff.graders.formula import FormulaError, parse

    graders = grader.get("graders")
    if not isinstance(graders, dict) or not graders:
        raise GraderConfigError(f"{where}.graders: an object of named graders is required")
    if isinstance(graders.get("type"), str):
        raise GraderConfigError(f"{where}.graders: an object of named graders ({{\"name\": {{...}}}}) is required, not one grader")
    for name, sub in graders.items():
        if not name.isidentifier():
            raise GraderConfigError(f"{where}.graders: {name!r} cannot be used in calculate_output (not an identifier)")
        check(sub, f"{where}.graders.{name}")
    formula = grader.get("calculate_output")
    if not isinstance(formula, str):
        raise GraderConfigError(f"{where}.calculate_output: a formula over the graders' names is required")
    try:
        parse(formula, set(graders))
    except FormulaError as error:
        raise GraderConfigError(f"{where}.calculate_output: {error}") from None
