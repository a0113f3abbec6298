"""Queries over a `SampleFile`: which rows pass the page's filters, a row's one-line summary, and a
prompt group's members with their advantages.

Filters are read from the index arrays only; a page of rows is then read from disk. Summaries
clip every text, so a page of 50 rows stays small whatever the rows hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from payoff.view.lines import STATUS_CODE, STATUSES, SampleFile, finite, flags_of, group_key, reward_of, status_of

PREVIEW = 240


@dataclass
class Filters:
    """The page's filters; an empty one keeps every row. ``flagged``: rows a monitor flagged, or
    rows of a step the run's monitor warned about (``warned_steps``)."""

    step: int | None = None
    group: str | None = None
    status: set[str] = field(default_factory=set)
    component: str | None = None
    low: float | None = None
    high: float | None = None
    flagged: bool = False
    episodes: bool = False

    @classmethod
    def parse(cls, query: dict[str, str]) -> Filters:
        def num(key: str) -> float | None:
            text = (query.get(key) or "").strip()
            if not text:
                return None
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"{key} must be a number, got {text!r}") from None

        statuses = {s for s in (query.get("status") or "").split(",") if s}
        unknown = statuses - set(STATUSES)
        if unknown:
            raise ValueError(f"status must be among {', '.join(STATUSES)}; got {', '.join(sorted(unknown))}")
        step = num("step")
        return cls(step=None if step is None else int(step), group=query.get("group") or None, status=statuses,
                   component=query.get("component") or None, low=num("lo"), high=num("hi"),
                   flagged=query.get("flagged") in ("1", "true", "on"), episodes=query.get("episodes") in ("1", "true", "on"))

    def empty(self) -> bool:
        return (self.step is None and self.group is None and not self.status and self.low is None and self.high is None
                and not self.flagged and not self.episodes)


def matching(index: SampleFile, filters: Filters, warned_steps: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """The indices of the rows (indexed so far) that pass every filter, in file order."""
    n = index.count
    keep: range | list[int] = range(n)
    if filters.step is not None:
        keep = [i for i, s in enumerate(index.step[:n]) if s == filters.step]
    if filters.group is not None:
        members = set(index.group_members(filters.group))
        keep = [i for i in keep if i in members]
    if filters.status:
        codes = {STATUS_CODE[s] for s in filters.status}
        status = index.status
        keep = [i for i in keep if status[i] in codes]
    if filters.low is not None or filters.high is not None:
        if filters.component in (None, "", "reward"):
            values = index.reward
        elif filters.component in index.components:
            values = index.components[filters.component]
        else:
            raise ValueError(f"no component {filters.component!r}; the file has: {', '.join(sorted(index.components)) or 'none'}")
        low = -math.inf if filters.low is None else filters.low
        high = math.inf if filters.high is None else filters.high
        keep = [i for i in keep if low <= values[i] <= high]  # NaN (no value) fails both comparisons
    if filters.flagged:
        flagged, step = index.flagged, index.step
        keep = [i for i in keep if flagged[i] or step[i] in warned_steps]
    if filters.episodes:
        episode = index.episode
        keep = [i for i in keep if episode[i]]
    return list(keep)


def clip(text: Any, limit: int = PREVIEW) -> str:
    text = text if isinstance(text, str) else ("" if text is None else str(text))
    return text if len(text) <= limit else text[:limit] + "…"


def answer_preview(row: dict[str, Any]) -> str:
    """The completion, or an episode's last assistant text."""
    if isinstance(row.get("completion"), str):
        return clip(row["completion"])
    for message in reversed(row.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "assistant" and isinstance(message.get("content"), str):
            return clip(message["content"])
    return ""


def prompt_preview(row: dict[str, Any]) -> str:
    prompt = row.get("prompt")
    if isinstance(prompt, list):  # chat messages: the last user turn
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        prompt = users[-1] if users else ""
    if not prompt and isinstance(row.get("messages"), list):
        users = [m.get("content") for m in row["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        prompt = users[0] if users else ""
    return clip(prompt, 120)


def episode_shape(row: dict[str, Any]) -> dict[str, int] | None:
    messages = row.get("messages")
    if not isinstance(messages, list):
        return None
    assistants = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    calls = sum(len(m.get("tool_calls") or []) for m in assistants)
    return {"turns": len(assistants), "tool_calls": calls, "messages": len(messages)}


def summary(index: int, row: dict[str, Any]) -> dict[str, Any]:
    """One table line of a row."""
    components = row.get("components") if isinstance(row.get("components"), dict) else {}
    return {"index": index, "step": row.get("step"), "group": group_key(row), "status": status_of(row),
            "reward": finite(reward_of(row)), "components": components, "prompt": prompt_preview(row),
            "answer": answer_preview(row), "episode": episode_shape(row), "flags": flags_of(row),
            "advantage": row.get("advantage")}


def grpo_advantages(rewards: list[float | None]) -> list[float | None]:
    """GRPO's (r - mean) / (std + 1e-6) over the members that have a reward, population std (the
    trainer's default and `payoff rescore`'s); None for a member without one."""
    scored = [r for r in rewards if r is not None]
    if not scored:
        return [None] * len(rewards)
    mean = sum(scored) / len(scored)
    std = math.sqrt(sum((r - mean) ** 2 for r in scored) / len(scored))
    return [None if r is None else (r - mean) / (std + 1e-6) for r in rewards]


def group_view(index: SampleFile, key: str) -> dict[str, Any]:
    """A group's members (whole rows) side by side, each with its advantage: the one the row
    stored (the trainer's), else GRPO's computed from the members' rewards."""
    members = index.group_members(key)
    rows = index.rows(members)
    stored = [row.get("advantage") for row in rows]
    computed = grpo_advantages([finite(reward_of(row)) if status_of(row) == "ok" or "status" not in row else None for row in rows])
    use_stored = all(isinstance(a, (int, float)) for a in stored) and bool(stored)
    return {"group": key, "advantage_source": "stored" if use_stored else "grpo (computed from the members' rewards)",
            "members": [{"index": i, "advantage": a if use_stored else c, "row": row}
                        for i, row, a, c in zip(members, rows, stored, computed)]}
