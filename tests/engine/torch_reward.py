"""A module-level reward that uses torch inside the worker (see test_engine)."""

import torch

from payoff.core import Sample, reward


@reward(name="torch_norm", register=False)
def torch_norm(sample: Sample) -> float:
    values = torch.ones(len(sample.completion)) @ torch.ones(len(sample.completion))
    return float(values)
