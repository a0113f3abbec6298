"""A process reward model: the reward model's trunk and head (`payoff.models.reward_model.RewardModel`),
read at every step's last token instead of only the sequence's last, as a logit of P(step is
right). Saved and loaded like a reward model, with ``kind = "prm"`` and the step settings in
``prm.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from payoff.heap import held_heap
from payoff.models.reward_model import RewardModel, collate


class ProcessRewardModel(RewardModel):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: list[list[int]] | None = None) -> Any:
        """With ``positions``: `step_logits` (through forward, so a DDP wrapper sees the call);
        without: the last-token reward, as a reward model."""
        if positions is None:
            return super().forward(input_ids, attention_mask)
        return self.step_logits(input_ids, attention_mask, positions)

    def step_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: list[list[int]]) -> list[torch.Tensor]:
        """One 1-D tensor of logits per row, one logit per step position (right padding)."""
        hidden = self.hidden(input_ids, attention_mask)
        out = []
        for row, where in enumerate(positions):
            picked = hidden[row, torch.tensor(where, dtype=torch.long, device=hidden.device)] if where else hidden[row, :0]
            out.append(self.head(picked.to(self.head.weight.dtype))[:, 0])
        return out


def score_steps(model: ProcessRewardModel, sequences: list[list[int]], positions: list[list[int]], pad_id: int,
                batch_size: int = 8) -> list[list[float]]:
    """P(step right) for every step of every sequence, batched by length."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out: list[list[float]] = [[] for _ in sequences]
    was = model.training
    model.eval()
    with torch.no_grad(), held_heap():  # each batch reuses the memory the one before freed (payoff.heap)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, mask = collate([sequences[i] for i in chunk], pad_id)
            for i, logits in zip(chunk, model(ids, mask, [positions[i] for i in chunk])):
                out[i] = torch.sigmoid(logits.float()).tolist()
    model.train(was)
    return out


def write_prm_info(folder: Path, settings: dict[str, Any]) -> None:
    (folder / "prm.json").write_text(json.dumps(settings, indent=1))


def load_prm(path: str | Path) -> tuple[ProcessRewardModel, Any, dict[str, Any]]:
    from payoff.models.reward_model import load_reward_model, model_folder

    folder = model_folder(path)
    model, tokenizer, _ = load_reward_model(folder)
    prm = ProcessRewardModel.__new__(ProcessRewardModel)
    prm.__dict__.update(model.__dict__)  # same trunk and head, read per step
    settings = json.loads((folder / "prm.json").read_text()) if (folder / "prm.json").is_file() else {}
    return prm.eval(), tokenizer, settings
