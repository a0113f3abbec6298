"""What scores a step's rollouts, and what "correct" means.

A training step has the meaning of one `payoff score` call over the step's samples. Its
generation batches are scored raw as they come (`score_raw`, while the next batch generates),
and the reward's batch step (a Rubric's group or batch normalisation and its stateful shapers:
HAPO, LASER-D, PPO-C) runs once over the whole step (`batch_step`). Three things score rollouts,
all `RolloutScorer`s: `EngineScoring` (the reward through the engine), `AccuracyJoin` (the
reward and, beside it, the verifier that defines accuracy) and `PolicyScoring` (a reward read
from the live policy, in `payoff.rl.policy_rewards`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from payoff.core import Outcome, Sample
from payoff.engine.batch_step import run_batch_step
from payoff.models.rollout import Rollouts

if TYPE_CHECKING:
    from payoff.engine.pool import Engine


def is_correct(outcome: Outcome, component: str | None, threshold: float) -> bool:
    """Correct when the accuracy component reaches ``threshold``; without a component named, the
    total. A named component the outcome lacks (its check failed) is not correct: the total of
    another reward never stands in for it."""
    value = outcome.score if component is None else outcome.components.get(component)
    return value is not None and value >= threshold


def join_accuracy(outcomes: Sequence[Outcome], checks: Sequence[Outcome], name: str) -> None:
    """Record the accuracy reward's score as component ``name`` of each outcome it scored."""
    for outcome, check in zip(outcomes, checks, strict=True):
        if check.status == "ok" and check.score is not None:
            outcome.components[name] = float(check.score)


class RolloutScorer(Protocol):
    """Scores rollouts in two parts: ``score_raw`` per generation batch (each sample's own
    outcome), then ``batch_step`` once over everything a call covers. ``learn=False`` shapes a
    batch without the reward's shapers learning from it: ReMax's greedy baselines and held-out
    batches are measured with the reward as it stands, and never move its state."""

    # False when scoring must run in the trainer's thread (it reads the live policy, which the
    # next generation batch uses), so it cannot overlap generation.
    overlaps_generation: bool

    def score_raw(self, samples: Sequence[Sample], rollouts: Rollouts | None = None) -> list[Outcome]: ...

    def batch_step(self, samples: Sequence[Sample], outcomes: list[Outcome], learn: bool = True) -> None: ...

    def score(self, samples: Sequence[Sample], rollouts: Rollouts | None = None, learn: bool = True) -> list[Outcome]:
        """One `payoff score` call: the raw outcomes, then the batch step over all of them."""
        outcomes = self.score_raw(samples, rollouts)
        self.batch_step(samples, outcomes, learn)
        return outcomes


class EngineScoring(RolloutScorer):
    """The reward through the engine's workers; its batch step in this process."""

    overlaps_generation = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def score_raw(self, samples: Sequence[Sample], rollouts: Rollouts | None = None) -> list[Outcome]:
        return self.engine.score(list(samples), batch_step=False)

    def batch_step(self, samples: Sequence[Sample], outcomes: list[Outcome], learn: bool = True) -> None:
        run_batch_step(self.engine.reward, list(samples), outcomes, learn)  # type: ignore[arg-type]


class AccuracyJoin(RolloutScorer):
    """The scorer `payoff rl train` uses when ``accuracy_reward`` is not a term of the reward (a
    reward model or a judge, with ``accuracy_reward = "math"``): the reward and the accuracy
    reward score each batch side by side, and the accuracy reward's score joins the components,
    so accuracy means the verifier's verdict, never the learned reward's score. The verdict is
    each sample's raw outcome: whether an answer is correct does not depend on its batch."""

    overlaps_generation = True

    def __init__(self, engine: Engine, accuracy_engine: Engine, name: str) -> None:
        self.engine, self.accuracy_engine, self.name = engine, accuracy_engine, name

    def score_raw(self, samples: Sequence[Sample], rollouts: Rollouts | None = None) -> list[Outcome]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            checks = pool.submit(self.accuracy_engine.score, list(samples), batch_step=False)
            outcomes = self.engine.score(list(samples), batch_step=False)
            join_accuracy(outcomes, checks.result(), self.name)
        return outcomes

    def batch_step(self, samples: Sequence[Sample], outcomes: list[Outcome], learn: bool = True) -> None:
        run_batch_step(self.engine.reward, list(samples), outcomes, learn)  # type: ignore[arg-type]
