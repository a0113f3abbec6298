"""`benchmarks/gpu_grpo_step.py` on the CPU with a tiny policy: the script a lent GPU machine runs
(payoff's own `Trainer.train_step` on a policy placed by the caller) still runs end to end, and
its KL term puts every sample through the update although a random policy earns no reward."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_step_benchmark_runs_on_the_cpu_and_trains_every_sample() -> None:
    tiny = ["--layers", "2", "--hidden", "64", "--heads", "4", "--kv-heads", "2", "--intermediate", "128"]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_grpo_step.py"), "--device", "cpu", *tiny,
                           "--prompts", "2", "--group", "3", "--max-new-tokens", "4", "--steps", "2", "--precision", "fp32"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    steps = [json.loads(line) for line in lines[:2]]
    report = json.loads("\n".join(lines[2:]))
    assert [s["step"] for s in steps] == [0, 1]
    assert all(s["trained_samples"] == 6 and s["completion_length"] <= 4 and s["step_s"] > 0 for s in steps)
    assert report["samples_per_step"] == 6 and report["kl_coef"] == 0.04 and report["vllm_path_available"] is False
    assert report["median_step_s"] == steps[1]["step_s"]  # the first step is the warm-up, left out
