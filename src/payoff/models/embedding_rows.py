"""The input embedding's rows a training run looks up, trained apart from the rest.

A reward model's or PRM's trunk reads its input embedding only by lookup (no output head shares
it), so a row that no training sequence looks up gets a zero gradient at every step, and with no
weight decay AdamW leaves it exactly where it was: its moments stay 0, and so does its update.
Yet a dense embedding gradient is the whole vocabulary x width (49,152 x 576 floats, 113 MB for
SmolLM2): zero-filled, accumulated, clipped and stepped through AdamW with its two moments in
every step, for the few thousand rows a data set uses (29 in the PRM benchmark's arithmetic).
`train_used_rows` swaps the embedding for `TrainedRows`, whose only trained parameter is those
rows, with the rest frozen: the same updates, less work and 340 MB less (docs/prm.md). The
trainer folds the rows back (`fold_rows`) before it evaluates or saves the model, so the model
saved is an ordinary one; its checkpoints hold the trained rows, not the frozen table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F


class TrainedRows(torch.nn.Module):
    """An embedding whose ``rows`` are the trained parameter ``trained``; the table ``weight`` is
    frozen. An id outside ``rows`` (a held-out token) reads the table."""

    def __init__(self, embedding: torch.nn.Embedding, rows: list[int]) -> None:
        super().__init__()
        object.__setattr__(self, "original", embedding)  # not a submodule: its weight is ``weight``
        self.weight = embedding.weight
        self.weight.requires_grad_(False)
        self.rows = torch.tensor(rows, dtype=torch.long)
        self.trained = torch.nn.Parameter(embedding.weight.detach()[self.rows.to(self.weight.device)].clone())
        # a plain tensor, not a buffer: DDP would broadcast a buffer before every forward
        self.slot = torch.full((embedding.num_embeddings,), -1, dtype=torch.long)
        self.slot[self.rows] = torch.arange(len(rows))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.slot.device != input_ids.device:
            self.slot = self.slot.to(input_ids.device)
        slots = self.slot[input_ids]
        own = F.embedding(slots.clamp(min=0), self.trained)
        # always both lookups (a few rows of width each): asking whether every id is a trained
        # row would wait on the device
        return torch.where((slots >= 0).unsqueeze(-1), own, F.embedding(input_ids, self.weight))


def train_used_rows(trunk: Any, token_ids: Iterable[int], weight_decay: float) -> int:
    """Swap ``trunk``'s input embedding for `TrainedRows` over ``token_ids`` (every id the training
    loop looks up, padding included) where that changes no update: no weight decay (it would move
    every row), a plain `torch.nn.Embedding` that trains, and no other module reading its weight
    (a tied output head). Returns the rows trained, or 0 where the embedding is left as it was."""
    embedding = trunk.get_input_embeddings()
    plain = type(embedding) is torch.nn.Embedding and embedding.max_norm is None and not embedding.scale_grad_by_freq \
        and not embedding.sparse
    if weight_decay or not plain or not embedding.weight.requires_grad:
        return 0
    if sum(p is embedding.weight for _, p in trunk.named_parameters(remove_duplicate=False)) != 1:
        return 0
    # the padding row's gradient is zero by construction: it stays in the frozen table
    rows = sorted(set(token_ids) - {embedding.padding_idx})
    if not rows or len(rows) >= embedding.num_embeddings:
        return 0
    trunk.set_input_embeddings(TrainedRows(embedding, rows))
    return len(rows)


def fold_rows(trunk: Any) -> None:
    """The trained rows written back into the table, and the trunk's own embedding back in place
    (trainable, as it was); a no-op where `train_used_rows` did not swap it."""
    rows = trunk.get_input_embeddings()
    if not isinstance(rows, TrainedRows):
        return
    with torch.no_grad():
        rows.weight[rows.rows.to(rows.weight.device)] = rows.trained
    rows.weight.requires_grad_(True)
    trunk.set_input_embeddings(rows.original)
