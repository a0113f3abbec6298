"""Rubrics declared in TOML, validated by pydantic so a typo names its field.

```toml
[reward]
combine = "sum"            # sum | mean | min | uncertainty
normalize = "none"         # none | group | batch  (of the total)
normalize_terms = "none"   # none | group | batch  (each term, then combine: GDPO-style)
failure = "strict"         # strict | zero | skip

[[reward.terms]]
name = "math"
weight = 1.0

[[reward.terms]]
name = "think_format"
weight = 0.2

[[reward.terms]]
name = "exact_match"
weight = 0.0               # metric only: logged, not summed
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payoff.compose.rubric import Rubric, Term
from payoff.registry import get_reward


class RubricConfigError(ValueError):
    pass


class TermConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="registered reward, module:function or file.py:function")
    weight: float = 1.0
    label: str | None = Field(None, description="component name (default: the reward's name)")
    gate: str | None = Field(None, description="e.g. 'math >= 1': count only when that term passes")
    gate_value: float = 0.0
    params: dict[str, Any] = Field(default_factory=dict, description="keyword parameters of the reward")


class RubricConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    terms: list[TermConfig] = Field(min_length=1)
    combine: Literal["sum", "mean", "min", "uncertainty"] = "sum"
    uncertainty_lambda: float = 1.0
    normalize: Literal["none", "group", "batch"] = "none"
    normalize_terms: Literal["none", "group", "batch"] = "none"
    failure: Literal["strict", "zero", "skip"] = "strict"

    def build(self) -> Rubric:
        terms = []
        for term in self.terms:
            reward = get_reward(term.name)
            if term.params:
                reward = reward.configure(**term.params)
            terms.append(Term(reward, term.weight, term.label, term.gate, term.gate_value))
        options = self.model_dump(exclude={"name", "terms"})
        return Rubric(terms, name=self.name, **options)


def rubric_from_dict(data: dict[str, Any], source: str = "config") -> Rubric:
    try:
        config = RubricConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise RubricConfigError(f"{source}: {problems}") from error
    try:
        return config.build()
    except (LookupError, TypeError, ValueError) as error:
        raise RubricConfigError(f"{source}: {error}") from error


def load_rubric(path: str | Path) -> Rubric:
    """A Rubric from the ``[reward]`` table of a TOML file."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RubricConfigError(f"{path}: {error}") from error
    if "reward" not in data:
        raise RubricConfigError(f"{path}: no [reward] table")
    return rubric_from_dict(data["reward"], str(path))
