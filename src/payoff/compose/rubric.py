"""A Rubric is a Reward made of weighted terms; every term's score is kept as a component."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from payoff.core import Outcome, Reward, Sample

# When a weighted term fails, the rubric takes the worst status among its failing terms.
_SEVERITY = {"ok": 0, "abstain": 1, "error": 2, "timeout": 3}


@dataclass(frozen=True)
class Term:
    reward: Reward
    weight: float = 1.0

    @property
    def name(self) -> str:
        return self.reward.name


class Rubric(Reward):
    """Weighted sum of rewards: ``score = sum_i w_i * r_i``.

    A term with weight 0 is metric-only: scored and logged as a component, never summed. Status
    policy: if any weighted term is not ``ok`` the rubric takes the most severe such status
    (timeout > error > abstain) and no score, while ``components`` still keeps every term that
    did score; ``info['terms']`` has each term's status and info.
    """

    def __init__(self, terms: Sequence[Term | tuple[Reward, float]], name: str | None = None) -> None:
        self.terms = [t if isinstance(t, Term) else Term(*t) for t in terms]
        if not self.terms:
            raise ValueError("a Rubric needs at least one term")
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"term names must be unique, got {names}")
        label = name or "+".join(f"{t.weight:g}*{t.name}" for t in self.terms)
        super().__init__(self._score_one, name=label, is_group=any(t.reward.is_group for t in self.terms))
        self.timeout = max((t.reward.timeout or 0 for t in self.terms), default=0) or None
        self.doc = "Weighted sum of " + ", ".join(names)

    def fingerprint(self) -> str:
        return "rubric:" + ",".join(f"{t.weight!r}*{t.reward.fingerprint()}" for t in self.terms)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Rubric, (self.terms, self.name))

    def _score_one(self, sample: Sample) -> Outcome:
        return self._combine([t.reward.score_one(sample) for t in self.terms])

    def score_group(self, samples: list[Sample]) -> list[Outcome]:
        per_term = [t.reward.score_group(samples) for t in self.terms]
        return [self._combine([outcomes[i] for outcomes in per_term]) for i in range(len(samples))]

    def _combine(self, outcomes: list[Outcome]) -> Outcome:
        components: dict[str, float] = {}
        terms_info: dict[str, Any] = {}
        total = 0.0
        worst = "ok"
        for term, outcome in zip(self.terms, outcomes):
            terms_info[term.name] = {"status": outcome.status, **outcome.info}
            if outcome.score is not None:
                components[term.name] = outcome.score
                for sub, value in outcome.components.items():
                    if sub != term.name:
                        components[f"{term.name}/{sub}"] = value
                total += term.weight * outcome.score
            elif term.weight != 0 and _SEVERITY[outcome.status] > _SEVERITY[worst]:
                worst = outcome.status
        if worst != "ok":
            failed = [n for n, i in terms_info.items() if i["status"] == worst]
            key = "reason" if worst == "abstain" else "error"
            return Outcome(None, worst, components, {"terms": terms_info, key: f"term(s) {failed} ended {worst}"})  # type: ignore[arg-type]
        return Outcome(total, "ok", components, {"terms": terms_info})
