"""Rollouts: batched sampling from the policy with a KV cache.

`HFGenerator` uses transformers ``generate`` (the CPU path). `payoff.models.vllm_backend` offers
the same interface on a GPU with vLLM. Both return `Rollouts`: token ids of prompt and completion
per sample, the decoded text, and whether the completion hit ``max_new_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


@dataclass
class Rollouts:
    prompt_ids: list[list[int]] = field(default_factory=list)
    completion_ids: list[list[int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)

    def extend(self, other: Rollouts) -> None:
        self.prompt_ids += other.prompt_ids
        self.completion_ids += other.completion_ids
        self.texts += other.texts
        self.truncated += other.truncated

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class SamplingParams:
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop: list[str] = field(default_factory=list)


class Generator(Protocol):
    """What samples rollouts: `HFGenerator`, or `payoff.models.vllm_backend.VLLMGenerator`."""

    def generate(self, prompts: Sequence[str], params: SamplingParams, greedy: bool = False) -> Rollouts: ...

    def weights_changed(self) -> None:
        """Called after each optimiser step: the next rollouts must come from the new weights."""


def render_prompt(tokenizer: Any, prompt: str | list[dict[str, Any]], chat_template: bool = True, system: str | None = None) -> str:
    """The text the policy sees: the tokenizer's chat template around a user message (or a list
    of messages) when it has one and ``chat_template`` is on; the raw prompt otherwise."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        if system is not None and messages[0].get("role") != "system":
            messages = [{"role": "system", "content": system}, *messages]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if isinstance(prompt, list):
        return "\n".join(str(m.get("content", "")) for m in prompt)
    return prompt


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (and including) the first stop string."""
    ends = [text.find(s) + len(s) for s in stop if s and s in text]
    return text[: min(ends)] if ends else text


class HFGenerator(Generator):
    """Sampling with transformers ``generate``: left-padded batches, KV cache, stop strings."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_ids = _eos_ids(model, tokenizer)

    def weights_changed(self) -> None:
        pass  # it samples from the live model itself

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], params: SamplingParams, greedy: bool = False) -> Rollouts:
        """One completion per prompt text (repeat a prompt to sample a group)."""
        result = Rollouts()
        for start in range(0, len(prompts), self.batch_size):
            result.extend(self._batch(list(prompts[start:start + self.batch_size]), params, greedy))
        return result

    def _batch(self, prompts: list[str], params: SamplingParams, greedy: bool) -> Rollouts:
        tok = self.tokenizer
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tok.padding_side = side
        options: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "pad_token_id": tok.pad_token_id,
                                   "eos_token_id": self.eos_ids, "use_cache": True}
        if greedy or params.temperature <= 0:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            options.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        if params.stop:
            options.update(stop_strings=list(params.stop), tokenizer=tok)
        was_training = self.model.training
        self.model.eval()
        try:
            output = self.model.generate(**enc, **options)
        finally:
            self.model.train(was_training)
        width = enc["input_ids"].shape[1]
        rollouts = Rollouts()
        for row in range(len(prompts)):
            prompt = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
            completion, finished = self._trim(output[row, width:].tolist(), params.stop)
            text = tok.decode(completion, skip_special_tokens=True)
            if params.stop:
                text = cut_at_stop(text, params.stop)
            rollouts.prompt_ids.append(prompt)
            rollouts.completion_ids.append(completion)
            rollouts.texts.append(text)
            rollouts.truncated.append(not finished)
        return rollouts

    def _trim(self, tokens: list[int], stop: Sequence[str] = ()) -> tuple[list[int], bool]:
        """Tokens up to and including the first end-of-sequence token (kept: the policy must learn
        to stop) or the shortest prefix that holds a stop string, and whether either ended it.
        What generate() wrote after a sequence stopped (its padding) is never kept, so it is
        never trained on, and a stopped sequence is not reported as truncated."""
        finished = False
        for index, token in enumerate(tokens):
            if token in self.eos_ids:
                # Also where generate() padded a sequence that a stop string ended with pad = eos:
                # the stop search below then cuts before that padding.
                tokens, finished = tokens[: index + 1], True
                break
        if stop:
            decode = self.tokenizer.decode
            if any(s and s in decode(tokens, skip_special_tokens=True) for s in stop):
                low, high = 1, len(tokens)  # the shortest prefix whose text holds a stop string
                while low < high:
                    middle = (low + high) // 2
                    if any(s and s in decode(tokens[:middle], skip_special_tokens=True) for s in stop):
                        high = middle
                    else:
                        low = middle + 1
                return tokens[:low], True
        if finished:
            return tokens, True
        pad = self.tokenizer.pad_token_id
        while tokens and pad is not None and tokens[-1] == pad:
            tokens = tokens[:-1]
        return tokens, False


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = model.generation_config.eos_token_id if getattr(model, "generation_config", None) else None
    ids = ids if isinstance(ids, list) else [ids] if ids is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
