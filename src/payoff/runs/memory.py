"""A training run's memory: micro-batches cut by a token budget, and freed memory handed back.

What a forward pass keeps for its backward grows with the tokens of its micro-batch (rows times
the padded width): on SmolLM2-135M under LoRA about 2.7 MB per token in float32 (measured: 16 rows
of 256 tokens peaked at 11.2 GB after the forward, 16 of 64 at 2.5 GB), most of it the layers'
activations and the float32 logits over the 49k-token vocabulary. A fixed number of rows per
micro-batch therefore makes the peak a matter of which pairs a step happens to draw: the longest
micro-batch of a long run sets it, and runs with more steps draw longer ones. `token_chunks` cuts
a step's examples, longest first, into micro-batches of at most ``max_tokens`` padded tokens, so
the peak has a bound that does not depend on the draw (and sorted rows pad little).

glibc keeps what a large step freed in its heaps (the process's RSS stayed at 10 GB after the
backward above freed it); `release` asks it to hand that back, so the RSS a run shows after a long
step is what it uses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable, Sequence

_libc: object | None = None


def token_chunks(indices: Sequence[int], width: Callable[[int], int], max_rows: int, max_tokens: int,
                 rows_per_example: int = 1, padded: Callable[[list[int]], int] | None = None) -> list[list[int]]:
    """``indices`` longest first (by ``width``, ties in their given order), in micro-batches of at
    most ``max_rows`` examples and, when ``max_tokens`` > 0, at most ``max_tokens`` padded tokens.
    ``padded(chunk)`` counts a candidate micro-batch's padded tokens as its forward lays them out
    (the tokens of every tensor it pads, e.g. a prompt padded to the longest prompt and an answer
    to the longest answer); without it: examples x ``rows_per_example`` x the widest example's
    ``width``. An example over the budget goes alone. The same arguments give the same
    micro-batches."""
    if padded is None:
        padded = lambda chunk: len(chunk) * rows_per_example * max(width(i) for i in chunk)  # noqa: E731
    chunks: list[list[int]] = []
    for index in sorted(indices, key=lambda i: -width(i)):
        fits = bool(chunks) and len(chunks[-1]) < max_rows and (max_tokens <= 0 or padded([*chunks[-1], index]) <= max_tokens)
        if fits:
            chunks[-1].append(index)
        else:
            chunks.append([index])
    return chunks


# A trim walks glibc's heap and hands pages back that the next step then faults in again: on a
# step of a few seconds (a reward model, a PRM) that cost a tenth to a fifth of the step in an A/B run
# (docs/prm.md). Between steps, at most one trim this often; a run's phases (after the
# reference precompute, after an evaluation) always trim.
STEP_TRIM_INTERVAL_S = 30.0
_last_trim = float("-inf")


def release(between_steps: bool = False) -> None:
    """Hand the memory glibc holds free back to the operating system (``malloc_trim(0)``); a
    no-op where the C library is not glibc. `between_steps`: skipped when the last trim was
    under `STEP_TRIM_INTERVAL_S` ago (what glibc keeps meanwhile is reused by the next step)."""
    global _libc, _last_trim
    if between_steps and time.monotonic() - _last_trim < STEP_TRIM_INTERVAL_S:
        return
    _last_trim = time.monotonic()
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            _libc = libc if libc is not None and hasattr(libc, "malloc_trim") else False
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)  # type: ignore[attr-defined]
