"""Loading policies and reward models; the embedded default policy lives in `default`."""

from payoff.models.default import DEFAULT_POLICY, load_policy, policy_path

__all__ = ["DEFAULT_POLICY", "load_policy", "policy_path"]
