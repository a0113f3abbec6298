"""Scoring many (prompt, completion) pairs with a reward model: tokenised once, sorted by length so
each forward pass pads little, batched, under ``torch.no_grad``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from payoff.core import Text
from payoff.heap import held_heap
from payoff.models.reward_model import RenderSpec, RewardModel, collate, render, truncate


def encode(tokenizer: Any, items: Sequence[tuple[Text, Text]], spec: RenderSpec) -> tuple[list[list[int]], list[bool]]:
    """Token ids of every item (truncated by the spec's policy) and whether each was truncated."""
    sequences, cut = [], []
    for prompt, completion in items:
        ids, was_cut = truncate(*render(tokenizer, prompt, completion, spec), spec)
        sequences.append(ids or [int(tokenizer.eos_token_id)])  # an empty text still gets a reward
        cut.append(was_cut)
    return sequences, cut


@torch.no_grad()
def score_sequences(model: RewardModel, sequences: list[list[int]], pad_id: int, batch_size: int = 16) -> torch.Tensor:
    """Rewards [len(sequences), heads] in input order."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    heads = model.head.out_features
    out = torch.zeros((len(sequences), heads))
    was_training = model.training
    model.eval()
    try:
        with held_heap():  # each batch reuses the memory the one before freed (payoff.heap)
            for start in range(0, len(order), batch_size):
                chosen = order[start:start + batch_size]
                ids, mask = collate([sequences[i] for i in chosen], pad_id)
                out[chosen] = model(ids, mask).float().cpu()
    finally:
        model.train(was_training)
    return out


def score_items(model: RewardModel, tokenizer: Any, items: Sequence[tuple[Text, Text]], spec: RenderSpec,
                batch_size: int = 16) -> torch.Tensor:
    sequences, _ = encode(tokenizer, items, spec)
    return score_sequences(model, sequences, int(tokenizer.pad_token_id), batch_size)
