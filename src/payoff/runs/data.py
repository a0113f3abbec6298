"""A run's data: the training and held-out examples, and the seeded order they are trained in.

The order is a pure function of (seed, step): resuming from a checkpoint at step s replays exactly
the examples an uninterrupted run would have seen from step s, and a trainer can tell before the
first step which examples a run of n steps will touch (DPO computes their reference log-probs).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from payoff.runs.config import DataConfig


def step_indices(step: int, batch_size: int, size: int, seed: int) -> list[int]:
    """The examples of optimiser step ``step``: positions step*batch .. +batch of an endless stream
    of seeded permutations of range(size) (one per epoch)."""
    out, cache = [], {}
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch = position // size
        if epoch not in cache:
            cache[epoch] = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
        out.append(cache[epoch][position % size])
    return out


def touched(steps: int, batch_size: int, size: int, seed: int) -> list[int]:
    """Every example a run of ``steps`` steps trains on (all of them once it reaches a second epoch)."""
    if steps * batch_size >= size:
        return list(range(size))
    return step_indices(0, steps * batch_size, size, seed)


def held_out_split(items: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held out): a seeded share ``fraction`` (at least one item) held out, both kept in
    file order."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    cut = max(1, int(len(order) * fraction))
    return [items[i] for i in sorted(order[cut:])], [items[i] for i in sorted(order[:cut])]


def load_split(data: DataConfig, read: Callable[[str], tuple[list[Any], Any]], seed: int,
               console: Any) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """(train, held out, reports): ``read(path)`` gives (examples, report); the held-out examples
    come from ``data.eval`` or, without one, a seeded share of the training file. Each report
    (``describe()``, ``to_dict()``) is printed and returned by split."""
    train, report = read(data.train)
    console.print(report.describe())
    reports = {"train": report.to_dict()}
    if data.eval:
        held, eval_report = read(data.eval)
        console.print(eval_report.describe())
        reports["eval"] = eval_report.to_dict()
    else:
        train, held = held_out_split(train, data.eval_fraction, seed)
    return train[: data.train_size], held[: data.eval_size], reports
