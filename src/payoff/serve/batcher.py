"""Requests from many clients become engine batches: one batch scores at a time (the engine's
worker pool is the parallelism), and every request that arrives meanwhile joins the next one.
The queue is bounded in samples; beyond it a request is refused at once (503), not queued.

Merging is an execution detail and never changes an outcome: each request's groups stay its
own (two trainers that both number their groups 0..P-1 never share one), and a reward's batch
step (group or batch normalisation, shapers) runs per request, over that request alone."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from payoff.core import Outcome, Sample
from payoff.engine.batch_step import run_batch_step

IN_FLIGHT = 2  # engine batches scoring at once


class Overloaded(RuntimeError):
    pass


class Batcher:
    def __init__(self, engine: Any, max_batch: int = 1024, max_pending: int = 20_000) -> None:
        self.engine, self.max_batch, self.max_pending = engine, max_batch, max_pending
        self.pending = 0
        self._queue: asyncio.Queue[tuple[list[Sample], asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="payoff-score")
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def score(self, samples: list[Sample]) -> list[Outcome]:
        if self.pending + len(samples) > self.max_pending:
            raise Overloaded(f"{self.pending} samples already queued (limit {self.max_pending})")
        assert self._queue is not None, "Batcher.start() first"
        self.pending += len(samples)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((samples, future))
        try:
            return await future
        finally:
            self.pending -= len(samples)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            count = len(batch[0][0])
            while count < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                batch.append(item)
                count += len(item[0])
            live = [(samples, future) for samples, future in batch if not future.cancelled()]
            # Up to IN_FLIGHT batches score at once: the engine takes calls from several threads,
            # and a second batch keeps the workers busy while the first one's last chunks finish.
            await self._slots.acquire()
            task = loop.create_task(self._score(loop, live))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _score(self, loop: asyncio.AbstractEventLoop, live: list[tuple[list[Sample], asyncio.Future]]) -> None:
        try:
            everything = [s for number, (samples, _) in enumerate(live) for s in self._scoped(number, samples)]
            try:
                outcomes = await loop.run_in_executor(self._executor, functools.partial(self.engine.score, everything, batch_step=False))
            except Exception as error:  # the engine itself failed: tell every waiting request
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                return
            start = 0
            for samples, future in live:
                mine = outcomes[start:start + len(samples)]
                start += len(samples)
                if future.done():
                    continue
                try:
                    run_batch_step(self.engine.reward, samples, mine)  # over this request alone
                except Exception as error:  # noqa: BLE001 - run_batch_step already turns failures into outcomes
                    future.set_exception(error)
                    continue
                future.set_result(mine)
        finally:
            self._slots.release()

    def _scoped(self, number: int, samples: list[Sample]) -> list[Sample]:
        """For a group reward, each request's group ids made its own: (request, group)."""
        if not getattr(self.engine.reward, "is_group", False):
            return samples
        return [s if s.group is None else dataclasses.replace(s, group=(number, s.group)) for s in samples]
