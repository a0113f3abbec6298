"""Offline preference optimisation (`payoff dpo train`): the DPO family's losses (`losses`), the
training loop (`train`), and the policy's implicit rewards as payoff rewards (`reward`)."""
