"""The policy being trained: a transformers causal LM, full fine-tuning or LoRA (peft), and its
KL reference. Under LoRA the reference is the same model with the adapters switched off, so no
second copy is held in memory."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any, Protocol

import torch

from payoff.runs.config import LoraConfig


class PolicySpec(Protocol):
    """What loading a policy for training reads from a trainer's ``[model]`` table."""

    name: str  # the embedded default's name, or a local transformers folder
    lora: LoraConfig | None  # None: full fine-tuning
    gradient_checkpointing: bool


class Policy:
    def __init__(self, model: Any, tokenizer: Any, lora: bool, keep_reference: bool) -> None:
        self.model, self.tokenizer, self.lora = model, tokenizer, lora
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._reference = None
        if keep_reference and not lora:
            self._reference = copy.deepcopy(model).eval()
            for parameter in self._reference.parameters():
                parameter.requires_grad_(False)

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    @contextlib.contextmanager
    def reference(self) -> Iterator[Any]:
        """The frozen reference model for KL terms."""
        if self.lora:
            with self.model.disable_adapter():
                yield self.model
        elif self._reference is not None:
            yield self._reference
        else:
            raise RuntimeError("no reference model: set algorithm.kl_coef > 0 to keep one")


def load_training_policy(config: PolicySpec, keep_reference: bool, model: Any = None, tokenizer: Any = None) -> Policy:
    """Load ``config.name`` (or take an already built model/tokenizer, as tests do) and prepare it
    for training."""
    if model is None:
        from payoff.models.default import load_policy

        model, tokenizer = load_policy(config.name)
    model.train()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.lora is not None:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        lora = PeftLoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                              target_modules=config.lora.target_modules, task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    return Policy(model, tokenizer, lora=config.lora is not None, keep_reference=keep_reference)
