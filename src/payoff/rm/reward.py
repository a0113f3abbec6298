"""The ``reward_model`` reward: a trained Bradley-Terry model as a payoff reward.

``get_reward("reward_model").configure(path=RUN_DIR, normalize=True)``, or in a rubric TOML
``[[reward.terms]] name = "reward_model"`` with ``params = { path = "RUN_DIR" }``.

It is a batched reward: the engine hands each worker batches of samples of similar length, the
model loads once per process (cached by folder) and scores a batch per forward pass. The score is
the raw reward, or with ``normalize`` (z = (r - mean) / std, the held-out statistics saved with
the model); ``components`` always hold ``raw`` and ``normalized``, and for an ensemble each head
and the heads' spread. An ensemble aggregates its heads by ``aggregate``: ``mean``, ``min``
(worst case) or ``mean_minus_std`` (mean - ``lam`` * std, uncertainty-penalised).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from payoff.core import Outcome, Sample, batched_reward

_MODELS: dict[tuple[str, float], Any] = {}
_LOCK = threading.Lock()


def loaded_model(path: str | Path) -> tuple[Any, Any, Any]:
    """(model, tokenizer, info), loaded once per process per saved model."""
    from payoff.models.reward_model import load_reward_model, model_folder

    folder = model_folder(path).resolve()
    key = (str(folder), (folder / "rm.json").stat().st_mtime)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_reward_model(folder)
        return _MODELS[key]


def _answer(sample: Sample) -> Any:
    return sample.completion


def _weights_digest(path: str = "", **_: Any) -> str:
    """What the engine's cache keys on besides the path: the saved model's bytes (a model retrained
    into the same folder must not be served stale cached scores)."""
    import hashlib

    from payoff.models.reward_model import model_folder

    try:
        folder = model_folder(path)
    except FileNotFoundError:
        return "missing"
    digest = hashlib.sha256()
    for file in sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix in (".json", ".pt", ".safetensors")):
        digest.update(file.name.encode())
        digest.update(file.read_bytes() if file.stat().st_size < 64 * 2**20 else str(file.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:16]


@batched_reward(name="reward_model", batch_size=16, timeout_s=300.0)
def reward_model(samples: list[Sample], path: str = "", normalize: bool = False, aggregate: str = "mean",
                 lam: float = 1.0) -> list[Outcome]:
    """A trained Bradley-Terry reward model (``payoff rm train``): the reward of the completion
    as an answer to the prompt, read at its last token; ``normalize`` for z-scores."""
    import torch

    from payoff.rm.scoring import score_items

    if not path:
        raise ValueError("reward_model needs path= (a `payoff rm train` run folder)")
    if aggregate not in ("mean", "min", "mean_minus_std"):
        raise ValueError("aggregate must be mean, min or mean_minus_std")
    model, tokenizer, info = loaded_model(path)
    items = [(s.prompt, _answer(s)) for s in samples]
    rewards = score_items(model, tokenizer, items, info.render, batch_size=len(samples))
    outcomes = []
    for row in rewards:
        mean = row.mean().item()
        spread = row.std(unbiased=False).item() if len(row) > 1 else 0.0
        raw = {"mean": mean, "min": row.min().item(), "mean_minus_std": mean - lam * spread}[aggregate]
        z = (raw - info.reward_mean) / (info.reward_std or 1.0)
        components = {"raw": raw, "normalized": z}
        if len(row) > 1:
            components.update({f"head_{h}": v for h, v in enumerate(row.tolist())})
            components["head_std"] = spread
        if not torch.isfinite(row).all():
            outcomes.append(Outcome.error("reward model produced a non-finite reward", components={}))
            continue
        outcomes.append(Outcome.ok(z if normalize else raw, components))
    return outcomes


reward_model.fn.payoff_identity = _weights_digest
