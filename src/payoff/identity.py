"""A reward's identity for caching (`Reward.fingerprint`): its code, the modules it reaches and
the values it closes over. Imports nothing of payoff."""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import sys
from typing import Any


def payoff_version() -> str:
    try:
        from importlib.metadata import version

        return "payoff " + version("payoff")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "payoff (unversioned)"


PAYOFF_VERSION = payoff_version()


def function_source(fn: Any) -> str:
    """The function's own source (two functions of one module differ), or its bytecode."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None) or getattr(type(fn).__call__, "__code__", None)
        if code is None:
            return f"{type(fn).__module__}.{type(fn).__qualname__}"
        return code.co_code.hex() + repr(code.co_consts)


def closure_identity(fn: Any) -> str:
    """What a function's behaviour depends on beyond its source: defaults and closed-over values
    (a wrapped Reward by its own fingerprint, functions by module and name)."""
    values: list[str] = []
    for value in list(getattr(fn, "__defaults__", None) or ()) + list((getattr(fn, "__kwdefaults__", None) or {}).items()):
        values.append(_identity(value))
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            values.append(_identity(cell.cell_contents))
        except ValueError:  # an empty cell
            values.append("<empty>")
    return repr(values)


def _identity(value: Any) -> str:
    if callable(getattr(value, "fingerprint", None)) and hasattr(value, "fn"):  # a Reward
        return "reward:" + value.fingerprint()
    if callable(value) and hasattr(value, "__code__"):
        return f"fn:{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}:{closure_identity(value)}"
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return f"{type(value).__qualname__}:{sorted((k, repr(v)) for k, v in vars(value).items())!r}"
    return repr(value)


def module_sources(fn: Any) -> list[str]:
    """The source of the function's module and of every module of the same top-level package it
    reaches through its globals (imported modules, and functions or classes defined elsewhere),
    each as "name:sha256". Modules outside that package are covered by their versions."""
    start = sys.modules.get(getattr(fn, "__module__", "") or "")
    if start is None:
        return []
    package = start.__name__.split(".")[0]
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        module = todo.pop()
        if module.__name__ in seen:
            continue
        seen[module.__name__] = _file_digest(module)
        for value in list(vars(module).values()):
            target = value if inspect.ismodule(value) else sys.modules.get(getattr(value, "__module__", None) or "")
            if target is None or not inspect.ismodule(target) or target.__name__ in seen:
                continue
            if target.__name__.split(".")[0] == package and getattr(target, "__file__", None):
                todo.append(target)
    return [f"{name}:{digest}" for name, digest in sorted(seen.items())]


@functools.lru_cache(maxsize=2048)
def _digest_of(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _file_digest(module: Any) -> str:
    path = getattr(module, "__file__", None)
    if not path:
        return "builtin"
    try:
        stat = os.stat(path)
        return _digest_of(path, stat.st_mtime_ns, stat.st_size)
    except OSError:
        return "unreadable"
