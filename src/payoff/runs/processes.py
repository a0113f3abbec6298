"""One process, or several under ``accelerate launch`` (DDP), behind one small interface.

A trainer written against `Processes` runs unchanged on one process or on several: each optimiser
step's examples are shared out (``share``: rank::world), every process accumulates gradients over
its share in micro-batches (``accumulate`` skips the all-reduce until the last one), DDP averages
the gradients across processes once per step, and ``sum`` adds up the step's metric totals. With
equal shares this is the same optimisation as one process over the whole batch, up to float
summation order (tests/rm/test_train.py runs 2 CPU processes against 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from payoff.runs.optim import clipped_step


class Processes:
    def __init__(self) -> None:
        from accelerate import Accelerator

        # Accelerator(cpu=True) on a machine without CUDA: gloo DDP across CPU processes.
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.main = self.accelerator.is_main_process
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        self.device = self.accelerator.device

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        """(the model to train through, its optimiser): DDP-wrapped on several processes, moved
        to this process's device. Checkpoints and evaluation use the unwrapped model."""
        return self.accelerator.prepare(model, optimizer)

    def share(self, indices: list[int]) -> list[int]:
        """This process's part of a step's examples."""
        return indices[self.rank::self.world]

    @contextlib.contextmanager
    def accumulate(self, model: Any, last: bool) -> Iterator[None]:
        """Gradients of a micro-batch: the cross-process all-reduce runs only on the ``last``."""
        with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def step(self, model: Any, optimizer: Any, max_norm: float) -> float:
        """Clip the (averaged) gradients to ``max_norm``, step, clear them; returns the norm before
        clipping."""
        norm = clipped_step(optimizer, model.parameters(), max_norm)
        optimizer.zero_grad(set_to_none=True)
        return norm

    def sum(self, totals: torch.Tensor) -> torch.Tensor:
        """``totals`` added up over every process (on the CPU)."""
        return self.accelerator.reduce(totals.to(self.device), reduction="sum").cpu()

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()
