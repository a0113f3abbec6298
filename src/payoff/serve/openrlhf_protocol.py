"""OpenRLHF's remote reward protocol: ``POST /get_reward`` with ``{"query": [...], "prompts":
[...], "labels": [...]}``, answered with ``{"rewards", "scores", "extra_logs"}``. Used by the
server and by the OpenRLHF reward-function adapter (`payoff.integrations.openrlhf`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from payoff.core import Outcome, Sample


def split_response(query: str, prompt: str | None) -> str:
    if prompt and query.startswith(prompt):
        return query[len(prompt):]
    return query


def protocol_samples(query: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[Any] | None) -> list[Sample]:
    if prompts is not None and len(prompts) != len(query):
        raise ValueError(f"'prompts' has {len(prompts)} items but 'query' has {len(query)}")
    if labels is not None and len(labels) != len(query):
        raise ValueError(f"'labels' has {len(labels)} items but 'query' has {len(query)}")
    return [Sample(completion=split_response(q, prompts[i] if prompts else None), prompt=prompts[i] if prompts else "",
                   reference=labels[i] if labels else None) for i, q in enumerate(query)]


def protocol_response(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    rewards = [float(o.score) if o.status == "ok" else 0.0 for o in outcomes]
    logs: dict[str, Any] = {f"payoff_{s}": [float(o.status == s) for o in outcomes] for s in ("abstain", "error", "timeout")}
    return {"rewards": rewards, "scores": rewards, "extra_logs": logs}
