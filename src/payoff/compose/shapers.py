"""Batch shapers: stateful shaping that needs the whole batch and the run's history.

They run in the caller's process (`Rubric(..., shapers=[...])`, applied by `Rubric.finalize`),
because reward functions run in worker processes that cannot share state. Each adds its term to
the score of ``ok`` outcomes and logs it as a component.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from payoff.compose.transforms import CalibrationState
from payoff.core import Outcome, Sample, check_numbers
from payoff.rewards.choice import stated_confidence
from payoff.rewards.common import length


def _prompt_key(sample: Sample) -> str:
    text = sample.prompt if isinstance(sample.prompt, str) else json.dumps(sample.prompt, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def _correct(sample: Sample, outcome: Outcome, term: str) -> float | None:
    if term in outcome.components:
        return float(outcome.components[term] >= 1.0)
    known = sample.meta.get("correct")
    return float(bool(known)) if isinstance(known, (bool, int, float)) else None


class HapoShaper:
    """HAPO (Huang et al. 2025, history-aware length reward). Per prompt, h is the shortest correct
    length seen so far in the run. With f = cos(min(pi/2 * L / h, pi)) (1 at L = 0, 0 at L = h,
    -1 from L = 2h): a correct answer gains weight * f, a wrong one weight * min(f, 0). No history
    yet gives 0. h is updated after each batch with that batch's correct lengths."""

    def __init__(self, weight: float = 0.5, correct_term: str = "math", unit: str = "tokens") -> None:
        check_numbers("hapo", weight=weight)
        self.weight, self.correct_term, self.unit = weight, correct_term, unit
        self.history: dict[str, int] = {}

    def state_dict(self) -> dict[str, Any]:
        """What this shaper learned (for a checkpoint); `load_state_dict` puts it back."""
        return {"history": dict(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = {str(k): int(v) for k, v in state.get("history", {}).items()}

    def __call__(self, samples: Sequence[Sample], outcomes: list[Outcome]) -> None:
        seen: dict[str, int] = {}
        for sample, outcome in zip(samples, outcomes):
            correct = _correct(sample, outcome, self.correct_term)
            if outcome.status != "ok" or correct is None:
                continue
            key, size = _prompt_key(sample), length(sample, self.unit)
            best = self.history.get(key)
            bonus = 0.0
            if best:
                f = math.cos(min(math.pi / 2 * size / best, math.pi))
                bonus = self.weight * (f if correct else min(f, 0.0))
            outcome.components["hapo"] = bonus
            outcome.score = (outcome.score or 0.0) + bonus
            if correct:
                seen[key] = min(seen.get(key, size), size)
        for key, size in seen.items():
            self.history[key] = min(self.history.get(key, size), size)


class LaserDShaper:
    """LASER-D (Liu et al. 2025): a difficulty-aware target length that adapts during training.
    Groups are bucketed by their accuracy (easy >= 2/3, medium >= 1/3, hard below); each bucket's
    target is the ``coverage`` quantile of the correct lengths it saw in the previous batch
    (``initial`` before that). A correct answer within its bucket's target gains ``alpha``."""

    def __init__(self, alpha: float = 0.5, coverage: float = 0.9, initial: int = 4096, correct_term: str = "math", unit: str = "tokens") -> None:
        check_numbers("laser_d", {"coverage": (0, 1), "initial": (1, math.inf)}, alpha=alpha, coverage=coverage, initial=initial)
        self.alpha, self.coverage, self.correct_term, self.unit = alpha, coverage, correct_term, unit
        self.targets = {"easy": float(initial), "medium": float(initial), "hard": float(initial)}

    def state_dict(self) -> dict[str, Any]:
        return {"targets": dict(self.targets)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.targets.update({str(k): float(v) for k, v in state.get("targets", {}).items()})

    def __call__(self, samples: Sequence[Sample], outcomes: list[Outcome]) -> None:
        members: dict[Any, list[int]] = defaultdict(list)
        for index, sample in enumerate(samples):
            members[sample.group if sample.group is not None else ("sample", index)].append(index)
        lengths_by_bucket: dict[str, list[int]] = defaultdict(list)
        for indices in members.values():
            verdicts = [_correct(samples[i], outcomes[i], self.correct_term) for i in indices]
            known = [v for v in verdicts if v is not None]
            accuracy = sum(known) / len(known) if known else 0.0
            bucket = "easy" if accuracy >= 2 / 3 else "medium" if accuracy >= 1 / 3 else "hard"
            for i, verdict in zip(indices, verdicts):
                if outcomes[i].status != "ok" or verdict is None:
                    continue
                size = length(samples[i], self.unit)
                bonus = self.alpha * float(bool(verdict) and size <= self.targets[bucket])
                outcomes[i].components["laser_d"] = bonus
                outcomes[i].components["laser_d/target"] = self.targets[bucket]
                outcomes[i].score = (outcomes[i].score or 0.0) + bonus
                if verdict:
                    lengths_by_bucket[bucket].append(size)
        for bucket, sizes in lengths_by_bucket.items():
            ordered = sorted(sizes)
            self.targets[bucket] = float(ordered[min(len(ordered) - 1, int(self.coverage * len(ordered)))])


class CalibrationShaper:
    """PPO-C (calibrated reward): running mean rbar <- a * mean(r) + (1 - a) * rbar, then
    r' = r + w * (r - rbar) * (c - 0.5) with the completion's stated confidence c (0.5 if none)."""

    def __init__(self, alpha: float = 0.1, weight: float = 0.5) -> None:
        self.state = CalibrationState(alpha, weight)

    def state_dict(self) -> dict[str, Any]:
        return {"rbar": self.state.rbar}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.rbar = float(state.get("rbar", self.state.rbar))

    def __call__(self, samples: Sequence[Sample], outcomes: list[Outcome]) -> None:
        scored = [i for i, o in enumerate(outcomes) if o.status == "ok"]
        confidences = [stated_confidence(samples[i].completion) for i in scored]
        values = [c if c is not None else 0.5 for c in confidences]
        calibrated = self.state.apply([outcomes[i].score for i in scored], values)  # type: ignore[misc]
        for i, value, confidence in zip(scored, calibrated, values):
            outcomes[i].components["ppo_c/confidence"] = confidence
            outcomes[i].score = value
