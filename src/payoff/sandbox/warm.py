"""What the fork server imports and runs once, before it freezes its heap and starts forking.

A forked child copies every page it writes. CPython 3.11 writes into a function's code object the
first times the function runs (warm-up counters, specialisation), and imports write all over the
heap; done here, once, in the server, that work is shared by every child read-only. Synthetic data
only: nothing of a real run is ever in the server. Standard library only (the server runs as a
lean ``python -I -S`` and loads this file by path).
"""

from __future__ import annotations

import builtins
import json
import os
import socket
import time
from typing import Any

try:
    import payoff.sandbox.harness as harness
    from payoff.sandbox.batch import batched
    from payoff.sandbox.compiled import compile_tests, pack_tests
    from payoff.sandbox.limits import address_space
    from payoff.sandbox.program_side import answer, describe, prebuild_filter, program_builtins
    from payoff.sandbox.wire import from_wire, receive, send, to_wire
except ImportError:  # loaded by path by a lean server.py, after these siblings
    import sys

    harness = sys.modules["payoff_harness"]
    batched = sys.modules["payoff_sandbox_batch"].batched
    compile_tests, pack_tests = sys.modules["payoff_sandbox_compiled"].compile_tests, sys.modules["payoff_sandbox_compiled"].pack_tests
    address_space = sys.modules["payoff_limits"].address_space
    _program = sys.modules["payoff_sandbox_program"]
    answer, describe, prebuild_filter, program_builtins = (_program.answer, _program.describe, _program.prebuild_filter,
                                                           _program.program_builtins)
    _wire = sys.modules["payoff_sandbox_wire"]
    from_wire, receive, send, to_wire = _wire.from_wire, _wire.receive, _wire.send, _wire.to_wire

# Imported once here so every child has them: faster runs, and the unprivileged run user may not
# be able to read the interpreter's own directory (a Python under /root, for instance).
PRELOADED = (
    "abc array base64 binascii bisect calendar cmath collections collections.abc contextlib copy csv dataclasses "
    "datetime decimal encodings.idna enum fractions functools hashlib heapq io itertools json keyword math numbers "
    "operator pprint queue random re socket statistics string struct textwrap threading time typing unicodedata"
).split()


def warm() -> None:
    """Everything below, in the order the server needs it."""
    preload()
    harness_paths()
    child_paths()


def preload() -> list[str]:
    import importlib

    # threading registers an after-fork handler that rebuilds its locks and thread table for the
    # case where another thread held them at the fork. The server and its children fork from their
    # only thread, so there is nothing to rebuild, and running it costs every fork about 120 page
    # faults (0.6 ms of CPU on a 2-core VM, three forks per test run). Imported here without it.
    register = os.register_at_fork
    os.register_at_fork = lambda **_: None
    try:
        import threading  # noqa: F401
    finally:
        os.register_at_fork = register
    missing = []
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def child_paths(rounds: int = 64) -> None:
    """Run what every child runs before its program (rlimits, random's reseed) in the server
    first: see `harness_paths` (code run the first times writes into its code object, and a
    child that writes a page copies it)."""
    import random

    for _ in range(rounds):
        address_space()
        random.seed()  # what random's own after-fork handler runs in every child


def harness_paths(rounds: int = 64) -> None:
    """Run the judge's and the program's code paths in the fork server before it freezes its
    heap. CPython 3.11 writes into a function's code object the first times it runs (warm-up
    counters, specialisation); in a forked child every such write copies a page. Warmed here, the
    children share that code read-only: about half the page faults of a test run. Synthetic data
    only: nothing of a real run is in the server when it forks."""
    ours, theirs = socket.socketpair()
    objects: list[Any] = [lambda *args, **kwargs: (args, kwargs)]

    def make_handle(value: Any) -> int:
        objects.append(value)
        return len(objects) - 1

    link = harness.Link(ours, lambda: None, time.monotonic() + 3600, False)
    value = {"n": [1, 2.5, None, True, "s"], "t": (1, (2,)), "s": {1}, "f": frozenset({2}), "b": b"x", "c": 1j}
    try:
        for _ in range(rounds):
            send(theirs, answer({"op": "call", "target": 0, "args": to_wire([value], None)}, objects, make_handle))
            result = harness.Remote(link, 0, "function")(value, [3, 1], key="k")
            answer(receive(theirs), objects, make_handle)
            assert from_wire(to_wire(result, make_handle), link.handle) == result
            namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
            test = "def check(f):\n    assert f(1) == [1, 2]\n    assert abs(f(-2)[0]) == 2\n"
            exec(compile(batched(test) or test, "warm_up", "exec"), namespace)  # type: ignore[call-overload]
            exec(compile_tests([test], pack_tests([test]))[0], namespace)
            json.loads(json.dumps({"program": "x", "tests": ["assert f(1) == [1, 2]"], "budget_s": 1.0}))
            json.dumps({"test": 0, "pass": False, "why": describe(ValueError("x"))})
        prebuild_filter()  # built, never installed: the server itself stays unfiltered
        program_builtins()
    finally:
        del objects[:]
        ours.close()
        theirs.close()
