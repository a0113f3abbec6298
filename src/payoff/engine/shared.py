"""One engine per reward per process, for callers that score from many threads or event loops.

Trainers call a reward from places payoff does not control: verl's reward manager from a thread
pool, an async reward loop from its event loop, TRL from the training loop. Each such caller
shares one `SharedEngine` per reward (and engine settings) in the process, created under a lock
on first use. Dispatcher threads own the engine: requests from any thread or event loop queue
up and every request that arrives while a batch is scoring joins the next batch, so the workers
stay busy and no caller ever starts an engine of its own. Merging never changes an outcome: each
request's groups stay its own and the reward's batch step runs per request.

Shared engines are shut down at interpreter exit (atexit), and the engine's own finalizer
releases its workers if it is collected; a process forked from the owner starts its own.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from payoff.core import Outcome, Reward, Sample, SampleError
from payoff.engine.batch_step import run_batch_step
from payoff.engine.pool import Engine
from payoff.registry import get_reward

_lock = threading.Lock()
_shared: dict[tuple[Any, ...], SharedEngine] = {}
_live: weakref.WeakSet[SharedEngine] = weakref.WeakSet()  # every SharedEngine, for the fork handler
IN_FLIGHT = 2  # batches scoring at once: a second keeps the workers busy while the first one's last chunks finish


class SharedEngine:
    """An `Engine` behind dispatcher threads: `score` from any thread, `await ascore` from any
    event loop (the loop never blocks). Up to IN_FLIGHT merged batches score at once. `close`
    releases the workers; a later call starts them again."""

    def __init__(self, reward: str | Reward | Callable[..., Any], *, engine: Any = None, max_batch: int | None = None,
                 **options: Any) -> None:
        # `engine`: one built elsewhere (the server's, a Ray backend) to dispatch to, else a new Engine.
        self.engine = engine if engine is not None else Engine(reward, **options)
        self.reward = self.engine.reward
        self.max_batch = max_batch  # samples per merged batch (a request is never split); None: all queued
        self._queue: deque[tuple[list[Any], Future]] = deque()
        self._wake = threading.Condition()
        # Each dispatcher has its own stop flag: a submit during close starts a new dispatcher
        # and never un-stops the ones close is waiting for.
        self._threads: list[tuple[threading.Thread, threading.Event]] = []
        self.caller_reward: Any = reward
        _live.add(self)

    @property
    def timeout_s(self) -> float:
        return self.engine.timeout_s

    @property
    def _in_flight(self) -> int:
        # In-process scoring (workers=0) swaps sys.stdout while a unit runs: one batch at a time.
        # (An engine built elsewhere, such as the Ray backend, may have no `workers`.)
        return 1 if getattr(self.engine, "workers", None) == 0 else IN_FLIGHT

    def submit(self, samples: Sequence[Sample | dict[str, Any]]) -> Future:
        """Queue `samples`; the Future's result is their outcomes, in order."""
        return self.submit_many([samples])[0]

    def submit_many(self, requests: Sequence[Sequence[Sample | dict[str, Any]]]) -> list[Future]:
        """Queue several requests at once (they join one batch unless `max_batch` splits them);
        a Future per request."""
        futures: list[Future] = [Future() for _ in requests]
        with self._wake:
            self._queue.extend((list(samples), future) for samples, future in zip(requests, futures))
            self._threads = [(t, stop) for t, stop in self._threads if t.is_alive()]
            if len(self._threads) < self._in_flight:  # a stopping dispatcher still drains the queue
                stop = threading.Event()
                thread = threading.Thread(target=self._run, args=(stop,), name=f"payoff-engine-{self.reward.name}",
                                          daemon=True)
                self._threads.append((thread, stop))
                thread.start()
            self._wake.notify()
        return futures

    def score(self, samples: Sequence[Sample | dict[str, Any]]) -> list[Outcome]:
        return self.submit(samples).result()

    async def ascore(self, samples: Sequence[Sample | dict[str, Any]]) -> list[Outcome]:
        return await asyncio.wrap_future(self.submit(samples))

    def close(self) -> None:
        """Finish what is queued, stop the dispatcher and the workers."""
        self.finish()
        self.engine.close()

    def finish(self) -> None:
        """Finish what is queued and stop the dispatchers; the engine stays up (a later call
        starts them again)."""
        self._stop()

    def shutdown(self) -> None:
        """At exit: stop the workers at once (a batch in flight ends in an error outcome)."""
        self._stop(wait=False)
        self.engine._finalizer()

    def _stop(self, wait: bool = True) -> None:
        with self._wake:
            threads = list(self._threads)
            for _, stop in threads:
                stop.set()
            self._wake.notify_all()
        if wait:
            for thread, _ in threads:
                if thread is not threading.current_thread():
                    thread.join()

    def _run(self, stop: threading.Event) -> None:
        while True:
            with self._wake:
                while not self._queue and not stop.is_set():
                    self._wake.wait()
                if not self._queue:
                    # Leave the list under the lock: a submit from now on starts a new dispatcher.
                    self._threads = [(t, s) for t, s in self._threads if s is not stop]
                    return
                batch = [self._queue.popleft()]
                count = len(batch[0][0])
                while self._queue and (self.max_batch is None or count < self.max_batch):
                    count += len(self._queue[0][0])
                    batch.append(self._queue.popleft())
                if self._queue:  # what max_batch left over: the other dispatcher may take it now
                    self._wake.notify()
            batch = [(samples, future) for samples, future in batch if future.set_running_or_notify_cancel()]
            try:
                self._score(batch)
            except BaseException as error:  # noqa: BLE001 - never leave a caller waiting forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)

    def _score(self, batch: list[tuple[list[Any], Future]]) -> None:
        if self.reward.batch_size:
            # A batched reward's unit is many samples: merged, one request's crash would settle
            # another's samples as errors. Each request scores on its own.
            for request in batch:
                self._score_merged([request])
        else:
            self._score_merged(batch)

    def _score_merged(self, batch: list[tuple[list[Any], Future]]) -> None:
        requests = [_parse(samples) for samples, _ in batch]
        merged = [s for number, (parsed, _) in enumerate(requests) for s in self._scoped(number, parsed)]
        outcomes = self.engine.score(merged, batch_step=False) if merged else []
        start = 0
        for (parsed, mine), (_, future) in zip(requests, batch):
            present = [i for i, s in enumerate(parsed) if s is not None]
            for i, outcome in zip(present, outcomes[start:start + len(present)]):
                mine[i] = outcome
            start += len(present)
            run_batch_step(self.reward, parsed, mine)  # over this request alone; never raises
            future.set_result(mine)

    def _scoped(self, number: int, parsed: list[Sample | None]) -> list[Sample]:
        """For a group reward, each request's group ids made its own: (request, group)."""
        present = [s for s in parsed if s is not None]
        if not self.reward.is_group:
            return present
        return [s if s.group is None else dataclasses.replace(s, group=(number, s.group)) for s in present]


def _parse(samples: list[Any]) -> tuple[list[Sample | None], list[Outcome | None]]:
    parsed: list[Sample | None] = []
    outcomes: list[Outcome | None] = []
    for index, raw in enumerate(samples):
        try:
            parsed.append(raw if isinstance(raw, Sample) else Sample.from_dict(raw))
            outcomes.append(None)
        except SampleError as error:
            parsed.append(None)
            outcomes.append(Outcome.error(f"sample {index}: {error}", index=index))
    return parsed, outcomes


def shared_engine(reward: str | Reward | Callable[..., Any], **options: Any) -> SharedEngine:
    """This process's engine for `reward` with these `Engine` options, created on first use.
    Safe to call from any number of threads at once: they all get the same engine."""
    key = (_identity(reward), tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _lock:
        engine = _shared.get(key)
        if engine is None:
            engine = _shared[key] = SharedEngine(reward, **options)  # keeps `reward` alive (caller_reward)
        return engine


def _identity(reward: str | Reward | Callable[..., Any]) -> tuple[str, Any]:
    # A plain function or "module:function" is wrapped in a new Reward on every resolution: key on
    # what the caller passed, or each call would start another engine. A registered name resolves
    # to the registry's one object, kept alive by its engine, so its id is not reused.
    if isinstance(reward, str) and ":" in reward:
        return ("reference", reward)
    if not isinstance(reward, (str, Reward)):
        return ("callable", id(reward))
    return ("reward", id(get_reward(reward)))


def default_workers() -> int:
    return os.cpu_count() or 1


async def ascore(samples: Sequence[Sample | dict[str, Any]], reward: str | Reward | Callable[..., Any], *,
                 workers: int | None = None, timeout_s: float | None = None, **options: Any) -> list[Outcome]:
    """`payoff.score` for event loops: ``await payoff.ascore(samples, "math")``. Scores on this
    process's shared engine for the reward (started on first use, kept for later calls, shut
    down at exit); the event loop is never blocked."""
    engine = shared_engine(reward, workers=default_workers() if workers is None else workers, timeout_s=timeout_s, **options)
    return await engine.ascore(samples)


def shutdown_all() -> None:
    """Shut down every shared engine of this process (registered with atexit)."""
    with _lock:
        engines = list(_shared.values())
        _shared.clear()
    for engine in engines:
        engine.shutdown()


def _forget_in_child() -> None:
    # A forked child inherits the table but neither the dispatcher threads nor the right to the
    # parent's workers; it starts its own engines. A lock another thread held at fork is reset.
    global _lock
    _lock = threading.Lock()
    _shared.clear()
    # An engine the caller kept (an adapter's) has no dispatcher here: fresh ones start on use.
    # The requests queued in the parent are the parent's to answer.
    for engine in list(_live):
        engine._queue = deque()
        engine._wake = threading.Condition()
        engine._threads = []


atexit.register(shutdown_all)
os.register_at_fork(after_in_child=_forget_in_child)
