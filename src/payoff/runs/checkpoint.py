"""Checkpoints: weights (or the LoRA adapter), optimiser, RNG states and the trainer's position.

Each checkpoint is written to a ``.partial`` folder and renamed into place, so a run killed at
any instant (SIGKILL included) leaves only whole checkpoints; resuming picks the newest one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

PREFIX = "step-"


def _trainable_state(model: Any) -> dict[str, torch.Tensor]:
    # Only what training changes: the adapter under LoRA, every parameter otherwise.
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(run_dir: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any], keep: int = 2,
                    parts: dict[str, Any] | None = None) -> Path:
    """``parts``: more things with a ``state_dict`` (PPO's critic and its optimiser), saved as
    ``NAME.pt``."""
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{PREFIX}{step:06d}"
    partial = folder / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    torch.save(_trainable_state(model), partial / "weights.pt")
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")
    for name, part in (parts or {}).items():
        torch.save(part.state_dict(), partial / f"{name}.pt")
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save(rng, partial / "rng.pt")
    (partial / "state.json").write_text(json.dumps({"step": step, **state}, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    for old in sorted(folder.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob(f"{PREFIX}*"))
    return found[-1] if found else None


def load_checkpoint(path: Path, model: Any, optimizer: Any, parts: dict[str, Any] | None = None) -> dict[str, Any]:
    """Restore weights, optimiser, ``parts`` and RNG states; returns the trainer state (step,
    position...)."""
    weights = torch.load(path / "weights.pt", weights_only=True)
    params = dict(model.named_parameters())
    missing = [name for name in weights if name not in params]
    if missing:
        raise ValueError(f"checkpoint {path} does not fit this model: no parameter {missing[0]!r}")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    for name, part in (parts or {}).items():
        if not (path / f"{name}.pt").exists():
            raise ValueError(f"checkpoint {path} has no {name}: it was not written by a run with one")
        part.load_state_dict(torch.load(path / f"{name}.pt", weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    return json.loads((path / "state.json").read_text())
