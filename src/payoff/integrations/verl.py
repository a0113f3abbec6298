"""A payoff reward as verl's custom reward function (verl 0.9.1).

verl's reward managers call ``compute_score(data_source=, solution_str=, ground_truth=,
extra_info=, **reward_kwargs)`` once per sample: the legacy managers from the trainer's process,
the reward loop (``verl.experimental.reward_loop``) from its event loop, a synchronous function in
a thread pool. verl 0.9.1 reads the function from ``reward.custom_reward_function``; the top-level
``custom_reward_function`` of older releases is ignored by ``main_ppo`` (verl then silently runs
its own scorer)::

    reward.custom_reward_function.path=<site-packages>/payoff/integrations/verl.py
    reward.custom_reward_function.name=compute_score_async      # or compute_score
    +reward.custom_reward_function.reward_kwargs.reward=math    # any payoff reward, or a rubric .toml

``reward_kwargs`` may also set ``workers``, ``timeout_s`` and ``fail_score``; without ``reward``
the reward is ``$PAYOFF_CONFIG`` / ``$PAYOFF_REWARD`` (default ``math``). The result is a dict:
``score`` (what verl optimises: the reward, or ``fail_score`` when the outcome is abstain, error or
timeout, as verl needs a number), ``payoff/status``, a 0/1 flag per status and one value per
rubric term (None where the term has no score), which verl logs as reward metrics. Every thread
and the event loop share one engine per reward in the process (`payoff.engine.shared`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from payoff.core import STATUSES, Outcome, Sample
from payoff.integrations.common import component_names, resolve_reward
from payoff.integrations.groups import refuse_group_dependence

_scorers: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()


class _Scorer:
    def __init__(self, reward: Any, workers: int, timeout_s: float | None, fail_score: float) -> None:
        from payoff.engine.shared import shared_engine

        resolved = resolve_reward(reward)
        refuse_group_dependence(resolved, "verl's compute_score (one sample per call)")
        # verl calls from a thread pool or an event loop: all share this process's one engine.
        self.engine = shared_engine(resolved, workers=workers, timeout_s=timeout_s)
        self.fail_score = fail_score
        self.components = component_names(self.engine.reward)

    def sample(self, data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any) -> Sample:
        # solution_str is the response alone (verl decodes the response tokens): the model's text.
        return Sample(completion=str(solution_str), reference=ground_truth, meta={"data_source": data_source, **dict(extra_info or {})})

    def details(self, outcome: Outcome) -> dict[str, Any]:
        result: dict[str, Any] = {"score": self.value(outcome), "payoff/status": outcome.status}
        result.update({f"payoff/{status}": float(outcome.status == status) for status in STATUSES})
        result.update({f"payoff/{name}": outcome.components.get(name) for name in self.components})
        return result

    def value(self, outcome: Outcome) -> float:
        return float(outcome.score) if outcome.status == "ok" else self.fail_score


def _scorer(reward: Any = None, workers: int = 2, timeout_s: float | None = None, fail_score: float = 0.0) -> _Scorer:
    key = (reward if isinstance(reward, (str, type(None))) else id(reward), workers, timeout_s, fail_score)
    with _lock:  # verl's threads arrive together on the first step
        scorer = _scorers.get(key)
        if scorer is None:
            scorer = _scorers[key] = _Scorer(reward, workers, timeout_s, fail_score)
        return scorer


def compute_score(data_source: Any = None, solution_str: str = "", ground_truth: Any = None, extra_info: dict[str, Any] | None = None,
                  *, reward: Any = None, workers: int = 2, timeout_s: float | None = None, fail_score: float = 0.0,
                  **_: Any) -> dict[str, Any]:
    """verl's synchronous custom reward function (the keyword arguments come from
    ``reward_kwargs``; verl's own extras, such as ``reward_router_address``, are ignored)."""
    scorer = _scorer(reward, workers, timeout_s, fail_score)
    return scorer.details(scorer.engine.score([scorer.sample(data_source, solution_str, ground_truth, extra_info)])[0])


async def compute_score_async(data_source: Any = None, solution_str: str = "", ground_truth: Any = None,
                              extra_info: dict[str, Any] | None = None, *, reward: Any = None, workers: int = 2,
                              timeout_s: float | None = None, fail_score: float = 0.0, **_: Any) -> dict[str, Any]:
    """`compute_score` for verl's reward loop, awaited on its event loop, which it never blocks."""
    scorer = _scorer(reward, workers, timeout_s, fail_score)
    outcomes = await scorer.engine.ascore([scorer.sample(data_source, solution_str, ground_truth, extra_info)])
    return scorer.details(outcomes[0])


def make_compute_score(reward: Any, workers: int = 1, timeout_s: float | None = None, fail_score: float = 0.0,
                       details: bool = False) -> Callable[..., Any]:
    """A ``compute_score`` for `reward` built in code: a float per sample, or verl's dict with
    ``details=True``."""
    scorer = _Scorer(reward, workers, timeout_s, fail_score)

    def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None,
                      **_: Any) -> Any:
        outcome = scorer.engine.score([scorer.sample(data_source, solution_str, ground_truth, extra_info)])[0]
        return scorer.details(outcome) if details else scorer.value(outcome)

    compute_score.engine = scorer.engine  # type: ignore[attr-defined]
    return compute_score
