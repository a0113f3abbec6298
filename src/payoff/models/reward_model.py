"""A Bradley-Terry reward model: a causal LM's trunk and a scalar head (K heads for an ensemble),
read at each sequence's last real token.

Where the reward is read is the classic bug: transformers' sequence-classification heads find
"the last token" through the pad token id, which goes wrong when pad == eos (SmolLM2, Llama) or
under left padding. Here the position comes from the attention mask, and position ids are rebuilt
from the mask too, so a left-padded and a right-padded batch give the same rewards.

On disk (``RUN_DIR/model``): ``rm.json`` (base model, heads, LoRA, rendering, the held-out reward
mean and std), ``head.pt``, the trunk as a LoRA adapter (``adapter/``) or whole (``trunk/``), and
the tokenizer.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from payoff.core import Text
from payoff.models.matmul import fast_fp32_matmul

FORMAT_VERSION = 1


@dataclass
class RenderSpec:
    """How a (prompt, completion) becomes tokens, saved with the model so scoring matches training."""

    chat_template: bool = True
    max_length: int = 512
    truncation: str = "prompt_left"  # prompt_left: drop the prompt's start first; right: cut the end


@dataclass
class ModelInfo:
    base: str
    heads: int = 1
    lora: dict[str, Any] | None = None
    render: RenderSpec = field(default_factory=RenderSpec)
    reward_mean: float = 0.0
    reward_std: float = 1.0
    format_version: int = FORMAT_VERSION

    @classmethod
    def read(cls, folder: Path) -> ModelInfo:
        data = json.loads((folder / "rm.json").read_text())
        data["render"] = RenderSpec(**data.get("render", {}))
        return cls(**data)


class RewardModel(torch.nn.Module):
    def __init__(self, trunk: Any, heads: int = 1) -> None:
        super().__init__()
        self.trunk = trunk
        hidden = trunk.config.hidden_size
        self.head = torch.nn.Linear(hidden, heads)
        # A small head keeps initial rewards near 0 (and sigma(r_c - r_r) near 1/2).
        torch.nn.init.normal_(self.head.weight, std=1.0 / (hidden + 1) ** 0.5)
        torch.nn.init.zeros_(self.head.bias)
        architectures = getattr(trunk.config, "architectures", None) or []
        self.causal = any(str(name).endswith("ForCausalLM") for name in architectures)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The trunk's last hidden states. A causal trunk on a right-padded batch runs without the
        mask: no real token attends to a pad after it, so the states at real positions are the
        same (exactly, tested), and the forward skips building the mask and the masked attention
        path (7% of a PRM training step on this CPU). Otherwise position ids come from the mask."""
        if self.causal and bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all()):
            return self.trunk(input_ids=input_ids).last_hidden_state
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Rewards, shape [batch, heads], read at each row's last attended token."""
        hidden = self.hidden(input_ids, attention_mask)
        columns = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.long() * columns).argmax(-1)
        picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(picked.to(self.head.weight.dtype))


def load_trunk(name: str, dtype: str = "float32") -> tuple[Any, Any]:
    """The base model without its LM head (payoff's embedded default or a local folder) and its
    tokenizer, with a pad token set."""
    from transformers import AutoModel, AutoTokenizer

    from payoff.models.default import quiet_loading

    quiet_loading()
    from payoff.models.default import policy_path

    fast_fp32_matmul()  # float32 products through oneDNN where exact and faster (AMD CPUs)
    path = policy_path(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    trunk = AutoModel.from_pretrained(path, dtype=getattr(torch, dtype))
    return trunk, tokenizer


def add_lora(trunk: Any, lora: dict[str, Any]) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora.get("r", 16), lora_alpha=lora.get("alpha", 32), lora_dropout=lora.get("dropout", 0.0),
                        target_modules=lora.get("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"]))
    return get_peft_model(trunk, config)


def render(tokenizer: Any, prompt: Text, completion: Text, spec: RenderSpec) -> tuple[list[int], list[int]]:
    """Token ids of the prompt part and of the completion part (chat template applied when the
    spec says so or the inputs are messages)."""
    if spec.chat_template or not isinstance(prompt, str) or not isinstance(completion, str):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        answer = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else list(completion)
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        whole = tokenizer.apply_chat_template(messages + answer, tokenize=False)
        tail = whole[len(head):] if whole.startswith(head) else whole
        if not whole.startswith(head):
            head = ""
    else:
        head, tail = prompt, completion
    prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"] if head else []
    completion_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
    return prompt_ids, completion_ids


def truncate(prompt_ids: list[int], completion_ids: list[int], spec: RenderSpec) -> tuple[list[int], bool]:
    """The sequence cut to ``spec.max_length`` by the spec's policy, and whether it was cut.
    ``prompt_left`` drops the prompt's first tokens (then the completion's last, if the
    completion alone is too long): the end of the answer, where the reward is read, stays."""
    ids = prompt_ids + completion_ids
    if len(ids) <= spec.max_length:
        return ids, False
    if spec.truncation == "right":
        return ids[: spec.max_length], True
    room = spec.max_length - len(completion_ids)
    if room >= 0:
        return prompt_ids[len(prompt_ids) - room:] + completion_ids if room else completion_ids, True
    return completion_ids[: spec.max_length], True


def round_up(width: int, multiple: int) -> int:
    """``width`` rounded up to a ``multiple`` of tokens."""
    return -(-width // multiple) * multiple


def collate(sequences: list[list[int]], pad_id: int, side: str = "right", multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``sequences`` padded on ``side`` to the longest, rounded up to a ``multiple`` of tokens:
    ids and a 0/1 mask."""
    width = round_up(max(len(s) for s in sequences), multiple)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if side == "right":
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        else:
            ids[row, width - len(sequence):] = torch.tensor(sequence)
            mask[row, width - len(sequence):] = 1
    return ids, mask


def save_reward_model(folder: Path, model: RewardModel, tokenizer: Any, info: ModelInfo) -> Path:
    """Write the model atomically (``folder.partial`` renamed into place)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    torch.save(model.head.state_dict(), partial / "head.pt")
    if info.lora is not None:
        model.trunk.save_pretrained(partial / "adapter")
    else:
        model.trunk.save_pretrained(partial / "trunk")
    tokenizer.save_pretrained(partial / "tokenizer")
    data = asdict(info)
    (partial / "rm.json").write_text(json.dumps(data, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def model_folder(path: str | Path) -> Path:
    """A run folder or its ``model`` folder, whichever holds ``rm.json``."""
    path = Path(path)
    for candidate in (path, path / "model"):
        if (candidate / "rm.json").is_file():
            return candidate
    raise FileNotFoundError(f"{path} holds no trained reward model (no rm.json in it or in {path / 'model'})")


def load_reward_model(path: str | Path, merge: bool = True, dtype: str = "float32") -> tuple[RewardModel, Any, ModelInfo]:
    """(model in eval mode, tokenizer, info) from a run folder or a model folder. ``merge`` folds
    a LoRA adapter into the trunk for faster scoring."""
    from transformers import AutoModel, AutoTokenizer

    from payoff.models.default import quiet_loading

    quiet_loading()
    fast_fp32_matmul()
    folder = model_folder(path)
    info = ModelInfo.read(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if info.lora is not None:
        from peft import PeftModel

        trunk, _ = load_trunk(info.base, dtype)
        trunk = PeftModel.from_pretrained(trunk, folder / "adapter")
        if merge:
            trunk = trunk.merge_and_unload()
    else:
        trunk = AutoModel.from_pretrained(folder / "trunk", dtype=getattr(torch, dtype))
    model = RewardModel(trunk, info.heads)
    model.head.load_state_dict(torch.load(folder / "head.pt", weights_only=True))
    model.eval()
    return model, tokenizer, info
