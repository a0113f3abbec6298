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

[[reward.terms]]
name = "cosine_length"
weight = 0.5
gate = "math >= 1"         # counts only when the answer is right
params = { max_length = 2048 }
noisy = { rho_fp = 0.05, rho_fn = 0.1 }   # wrappers: noisy, par = true, steps = { method = "delta" }

[[reward.shapers]]
kind = "hapo"              # hapo | laser_d | ppo_c
params = { weight = 0.5 }
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payoff.compose.rubric import Rubric, Shaper, Term
from payoff.compose.shapers import CalibrationShaper, HapoShaper, LaserDShaper
from payoff.compose.wrappers import fallback, noisy_corrected, par_reward, step_shaped
from payoff.core import Reward
from payoff.registry import get_reward


class RubricConfigError(ValueError):
    pass


class NoisyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rho_fp: float = Field(ge=0, lt=1)
    rho_fn: float = Field(ge=0, lt=1)


class StepsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["clip", "delta", "min"] = "clip"
    eta: float = 0.0


class FallbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the reward asked where the term abstains (e.g. judge_reference)")
    params: dict[str, Any] = Field(default_factory=dict)
    on: list[str] = Field(default_factory=lambda: ["abstain"], description="statuses of the term that hand over to it")


class TermConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="registered reward, module:function or file.py:function")
    weight: float = 1.0
    label: str | None = Field(None, description="component name (default: the reward's name)")
    gate: str | None = Field(None, description="e.g. 'math >= 1': count only when that term passes")
    gate_value: float = 0.0
    params: dict[str, Any] = Field(default_factory=dict, description="keyword parameters of the reward")
    noisy: NoisyConfig | None = Field(None, description="backward correction for a noisy 0/1 verifier")
    par: bool = Field(False, description="PAR against meta['reference_completions']")
    steps: StepsConfig | None = Field(None, description="shape info['step_rewards'] (Clip, Delta, min-form)")
    fallback: FallbackConfig | None = Field(None, description="another reward, asked only where this one abstains")

    def reward(self) -> Reward:
        made = get_reward(self.name)
        if self.params:
            made = made.configure(**self.params)
        if self.steps is not None:
            made = step_shaped(made, self.steps.method, self.steps.eta)
        if self.noisy is not None:
            made = noisy_corrected(made, self.noisy.rho_fp, self.noisy.rho_fn)
        if self.par:
            made = par_reward(made)
        if self.fallback is not None:
            second = get_reward(self.fallback.name)
            if self.fallback.params:
                second = second.configure(**self.fallback.params)
            made = fallback(made, second, tuple(self.fallback.on))
        return made


class ShaperConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["hapo", "laser_d", "ppo_c"]
    params: dict[str, Any] = Field(default_factory=dict)

    def build(self) -> Shaper:
        maker = {"hapo": HapoShaper, "laser_d": LaserDShaper, "ppo_c": CalibrationShaper}[self.kind]
        return maker(**self.params)  # type: ignore[return-value]


class RubricConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    terms: list[TermConfig] = Field(min_length=1)
    combine: Literal["sum", "mean", "min", "uncertainty"] = "sum"
    uncertainty_lambda: float = 1.0
    normalize: Literal["none", "group", "batch"] = "none"
    normalize_terms: Literal["none", "group", "batch"] = "none"
    failure: Literal["strict", "zero", "skip"] = "strict"
    shapers: list[ShaperConfig] = Field(default_factory=list)

    def build(self) -> Rubric:
        # A wrapped term keeps the name the config gave it, so gates and shapers can refer to it.
        terms = [Term(t.reward(), t.weight, t.label or t.name, t.gate, t.gate_value) for t in self.terms]
        options = self.model_dump(exclude={"name", "terms", "shapers"})
        return Rubric(terms, name=self.name, shapers=[s.build() for s in self.shapers], **options)


def rubric_from_dict(data: dict[str, Any], source: str = "config") -> Rubric:
    try:
        config = RubricConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise RubricConfigError(f"{source}: {problems}") from error
    try:
        return config.build()
    except (LookupError, TypeError, ValueError) as error:  # unknown reward, parameter or gate
        raise RubricConfigError(f"{source}: {error}") from error


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML (``1e-5``, ``true``, ``[1, 2]``, ``"x"``), or else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``--set section.key=value`` assignments into a config's data; a number picks an item of an
    array of tables (``reward.terms.1.weight=0.5``). Raises ValueError naming the assignment."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        for part in parts[:-1]:
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ValueError(f"--set {key}: {part} is not an index of that array (it has {len(node)} items)")
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ValueError(f"--set {key}: {part} is not a table")
            if not isinstance(node, (dict, list)):
                raise ValueError(f"--set {key}: {part} is not a table")
        if isinstance(node, list):
            if not parts[-1].isdigit() or int(parts[-1]) >= len(node):
                raise ValueError(f"--set {key}: {parts[-1]} is not an index of that array")
            node[int(parts[-1])] = parse_value(value.strip())
        else:
            node[parts[-1]] = parse_value(value.strip())
    return data


def load_rubric(path: str | Path, overrides: list[str] | None = None) -> Rubric:
    """A Rubric from the ``[reward]`` table of a TOML file, with ``--set`` overrides applied."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RubricConfigError(f"{path}: {error}") from error
    try:
        data = apply_overrides(data, list(overrides or []))
    except ValueError as error:
        raise RubricConfigError(str(error)) from error
    if "reward" not in data:
        raise RubricConfigError(f"{path}: no [reward] table")
    return rubric_from_dict(data["reward"], str(path))
