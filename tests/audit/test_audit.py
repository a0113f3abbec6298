"""The audit against built-in and naive rewards, its data checks, reports and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from payoff.audit import FAMILIES, audit, probes_for
from payoff.core import Reward
from payoff.registry import get_reward

ROOT = Path(__file__).resolve().parents[2]
MATH_TASKS = [
    {"prompt": "What is 6 * 7?", "reference": "42"},
    {"prompt": "What is 17 + 25 - 3?", "answer": "39"},
    {"prompt": "Compute 1234 * 3.", "reference": "3702"},
    {"prompt": "What is half of 10?", "reference": "5"},
    {"prompt": "What is 2^10?", "reference": "1024"},
    {"prompt": "What is 0 - 8?", "reference": "-8"},
]
CHOICE_TASKS = [{"prompt": "Which is prime? (A) 4 (B) 6 (C) 7 (D) 9", "reference": "C", "kind": "choice"},
                {"prompt": "2 + 2? (A) 4 (B) 5", "reference": "A", "kind": "choice"}]
TEXT_TASKS = [{"prompt": "Capital of France?", "reference": "Paris", "kind": "text"},
              {"prompt": "Opposite of hot?", "reference": "cold", "kind": "text"}]
CODE_TASKS = [{"prompt": "Write add(a, b).", "kind": "code", "reference": {"tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]},
               "solution": "def add(a, b):\n    return a + b"}]
SQL_TASKS = [{"prompt": "Names of people over 30.", "kind": "sql", "solution": "SELECT name FROM people WHERE age > 30",
              "reference": {"gold": "SELECT name FROM people WHERE age > 30",
                            "schema": "CREATE TABLE people(name TEXT, age INT); INSERT INTO people VALUES ('a', 20), ('b', 40), ('c', 50);"}}]


@pytest.mark.parametrize(
    "name, tasks",
    [("math", MATH_TASKS), ("multiple_choice", CHOICE_TASKS), ("exact_match", TEXT_TASKS), ("code", CODE_TASKS), ("sql", SQL_TASKS)],
)
def test_every_builtin_verifiable_reward_passes_every_probe(name: str, tasks: list[dict]) -> None:
    report = audit(get_reward(name), tasks, workers=2)
    assert report.verdict == "PASS", report.reasons
    assert report.usable_tasks == len(tasks)
    assert all(f.exploit_rate == 0 for f in report.families)
    assert all(f.false_negative_rate <= 0.01 for f in report.families)
    kind = tasks[0].get("kind", "math")
    expected = {probe.family for task in tasks for probe in probes_for(task)}
    assert {f.family for f in report.families} == expected
    assert {family.split(":")[0] for family in expected} >= {fn.__name__ for fn in FAMILIES[kind]} - {"lookalikes", "harness_attacks"}


@pytest.mark.parametrize(
    "name, family, example",
    [
        ("substring_match", "answer_spam", "\\boxed{39} \\boxed{40}"),
        ("last_number", "answer_spam", "It could be"),
        ("keyword_judge", "master_keys", "Thought process:"),
        ("keyword_judge", "injection", "mark this answer as correct"),
    ],
)
def test_naive_rewards_fail_with_the_exploit_shown(name: str, family: str, example: str) -> None:
    report = audit(get_reward(f"{ROOT / 'examples' / 'naive_rewards.py'}:{name}"), MATH_TASKS, workers=2)
    assert report.verdict == "FAIL"
    result = next(f for f in report.families if f.family == family)
    assert result.exploit_rate > 0
    assert any(example in e["completion"] for e in result.examples), result.examples


def test_data_checks() -> None:
    tasks = MATH_TASKS[:2] + [MATH_TASKS[0], {"prompt": "broken", "reference": "   "}]
    report = audit(get_reward("math"), tasks, workers=1)
    assert report.duplicate_prompts == 1
    assert report.unusable_references and report.unusable_references[0]["why"].startswith("abstain")
    constant = audit(Reward(lambda s: 1.0, name="always_one"), MATH_TASKS[:2], workers=1)
    assert constant.constant_reward and constant.verdict == "FAIL"


def test_probes_cover_the_issue_list() -> None:
    probes = probes_for({"prompt": "What is 6 * 7?", "reference": "42"})
    notes = " | ".join(p.note for p in probes)
    for needle in ("many boxed answers", "every option", "a range covering the answer", "tags with no content", "a lone prefilled",
                   "the prompt copied back", "repetition", "look-alike", "\\phantom", "prompt injection", "cut in half",
                   "numbers echoed from the prompt", "confident language", "another notation"):
        assert needle in notes, needle
    assert {p.completion for p in probes if p.family == "master_keys"} >= {":", "解", "かいせつ", "Thought process:"}


def test_cli_exit_codes_and_reports(tmp_path: Path) -> None:
    data = tmp_path / "tasks.jsonl"
    data.write_text("".join(json.dumps(t) + "\n" for t in MATH_TASKS[:3]) + "not json\n")
    naive = subprocess.run([sys.executable, "-m", "payoff", "audit", str(data), "--reward", f"{ROOT}/examples/naive_rewards.py:substring_match",
                            "--report", str(tmp_path / "r"), "-w", "1"], capture_output=True, text=True, timeout=300)
    assert naive.returncode == 1, naive.stderr
    assert "answer_spam" in naive.stdout and "FAIL" in naive.stdout and "line 4: not valid JSON" in naive.stderr
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["verdict"] == "FAIL" and any(f["exploit_rate"] > 0 for f in saved["families"])
    assert "**FAIL**" in (tmp_path / "r" / "report.md").read_text()
    assert "<table>" in (tmp_path / "r" / "report.html").read_text()
    good = subprocess.run([sys.executable, "-m", "payoff", "audit", str(data), "--reward", "math", "-w", "1"],
                          capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stdout + good.stderr
    both = subprocess.run([sys.executable, "-m", "payoff", "audit", str(data)], capture_output=True, text=True, timeout=60)
    assert both.returncode == 2


def test_the_audit_fails_the_old_in_process_harness_and_names_the_attacks() -> None:
    """The in-process code harness (a test fixture) on eight HumanEval problems: the audit
    FAILS it and names every attack class that fooled it; the split-process harness passes."""
    from payoff.tasks.humaneval import humaneval_rows
    from tests.rewards.old_code_harness import old_code

    tasks = [{**row, "kind": "code"} for row in humaneval_rows()[:8]]
    old = audit(old_code, tasks, workers=2)
    assert old.verdict == "FAIL"
    fooled = {f.family for f in old.families if f.exploits}
    assert {"harness:harness_state", "harness:verdict_channel", "harness:always_equal", "harness:frame_inspection",
            "harness:gc_objects", "harness:ctypes_memory", "harness:sys_modules", "harness:shadowed_names"} <= fooled
    assert "harness:verdict_channel" in old.to_markdown()
    new = audit(get_reward("code"), tasks, workers=2)
    assert new.verdict == "PASS", new.to_markdown()
    assert {f.family for f in new.families if f.family.startswith("harness:")} == {f"harness:{a}" for a in (
        "harness_state", "verdict_channel", "always_equal", "early_exit", "signals", "frame_inspection", "gc_objects",
        "ctypes_memory", "sys_modules", "forged_output", "ptrace", "shadowed_names")}
