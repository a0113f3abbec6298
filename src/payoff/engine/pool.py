"""The engine: run a reward over many samples in worker processes without ever losing one.

Work is cut into *units* (one sample, or one group for a group reward) and units into *chunks*
sized so a chunk takes about `chunk_target_s`, which amortises inter-process overhead. Each
in-flight chunk owns a shared-memory slot where its worker records the unit it is on and when that
unit started. The parent watches the slots: a unit past its deadline gets its worker (and all the
worker's descendants) killed and is settled as ``timeout``; when a worker dies on its own
(``os._exit``, segfault, OOM kill) the slot names the unit that killed it, which is settled as
``error``. Every other unit of a failed chunk is requeued, so a bad sample costs only itself.
"""

from __future__ import annotations

import math
import os
import signal
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired

from payoff.containment import Containment
from payoff.core import DEFAULT_TIMEOUT_S, Outcome, Reward, Sample, SampleError
from payoff.engine.batch_step import run_batch_step
from payoff.engine.cache import OutcomeCache
from payoff.engine.processes import Workers
from payoff.engine.worker import IDLE, RUNNING, SLOT_WIDTH, run_chunk, run_unit
from payoff.registry import get_reward

DEFAULT_MEMORY_MB = 4096
DEFAULT_MAX_PROCS = 256
MAX_CHUNK = 512


@dataclass
class _Chunk:
    slot: int
    units: list[int]
    pool: Any  # the pool it runs on: after a restart, a chunk of the old pool must not restart the new one
    # Set by the watchdog when it kills the chunk's worker: (unit position, seconds it ran).
    overdue: tuple[int, float] | None = None


class Engine:
    """Scores samples with one reward; reusable across calls (the worker pool stays up).

    ``workers=0`` runs in the calling process: no isolation and no timeouts, for debugging.
    ``timeout_s`` is per call of the reward function (one sample, or one group). ``memory_mb`` caps
    how much address space a worker may add to what it had at start. ``max_procs`` caps the tasks
    (processes and threads) a worker may have where cgroups allow; ``containment="process-group"``
    forgoes cgroups (see `payoff.containment`).
    """

    def __init__(
        self,
        reward: str | Reward | Callable[..., Any],
        *,
        workers: int | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        max_procs: int = DEFAULT_MAX_PROCS,
        cache: str | os.PathLike[str] | None = None,
        output_chars: int = 2000,
        start_method: str = "fork",
        chunk_target_s: float = 0.05,
        containment: str = "auto",
    ) -> None:
        if containment not in ("auto", "process-group"):
            raise ValueError("containment must be 'auto' or 'process-group'")
        self.reward = get_reward(reward)
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        self.timeout_s = float(timeout_s or self.reward.timeout_s or DEFAULT_TIMEOUT_S)
        self.memory_mb = memory_mb
        self.max_procs = max_procs
        self.output_chars = output_chars
        self.start_method = start_method
        self.chunk_target_s = chunk_target_s
        self.prefer_cgroup = containment == "auto"
        self.cache = OutcomeCache(cache, self.reward.fingerprint()) if cache else None
        self._workers = Workers(self.reward, workers=self.workers, memory_mb=memory_mb, max_procs=max_procs,
                                output_chars=output_chars, start_method=start_method, prefer_cgroup=self.prefer_cgroup)
        # Released at close, at garbage collection, or at interpreter exit, whichever comes first.
        self._finalizer = weakref.finalize(self, _release, self._workers, self.cache, True)
        self._unit_seconds: float | None = None  # running mean of one unit's duration

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and kill anything they left behind."""
        _release(self._workers, self.cache)

    @property
    def containment_kind(self) -> str:
        if self._workers.containment is None:
            probe = Containment(self.max_procs, prefer_cgroup=self.prefer_cgroup)
            probe.close(set())
            return probe.kind
        return self._workers.containment.kind

    # -- scoring ------------------------------------------------------------------------------
    def score(
        self,
        samples: Sequence[Sample | dict[str, Any]],
        on_progress: Callable[[int], None] | None = None,
        batch_step: bool = True,
    ) -> list[Outcome]:
        """Score every sample; exactly one Outcome per input, in input order. ``batch_step=False``
        returns raw outcomes, without the reward's batch step (`run_batch_step`): for a caller
        that runs that step itself over a larger batch (the Ray backend, the server)."""
        outcomes: list[Outcome | None] = [None] * len(samples)
        parsed: list[Sample | None] = []
        for index, raw in enumerate(samples):
            try:
                parsed.append(raw if isinstance(raw, Sample) else Sample.from_dict(raw))
            except SampleError as error:
                parsed.append(None)
                outcomes[index] = Outcome.error(f"sample {index}: {error}", index=index)
        if on_progress is not None and any(o is not None for o in outcomes):
            on_progress(sum(o is not None for o in outcomes))
        units = self._make_units(parsed)

        def settle(unit: int, unit_outcomes: list[Outcome], elapsed: float | None) -> None:
            for index, outcome in zip(units[unit], unit_outcomes):
                if elapsed is not None:
                    outcome.info.setdefault("elapsed_s", round(elapsed, 6))
                outcomes[index] = outcome
            if on_progress is not None:
                on_progress(len(units[unit]))

        todo: deque[int] = deque()
        for unit, members in enumerate(units):
            if self.cache is not None:
                hit = self.cache.get([parsed[i] for i in members])  # type: ignore[misc]
                if hit is not None:
                    settle(unit, hit, None)
                    continue
            todo.append(unit)

        def store(unit: int, unit_outcomes: list[Outcome], elapsed: float | None) -> None:
            if self.cache is not None and elapsed is not None:
                self.cache.put([parsed[i] for i in units[unit]], unit_outcomes)  # type: ignore[misc]
            settle(unit, unit_outcomes, elapsed)

        if self.workers == 0:
            for unit in todo:
                store(unit, *run_unit(self.reward, [parsed[i] for i in units[unit]], self.output_chars))  # type: ignore[misc]
        elif todo:
            self._run_pool(units, parsed, todo, store)
        if batch_step:
            run_batch_step(self.reward, parsed, outcomes)  # type: ignore[arg-type]
        missing = [i for i, o in enumerate(outcomes) if o is None]
        if missing:  # a bug in the engine, never a reason to drop a sample silently
            for index in missing:
                outcomes[index] = Outcome.error(f"sample {index}: engine lost this sample (please report)")
        return outcomes  # type: ignore[return-value]

    def _make_units(self, parsed: list[Sample | None]) -> list[list[int]]:
        """One unit per sample; for a group reward, one unit per group (a sample without a group
        is a group of its own); for a batched reward, batches of up to ``batch_size`` samples
        sorted by length, so a forward pass pads little."""
        batch_size = getattr(self.reward, "batch_size", None)
        if not self.reward.is_group and batch_size:
            present = sorted((i for i, s in enumerate(parsed) if s is not None), key=lambda i: _length(parsed[i]))
            return [present[start:start + batch_size] for start in range(0, len(present), batch_size)]
        if not self.reward.is_group:
            return [[i] for i, s in enumerate(parsed) if s is not None]
        groups: dict[Any, list[int]] = {}
        units: list[list[int]] = []
        for index, sample in enumerate(parsed):
            if sample is None:
                continue
            if sample.group is None:
                units.append([index])
            else:
                groups.setdefault(sample.group, []).append(index)
        return list(groups.values()) + units

    def _chunk_size(self, remaining: int) -> int:
        fair_share = max(1, math.ceil(remaining / (2 * self.workers)))
        if self._unit_seconds is None:
            return min(4, fair_share)
        wanted = int(self.chunk_target_s / max(self._unit_seconds, 1e-7))
        return max(1, min(wanted, MAX_CHUNK, fair_share))

    def _run_pool(self, units: list[list[int]], parsed: list[Sample | None], todo: deque[int], store: Callable) -> None:
        # Several calls may run at once (the server keeps two batches in flight): they share the
        # pool and draw their chunks' slots from one free list, so a slot is never two chunks'.
        workers = self._workers
        in_flight: dict[Any, _Chunk] = {}
        alone: set[int] = set()  # units to run in a chunk of their own after an unexplained failure
        try:
            while todo or in_flight:
                while todo:
                    pool = workers.ensure_started()
                    slot = workers.take_slot()
                    if slot is None:
                        break
                    was_alone = todo[0] in alone
                    chunk_units = _take_chunk(todo, self._chunk_size(len(todo)), alone)
                    base = slot * SLOT_WIDTH
                    self._slots[base : base + SLOT_WIDTH] = [0.0, 0.0, 0.0, IDLE]
                    payload = [[parsed[i] for i in units[u]] for u in chunk_units]
                    try:
                        in_flight[pool.schedule(run_chunk, args=(slot, payload))] = _Chunk(slot, chunk_units, pool)
                    except RuntimeError:
                        # The pool broke under another call, which has not replaced it yet: put
                        # the chunk back and replace it here (once, whoever comes first).
                        workers.give_slot(slot)
                        todo.extendleft(reversed(chunk_units))
                        if was_alone:
                            alone.add(chunk_units[0])
                        workers.restart(pool)
                if not in_flight:
                    workers.wait_for_slot(0.05)  # every slot is another call's: wait for one
                    continue

                done, _ = wait(list(in_flight), timeout=self._tick(in_flight), return_when=FIRST_COMPLETED)
                broken = None
                for future in done:
                    chunk = in_flight.pop(future)
                    # The slot goes back only once `_recover` has read it: another call could
                    # take a freed slot at once and its worker overwrite the pid and unit there.
                    try:
                        results = future.result()
                    except BaseException as error:  # noqa: BLE001 - a failed chunk is recovered, never raised
                        if isinstance(error, BrokenProcessPool):
                            broken = chunk.pool
                        try:
                            self._recover(chunk, error, units, todo, alone, store)
                        finally:
                            workers.give_slot(chunk.slot)
                        continue
                    workers.give_slot(chunk.slot)
                    for unit, (unit_outcomes, elapsed) in zip(chunk.units, results):
                        store(unit, unit_outcomes, elapsed)
                    self._learn_speed([elapsed for _, elapsed in results])
                if broken is not None:
                    workers.restart(broken)
                self._watchdog(in_flight)
        finally:
            for future, chunk in in_flight.items():  # only after an exception (Ctrl-C): free what we held
                if not future.cancel():  # already running: its worker must not write a slot another call takes
                    base = chunk.slot * SLOT_WIDTH
                    if self._slots[base + 3] == RUNNING:
                        self._kill_tree(int(self._slots[base]))
                workers.give_slot(chunk.slot)

    def _tick(self, in_flight: dict[Any, _Chunk]) -> float:
        """How long to wait for results before looking at the deadlines again."""
        now = time.monotonic()
        tick = 0.05
        for chunk in in_flight.values():
            base = chunk.slot * SLOT_WIDTH
            if self._slots[base + 3] == RUNNING:
                tick = min(tick, max(0.001, self._slots[base + 2] + self.timeout_s - now))
        return tick

    def _watchdog(self, in_flight: dict[Any, _Chunk]) -> None:
        now = time.monotonic()
        for future, chunk in in_flight.items():
            base = chunk.slot * SLOT_WIDTH
            if chunk.overdue is not None or future.done() or self._slots[base + 3] != RUNNING:
                continue
            started = self._slots[base + 2]
            if now - started > self.timeout_s:
                self._kill_tree(int(self._slots[base]))
                # Read the slot again now that the worker is dead and cannot change it.
                if self._slots[base + 3] == RUNNING:
                    chunk.overdue = (int(self._slots[base + 1]), now - self._slots[base + 2])
                future.cancel()

    @property
    def _slots(self) -> Any:
        return self._workers.slots

    def _kill_tree(self, pid: int) -> None:
        self._workers.kill_tree(pid)

    def _recover(
        self,
        chunk: _Chunk,
        error: BaseException,
        units: list[list[int]],
        todo: deque[int],
        alone: set[int],
        store: Callable,
    ) -> None:
        """Settle the unit that brought a chunk down and requeue the others."""
        base = chunk.slot * SLOT_WIDTH
        pid = int(self._slots[base])
        if pid > 0:
            self._kill_tree(pid)  # whatever the dead worker started dies with it
        culprit: int | None = None
        verdict: Outcome | None = None
        if chunk.overdue is not None:
            culprit, ran = chunk.overdue
            # A unit killed just short of its deadline (a race with the watchdog) is run again.
            if ran >= self.timeout_s * 0.95:
                verdict = Outcome.timeout(self.timeout_s, elapsed_s=round(ran, 6))
            else:
                alone.add(chunk.units[culprit])
        elif isinstance(error, (BrokenProcessPool, CancelledError)):
            pass  # not this chunk's fault (another worker broke the pool) or a watchdog race: rerun
        elif self._slots[base + 3] == RUNNING:
            culprit = int(self._slots[base + 1])
            ran = time.monotonic() - self._slots[base + 2]
            verdict = Outcome.error(_describe_death(error), elapsed_s=round(ran, 6))
        elif len(chunk.units) == 1:
            culprit = 0
            verdict = Outcome.error(f"the worker could not return this sample's result: {error!r}")
        else:
            alone.update(chunk.units)  # failed between units: find the culprit one unit at a time
        if culprit is not None and verdict is not None:
            unit = chunk.units[culprit]
            store(unit, [Outcome(verdict.score, verdict.status, {}, dict(verdict.info)) for _ in units[unit]], None)
        for position in reversed(range(len(chunk.units))):
            if position != culprit or verdict is None:
                todo.appendleft(chunk.units[position])

    def _learn_speed(self, durations: list[float]) -> None:
        if not durations:
            return
        mean = sum(durations) / len(durations)
        self._unit_seconds = mean if self._unit_seconds is None else 0.7 * self._unit_seconds + 0.3 * mean


def _length(sample: Sample | None) -> int:
    prompt = sample.prompt if sample is not None else ""
    if not isinstance(prompt, str):
        prompt = "".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in prompt)
    return len(prompt) + len(sample.completion if sample is not None else "")


def _take_chunk(todo: deque[int], size: int, alone: set[int]) -> list[int]:
    first = todo.popleft()
    if first in alone:
        alone.discard(first)
        return [first]
    chunk = [first]
    while todo and len(chunk) < size and todo[0] not in alone:
        chunk.append(todo.popleft())
    return chunk


def _describe_death(error: BaseException) -> str:
    if isinstance(error, ProcessExpired):
        code = error.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the worker died of {name} while scoring this sample"
        return f"the worker exited with code {code} while scoring this sample (os._exit or an abort)"
    return f"the worker failed while scoring this sample: {error!r}"


def _release(workers: Workers, cache: OutcomeCache | None, final: bool = False) -> None:
    # A function of the engine's parts, not of the engine: the finalizer must not keep it alive.
    if final:
        workers.shutdown()
    else:
        workers.close()
    if cache is not None:
        cache.close()
