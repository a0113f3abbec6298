from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import payoff
from payoff.compose import Gate, Rubric, RubricConfigError, Term, load_rubric, rubric_from_dict
from payoff.compose.transforms import batch_normalize, group_normalize
from payoff.core import Outcome, Reward, Sample


def constant(value: float | None, name: str, status: str = "ok") -> Reward:
    def fn(sample: object) -> Outcome:
        return Outcome(value, status) if status != "ok" else Outcome.ok(value, {"sub": 1.0})  # type: ignore[arg-type]

    return Reward(fn, name=name)


def from_meta(name: str) -> Reward:
    """A term whose score is sample.meta[name] (None -> error), to drive rubrics from data."""

    def fn(sample: Sample) -> Outcome:
        value = sample.meta.get(name)
        return Outcome.error("missing") if value is None else Outcome.ok(value)

    return Reward(fn, name=name)


EMPTY = {"completion": ""}


@given(st.floats(-100, 100), st.floats(-100, 100), st.floats(-10, 10), st.floats(-100, 100))
def test_weighted_sum_and_metric_only_terms(a: float, b: float, w: float, metric: float) -> None:
    rubric = Rubric([(constant(a, "a"), 1.0), (constant(b, "b"), w), (constant(metric, "m"), 0.0)])
    outcome = rubric(EMPTY)
    assert outcome.score == pytest.approx(a + w * b)
    assert outcome.components["m"] == metric and outcome.components["a/sub"] == 1.0
    without_metric = Rubric([(constant(a, "a"), 1.0), (constant(b, "b"), w)])(EMPTY)
    assert without_metric.score == outcome.score  # a metric-only term never changes the total
    failing_metric = Rubric([(constant(a, "a"), 1.0), (constant(b, "b"), w), (constant(None, "m", "timeout"), 0.0)])(EMPTY)
    assert failing_metric.status == "ok" and failing_metric.score == outcome.score


@given(st.lists(st.floats(-10, 10), min_size=2, max_size=5), st.floats(0, 3))
def test_combine_modes(values: list[float], lam: float) -> None:
    terms = [Term(constant(v, f"t{i}")) for i, v in enumerate(values)]
    mean = Rubric(terms, combine="mean")(EMPTY).score
    worst = Rubric(terms, combine="min")(EMPTY).score
    cautious = Rubric(terms, combine="uncertainty", uncertainty_lambda=lam)(EMPTY).score
    assert mean == pytest.approx(sum(values) / len(values))
    assert worst == min(values) and worst <= mean + 1e-9  # worst-case <= mean
    assert cautious <= mean + 1e-9


def test_gates_count_a_term_only_when_another_passes() -> None:
    rubric = Rubric([Term(from_meta("correct")), Term(from_meta("short"), 0.5, gate="correct >= 1")])
    right = rubric({"completion": "", "meta": {"correct": 1.0, "short": 1.0}})
    wrong = rubric({"completion": "", "meta": {"correct": 0.0, "short": 1.0}})
    assert right.score == 1.5 and right.components["short/gate"] == 1.0
    assert wrong.score == 0.0 and wrong.components["short/gate"] == 0.0
    assert wrong.components["short"] == 1.0  # the raw score is still logged
    assert Gate.parse("math>=0.5") == Gate("math", ">=", 0.5)
    with pytest.raises(ValueError, match="gated on unknown term"):
        Rubric([Term(from_meta("a")), Term(from_meta("b"), gate="c > 0")])
    with pytest.raises(ValueError, match="cannot read gate"):
        Gate.parse("math is big")


def test_failure_policies() -> None:
    terms = [Term(from_meta("a")), Term(from_meta("b"), 2.0)]
    sample = {"completion": "", "meta": {"a": 1.0}}  # b errors
    strict = Rubric(terms)(sample)
    assert strict.status == "error" and strict.score is None and strict.components == {"a": 1.0}
    zero = Rubric(terms, failure="zero")(sample)
    assert zero.status == "ok" and zero.score == 1.0 and zero.info["failed_terms"] == ["b"]
    skip = Rubric(terms, failure="skip", combine="mean")(sample)
    assert skip.status == "ok" and skip.score == 1.0  # mean over the terms that scored
    all_failed = Rubric(terms, failure="skip")({"completion": "", "meta": {}})
    assert all_failed.status == "error"
    timeout_wins = Rubric([Term(constant(None, "x", "abstain")), Term(constant(None, "y", "timeout"))])(EMPTY)
    assert timeout_wins.status == "timeout"


def _batch(groups: list[str], a: list[float], b: list[float]) -> list[dict]:
    return [{"completion": "", "group": g, "meta": {"a": x, "b": y}} for g, x, y in zip(groups, a, b)]


def test_normalisation_runs_over_the_whole_batch_in_the_engine() -> None:
    groups = ["p", "p", "p", "q", "q"]
    a, b = [1.0, 0.0, 1.0, 0.0, 0.5], [2.0, 4.0, 0.0, 1.0, 1.0]
    samples = _batch(groups, a, b)
    raw = [x + 0.5 * y for x, y in zip(a, b)]
    terms = [Term(from_meta("a")), Term(from_meta("b"), 0.5)]

    group_total = payoff.score(samples, Rubric(terms, normalize="group"), workers=2)
    assert [o.score for o in group_total] == pytest.approx(group_normalize(raw, groups))
    assert [o.components["rubric/raw"] for o in group_total] == pytest.approx(raw)

    batch_total = payoff.score(samples, Rubric(terms, normalize="batch"), workers=0)
    assert [o.score for o in batch_total] == pytest.approx(batch_normalize(raw))

    per_term = payoff.score(samples, Rubric(terms, normalize_terms="batch"), workers=1)
    expected = [x + 0.5 * y for x, y in zip(batch_normalize(a), batch_normalize(b))]
    assert [o.score for o in per_term] == pytest.approx(expected)  # normalise-then-sum differs...
    assert [o.score for o in per_term] != pytest.approx([o.score for o in batch_total])  # ...from sum-then-normalise


def test_failed_samples_stay_out_of_normalisation() -> None:
    samples = _batch(["p"] * 3, [1.0, 0.0, 0.5], [0.0, 0.0, 0.0])
    samples[2]["meta"]["b"] = None
    outcomes = payoff.score(samples, Rubric([Term(from_meta("a")), Term(from_meta("b"))], normalize="group"), workers=0)
    assert [o.status for o in outcomes] == ["ok", "ok", "error"]
    assert [o.score for o in outcomes[:2]] == pytest.approx(group_normalize([1.0, 0.0], ["p", "p"]))


def test_toml_config(tmp_path: Path) -> None:
    path = tmp_path / "rubric.toml"
    path.write_text(
        '[reward]\nname = "r"\ncombine = "sum"\n'
        '[[reward.terms]]\nname = "exact_match"\nweight = 1.0\n'
        '[[reward.terms]]\nname = "think_format"\nweight = 0.5\ngate = "exact_match >= 1"\n'
    )
    rubric = load_rubric(path)
    assert rubric.name == "r" and [t.name for t in rubric.terms] == ["exact_match", "think_format"]
    assert rubric({"completion": "<think>t</think> 4", "reference": "4"}).score == 1.5
    assert rubric({"completion": "<think>t</think> 5", "reference": "4"}).score == 0.0


@pytest.mark.parametrize(
    "data, message",
    [
        ({"terms": []}, "terms: List should have at least 1 item"),
        ({"terms": [{"name": "math", "wieght": 1}]}, "terms.0.wieght: Extra inputs are not permitted"),
        ({"terms": [{"name": "math"}], "combine": "median"}, "combine: Input should be"),
        ({"terms": [{"name": "nope"}]}, "no reward named 'nope'"),
        ({"terms": [{"name": "math", "params": {"colour": 1}}]}, "has no parameter(s) ['colour']"),
    ],
)
def test_config_errors_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(RubricConfigError) as caught:
        rubric_from_dict(data, "test.toml")
    assert message in str(caught.value) and "test.toml" in str(caught.value)


def test_cli_scores_with_a_config_and_shows_every_component(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"completion": f"<think>t</think> \\boxed{{{n}}}", "reference": "4"}) + "\n" for n in (4, 5)))
    result = subprocess.run(
        [sys.executable, "-m", "payoff", "score", str(data), "--config", "examples/rubric.toml", "--out", str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    for component in ("math", "think_format", "exact_match", "think_format/answer_nonempty"):
        assert component in result.stdout
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.2, 0.2]
    bad = subprocess.run([sys.executable, "-m", "payoff", "score", str(data), "--config", "examples/rubric.toml", "-r", "math"],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert bad.returncode == 2 and "not both" in bad.stderr


def test_configured_rewards_keep_their_parameters_through_pickle() -> None:
    import pickle

    configured = payoff.get_reward("exact_match").configure(name="em2")
    clone = pickle.loads(pickle.dumps(configured))
    assert clone.name == "em2" and clone({"completion": "a", "reference": "a"}).score == 1.0


def test_toml_declares_wrappers_and_shapers() -> None:
    rubric = rubric_from_dict({
        "terms": [{"name": "exact_match", "noisy": {"rho_fp": 0.1, "rho_fn": 0.2}},
                  {"name": "think_format", "weight": 0.0}],
        "shapers": [{"kind": "hapo", "params": {"weight": 1.0, "correct_term": "exact_match"}}],
    })
    outcome = payoff.score([{"completion": "a", "reference": "a", "prompt": "p"}], rubric, workers=0)[0]
    assert outcome.score == pytest.approx(0.9 / 0.7) and outcome.components["hapo"] == 0.0
    with pytest.raises(RubricConfigError, match="shapers.0.kind"):
        rubric_from_dict({"terms": [{"name": "math"}], "shapers": [{"kind": "magic"}]})
    with pytest.raises(RubricConfigError, match="noisy.rho_fp"):
        rubric_from_dict({"terms": [{"name": "math", "noisy": {"rho_fp": 1.5, "rho_fn": 0}}]})


def test_group_terms_make_the_rubric_a_group_reward() -> None:
    rubric = Rubric([Term(payoff.get_reward("majority_vote")), Term(payoff.get_reward("math"), 0.5)])
    assert rubric.is_group
    samples = [{"completion": f"\\boxed{{{a}}}", "reference": "1", "group": g} for g, a in [("p", 1), ("p", 1), ("p", 2), ("q", 5)]]
    outcomes = payoff.score(samples, rubric, workers=2)
    assert [o.score for o in outcomes] == [1.5, 1.5, 0.0, 1.0]
