"""The one AdamW every payoff trainer builds, its learning-rate schedule, and dropout off.

PyTorch's fused AdamW updates all parameters in one kernel; on this CPU it is ~4x faster per step
than the default per-parameter loop (measured on 135M parameters: 0.06 s against 0.25 s), and it
is what Hugging Face's Trainer picks by default on torch >= 2.8. It needs floating-point
parameters on a device with the kernel; anything else gets the default implementation.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")


def adamw(parameters: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
          weight_decay: float = 0.0) -> torch.optim.AdamW:
    params = list(parameters)
    fused = bool(params) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params) \
        and len({p.device for p in params}) == 1
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)


def clipped_step(optimizer: torch.optim.Optimizer, parameters: Iterable[torch.nn.Parameter], max_norm: float) -> float:
    """Clip the gradients' total norm to ``max_norm`` and step; returns the norm before clipping.
    A fused AdamW takes the clip as its ``grad_scale`` (the factor AMP's GradScaler hands it: the
    kernel divides each gradient as it reads it) instead of a pass that rescales every gradient
    first: the same update, one read and write of every gradient fewer (docs/rm.md, "The clip
    folded into AdamW")."""
    params = [p for p in parameters if p.grad is not None]
    grads = [p.grad for p in params]
    norm = torch.nn.utils.get_total_norm(grads)
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
    if grads and inner.defaults.get("fused"):
        inner.grad_scale = torch.clamp((norm.float() + 1e-6) / max_norm, min=1.0)  # torch's clip: max_norm / (norm + 1e-6)
        try:
            optimizer.step()
        finally:
            del inner.grad_scale
    else:
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
        optimizer.step()
    return float(norm)


def learning_rate(step: int, lr: float, steps: int, warmup_steps: int = 0, schedule: str = "linear") -> float:
    """The learning rate of optimiser step ``step`` (0-based): a linear warm-up over
    ``warmup_steps``, then constant or a linear decay to 0 at step ``steps``."""
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    remaining = max(1, steps - warmup_steps)
    return lr * max(0.0, 1 - (step - warmup_steps) / remaining)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def dropout_off(model: torch.nn.Module) -> None:
    """Every dropout layer set to p = 0, as TRL does for preference training: the two answers of a
    pair (or a reference and its policy) must go through the same network."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
