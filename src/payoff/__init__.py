"""payoff: define, compose, verify, audit, serve and use rewards for RL post-training of LLMs."""

from payoff.core import Outcome, Reward, Sample, group_reward, reward
from payoff.engine import Engine, Summary, score, summarize
from payoff.registry import get_reward, list_rewards

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "Outcome",
    "Reward",
    "Sample",
    "Summary",
    "get_reward",
    "group_reward",
    "list_rewards",
    "reward",
    "score",
    "summarize",
]
