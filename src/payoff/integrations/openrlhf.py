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
import threading
from collections.abc import Sequence
from typing import Any

from payoff.integrations.groups import refuse_group_dependence
from payoff.serve.openrlhf_protocol import protocol_response, protocol_samples, split_response

__all__ = ["protocol_response", "protocol_samples", "reward_func", "split_response"]
_engine: Any = None
_lock = threading.Lock()


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **_: Any) -> dict[str, Any]:
    """OpenRLHF's reward-function-file entry point; the reward comes from ``$PAYOFF_REWARD``
    (default ``math``) or ``$PAYOFF_CONFIG``."""
    global _engine
    import torch

    from payoff.engine.shared import shared_engine
    from payoff.registry import get_reward

    with _lock:
        if _engine is None:
            if os.environ.get("PAYOFF_CONFIG"):
                from payoff.compose.config import load_rubric

                reward: Any = load_rubric(os.environ["PAYOFF_CONFIG"])
            else:
                reward = get_reward(os.environ.get("PAYOFF_REWARD", "math"))
            refuse_group_dependence(reward, "OpenRLHF's reward function")
            _engine = shared_engine(reward, workers=int(os.environ.get("PAYOFF_WORKERS", "2")))
    response = protocol_response(_engine.score(protocol_samples(queries, prompts, labels)))
    return {"rewards": torch.tensor(response["rewards"]), "scores": torch.tensor(response["scores"]),
            "extra_logs": {k: torch.tensor(v) for k, v in response["extra_logs"].items()}}
