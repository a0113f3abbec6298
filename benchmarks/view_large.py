"""`payoff view` on a 1 GB samples.jsonl: time to first paint and the server's memory.

Writes a run-shaped samples file of about ``--gb`` GB under /tmp (rows of a trainer's samples:
step, group, status, reward, components, about one in ten a tool-using episode), serves it with
`payoff view` (a real subprocess), opens it in headless Chromium and measures:
- first paint: from navigating to the samples page to its first page of rows in the DOM (and the
  browser's own first-contentful-paint), while the server is still indexing the file;
- from launching `payoff view` to the first rows painted (Python start-up included);
- the server's resident memory (peak over the run, sampled every 0.1 s) and the time to index
  the whole file; then a filtered query over every row (status=error, a component range).
The file is deleted at the end. Targets: first paint <= 2 s, memory <= 300 MB.

    PYTHONPATH=src python benchmarks/view_large.py [--gb 1.0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.view.browser import Browser, chromium  # noqa: E402
from tests.view.fixtures import episode  # noqa: E402
from tests.view.serving import viewing  # noqa: E402

WORDS = "the of reward group policy token answer step value model tool result sample score advantage monitor length".split()


def write_samples(path: Path, gigabytes: float, seed: int = 0) -> tuple[int, float]:
    """Rows until the file reaches `gigabytes`; returns (rows, seconds)."""
    rng = random.Random(seed)
    target = int(gigabytes * 1e9)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 450))) for _ in range(64)]
    started, written, rows = time.perf_counter(), 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        buffer = []
        while written < target:
            step, member = divmod(rows, 64)
            status = "error" if rows % 37 == 0 else ("timeout" if rows % 101 == 0 else "ok")
            score = round(rng.random(), 4) if status == "ok" else None
            row = {"step": step + 1, "group": f"{step + 1}-{member // 8}", "prompt": f"Question {rows % 997}: " + texts[rows % 64][:200],
                   "reference": str(rows % 1000), "reward": score, "status": status,
                   "components": {"math": float(score is not None and score > 0.5), "format": round(rng.random(), 3)} if score is not None else {}}
            if rows % 10 == 0:
                row.update({k: v for k, v in episode("What is 17 * 23?", "17 * 23", "391", texts[(rows + 1) % 64][:400]).items() if k == "messages"})
                row["completion"] = row["messages"][-1]["content"]
            else:
                row["completion"] = texts[rows % 64]
            line = json.dumps(row) + "\n"
            buffer.append(line)
            written += len(line)
            rows += 1
            if len(buffer) >= 2000:
                handle.write("".join(buffer))
                buffer.clear()
        handle.write("".join(buffer))
    return rows, time.perf_counter() - started


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    args = parser.parse_args()
    if chromium() is None:
        sys.exit("no chromium on PATH: this benchmark measures paint in a real browser")
    path = Path("/tmp/payoff-view-bench/samples.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows, seconds = write_samples(path, args.gb)
        print(f"wrote {path}: {path.stat().st_size / 1e9:.2f} GB, {rows} rows in {seconds:.1f} s")
        with Browser() as browser:
            launched = time.perf_counter()
            with viewing(path) as url:
                server = next(p for p in psutil.Process().children(recursive=True) if p.cmdline()[1:4] == ["-m", "payoff", "view"])
                peak = [server.memory_info().rss]
                stop = threading.Event()

                def sample_memory() -> None:
                    while not stop.is_set():
                        try:
                            peak.append(server.memory_info().rss)
                        except psutil.Error:
                            return
                        time.sleep(0.1)

                threading.Thread(target=sample_memory, daemon=True).start()
                navigated = time.perf_counter()
                browser.send("Page.navigate", {"url": url + "#/samples"})
                browser.wait_for("document.querySelectorAll('#samples-table tbody tr').length > 0", timeout=60)
                painted = time.perf_counter()
                fcp = browser.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null")
                indexed_at_paint = get(url + "api/source")["index"]
                while not get(url + "api/source")["index"]["done"]:
                    time.sleep(0.2)
                indexed = time.perf_counter()
                query = time.perf_counter()
                errors = get(url + "api/samples?status=error&size=50")
                ranged = get(url + "api/samples?component=format&lo=0.2&hi=0.3&size=50")
                query = (time.perf_counter() - query) / 2
                stop.set()
                time.sleep(0.15)
        print(json.dumps({
            "file_gb": round(path.stat().st_size / 1e9, 3), "rows": rows,
            "first_paint_s": round(painted - navigated, 3), "browser_first_contentful_paint_ms": fcp,
            "launch_to_first_rows_s": round(painted - launched, 3),
            "rows_indexed_at_first_paint": indexed_at_paint["rows"],
            "index_whole_file_s": round(indexed - launched, 1),
            "filtered_query_s": round(query, 3), "errors_found": errors["total"], "format_in_0.2_0.3": ranged["total"],
            "server_peak_rss_mb": round(max(peak) / 2**20, 1), "cpus": os.cpu_count()}, indent=1))
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
