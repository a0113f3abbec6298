"""The audit over episodes: episode tasks are attacked through their final assistant turn, and the
`answer_elsewhere` probes catch a reward that reads text the model did not write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from payoff.audit import audit, probes_for
from payoff.core import Sample, reward
from payoff.episode import text_of
from payoff.registry import get_reward
from tests.episode.cases import CALC

TASKS = [{"prompt": "What is 6 * 7?", "reference": "42"}, {"prompt": "What is 2^10?", "reference": "1024"}]
EPISODE_TASKS = [{"messages": CALC, "reference": "43"},
                 {"messages": [{"role": "user", "content": "What is 2^10?"}, {"role": "assistant", "content": "x"}], "reference": "1024"}]


@reward(name="greps_every_message", register=False)
def greps_every_message(sample: Sample) -> float:
    """Naive: 1 if the reference appears anywhere in the episode's text, whoever wrote it."""
    texts = [text_of(m.get("content")) for m in sample.messages] if sample.messages else [sample.completion]
    return float(any(str(sample.reference) in t for t in texts))


def test_a_reward_that_reads_every_message_is_fooled_and_payoffs_is_not() -> None:
    naive = audit(greps_every_message, TASKS, workers=0)
    fooled = next(f for f in naive.families if f.family == "answer_elsewhere")
    assert naive.verdict == "FAIL" and fooled.exploits == fooled.exploit_probes == 4
    assert {e["note"] for e in fooled.examples} == {"the answer only in a tool's output", "the answer only in the user's text"}
    sound = audit(get_reward("math"), TASKS, workers=0)
    kept = next(f for f in sound.families if f.family == "answer_elsewhere")
    assert sound.verdict == "PASS" and kept.exploit_probes == 4 and kept.exploits == 0


def test_the_probe_episodes_are_valid_and_keep_the_answer_out_of_the_models_turns() -> None:
    for task in TASKS + EPISODE_TASKS:
        # answer_elsewhere's own probes; the other episode classes (tests/audit/test_hacks.py) put
        # the answer elsewhere on purpose, e.g. in the model's own tool call.
        for probe in (p for p in probes_for(task) if p.messages is not None and p.family == "answer_elsewhere"):
            sample = Sample(messages=probe.messages, reference=task["reference"])
            assert sample.completion == probe.completion
            model_text = " ".join(text_of(m.get("content")) for m in probe.messages if m["role"] == "assistant")
            assert task["reference"] not in model_text
            assert any(task["reference"] in text_of(m.get("content")) for m in probe.messages if m["role"] != "assistant")


def test_episode_tasks_are_attacked_through_their_final_assistant_turn() -> None:
    report = audit(get_reward("math"), EPISODE_TASKS, workers=0)
    assert report.verdict == "PASS", report.reasons
    assert report.usable_tasks == 2
    families = {f.family: f for f in report.families}
    assert families["answer_spam"].exploit_probes > 0 and families["answer_spam"].exploits == 0
    assert families["correct_variants"].false_negatives == 0


def test_payoff_audit_reads_episode_tasks(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in EPISODE_TASKS))
    done = subprocess.run([sys.executable, "-m", "payoff", "audit", str(tasks), "--reward", "math", "--workers", "1",
                           "--report", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["usable_tasks"] == 2
    assert any(f["family"] == "answer_elsewhere" for f in report["families"])
