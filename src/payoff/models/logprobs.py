"""Per-token log-probabilities of sampled completions under a model, in micro-batches.

Prompts are left-padded and completions right-padded, so every completion starts at the same
column; logits are computed only for the completion positions (``logits_to_keep``), which skips
the vocabulary projection over the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor


@dataclass
class TokenBatch:
    input_ids: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    completion_ids: Tensor  # [N, T]
    completion_mask: Tensor  # [N, T]

    def to(self, device: Any) -> TokenBatch:
        return TokenBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


def pack(prompt_ids: Sequence[list[int]], completion_ids: Sequence[list[int]], pad_id: int,
         loss_masks: Sequence[list[int] | None] | None = None) -> TokenBatch:
    """Left-padded prompts, right-padded completions. ``completion_mask`` marks the tokens that
    carry loss: every completion token, or where ``loss_masks`` (per sample, None: all) is 1 (an
    episode's environment-written tokens are context, attended to but never trained on)."""
    width_p = max(len(p) for p in prompt_ids)
    width_c = max(1, max(len(c) for c in completion_ids))
    n = len(prompt_ids)
    ids = torch.full((n, width_p + width_c), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width_p + width_c), dtype=torch.long)
    comp = torch.full((n, width_c), pad_id, dtype=torch.long)
    comp_mask = torch.zeros((n, width_c), dtype=torch.float32)
    for row, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        ids[row, width_p - len(p):width_p] = torch.tensor(p, dtype=torch.long)
        mask[row, width_p - len(p):width_p] = 1
        if c:
            ids[row, width_p:width_p + len(c)] = torch.tensor(c, dtype=torch.long)
            mask[row, width_p:width_p + len(c)] = 1
            comp[row, :len(c)] = torch.tensor(c, dtype=torch.long)
            chosen = loss_masks[row] if loss_masks is not None else None
            comp_mask[row, :len(c)] = 1.0 if chosen is None else torch.tensor(chosen, dtype=torch.float32)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return TokenBatch(ids, mask, positions, comp, comp_mask)


def model_device(model: Any) -> torch.device:
    """Where ``model``'s weights are: batches are packed on the CPU and moved there."""
    return next(model.parameters()).device


def token_logprobs(model: Any, batch: TokenBatch, temperature: float = 1.0, with_entropy: bool = False) -> tuple[Tensor, Tensor | None]:
    """``[N, T]`` log pi(token) for each completion token (0 at padding), and optionally the
    per-position entropy, on the model's device. Gradients flow when called outside ``no_grad``."""
    batch = batch.to(model_device(model))  # a no-op on the CPU
    width_c = batch.completion_ids.shape[1]
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                logits_to_keep=width_c + 1, use_cache=False)
    logits = out.logits[:, :-1, :].float()  # position t predicts token t + 1
    if temperature and temperature != 1.0:
        logits = logits / temperature
    chosen = logits.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)
    logz = torch.logsumexp(logits, dim=-1)
    logp = (chosen - logz) * batch.completion_mask
    entropy = None
    if with_entropy:
        with torch.no_grad():
            probs = torch.softmax(logits, dim=-1)
            entropy = (logz - (probs * logits).sum(-1)) * batch.completion_mask
    return logp, entropy


@torch.no_grad()
def batched_logprobs(model: Any, prompt_ids: Sequence[list[int]], completion_ids: Sequence[list[int]], pad_id: int,
                     micro_batch: int, temperature: float = 1.0,
                     loss_masks: Sequence[list[int] | None] | None = None) -> list[Tensor]:
    """log-probabilities per sample (a 1-D tensor over its completion tokens; 0 where its loss
    mask is 0), without gradients, on the CPU (where per-sample results are kept)."""
    result: list[Tensor] = []
    for start in range(0, len(prompt_ids), micro_batch):
        masks = loss_masks[start:start + micro_batch] if loss_masks is not None else None
        batch = pack(prompt_ids[start:start + micro_batch], completion_ids[start:start + micro_batch], pad_id, masks)
        logp, _ = token_logprobs(model, batch, temperature)
        logp = logp.cpu()  # one copy per micro-batch from an accelerator; on the CPU the same tensor
        for row, c in enumerate(completion_ids[start:start + micro_batch]):
            result.append(logp[row, :len(c)].clone())
    return result


def pad_rows(rows: Sequence[Tensor], width: int) -> Tensor:
    out = torch.zeros((len(rows), width), dtype=torch.float32)
    for index, row in enumerate(rows):
        out[index, :row.shape[0]] = row[:width]
    return out
