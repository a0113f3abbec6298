"""Run rewards over many samples: worker processes, hard per-sample timeouts, memory and process
limits, an on-disk cache and statistics. Never raises because one sample failed."""

from __future__ import annotations

from payoff._lazy import lazy_getattr

_LAZY = {
    "Engine": "payoff.engine.pool", "score": "payoff.engine.api", "run_batch_step": "payoff.engine.batch_step",
    "ascore": "payoff.engine.shared", "shared_engine": "payoff.engine.shared",
    "Summary": "payoff.engine.stats", "summarize": "payoff.engine.stats",
}
__all__ = list(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
