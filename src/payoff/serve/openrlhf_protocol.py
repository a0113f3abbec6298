"""OpenRLHF's remote reward protocol: ``POST /get_reward`` with ``{"query": [...], "prompts":
[...], "labels": [...]}``, answered with ``{"rewards", "scores", "extra_logs"}``. Used by the
server and by the OpenRLHF reward-function adapter (`payoff.integrations.openrlhf`).

OpenRLHF sends each query as the decoded prompt + response and the prompt as the dataset gave it;
the response is what follows the prompt. When the query does not start with its prompt (OpenRLHF
truncates a prompt longer than its budget from the left, so the query holds only the prompt's
end), the response cannot be told apart from the prompt: that sample is an ``error`` outcome that
says so, never the whole query graded as the model's text (the prompt may hold the answer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from payoff.core import Outcome, Sample

UNSPLIT = ("cannot tell the response from its prompt: the query does not start with the prompt (OpenRLHF "
           "truncates a long prompt from the left, leaving only its end in the query), and grading the whole "
           "query would grade the prompt's text as the model's")


def split_response(query: str, prompt: str | None) -> str | None:
    """The response in `query`: what follows `prompt`; the whole query when no prompt is given;
    None when the query does not start with the prompt."""
    if not prompt:
        return query
    if query.startswith(prompt):
        return query[len(prompt):]
    return None


def protocol_samples(query: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[Any] | None) -> list[Sample | Outcome]:
    """One Sample per query, or an error Outcome where the response cannot be split off."""
    if prompts is not None and len(prompts) != len(query):
        raise ValueError(f"'prompts' has {len(prompts)} items but 'query' has {len(query)}")
    if labels is not None and len(labels) != len(query):
        raise ValueError(f"'labels' has {len(labels)} items but 'query' has {len(query)}")
    items: list[Sample | Outcome] = []
    for i, q in enumerate(query):
        prompt = prompts[i] if prompts else None
        response = split_response(q, prompt)
        if response is None:
            items.append(Outcome.error(UNSPLIT, query_chars=len(q), prompt_chars=len(prompt or "")))
        else:
            items.append(Sample(completion=response, prompt=prompt or "", reference=labels[i] if labels else None))
    return items


def merge(items: Sequence[Sample | Outcome], scored: Sequence[Outcome]) -> list[Outcome]:
    """`items` with each Sample replaced, in order, by its outcome in `scored`."""
    outcomes = iter(scored)
    return [item if isinstance(item, Outcome) else next(outcomes) for item in items]


def protocol_response(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """``rewards`` (what OpenRLHF optimises: 0.0 where the outcome is not ok, as it needs a
    number), ``scores`` (the same), ``extra_logs`` (a 0/1 flag per failure status, which
    OpenRLHF logs) and ``outcomes`` (the full outcomes, reasons included; OpenRLHF ignores it)."""
    rewards = [float(o.score) if o.status == "ok" else 0.0 for o in outcomes]
    logs: dict[str, Any] = {f"payoff_{s}": [float(o.status == s) for o in outcomes] for s in ("abstain", "error", "timeout")}
    return {"rewards": rewards, "scores": rewards, "extra_logs": logs, "outcomes": [o.to_dict() for o in outcomes]}
