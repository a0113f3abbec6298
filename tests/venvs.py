"""Cached virtualenvs under ~/.cache/payoff/venvs/ for the real client libraries whose pins clash
with payoff's test environment (verl 0.9.1 and OpenRLHF 0.11.2 pin older transformers), and for
a base install without torch.

A client venv gets the client and only what its imported modules need, installed with
``--no-deps`` from the package registry; with ``overlay=True`` it also sees the test
environment's packages (torch, transformers, ray) below its own, through a ``.pth`` file, so
nothing heavy is installed twice. A venv is rebuilt when its package list changes. When the
registry cannot be reached, the test is skipped and says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

VENVS = Path.home() / ".cache" / "payoff" / "venvs"
ROOT = Path(__file__).resolve().parents[1]
# pip's words when it cannot reach the registry (as opposed to a package that does not exist).
OFFLINE = ("Network is unreachable", "Temporary failure in name resolution", "Max retries exceeded", "ConnectionError",
           "Could not fetch URL", "NewConnectionError", "No route to host", "Connection refused")

# The clients' own packages, and what their imported modules need beyond the test environment.
AIOHTTP = ["aiohttp==3.13.2", "aiohappyeyeballs==2.6.1", "aiosignal==1.4.0", "frozenlist==1.8.0", "multidict==6.7.0",
           "propcache==0.4.1", "yarl==1.22.0"]
CLIENTS = {
    "verl-0.9.1": ["verl==0.9.1", "omegaconf==2.3.0", "hydra-core==1.3.2", "antlr4-python3-runtime==4.9.3",
                   "tensordict==0.10.0", "pyvers==0.1.0", "codetiming==1.4.0", "pylatexenc==2.10", "cachetools==8.0.2", *AIOHTTP],
    "openrlhf-0.11.2": ["openrlhf==0.11.2", "pylatexenc==2.10", *AIOHTTP],
}


def client_python(name: str) -> Path:
    """The interpreter of client venv `name` (see CLIENTS), built on first use."""
    return venv_python(name, CLIENTS[name], overlay=True)


def base_python() -> Path:
    """A venv with payoff's base dependencies only (no torch, no extras)."""
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return venv_python("base-notorch", dependencies, overlay=False, with_deps=True)


def run_in(python: Path, code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `code` in `python` with this checkout's payoff (src/) and tests importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "PYTHONNOUSERSITE": "1"}
    return subprocess.run([str(python), "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout)


def venv_python(name: str, packages: list[str], *, overlay: bool, with_deps: bool = False) -> Path:
    VENVS.mkdir(parents=True, exist_ok=True)
    root = VENVS / name
    python = root / "bin" / "python"
    wanted = {"packages": packages, "overlay": overlay, "with_deps": with_deps, "python": sys.version,
              "base": sysconfig.get_paths()["purelib"] if overlay else None}
    stamp = root / "payoff-venv.json"
    with open(VENVS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes never build one venv at once
        if stamp.exists() and json.loads(stamp.read_text()) == wanted and python.exists():
            return python
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([_base_interpreter(), "-m", "venv", str(root)], check=True, capture_output=True)
        if overlay:
            site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip()
            # Appended after the venv's own site-packages: the client's packages win, the rest comes from here.
            Path(site, "_payoff_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        command = [str(python), "-m", "pip", "install", "--quiet", *([] if with_deps else ["--no-deps"]), *packages]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            shutil.rmtree(root, ignore_errors=True)
            if any(marker in output for marker in OFFLINE):
                pytest.skip(f"package registry unreachable, cannot build the {name} venv: {output.strip().splitlines()[-1]}")
            raise RuntimeError(f"pip install into {root} failed:\n{output[-4000:]}")
        stamp.write_text(json.dumps(wanted))
    return python


def _base_interpreter() -> str:
    # venv's own interpreter may itself be a venv's: build from the interpreter under all venvs.
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
