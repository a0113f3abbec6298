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

`held_heap` tells glibc never to cut its heap back on its own for as long as it is entered, and
fixes the mmap threshold at its 32 MB ceiling, so each step reuses the heap pages the one before
faulted in. Blocks over 32 MB keep mappings of their own unless the loop asks to hold them too
(``large_blocks``: the reward-model and PRM trainers, whose large blocks are their gradients, the same
every step); held in the heap, large blocks of varying sizes (a DPO step's logits over the
vocabulary) fragmented it, and a DPO run's peak went from 7.4 to 10.9 GB in 8 steps
(docs/dpo.md). Every training loop runs inside it (`payoff.runs.run.Run.progress`), as do a local
judge's and a reward model's batched scoring. On leaving, the trim threshold goes to where glibc's
own settles and what glibc holds free is handed back. `release` hands that back at any time (the
DPO trainer, between its phases).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator

_libc: object | None = None
# mallopt's parameters (malloc.h). 32 MB is the highest mmap threshold glibc takes on 64-bit,
# where its default threshold settles once it has seen large blocks freed; the trim threshold
# then settles at twice that.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_MMAP_CEILING = 32 * 2**20
_SETTLED_TRIM_THRESHOLD = 2 * _MMAP_CEILING
_DEFAULT_MMAP_MAX = 65536
_held = 0  # held_heap()s entered, and of them with large_blocks
_held_large = 0
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
def held_heap(large_blocks: bool = False) -> Iterator[None]:
    """Within: glibc never cuts its heap back on its own, so the memory a step freed serves the
    next step without page faults. Blocks over 32 MB keep mappings of their own (returned on free,
    faulted in anew) unless ``large_blocks``: then they too come from the heap and stay. That suits
    a loop whose large blocks are the same every step (a reward model's gradients: the embedding's
    is 113 MB); where their sizes vary with the data (a DPO step's logits over the vocabulary),
    they fragment the heap (a DPO run's peak went from 7.4 to 10.9 GB in 8 steps, docs/dpo.md). On
    leaving the outermost one: the thresholds left where glibc's own settle (mmap 32 MB, trim
    64 MB), large blocks mapped again, and what glibc holds free handed back (`release`). The
    setting is the process's: nested and concurrent uses count (large blocks are held while any
    use with ``large_blocks`` is entered), the last to leave restores. A no-op where the C library
    is not glibc."""
    global _held, _held_large
    libc = _glibc()
    if libc is None:
        yield
        return

    def mallopt(param: int, value: int) -> None:
        libc.mallopt(ctypes.c_int(param), ctypes.c_int(value))  # type: ignore[attr-defined]  # C ints: a wider value is cut silently

    with _held_lock:
        _held, _held_large = _held + 1, _held_large + large_blocks
        if _held == 1:
            mallopt(_M_MMAP_THRESHOLD, _MMAP_CEILING)
            mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        if large_blocks and _held_large == 1:
            mallopt(_M_MMAP_MAX, 0)
    try:
        yield
    finally:
        with _held_lock:
            _held, _held_large = _held - 1, _held_large - large_blocks
            if large_blocks and _held_large == 0:
                mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            if _held == 0:
                mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM_THRESHOLD)
                libc.malloc_trim(0)  # type: ignore[attr-defined]


def release() -> None:
    """Hand the memory glibc holds free back to the operating system (``malloc_trim(0)``); a
    no-op where the C library is not glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)  # type: ignore[attr-defined]


KERNEL_CACHE_CAPACITY = 128  # oneDNN's own default: 1024 kernels
_KERNEL_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


def bounded_kernel_cache(capacity: int = KERNEL_CACHE_CAPACITY) -> None:
    """Bound oneDNN's cache of built kernels to ``capacity`` unless the user set its size
    (``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` or ``DNNL_PRIMITIVE_CACHE_CAPACITY``). Each new shape of a
    bf16 product on a CPU builds kernels that oneDNN keeps, and their allocations land between a
    step's freed activations, pinning holes glibc cannot give back or reuse for larger blocks: a
    reward-model epoch peaked 120-210 MB lower with 128 (docs/rm.md), no slower. oneDNN reads the
    size once, when it first builds a kernel, so in a process that already ran one this changes
    nothing."""
    if not any(name in os.environ for name in _KERNEL_CACHE_VARIABLES):
        os.environ[_KERNEL_CACHE_VARIABLES[0]] = str(capacity)
