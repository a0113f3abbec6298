"""`payoff dpo train` on a tiny random Llama (real tokenizer): it learns the preference, the implicit
reward agrees with its formula, LoRA keeps no second model, and a SIGKILLed run resumes."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.dpo.config import load_dpo_config
from payoff.dpo.train import train_dpo
from payoff.engine import score
from payoff.registry import get_reward
from payoff.runs.data import step_indices, touched
from tests.rl.toy import save_tiny
from tests.rm.helpers import payoff, read_metrics, separable_pairs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-dpo") / "model")


def write(folder: Path, model: Path, run: Path, steps: int = 6, extra: str = "") -> Path:
    train, held = separable_pairs(folder / "train.jsonl", 48, 1), separable_pairs(folder / "eval.jsonl", 16, 2)
    path = folder / f"{run.name}.toml"
    path.write_text(f'seed = 1\nsteps = {steps}\nrun_dir = "{run}"\ncheckpoint_every = 2\n{extra}\n'
                    f'[model]\nname = "{model}"\nchat_template = false\nmax_length = 64\n'
                    f'[data]\ntrain = "{train}"\neval = "{held}"\n[optim]\nlr = 1e-3\nbatch_size = 8\nmicro_batch = 4\n'
                    f'[log]\nprogress = false\ntensorboard = false\nplot = false\n')
    return path


def test_dpo_learns_and_its_implicit_reward_is_the_formula(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = train_dpo(load_dpo_config(write(tmp_path, tiny, run)))
    for key in ("reward_accuracy_before", "reward_accuracy_after", "steps", "wall_seconds", "seed"):
        assert key in summary
    assert summary["reward_accuracy_before"] == 0.0  # policy == reference: every margin is 0, and a tie loses
    assert summary["before"]["reward_margin"] == 0.0  # exactly: the same pairs in the same batches, not a rounding apart
    # the cached reference is the model before its first step: step 1's sigmoid loss is -log sigmoid(0)
    assert read_metrics(run)[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert summary["reward_accuracy_after"] >= 0.9 and summary["after"]["reward_margin"] > 0
    # the served implicit reward: beta * (log pi - log pi_ref), computed here independently
    sample = {"prompt": "What is 3 + 4? ", "completion": "It is 7."}
    outcome = score([sample], get_reward("implicit_reward").configure(path=str(run)), workers=0)[0]
    assert outcome.status == "ok"
    assert outcome.score == pytest.approx(0.1 * (outcome.components["logp"] - outcome.components["logp_ref"]), rel=1e-5)
    refusal = score([{"prompt": "What is 3 + 4? ", "completion": "No idea, sorry!"}], get_reward("implicit_reward").configure(path=str(run)),
                    workers=0)[0]
    assert outcome.score > refusal.score  # it learned the preference it was trained on


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12), st.integers(1, 9), st.integers(1, 40), st.integers(0, 5))
def test_the_reference_is_cached_for_exactly_the_pairs_the_run_trains_on(steps: int, batch: int, size: int, seed: int) -> None:
    used = {i for step in range(steps) for i in step_indices(step, batch, size, seed)}
    assert set(touched(steps, batch, size, seed)) >= used
    assert len(set(touched(steps, batch, size, seed))) == len(used)


@pytest.mark.parametrize("loss", ["ipo", "robust", "simpo", "rpo"])
def test_every_loss_trains(tiny: Path, tmp_path: Path, loss: str) -> None:
    extra = f'[algorithm]\nloss = "{loss}"\nlabel_smoothing = 0.1\n'
    config = write(tmp_path, tiny, tmp_path / loss, steps=3)
    text = config.read_text().replace("[model]", extra + "[model]")
    config.write_text(text)
    summary = train_dpo(load_dpo_config(config))
    losses = [row["loss"] for row in read_metrics(tmp_path / loss)]
    assert summary["steps"] == 3 and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.slow
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tiny: Path, tmp_path: Path) -> None:
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    whole = payoff("dpo", "train", str(write(tmp_path, tiny, whole_dir, steps=6)))
    assert whole.wait(timeout=600) == 0, whole.stderr.read()[-3000:]
    victim = payoff("dpo", "train", str(write(tmp_path, tiny, killed_dir, steps=6)))
    deadline = time.time() + 600
    while time.time() < deadline and len(read_metrics(killed_dir)) < 3:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert 3 <= len(read_metrics(killed_dir)) < 6
    resumed = payoff("dpo", "train", "--resume", str(killed_dir))
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    reference, again = read_metrics(whole_dir), read_metrics(killed_dir)
    assert [r["step"] for r in again] == list(range(1, 7))
    for a, b in zip(reference, again):
        for key in ("loss", "reward_accuracy", "reward_margin", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["step"], key)
    assert json.loads((killed_dir / "summary.json").read_text())["resumed_from"] is not None
