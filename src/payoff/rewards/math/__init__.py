"""``math``: a math answer verifier; see `verifier` for the policy and docs/rewards/math.md."""

from payoff.core import REGISTRY
from payoff.rewards.math.verifier import MathOptions, MathVerifier, math_reward_factory

math_reward = math_reward_factory("math")
REGISTRY[math_reward.name] = math_reward

__all__ = ["MathOptions", "MathVerifier", "math_reward", "math_reward_factory"]
