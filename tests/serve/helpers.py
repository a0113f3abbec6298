"""A real `payoff serve` subprocess on a free 127.0.0.1 port, and rewards for the server tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from payoff.core import Sample, reward

HERE = Path(__file__).resolve().parent


@reward(name="sleepy")
def sleepy(sample: Sample) -> float:
    """Sleeps meta['sleep'] seconds, then scores 1."""
    time.sleep(float(sample.meta.get("sleep", 0)))
    return 1.0


SLEEPY = f"{HERE / 'helpers.py'}:sleepy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(*args: str, ready_timeout: float = 60) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    # This checkout's payoff (src/), not whichever one is installed, and its tests (for test rewards).
    paths = [str(HERE.parent.parent / "src"), str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    process = subprocess.Popen([sys.executable, "-m", "payoff", "serve", "--port", str(port), *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + ready_timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("server did not come up")
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
