"""`feedback`: any single-turn task as an episode of up to `tries` answers ("Try Again", unary
feedback). After a wrong answer the user says so and the policy answers again; the episode ends
at the first right answer or after `tries` answers. The episode's reward scores the final answer
with the task's reward; a reward that raises or gives no verdict (error, abstain, timeout) on an
answer is an environment failure (an ``error`` outcome), never a "that is not correct".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payoff.core import Sample
from payoff.envs.base import ToolEnv
from payoff.envs.runner import row_reference


@dataclass
class FeedbackEnv(ToolEnv):
    """Row: ``{"prompt": ..., "reference": ...}``; `reward` judges each answer (right when its
    Outcome is ok with a score of at least `threshold`)."""

    tries: int = 3
    threshold: float = 1.0
    retry_message: str = "That is not correct. Please try again."
    attempts: int = 0

    def reset(self, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self.reward is None:
            raise ValueError("the feedback environment needs the task's reward")
        self.attempts = 0
        self.tools = []
        return super().reset(row)

    def finish(self, message: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        assert self.reward is not None
        self.attempts += 1
        content = message.get("content")
        answer = Sample(completion=content if isinstance(content, str) else "", reference=row_reference(self.row),
                        meta=dict(self.row.get("meta") or {}))
        outcome = self.reward.score_one(answer)
        if not outcome.is_ok:  # no verdict is not "wrong": telling the policy so would be a lie
            raise RuntimeError(f"the task's reward gave {outcome.status} on attempt {self.attempts}: {outcome.info}")
        right = outcome.score is not None and outcome.score >= self.threshold
        if right or self.attempts >= self.tries:
            return [], True
        left = self.tries - self.attempts
        return [{"role": "user", "content": f"{self.retry_message} ({left} {'try' if left == 1 else 'tries'} left)"}], False
