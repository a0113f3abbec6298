"""Answer clusters for voting: two candidates vote together when payoff's math equivalence says
their final answers are equal (1/2, 0.5 and \\frac{1}{2} are one answer), not when their strings
match. A candidate whose final answer cannot be found has no cluster (``None``) and no vote."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def final_answer(completion: str) -> tuple[str, Any] | None:
    """(normalised text, parse tree or None) of the completion's final answer, or None."""
    from payoff.rewards.math.extract import extract_answer
    from payoff.rewards.math.verifier import parse_answer, squash

    found = extract_answer(completion)
    if found is None or not found.text.strip():
        return None
    tree, normal, _ = parse_answer(found.text)
    return squash(normal), tree


def cluster_answers(completions: Sequence[str]) -> list[int | None]:
    """A cluster id per completion (ids in order of first appearance), None for no answer."""
    from payoff.rewards.math.compare import equivalent

    representatives: list[tuple[str, Any]] = []
    out: list[int | None] = []
    for completion in completions:
        answer = final_answer(completion)
        if answer is None:
            out.append(None)
            continue
        text, tree = answer
        for number, (rep_text, rep_tree) in enumerate(representatives):
            if text == rep_text or (tree is not None and rep_tree is not None and _same(rep_tree, tree, equivalent)):
                out.append(number)
                break
        else:
            representatives.append(answer)
            out.append(len(representatives) - 1)
    return out


def _same(a: Any, b: Any, equivalent: Any) -> bool:
    try:
        return bool(equivalent(a, b)[0])
    except Exception:  # noqa: BLE001 - an answer the comparer cannot handle is its own cluster
        return False
