"""A payoff reward as a TRL ``reward_funcs`` entry (GRPOTrainer, RLOOTrainer, ...).

TRL calls ``f(prompts=..., completions=..., completion_ids=..., trainer_state=..., log_extra=...,
log_metric=..., **columns)`` with the other dataset columns as keyword lists, and reads back one
float per completion. A sample whose outcome is not ``ok`` (abstain, error, timeout) comes back as
None, which TRL treats as "no reward from this function" rather than a 0. Statuses and components
go to TRL's completions table (``log_extra``) and its logged metrics (``log_metric``).

Only what the model wrote is graded: in a conversational completion that is its final assistant
turn, never a tool's output or a user turn (with tools, TRL's completion holds the tool results
too). The samples are scored on this process's shared engine (`payoff.engine.shared`: workers,
timeouts, one per reward per process), so a hanging reward cannot stall training.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from payoff.core import STATUSES, Outcome, Reward, Sample
from payoff.integrations.common import assistant_text

REFERENCE_COLUMNS = ("reference", "answer", "solution", "ground_truth", "label")
# What TRL passes besides the dataset's columns.
TRL_KEYWORDS = ("completion_ids", "trainer_state", "log_extra", "log_metric", "environments")


def _text(value: Any) -> str:
    return assistant_text(value) if isinstance(value, list) else str(value)


def trl_reward(reward: str | Reward | Callable[..., Any], workers: int = 2, timeout_s: float | None = None,
               reference_column: str | None = None, name: str | None = None) -> Callable[..., list[float | None]]:
    """Wrap ``reward`` for TRL. ``reference_column`` names the dataset column holding the
    reference (default: the first of reference / answer / solution / ground_truth / label)."""
    from payoff.engine.shared import shared_engine

    engine = shared_engine(reward, workers=workers, timeout_s=timeout_s)
    last_outcomes: list[Any] = []
    func_name = name or f"payoff_{engine.reward.name}".replace("+", "_").replace("*", "x")

    def reward_func(prompts: list[Any] | None = None, completions: list[Any] | None = None, **columns: Any) -> list[float | None]:
        completions = completions or []
        column = reference_column or next((c for c in REFERENCE_COLUMNS if c in columns), None)
        references = columns.get(column) if column else None
        step = columns.get("trainer_state").global_step if columns.get("trainer_state") is not None else None
        samples = []
        groups = group_ids(prompts) if prompts is not None else [None] * len(completions)
        for i, completion in enumerate(completions):
            meta = {"step": step} if step is not None else {}
            prompt = prompts[i] if prompts is not None else ""
            samples.append(Sample(completion=_text(completion), prompt=prompt if isinstance(prompt, (str, list)) else str(prompt),
                                  reference=references[i] if references is not None else None, meta=meta, group=groups[i]))
        outcomes = engine.score(samples)
        last_outcomes[:] = outcomes
        log_outcomes(func_name, outcomes, columns.get("log_extra"), columns.get("log_metric"))
        return [float(o.score) if o.status == "ok" else None for o in outcomes]

    reward_func.__name__ = func_name
    reward_func.engine = engine  # type: ignore[attr-defined]  # shared in this process; shut down at exit
    reward_func.last_outcomes = last_outcomes  # type: ignore[attr-defined]  # the full Outcomes of the last call
    return reward_func


def group_ids(prompts: list[Any]) -> list[int]:
    """TRL repeats each prompt once per generation: the generations of one prompt are one group
    (for group rewards and group normalisation), numbered in order of first appearance."""
    groups: dict[str, int] = {}
    return [groups.setdefault(json.dumps(prompt, sort_keys=True, default=str), len(groups)) for prompt in prompts]


def log_outcomes(name: str, outcomes: list[Outcome], log_extra: Callable | None, log_metric: Callable | None) -> None:
    """Statuses and components: per completion in TRL's completions table, averaged in its metrics
    (a component's mean over the completions that have it; a status's share of the batch)."""
    components = sorted({key for o in outcomes for key in o.components})
    if log_extra is not None:
        log_extra(f"{name}/status", [o.status for o in outcomes])
        for key in components:
            log_extra(f"{name}/{key}", [o.components.get(key) for o in outcomes])
    if log_metric is not None and outcomes:
        for status in STATUSES[1:]:
            log_metric(f"{name}/{status}", sum(o.status == status for o in outcomes) / len(outcomes))
        for key in components:
            values = [o.components[key] for o in outcomes if key in o.components]
            log_metric(f"{name}/{key}", sum(values) / len(values))
