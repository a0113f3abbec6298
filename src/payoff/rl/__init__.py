"""The RL trainer: GRPO-family advantage estimators, RAFT and Reinforce-Rej selection, DAPO
dynamic sampling and clipping, KL estimators, checkpoints, and ``payoff rl train``.

The algorithms live as pure functions in `payoff.rl.algorithms`; `train` runs a whole job."""

from __future__ import annotations

from payoff._lazy import lazy_getattr

_LAZY = {
    "train": "payoff.rl.loop",
    "Trainer": "payoff.rl.trainer",
    "TrainConfig": "payoff.rl.config",
    "load_config": "payoff.rl.config",
    "algorithms": "payoff.rl.algorithms",
}
__all__ = list(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
