"""The built-in reward library. Importing this package registers every built-in reward by name."""

from payoff.rewards.math import math_reward
from payoff.rewards.text import exact_match, think_format

__all__ = ["exact_match", "math_reward", "think_format"]
