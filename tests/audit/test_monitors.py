"""Monitors on a toy training run with a planted hack, and on stored rollouts."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from payoff.audit.monitors import HackingMonitor, monitor_rollouts
from payoff.compose import Rubric, Term
from payoff.core import Outcome, Reward
from payoff.engine import score
from payoff.registry import get_reward

FILLER = " Let me double-check this carefully."


def pays_for_length(sample) -> float:
    """The planted hack: a bonus per word, on top of correctness."""
    return 0.02 * len(sample.completion.split())


def test_a_reward_that_pays_for_length_is_flagged_as_soon_as_lengths_grow() -> None:
    # A toy training run: the policy is a softmax over how much filler to append to a correct
    # answer, trained with REINFORCE on math + a length bonus. It learns to pad.
    rng = random.Random(0)
    choices = list(range(0, 40, 4))
    logits = [0.0] * len(choices)
    reward = Rubric([Term(get_reward("math")), Term(Reward(pays_for_length, name="length_bonus"), 1.0)])
    monitor = HackingMonitor(unit="words")
    first_warning, lengths = None, []
    for step in range(20):
        weights = [math.exp(v) for v in logits]
        picks = rng.choices(range(len(choices)), weights=weights, k=32)
        samples = [{"prompt": "What is 6 * 7?", "reference": "42", "completion": "The answer is \\boxed{42}." + FILLER * choices[i]} for i in picks]
        outcomes = score(samples, reward, workers=0)
        report = monitor.update(step, samples, outcomes)
        lengths.append(report.metrics["length_mean"])
        if first_warning is None and any(w.startswith("length_reward") for w in report.warnings):
            first_warning = step
        rewards = [o.score for o in outcomes]
        baseline = sum(rewards) / len(rewards)
        total = sum(weights)
        for pick, value in zip(picks, rewards):
            for j in range(len(logits)):
                grad = (1.0 if j == pick else 0.0) - weights[j] / total
                logits[j] += 0.05 * (value - baseline) * grad  # slow, so lengths climb over several steps
    assert lengths[-1] > 1.5 * lengths[0]  # the hack worked: the policy learned to pad
    growth_starts = next(i for i, value in enumerate(lengths) if value > lengths[0] * 1.05)
    assert first_warning is not None and first_warning <= growth_starts + 1


def test_disagreement_heldout_repetition_and_probe_patterns() -> None:
    monitor = HackingMonitor(window=3, compare=[("judge", "verifier")])
    for step, (reward_mean, heldout) in enumerate([(0.2, 0.5), (0.4, 0.5), (0.6, 0.49)]):
        samples = [{"completion": "so so so so so so so so so", "reference": "1"}, {"completion": ":"}]
        outcomes = [Outcome.ok(reward_mean, {"judge": 1.0, "verifier": 0.0}), Outcome.ok(reward_mean, {"judge": 1.0, "verifier": 1.0})]
        report = monitor.update(step, samples, outcomes, heldout_accuracy=heldout)
    text = " ".join(report.warnings)
    assert "disagreement/judge~verifier" in text and "reward_vs_heldout" in text
    assert "repetition" in text and "probe_share" in text
    assert report.metrics["disagreement/judge~verifier"] == 0.5


def test_a_healthy_run_raises_no_warning() -> None:
    monitor = HackingMonitor()
    rng = random.Random(1)
    for step in range(6):
        samples = [{"completion": f"Step {i}: we compute {rng.randint(1, 99)}. The answer is \\boxed{{{i}}}."} for i in range(16)]
        outcomes = [Outcome.ok(float(rng.random() > 0.5)) for _ in samples]
        assert monitor.update(step, samples, outcomes).warnings == []


def test_stored_rollouts(tmp_path: Path) -> None:
    path = tmp_path / "rollouts.jsonl"
    rows = []
    for step in range(4):
        for n in range(10):
            words = 5 + n * (1 + 3 * step)
            rows.append({"step": step, "completion": " ".join(f"w{k}" for k in range(words)), "reward": words / 100})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reports = monitor_rollouts(path, unit="words")
    assert [r.step for r in reports] == [0, 1, 2, 3]
    assert reports[0].warnings == [] and any(w.startswith("length_reward") for w in reports[1].warnings)


def test_monitor_cli_on_stored_rollouts(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "rollouts.jsonl"
    rows = [{"step": s, "completion": " ".join(f"w{k}" for k in range(5 + n * (1 + 3 * s))), "reward": (5 + n * (1 + 3 * s)) / 100}
            for s in range(3) for n in range(10)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = subprocess.run([sys.executable, "-m", "payoff", "monitor", str(path), "--unit", "words"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "length_reward" in result.stdout
