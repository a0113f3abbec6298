"""Run rewards over many samples: worker processes, hard per-sample timeouts, memory and process
limits, an on-disk cache and statistics. Never raises because one sample failed."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Engine": "payoff.engine.pool", "score": "payoff.engine.pool", "Summary": "payoff.engine.stats", "summarize": "payoff.engine.stats"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'payoff.engine' has no attribute {name!r}")
