"""Reward-free group rewards: agreement within the samples of one prompt (test-time RL)."""

from __future__ import annotations

from typing import Any

from payoff.core import Outcome, Sample, group_reward
from payoff.rewards.math.compare import equivalent
from payoff.rewards.math.extract import extract_answer
from payoff.rewards.math.verifier import parse_answer, squash


def answer_clusters(samples: list[Sample]) -> list[int | None]:
    """Cluster the samples' final answers by mathematical equivalence; each sample gets its
    cluster id (in order of first appearance), or None if no answer could be read."""
    representatives: list[tuple[Any, str]] = []
    labels: list[int | None] = []
    for sample in samples:
        found = extract_answer(sample.completion, last_number=True)
        if found is None or not found.text.strip():
            labels.append(None)
            continue
        tree, normal, _ = parse_answer(found.text)
        squashed = squash(normal)
        label = None
        for index, (rep_tree, rep_text) in enumerate(representatives):
            if rep_text == squashed or (tree is not None and rep_tree is not None and equivalent(rep_tree, tree)[0]):
                label = index
                break
        if label is None:
            representatives.append((tree, squashed))
            label = len(representatives) - 1
        labels.append(label)
    return labels


@group_reward(name="majority_vote")
def majority_vote(samples: list[Sample]) -> list[Outcome]:
    """TTRL (Zuo et al. 2025) / Co-Reward: the group's most common final answer is the pseudo-label;
    a sample scores 1 if its answer is equivalent to it, else 0. Ties go to the answer seen first.
    No reference is used."""
    labels = answer_clusters(samples)
    counts: dict[int, int] = {}
    for label in labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return [Outcome.ok(0.0, {"majority_share": 0.0}, rule="no_answers") for _ in samples]
    winner = max(counts, key=lambda k: (counts[k], -k))
    share = counts[winner] / len(samples)
    return [Outcome.ok(float(label == winner), {"majority_share": share}) for label in labels]


@group_reward(name="empo")
def empo(samples: list[Sample]) -> list[Outcome]:
    """EMPO (Zhang et al. 2025, semantic entropy minimisation): a sample's reward is the share of
    the group whose answer falls in its answer's equivalence cluster, p(c); no answer scores 0."""
    labels = answer_clusters(samples)
    sizes: dict[int, int] = {}
    for label in labels:
        if label is not None:
            sizes[label] = sizes.get(label, 0) + 1
    return [Outcome.ok(sizes[label] / len(samples) if label is not None else 0.0) for label in labels]
