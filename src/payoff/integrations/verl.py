"""A payoff reward as verl's ``compute_score``.

verl's reward manager calls ``compute_score(data_source, solution_str, ground_truth, extra_info)``
once per sample in the trainer's process. Point its config at this file:

    custom_reward_function.path=<site-packages>/payoff/integrations/verl.py
    custom_reward_function.name=compute_score

The reward is ``$PAYOFF_REWARD`` (a name, ``module:function``, ``file.py:function``; default
``math``) or a rubric TOML in ``$PAYOFF_CONFIG``. `make_compute_score(reward)` builds one in code.
Scoring goes through a persistent `Engine` so a hanging or crashing reward costs one sample, not
the run; verl needs a number, so abstain / error / timeout score ``fail_score`` (0.0).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from payoff.core import Sample
from payoff.integrations.groups import refuse_group_dependence

_default: Callable[..., float] | None = None
_lock = threading.Lock()


def make_compute_score(reward: Any, workers: int = 1, timeout_s: float | None = None, fail_score: float = 0.0) -> Callable[..., float]:
    from payoff.engine.shared import shared_engine
    from payoff.registry import get_reward

    refuse_group_dependence(get_reward(reward), "verl's compute_score (one sample per call)")
    # verl calls from a thread pool: every thread shares this process's one engine.
    engine = shared_engine(reward, workers=workers, timeout_s=timeout_s)

    def compute_score(data_source: str | None, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None,
                      **_: Any) -> float:
        meta = {"data_source": data_source, **(extra_info or {})}
        outcome = engine.score([Sample(completion=str(solution_str), reference=ground_truth, meta=meta)])[0]
        return float(outcome.score) if outcome.status == "ok" else fail_score

    compute_score.engine = engine  # type: ignore[attr-defined]
    return compute_score


def _configured() -> Callable[..., float]:
    global _default
    with _lock:  # verl's threads arrive together on the first step
        if _default is None:
            if os.environ.get("PAYOFF_CONFIG"):
                from payoff.compose.config import load_rubric

                _default = make_compute_score(load_rubric(os.environ["PAYOFF_CONFIG"]))
            else:
                _default = make_compute_score(os.environ.get("PAYOFF_REWARD", "math"))
        return _default


def compute_score(data_source: str | None, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None, **kwargs: Any) -> float:
    """verl's signature; the reward comes from ``$PAYOFF_REWARD`` / ``$PAYOFF_CONFIG``."""
    return _configured()(data_source, solution_str, ground_truth, extra_info, **kwargs)
