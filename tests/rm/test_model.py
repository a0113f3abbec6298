"""The reward model's head and tokenisation on a real (tiny, random) Llama with SmolLM2's real
tokenizer: padding side does not change a reward, truncation keeps the answer's end, a LoRA
adapter and head save and reload to the same rewards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from payoff.models.reward_model import (
    ModelInfo,
    RenderSpec,
    RewardModel,
    add_lora,
    collate,
    load_reward_model,
    load_trunk,
    render,
    save_reward_model,
    truncate,
)
from payoff.rm.scoring import score_items
from tests.rl.toy import save_tiny

ITEMS = [("What is 2 + 2?", "4"), ("Name a colour.", "Blue, like the sky on a clear summer day."), ("Hi", "Hello there!")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def test_left_and_right_padding_give_the_same_rewards(tiny: Path) -> None:
    trunk, tokenizer = load_trunk(str(tiny))
    torch.manual_seed(0)
    model = RewardModel(trunk, heads=2).eval()
    spec = RenderSpec()
    sequences = [truncate(*render(tokenizer, p, c, spec), spec)[0] for p, c in ITEMS]
    with torch.no_grad():
        right = model(*collate(sequences, tokenizer.pad_token_id, "right"))
        left = model(*collate(sequences, tokenizer.pad_token_id, "left"))
        alone = torch.cat([model(*collate([s], tokenizer.pad_token_id)) for s in sequences])
    assert right.shape == (3, 2)
    torch.testing.assert_close(left, right, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(alone, right, rtol=1e-4, atol=1e-5)
    # pad == eos for SmolLM2: the reward must not be read at a pad-looking token of the text itself
    assert tokenizer.pad_token_id == tokenizer.eos_token_id


def test_truncation_keeps_the_end_of_the_answer() -> None:
    spec = RenderSpec(max_length=5)
    assert truncate([1, 2, 3, 4], [5, 6], spec) == ([2, 3, 4, 5, 6], True)  # the prompt loses its first token
    assert truncate([1, 2], [3, 4, 5, 6, 7, 8], spec) == ([3, 4, 5, 6, 7], True)  # the completion alone is too long
    assert truncate([1, 2], [3], spec) == ([1, 2, 3], False)
    assert truncate([1, 2, 3, 4], [5, 6], RenderSpec(max_length=5, truncation="right")) == ([1, 2, 3, 4, 5], True)


def test_chat_rendering_splits_prompt_from_answer(tiny: Path) -> None:
    _, tokenizer = load_trunk(str(tiny))
    prompt_ids, answer_ids = render(tokenizer, "2+2?", "4", RenderSpec())
    assert "assistant" in tokenizer.decode(prompt_ids) and tokenizer.decode(answer_ids).startswith("4")
    plain = render(tokenizer, "2+2? ", "4", RenderSpec(chat_template=False))
    assert tokenizer.decode(plain[0] + plain[1]) == "2+2? 4"


@pytest.mark.parametrize("lora", [True, False])
def test_saved_model_reloads_to_the_same_rewards(tiny: Path, tmp_path: Path, lora: bool) -> None:
    trunk, tokenizer = load_trunk(str(tiny))
    settings = {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]} if lora else None
    if lora:
        trunk = add_lora(trunk, settings)
    torch.manual_seed(1)
    model = RewardModel(trunk, heads=1)
    with torch.no_grad():  # move the adapter and head away from their initial values
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and ("lora_" in name or "head" in name or not lora):
                parameter.add_(0.05 * torch.randn_like(parameter))
    model.eval()
    spec = RenderSpec(max_length=64)
    before = score_items(model, tokenizer, ITEMS, spec)
    info = ModelInfo(str(tiny), 1, settings, spec, reward_mean=0.25, reward_std=2.0)
    save_reward_model(tmp_path / "model", model, tokenizer, info)
    assert (tmp_path / "model" / ("adapter" if lora else "trunk")).is_dir()
    loaded, tokenizer2, info2 = load_reward_model(tmp_path)  # a run folder: finds model/
    after = score_items(loaded, tokenizer2, ITEMS, info2.render)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert (info2.reward_mean, info2.reward_std, info2.render.max_length) == (0.25, 2.0, 64)
    unmerged, _, _ = load_reward_model(tmp_path, merge=False)
    torch.testing.assert_close(score_items(unmerged, tokenizer2, ITEMS, info2.render), before, rtol=1e-4, atol=1e-5)
