"""Both answers of a batch of pairs in one forward pass, the tokens they share computed once.

The chosen and the rejected sequence of a pair are the same tokens up to where the answers differ
(the system prompt, the prompt and the chat template's assistant header: most of the tokens when
answers are short). In a causal model those tokens' keys and values do not depend on what follows
them, so `PairRewardModel` runs each pair's shared prefix once (left-padded, so every prefix ends at
the same column) and then both answers on top of it (right-padded; the prefix's keys and values
repeated for the pair's two rows). Gradients reach the prefix from both answers through its keys
and values: the rewards, the loss and the gradients are those of two whole sequences up to float
rounding (tests/rm/test_pairwise.py), for P + 2A tokens of compute and activations instead of
2(P + A). TRL's RewardTrainer runs the two whole sequences.

A pair's shared prefix stops one token short of the shorter sequence, so each answer keeps at
least one token to read its reward at. A micro-batch where some pair shares nothing runs as whole
sequences (`payoff.models.reward_model.collate`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from payoff.models.reward_model import RewardModel, collate


def shared_length(chosen: Sequence[int], rejected: Sequence[int]) -> int:
    """Tokens the two sequences share at the start, at most one short of the shorter one."""
    limit = min(len(chosen), len(rejected)) - 1
    n = 0
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    return n


class PairBatch:
    """A micro-batch of pairs laid out for `PairRewardModel`: ``prefix_ids`` [n, P] left-padded,
    ``answer_ids`` [2n, A] right-padded with rows (chosen 0, rejected 0, chosen 1, ...), and
    ``attention_mask`` [2n, P + A] over both parts; ``None`` prefix when some pair shares nothing
    (then ``answer_ids`` are the whole sequences, rows chosen 0..n-1 then rejected 0..n-1). Each
    part's width is rounded up to a ``multiple`` of tokens (`payoff.rm.config.RMOptimConfig`).
    ``shared``: the pairs' shared prefix lengths when the caller has them (`shared_length`); zeros
    lay out whole sequences (gradient checkpointing: transformers drops the prefix's key/value cache
    from a checkpointed layer)."""

    def __init__(self, chosen: Sequence[list[int]], rejected: Sequence[list[int]], pad_id: int, multiple: int = 1,
                 shared: Sequence[int] | None = None) -> None:
        self.n = len(chosen)
        if shared is None:
            shared = [shared_length(c, r) for c, r in zip(chosen, rejected)]
        if min(shared) == 0:
            self.prefix_ids = self.prefix_mask = None
            self.answer_ids, self.attention_mask = collate(list(chosen) + list(rejected), pad_id, multiple=multiple)
            return
        self.prefix_ids, self.prefix_mask = collate([c[:k] for c, k in zip(chosen, shared)], pad_id, side="left", multiple=multiple)
        answers = [side[k:] for c, r, k in zip(chosen, rejected, shared) for side in (c, r)]
        self.answer_ids, answer_mask = collate(answers, pad_id, multiple=multiple)
        self.attention_mask = torch.cat([self.prefix_mask.repeat_interleave(2, dim=0), answer_mask], dim=1)

    def padded_tokens(self) -> int:
        """Tokens of the padded inputs: what the forward's activations scale with."""
        prefix = self.prefix_ids.numel() if self.prefix_ids is not None else 0
        return prefix + self.answer_ids.numel()

    def to(self, device: torch.device | str) -> PairBatch:
        for name in ("prefix_ids", "prefix_mask", "answer_ids", "attention_mask"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        return self


class PairRewardModel(RewardModel):
    """A reward model (same weights, saved and loaded as one) whose forward also takes a
    `PairBatch`: then it returns the rewards [2n, heads], the n chosen rows then the n rejected.
    The pair path goes through ``forward`` so a DDP wrapper sees the call."""

    def forward(self, input_ids: torch.Tensor | PairBatch, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(input_ids, PairBatch):
            return super().forward(input_ids, attention_mask)
        batch = input_ids
        if batch.prefix_ids is None:
            return super().forward(batch.answer_ids, batch.attention_mask)
        return self._pair_rewards(batch)

    def _pair_rewards(self, batch: PairBatch) -> torch.Tensor:
        prefix_positions = (batch.prefix_mask.long().cumsum(-1) - 1).clamp(min=0)
        cache = self.trunk(input_ids=batch.prefix_ids, attention_mask=batch.prefix_mask, position_ids=prefix_positions,
                           use_cache=True).past_key_values
        cache.batch_repeat_interleave(2)  # row 2i is pair i's chosen answer, 2i + 1 its rejected one
        # positions continue from each row's own prefix length, so the left padding is invisible
        positions = (batch.attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, batch.prefix_ids.shape[1]:]
        hidden = self.trunk(input_ids=batch.answer_ids, attention_mask=batch.attention_mask, position_ids=positions,
                            past_key_values=cache, use_cache=True).last_hidden_state
        answer_mask = batch.attention_mask[:, batch.prefix_ids.shape[1]:].long()
        columns = torch.arange(answer_mask.shape[1], device=answer_mask.device)
        last = (answer_mask * columns).argmax(-1)
        rewards = self.head(hidden[torch.arange(hidden.shape[0], device=hidden.device), last].to(self.head.weight.dtype))
        return torch.cat([rewards[0::2], rewards[1::2]])
