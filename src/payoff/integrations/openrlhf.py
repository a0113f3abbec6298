"""OpenRLHF's remote reward protocol, for `payoff serve` (``POST /get_reward``) and as a
``--remote_rm_url /path/to/openrlhf.py`` reward function file.

Request: ``{"query": [prompt + response, ...], "prompts": [prompt, ...], "labels": [label, ...]}``.
Response: ``{"rewards": [...], "scores": [...], "extra_logs": {...}}``. ``rewards`` is what the
trainer optimises; ``scores`` is the same here. The response is recovered by stripping the
prompt from the front of the query. Samples that abstain, error or time out get 0.0 and are
counted in ``extra_logs``.
"""

from __future__ import annotations

import os
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


_engine: Any = None


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **_: Any) -> dict[str, Any]:
    """OpenRLHF's reward-function-file entry point; the reward comes from ``$PAYOFF_REWARD``
    (default ``math``) or ``$PAYOFF_CONFIG``."""
    global _engine
    import torch

    from payoff.engine import Engine

    if _engine is None:
        if os.environ.get("PAYOFF_CONFIG"):
            from payoff.compose.config import load_rubric

            _engine = Engine(load_rubric(os.environ["PAYOFF_CONFIG"]), workers=int(os.environ.get("PAYOFF_WORKERS", "2")))
        else:
            _engine = Engine(os.environ.get("PAYOFF_REWARD", "math"), workers=int(os.environ.get("PAYOFF_WORKERS", "2")))
    response = protocol_response(_engine.score(protocol_samples(queries, prompts, labels)))
    return {"rewards": torch.tensor(response["rewards"]), "scores": torch.tensor(response["scores"]),
            "extra_logs": {k: torch.tensor(v) for k, v in response["extra_logs"].items()}}
