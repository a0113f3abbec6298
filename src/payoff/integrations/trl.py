"""A payoff reward as a TRL ``reward_funcs`` entry (GRPOTrainer, RLOOTrainer, ...).

TRL calls ``f(prompts=..., completions=..., completion_ids=..., **columns)`` with the other dataset
columns as keyword lists, and reads back one float per completion. A sample whose outcome is not
``ok`` (abstain, error, timeout) comes back as None, which TRL treats as "no reward from this
function" rather than a 0. The samples are scored through a persistent `Engine` (workers,
timeouts), so a hanging reward cannot stall training.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from payoff.core import Reward, Sample

REFERENCE_COLUMNS = ("reference", "answer", "solution", "ground_truth", "label")


def _text(value: Any) -> str:
    # Conversational datasets hand over lists of messages; the completion is the assistant's text.
    if isinstance(value, list):
        return "".join(str(m.get("content", "")) for m in value if isinstance(m, dict))
    return str(value)


def trl_reward(reward: str | Reward | Callable[..., Any], workers: int = 2, timeout_s: float | None = None,
               reference_column: str | None = None, name: str | None = None) -> Callable[..., list[float | None]]:
    """Wrap ``reward`` for TRL. ``reference_column`` names the dataset column holding the
    reference (default: the first of reference / answer / solution / ground_truth / label)."""
    from payoff.engine.shared import shared_engine

    engine = shared_engine(reward, workers=workers, timeout_s=timeout_s)
    last_outcomes: list[Any] = []

    def reward_func(prompts: list[Any] | None = None, completions: list[Any] | None = None, **columns: Any) -> list[float | None]:
        completions = completions or []
        column = reference_column or next((c for c in REFERENCE_COLUMNS if c in columns), None)
        references = columns.get(column) if column else None
        step = columns.get("trainer_state").global_step if columns.get("trainer_state") is not None else None
        samples = []
        groups: dict[str, int] = {}
        for i, completion in enumerate(completions):
            meta = {"step": step} if step is not None else {}
            prompt = prompts[i] if prompts is not None else ""
            # TRL repeats each prompt once per generation: the generations of one prompt are one
            # group (for group rewards and group normalisation).
            group = groups.setdefault(json.dumps(prompt, sort_keys=True, default=str), len(groups)) if prompts is not None else None
            samples.append(Sample(completion=_text(completion), prompt=prompt if isinstance(prompt, (str, list)) else str(prompt),
                                  reference=references[i] if references is not None else None, meta=meta, group=group))
        outcomes = engine.score(samples)
        last_outcomes[:] = outcomes
        return [float(o.score) if o.status == "ok" else None for o in outcomes]

    reward_func.__name__ = name or f"payoff_{engine.reward.name}".replace("+", "_").replace("*", "x")
    reward_func.engine = engine  # type: ignore[attr-defined]  # shared in this process; closed at exit
    reward_func.last_outcomes = last_outcomes  # type: ignore[attr-defined]  # the full Outcomes of the last call
    return reward_func
