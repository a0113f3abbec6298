"""Training only the embedding rows a run looks up (`payoff.models.embedding_rows`) changes no
update: the same steps as the dense table, rows never looked up bit for bit where they were."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModel, LlamaConfig

from payoff.models.embedding_rows import TrainedRows, fold_rows, train_used_rows
from payoff.models.reward_model import collate
from payoff.prm.model import ProcessRewardModel
from payoff.runs.optim import adamw, clipped_step

SEQUENCES = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [20, 21, 6, 23, 24]]
PAD = 0


def _model(pad_idx: int | None = None) -> ProcessRewardModel:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, pad_token_id=pad_idx)
    return ProcessRewardModel(AutoModel.from_config(config), 1).train()


def _train(model: ProcessRewardModel, steps: int = 4) -> list[float]:
    optimizer = adamw([p for p in model.parameters() if p.requires_grad], 1e-2)
    ids, mask = collate(SEQUENCES, PAD)
    positions = [[len(s) - 3, len(s) - 1] for s in SEQUENCES]
    norms = []
    for step in range(steps):
        logits = torch.cat(model(ids, mask, positions))
        target = torch.tensor([1.0, 0.0] * len(SEQUENCES)) if step % 2 else torch.tensor([0.0, 1.0] * len(SEQUENCES))
        torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
        norms.append(clipped_step(optimizer, [p for p in model.parameters() if p.requires_grad], 0.5))
        optimizer.zero_grad(set_to_none=True)
    return norms


def test_trained_rows_take_the_dense_tables_steps() -> None:
    dense, rows = _model(), _model()
    before = rows.trunk.get_input_embeddings().weight.detach().clone()
    used = sorted({t for s in SEQUENCES for t in s} | {PAD})
    assert train_used_rows(rows.trunk, [t for s in SEQUENCES for t in s] + [PAD], weight_decay=0.0) == len(used)
    assert isinstance(rows.trunk.get_input_embeddings(), TrainedRows)
    trained = [n for n, p in rows.named_parameters() if p.requires_grad and "embed" in n]
    assert trained == ["trunk.embed_tokens.trained"]  # the optimiser sees the rows, not the table

    assert _train(rows) == pytest.approx(_train(dense), rel=1e-5)  # clipped every step: the norms match too
    fold_rows(rows.trunk)
    table = rows.trunk.get_input_embeddings()
    assert type(table) is torch.nn.Embedding and table.weight.requires_grad
    dense_table = dense.trunk.get_input_embeddings().weight.detach()
    torch.testing.assert_close(table.weight.detach(), dense_table, rtol=1e-5, atol=1e-6)
    unused = torch.ones(97, dtype=torch.bool)
    unused[used] = False
    assert torch.equal(table.weight.detach()[unused], before[unused])  # never looked up: not moved at all
    assert not torch.equal(table.weight.detach()[used], before[used])
    for (name, a), (_, b) in zip(rows.named_parameters(), dense.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_an_id_outside_the_rows_reads_the_table() -> None:
    model = _model()
    table = copy.deepcopy(model.trunk.get_input_embeddings())
    train_used_rows(model.trunk, [5, 6, 7], weight_decay=0.0)
    ids = torch.tensor([[5, 40, 6], [90, 7, 5]])
    torch.testing.assert_close(model.trunk.get_input_embeddings()(ids), table(ids), rtol=0, atol=0)


def test_the_padding_row_stays_frozen_as_nn_embedding_keeps_it() -> None:
    model = _model(pad_idx=PAD)
    assert train_used_rows(model.trunk, [PAD, 5, 6], weight_decay=0.0) == 2
    assert model.trunk.get_input_embeddings().rows.tolist() == [5, 6]


@pytest.mark.parametrize("case", ["weight decay", "frozen", "tied"])
def test_left_as_it_was_where_rows_would_change_an_update(case: str) -> None:
    model = _model()
    embedding = model.trunk.get_input_embeddings()
    decay = 0.0
    if case == "weight decay":
        decay = 0.01  # it moves every row, looked up or not
    elif case == "frozen":
        embedding.weight.requires_grad_(False)  # e.g. LoRA
    else:
        model.trunk.tied = torch.nn.Linear(32, 97, bias=False)
        model.trunk.tied.weight = embedding.weight  # an output head reads every row
    assert train_used_rows(model.trunk, [5, 6], weight_decay=decay) == 0
    assert model.trunk.get_input_embeddings() is embedding
    fold_rows(model.trunk)  # nothing to fold: a no-op
    assert model.trunk.get_input_embeddings() is embedding
