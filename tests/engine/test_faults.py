"""Fault injection with real processes: every bad sample costs only itself, on time, and nothing
it started outlives the engine."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from payoff.engine import Engine

from .chaos import chaos

TIMEOUT = 3.0
# Timing is the behaviour under test here: a hang ends at its timeout, a crash long before it.
# A bad sample must be settled within its timeout plus this (pebble notices a dead worker within
# 0.1 s; the parent's watchdog ticks at most every 50 ms). The slack is wide because the suite
# must pass on a loaded 2-core machine, two suites side by side (a segfault once took 0.83 s to
# settle on CI, a 2 s hang 3.04 s beside a benchmark); it still tells "killed at the deadline"
# from "waited out" (the hanging samples sleep for hours) and "a crash settled" from "a crash
# waited out to its timeout" (1.5 s < 3 s).
SETTLE_SLACK_S = 1.5
# A hang is killed at the first watchdog tick after its deadline; a tick can wait behind a pool
# rebuild after another worker died. Before workers ran at niceness +10, a 3 s hang once settled
# at 4.73 s in the full suite. Since then (this scenario, 2-core machine, 2026-12-01): hangs
# settled at 3.00-3.09 s in 5 quiet runs and at 3.00-3.12 s in 3 runs beside two busy loops. The
# bound, 5 s, is 1.9 s above the worst seen, and still far from "waited out" (the sleepers sleep
# for hours). `benchmarks/engine_settle.py` reruns the measurement.
HANG_SLACK_S = 2.0
# Crashes settled in at most 0.19 s in the same runs (0.83 s and 2.26 s were seen once before the
# niceness change). 1.5 s still tells "settled" from "waited out to its 3 s timeout".
CRASH_SLACK_S = 1.5

EXPECTED = {
    "sleep": ("timeout", None),
    "busy": ("timeout", None),
    "ignore_term": ("timeout", None),
    "fork_bomb": ("timeout", None),
    "raise": ("error", "ValueError"),
    "sys_exit": ("error", "exit(0)"),
    "exit": ("error", "exited with code 3"),
    "segfault": ("error", "SIGSEGV"),
    "memory": ("error", "MemoryError"),
}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_dead(pids: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    alive = [p for p in pids if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    return alive


def _recorded_pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_thousand_samples_with_every_kind_of_failure(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    engine = Engine(chaos, workers=2, timeout_s=TIMEOUT, memory_mb=2048, max_procs=64)
    bounded = engine.containment_kind != "cgroup"
    kinds = ["ok"] * 1000
    bad_kinds = list(EXPECTED) + ["print", "orphan"]
    rng = random.Random(7)
    positions = rng.sample(range(1000), 2 * len(bad_kinds))
    for i, position in enumerate(positions):
        kinds[position] = bad_kinds[i % len(bad_kinds)]
    samples = [
        {"completion": "a" * (i % 13), "meta": {"kind": kind, "pids": str(pid_file), "bounded": bounded}}
        for i, kind in enumerate(kinds)
    ]

    # Only what this test starts counts: other tests may have left this process a sandbox fork
    # server of its own (it lives as long as the process), which is not ours to judge here.
    already = {p.pid for p in psutil.Process().children(recursive=True)}
    start = time.monotonic()
    with engine:
        outcomes = engine.score(samples)
        assert {p.pid for p in psutil.Process().children(recursive=True)} - already  # the workers, while the engine is up
    wall = time.monotonic() - start

    assert len(outcomes) == 1000
    counts = Counter()
    for kind, sample, outcome in zip(kinds, samples, outcomes):
        counts[kind] += 1
        if kind == "ok":
            assert outcome.status == "ok", outcome
            assert outcome.score == float(len(sample["completion"]))
        elif kind == "print":
            assert outcome.status == "ok" and outcome.score == 0.5
            assert outcome.info["output"].startswith("x" * 100)
            assert len(outcome.info["output"]) < 2200  # captured output is capped, not megabytes
        elif kind == "orphan":
            assert outcome.status == "ok" and outcome.score == 1.0
        else:
            status, needle = EXPECTED[kind]
            assert outcome.status == status, (kind, outcome)
            assert outcome.score is None
            if needle:
                assert needle in outcome.info["error"], (kind, outcome.info)
            if status == "timeout":
                assert TIMEOUT * 0.95 <= outcome.info["elapsed_s"] <= TIMEOUT + HANG_SLACK_S, (kind, outcome.info)
            elif kind in ("exit", "segfault"):
                assert outcome.info["elapsed_s"] <= CRASH_SLACK_S, (kind, outcome.info)
    assert counts["ok"] == 1000 - 2 * len(bad_kinds)
    # 8 hangs of 3 s over 2 workers, plus respawns: far less than the samples' timeouts summed
    # (22 bad samples x 3 s = 66 s on one worker, or hours for the sleepers if waited out).
    assert wall < 45, wall

    # Nothing survives: no child of ours, no process any reward started (fork bombs included).
    assert [p for p in psutil.Process().children(recursive=True) if not _under(p, already)] == []
    recorded = _recorded_pids(pid_file)
    assert recorded, "the fork bombs and orphan spawners should have recorded their children"
    assert _wait_dead(recorded) == []


def _under(process: psutil.Process, already: set[int]) -> bool:
    """Whether `process` is, or descends from, one of `already` (a sandbox fork server of this
    process goes on making its spares after a run: not this test's)."""
    try:
        return process.pid in already or any(parent.pid in already for parent in process.parents())
    except psutil.NoSuchProcess:
        return True  # gone meanwhile: nothing left


@pytest.mark.parametrize("containment", ["auto", "process-group"])
def test_children_of_a_healthy_worker_are_killed_at_close(tmp_path: Path, containment: str) -> None:
    pid_file = tmp_path / "pids"
    # Under a process group, a child in a new session would escape: that mode keeps it in-group.
    setsid = containment == "auto"
    samples = [{"completion": "x", "meta": {"kind": "orphan", "pids": str(pid_file), "setsid": setsid}}] * 3
    with Engine(chaos, workers=1, timeout_s=TIMEOUT, containment=containment) as engine:
        outcomes = engine.score(samples)
        assert len(_recorded_pids(pid_file)) == 3
        assert all(_alive(p) for p in _recorded_pids(pid_file))  # alive while the engine is up
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert _wait_dead(_recorded_pids(pid_file)) == []


def test_engine_is_reusable_after_failures() -> None:
    with Engine(chaos, workers=2, timeout_s=0.5) as engine:
        first = engine.score([{"completion": "ab", "meta": {"kind": k}} for k in ("exit", "sleep", "ok", "segfault")])
        second = engine.score([{"completion": "abc"}] * 20)
    assert [o.status for o in first] == ["error", "timeout", "ok", "error"]
    assert [o.score for o in second] == [3.0] * 20


def test_slow_but_legitimate_samples_in_one_chunk_each_get_their_full_timeout() -> None:
    # Each sample takes 60% of the timeout; batched together they exceed it, which must not matter:
    # the deadline is per sample, not per chunk.
    samples = [{"completion": "ok", "meta": {"kind": "slow", "seconds": 0.3}} for _ in range(8)]
    with Engine(chaos, workers=1, timeout_s=0.5, chunk_target_s=10.0) as engine:
        engine._unit_seconds = 0.001  # claim fast units so the engine batches all 8 in one chunk
        outcomes = engine.score(samples)
    assert [o.status for o in outcomes] == ["ok"] * 8


def test_boxes_left_by_a_killed_caller_are_removed_by_the_next_engine() -> None:
    import subprocess
    import sys

    from payoff.containment import Containment

    probe = Containment()
    probe.close(set())
    if probe.kind != "cgroup":  # process groups leave nothing on disk; nothing to clean
        assert probe.root is None
        return
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = probe.root.parent / f"payoff-{dead}-deadbeef"
    (stale / "12345").mkdir(parents=True)
    Containment().close(set())
    assert not stale.exists()
