"""A training run's memory: micro-batches cut by a token budget, the heap held between steps, and
freed memory handed back.

What a forward pass keeps for its backward grows with the tokens of its micro-batch (rows times
the padded width): on SmolLM2-135M under LoRA about 2.7 MB per token in float32 (measured: 16 rows
of 256 tokens peaked at 11.2 GB after the forward, 16 of 64 at 2.5 GB), most of it the layers'
activations and the float32 logits over the 49k-token vocabulary. A fixed number of rows per
micro-batch therefore makes the peak a matter of which pairs a step happens to draw: the longest
micro-batch of a long run sets it, and runs with more steps draw longer ones. `token_chunks` cuts
a step's examples, longest first, into micro-batches of at most ``max_tokens`` padded tokens, so
the peak has a bound that does not depend on the draw (and sorted rows pad little).

PyTorch's CPU tensors come from glibc's malloc, which by default hands memory back to the kernel
as soon as it is freed: a block over the mmap threshold (at most 32 MB; the embedding's 113 MB
gradient, allocated in every backward and freed by ``zero_grad``) is its own mapping, unmapped on
free, and the top of the heap is cut back (``brk``) whenever more than the trim threshold lies
free there. Each step then faults the same memory in again: 80-110 thousand page faults a step in
the reward-model trainer (``strace``: two 108 MB mappings and 110-150 MB of heap growth and cut
each step), and on a virtual machine a page touched anew costs up to ~30 us. `held_heap`, which
every training loop runs inside (`payoff.runs.run.Run.progress`), tells glibc to keep what it
frees (no mappings of their own, no automatic trim) for the loop's length, so a step reuses the
pages the step before faulted in: 0 faults a step once the peak is reached, at the same peak
(docs/rm.md, "The heap held between steps"). It hands the memory back when the loop ends.
`release` asks glibc to hand back what it holds free at any time; the DPO trainer calls it
between a run's phases (after its reference precompute and its evaluation before training).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator, Sequence

_libc: object | None = None
# mallopt's parameters (malloc.h) and glibc's defaults for the two this module changes
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
_held = 0
_held_lock = threading.Lock()


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


def _glibc() -> object | None:
    """glibc's ``libc``, or None where the C library is not glibc (no ``malloc_trim``/``mallopt``)."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            _libc = libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else False
        except OSError:
            _libc = False
    return _libc or None


@contextlib.contextmanager
def held_heap() -> Iterator[None]:
    """Within: glibc keeps every block it frees for reuse (no block gets a mapping of its own, the
    heap is never cut back on its own), so memory a step freed serves the next step without
    page faults. On leaving the outermost one: glibc's defaults for both (the thresholds no longer
    adapt to the block sizes seen) and what it holds free handed back (`release`). The setting is
    the process's: nested and concurrent uses count, the last to leave restores. A no-op where the
    C library is not glibc."""
    global _held
    libc = _glibc()
    if libc is None:
        yield
        return
    with _held_lock:
        _held += 1
        if _held == 1:
            libc.mallopt(ctypes.c_int(_M_MMAP_MAX), ctypes.c_int(0))  # type: ignore[attr-defined]
            libc.mallopt(ctypes.c_int(_M_TRIM_THRESHOLD), ctypes.c_int(2**31 - 1))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        with _held_lock:
            _held -= 1
            if _held == 0:
                libc.mallopt(ctypes.c_int(_M_MMAP_MAX), ctypes.c_int(_DEFAULT_MMAP_MAX))  # type: ignore[attr-defined]
                libc.mallopt(ctypes.c_int(_M_TRIM_THRESHOLD), ctypes.c_int(_DEFAULT_TRIM_THRESHOLD))  # type: ignore[attr-defined]
                libc.malloc_trim(0)  # type: ignore[attr-defined]


def release() -> None:
    """Hand the memory glibc holds free back to the operating system (``malloc_trim(0)``); a
    no-op where the C library is not glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)  # type: ignore[attr-defined]
