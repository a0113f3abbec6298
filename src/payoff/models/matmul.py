"""Which library multiplies float32 matrices on a CPU: MKL (PyTorch's default) or oneDNN.

PyTorch's CPU builds send a float32 matrix product to MKL. MKL picks its code path by CPU vendor,
and on AMD processors it takes an AVX2 path even where the core has AVX-512: on this project's
AMD EPYC (Zen 5), a [1024 x 576] x [576 x 1536] product ran at 99 GFLOP/s through MKL and 240
GFLOP/s through oneDNN, which picks its path by the instructions the CPU reports. There a
GRPO-sized forward and backward of SmolLM2 ran 1.34-1.69x faster, sampling 1.57-1.65x, and a step
of the demo 1.25-1.38x (docs/train.md, "float32 products: MKL or oneDNN").

PyTorch routes float32 products to oneDNN only when ``torch.backends.mkldnn.matmul.fp32_precision``
is ``"bf16"``: that setting *allows* oneDNN to round the inputs to bfloat16, which it may do
where the core gains from it (AMX, for one). So payoff never trusts the setting's name:
`fast_fp32_matmul` multiplies a few fixed matrices both ways and keeps oneDNN only if every
product is float32-exact (its error against float64 that of a float32 product, far below
bfloat16's rounding) and it is clearly faster. Otherwise nothing changes.
``PAYOFF_FP32_MATMUL=default`` turns the probe off.

Every payoff model loader calls it, so it applies to the process once a payoff model is loaded:
the products stay float32, only their kernel (and so their summation order) changes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

ENV = "PAYOFF_FP32_MATMUL"  # "auto" (default): probe; "default": leave PyTorch's choice alone
ROUTE = "bf16"  # the value of torch.backends.mkldnn.matmul.fp32_precision that routes to oneDNN
MIN_SPEEDUP = 1.2  # below this the two are within the machine's noise: keep PyTorch's default
# A float32 product's error against float64 here is ~1e-6 of the largest entry; inputs rounded to
# bfloat16 (8 bits of mantissa) give ~1e-3. The bound sits between the two.
MAX_RELATIVE_ERROR = 1e-5
SHAPES = ((1, 576, 1536), (64, 576, 576), (512, 576, 1536))  # decode, small and large products


@dataclass(frozen=True)
class Route:
    library: str  # "onednn" or "default"
    why: str


_lock = threading.Lock()
_route: Route | None = None  # the probe's answer, once it has run


def exact(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Whether ``product(a, b)`` (a @ b) is float32-exact on SHAPES and on a batched product."""
    generator = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(m, k, generator=generator), torch.randn(n, k, generator=generator).T) for m, k, n in SHAPES]
    pairs.append((torch.randn(4, 64, 96, generator=generator), torch.randn(4, 96, 64, generator=generator)))
    for a, b in pairs:
        reference = a.double() @ b.double()
        if float((product(a, b).double() - reference).abs().max()) > MAX_RELATIVE_ERROR * float(reference.abs().max()):
            return False
    return True


def _seconds(product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    m, k, n = SHAPES[-1]
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(m, k, generator=generator), torch.randn(n, k, generator=generator).T
    product(a, b)  # warm-up: the first call builds the kernel
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        product(a, b)
        best = min(best, time.perf_counter() - started)
    return best


def fast_fp32_matmul() -> Route:
    """Route this process's float32 matrix products to oneDNN where that is exact and faster
    (module docstring); returns the route taken and why. The probe runs once per process; threads
    that ask meanwhile wait for its answer."""
    global _route
    with _lock:
        if _route is None:
            _route = _probe()
        return _route


def _probe() -> Route:
    asked = os.environ.get(ENV, "auto")
    if asked != "auto":  # "default", or a value we do not know: leave PyTorch's choice alone
        return Route("default", f"{ENV}={asked}" + ("" if asked == "default" else " (not 'auto' or 'default')"))
    settings = getattr(torch.backends.mkldnn, "matmul", None)
    if not torch.backends.mkldnn.is_available() or not hasattr(settings, "fp32_precision"):
        return Route("default", "this PyTorch has no oneDNN float32 route")
    before = settings.fp32_precision
    if before != "none":
        return Route("default", f"torch.backends.mkldnn.matmul.fp32_precision is already {before!r}")
    default_s = _seconds(torch.matmul)
    settings.fp32_precision = ROUTE
    try:
        onednn_s = _seconds(torch.matmul)
        if not exact(torch.matmul):
            raise ValueError("oneDNN rounds float32 inputs here (bfloat16 down-conversion)")
        if default_s < MIN_SPEEDUP * onednn_s:
            raise ValueError(f"oneDNN not faster here ({default_s / onednn_s:.2f}x the default library)")
    except Exception as why:  # noqa: BLE001 - not exact, not faster, or oneDNN failed: PyTorch's default
        settings.fp32_precision = before
        return Route("default", str(why) or type(why).__name__)
    return Route("onednn", f"float32-exact, {default_s / onednn_s:.1f}x the default library's speed on a "
                           f"{SHAPES[-1][0]}x{SHAPES[-1][1]} by {SHAPES[-1][1]}x{SHAPES[-1][2]} product")
