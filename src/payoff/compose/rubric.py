"""A Rubric is a Reward made of terms: weighted, gated, combined, normalised and shaped.

Scoring happens in two places. Inside the engine's workers each sample (or group) gets every
term's raw score, the gates and the combination (`combine`). Back in the caller's process,
`finalize` sees the whole batch and applies what needs it: group or batch normalisation (of the
total, or of each term before combining: GDPO-style normalise-then-sum) and the batch shapers
(stateful terms such as HAPO or PPO-C calibration). Every term's raw score stays in `components`.

Status policy when a weighted term does not end ``ok`` (``failure``):
- ``strict`` (default): the rubric takes the most severe failing status (timeout > error >
  abstain) and no score; components keep every term that did score;
- ``zero``: the failed term counts as 0 and the rubric is ``ok`` (``info['failed_terms']``);
- ``skip``: the failed term is left out of the combination (as if its weight were 0); if every
  weighted term failed, ``strict`` applies.
A metric-only term (weight 0) never affects the score or the status.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from payoff.compose.transforms import batch_normalize, ensemble_uncertainty, group_normalize
from payoff.core import DEFAULT_TIMEOUT_S, Outcome, Reward, Sample, check_numbers

_SEVERITY = {"ok": 0, "abstain": 1, "error": 2, "timeout": 3}
_GATE_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}
Combine = Literal["sum", "mean", "min", "uncertainty"]
Normalize = Literal["none", "group", "batch"]
Failure = Literal["strict", "zero", "skip"]
# A batch shaper sees every sample and outcome of a batch, in the caller's process, after scoring.
Shaper = Callable[[Sequence[Sample], list[Outcome]], None]


@runtime_checkable
class Learning(Protocol):
    """A shaper whose state carries over from batch to batch (HAPO, LASER-D, PPO-C): what it
    learned goes into checkpoints."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Gate:
    """A term counts only when another term's raw score passes a threshold (G-RA, P-GRPO, CRF)."""

    term: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        for op in (">=", "<=", "==", ">", "<"):
            left, found, right = text.partition(op)
            if found:
                try:
                    return cls(left.strip(), op, float(right))
                except ValueError:
                    break
        raise ValueError(f"cannot read gate {text!r}; expected e.g. 'math >= 1'")

    def opens(self, outcome: Outcome | None) -> bool:
        return outcome is not None and outcome.score is not None and _GATE_OPS[self.op](outcome.score, self.threshold)


# Shaper attributes that are parameters (the rest is learned state, which must not split the cache).
_SHAPER_PARAMETERS = {"weight", "alpha", "coverage", "correct_term", "unit", "initial"}

@dataclass(frozen=True)
class Term:
    reward: Reward
    weight: float = 1.0
    label: str | None = None
    gate: Gate | str | None = None
    gate_value: float = 0.0

    def __post_init__(self) -> None:
        check_numbers(f"term {self.label or getattr(self.reward, 'name', '?')}", weight=self.weight, gate_value=self.gate_value)

    @property
    def name(self) -> str:
        return self.label or self.reward.name

    @property
    def gate_rule(self) -> Gate | None:
        return Gate.parse(self.gate) if isinstance(self.gate, str) else self.gate


@dataclass
class RubricOptions:
    combine: Combine = "sum"
    uncertainty_lambda: float = 1.0
    normalize: Normalize = "none"
    normalize_terms: Normalize = "none"
    failure: Failure = "strict"
    eps: float = 1e-6
    shapers: list[Shaper] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_numbers("rubric", {"uncertainty_lambda": (0, math.inf), "eps": (0, math.inf)},
                      uncertainty_lambda=self.uncertainty_lambda, eps=self.eps)


class Rubric(Reward):
    """``Rubric([Term(math), Term(think_format, 0.2), Term(cosine_length, 0.5, gate="math >= 1")])``"""

    def __init__(self, terms: Sequence[Term | tuple[Reward, float]], name: str | None = None, **options: Any) -> None:
        self.terms = [t if isinstance(t, Term) else Term(*t) for t in terms]
        if not self.terms:
            raise ValueError("a Rubric needs at least one term")
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"term names must be unique (use label=...), got {names}")
        self.options = RubricOptions(**options)
        for term in self.terms:
            gate = term.gate_rule
            if gate is not None and gate.term not in names:
                raise ValueError(f"term {term.name} is gated on unknown term {gate.term!r}; terms: {names}")
        if not any(t.weight != 0 for t in self.terms):
            raise ValueError("a Rubric needs at least one term with a nonzero weight")
        label = name or "+".join(f"{t.weight:g}*{t.name}" for t in self.terms)
        is_group = any(t.reward.is_group for t in self.terms)
        batched = [t.reward.batch_size for t in self.terms if getattr(t.reward, "batch_size", None)]
        # With a model-backed term the rubric is batched itself, so the model still sees whole
        # batches (inside a group rubric, a batched term scores each group in one call).
        super().__init__(self._score_one, name=label, is_group=is_group, batch_size=min(batched) if batched and not is_group else None)
        # A term without its own timeout counts at the engine's default, not as 0 s.
        self.timeout_s = sum(t.reward.timeout_s or DEFAULT_TIMEOUT_S for t in self.terms)
        self.doc = "Rubric of " + ", ".join(names)

    def fingerprint(self) -> str:
        """Every term (weight, label, gate and gate value, the term reward's own fingerprint)
        and every option, shapers with their parameters included."""
        parts = [f"{t.weight!r}*{t.name}:{t.gate!r}:{t.gate_value!r}:{t.reward.fingerprint()}" for t in self.terms]
        options = {k: v for k, v in vars(self.options).items() if k != "shapers"}
        shapers = [(type(s).__qualname__, sorted((k, repr(v)) for k, v in {**vars(s), **vars(getattr(s, "state", None) or s)}.items()
                                                 if k in _SHAPER_PARAMETERS)) for s in self.options.shapers]
        return "rubric:" + ",".join(parts) + repr(sorted(options.items())) + repr(shapers)

    def __reduce__(self) -> tuple[Any, ...]:
        options = {k: v for k, v in vars(self.options).items()}
        return (_rebuild, (self.terms, self.name, options))

    # -- in the worker ------------------------------------------------------------------------
    def _score_one(self, sample: Sample) -> Outcome:
        return self._combine_terms([t.reward.score_one(sample) for t in self.terms])

    def score_batch(self, samples: list[Sample]) -> list[Outcome]:
        per_term = [t.reward.score_batch(samples) for t in self.terms]
        return [self._combine_terms([outcomes[i] for outcomes in per_term]) for i in range(len(samples))]

    def score_group(self, samples: list[Sample]) -> list[Outcome]:
        per_term = [t.reward.score_group(samples) for t in self.terms]
        return [self._combine_terms([outcomes[i] for outcomes in per_term]) for i in range(len(samples))]

    def _combine_terms(self, outcomes: list[Outcome]) -> Outcome:
        by_name = {term.name: outcome for term, outcome in zip(self.terms, outcomes)}
        components: dict[str, float] = {}
        terms_info: dict[str, Any] = {}
        values: dict[str, float] = {}
        failed: list[str] = []
        worst = "ok"
        for term, outcome in zip(self.terms, outcomes):
            terms_info[term.name] = {"status": outcome.status, **outcome.info}
            if outcome.score is not None:
                components[term.name] = outcome.score
                for sub, value in outcome.components.items():
                    if sub != term.name:
                        components[f"{term.name}/{sub}"] = value
            if term.weight == 0:
                continue
            if outcome.score is None:
                failed.append(term.name)
                if _SEVERITY[outcome.status] > _SEVERITY[worst]:
                    worst = outcome.status
                continue
            value = outcome.score
            gate = term.gate_rule
            if gate is not None:
                opened = gate.opens(by_name.get(gate.term))
                components[f"{term.name}/gate"] = float(opened)
                value = value if opened else term.gate_value
            values[term.name] = value
        policy = self.options.failure
        if failed and policy == "zero":
            values.update({name: 0.0 for name in failed})
        if failed and (policy == "strict" or not values):
            key = "reason" if worst == "abstain" else "error"
            return Outcome(None, worst, components, {"terms": terms_info, key: f"term(s) {failed} ended {worst}"})  # type: ignore[arg-type]
        info: dict[str, Any] = {"terms": terms_info}
        if failed:
            info["failed_terms"] = failed
        return Outcome(self.combine(values), "ok", components, info)

    def combine(self, values: dict[str, float]) -> float:
        """Combine the weighted terms' values (gates already applied)."""
        weights = {t.name: t.weight for t in self.terms}
        mode = self.options.combine
        if mode == "sum":
            return sum(weights[n] * v for n, v in values.items())
        if mode == "mean":
            total = sum(weights[n] for n in values)
            return sum(weights[n] * v for n, v in values.items()) / total if total else 0.0
        if mode == "min":
            return min(values.values())
        return ensemble_uncertainty(list(values.values()), self.options.uncertainty_lambda)

    # -- in the caller, over the whole batch ----------------------------------------------------
    def finalize(self, samples: Sequence[Sample], outcomes: list[Outcome], learn: bool = True) -> list[Outcome]:
        """Normalise and shape the batch. ``learn=False`` shapes it as the shapers stand without
        their learning from it (a baseline or held-out batch): each shaper runs on a copy."""
        options = self.options
        scored = [i for i, o in enumerate(outcomes) if o.status == "ok"]
        groups = [samples[i].group if samples[i].group is not None else ("sample", i) for i in scored]
        if options.normalize_terms != "none" and scored:
            self._normalize_terms(outcomes, scored, groups)
        if options.normalize != "none" and scored:
            raw = [outcomes[i].score for i in scored]
            normalized = _normalize(raw, groups, options.normalize, options.eps)  # type: ignore[arg-type]
            for i, value in zip(scored, normalized):
                outcomes[i].components["rubric/raw"] = outcomes[i].score  # type: ignore[assignment]
                outcomes[i].score = value
        for shaper in options.shapers:
            (shaper if learn else copy.deepcopy(shaper))(samples, outcomes)
        return outcomes

    def state_dict(self) -> list[dict[str, Any] | None]:
        """What each batch shaper learned so far (None for a shaper without state), for a
        checkpoint; `load_state_dict` puts it back."""
        return [shaper.state_dict() if isinstance(shaper, Learning) else None for shaper in self.options.shapers]

    def load_state_dict(self, state: Sequence[dict[str, Any] | None]) -> None:
        for shaper, saved in zip(self.options.shapers, state):
            if saved is not None and isinstance(shaper, Learning):
                shaper.load_state_dict(saved)

    def _normalize_terms(self, outcomes: list[Outcome], scored: list[int], groups: list[Any]) -> None:
        """GDPO-style: normalise each weighted term across the batch (or group), then combine."""
        per_sample: list[dict[str, float]] = [{} for _ in scored]
        for term in self.terms:
            if term.weight == 0:
                continue
            present = [k for k, i in enumerate(scored) if term.name in outcomes[i].components]
            raw = []
            for k in present:
                components = outcomes[scored[k]].components
                opened = components.get(f"{term.name}/gate", 1.0)
                raw.append(components[term.name] if opened else term.gate_value)
            normalized = _normalize(raw, [groups[k] for k in present], self.options.normalize_terms, self.options.eps)
            for k, value in zip(present, normalized):
                per_sample[k][term.name] = value
        for k, i in enumerate(scored):
            outcomes[i].components["rubric/raw"] = outcomes[i].score  # type: ignore[assignment]
            outcomes[i].score = self.combine(per_sample[k]) if per_sample[k] else 0.0


def _normalize(values: list[float], groups: list[Any], how: str, eps: float) -> list[float]:
    return group_normalize(values, groups, eps) if how == "group" else batch_normalize(values, eps)


def _rebuild(terms: list[Term], name: str, options: dict[str, Any]) -> Rubric:
    return Rubric(terms, name=name, **options)
