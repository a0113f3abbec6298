"""How a pickled `Reward` is rebuilt in another process (a worker under ``spawn``, a Ray actor):
by reference to the module attribute that holds it, that reference configured again, or a
recorded factory called again (`Reward.with_recipe`). Pickle stores these functions by name, so
they live in a module of their own below `core`, which never changes what they mean."""

from __future__ import annotations

import importlib
from typing import Any


def lookup(module: Any, qualname: str) -> Any:
    """``module.a.b`` for ``qualname = "a.b"``; None where a part is missing."""
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def import_attribute(module_name: str, qualname: str) -> Any:
    return lookup(importlib.import_module(module_name), qualname)


def import_configured(module_name: str, qualname: str, name: str, params: dict[str, Any]) -> Any:
    """The reward at ``module_name.qualname`` configured with ``params`` under ``name``."""
    return import_attribute(module_name, qualname).configure(name=name, **params)


def from_recipe(recipe: tuple[str, str, tuple[Any, ...], dict[str, Any]], name: str, params: dict[str, Any]) -> Any:
    """A reward whose function is a closure, rebuilt by calling its factory again."""
    module, qualname, args, kwargs = recipe
    rebuilt = import_attribute(module, qualname)(*args, **kwargs)
    rebuilt.name, rebuilt.params = name, dict(params)
    return rebuilt
