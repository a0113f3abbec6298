"""`payoff monitor` over episodes: turns, tool calls, tool errors and per-turn rewards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from payoff.audit.monitors import HackingMonitor
from payoff.core import Outcome, Sample
from tests.episode.cases import CALC, tool
from tests.episode.test_rewards import RETRIES

FAILED = [*CALC[:5], tool("c2", "error: the tool calc raised ZeroDivisionError"), *CALC[6:]]


def test_the_monitor_counts_turns_calls_errors_and_turn_rewards() -> None:
    samples = [Sample(messages=CALC), Sample(messages=FAILED), Sample(messages=RETRIES), Sample("plain")]
    outcomes = [Outcome.ok(1.0, turn_rewards=[0.1, 0.2, 0.0]), Outcome.ok(0.5, turn_rewards=[0.3, 0.0, 0.0]),
                Outcome.ok(0.25, turn_rewards=[0.0, 0.0, 0.25]), Outcome.ok(0.0)]
    metrics = HackingMonitor().update(0, samples, outcomes).metrics
    assert metrics["episodes"] == 3.0
    assert metrics["turns_mean"] == pytest.approx((3 + 3 + 3) / 3)
    assert metrics["tool_calls_mean"] == pytest.approx((3 + 3 + 0) / 3)
    assert metrics["tool_error_rate"] == pytest.approx(1 / 6)
    assert metrics["turn_reward/0"] == pytest.approx(0.4 / 3)
    assert metrics["turn_reward/2"] == pytest.approx(0.25 / 3)
    assert metrics["turn_reward_mean"] == pytest.approx(0.85 / 9)


def test_without_episodes_the_metrics_are_as_before() -> None:
    metrics = HackingMonitor().update(0, [Sample("a b c")], [Outcome.ok(1.0)]).metrics
    assert not any(key.startswith(("turn", "tool", "episodes")) for key in metrics)


def test_payoff_score_then_payoff_monitor_on_episodes(tmp_path: Path) -> None:
    rows = [{"step": step, "messages": messages, "answer": "43"} for step in (1, 2) for messages in (CALC, FAILED)]
    source, scored, report = tmp_path / "episodes.jsonl", tmp_path / "scored.jsonl", tmp_path / "report"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run([sys.executable, "-m", "payoff", "score", str(source), "--reward", "gated_turns", "--out", str(scored),
                           "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, "-m", "payoff", "monitor", str(scored), "--report", str(report)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    table = (report / "report.md").read_text()
    assert "| turns | tool calls | tool errors | turn reward |" in table and "| 17% |" in table
    steps = json.loads((report / "report.json").read_text())["steps"]
    assert [s["step"] for s in steps] == [1, 2]
    metrics = steps[0]["metrics"]
    assert (metrics["turns_mean"], metrics["tool_calls_mean"]) == (3.0, 3.0)
    assert metrics["tool_error_rate"] == pytest.approx(1 / 6)
    # gated_turns, gate open for both: turn 0 earns 0.1 in each; turn 1 earns 0.1 (CALC) and 0.05 (FAILED)
    assert metrics["turn_reward/0"] == pytest.approx(0.1) and metrics["turn_reward/1"] == pytest.approx(0.075)
    assert metrics["reward_mean"] == pytest.approx((1.2 + 1.15) / 2)


