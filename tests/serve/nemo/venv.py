"""NeMo-Gym 0.7.0 for the conformance tests. Its wheel declares Python >= 3.13.14, so it is not
installed: the wheel is downloaded (`pip download --no-deps`), unpacked, and put on the path of a
cached virtualenv that holds only what its resources-server modules import (measured: these
import `nemo_gym.base_resources_server`, `config_types` and `reward_profile` on Python 3.11).
Built once under ~/.cache/payoff (or $PAYOFF_CACHE), reused after."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

VERSION = "0.7.0"
REQUIREMENTS = [
    "openai==2.44.0", "omegaconf==2.3.1", "hydra-core==1.3.8", "fastapi==0.165.0", "uvicorn==0.55.0", "httptools==0.9.0",
    "rich==15.0.0", "aiohttp==3.14.5", "anyio==4.16.0", "orjson==3.13.0", "psutil==7.2.2", "itsdangerous==2.2.0", "pandas==3.1.1",
    "scipy==1.17.1", "wandb==0.31.0", "requests==2.34.2", "pydantic==2.14.4", "devtools==0.13.0", "httpx==0.29.0", "yappi==1.7.6",
    "pydot==4.0.1",
]
NO_DEPS = ["ray==2.60.0"]  # nemo_gym only reads ray's installed version at import time


def cache_root() -> Path:
    return Path(os.environ.get("PAYOFF_CACHE", Path.home() / ".cache" / "payoff"))


def nemo_gym_python() -> tuple[Path, Path]:
    """(the venv's python, the unpacked wheel's folder); built on first use. Raises
    RuntimeError with pip's last words where the registry cannot be reached."""
    venv = cache_root() / "venvs" / f"nemo-gym-{VERSION}"
    python, unpacked, stamp = venv / "bin" / "python", venv / "nemo_gym_wheel", venv / ".ready"
    if stamp.exists():
        return python, unpacked
    wheels = cache_root() / "wheels"
    wheel = wheels / f"nemo_gym-{VERSION}-py3-none-any.whl"

    def sh(*command: str) -> None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])} ...: {done.stderr[-1500:]}")

    if not wheel.exists():
        sh(sys.executable, "-m", "pip", "download", "--no-deps", "--python-version", "3.13.14", "--only-binary=:all:",
           f"nemo-gym=={VERSION}", "-d", str(wheels))
    sh(sys.executable, "-m", "venv", str(venv))
    sh(str(python), "-m", "pip", "install", "-q", *REQUIREMENTS)
    sh(str(python), "-m", "pip", "install", "-q", "--no-deps", *NO_DEPS)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    stamp.touch()
    return python, unpacked
