"""What the adapters share: which reward a trainer's config names, the components a trainer can
log for it, and the text the model wrote."""

from __future__ import annotations

import os
from typing import Any

from payoff.core import Reward


def resolve_reward(spec: Any = None) -> Reward:
    """The reward a trainer's config names: `spec` (a registered name, ``module:function``,
    ``file.py:function``, a rubric ``.toml`` file, or a Reward), else ``$PAYOFF_CONFIG`` (a
    rubric TOML), else ``$PAYOFF_REWARD``, else ``math``."""
    from payoff.registry import get_reward

    if spec is None:
        spec = os.environ.get("PAYOFF_CONFIG") or os.environ.get("PAYOFF_REWARD") or "math"
    if isinstance(spec, str) and spec.endswith(".toml"):
        from payoff.compose.config import load_rubric

        return load_rubric(spec)
    return get_reward(spec)


def component_names(reward: Reward) -> list[str]:
    """The components every outcome of `reward` can carry, known before scoring (a Rubric's
    terms): trainers that log per-sample columns need the same keys for every sample."""
    return [term.name for term in getattr(reward, "terms", [])]


def message_text(message: dict[str, Any]) -> str:
    """A chat message's text: a string content, or the text parts of a list of content blocks."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type", "text") == "text")
    return str(content)


def assistant_text(messages: list[Any]) -> str:
    """What the model wrote in a conversational completion: its final assistant turn's text.
    Tool results and user turns are never the model's text (a tool's output must not earn the
    reward), and an episode's final answer is its last assistant turn."""
    turns = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    for message in reversed(turns):
        text = message_text(message)
        if text:
            return text
    return ""
