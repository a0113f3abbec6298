"""The reward model's trunk runs without its mask on a right-padded batch when the trunk is causal:
the states at real positions, and so the rewards and step logits, are the same as with the mask."""

from __future__ import annotations

import torch
from transformers import AutoModel, LlamaConfig

from payoff.models.reward_model import RewardModel, collate
from payoff.prm.model import ProcessRewardModel


def _trunk(architectures: list[str]) -> torch.nn.Module:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, architectures=architectures)
    return AutoModel.from_config(config).eval()


SEQUENCES = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [20, 21, 22, 23, 24]]


def test_right_padding_skips_the_mask_and_changes_nothing() -> None:
    model = ProcessRewardModel(_trunk(["LlamaForCausalLM"]), 1)
    assert model.causal
    calls = []
    model.trunk.register_forward_pre_hook(lambda _, args, kwargs: calls.append(set(kwargs)), with_kwargs=True)
    right = collate(SEQUENCES, pad_id=0, side="right")
    left = collate(SEQUENCES, pad_id=0, side="left")
    with torch.no_grad():
        fast = model(*right)
        masked = model(*left)
        positions = [[2, len(s) - 1] for s in SEQUENCES]
        steps_fast = model(*right, positions)
        model.causal = False  # the masked path on the same right-padded batch
        steps_masked = model(*right, positions)
    assert calls[0] == {"input_ids"} and "attention_mask" in calls[1]  # right: no mask; left: the mask
    torch.testing.assert_close(fast, masked, atol=1e-5, rtol=1e-5)
    for a, b in zip(steps_fast, steps_masked):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_trunk_not_known_causal_keeps_its_mask() -> None:
    model = RewardModel(_trunk(["LlamaModel"]), 1)
    assert not model.causal
    calls = []
    model.trunk.register_forward_pre_hook(lambda _, args, kwargs: calls.append(set(kwargs)), with_kwargs=True)
    with torch.no_grad():
        model(*collate(SEQUENCES, pad_id=0))
    assert "attention_mask" in calls[0]
