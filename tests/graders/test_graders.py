"""OpenAI grader configs as a payoff reward: each grader type against outputs computed by hand on
OpenAI's documented examples, the templates, the safe formula, python graders in the real sandbox,
bad configs (a clear error when the reward is configured) and failures (a typed outcome, never 0).
Model graders against a real server are in test_model_graders.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payoff.core import RewardParameterError, Sample
from payoff.engine import score
from payoff.graders.formula import FormulaError, evaluate
from payoff.graders.model import _read_label, _read_score
from payoff.graders.template import TemplateError, namespaces, render
from payoff.registry import get_reward

GRADER = get_reward("openai_grader")


def run(config: dict, samples: list[Sample]) -> list:
    return GRADER.configure(config=config)(samples)


# -- string_check: OpenAI's four operations, 1 or 0 -----------------------------------------------
@pytest.mark.parametrize("operation, output, reference, expected", [
    ("eq", "Paris", "Paris", 1.0), ("eq", "paris", "Paris", 0.0), ("eq", "Paris ", "Paris", 0.0),  # case- and space-sensitive
    ("ne", "London", "Paris", 1.0), ("ne", "Paris", "Paris", 0.0),
    ("like", "The capital is Paris.", "Paris", 1.0), ("like", "The capital is paris.", "Paris", 0.0),  # contains, case-sensitive
    ("ilike", "THE CAPITAL IS PARIS.", "paris", 1.0), ("ilike", "Lyon", "paris", 0.0),  # contains, any case
])
def test_string_check(operation: str, output: str, reference: str, expected: float) -> None:
    config = {"type": "string_check", "name": "capital", "operation": operation, "input": "{{ sample.output_text }}",
              "reference": "{{ item.reference_answer }}"}
    [outcome] = run(config, [Sample(completion=output, meta={"reference_answer": reference})])
    assert outcome.status == "ok" and outcome.score == expected
    assert outcome.info["passed"] is (expected == 1.0) and outcome.components["passed"] == expected


# -- text_similarity: "the cat sat on the mat" against "the cat is on the mat", by hand -------------
# 6 tokens each; matching 1..4-grams: 5/6, 3/5, 1/4, 0/3; the LCS is 5 tokens.
HAND = {
    "gleu": 9 / 18,  # GLEU = min(precision, recall) over all 1..4-grams: 9 matches of 18 on each side
    "rouge_1": 5 / 6,  # unigram F: P = R = 5/6
    "rouge_2": 3 / 5,  # bigram F: P = R = 3/5
    "rouge_l": 5 / 6,  # LCS F: "the cat on the mat"
    # sentence BLEU, sacrebleu's "exp" smoothing: the 4-gram's zero count becomes 1/(2*3); BP = 1
    "bleu": (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25,
    # METEOR (alpha .9, beta 3, gamma .5): 5 matches, P = R = 5/6, 2 chunks -> penalty .5*(2/5)^3
    "meteor": 5 / 6 * (1 - 0.5 * (2 / 5) ** 3),
}


@pytest.mark.parametrize("metric", sorted(HAND))
def test_text_similarity_by_hand(metric: str) -> None:
    config = {"type": "text_similarity", "name": "sim", "input": "{{sample.output_text}}", "reference": "{{item.reference}}",
              "evaluation_metric": metric, "pass_threshold": 0.5}
    [outcome] = run(config, [Sample(completion="the cat sat on the mat", reference="the cat is on the mat")])
    assert outcome.status == "ok" and outcome.score == pytest.approx(HAND[metric], abs=1e-9)
    assert outcome.info["passed"] is (HAND[metric] >= 0.5)


def test_fuzzy_match_and_the_documented_multigrader() -> None:
    pytest.importorskip("rapidfuzz")
    # OpenAI's multigrader example: a fuzzy name match and an exact email match, averaged.
    config = {"type": "multi", "calculate_output": "(name + email) / 2", "graders": {
        "name": {"name": "name_grader", "type": "text_similarity", "input": "{{sample.output_json.name}}", "reference": "{{item.name}}",
                 "evaluation_metric": "fuzzy_match", "pass_threshold": 0.9},
        "email": {"name": "email_grader", "type": "string_check", "input": "{{sample.output_json.email}}", "reference": "{{item.email}}",
                  "operation": "eq"}}}
    row = {"name": "Jon Doe", "email": "jon@example.com"}
    samples = [Sample(completion=json.dumps({"name": "John Doe", "email": "jon@example.com"}), meta=row),
               Sample(completion=json.dumps({"name": "Jon Doe", "email": "JON@example.com"}), meta=row),
               Sample(completion="Jon Doe, jon@example.com", meta=row)]
    first, second, third = run(config, samples)
    # "john doe" vs "jon doe" (processed): one deletion in 15 characters -> ratio 14/15, which WRatio keeps
    assert first.components == {"name": pytest.approx(14 / 15), "email": 1.0}
    assert first.score == pytest.approx((14 / 15 + 1) / 2) and first.info["graders"]["name"]["passed"] is True
    assert second.score == pytest.approx(0.5) and second.components == {"name": 1.0, "email": 0.0}
    assert third.status == "error" and "not a JSON object" in third.info["error"]  # never a silent 0


def test_templates_reach_items_sample_json_and_tools() -> None:
    tools = [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"city\": \"Paris\"}"}}]
    sample = Sample(completion='{"answer": {"city": "Paris", "list": [3, 4]}}', reference={"gold": ["Paris", "Lyon"]},
                    meta={"output_tools": tools, "id": 7})
    scope = namespaces(sample)
    assert render("{{ item.gold[1] }}/{{item.id}}/{{sample.output_json.answer.list[1]}}", scope) == "Lyon/7/4"
    assert render("{{sample.output_tools[0].function.name}}", scope) == "lookup"
    assert json.loads(render("{{sample.output_json.answer}}", scope)) == {"city": "Paris", "list": [3, 4]}  # non-strings as JSON
    assert scope["sample"]["choices"][0]["message"]["tool_calls"] == tools
    with pytest.raises(TemplateError, match="no 'missing' in the item"):
        render("{{item.missing}}", scope)
    with pytest.raises(TemplateError, match="namespace must be item or sample"):
        render("{{ other.x }}", scope)
    chat = Sample(completion="", prompt=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": tools}])
    assert namespaces(chat)["sample"]["output_tools"] == tools


# -- calculate_output: a closed arithmetic, never eval --------------------------------------------
@pytest.mark.parametrize("formula, expected", [
    ("(a + b) / 2", 0.75), ("a ^ 2", 0.25), ("a ** 2 + b", 1.25), ("-a + 2 * b", 1.5), ("min(a, b) + max(a, b, 2)", 2.5),
    ("abs(-a) + floor(1.7) + ceil(0.2)", 2.5), ("sqrt(4) + exp(0) + log(1)", 3.0), ("0.3 * a + 0.7 * b", 0.85),
])
def test_formula(formula: str, expected: float) -> None:
    assert evaluate(formula, {"a": 0.5, "b": 1.0}) == pytest.approx(expected)


@pytest.mark.parametrize("formula, message", [
    ("__import__('os').system('true')", "may be called"), ("a.__class__", "Attribute is not allowed"), ("c + 1", "unknown name 'c'"),
    ("(lambda: 1)()", "may be called"), ("[a][0]", "not allowed"), ("'1' + '2'", "not allowed"), ("a if b else 1", "not allowed"),
    ("a / (b - 1)", "cannot be computed"), ("log(0 * a)", "cannot be computed"), ("10 ^ 999", "cannot be computed"),
    ("(0 - a) ^ 0.5", "cannot be computed"), ("a ^ 5000", "out of range"), ("min", "function, not a value"),
])
def test_formula_refuses(formula: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message):
        evaluate(formula, {"a": 0.5, "b": 1.0})


# -- python graders in the sandbox ----------------------------------------------------------------
PYTHON = """
def grade(sample, item) -> float:
    # OpenAI's documented shape: compare the output text with the item's reference answer
    output_text = sample["output_text"].strip().lower()
    if output_text == item["reference_answer"].lower():
        return 1.0
    if sample["output_json"] is not None:
        return 0.5
    return len(set(output_text.split()) & set(item["reference_answer"].lower().split())) / 4
"""


def test_python_grader_in_the_sandbox() -> None:
    config = {"type": "python", "name": "py", "source": PYTHON, "pass_threshold": 0.5}
    row = {"reference_answer": "Paris is the capital"}
    outcomes = run(config, [Sample(completion=" paris is the capital ", meta=row), Sample(completion='{"a": 1}', meta=row),
                            Sample(completion="the capital is Lyon", meta=row)])
    assert [o.score for o in outcomes] == [1.0, 0.5, 0.75]  # the last: {the, capital, is}: 3 of 4 words
    assert [o.info["passed"] for o in outcomes] == [True, True, True]


@pytest.mark.parametrize("source, status, message", [
    ("def grade(sample, item):\n    raise KeyError('reference_answer')\n", "error", "KeyError"),
    ("def grade(sample, item):\n    return 'yes'\n", "error", "returned str"),
    ("def grade(sample, item):\n    return float('nan')\n", "error", "non-finite"),
    ("def grade(sample, item):\n    return True\n", "error", "returned bool"),
    ("def grade(sample, item):\n    while True:\n        pass\n", "timeout", "no result within"),
    ("from rapidfuzz import fuzz\ndef grade(sample, item):\n    return 1.0\n", "error", "No module named 'rapidfuzz'"),
])
def test_python_grader_failures_are_typed(source: str, status: str, message: str) -> None:
    grader = GRADER.configure(config={"type": "python", "source": source}, python_timeout_s=2.0)
    [outcome] = grader([Sample(completion="x")])
    assert outcome.status == status and message in outcome.info["error"] and outcome.score is None


# -- bad configs fail when configured; bad samples are error outcomes -----------------------------
@pytest.mark.parametrize("config, message", [
    ({"type": "string_compare"}, "grader.type: 'string_compare' is not a grader type"),
    ({"type": "string_check", "input": "{{sample.output_text}}", "reference": "x", "operation": "neq"}, "grader.operation: 'neq'"),
    ({"type": "string_check", "reference": "x", "operation": "eq"}, "grader.input: a template string is required"),
    ({"type": "text_similarity", "input": "a", "reference": "b", "evaluation_metric": "bertscore"}, "evaluation_metric: 'bertscore'"),
    ({"type": "text_similarity", "input": "a", "reference": "b", "evaluation_metric": "bleu", "pass_threshold": "high"}, "pass_threshold"),
    ({"type": "score_model", "input": [], "model": "m"}, "non-empty list of messages"),
    ({"type": "score_model", "input": [{"role": "judge", "content": "x"}]}, "input.0: a message with a role"),
    ({"type": "score_model", "input": [{"role": "user", "content": "x"}], "range": [1, 1]}, "range: low must be below high"),
    ({"type": "score_model", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]}, "only text parts"),
    ({"type": "label_model", "input": [{"role": "user", "content": "x"}], "labels": ["good", "bad"], "passing_labels": ["great"]},
     "passing_labels: a non-empty subset"),
    ({"type": "python", "source": "def grade(sample, item)\n    return 1"}, "source: not valid Python"),
    ({"type": "python", "source": "def score(sample, item):\n    return 1"}, "defines no top-level function grade"),
    ({"type": "multi", "graders": {"a": {"type": "string_check", "input": "x", "reference": "y", "operation": "eq"}},
      "calculate_output": "a + b"}, "calculate_output: unknown name 'b'"),
    ({"type": "multi", "graders": {"a": {"type": "string_check", "input": "x", "reference": "y", "operation": "like!"}},
      "calculate_output": "a"}, "grader.graders.a.operation"),
    ({"type": "multi", "graders": {"type": "string_check", "input": "x", "reference": "y", "operation": "eq"}, "calculate_output": "1"},
     "an object of named graders"),
    ("{not json", "is not JSON"),
    ("/no/such/grader.json", "no grader config file"),
])
def test_bad_configs_fail_when_configured(config, message: str) -> None:
    with pytest.raises(RewardParameterError, match=message.replace("(", r"\(").replace("[", r"\[")):
        GRADER.configure(config=config)


def test_config_from_a_file_and_no_config(tmp_path) -> None:
    path = tmp_path / "grader.json"
    path.write_text(json.dumps({"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.reference}}",
                                "operation": "eq"}))
    grader = GRADER.configure(config=str(path))
    assert grader.params["config"]["operation"] == "eq"  # the content, not the path, is the reward's identity
    assert [o.score for o in grader([Sample(completion="4", reference="4")])] == [1.0]
    [missing] = GRADER([Sample(completion="4")])
    assert missing.status == "error" and "needs config=" in missing.info["error"]
    server_less = GRADER.configure(config={"type": "label_model", "input": [{"role": "user", "content": "x"}], "labels": ["a", "b"],
                                           "passing_labels": ["a"]})
    assert server_less([Sample(completion="x")])[0].info["error"].startswith("a model grader with backend 'openai' needs base_url")


def test_through_the_engine_in_worker_processes() -> None:
    config = {"type": "multi", "calculate_output": "0.5 * exact + 0.5 * overlap", "graders": {
        "exact": {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.reference}}", "operation": "ilike"},
        "overlap": {"type": "text_similarity", "input": "{{sample.output_text}}", "reference": "{{item.reference}}", "evaluation_metric": "rouge_1"}}}
    records = [{"completion": "The answer is 42", "reference": "42"}, {"completion": "no idea", "reference": "42"},
               {"completion": "x", "reference": None}]
    here = score(records, GRADER.configure(config=config), workers=0)
    there = score(records, GRADER.configure(config=config), workers=1)  # pickled to a worker process by its parameters
    def same(o):
        return o.score, o.status, o.components, {k: v for k, v in o.info.items() if k != "elapsed_s"}

    assert [same(o) for o in here] == [same(o) for o in there]
    assert here[0].score == pytest.approx(0.5 + 0.5 * (2 * (1 / 4) * 1 / (1 / 4 + 1)))  # rouge_1 F: P 1/4, R 1
    assert here[1].score == 0.0  # a real 0: neither contains nor overlaps
    assert here[2].status == "error" and "no 'reference' in the item" in here[2].info["error"]  # no reference: not the text "null"


def test_reply_reading_is_strict() -> None:
    score_model = {"type": "score_model", "range": [1, 7]}
    assert _read_score(score_model, '{"result": 6, "steps": []}') == 6.0
    assert _read_score(score_model, "Score: 4.5 out of 7") == 4.5
    for reply in ("excellent", "9", "-1"):
        with pytest.raises(ValueError):
            _read_score(score_model, reply)
    label = {"type": "label_model", "labels": ["correct", "incorrect"], "passing_labels": ["correct"]}
    assert _read_label(label, '"Correct".') == "correct" and _read_label(label, '{"result": "incorrect"}') == "incorrect"
    assert _read_label(label, "I think it is incorrect here") == "incorrect"
    for reply in ("correct or incorrect", "unsure"):
        with pytest.raises(ValueError):
            _read_label(label, reply)
    assert math.isclose(_read_score({"range": [0, 1]}, "0.25"), 0.25)


def test_payoff_audit_takes_a_grader_config(tmp_path) -> None:
    """`payoff audit` on a containment grader (a real CLI run): its answer-spam probes get credit."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "grader.json").write_text(json.dumps({"type": "string_check", "input": "{{sample.output_text}}",
                                                      "reference": "{{item.reference}}", "operation": "ilike"}))
    (tmp_path / "grader.toml").write_text('[reward]\nname = "contains_answer"\n\n[[reward.terms]]\nname = "openai_grader"\n'
                                          'params = { config = "grader.json" }\n')
    (tmp_path / "tasks.jsonl").write_text("".join((root / "examples" / "audit_tasks.jsonl").read_text().splitlines(keepends=True)[:2]))
    done = subprocess.run([sys.executable, "-m", "payoff", "audit", "tasks.jsonl", "--config", "grader.toml", "--workers", "0",
                           "--report", "report"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert done.returncode == 1, done.stderr[-2000:]  # the audit fails the grader: it is exploitable
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    spam = next(f for f in report["families"] if f["family"] == "answer_spam")
    assert report["verdict"] == "FAIL" and spam["exploits"] > 0 and spam["examples"][0]["status"] == "ok"
