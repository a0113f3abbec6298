"""The ``prm`` reward: a trained process reward model's per-step scores, aggregated.

``get_reward("prm").configure(path=RUN_DIR, aggregate="min")``: the completion is split into
steps (the model's separator; blank lines by default), each step's P(right) is read at its last
token, and the score is their ``min`` (the weakest step), ``product``, ``last`` or ``mean``.
Every step's score is in ``components`` (``step_k``) and the list in ``info["step_scores"]``, so
a Rubric can shape them (Clip or Delta, against PRM hacking by repeated correct steps) and
`payoff select` can aggregate them. A completion with no step scores 0 with ``info["steps"] = 0``.
Batched like ``reward_model``: loaded once per worker, a batch per forward pass.
"""

from __future__ import annotations

import threading
from typing import Any

from payoff.core import Outcome, Sample, batched_reward

_LOADED: dict[str, Any] = {}
_LOCK = threading.Lock()


def _model(path: str) -> tuple[Any, Any, dict[str, Any]]:
    from payoff.models.reward_model import model_folder
    from payoff.prm.model import load_prm

    key = str(model_folder(path).resolve())
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = load_prm(path)
        return _LOADED[key]


@batched_reward(name="prm", batch_size=8, timeout_s=300.0)
def prm(samples: list[Sample], path: str = "", aggregate: str = "min", steps: str = "double_newline") -> list[Outcome]:
    """A trained process reward model (`payoff prm train`): per-step P(right), aggregated by
    min / product / last / mean."""
    from payoff.prm.model import score_steps
    from payoff.prm.steps import encode_steps, split_steps, step_ends
    from payoff.select.methods import aggregate_steps

    if not path:
        raise ValueError("prm needs path= (a `payoff prm train` run folder)")
    if aggregate not in ("min", "product", "last", "mean"):
        raise ValueError("aggregate must be min, product, last or mean")
    model, tokenizer, settings = _model(path)
    separator = settings.get("separator", "\n\n")
    split = [split_steps(s.completion, steps) for s in samples]
    encoded = [encode_steps(tokenizer, s.prompt, parts, separator, settings.get("chat_template", True),
                            settings.get("max_length", 1024)) for s, parts in zip(samples, split)]
    scores = score_steps(model, [ids for ids, _ in encoded], [positions for _, positions in encoded], int(tokenizer.pad_token_id),
                         batch_size=len(samples))
    outcomes = []
    for sample, parts, step_scores in zip(samples, split, scores):
        components = {f"step_{k}": value for k, value in enumerate(step_scores)}
        # step_ends: where each scored step ends in the completion (characters), for step rewards in RL.
        ends = step_ends(sample.completion, parts)[: len(step_scores)]
        outcomes.append(Outcome.ok(aggregate_steps(step_scores, aggregate), components, step_scores=step_scores,
                                   step_rewards=step_scores, step_ends=ends, steps=len(step_scores)))
    return outcomes
