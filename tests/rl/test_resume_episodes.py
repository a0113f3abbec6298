"""The SIGKILL resume test with an environment: a multi-turn run (`feedback`, up to 2 tries) killed
with SIGKILL mid-run and resumed logs the same metrics as one that was not killed (episodes in
flight are redone from the step's start, the environments re-seeded); real `payoff rl train`
subprocesses, a real SIGKILL. The run folder holds whole episodes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.rl.test_resume import payoff_train, read_metrics
from tests.rl.toy import HERE, save_tiny

DETERMINISTIC = ("reward_mean", "accuracy", "loss", "grad_norm", "trained_samples", "episode/turns", "episode/policy_tokens",
                 "episode/env_tokens", "episode/accuracy_first", "episode/reward_per_turn")


def write_config(folder: Path, model_dir: Path, run_dir: Path) -> Path:
    config = folder / f"{run_dir.name}.toml"
    config.write_text(f"""
seed = 5
steps = 6
run_dir = "{run_dir}"
checkpoint_every = 2
reward = "{HERE / 'toy.py'}:vowel_share"
[model]
name = "{model_dir}"
[task]
kind = "arithmetic"
train_size = 40
eval_size = 2
options = {{ level = 1 }}
[env]
name = "feedback"
options = {{ tries = 2 }}
max_turns = 2
max_tokens = 200
[rollout]
group_size = 3
prompts_per_step = 2
max_new_tokens = 8
[optim]
lr = 5e-2
[engine]
workers = 1
[log]
progress = false
tensorboard = false
plot = false
samples_every = 1
samples_shown = 2
""")
    return config


@pytest.mark.slow
def test_sigkill_mid_run_with_an_environment_then_resume_reproduces_the_run(tmp_path: Path) -> None:
    model_dir = save_tiny(tmp_path / "tiny")
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    whole = payoff_train(str(write_config(tmp_path, model_dir, whole_dir)))
    out, err = whole.communicate(timeout=900)
    assert whole.returncode == 0, err[-3000:]
    reference = read_metrics(whole_dir)
    assert [r["step"] for r in reference] == [1, 2, 3, 4, 5, 6]
    assert all(r["episode/env_tokens"] > 0 and r["episode/turns"] > 1 for r in reference)  # the user wrote between turns

    victim = payoff_train(str(write_config(tmp_path, model_dir, killed_dir)))
    deadline = time.time() + 900
    while time.time() < deadline and len(read_metrics(killed_dir)) < 3:  # step 3 logged; step 2 checkpointed
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)  # mid-step 4: its episodes are in flight
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert 3 <= len(read_metrics(killed_dir)) < 6, "the run must die in the middle"

    resumed = payoff_train("--resume", str(killed_dir))
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed from" in err
    again = read_metrics(killed_dir)
    assert [r["step"] for r in again] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(reference, again):
        for key in DETERMINISTIC:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["step"], key)
    # whole episodes in the run folder, the same ones in both runs for the last steps
    episodes = lambda run: [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]  # noqa: E731
    last = [e for e in episodes(whole_dir) if e["step"] == 6]
    assert last and [e["messages"] for e in last] == [e["messages"] for e in episodes(killed_dir) if e["step"] == 6]
    assert all(m["role"] in ("system", "user", "assistant") for e in last for m in e["messages"])
    summary = json.loads((killed_dir / "summary.json").read_text())
    assert summary["steps"] == 6 and "accuracy_first_after" in summary
