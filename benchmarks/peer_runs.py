"""What the side-by-side benchmarks share: each tool runs in its own process (its own peak RSS),
prints one ``RESULT {json}`` line, and the parent takes medians over the repeats."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# Beside each tool's own settings, the float32 route (payoff.models.matmul) both ways: payoff_mkl
# is payoff with its probe off (PyTorch's default library, as TRL has); trl_onednn is TRL with its
# float32 products routed to oneDNN by hand (`route_by_hand`), as payoff's probe does here. Both
# import payoff.models.matmul (and so torch) only when called: the sandbox benchmarks' children
# import this module too.


def tool_env(tool: str) -> dict[str, str]:
    """The environment ``tool``'s child runs in: this one's, with the probe off for payoff_mkl."""
    from payoff.models.matmul import ENV

    return {**os.environ, **({ENV: "default"} if tool == "payoff_mkl" else {})}


def attention_of(tool: str) -> dict[str, str]:
    """A peer's ``from_pretrained`` options: plain attention for trl_*_eager, else its default."""
    return {"attn_implementation": "eager"} if tool.endswith("_eager") else {}


def route_by_hand() -> None:
    """In a peer's child: float32 products through oneDNN, without payoff's probe (float32-exact
    on a CPU without AMX; payoff.models.matmul)."""
    import torch

    from payoff.models.matmul import ROUTE

    torch.backends.mkldnn.matmul.fp32_precision = ROUTE


def report_result(result: dict) -> None:
    """In the child: add its peak RSS and print the line the parent reads."""
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(command: Sequence[str], tool: str, env: dict | None = None, timeout: float | None = None) -> dict | None:
    """Run one child; its result, or None (with its stderr's tail printed) when it failed or ran
    past ``timeout`` seconds."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{tool} ran past {timeout} s: left out", file=sys.stderr)
        return None
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        print(f"{tool} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(line[7:])


def medians(results: dict[str, list[dict]], keys: Sequence[str]) -> dict[str, dict]:
    """tool -> {key: median over its runs, "runs": how many}, for the tools that ran."""
    return {tool: {key: statistics.median(r[key] for r in runs) for key in keys} | {"runs": len(runs)}
            for tool, runs in results.items() if runs}


def steady(times: Sequence[float]) -> float:
    """The median step after the first two (the first allocates the optimiser's moments and faults
    the heap in; the mean per step, which every table also gives, includes it)."""
    return round(statistics.median(times[2:] or times), 4)


def payoff_step_times(run_dir: Path) -> list[float]:
    """Each step's wall seconds, from a payoff run's metrics (``time_step``, `payoff.runs.run`)."""
    return [json.loads(line)["time_step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def step_clock():
    """In a peer's child: a transformers callback timing each step as payoff's ``time_step`` does,
    from the end of the step before (or the start of training); ``times`` holds the seconds."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.mark = 0.0

        def on_train_begin(self, *args, **kwargs) -> None:
            self.mark = time.perf_counter()

        def on_step_end(self, *args, **kwargs) -> None:
            now = time.perf_counter()
            self.times.append(now - self.mark)
            self.mark = now

    return StepClock()
