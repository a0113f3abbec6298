"""Adapters that hand a payoff reward to other trainers: `trl`, `verl`, `openrlhf`."""
