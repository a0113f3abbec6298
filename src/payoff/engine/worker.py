"""What runs inside a worker process (and, for ``workers=0``, in the caller's process).

The parent learns what a worker is doing through a shared-memory *slot* per in-flight chunk:
the worker writes its pid, which unit of the chunk it is on and when that unit started. That is
how the parent enforces a per-sample deadline on batched work and knows which sample was running
when a worker died, without any signal handler in the worker.
"""

from __future__ import annotations

import faulthandler
import io
import os
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from payoff.containment import SANDBOX_CPU
from payoff.core import Outcome, Reward, Sample

# Slot layout: [pid, unit index within the chunk, unit start (time.monotonic), state].
SLOT_WIDTH = 4
IDLE, RUNNING, FINISHED = 0.0, 1.0, 2.0

_reward: Reward | None = None
_slots: Any = None
_output_chars = 2000
_cores = 1  # this worker's share of the cores, for a model's thread pool (`model_thread`)
_model_executor: ThreadPoolExecutor | None = None


class CappedText(io.TextIOBase):
    """A stdout stand-in that keeps the first `limit` characters and drops the rest, so a reward
    that prints megabytes costs neither memory nor the user's terminal."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.size
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def value(self) -> str:
        return "".join(self.parts)


WORKER_NICENESS = 10


def init_worker(reward: Reward, slots: Any, containment: Any, memory_mb: int | None, output_chars: int,
                turns: Any = None, cores: int = 1) -> None:
    """Pool initializer: box the worker, cap its memory, silence its file descriptors, give its
    sandbox a core (`place_sandbox`) and its models a share of the cores (`model_thread`)."""
    global _reward, _slots, _output_chars, _cores
    _reward, _slots, _output_chars, _cores = reward, slots, output_chars, cores
    containment.enter()
    place_sandbox(turns)
    _die_with_parent()
    # A reward's processes (a busy loop, a fork bomb and its 64 children) run below the parent, so
    # the watchdog that enforces their deadlines and kills them gets the CPU first: at the same
    # priority a fork bomb starved it and hangs settled a second or more past their deadline.
    # Children inherit the niceness; the parent's own priority is untouched.
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    # A reward that segfaults is settled by the parent; the worker must not print a traceback
    # to the user's terminal (pytest and others enable faulthandler on a saved copy of stderr).
    faulthandler.disable()
    if memory_mb:
        _limit_address_space(memory_mb)
    if "torch" in sys.modules:
        # A worker forked from a process whose torch thread pools are running hangs on its first
        # parallel op in this thread (OpenMP's pool is the parent's, its threads gone): one thread
        # here. A model runs on a thread of its own instead (`model_thread`).
        sys.modules["torch"].set_num_threads(1)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(_cores))  # read when torch loads here
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def place_sandbox(turns: Any) -> None:
    """Give this worker's sandbox (its fork server, the resident judge and every run they make) a
    core of its own: the workers take the cores this process may use in turn (`turns`, a shared
    counter). A test run is four processes waking each other (worker, server, judge, program);
    where they share one core each wake-up is local, while across cores every wake-up is an
    inter-processor interrupt, which costs a virtual machine an exit. The worker itself stays
    free to run anywhere. ``PAYOFF_SANDBOX_CPU`` set in the environment (a core number, or
    ``any`` for no placement) is left as it is."""
    if turns is None or SANDBOX_CPU in os.environ:
        return
    with turns.get_lock():
        turn = turns.value
        turns.value = turn + 1
    cpus = sorted(os.sched_getaffinity(0))
    os.environ[SANDBOX_CPU] = str(cpus[turn % len(cpus)])


def _die_with_parent() -> None:
    # A caller killed outright (SIGKILL, or SIGTERM with no handler) closes nothing. With cgroups
    # the janitor empties the boxes; in process-group mode a stuck worker would run on for good.
    # A thread, not prctl(PR_SET_PDEATHSIG): that fires when the *thread* that forked the worker
    # ends (pebble forks from the caller's thread, which may end while the pool lives on).
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        if os.getpgrp() == os.getpid():  # it leads its group: its children go with it
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="payoff-parent-watch", daemon=True).start()


def _limit_address_space(extra_mb: int) -> None:
    # The cap is relative to what the worker already maps: a parent that imported torch forks
    # workers with gigabytes of reserved address space they never touch.
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    limit = current + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_chunk(slot: int, units: Sequence[list[Sample]]) -> list[tuple[list[Outcome], float]]:
    """Run each unit (one sample, or one group) in turn, reporting progress through the slot."""
    base = slot * SLOT_WIDTH
    _slots[base] = os.getpid()
    results = []
    for index, samples in enumerate(units):
        _slots[base + 1] = index
        _slots[base + 2] = time.monotonic()
        _slots[base + 3] = RUNNING
        if _reward.batch_size is not None and not _reward.is_group:  # type: ignore[union-attr]
            results.append(_on_model_thread(samples))
        else:
            results.append(run_unit(_reward, samples, _output_chars))  # type: ignore[arg-type]
        _slots[base + 3] = FINISHED
    return results


def model_thread() -> ThreadPoolExecutor:
    """The thread a batched reward (a reward model, a PRM, a local judge) runs on in a worker,
    with the worker's share of the cores: a fresh thread starts a fresh OpenMP pool, where the
    worker's main thread holds its parent's dead one. At one thread a model scored 1.7x slower
    than one sample per forward on two (`benchmarks/rm_scoring.py`). One thread, made once: a
    model's pools and caches stay warm between batches."""
    global _model_executor
    if _model_executor is None:
        _model_executor = ThreadPoolExecutor(1, thread_name_prefix="payoff-model", initializer=_take_share)
    return _model_executor


def _on_model_thread(samples: list[Sample]) -> tuple[list[Outcome], float]:
    try:
        future = model_thread().submit(run_unit, _reward, samples, _output_chars)
    except RuntimeError:  # no thread to be had (a tight address-space cap): the main thread, one core
        return run_unit(_reward, samples, _output_chars)  # type: ignore[arg-type]
    return future.result()


def _take_share() -> None:
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(_cores)


def run_unit(reward: Reward, samples: list[Sample], output_chars: int = 2000) -> tuple[list[Outcome], float]:
    """Score one unit, turning any exception (SystemExit and MemoryError included) into error
    Outcomes that name it. Returns the outcomes and the seconds it took."""
    captured = CappedText(output_chars)
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = captured
    start = time.perf_counter()
    try:
        # A group reward's unit is one group, a batched reward's one batch, any other's one sample.
        outcomes = reward.score_group(samples) if reward.is_group else reward.score_batch(samples)
    except KeyboardInterrupt:
        raise  # Ctrl-C in in-process mode; workers lead their own process group and never see it
    except BaseException as error:  # noqa: BLE001 - every failure becomes a typed Outcome
        outcomes = [_error_outcome(reward, error) for _ in samples]
    finally:
        sys.stdout, sys.stderr = saved
    elapsed = time.perf_counter() - start
    if captured.size:
        text = captured.value() + (f"\n[... {captured.dropped} more characters dropped]" if captured.dropped else "")
        for outcome in outcomes:
            outcome.info.setdefault("output", text)
    return outcomes, elapsed


def _error_outcome(reward: Reward, error: BaseException) -> Outcome:
    kind = type(error).__name__
    if isinstance(error, SystemExit):
        message = f"reward {reward.name} called exit({error.code!r})"
    elif isinstance(error, MemoryError):
        message = f"reward {reward.name} ran out of memory (MemoryError)"
    else:
        message = f"reward {reward.name} raised {kind}: {error}"
    frames = traceback.format_exception(type(error), error, error.__traceback__)
    return Outcome.error(message, exception=kind, traceback="".join(frames[-3:])[-2000:])
