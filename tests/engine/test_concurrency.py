"""Concurrent calls on one engine, with real worker processes: a call never acts on a slot, a
worker or a future that is another call's. Each race is made certain by a hook that holds one
thread at the racy point until the other has done its part (a bounded wait on a condition)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pebble.pool.base_pool import PoolStatus

from payoff.core import Reward
from payoff.engine import Engine, processes, shared
from payoff.engine.shared import SharedEngine, shared_engine
from payoff.engine.worker import RUNNING, SLOT_WIDTH
from tests.engine.chaos import chaos


def _until(check, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def test_a_failed_chunk_never_blames_the_call_that_reuses_its_slot(monkeypatch) -> None:
    # Call A's worker dies; call B waits for the one slot. However late A's dispatcher reads the
    # slot after B's worker has started in it, B's sample is never killed nor blamed.
    real_give = processes.Workers.give_slot
    held = threading.Event()

    def give_then_wait_for_b(self, slot: int) -> None:
        real_give(self, slot)
        if threading.current_thread().name == "A" and not held.is_set():
            held.set()  # B takes the slot now; A goes on only once B's worker runs in it
            _until(lambda: self.slots[slot * SLOT_WIDTH + 3] == RUNNING)

    monkeypatch.setattr(processes.Workers, "give_slot", give_then_wait_for_b)
    results: dict[str, list] = {}
    with Engine(chaos, workers=2, timeout_s=20) as engine:
        engine.score([{"completion": "warm"}])
        engine._workers.free = [0]  # one slot: B must reuse the one A gives back
        a = threading.Thread(name="A", target=lambda: results.__setitem__(
            "A", engine.score([{"completion": "x", "meta": {"kind": "exit"}}])))
        b = threading.Thread(name="B", target=lambda: results.__setitem__(
            "B", engine.score([{"completion": "abc", "meta": {"kind": "slow", "seconds": 1}}])))
        a.start()
        assert _until(lambda: engine._workers.free == [])  # A holds the slot before B asks
        b.start()
        a.join(60)
        b.join(60)
    assert held.is_set()
    assert [(o.status, o.score) for o in results["B"]] == [("ok", 3.0)]
    assert results["A"][0].status == "error" and "code 3" in results["A"][0].info["error"]


def test_close_returns_when_a_request_arrives_while_it_waits(monkeypatch) -> None:
    # A submit while close waits for the dispatcher gets its outcome, and close still returns.
    release, joining = threading.Event(), threading.Event()
    real_join = threading.Thread.join

    def join(self, timeout=None):
        if threading.current_thread().name == "closer":
            joining.set()
        return real_join(self, timeout)

    monkeypatch.setattr(threading.Thread, "join", join)
    stdout = sys.stdout
    engine = SharedEngine(Reward(lambda s: (release.wait(30), 1.0)[1], name="held"), workers=0)
    first = engine.submit([{"completion": "a"}])
    closer = threading.Thread(target=engine.close, name="closer", daemon=True)
    closer.start()
    assert joining.wait(30)  # close is waiting for the busy dispatcher
    second = engine.submit([{"completion": "b"}])
    release.set()
    assert first.result(30)[0].score == 1.0
    assert second.result(30)[0].score == 1.0
    real_join(closer, 30)
    assert not closer.is_alive()
    assert sys.stdout is stdout  # the new request never scored beside the stopping dispatcher


def test_a_dispatcher_that_fails_outside_the_engine_fails_its_callers(monkeypatch) -> None:
    def broken(*args):
        raise RuntimeError("batch step broke")

    monkeypatch.setattr(shared, "run_batch_step", broken)
    engine = SharedEngine(Reward(lambda s: 1.0, name="plain"), workers=0)
    try:
        with pytest.raises(RuntimeError, match="batch step broke"):
            engine.submit([{"completion": "a"}]).result(30)
        monkeypatch.undo()
        assert engine.submit([{"completion": "b"}]).result(30)[0].score == 1.0
    finally:
        engine.close()


def test_in_process_scoring_runs_one_batch_at_a_time() -> None:
    # workers=0 scores in the dispatcher, which swaps sys.stdout while a unit runs: two at once
    # would leave sys.stdout replaced for good.
    active, most, partner, started = [0], [0], threading.Event(), threading.Event()
    lock = threading.Lock()

    def counted(sample) -> float:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            if active[0] > 1:
                partner.set()
        if sample.completion == "first":
            started.set()
            partner.wait(2)  # long enough for a second dispatcher, if any, to start the other
        with lock:
            active[0] -= 1
        print("scored", sample.completion)
        return 1.0

    stdout = sys.stdout
    engine = SharedEngine(Reward(counted, name="counted"), workers=0)
    try:
        first = engine.submit([{"completion": "first"}])
        assert started.wait(30)  # the first batch is scoring: the second cannot join it
        second = engine.submit([{"completion": "second"}])
        assert first.result(30)[0].score == 1.0 and second.result(30)[0].score == 1.0
    finally:
        engine.close()
    assert most[0] == 1
    assert sys.stdout is stdout


def test_a_plain_function_or_reference_gets_one_shared_engine() -> None:
    def mine(sample) -> float:
        return 2.0

    for reward in (mine, "tests.engine.chaos:plain_length"):
        first = shared_engine(reward, workers=0)
        try:
            assert shared_engine(reward, workers=0) is first
        finally:
            first.close()
    assert shared_engine("tests.engine.chaos:plain_length", workers=0).score([{"completion": "abcd"}])[0].score == 4.0


def test_a_forked_child_starts_its_own_workers_and_never_touches_the_parents() -> None:
    # An adapter keeps its engine; a trainer forks. The child's call must neither use the parent's
    # pool nor write into the parent's shared-memory slots, and its own workers die with it.
    engine = SharedEngine(chaos, workers=1, timeout_s=20)
    try:
        assert engine.score([{"completion": "ab"}])[0].score == 2.0
        parent_slots = list(engine.engine._workers.slots)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running the parent's exit handlers
            report: dict = {}
            try:
                report["scores"] = [o.score for o in engine.score([{"completion": "abc"}, {"completion": "x"}])]
                report["own_slots"] = engine.engine._workers.slots is not None and engine.engine._workers.owner == os.getpid()
                report["workers"] = sorted(processes.pebble_worker_pids(engine.engine._workers.pool))
                engine.close()
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                report["error"] = repr(error)
            finally:
                os.write(write, json.dumps(report).encode())
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read) as handle:
            report = json.loads(handle.read())
        assert report.get("scores") == [3.0, 1.0], report
        assert report["own_slots"] and report["workers"]
        assert all(_until(lambda p=p: not _alive(p), 10) for p in report["workers"])
        assert list(engine.engine._workers.slots) == parent_slots
        assert engine.score([{"completion": "abcd"}])[0].score == 4.0  # the parent's pool still works
    finally:
        engine.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_call_that_finds_the_pool_broken_by_another_replaces_it() -> None:
    # Another call's pool broke and it has not restarted it yet: this call's schedule must not
    # raise, and the broken pool's workers are killed even though pebble no longer counts it active.
    with Engine(chaos, workers=2, timeout_s=20) as engine:
        assert engine.score([{"completion": "ab"}])[0].score == 2.0
        broken = engine._workers.pool
        broken._context.status = PoolStatus.ERROR  # what pebble reports when its manager fails
        old = processes.pebble_worker_pids(broken)
        assert old and not broken.active
        assert [o.score for o in engine.score([{"completion": "abc"}, {"completion": "x"}])] == [3.0, 1.0]
        assert engine._workers.pool is not broken
        assert all(_until(lambda p=p: not _alive(p), 10) for p in old)


KILLED_CALLER = """
import json, sys, time
from payoff.engine import Engine
from payoff.engine.processes import pebble_worker_pids
from payoff.engine.worker import RUNNING, SLOT_WIDTH
from tests.engine.chaos import chaos
engine = Engine(chaos, workers=2, timeout_s=600, containment="process-group")
thread = __import__("threading").Thread(target=engine.score, args=([{"completion": "x", "meta": {"kind": "sleep"}}],),
                                        daemon=True)
thread.start()
while not any(engine._workers.slots is not None and engine._workers.slots[s * SLOT_WIDTH + 3] == RUNNING
              for s in range(engine._workers.nslots)):
    time.sleep(0.01)
print(json.dumps(sorted(pebble_worker_pids(engine._workers.pool))), flush=True)
time.sleep(600)
"""


def test_a_stuck_worker_dies_with_a_caller_killed_outright_without_cgroups() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    child = subprocess.Popen([sys.executable, "-c", KILLED_CALLER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        workers = json.loads(child.stdout.readline())
        assert workers and all(_alive(p) for p in workers)
    finally:
        child.kill()
        child.wait(30)
    assert _until(lambda: not any(_alive(p) for p in workers), 15), [p for p in workers if _alive(p)]


def _crash_on_request(samples) -> list[float]:
    if any(sample.completion == "crash" for sample in samples):
        os._exit(3)
    return [float(len(sample.completion)) for sample in samples]


def test_requests_merged_for_a_batched_reward_never_share_a_batch() -> None:
    engine = SharedEngine(Reward(_crash_on_request, name="crash_on_request", batch_size=8), workers=1, timeout_s=20)
    try:
        with engine._wake:  # no dispatcher takes the queue before both requests are in it
            crashing = engine.submit([{"completion": "crash"}])
            healthy = engine.submit([{"completion": "abc"}, {"completion": "x"}])
        assert crashing.result(60)[0].status == "error"
        assert [(o.status, o.score) for o in healthy.result(60)] == [("ok", 3.0), ("ok", 1.0)]
    finally:
        engine.close()
