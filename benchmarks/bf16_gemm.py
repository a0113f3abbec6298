"""Can bfloat16 matrix products beat float32 on this CPU at all? torch.nn.functional.linear at
SmolLM2-135M's shapes (hidden 576, grouped key/value 192, MLP 1536, vocabulary 49152), forward
and both backward products, float32 against bfloat16 tensors (no casts) and against bf16
autocast over float32 weights (what ``precision = "bf16"`` runs), on ``--threads`` threads.

    python benchmarks/bf16_gemm.py [--rows 512,2048,4096] [--threads 2]
    ONEDNN_VERBOSE=1 python benchmarks/bf16_gemm.py --rows 512 --reps 1   # which kernel runs
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = (("q/o proj", 576, 576), ("k/v proj", 576, 192), ("gate/up", 576, 1536), ("down", 1536, 576), ("lm_head", 576, 49152))


def timed(fn, reps: int) -> float:
    fn()  # warm-up (oneDNN builds its kernel on first use)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cases(rows: int, k: int, n: int, dtype: torch.dtype, cast: bool):
    x = torch.randn(rows, k)
    w = torch.randn(n, k) / k ** 0.5
    grad = torch.randn(rows, n)
    if not cast:
        x, w, grad = x.to(dtype), w.to(dtype), grad.to(dtype)

    def forward():
        if cast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return F.linear(x, w)
        return F.linear(x, w)

    def backward():  # dX = dY W and dW = dY^T X, what autograd runs for a linear layer
        if cast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return grad @ w, grad.t() @ x
        return grad @ w, grad.t() @ x

    return forward, backward


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="512,2048,4096")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {torch.backends.mkldnn.is_available()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'shape':<10} {'rows':>5} {'pass':<8} {'fp32 ms':>8} {'bf16 ms':>8} {'autocast ms':>11} {'fp32/bf16':>9} {'fp32/autocast':>13}")
    totals = {"fp32": 0.0, "bf16": 0.0, "autocast": 0.0}
    for rows in (int(r) for r in args.rows.split(",")):
        for label, k, n in SHAPES:
            per = {}
            for kind, dtype, cast in (("fp32", torch.float32, False), ("bf16", torch.bfloat16, False), ("autocast", torch.float32, True)):
                forward, backward = cases(rows, k, n, dtype, cast)
                per[kind] = (timed(forward, args.reps), timed(backward, args.reps))
            for p, name in enumerate(("forward", "backward")):
                a, b, c = (per[kind][p] * 1e3 for kind in ("fp32", "bf16", "autocast"))
                for kind, value in zip(("fp32", "bf16", "autocast"), (a, b, c)):
                    totals[kind] += value
                print(f"{label:<10} {rows:>5} {name:<8} {a:>8.2f} {b:>8.2f} {c:>11.2f} {a / b:>9.2f} {a / c:>13.2f}", flush=True)
    print(f"sum of all: fp32 {totals['fp32']:.0f} ms, bf16 {totals['bf16']:.0f} ms ({totals['fp32'] / totals['bf16']:.2f}x), "
          f"autocast {totals['autocast']:.0f} ms ({totals['fp32'] / totals['autocast']:.2f}x)")


if __name__ == "__main__":
    main()
