"""OpenRLHF's remote reward protocol, for `payoff serve` (``POST /get_reward``) and as a
``--reward.remote_url /path/to/payoff/integrations/openrlhf.py`` reward function file.

Request: ``{"query": [prompt + response, ...], "prompts": [prompt, ...], "labels": [label, ...]}``.
Response: ``{"rewards": [...], "scores": [...], "extra_logs": {...}}``. ``rewards`` is what the
trainer optimises; ``scores`` is the same here. The response is recovered by stripping the
prompt from the front of the query; a query that does not start with its prompt (a prompt
truncated from the left) is an error, never graded whole (`payoff.serve.openrlhf_protocol`).
Samples that abstain, error or time out get 0.0 and are counted in ``extra_logs``.

OpenRLHF 0.11.2 calls ``reward_func`` from many threads at once (one per query); they share one
engine per reward in the process (`payoff.engine.shared`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from payoff.core import Sample
from payoff.integrations.common import resolve_reward
from payoff.integrations.groups import refuse_group_dependence
from payoff.serve.openrlhf_protocol import merge, protocol_response, protocol_samples, split_response

__all__ = ["protocol_response", "protocol_samples", "reward_func", "split_response"]
_engine: Any = None
_lock = threading.Lock()


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **_: Any) -> dict[str, Any]:
    """OpenRLHF's reward-function-file entry point; the reward comes from ``$PAYOFF_CONFIG`` (a
    rubric TOML) or ``$PAYOFF_REWARD`` (default ``math``), workers from ``$PAYOFF_WORKERS``."""
    global _engine
    import torch

    from payoff.engine.shared import shared_engine

    with _lock:
        if _engine is None:
            reward = resolve_reward()
            refuse_group_dependence(reward, "OpenRLHF's reward function")
            _engine = shared_engine(reward, workers=int(os.environ.get("PAYOFF_WORKERS", "2")))
    items = protocol_samples(queries, prompts, labels)
    samples = [item for item in items if isinstance(item, Sample)]
    response = protocol_response(merge(items, _engine.score(samples) if samples else []))
    return {**response, "rewards": torch.tensor(response["rewards"]), "scores": torch.tensor(response["scores"]),
            "extra_logs": {k: torch.tensor(v) for k, v in response["extra_logs"].items()}}
