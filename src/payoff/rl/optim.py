"""The one AdamW every payoff trainer builds.

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
