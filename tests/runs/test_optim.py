"""`clipped_step`: the clip folded into a fused AdamW's step is the clip torch does before it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.runs.optim import adamw, clipped_step


def _params(seed: int, scale: float) -> tuple[list[torch.nn.Parameter], list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in ((7, 5), (5,), (3, 2, 4))]
    grads = [torch.randn(p.shape, generator=generator) * scale for p in params]
    return params, grads


def _reference(params: list[torch.nn.Parameter], grads: list[torch.Tensor], max_norm: float, steps: int) -> tuple[list[torch.Tensor], float]:
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    optimizer = torch.optim.AdamW(copies, lr=0.1, weight_decay=0.01, fused=False)
    for _ in range(steps):
        for p, g in zip(copies, grads):
            p.grad = g.clone()
        norm = float(torch.nn.utils.clip_grad_norm_(copies, max_norm))
        optimizer.step()
    return [p.detach() for p in copies], norm


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.sampled_from([1e-3, 0.3, 1.0, 40.0]), max_norm=st.sampled_from([0.5, 1.0, 5.0]),
       steps=st.integers(1, 3))
def test_the_fused_step_clips_as_torch_does_before_the_step(seed: int, scale: float, max_norm: float, steps: int) -> None:
    params, grads = _params(seed, scale)
    want, want_norm = _reference(params, grads, max_norm, steps)
    optimizer = adamw(params, lr=0.1, weight_decay=0.01)
    assert optimizer.defaults["fused"]  # the path under test
    for _ in range(steps):
        for p, g in zip(params, grads):
            p.grad = g.clone()
        norm = clipped_step(optimizer, params, max_norm)
        assert not hasattr(optimizer, "grad_scale")  # taken off again: a later plain step is not scaled
    assert norm == pytest.approx(want_norm, rel=1e-6)
    for got, wanted in zip(params, want):
        torch.testing.assert_close(got.detach(), wanted, rtol=1e-5, atol=1e-6)


def test_an_unfused_optimizer_is_clipped_before_its_step() -> None:
    params, grads = _params(0, 40.0)
    want, _ = _reference(params, grads, 1.0, 1)
    optimizer = torch.optim.AdamW(params, lr=0.1, weight_decay=0.01, fused=False)
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = clipped_step(optimizer, params, 1.0)
    assert norm > 1.0 and torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params])) == pytest.approx(1.0, rel=1e-4)
    for got, wanted in zip(params, want):
        torch.testing.assert_close(got.detach(), wanted)
