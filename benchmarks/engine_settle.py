"""How long past its deadline a bad sample takes to settle: the scenario of
tests/engine/test_faults.py (1,000 samples, 22 bad ones of every kind, 2 workers, 3 s timeout),
repeated with a fresh seed each run; prints each run's worst settle time per kind and the worst
over all runs. The bounds in test_faults.py are set from these figures.

    python benchmarks/engine_settle.py [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payoff.engine import Engine  # noqa: E402
from tests.engine.chaos import chaos  # noqa: E402
from tests.engine.test_faults import EXPECTED, TIMEOUT  # noqa: E402


def one_run(seed: int, folder: Path) -> tuple[float, dict[str, float]]:
    engine = Engine(chaos, workers=2, timeout_s=TIMEOUT, memory_mb=2048, max_procs=64)
    bounded = engine.containment_kind != "cgroup"
    kinds = ["ok"] * 1000
    bad = list(EXPECTED) + ["print", "orphan"]
    for i, position in enumerate(random.Random(seed).sample(range(1000), 2 * len(bad))):
        kinds[position] = bad[i % len(bad)]
    samples = [{"completion": "a" * (i % 13), "meta": {"kind": kind, "pids": str(folder / "pids"), "bounded": bounded}}
               for i, kind in enumerate(kinds)]
    started = time.monotonic()
    with engine:
        outcomes = engine.score(samples)
    worst: dict[str, float] = defaultdict(float)
    for kind, outcome in zip(kinds, outcomes):
        if kind in EXPECTED:
            worst[kind] = max(worst[kind], float(outcome.info.get("elapsed_s", 0.0)))
    return time.monotonic() - started, dict(worst)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    overall: dict[str, float] = defaultdict(float)
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            wall, worst = one_run(7 + run, Path(folder))
        for kind, seconds in worst.items():
            overall[kind] = max(overall[kind], seconds)
        print(f"run {run}: {wall:.1f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(worst.items())), flush=True)
    hangs = [v for k, v in overall.items() if EXPECTED[k][0] == "timeout"]
    crashes = [v for k, v in overall.items() if EXPECTED[k][0] == "error"]
    print(f"worst over {args.runs} runs: hang {max(hangs):.2f} s (timeout {TIMEOUT} s), crash {max(crashes):.2f} s")


if __name__ == "__main__":
    main()
