"""`payoff view PATH` as a user runs it: a real subprocess on a free port; yields the URL it prints."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def viewing(path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-m", "payoff", "view", str(path), "--port", "0", *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    try:
        deadline, seen = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            line = process.stderr.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(f"payoff view exited {process.wait()}: {''.join(seen)[-2000:]}")
            seen.append(line)
            found = re.search(r"(http://\S+)", line)
            if found:
                yield found.group(1)
                return
        raise RuntimeError("payoff view printed no URL in 60 s")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
