"""PRM micro-batches: longest solutions first under a token budget, the same optimisation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from payoff.prm.config import load_prm_config
from payoff.prm.train import train_prm
from payoff.runs.memory import token_chunks
from tests.rl.toy import save_tiny
from tests.rm.helpers import read_metrics


def test_a_run_split_by_the_token_budget_logs_the_unsplit_run(tmp_path: Path) -> None:
    rng = random.Random(1)
    rows = []
    for _ in range(32):  # solutions of 1 to 6 steps: widths vary, so sorting and the budget matter
        steps = [rng.choice(["fine step", "oops step"]) + " " + "x " * rng.randint(0, 6) for _ in range(rng.randint(1, 6))]
        rows.append({"prompt": "Solve.", "completions": steps, "labels": [s.startswith("fine") for s in steps]})
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tiny = save_tiny(tmp_path / "model")
    logged = {}
    for budget in (0, 100):
        run = tmp_path / f"run-{budget}"
        config = load_prm_config(None, [f"data.train='{data}'", f"model.name='{tiny}'", "model.chat_template=false", "model.max_length=64",
                                        "steps=3", f"run_dir='{run}'", "checkpoint_every=0", "optim.lr=3e-3", "optim.batch_size=8",
                                        "optim.micro_batch=8", f"optim.micro_tokens={budget}", "log.progress=false", "log.tensorboard=false",
                                        "log.plot=false"])
        train_prm(config)
        logged[budget] = read_metrics(run)
    assert len(logged[0]) == len(logged[100]) == 3
    for whole, split in zip(logged[0], logged[100]):
        for key in ("loss", "step_accuracy", "grad_norm"):
            assert split[key] == pytest.approx(whole[key], rel=1e-4, abs=1e-6), key


def test_token_chunks_count_what_padded_says() -> None:
    widths = {0: 50, 1: 10, 2: 45, 3: 12}
    # a layout whose padding is not rows x the widest row (e.g. two parts padded apart)
    chunks = token_chunks(list(widths), widths.__getitem__, 4, 100, padded=lambda chunk: 30 * len(chunk))
    assert chunks == [[0, 2, 3], [1]]
    assert token_chunks(list(widths), widths.__getitem__, 4, 100) == [[0, 2], [3, 1]]
