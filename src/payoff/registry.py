"""Find a reward by name: the built-in library (`payoff.rewards`), entry points of the group
``payoff.rewards`` (plugins, and payoff's own rewards that need a model, a task library or a judge)
and user code (``package.module:function`` or ``path/to/file.py:function``)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from payoff.core import REGISTRY, Reward

ENTRY_POINT_GROUP = "payoff.rewards"
# The package whose import registers the built-in library. The one import of the registry that
# points up (one layer, by name, lazily): the library's own `correctness` looks its verifier up here,
# and its names must resolve from a source checkout, without installed metadata. Rewards of the
# layers above (rl, rm, dpo, prm, judges, tasks) come through the entry point group instead
# (pyproject.toml); tests/test_layering.py checks both.
BUILTIN_LIBRARY = "payoff.rewards"

_plugins_loaded = False


class RewardNotFound(LookupError):
    """No reward answers to the given name or reference."""


# Rewards whose entry point needs an optional dependency that is not installed (name -> the
# missing package): a base install (no torch) still finds `math`, and a model-backed name that is
# absent says why instead of printing a traceback per plugin.
UNAVAILABLE: dict[str, str] = {}


def load_builtins() -> None:
    importlib.import_module(BUILTIN_LIBRARY)


def load_plugins() -> None:
    """Import every reward advertised under the ``payoff.rewards`` entry point group once.

    A plugin that fails to import is reported by name instead of breaking every other reward.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        _load_point(point)


def _load_point(point: Any) -> None:
    if point.name in REGISTRY or point.name in UNAVAILABLE:
        return
    try:
        loaded = point.load()
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] == "payoff":
            raise  # a bug in payoff, never hidden
        UNAVAILABLE[point.name] = error.name.split(".")[0]
        return
    except Exception as error:  # a broken plugin must not hide the others
        print(f"payoff: plugin reward {point.name!r} failed to load: {error!r}", file=sys.stderr)
        return
    REGISTRY.setdefault(point.name, as_reward(loaded, name=point.name))


def as_reward(obj: Any, name: str | None = None) -> Reward:
    """Wrap a plain callable as an (unregistered) Reward; a Reward passes through."""
    if isinstance(obj, Reward):
        return obj
    if callable(obj):
        return Reward(obj, name=name or getattr(obj, "__name__", None))
    raise TypeError(f"{obj!r} is not a reward: expected a Reward or a callable")


def get_reward(spec: str | Reward | Callable[..., Any]) -> Reward:
    """Return the Reward named by `spec`, callable in-process on one Sample.

    `spec` is a registered name, ``module:function``, ``path/to/file.py:function``, a Reward or a
    plain function.
    """
    if not isinstance(spec, str):
        return as_reward(spec)
    if spec in REGISTRY:
        return REGISTRY[spec]
    if ":" in spec:
        return _load_reference(spec)
    load_builtins()
    if spec not in REGISTRY:  # the entry point of that name first: loading every plugin imports torch
        for point in entry_points(group=ENTRY_POINT_GROUP, name=spec):
            _load_point(point)
    if spec not in REGISTRY:
        load_plugins()
    if spec in REGISTRY:
        return REGISTRY[spec]
    known = ", ".join(sorted(REGISTRY)) or "none"
    if spec in UNAVAILABLE:
        raise RewardNotFound(f"reward {spec!r} needs {UNAVAILABLE[spec]!r}, which is not installed")
    missing = "".join(f"; {name} needs {package!r} (not installed)" for name, package in sorted(UNAVAILABLE.items()))
    raise RewardNotFound(f"no reward named {spec!r}; registered: {known}{missing}")


def list_rewards() -> dict[str, Reward]:
    """Every reward known by name: built-ins and plugins."""
    load_builtins()
    load_plugins()
    return dict(sorted(REGISTRY.items()))


def _load_reference(spec: str) -> Reward:
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise RewardNotFound(f"{spec!r} is not of the form module:function or file.py:function")
    if target.endswith(".py") or "/" in target:
        module = _import_file(Path(target))
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise RewardNotFound(f"cannot import module {target!r}: {error}") from error
    try:
        obj = getattr(module, attr)
    except AttributeError as error:
        raise RewardNotFound(f"{target!r} has no attribute {attr!r}") from error
    return as_reward(obj, name=getattr(obj, "name", None) or attr)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise RewardNotFound(f"no such file: {path}")
    resolved = path.resolve()
    # A stable module name per file, registered in sys.modules, so worker processes and pickle
    # find the same module again.
    module_name = "payoff_user_" + "_".join(resolved.with_suffix("").parts[1:]).replace("-", "_").replace(".", "_")
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise RewardNotFound(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise RewardNotFound(f"importing {path} failed: {error!r}") from error
    return module
