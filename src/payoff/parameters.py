"""Checking reward and composition parameters: types and bounds from annotations, finite numbers.
Imports nothing of payoff."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any


class RewardParameterError(ValueError):
    """A reward parameter outside its meaning (wrong type, non-finite, out of range)."""


@functools.lru_cache(maxsize=512)
def _parameter_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve is not checked
        return {}


@functools.lru_cache(maxsize=512)
def _adapter(annotation: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False, arbitrary_types_allowed=True))


def _numeric(annotation: Any) -> bool:
    import typing

    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation in (int, float)


def check_numbers(owner: str, ranges: dict[str, tuple[float, float]] | None = None, **values: Any) -> None:
    """Every value a finite number (not a bool), and inside its (low, high) range where given.
    For composition parameters (term weights, shaper rates) checked when they are declared."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise RewardParameterError(f"{owner}: {key} must be a finite number, got {value!r}")
        low, high = (ranges or {}).get(key, (-math.inf, math.inf))
        if not low <= value <= high:
            raise RewardParameterError(f"{owner}: {key}={value!r} is outside [{low}, {high}]")


def check_parameter(reward: Any, key: str, value: Any) -> Any:
    """`value` for parameter `key`, checked (and converted) against the function's annotation,
    including any ``Annotated`` bounds (``Annotated[float, Le(0)]``): numbers must be finite,
    and a bool is not a number. Raises RewardParameterError naming the reward and parameter."""
    annotation = _parameter_hints(reward.fn).get(key)
    if annotation is None:
        return value
    if isinstance(value, bool) and _numeric(annotation):
        raise RewardParameterError(f"reward {reward.name}: parameter {key} must be a number, not {value!r}")
    from pydantic import ValidationError

    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError as error:
        problem = "; ".join(e["msg"] for e in error.errors())
        raise RewardParameterError(f"reward {reward.name}: parameter {key}={value!r}: {problem}") from None
    except TypeError:  # an annotation pydantic cannot build a validator for
        return value
