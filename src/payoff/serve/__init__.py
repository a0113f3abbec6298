"""Rewards over HTTP: `payoff serve` (FastAPI + uvicorn), `Client` and `remote_reward`."""

from __future__ import annotations

from payoff._lazy import lazy_getattr

_LAZY = {"create_app": "payoff.serve.app", "Client": "payoff.serve.client", "remote_reward": "payoff.serve.client",
         "ServerError": "payoff.serve.client"}
__all__ = list(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
