"""A payoff reward as a verifiers (0.4.0, ``verifiers.v1``) reward: async, one trace at a time.

verifiers scores a finished rollout by calling a task's ``@vf.reward`` methods, or functions
plugged through ``TaskConfig.rewards`` (``{"name": {"fn": "module:function"}}``), with the
arguments they name (``task``: the row's `TaskData`; ``trace``: the rollout), and sums their
weighted floats. `verifiers_reward` makes such a function from any payoff reward:

- the graded text is the rollout's answer, ``trace.last_reply`` (the root agent's reply, else the
  last sampled assistant message): never the prompt, a tool's output or a user turn; the tool
  calls the model made (every sampled assistant turn's) are ``meta["output_tools"]``;
- the prompt is the task's ``system_prompt`` and ``prompt``; the reference is the task's first
  field of ``reference``, ``answer``, ``solution``, ``ground_truth``, ``expected_answer`` (or the
  one named by ``reference_field``); the task's other fields are ``meta``;
- the sample is scored on this process's shared engine for the reward (`payoff.engine.shared`:
  worker processes and hard timeouts, one engine however many rollouts score at once), awaited
  without blocking verifiers' event loop;
- the outcome's components and status are recorded as trace metrics (``<name>/<component>``,
  ``<name>/status/<status>``: logged, never summed into the reward).

verifiers cannot take a missing score (``None``), so the policy is stated and chosen:
- ``abstain`` (default ``0.0``): the score an abstention gets; the metric
  ``<name>/status/abstain`` = 1 marks it. ``abstain=None`` raises instead (as an error does).
- ``error`` and ``timeout`` always raise `RewardOutcomeError`: verifiers records it on the trace
  as a task scoring error (the rollout is not ``ok``), so a broken reward is never a silent 0.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from payoff.core import REFERENCE_KEYS, Outcome, Reward, Sample
from payoff.engine.shared import ascore
from payoff.integrations.common import resolve_reward

REFERENCE_FIELDS = (*REFERENCE_KEYS, "expected_answer")
# TaskData's own fields that are not the row's data
_TASK_FIELDS = {"idx", "id", "name", "description", "prompt", "system_prompt", "image", "workdir", "agent_user", "skills",
                "network_allow", "network_block", "artifacts"}


class RewardOutcomeError(RuntimeError):
    """A payoff outcome with no score (error, timeout, or abstain under ``abstain=None``)."""

    def __init__(self, outcome: Outcome) -> None:
        why = outcome.info.get("error") or outcome.info.get("reason") or outcome.status
        super().__init__(f"payoff reward gave {outcome.status}: {why}")
        self.outcome = outcome


def _message(message: Any) -> dict[str, Any]:
    if isinstance(message, dict):
        return message
    return message.model_dump(mode="json", exclude_none=True)


def trace_sample(task: Any, trace: Any, reference_field: str | None = None) -> Sample:
    """The payoff Sample for a verifiers rollout (see the module's docstring)."""
    data = task.model_dump(mode="json") if hasattr(task, "model_dump") else dict(task or {})
    prompt = data.get("prompt") or ""
    if isinstance(prompt, list):
        prompt = [_message(m) for m in prompt]
    if data.get("system_prompt"):
        prompt = [{"role": "system", "content": data["system_prompt"]},
                  *(prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}])]
    fields = [reference_field] if reference_field else REFERENCE_FIELDS
    reference = next((data[f] for f in fields if data.get(f) is not None), None)
    meta = {k: v for k, v in data.items() if k not in _TASK_FIELDS and k not in fields}
    calls = [call for reply in trace.assistant_messages for call in (getattr(reply, "tool_calls", None) or [])]
    if calls:
        meta["output_tools"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                if hasattr(c, "arguments") else _message(c) for c in calls]
    return Sample(completion=trace.last_reply, prompt=prompt, reference=reference, meta=meta)


def verifiers_reward(reward: str | Reward | None = None, *, name: str | None = None, abstain: float | None = 0.0,
                     reference_field: str | None = None, workers: int | None = None,
                     timeout_s: float | None = None) -> Callable[..., Awaitable[float]]:
    """An async verifiers reward function ``(task, trace) -> float`` scoring with ``reward``
    (a name, ``module:function``, a rubric ``.toml``, or a Reward; default ``$PAYOFF_REWARD`` or
    ``math``). Plug it with ``TaskConfig(rewards={"correct": {"fn": "my_rewards.py:correct"}})``
    where ``my_rewards.py`` holds ``correct = verifiers_reward("math")``, or call it from a
    ``@vf.reward`` method: ``return await correct(self.data, trace)``."""
    resolved = resolve_reward(reward)
    label = name or resolved.name
    if abstain is not None:
        abstain = float(abstain)

    async def payoff_reward(task: Any, trace: Any) -> float:
        sample = trace_sample(task, trace, reference_field)
        [outcome] = await ascore([sample], resolved, workers=workers, timeout_s=timeout_s)
        for component, value in outcome.components.items():
            trace.record_metric(f"{label}/{component}", value)
        trace.record_metric(f"{label}/status/{outcome.status}", 1.0)
        if outcome.is_ok:
            return float(outcome.score)  # type: ignore[arg-type]
        if outcome.status == "abstain" and abstain is not None:
            return abstain
        raise RewardOutcomeError(outcome)

    payoff_reward.__name__ = label
    payoff_reward.__qualname__ = label
    return payoff_reward
