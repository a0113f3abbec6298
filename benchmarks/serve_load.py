"""Load on `payoff serve`: the math reward behind HTTP, many concurrent clients, against the same
engine scoring in-process. Reports samples/s, p50/p99 request latency, errors, and the ratio of
served to in-process throughput; then an overload phase (5x the clients, a small queue) that must
be shed with 503s while the server stays up and serves normally afterwards.

    .venv/bin/python benchmarks/serve_load.py [--clients 200] [--seconds 60] [--batch 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serve.helpers import running_server  # noqa: E402


def math_samples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        answer = a + b if rng.random() < 0.5 else a + b + rng.randint(1, 9)
        style = rng.choice(["The answer is \\boxed{%d}.", "so %d", "#### %d", "$\\frac{%d}{1}$"])
        samples.append({"prompt": f"{a}+{b}?", "completion": style % answer, "reference": str(a + b)})
    return samples


def in_process(samples: list[dict], workers: int, repeats: int = 3) -> float:
    from payoff.engine import Engine

    with Engine("math", workers=workers) as engine:
        engine.score(samples[:200])  # warm the pool
        rates = []
        for _ in range(repeats):
            began = time.perf_counter()
            engine.score(samples)
            rates.append(len(samples) / (time.perf_counter() - began))
    return statistics.median(rates)


async def load(url: str, samples: list[dict], clients: int, seconds: float, batch: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    scored = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def one_client(number: int) -> None:
            nonlocal scored
            rng = random.Random(number)
            while time.perf_counter() < stop:
                start = rng.randrange(0, len(samples) - batch)
                began = time.perf_counter()
                try:
                    response = await client.post("/v1/score", json={"samples": samples[start:start + batch]})
                    code = response.status_code
                except httpx.HTTPError:
                    code = 0  # transport failure
                latencies.append(time.perf_counter() - began)
                statuses[code] = statuses.get(code, 0) + 1
                if code == 200:
                    scored += batch
                elif code == 503:
                    await asyncio.sleep(0.05)

        began = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {"samples_per_s": scored / elapsed, "requests": len(latencies), "statuses": statuses,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    samples = math_samples(20_000)
    local = in_process(samples, args.workers)
    print(f"in-process engine ({args.workers} workers): {local:,.0f} samples/s (median of 3 passes over 20,000)")
    with running_server("--reward", "math", "--workers", str(args.workers)) as (url, process):
        asyncio.run(load(url, samples, 10, 3, args.batch))  # warm-up
        steady = asyncio.run(load(url, samples, args.clients, args.seconds, args.batch))
        errors = sum(n for code, n in steady["statuses"].items() if code != 200)
        print(f"served, {args.clients} clients x {args.batch} samples/request for {args.seconds:.0f} s: "
              f"{steady['samples_per_s']:,.0f} samples/s, p50 {steady['p50_ms']:.0f} ms, p99 {steady['p99_ms']:.0f} ms, "
              f"{steady['requests']} requests, errors {errors}, statuses {steady['statuses']}")
        print(f"ratio served / in-process: {steady['samples_per_s'] / local:.2f}")
    # Overload: 5x the clients against a queue that holds about one engine batch.
    with running_server("--reward", "math", "--workers", str(args.workers), "--max-pending", str(args.clients * args.batch // 4)) as (url, process):
        burst = asyncio.run(load(url, samples, args.clients * 5, min(args.seconds, 20), args.batch))
        alive = process.poll() is None
        after = httpx.post(f"{url}/v1/score", json={"samples": samples[:args.batch]}, timeout=60)
        print(f"overload, {args.clients * 5} clients, max-pending {args.clients * args.batch // 4}: statuses {burst['statuses']}, "
              f"served {burst['samples_per_s']:,.0f} samples/s, server alive {alive}, next request {after.status_code}")


if __name__ == "__main__":
    main()
