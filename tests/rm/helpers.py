"""Preference data a tiny random model can learn, and an `payoff rm train` config around it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def separable_pairs(path: Path, n: int, seed: int = 0) -> Path:
    """The chosen answer states a number, the rejected one refuses: learnable from the last tokens."""
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for _ in range(n):
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            handle.write(json.dumps({"prompt": f"What is {a} + {b}?", "chosen": f"It is {a + b}.",
                                     "rejected": rng.choice(["I cannot say.", "No idea, sorry!", "Ask someone else."])}) + "\n")
    return path


def write_config(folder: Path, model: Path, run_dir: Path, steps: int = 8) -> Path:
    train = separable_pairs(folder / "train.jsonl", 64, seed=1)
    held = separable_pairs(folder / "eval.jsonl", 24, seed=2)
    lines = ["seed = 3", f"steps = {steps}", f'run_dir = "{run_dir}"', "checkpoint_every = 2",
             "[model]", f'name = "{model}"', "max_length = 64",
             "[data]", f'train = "{train}"', f'eval = "{held}"',
             "[optim]", "lr = 3e-3", "batch_size = 8", "micro_batch = 4",
             "[log]", "progress = false", "tensorboard = false", "plot = true"]
    path = folder / f"rm-{run_dir.name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def payoff(*args: str, launcher: list[str] | None = None) -> subprocess.Popen:
    # this checkout's payoff (src) and its test modules (root), whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    command = (launcher or [sys.executable, "-m", "payoff"]) + list(args)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
