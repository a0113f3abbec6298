"""The processes an `Engine` owns, and their release however the engine ends.

An engine's worker pool, its containment boxes and every worker pid it has seen live here, apart
from the `Engine` object, so that a `weakref.finalize` can release them without keeping the engine
alive: at `close`, when the engine is garbage-collected (an adapter's engine nobody closed), and at
interpreter exit (finalizers run then too). A caller killed outright runs none of this; the
containment's janitor (`payoff.containment`) removes its boxes then.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import weakref
from multiprocessing.sharedctypes import RawArray
from typing import Any

from pebble import ProcessPool

from payoff.containment import Containment
from payoff.engine.worker import SLOT_WIDTH, init_worker


class Workers:
    """A pebble pool of engine workers, one box per worker, and the shared-memory slots through
    which the parent watches them. Started on first use, again after `close`; `close` is idempotent."""

    def __init__(self, reward: Any, *, workers: int, memory_mb: int | None, max_procs: int, output_chars: int,
                 start_method: str, prefer_cgroup: bool) -> None:
        self.reward, self.workers, self.memory_mb, self.max_procs = reward, workers, memory_mb, max_procs
        self.output_chars, self.start_method, self.prefer_cgroup = output_chars, start_method, prefer_cgroup
        self.owner = os.getpid()
        self.pool: ProcessPool | None = None
        self.containment: Containment | None = None
        self.slots: Any = None
        self.turns: Any = None
        self.nslots = 0
        self.pids: set[int] = set()
        self.final = False  # shut down for good: no restart (a scoring call in flight ends in an error)
        self.free: list[int] = []  # the slots no in-flight chunk holds, shared by concurrent calls
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        _every.add(self)

    def _forget_in_child(self) -> None:
        """In a forked child: the pool, the boxes and the slots are the parent's (the child's
        writes to a slot would mislead the parent's watchdog). Drop them untouched and start
        afresh on first use, as this process's own. A lock another thread held at fork is new."""
        _inherited.append((self.pool, self.containment, self.slots))  # never collected, never closed here
        self.owner = os.getpid()
        self.pool, self.containment, self.slots, self.nslots = None, None, None, 0
        self.pids, self.free = set(), []
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)

    def ensure_started(self) -> ProcessPool:
        with self._lock:
            if self.pool is None:
                self.start()
            return self.pool  # type: ignore[return-value]

    def take_slot(self) -> int | None:
        with self._lock:
            return self.free.pop() if self.free else None

    def give_slot(self, slot: int) -> None:
        with self._lock:
            self.free.append(slot)
            self._slot_freed.notify()

    def wait_for_slot(self, timeout: float) -> None:
        with self._lock:
            if not self.free:
                self._slot_freed.wait(timeout)

    def restart(self, broken: ProcessPool) -> None:
        """A new pool for a broken one, once: the other calls that saw the same pool break
        find it replaced already."""
        with self._lock:
            if self.pool is broken:
                self.stop(graceful=False)
                self.start()

    def start(self) -> None:
        if self.final:
            raise RuntimeError("this engine was shut down (garbage-collected or the interpreter is exiting)")
        if self.containment is None:
            # watch=True: a janitor removes the boxes if this process is killed before close.
            self.containment = Containment(self.max_procs, prefer_cgroup=self.prefer_cgroup, watch=True)
        if self.slots is None:
            # Made once: a restart after close keeps the free list, since a call may still hold slots.
            self.nslots = 2 * self.workers + 2
            self.slots = RawArray("d", self.nslots * SLOT_WIDTH)
            self.free = list(range(self.nslots))
            self.turns = multiprocessing.get_context(self.start_method).Value("i", 0)  # see worker.place_sandbox
        self.pool = ProcessPool(
            max_workers=self.workers,
            initializer=init_worker,
            initargs=(self.reward, self.slots, self.containment, self.memory_mb, self.output_chars, self.turns,
                      model_cores(self.workers)),
            context=multiprocessing.get_context(self.start_method),
        )

    def stop(self, graceful: bool) -> None:
        if self.pool is None:
            return
        pool, self.pool = self.pool, None
        self.pids |= pebble_worker_pids(pool)
        if graceful:
            pool.close()
            try:
                pool.join(timeout=5)
            except TimeoutError:
                pass  # a busy worker: killed below
        if pool.active or not graceful:
            # Kill first: pebble's stop waits for SIGTERM, which a hostile reward may ignore. A
            # broken pool is not active, yet its workers may still run.
            for pid in pebble_worker_pids(pool):
                self.kill_tree(pid)
        if pool.active:
            pool.stop()
            pool.join(timeout=5)

    def kill_tree(self, pid: int) -> None:
        if pid <= 0:
            return
        self.pids.add(pid)
        assert self.containment is not None
        self.containment.kill(pid)

    def close(self, graceful: bool = True) -> None:
        """Stop the workers and kill anything they left behind. In a process forked from the
        owner (which inherited this object) it does nothing: the workers are the owner's."""
        if os.getpid() != self.owner:
            return
        # Under the lock: a concurrent ensure_started or restart must not start a pool in a
        # containment being closed.
        with self._lock:
            try:
                self.stop(graceful=graceful)
            finally:
                containment, self.containment = self.containment, None
                if containment is not None:
                    containment.close(self.pids)
                self.pids = set()

    def shutdown(self) -> None:
        """Close for good, without waiting for busy workers: at garbage collection and exit."""
        self.final = True
        self.close(graceful=False)


_every: weakref.WeakSet[Workers] = weakref.WeakSet()


def model_cores(workers: int) -> int:
    """Each worker's share of the cores for a model (`worker.model_thread`): the cores this
    process may use split among the workers, no more than a torch thread cap set here."""
    share = len(os.sched_getaffinity(0)) // workers
    if "torch" in sys.modules:
        share = min(share, sys.modules["torch"].get_num_threads())
    return max(1, share)


_inherited: list[Any] = []  # a forked child's copies of its parent's pools and boxes


def _forget_parents_workers() -> None:
    for workers in list(_every):
        workers._forget_in_child()


os.register_at_fork(after_in_child=_forget_parents_workers)


def pebble_worker_pids(pool: ProcessPool) -> set[int]:
    # pebble keeps its workers in a private dict; read it defensively so an upgrade cannot break us.
    try:
        return set(pool._pool_manager.worker_manager.workers)  # type: ignore[attr-defined]
    except AttributeError:
        return set()
