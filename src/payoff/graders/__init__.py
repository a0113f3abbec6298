"""OpenAI grader configs run locally, as a payoff reward: ``openai_grader`` with
``config=`` a grader JSON (a dict, a file path or a JSON string).

OpenAI's hosted graders (fine-tuning and evals) are deprecated; a user's grader config keeps
working here, scored, audited and served like any payoff reward. The score is the grader's own
(``string_check`` 1/0, ``text_similarity`` the metric, ``score_model`` the model's score in its
``range``, ``label_model`` 1 if the label is a passing one else 0, ``python`` what ``grade``
returns, ``multi`` the value of ``calculate_output``). Where the config has a ``pass_threshold``
(and for string_check and label_model, whose results are pass/fail), ``info["passed"]`` and
``components["passed"]`` say whether the sample passed; a multi grader's sub-scores are its
components, by name. A bad config is a `GraderConfigError` when the reward is configured; a
grader that cannot grade a sample (a missing template variable, a failed model call, a python
grader that raises) is that sample's ``error`` or ``timeout`` outcome, never a 0.
See docs/graders.md.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

from payoff.core import Outcome, Sample, batched_reward
from payoff.graders.config import GraderConfigError, load_config
from payoff.graders.formula import FormulaError, evaluate
from payoff.graders.model import ModelOptions
from payoff.graders.similarity import NOT_EXACT, similarity
from payoff.graders.template import TemplateError, namespaces, render

__all__ = ["GraderConfigError", "grade", "load_config", "openai_grader"]


def _string_check(grader: dict[str, Any], scope: dict[str, Any]) -> Outcome:
    text, reference = render(grader["input"], scope), render(grader["reference"], scope)
    operation = grader["operation"]
    passed = {"eq": text == reference, "ne": text != reference, "like": reference in text,
              "ilike": reference.lower() in text.lower()}[operation]
    return Outcome.ok(1.0 if passed else 0.0, passed=passed)


def _text_similarity(grader: dict[str, Any], scope: dict[str, Any]) -> Outcome:
    metric = grader["evaluation_metric"]
    value = similarity(metric, render(grader["input"], scope), render(grader["reference"], scope))
    info = {"metric": metric} | ({"not_exact": NOT_EXACT[metric]} if metric in NOT_EXACT else {})
    return Outcome.ok(value, **info)


def _each(function: Any, grader: dict[str, Any], scopes: list[dict[str, Any]]) -> list[Outcome]:
    outcomes = []
    for scope in scopes:
        try:
            outcomes.append(function(grader, scope))
        except TemplateError as error:
            outcomes.append(Outcome.error(str(error)))
        except Exception as error:  # noqa: BLE001 - a metric library failing on one text is that sample's error
            outcomes.append(Outcome.error(f"{grader['type']} failed: {type(error).__name__}: {error}"))
    return outcomes


def grade(grader: dict[str, Any], samples: list[Sample], options: dict[str, Any] | None = None) -> list[Outcome]:
    """One outcome per sample for a checked grader config (see `load_config`)."""
    options = options or {}
    scopes = [namespaces(s) for s in samples]
    return [_passed(grader, o) for o in _grade(grader, scopes, options)]


def _grade(grader: dict[str, Any], scopes: list[dict[str, Any]], options: dict[str, Any]) -> list[Outcome]:
    kind = grader["type"]
    if kind == "string_check":
        return _each(_string_check, grader, scopes)
    if kind == "text_similarity":
        return _each(_text_similarity, grader, scopes)
    if kind in ("score_model", "label_model"):
        from payoff.graders import model

        return model.grade(grader, scopes, options["model"])
    if kind == "python":
        from payoff.graders import python_grader

        return python_grader.grade(grader, scopes, options.get("python_timeout_s", 30.0), options.get("python_memory_mb", 1024),
                                   options.get("python_backend", "fork"))
    return _multi(grader, scopes, options)


def _multi(grader: dict[str, Any], scopes: list[dict[str, Any]], options: dict[str, Any]) -> list[Outcome]:
    names = list(grader["graders"])
    results = {name: [_passed(grader["graders"][name], o) for o in _grade(grader["graders"][name], scopes, options)] for name in names}
    outcomes = []
    for index in range(len(scopes)):
        parts = {name: results[name][index] for name in names}
        failed = {name: o for name, o in parts.items() if not o.is_ok}
        if failed:
            status = "timeout" if any(o.status == "timeout" for o in failed.values()) else "error"
            why = "; ".join(f"{name}: {o.status} ({o.info.get('error') or o.info.get('reason', '')})" for name, o in failed.items())
            outcomes.append(Outcome(None, status, {}, {"error": f"sub-grader(s) failed: {why}"}))
            continue
        values = {name: o.score for name, o in parts.items()}
        try:
            total = evaluate(grader["calculate_output"], values)  # type: ignore[arg-type]
        except FormulaError as error:
            outcomes.append(Outcome.error(str(error)))
            continue
        outcomes.append(Outcome.ok(total, dict(values), graders={name: o.info for name, o in parts.items() if o.info}))
    return outcomes


def _passed(grader: dict[str, Any], outcome: Outcome) -> Outcome:
    """Mark pass/fail from the config's ``pass_threshold`` (score >= threshold)."""
    if not outcome.is_ok:
        return outcome
    threshold = grader.get("pass_threshold")
    if threshold is not None:
        outcome.info["passed"] = outcome.score >= threshold  # type: ignore[operator]
    if "passed" in outcome.info:
        outcome.components["passed"] = 1.0 if outcome.info["passed"] else 0.0
    return outcome


def _loaded(config: Any) -> dict[str, Any]:
    # Runs when the reward is configured: a path or JSON string becomes the checked dict, so a bad
    # config fails there, and the reward's identity (its cache key) is the grader's content.
    return load_config(config)


GraderConfig = Annotated[dict[str, Any], BeforeValidator(_loaded)]


@batched_reward(name="openai_grader", batch_size=16, timeout_s=600.0)
def openai_grader(samples: list[Sample], config: GraderConfig | None = None, backend: str = "openai", base_url: str | None = None,
                  model: str | None = None, concurrency: int = 4, call_timeout_s: float = 60.0, retries: int = 4,
                  python_timeout_s: float = 30.0, python_memory_mb: int = 1024,
                  python_backend: Literal["fork", "bwrap"] = "fork") -> list[Outcome]:
    """An OpenAI grader config (string_check, text_similarity, score_model, label_model, python,
    multi) run locally: ``config`` is the grader JSON (a dict, a file path or a JSON string);
    model graders go to ``backend`` ("openai": any OpenAI-compatible server at ``base_url``;
    "local": the embedded model or ``model``); python graders run in the sandbox
    (``python_backend``: "fork", the standard library only; "bwrap", payoff's environment too)."""
    if config is None:
        return [Outcome.error("openai_grader needs config= (a grader JSON: a dict, a file path or a JSON string)") for _ in samples]
    if backend not in ("openai", "local"):
        return [Outcome.error(f"backend must be 'openai' or 'local', got {backend!r}") for _ in samples]
    uses_server = backend == "openai" and _has_model_grader(config)
    if uses_server and not base_url:
        return [Outcome.error("a model grader with backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)") for _ in samples]
    # PAYOFF_JUDGE_CACHE: the judges' judgment cache folder ("off": none), shared with the judges
    cache = os.environ.get("PAYOFF_JUDGE_CACHE", "default")
    options = {"model": ModelOptions(backend, base_url, model, concurrency, call_timeout_s, retries, None if cache == "off" else cache),
               "python_timeout_s": python_timeout_s, "python_memory_mb": python_memory_mb, "python_backend": python_backend}
    return grade(config, samples, options)


def _has_model_grader(grader: dict[str, Any]) -> bool:
    if grader["type"] == "multi":
        return any(_has_model_grader(g) for g in grader["graders"].values())
    return grader["type"] in ("score_model", "label_model")
