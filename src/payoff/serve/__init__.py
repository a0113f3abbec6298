"""Rewards and episode sessions over HTTP: `payoff serve` (FastAPI + uvicorn), `Client`,
`remote_reward`, `play_remote`, and the sessions themselves (`Sessions`, `RaySessions`)."""

from __future__ import annotations

from payoff._lazy import lazy_getattr

_LAZY = {"create_app": "payoff.serve.app", "Client": "payoff.serve.client", "remote_reward": "payoff.serve.client",
         "ServerError": "payoff.serve.client", "play_remote": "payoff.serve.client", "play_remote_batch": "payoff.serve.client",
         "Sessions": "payoff.serve.sessions", "RaySessions": "payoff.serve.ray_sessions"}
__all__ = list(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
