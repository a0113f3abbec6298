"""Load on `payoff serve` measured with wrk (a C load generator in its own process, one thread),
the math reward behind HTTP with 16-sample requests, against the same engine scoring in-process.
Reports samples/s, p50/p99 latency, non-2xx responses and socket errors, and the served /
in-process ratio; then an overload phase (many connections, a small queue) that must be shed with
503 + Retry-After while the server stays up and answers normally afterwards.

    .venv/bin/python benchmarks/serve_load.py [--connections 64] [--seconds 20] [--batch 16] [--workers 2]

Needs `wrk` (Debian: apt-get install wrk). On a 2-core machine wrk, the server and its engine
workers share the cores: the ratio is a lower bound of what a separate client machine sees.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serve.helpers import running_server  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
local f = io.open("%(bodies)s", "r")
for line in f:lines() do bodies[#bodies + 1] = line end
f:close()
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/score", nil, bodies[(n %% #bodies) + 1])
end
statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50_ms\\": %%f, \\"p99_ms\\": %%f, " ..
    "\\"connect\\": %%d, \\"read\\": %%d, \\"write\\": %%d, \\"timeout\\": %%d, \\"status\\": %%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status))
end
"""


def math_samples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        answer = a + b if rng.random() < 0.5 else a + b + rng.randint(1, 9)
        style = rng.choice(["The answer is \\\\boxed{%d}.", "so %d", "#### %d", "$\\\\frac{%d}{1}$"])
        samples.append({"prompt": f"{a}+{b}?", "completion": style % answer, "reference": str(a + b)})
    return samples


def in_process(samples: list[dict], workers: int, batch: int, repeats: int = 3) -> float:
    """The engine scoring the samples in the caller, `batch` at a time (batch = len: one call)."""
    from payoff.engine import Engine

    requests = [samples[i:i + batch] for i in range(0, len(samples), batch)]
    with Engine("math", workers=workers) as engine:
        engine.score(samples[:200])  # warm the pool
        rates = []
        for _ in range(repeats):
            began = time.perf_counter()
            for request in requests:
                engine.score(request)
            rates.append(len(samples) / (time.perf_counter() - began))
    return statistics.median(rates)


def wrk(url: str, bodies: Path, connections: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"bodies": bodies})
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--timeout", "30s", "-s", script.name, url],
                         capture_output=True, text=True, timeout=seconds + 120)
    found = re.search(r"^JSON (.*)$", out.stdout, re.MULTILINE)
    if not found:
        raise RuntimeError(out.stdout + out.stderr)
    return json.loads(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs wrk: apt-get install wrk")
    samples = math_samples(20_000)
    local = in_process(samples, args.workers, len(samples))
    small = in_process(samples, args.workers, args.batch)
    print(f"in-process engine ({args.workers} workers): {local:,.0f} samples/s in one call of {len(samples):,}; "
          f"{small:,.0f} samples/s in {args.batch}-sample calls")
    with tempfile.TemporaryDirectory() as folder:
        bodies = Path(folder) / "bodies.jsonl"
        bodies.write_text("".join(json.dumps({"samples": samples[i:i + args.batch]}) + "\n" for i in range(0, 4000, args.batch)))
        with running_server("--reward", "math", "--workers", str(args.workers)) as (url, _):
            wrk(url, bodies, 8, 3)  # warm-up
            steady = wrk(url, bodies, args.connections, args.seconds)
        served = steady["requests"] * args.batch / steady["seconds"]
        errors = {k: steady[k] for k in ("connect", "read", "write", "timeout", "status")}
        print(f"served (wrk, {args.connections} connections, {args.seconds:.0f} s): {served:,.0f} samples/s, "
              f"p50 {steady['p50_ms']:.1f} ms, p99 {steady['p99_ms']:.1f} ms, {steady['requests']} requests, errors {errors}")
        print(f"ratio served / in-process: {served / local:.2f} (vs one big call), {served / small:.2f} (vs {args.batch}-sample calls)")
        pending = args.batch * 8
        with running_server("--reward", "math", "--workers", str(args.workers), "--max-pending", str(pending)) as (url, process):
            burst = wrk(url, bodies, args.connections * 4, min(args.seconds, 15))
            alive = process.poll() is None
            began = time.perf_counter()
            after = httpx.post(f"{url}/v1/score", json={"samples": samples[:args.batch]}, timeout=60)
            while after.status_code == 503 and time.perf_counter() - began < 10:  # the queue drains what wrk left
                time.sleep(float(after.headers.get("retry-after", "1")) / 10)
                after = httpx.post(f"{url}/v1/score", json={"samples": samples[:args.batch]}, timeout=60)
            recovered = time.perf_counter() - began
            shed = httpx.post(f"{url}/v1/score", json={"samples": samples[:pending + 1]}, timeout=60)
        print(f"overload (wrk, {args.connections * 4} connections, max-pending {pending} samples): {burst['requests']} responses, "
              f"{burst['status']} non-2xx (503s), socket errors connect {burst['connect']} read {burst['read']} "
              f"write {burst['write']} timeout {burst['timeout']}; server alive {alive}, next request {after.status_code} "
              f"(after {recovered:.2f} s of retries), "
              f"an over-limit request {shed.status_code} Retry-After {shed.headers.get('retry-after')}")


if __name__ == "__main__":
    main()
