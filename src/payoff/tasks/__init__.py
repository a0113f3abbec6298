"""Tasks for training and evaluation: rows ``{"prompt", "reference", "meta"}``.

`arithmetic` is procedural (levels, seed); `reasoning_gym` adapts the reasoning-gym package
(offline); `load_rows` reads JSONL, Parquet or a `datasets` folder saved to disk with a field map.
"""

from __future__ import annotations

from payoff._lazy import lazy_getattr

# Imported at once, not lazily: the function shares its module's name, and a lazy attribute would be
# shadowed by the module object once anything imports ``payoff.tasks.arithmetic`` itself.
from payoff.tasks.arithmetic import LEVELS, arithmetic

_LAZY = {
    "reasoning_gym_rows": "payoff.tasks.reasoning_gym",
    "humaneval_rows": "payoff.tasks.humaneval",
    "load_rows": "payoff.tasks.loader",
    "task_rows": "payoff.tasks.loader",
}
__all__ = ["LEVELS", "arithmetic", *_LAZY]
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
