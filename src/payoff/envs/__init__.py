"""Environments: a task row becomes a multi-turn, tool-using episode (see docs/environments.md).

``get_env(name, reward=..., **params)`` builds a built-in by name; ``run_episode(env, policy,
row, limits)`` plays one episode and scores it with the environment's reward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from payoff.core import Reward
from payoff.envs.base import Environment, Tool, ToolEnv
from payoff.envs.calculator import CalculatorEnv
from payoff.envs.feedback import FeedbackEnv
from payoff.envs.python import PythonEnv, PythonSession
from payoff.envs.runner import EpisodeLimits, Policy, run_episode
from payoff.envs.search import SearchEnv, SearchIndex, multi_hop_corpus
from payoff.envs.sql import SqlEnv
from payoff.registry import get_reward

# name -> (class, the reward it scores episodes with unless told otherwise)
ENVS: dict[str, tuple[Callable[..., Environment], str | None]] = {
    "calculator": (CalculatorEnv, "math"),
    "python": (PythonEnv, "math"),
    "sql": (SqlEnv, "sql"),
    "search": (SearchEnv, "exact_match"),
    "feedback": (FeedbackEnv, "math"),
}


def register_env(name: str, factory: Callable[..., Environment], reward: str | None = None) -> None:
    ENVS[name] = (factory, reward)


def get_env(name: str, reward: str | Reward | Callable[..., Any] | None = None, **params: Any) -> Environment:
    """A fresh environment `name` with `params`; `reward` is a reward name, a Reward or a
    function (default: the environment's own)."""
    if name not in ENVS:
        raise KeyError(f"no environment named {name!r}; registered: {', '.join(sorted(ENVS))}")
    factory, default = ENVS[name]
    spec = reward if reward is not None else default
    return factory(reward=get_reward(spec) if spec is not None else None, **params)


__all__ = ["ENVS", "CalculatorEnv", "Environment", "EpisodeLimits", "FeedbackEnv", "Policy", "PythonEnv", "PythonSession",
           "SearchEnv", "SearchIndex", "SqlEnv", "Tool", "ToolEnv", "get_env", "multi_hop_corpus", "register_env", "run_episode"]
