"""`score()`: one call that picks the backend (the local pool or a Ray cluster)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from payoff.core import Outcome, Reward, Sample
from payoff.engine.pool import DEFAULT_MAX_PROCS, DEFAULT_MEMORY_MB, Engine


def score(
    samples: Iterable[Sample | dict[str, Any]],
    reward: str | Reward | Callable[..., Any],
    *,
    workers: int | None = None,
    timeout_s: float | None = None,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    max_procs: int = DEFAULT_MAX_PROCS,
    cache: str | os.PathLike[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
    backend: str = "local",
    **options: Any,
) -> list[Outcome]:
    """Score `samples` with `reward` (a name, a Reward or a plain function); one Outcome per
    sample, in order. See `Engine` for the options; ``backend="ray"`` spreads the work over a
    Ray cluster (`payoff.engine.ray_backend`) with the same outcomes."""
    samples = list(samples)
    if backend == "ray":
        from payoff.engine.ray_backend import RayEngine

        with RayEngine(reward, timeout_s=timeout_s, memory_mb=memory_mb, max_procs=max_procs, **options) as remote:
            return remote.score(samples, on_progress=on_progress)
    if backend != "local":
        raise ValueError("backend must be 'local' or 'ray'")
    if workers is None:
        workers = min(os.cpu_count() or 1, max(1, len(samples)))
    with Engine(reward, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, max_procs=max_procs, cache=cache, **options) as engine:
        return engine.score(samples, on_progress=on_progress)
