"""Concurrent calls on one engine, with real worker processes: a call never acts on a slot, a
worker or a future that is another call's. Each race is made certain by a hook that holds one
thread at the racy point until the other has done its part (a bounded wait on a condition)."""

from __future__ import annotations

import threading
import time

from payoff.engine import Engine, processes
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
