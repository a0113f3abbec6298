"""A reward that misbehaves on demand, for fault-injection tests with real worker processes.

`sample.meta["kind"]` picks the behaviour; `sample.meta["pids"]` names a file where every process
the reward starts appends its pid, so a test can prove none survives the engine.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time

from payoff.core import Sample, reward


def _record(path: str | None) -> None:
    if path:
        with open(path, "a") as handle:
            handle.write(f"{os.getpid()}\n")


@reward(name="chaos", register=False)
def chaos(sample: Sample) -> float:
    kind = sample.meta.get("kind", "ok")
    pids = sample.meta.get("pids")
    if kind == "sleep":
        time.sleep(10_000)
    elif kind == "busy":
        while True:
            pass
    elif kind == "raise":
        raise ValueError(f"bad sample {sample.completion}")
    elif kind == "exit":
        os._exit(3)
    elif kind == "sys_exit":
        sys.exit(0)
    elif kind == "segfault":
        ctypes.string_at(0)
    elif kind == "memory":
        hog = bytearray(10 * 1024**3)  # 10 GB
        return float(len(hog))
    elif kind == "fork_bomb":
        # Unbounded where the engine has cgroups (pids.max stops it); a burst of at most 40
        # processes under process-group containment, which cannot cap a real bomb.
        bounded = sample.meta.get("bounded", False)
        forks = 0
        while True:
            if bounded and forks >= 5:
                time.sleep(10_000)
            try:
                if os.fork() == 0:
                    _record(pids)
                forks += 1
            except OSError:
                time.sleep(0.001)
    elif kind == "orphan":
        # A child in its own session (escapes a process group) that outlives a reward that returns.
        child = subprocess.Popen(["sleep", "1000"], start_new_session=sample.meta.get("setsid", True))
        with open(pids, "a") as handle:
            handle.write(f"{child.pid}\n")
        return 1.0
    elif kind == "print":
        for _ in range(2000):
            print("x" * 1000)
        os.write(1, b"y" * 1_000_000)
        return 0.5
    elif kind == "ignore_term":
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(10_000)
    elif kind == "slow":
        time.sleep(float(sample.meta.get("seconds", 0.2)))
    return float(len(sample.completion))


def plain_length(sample: Sample) -> float:
    """A plain function (no @reward): payoff wraps it anew on every resolution."""
    return float(len(sample.completion))
