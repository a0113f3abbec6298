"""score_model and label_model graders through a real OpenAI-compatible server (llama.cpp's,
serving the embedded SmolLM2 on 127.0.0.1, as the judge tests use) and through the local backend.
The tiny model's verdicts are not the point: every outcome is either a score read from the
model's own reply (recorded in ``info["reply"]``) inside the range / a label of the config, or an
error that says why; never a silent number."""

from __future__ import annotations

import re

import pytest

from payoff.core import Sample
from payoff.engine import score
from payoff.registry import get_reward

SAMPLES = [Sample(completion=c, prompt="What is the capital of France?", meta={"reference_answer": "Paris"})
           for c in ("Paris", "The capital of France is Paris.", "Berlin", "I don't know.")]
SCORE_MODEL = {"type": "score_model", "name": "capital", "model": "gpt-4o-2024-08-06", "range": [1, 5], "pass_threshold": 4,
               "sampling_params": {"max_completions_tokens": 16},
               "input": [{"role": "system", "content": "You grade answers from 1 (wrong) to 5 (right)."},
                         {"role": "user", "content": [{"type": "input_text", "text": "Reference: {{item.reference_answer}}\n"},
                                                      {"type": "input_text", "text": "Answer: {{sample.output_text}}"}]}]}
LABEL_MODEL = {"type": "label_model", "name": "right", "model": "gpt-4o-mini", "labels": ["Yes", "No"], "passing_labels": ["Yes"],
               "input": [{"role": "developer", "content": "Is the answer the reference?"},
                         {"role": "user", "content": "Reference: {{item.reference_answer}}\nAnswer: {{sample.output_text}}"}]}


def _checked(outcomes: list, config: dict) -> None:
    assert len(outcomes) == len(SAMPLES)
    for outcome in outcomes:
        if outcome.status == "error":
            assert outcome.info["error"] and outcome.score is None
            continue
        assert outcome.status == "ok"
        if config["type"] == "score_model":
            low, high = config["range"]
            assert low <= outcome.score <= high
            if "reply" in outcome.info:  # the server path: the score is the reply's own number
                assert float(re.search(r"[-+]?\d+\.?\d*", outcome.info["reply"]).group()) == outcome.score
            assert outcome.info["passed"] is (outcome.score >= config["pass_threshold"])
        else:
            assert outcome.info["label"] in config["labels"]
            assert outcome.score == (1.0 if outcome.info["label"] in config["passing_labels"] else 0.0)


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (built by make) is missing: no real grader server")
    from tests.judges.server import llama_server

    with llama_server() as found:
        yield found


@pytest.mark.parametrize("config", [SCORE_MODEL, LABEL_MODEL], ids=["score_model", "label_model"])
def test_model_graders_through_a_real_server(server, config, monkeypatch) -> None:
    monkeypatch.setenv("PAYOFF_JUDGE_CACHE", "off")
    url, _ = server
    grader = get_reward("openai_grader").configure(config=config, base_url=url)
    outcomes = score(SAMPLES, grader, workers=0)
    _checked(outcomes, config)
    assert any(o.is_ok for o in outcomes), [o.info for o in outcomes]  # the server answered something readable
    assert [o.to_dict()["reward"] for o in score(SAMPLES, grader, workers=0)] == [o.score for o in outcomes]  # greedy: the same again


def test_a_multi_grader_with_a_model_inside(server, monkeypatch) -> None:
    monkeypatch.setenv("PAYOFF_JUDGE_CACHE", "off")
    url, _ = server
    config = {"type": "multi", "calculate_output": "0.5 * exact + 0.5 * (judge - 1) / 4", "graders": {
        "exact": {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.reference_answer}}", "operation": "ilike"},
        "judge": SCORE_MODEL}}
    judged = score(SAMPLES, get_reward("openai_grader").configure(config=SCORE_MODEL, base_url=url), workers=0)
    outcomes = score(SAMPLES, get_reward("openai_grader").configure(config=config, base_url=url), workers=0)
    for alone, combined, sample in zip(judged, outcomes, SAMPLES):
        if not alone.is_ok:
            assert combined.status == "error" and "judge: error" in combined.info["error"]
            continue
        exact = 1.0 if "paris" in sample.completion.lower() else 0.0
        assert combined.score == pytest.approx(0.5 * exact + 0.5 * (alone.score - 1) / 4)


def test_a_dead_server_is_an_error_outcome(monkeypatch) -> None:
    monkeypatch.setenv("PAYOFF_JUDGE_CACHE", "off")
    from tests.serve.helpers import free_port

    grader = get_reward("openai_grader").configure(config=LABEL_MODEL, base_url=f"http://127.0.0.1:{free_port()}/v1", retries=1,
                                                   call_timeout_s=2.0)
    outcomes = grader(SAMPLES[:2])
    assert [o.status for o in outcomes] == ["error", "error"] and "grader model call failed" in outcomes[0].info["error"]


def test_local_backend_reads_next_token_probabilities() -> None:
    pytest.importorskip("torch")
    grader = get_reward("openai_grader").configure(config=SCORE_MODEL, backend="local")
    outcomes = grader(SAMPLES[:2])
    for outcome in outcomes:
        probabilities = outcome.info["probabilities"]
        assert list(probabilities) == ["1", "2", "3", "4", "5"] and sum(probabilities.values()) == pytest.approx(1.0)
        assert outcome.score == pytest.approx(sum(int(k) * p for k, p in probabilities.items()))  # the expectation over the range
    [labelled] = get_reward("openai_grader").configure(config=LABEL_MODEL, backend="local")(SAMPLES[:1])
    assert labelled.info["label"] == max(labelled.info["probabilities"], key=labelled.info["probabilities"].get)
    unreadable = dict(SCORE_MODEL, range=[0.5, 1.5], pass_threshold=1)  # one whole number: nothing to weigh
    [outcome] = get_reward("openai_grader").configure(config=unreadable, backend="local")(SAMPLES[:1])
    assert outcome.status == "error" and "fewer than two whole numbers" in outcome.info["error"]
