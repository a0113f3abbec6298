"""reasoning-gym as a payoff task and reward (offline: its generators need no network).

Rows carry the generator's entry in ``meta["rg_entry"]``. The ``reasoning_gym`` reward calls the
dataset's own scorer. Some scorers ``eval`` model text or can hang, so the reward declares a
timeout and is meant to run inside the engine's workers (the trainer always scores through the
engine), never in the trainer process itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from payoff.core import Outcome, Sample, reward

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def reasoning_gym_rows(name: str, n: int, seed: int = 0, **config: Any) -> list[dict[str, Any]]:
    """``n`` rows from the reasoning-gym dataset ``name`` (e.g. ``basic_arithmetic``)."""
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(name, size=n, seed=seed, **config)
    rows = []
    for index in range(n):
        entry = dataset[index]
        # JSON round trip: entries travel to worker processes and into rollout logs.
        entry = json.loads(json.dumps(entry, default=str))
        rows.append({"prompt": entry["question"], "reference": str(entry["answer"]),
                     "meta": {"task": f"reasoning_gym/{name}", "rg_dataset": name, "rg_entry": entry}})
    return rows


def extract_answer(completion: str) -> str:
    """The text inside the last ``<answer>...</answer>``, else the whole completion, stripped."""
    found = _ANSWER_TAG.findall(completion)
    return (found[-1] if found else completion).strip()


@reward(name="reasoning_gym", timeout_s=10.0)
def reasoning_gym_reward(sample: Sample) -> Outcome:
    """The reasoning-gym dataset's own scorer on the extracted answer (0..1)."""
    name = sample.meta.get("rg_dataset")
    entry = sample.meta.get("rg_entry")
    if not name or not isinstance(entry, dict):
        return Outcome.abstain("sample has no meta.rg_dataset / meta.rg_entry (build rows with reasoning_gym_rows)")
    import reasoning_gym

    score_answer = reasoning_gym.get_score_answer_fn(name)
    value = score_answer(answer=extract_answer(sample.completion), entry=entry)
    return Outcome.ok(float(value))
