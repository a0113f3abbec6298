"""The built-in reward library. Importing this package registers every built-in reward by name."""

from payoff.rewards.text import exact_match, think_format

__all__ = ["exact_match", "think_format"]
