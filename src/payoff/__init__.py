"""payoff: define, compose, verify, audit, serve and use rewards for RL post-training of LLMs.

Names are imported on first use (PEP 562), so `import payoff` stays light for the processes that
need only a corner of it (the sandbox's fork server, worker processes, the CLI's --help).
"""

from __future__ import annotations

from payoff._lazy import lazy_getattr
from payoff.core import Outcome, Reward, Sample, group_reward, reward

__version__ = "0.1.0"

_LAZY = {
    "Engine": "payoff.engine.pool",
    "score": "payoff.engine.api",
    "ascore": "payoff.engine.shared",
    "Summary": "payoff.engine.stats",
    "summarize": "payoff.engine.stats",
    "get_reward": "payoff.registry",
    "list_rewards": "payoff.registry",
    "Rubric": "payoff.compose.rubric",
    "Term": "payoff.compose.rubric",
    "Client": "payoff.serve.client",
    "remote_reward": "payoff.serve.client",
}

__all__ = ["Outcome", "Reward", "Sample", "group_reward", "reward", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
