"""glibc's heap held while a process repeats the same large allocations, and handed back after.

PyTorch's CPU tensors come from glibc's malloc, which by default hands memory back to the kernel
as soon as it is freed: a block over the mmap threshold (at most 32 MB; e.g. an embedding's 113 MB
gradient, allocated in every backward and freed by ``zero_grad``) is a mapping of its own,
unmapped on free, and the top of the heap is cut back (``brk``) whenever more than the trim
threshold lies free there. Work that repeats the same allocations (training steps, batches of
forward passes) then faults the same memory in again each time: 80-110 thousand page faults a
step in the reward-model trainer (``strace``: two fresh 108 MB mappings and 105-155 MB of heap
grown and cut back in every step), 360-700 thousand in a local judge's call over 96 prompts; on
a virtual machine a page touched anew can cost tens of microseconds.

`held_heap` tells glibc to keep what it frees (no block gets a mapping of its own, no automatic
trim) for as long as it is entered, so each step reuses the pages the one before faulted in (0
faults a step once the peak is reached, at the same peak: docs/rm.md, "The heap held between
steps"). Every training loop runs inside it (`payoff.runs.run.Run.progress`), as do a local
judge's and a reward model's batched scoring. On leaving, glibc's defaults come back and what it
holds free is handed back. `release` hands that back at any time (the DPO trainer, between its
phases).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator

_libc: object | None = None
# mallopt's parameters (malloc.h) and glibc's defaults for the two this module changes
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 128 * 1024, 65536
_held = 0
_held_lock = threading.Lock()


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
