"""Batched rewards for the engine tests: they record the batches they see (in a file, since they
run in worker processes), and fail or hang on demand."""

from __future__ import annotations

import json
import os
import time

from payoff.core import Outcome, Sample, batched_reward


@batched_reward(name="test_batch_recorder", batch_size=4)
def recorder(samples: list[Sample], log: str = "") -> list[Outcome]:
    """Scores len(completion); appends each batch's completions to ``log``."""
    with open(log, "a") as handle:
        handle.write(json.dumps({"pid": os.getpid(), "batch": [s.completion for s in samples]}) + "\n")
    return [Outcome.ok(float(len(s.completion))) for s in samples]


@batched_reward(name="test_batch_faulty", batch_size=3, timeout_s=2.0)
def faulty(samples: list[Sample]) -> list[float]:
    """Raises on a batch holding "boom", hangs on one holding "hang", else 1.0 each."""
    texts = [s.completion for s in samples]
    if "boom" in texts:
        raise RuntimeError("model crashed on this batch")
    if "hang" in texts:
        time.sleep(60)
    return [1.0] * len(samples)
