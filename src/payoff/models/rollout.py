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

from payoff.models.logprobs import model_device


@dataclass
class Rollouts:
    prompt_ids: list[list[int]] = field(default_factory=list)
    completion_ids: list[list[int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    # Per completion token, 1 where the policy sampled it (it carries loss) and 0 where the
    # environment wrote it (an episode's tool results and feedback). Empty: every token is sampled.
    loss_masks: list[list[int]] = field(default_factory=list)

    def extend(self, other: Rollouts) -> None:
        if self.loss_masks or other.loss_masks:
            self.loss_masks = self._masks() + other._masks()
        self.prompt_ids += other.prompt_ids
        self.completion_ids += other.completion_ids
        self.texts += other.texts
        self.truncated += other.truncated

    def _masks(self) -> list[list[int]]:
        return self.loss_masks if self.loss_masks else [[1] * len(c) for c in self.completion_ids]

    def select(self, indices: Sequence[int]) -> Rollouts:
        """The rollouts at ``indices``, in that order."""
        masks = [self.loss_masks[i] for i in indices] if self.loss_masks else []
        return Rollouts([self.prompt_ids[i] for i in indices], [self.completion_ids[i] for i in indices],
                        [self.texts[i] for i in indices], [self.truncated[i] for i in indices], masks)

    def loss_mask(self, index: int) -> list[int] | None:
        """Sample ``index``'s loss mask, or None when all its tokens were sampled."""
        return self.loss_masks[index] if self.loss_masks else None

    def trained_tokens(self, index: int) -> int:
        """How many of sample ``index``'s completion tokens carry loss."""
        return sum(self.loss_masks[index]) if self.loss_masks else len(self.completion_ids[index])

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

    def generate_ids(self, contexts: Sequence[list[int]], params: SamplingParams, greedy: bool = False) -> Rollouts:
        """One completion per context given as token ids (an episode's context so far: it is never
        re-tokenised); ``prompt_ids`` of the result are the contexts as given."""
        ...

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

    @torch.inference_mode()
    def generate_ids(self, contexts: Sequence[list[int]], params: SamplingParams, greedy: bool = False) -> Rollouts:
        result = Rollouts()
        for start in range(0, len(contexts), self.batch_size):
            chunk = [list(c) for c in contexts[start:start + self.batch_size]]
            width = max(len(c) for c in chunk)
            pad = self.tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk], dtype=torch.long)
            mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk], dtype=torch.long)
            result.extend(self._run({"input_ids": ids, "attention_mask": mask}, params, greedy))
        return result

    def _batch(self, prompts: list[str], params: SamplingParams, greedy: bool) -> Rollouts:
        tok = self.tokenizer
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tok.padding_side = side
        return self._run(enc, params, greedy)

    def _run(self, enc: Any, params: SamplingParams, greedy: bool) -> Rollouts:
        tok = self.tokenizer
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
            device = model_device(self.model)
            output = self.model.generate(**{k: v.to(device) for k, v in enc.items()}, **options).cpu()
        finally:
            self.model.train(was_training)
        width = enc["input_ids"].shape[1]
        rollouts = Rollouts()
        for row in range(enc["input_ids"].shape[0]):
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
