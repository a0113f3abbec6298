from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

import payoff
from payoff.core import REGISTRY, Outcome, Reward, Sample, SampleError, to_outcome


def test_sample_from_dict_accepts_every_reference_alias() -> None:
    for key in ("reference", "answer", "solution", "ground_truth"):
        sample = Sample.from_dict({"completion": "c", key: "42", "group": "g", "meta": {"a": 1}})
        assert sample.reference == "42" and sample.group == "g" and sample.meta == {"a": 1}


def test_reference_takes_precedence_over_aliases() -> None:
    assert Sample.from_dict({"completion": "c", "answer": "a", "reference": "r"}).reference == "r"


@pytest.mark.parametrize(
    "record, message",
    [
        ({"prompt": "p"}, "missing field 'completion'"),
        ({"completion": 3}, "'completion' must be a string"),
        ({"completion": "c", "meta": [1]}, "'meta' must be an object"),
        ({"completion": "c", "group": [1]}, "'group' must be a string or an integer"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_sample_from_dict_rejects_bad_records_with_a_reason(record: object, message: str) -> None:
    with pytest.raises(SampleError, match=message):
        Sample.from_dict(record)  # type: ignore[arg-type]


def test_outcome_invariants() -> None:
    with pytest.raises(ValueError):
        Outcome(None, "ok")
    with pytest.raises(ValueError):
        Outcome(float("nan"), "ok")
    with pytest.raises(ValueError):
        Outcome(1.0, "error")
    with pytest.raises(ValueError):
        Outcome(None, "maybe")  # type: ignore[arg-type]
    assert Outcome.abstain("no ref").info["reason"] == "no ref"
    assert Outcome.timeout(2).info["error"] == "no result within 2 s"


@given(st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True)))
def test_to_outcome_turns_numbers_into_scores_and_nonfinite_into_errors(value: float) -> None:
    outcome = to_outcome(value, "r")
    if math.isfinite(float(value)):
        assert outcome.status == "ok" and outcome.score == float(value)
    else:
        assert outcome.status == "error" and "non-finite" in outcome.info["error"]


def test_to_outcome_is_loud_about_wrong_types_and_none() -> None:
    assert to_outcome(None, "r").status == "abstain"
    wrong = to_outcome("1.0", "r")
    assert wrong.status == "error" and "returned str" in wrong.info["error"]


def test_reward_decorator_registers_and_calls_in_process() -> None:
    @payoff.reward(name="test_len_reward")
    def length(sample: Sample) -> float:
        """Length of the completion."""
        return len(sample.completion)

    try:
        assert isinstance(length, Reward) and REGISTRY["test_len_reward"] is length
        assert payoff.get_reward("test_len_reward") is length
        assert length({"completion": "abc"}).score == 3.0
        assert length.summary == "Length of the completion."
    finally:
        REGISTRY.pop("test_len_reward")


def test_group_reward_sees_the_whole_group_and_checks_the_count() -> None:
    @payoff.group_reward(register=False)
    def rank(samples: list[Sample]) -> list[float]:
        return [float(sorted(s.completion for s in samples).index(s.completion)) for s in samples]

    @payoff.group_reward(register=False)
    def short(samples: list[Sample]) -> list[float]:
        return [1.0]

    assert [o.score for o in rank([{"completion": "b"}, {"completion": "a"}])] == [1.0, 0.0]
    bad = short([{"completion": "b"}, {"completion": "a"}])
    assert [o.status for o in bad] == ["error", "error"] and "returned 1 values for 2" in bad[0].info["error"]


def test_fingerprint_changes_with_the_source() -> None:
    first = Reward(lambda s: 1.0, name="x")
    second = Reward(lambda s: 2.0, name="x")
    assert first.fingerprint() != second.fingerprint()
    assert first.fingerprint() == Reward(first.fn, name="x").fingerprint()


def test_decorated_rewards_pickle_by_reference() -> None:
    from payoff.rewards import exact_match

    assert pickle.loads(pickle.dumps(exact_match)) is exact_match


@pytest.mark.parametrize("name, params, named", [
    ("repetition_penalty", {"max_penalty": 0.5}, "max_penalty"),  # a penalty must not reward repetition
    ("repetition_penalty", {"ngram": 0}, "ngram"),
    ("cosine_length", {"max_length": -1}, "max_length"),
    ("cosine_length", {"min_value_wrong": float("nan")}, "min_value_wrong"),
    ("overlong_penalty", {"cache": 0}, "cache"),
    ("overlong_penalty", {"unit": "bytes"}, "unit"),
    ("laser", {"target_length": 0}, "target_length"),
    ("budget_length", {"penalty": -0.5}, "penalty"),
    ("grpo_lambda", {"threshold": 1.5}, "threshold"),
    ("code", {"timeout_s": float("inf")}, "timeout_s"),
    ("code", {"memory_mb": True}, "memory_mb"),
    ("sql", {"max_rows": -3}, "max_rows"),
    ("tool_call", {"cost_weight": -1}, "cost_weight"),
])
def test_builtin_parameters_are_checked_when_configured(name: str, params: dict, named: str) -> None:
    from payoff.core import RewardParameterError
    from payoff.registry import get_reward

    with pytest.raises(RewardParameterError, match=rf"reward {name}: parameter {named}"):
        get_reward(name).configure(**params)


def test_valid_parameters_are_converted_and_composition_numbers_are_checked() -> None:
    from payoff.compose import Rubric, Term
    from payoff.compose.shapers import LaserDShaper
    from payoff.core import RewardParameterError
    from payoff.registry import get_reward

    assert get_reward("cosine_length").configure(max_length="4096").params["max_length"] == 4096  # TOML/CLI strings
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(RewardParameterError, match="weight"):
            Term(get_reward("exact_match"), bad)
    with pytest.raises(RewardParameterError, match="uncertainty_lambda"):
        Rubric([Term(get_reward("exact_match"))], uncertainty_lambda=-1)
    with pytest.raises(RewardParameterError, match="coverage"):
        LaserDShaper(coverage=2.0)


def test_limits_have_one_name_and_the_old_ones_are_refused() -> None:
    # An unreleased 0.1 keeps no aliases: `timeout`, `wall_s` and `time_limit` are unknown names.
    from pydantic import ValidationError

    from payoff.engine import Engine
    from payoff.registry import get_reward
    from payoff.rl.config import TrainConfig
    from payoff.sandbox import Limits
    from payoff.serve.client import Client, remote_reward

    assert Limits(timeout_s=3).timeout_s == 3
    with pytest.raises(TypeError, match="wall_s"):
        Limits(wall_s=4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"no parameter\(s\) \['time_limit'\]"):
        get_reward("code").configure(time_limit=2.5)
    assert get_reward("code").configure(timeout_s=2.5).params == {"timeout_s": 2.5}
    with pytest.raises(TypeError, match="timeout"):
        payoff.reward(name="old_timeout_name", register=False, timeout=3)  # type: ignore[call-arg]
    assert payoff.reward(name="new_timeout_name", register=False, timeout_s=3)(lambda s: 1.0).timeout_s == 3
    with pytest.raises(TypeError, match="timeout"):
        Engine("exact_match", workers=0, timeout=7)  # type: ignore[call-arg]
    with Engine("exact_match", workers=0, timeout_s=7) as engine:
        assert engine.timeout_s == 7
    with pytest.raises(ValidationError, match="timeout"):
        TrainConfig.model_validate({"engine": {"timeout": 9}})
    assert TrainConfig.model_validate({"engine": {"timeout_s": 9}}).engine.timeout_s == 9
    with pytest.raises(TypeError, match="timeout"):
        Client("http://127.0.0.1:9", timeout=1.0)  # type: ignore[call-arg]
    assert remote_reward("http://127.0.0.1:9", timeout_s=2.0).timeout_s == 7.0


