"""Module-level rewards that use torch inside the worker (see test_engine)."""

import threading

import torch

from payoff.core import Outcome, Sample, batched_reward, reward


@reward(name="torch_norm", register=False)
def torch_norm(sample: Sample) -> float:
    values = torch.ones(len(sample.completion)) @ torch.ones(len(sample.completion))
    return float(values)


@batched_reward(name="torch_threads", batch_size=4, register=False)
def torch_threads(samples: list[Sample]) -> list[Outcome]:
    """The torch threads and the thread a batched reward ran with, after parallel ops that hang
    on a forked worker's inherited OpenMP pool."""
    product = torch.ones(512, 512) @ torch.ones(512, 512)
    total = torch.ones(4_000_000).exp().sum() + product[0, 0]
    threads, thread = torch.get_num_threads(), threading.current_thread().name
    return [Outcome.ok(float(total > 0), threads=threads, thread=thread) for _ in samples]
