"""payoff's CPU attention (`payoff.models.attention`) on the real SmolLM2-135M-Instruct: the same
logits and gradients as transformers' default, plain attention only under the size bound, and
the off switch."""

from __future__ import annotations

import pytest
import torch

from payoff.models import attention
from payoff.models.default import load_policy


@pytest.fixture(scope="module")
def model_and_batch():
    model, tokenizer = load_policy()
    batch = tokenizer(["What is 12 + 30? The answer is 42, which I checked twice.", "Hi"], return_tensors="pt",
                      padding=True, padding_side="left")
    return model, batch


def _run(model, batch, implementation: str) -> tuple[torch.Tensor, torch.Tensor]:
    model.set_attn_implementation(implementation)
    model.zero_grad()
    logits = model(**batch).logits
    logits[:, -1].logsumexp(-1).sum().backward()
    return logits.detach(), model.model.layers[3].self_attn.k_proj.weight.grad.clone()


def test_the_same_logits_and_gradients_as_the_default(model_and_batch, monkeypatch) -> None:
    model, batch = model_and_batch
    calls = []
    plain = attention._plain
    monkeypatch.setattr(attention, "_plain", lambda *a: calls.append(a[1].shape) or plain(*a))
    real = batch["attention_mask"].bool()  # left padding: only the real positions are compared
    try:
        base_logits, base_grad = _run(model, batch, "sdpa")
        assert attention.cpu_attention(model) == attention.NAME and not calls
        logits, grad = _run(model, batch, attention.NAME)
        assert calls, "plain attention did not run"
        assert torch.allclose(logits[real], base_logits[real], atol=1e-3)
        assert torch.allclose(grad, base_grad, rtol=1e-3, atol=1e-3 * base_grad.abs().max().item())
        # past the bound every call takes the fused kernel, with the same answer
        calls.clear()
        monkeypatch.setattr(attention, "MAX_SCORES_GRAD", 0)
        logits, _ = _run(model, batch, attention.NAME)
        assert not calls and torch.allclose(logits[real], base_logits[real], atol=1e-3)
        with torch.no_grad():
            monkeypatch.setattr(attention, "MAX_SCORES", 0)
            assert torch.allclose(model(**batch).logits[real], base_logits[real], atol=1e-3) and not calls
    finally:
        model.set_attn_implementation("sdpa")


def test_the_off_switch_and_another_attention_are_left_alone(model_and_batch, monkeypatch) -> None:
    model, _ = model_and_batch
    monkeypatch.setenv("PAYOFF_ATTENTION", "default")
    assert attention.cpu_attention(model) == "sdpa" and model.config._attn_implementation == "sdpa"
    monkeypatch.delenv("PAYOFF_ATTENTION")
    model.set_attn_implementation("eager")
    try:
        assert attention.cpu_attention(model) == "eager"  # a user's own choice is kept
    finally:
        model.set_attn_implementation("sdpa")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_backward_recomputes_the_probabilities_rather_than_keeping_them(dtype) -> None:
    """Grouped-query attention with a padding mask, against autograd through the written-out
    formula: the same gradients (float32 exactly, bfloat16 within its rounding), and nothing the
    size of the score matrix kept for the backward pass."""
    generator = torch.Generator().manual_seed(0)
    batch, heads, kv_heads, queries, keys, width = 2, 6, 2, 5, 40, 8
    make = lambda *shape: torch.randn(*shape, generator=generator, dtype=dtype, requires_grad=True)  # noqa: E731
    query, key, value = make(batch, heads, queries, width), make(batch, kv_heads, keys, width), make(batch, kv_heads, keys, width)
    mask = torch.zeros(batch, 1, queries, keys)
    mask[0, :, :, :7] = torch.finfo(torch.float32).min  # row 0 left-padded
    upstream = torch.randn(batch, queries, heads, width, generator=generator)

    expanded = lambda t: t.float().repeat_interleave(heads // kv_heads, dim=1)  # noqa: E731
    scores = query.float() @ expanded(key).transpose(2, 3) * width ** -0.5 + mask
    expected = (torch.softmax(scores, -1) @ expanded(value)).transpose(1, 2)
    (expected * upstream).sum().backward()
    want = [t.grad.clone() for t in (query, key, value)]
    for t in (query, key, value):
        t.grad = None

    kept = []
    module = torch.nn.Module()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t.numel()) or t, lambda t: t):
        out, weights = attention._plain(module, query, key, value, mask, width ** -0.5, 0.0)
    assert weights is None and max(kept) < batch * heads * queries * keys
    (out.float() * upstream).sum().backward()
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.float(), expected, rtol=0, atol=tolerance * 4)
    for got, wanted in zip((query.grad, key.grad, value.grad), want):
        assert (got.float() - wanted).abs().max() <= tolerance * wanted.abs().max()
