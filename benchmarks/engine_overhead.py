"""Engine overhead: samples/s for a trivial reward in-process vs through payoff's pool, side by
side with what a user would write instead (a ProcessPoolExecutor, or pebble with per-sample
timeouts). Prints medians over repeats and the amortised pool overhead per sample.

    .venv/bin/python benchmarks/engine_overhead.py [--n 20000] [--repeats 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from pebble import ProcessPool
from rich.console import Console
from rich.table import Table

from payoff import Engine, Sample, reward


@reward(register=False)
def trivial(sample: Sample) -> float:
    return float(len(sample.completion) % 7)


def _plain(sample: Sample) -> float:
    return trivial.fn(sample)


def in_process(samples: list[Sample]) -> None:
    for sample in samples:
        trivial.score_one(sample)


def payoff_pool(engine: Engine, samples: list[Sample]) -> None:
    outcomes = engine.score(samples)
    assert len(outcomes) == len(samples) and all(o.status == "ok" for o in outcomes)


def executor_per_sample(pool: ProcessPoolExecutor, samples: list[Sample]) -> None:
    futures = [pool.submit(_plain, s) for s in samples]
    for future in futures:
        future.result()


def executor_map_chunked(pool: ProcessPoolExecutor, samples: list[Sample]) -> None:
    list(pool.map(_plain, samples, chunksize=256))


def pebble_per_sample(pool: ProcessPool, samples: list[Sample]) -> None:
    futures = [pool.schedule(_plain, args=(s,), timeout=10) for s in samples]
    for future in futures:
        future.result()


def timed(fn, *args, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    samples = [Sample(completion="x" * (i % 50), prompt="p", reference="r") for i in range(args.n)]
    small = samples[: max(1, args.n // 10)]  # per-sample peers are slow; time them on a tenth

    rows: list[tuple[str, float, int, str]] = []
    rows.append(("in-process loop (no isolation, no timeouts)", timed(in_process, samples, repeats=args.repeats), args.n, "none"))
    start = time.perf_counter()
    with Engine(trivial, workers=args.workers, timeout_s=10) as engine:
        engine.score(samples[:10])
        cold = time.perf_counter() - start
        rows.append((f"payoff Engine, {args.workers} workers, warm", timed(payoff_pool, engine, samples, repeats=args.repeats), args.n,
            "per sample, hard"))
    with ProcessPool(max_workers=args.workers) as pool:
        rows.append(("pebble schedule() per sample, timeout=10", timed(pebble_per_sample, pool, small, repeats=args.repeats), len(small),
            "per sample, hard"))
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows.append(("ProcessPoolExecutor.submit per sample", timed(executor_per_sample, pool, small, repeats=args.repeats), len(small), "none"))
        rows.append(("ProcessPoolExecutor.map chunksize=256", timed(executor_map_chunked, pool, samples, repeats=args.repeats), args.n, "none"))

    baseline = rows[0][1] / rows[0][2]
    payoff_rate = rows[1][2] / rows[1][1]
    table = Table(title=f"Engine overhead, trivial reward, median of {args.repeats} (payoff cold start {cold * 1000:.0f} ms)")
    for column in ("runner", "samples", "timeouts", "samples/s", "µs/sample", "overhead µs/sample", "payoff ÷ runner"):
        table.add_column(column, justify="right" if column != "runner" else "left")
    for name, seconds, n, timeouts in rows:
        per = seconds / n
        table.add_row(
            name, str(n), timeouts, f"{n / seconds:,.0f}", f"{per * 1e6:.1f}",
            f"{(per - baseline) * 1e6:.1f}", f"{payoff_rate / (n / seconds):.2f}×",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
