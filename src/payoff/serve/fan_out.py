"""How a batch of session calls runs (`quick_then_fan`): in the calling thread while each call is
quick, the rest in parallel once one is slow."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

# An item slower than this sends the rest of its batch to run in parallel: above two GIL switch
# intervals (5 ms each), so a quick item that only waited for the GIL under load does not.
FAN_OUT_S = 0.01


def quick_then_fan(work: Callable[[int], Any], count: int, fan: Executor | None, fan_out_s: float = FAN_OUT_S) -> list[Any]:
    """``[work(0), ..., work(count - 1)]``: one after another in this thread while each is quick
    (handing a quick item to a thread and back costs more than the item), and the items left in
    parallel on `fan` as soon as one takes over `fan_out_s` (the items after a slow or hanging one
    wait for it once, then run side by side)."""
    results: list[Any] = [None] * count
    for index in range(count):
        began = time.perf_counter()
        results[index] = work(index)
        if fan is not None and time.perf_counter() - began > fan_out_s and index + 1 < count:
            rest = range(index + 1, count)
            for later, answer in zip(rest, fan.map(work, rest)):
                results[later] = answer
            break
    return results
