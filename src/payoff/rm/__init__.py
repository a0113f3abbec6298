"""Reward models: Bradley-Terry training and the ``reward_model`` reward.

Preference pairs are read by `payoff.tasks.preferences`; `payoff.rm.pairs` builds them from
verifier-scored samples; `payoff.rm.train` trains (the model itself is
`payoff.models.reward_model`); `payoff.rm.reward` is the reward. Submodules import torch only when
used, so importing this package is cheap.
"""
