from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import payoff
from payoff.compose import Rubric, Term
from payoff.core import Outcome, Reward


def constant(value: float | None, name: str, status: str = "ok") -> Reward:
    def fn(sample: object) -> Outcome:
        return Outcome(value, status) if status != "ok" else Outcome.ok(value, {"sub": 1.0})  # type: ignore[arg-type]

    return Reward(fn, name=name)


@given(st.floats(-100, 100), st.floats(-100, 100), st.floats(-10, 10), st.floats(-100, 100))
def test_weighted_sum_and_metric_only_terms(a: float, b: float, w: float, metric: float) -> None:
    rubric = Rubric([(constant(a, "a"), 1.0), (constant(b, "b"), w), (constant(metric, "m"), 0.0)])
    outcome = rubric({"completion": ""})
    assert outcome.score == a + w * b
    assert outcome.components["m"] == metric and outcome.components["a/sub"] == 1.0
    without_metric = Rubric([(constant(a, "a"), 1.0), (constant(b, "b"), w)])({"completion": ""})
    assert without_metric.score == outcome.score  # a metric-only term never changes the total


def test_failed_weighted_term_takes_the_worst_status_and_keeps_components() -> None:
    rubric = Rubric([(constant(1.0, "a"), 1.0), (constant(None, "b", "error"), 1.0), (constant(None, "c", "abstain"), 1.0)])
    outcome = rubric({"completion": ""})
    assert outcome.status == "error" and outcome.components == {"a": 1.0, "a/sub": 1.0}
    assert outcome.info["terms"]["b"]["status"] == "error"
    metric_failure = Rubric([Term(constant(1.0, "a")), Term(constant(None, "b", "timeout"), 0.0)])({"completion": ""})
    assert metric_failure.status == "ok" and metric_failure.score == 1.0


def test_rubric_runs_through_the_engine() -> None:
    rubric = Rubric([Term(payoff.get_reward("exact_match")), Term(payoff.get_reward("think_format"), 0.5)])
    outcomes = payoff.score([{"completion": "<think>t</think> 4", "reference": "4"}], rubric, workers=1)
    assert outcomes[0].score == 1.5
