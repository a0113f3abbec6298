"""Which rewards need prompt groups, and refusing them where a trainer gives none."""

from __future__ import annotations

from typing import Any


def group_dependence(reward: Any) -> str | None:
    """Why `reward` needs the samples of one prompt together (None if it does not): a group
    reward (majority vote, BRPO, GRPO-lambda), or a Rubric that normalises per group or runs a
    shaper that buckets groups (LASER-D)."""
    if getattr(reward, "is_group", False):
        return f"{reward.name} is a group reward (it scores the samples of one prompt together)"
    options = getattr(reward, "options", None)
    if options is not None:
        if "group" in (getattr(options, "normalize", None), getattr(options, "normalize_terms", None)):
            return f"{reward.name} normalises per prompt group"
        for shaper in getattr(options, "shapers", []) or []:
            if type(shaper).__name__ == "LaserDShaper":
                return f"{reward.name} runs LASER-D, which buckets prompt groups by accuracy"
    return None


def refuse_group_dependence(reward: Any, caller: str) -> None:
    """Raise ValueError when `reward` needs groups: `caller` hands over one sample at a time (or
    no group ids), and groups of one would silently change what the reward means."""
    reason = group_dependence(reward)
    if reason:
        raise ValueError(f"{caller} gives no prompt groups, but {reason}. Score it where groups exist "
                         "(payoff.score with 'group' set, payoff serve, payoff rl train, or the TRL adapter).")
