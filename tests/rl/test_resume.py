"""A run killed with SIGKILL and resumed with --resume logs the same metrics as an uninterrupted
run, step for step (real `payoff rl train` subprocesses, a real SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.rl.toy import HERE, save_tiny

DETERMINISTIC = ("reward_mean", "accuracy", "completion_length", "loss", "grad_norm", "trained_samples")


def write_config(folder: Path, model_dir: Path, run_dir: Path) -> Path:
    rows = folder / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"Write a word number {i}.", "reference": "x"}) + "\n" for i in range(40)))
    config = folder / "toy.toml"
    config.write_text(f"""
seed = 3
steps = 6
run_dir = "{run_dir}"
checkpoint_every = 2
[reward]
[[reward.terms]]
name = "{HERE / 'toy.py'}:vowel_share"
weight = 1.0
[[reward.shapers]]
kind = "ppo_c"             # a stateful shaper: its running mean must survive the kill
params = {{ alpha = 0.5, weight = 2.0 }}
[model]
name = "{model_dir}"
chat_template = false
[task]
kind = "file"
train_size = 40
eval_size = 0
options = {{ path = "{rows}" }}
[rollout]
group_size = 4
prompts_per_step = 4
max_new_tokens = 8
[optim]
lr = 5e-2
[engine]
workers = 1
[log]
progress = false
tensorboard = false
plot = false
""")
    return config


def payoff_train(*args: str) -> subprocess.Popen:
    root = HERE.parent.parent  # this checkout's payoff (src) and its test modules, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    return subprocess.Popen([sys.executable, "-m", "payoff", "rl", "train", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.mark.slow
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    model_dir = save_tiny(tmp_path / "tiny")
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    whole = payoff_train(str(write_config(tmp_path, model_dir, whole_dir)))
    out, err = whole.communicate(timeout=600)
    assert whole.returncode == 0, err[-3000:]
    reference = read_metrics(whole_dir)
    assert [r["step"] for r in reference] == [1, 2, 3, 4, 5, 6]

    victim = payoff_train(str(write_config(tmp_path, model_dir, killed_dir)))
    deadline = time.time() + 600
    while time.time() < deadline and len(read_metrics(killed_dir)) < 3:  # step 3 logged; step 2 checkpointed
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    logged = len(read_metrics(killed_dir))
    assert 3 <= logged < 6, "the run must die in the middle"

    began = time.monotonic()
    resumed = payoff_train("--resume", str(killed_dir))
    out, err = resumed.communicate(timeout=600)
    resumed_seconds = time.monotonic() - began
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed from" in err
    again = read_metrics(killed_dir)
    assert [r["step"] for r in again] == [1, 2, 3, 4, 5, 6]  # steps after the checkpoint were rerun, not duplicated
    for a, b in zip(reference, again):
        for key in DETERMINISTIC:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["step"], key)
    summary = json.loads((killed_dir / "summary.json").read_text())
    assert summary["steps"] == 6
    assert summary["resumed_from"] is not None and Path(summary["resumed_from"]).name in ("step-000002", "step-000004")
    # The shaper's and the monitor's state came back: the last checkpoints agree exactly.
    last = lambda run: json.loads((run / "checkpoints" / "step-000006" / "state.json").read_text())  # noqa: E731
    assert last(killed_dir)["shapers"] == last(whole_dir)["shapers"] and last(whole_dir)["shapers"][0]["rbar"] != 0.0
    assert last(killed_dir)["monitor"] == last(whole_dir)["monitor"]
    # Wall time counts the run before the kill too: more than the resumed process took in all.
    assert summary["wall_seconds"] > resumed_seconds
