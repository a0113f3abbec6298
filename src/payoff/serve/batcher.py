"""Requests from many clients become engine batches, through the shared engine's dispatcher
(`payoff.engine.shared.SharedEngine`): up to two merged batches score at once (the engine's
worker pool is the parallelism), and every request that arrives meanwhile joins the next one.
The queue is bounded in samples; beyond it a request is refused at once (503), not queued.

Merging is an execution detail and never changes an outcome: each request's groups stay its
own (two trainers that both number their groups 0..P-1 never share one), and a reward's batch
step (group or batch normalisation, shapers) runs per request, over that request alone. Both are
the shared engine's, so the server and the in-process adapters merge requests the same way."""

from __future__ import annotations

import asyncio
from typing import Any

from payoff.core import Outcome, Sample
from payoff.engine.shared import SharedEngine


class Overloaded(RuntimeError):
    pass


class Batcher:
    """`engine`: a `SharedEngine` (used as it is), or any engine with ``reward`` and
    ``score(samples, batch_step=False)`` (the server's `Engine`, a Ray backend), dispatched to
    through a `SharedEngine` of its own that takes at most `max_batch` samples per batch."""

    def __init__(self, engine: Any, max_batch: int = 1024, max_pending: int = 20_000) -> None:
        self.engine, self.max_batch, self.max_pending = engine, max_batch, max_pending
        self._own = not isinstance(engine, SharedEngine)
        self.shared = SharedEngine(engine.reward, engine=engine, max_batch=max_batch) if self._own else engine
        self.pending = 0
        self._queue: list[tuple[list[Sample], asyncio.Future]] = []
        self._flush: asyncio.Handle | None = None

    def start(self) -> None:
        pass  # nothing to start: the shared engine's dispatchers start on the first request

    async def stop(self) -> None:
        """Finish what is queued; the engine itself is its owner's to close."""
        if self._flush is not None:
            self._flush.cancel()
            self._submit()
        if self._own:
            await asyncio.get_running_loop().run_in_executor(None, self.shared.finish)

    async def score(self, samples: list[Sample]) -> list[Outcome]:
        if self.pending + len(samples) > self.max_pending:
            raise Overloaded(f"{self.pending} samples already queued (limit {self.max_pending})")
        self.pending += len(samples)
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        # Requests that arrive in one turn of the event loop are handed over together, so they
        # join one engine batch whatever the dispatcher is doing.
        self._queue.append((samples, future))
        if self._flush is None:
            self._flush = loop.call_soon(self._submit)
        try:
            return await future
        finally:
            self.pending -= len(samples)

    def _submit(self) -> None:
        self._flush = None
        queued, self._queue = self._queue, []
        live = [(samples, future) for samples, future in queued if not future.cancelled()]
        try:
            results = self.shared.submit_many([samples for samples, _ in live])
        except Exception as error:  # noqa: BLE001 - a request must never wait for an answer that will not come
            for _, future in live:
                future.set_exception(error)
            return
        for (_, future), result in zip(live, results):
            _chain(result, future)


def _chain(result: Any, future: asyncio.Future) -> None:
    """The shared engine's concurrent Future settles the request's asyncio Future (on its loop);
    a request its client gave up on is cancelled in the engine's queue too."""
    loop = future.get_loop()

    def settle(done: Any) -> None:
        if future.cancelled():
            return
        if done.cancelled():
            future.cancel()
        elif done.exception() is not None:
            future.set_exception(done.exception())
        else:
            future.set_result(done.result())

    result.add_done_callback(lambda done: loop.call_soon_threadsafe(settle, done))
    future.add_done_callback(lambda f: result.cancel() if f.cancelled() else None)
