"""A run's arithmetic precision: ``precision = "bf16"`` runs the matrix products of every forward
and backward (policy, reference, reward model, generation) in bfloat16 under autocast, while the
weights, their gradients and the optimiser's state stay float32 (the master weights).

On a CPU with AVX512-BF16 or AMX, oneDNN runs bfloat16 matrix products natively; elsewhere they
are emulated. Native is not the same as faster, and which is faster depends on the core
(docs/train.md, "Precision"; ``benchmarks/bf16_gemm.py`` measures a machine): at SmolLM2's shapes
they ran 3.7x float32's speed on an AMD EPYC (Zen 5) and 0.58x on an Intel Xeon with AVX512-BF16
but no AMX exposed. The log-probabilities and losses are computed in float32 from bfloat16 logits
(`payoff.models.logprobs` casts them), as TRL's ``bf16=True`` does.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import torch

Precision = Literal["fp32", "bf16"]


def check(precision: str) -> str:
    """``precision`` itself, or a ValueError that names the choices."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', not {precision!r}")
    return precision


def autocast(precision: str, device: Any = "cpu") -> contextlib.AbstractContextManager[Any]:
    """The context a run's forwards and backwards run in; ``fp32`` changes nothing."""
    if check(precision) == "fp32":
        return contextlib.nullcontext()
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    return torch.autocast(kind, dtype=torch.bfloat16)


def weights_changed() -> None:
    """Call after an optimiser step taken inside an autocast context. Autocast casts each trainable
    weight to bfloat16 once and keeps the copy until its outermost context exits, so without this a
    later forward in the same context (PPO's next minibatch or epoch, the critic's) would run the
    weights from before the step. Costs nothing under ``fp32``: the cache is then empty."""
    torch.clear_autocast_cache()


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX), as Linux
    reports in /proc/cpuinfo. Where it does not, ``bf16`` is slower than ``fp32``; where it does,
    it can be either (faster on AMD Zen 5, slower on a Xeon without AMX: docs/train.md), so
    ``benchmarks/bf16_gemm.py`` decides."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
