"""How a batch of session calls runs (`quick_then_fan`): in the calling thread while each call is
quick, the rest in parallel once one is slow."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

# An item slower than this (two GIL switch intervals of 5 ms) may send the rest of its batch to
# run in parallel...
FAN_OUT_S = 0.01
# ...at once when it took longer than this; between the two, only when the next item is slow too.
# Under load (8 clients in lockstep, docs/serve.md) a quick item can still wait tens of ms for the
# interpreter lock: one such wait fanned out 34-127 of a run's 256 batch calls (up to 26,782 of its
# 64,000 items onto the fan pool's threads, where they fight for that lock); two in a row are rare
# (3-9 calls a run).
FAN_OUT_AT_ONCE_S = 0.1


def quick_then_fan(work: Callable[[int], Any], count: int, fan: Executor | None, fan_out_s: float = FAN_OUT_S,
                   at_once_s: float = FAN_OUT_AT_ONCE_S) -> list[Any]:
    """``[work(0), ..., work(count - 1)]``: one after another in this thread while each is quick
    (handing a quick item to a thread and back costs more than the item), and the items left in
    parallel on `fan` as soon as one takes over `at_once_s`, or two in a row over `fan_out_s` (the
    items after a slow or hanging one wait for it once, then run side by side)."""
    results: list[Any] = [None] * count
    at_once = max(at_once_s, fan_out_s)
    slow_before = False
    for index in range(count):
        began = time.perf_counter()
        results[index] = work(index)
        took = time.perf_counter() - began
        slow = took > fan_out_s
        if fan is not None and slow and (slow_before or took > at_once) and index + 1 < count:
            rest = range(index + 1, count)
            for later, answer in zip(rest, fan.map(work, rest)):
                results[later] = answer
            break
        slow_before = slow
    return results
