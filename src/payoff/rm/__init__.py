"""Reward models: preference data, Bradley-Terry training, and the ``reward_model`` reward.

`payoff.tasks.preferences` reads preference pairs; `payoff.rm.pairs` builds them from verifier-scored
samples; `payoff.rm.train` trains; `payoff.rm.reward` is the reward. Submodules import torch only
when used, so importing this package is cheap.
"""
