"""Attention on a CPU: plain attention where the score matrix is small, PyTorch's fused kernel
where it is large.

PyTorch's CPU flash attention (transformers' ``sdpa``) is built for long sequences. A local
judge runs short ones: rows of a few dozen tokens over a cached prompt prefix, where plain
attention (two matrix products and a softmax) gave 1.4x the judgments with shared prefixes on a
Zen 5 EPYC (docs/judges.md). The reward-model trainer takes it as an option
(``model.attention = "plain"``): on an Intel Xeon with AMX its bf16 step took 0.85x the time and
1.08x the peak memory (its backward keeps each layer's probabilities); by default it keeps
transformers' choice (docs/rm.md).

Plain attention holds the whole batch x heads x queries x keys score matrix (and, with gradients
on, keeps it for the backward pass), so a call whose matrix is past ``MAX_SCORES``
(``MAX_SCORES_GRAD`` with gradients on) goes to the fused kernel: a long prompt costs what it
did, not gigabytes more. ``PAYOFF_ATTENTION=default`` keeps transformers' choice.
"""

from __future__ import annotations

import functools
import os
from typing import Any

NAME = "payoff_cpu"
MAX_SCORES = 1 << 24  # score entries per layer call without gradients: 64 MB in float32
MAX_SCORES_GRAD = 1 << 21  # with gradients, kept per layer for backward: 8 MB each, ~0.5 GB over 30 layers

def _plain(module: Any, query: Any, key: Any, value: Any, mask: Any, scaling: float, dropout: float) -> Any:
    import torch

    batch, heads, queries, width = query.shape
    kv_heads, keys = key.shape[1], key.shape[2]
    groups = heads // kv_heads  # grouped-query attention: key head j serves query heads j*groups .. (j+1)*groups - 1
    # the query heads of a key head stacked as rows, rather than each key head copied `groups`
    # times: the rows are the few new tokens, the keys the whole cached prompt
    stacked = query.reshape(batch, kv_heads, groups * queries, width)
    scores = (torch.matmul(stacked, key.transpose(2, 3)) * scaling).view(batch, kv_heads, groups, queries, keys) + mask[:, :, None]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights.view(batch, kv_heads, groups * queries, keys), value)
    return out.view(batch, heads, queries, width).transpose(1, 2).contiguous(), weights.view(batch, heads, queries, keys)


def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
              dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """transformers' attention interface: plain attention for a small score matrix on a CPU, else
    ``sdpa`` (a model moved to a GPU after loading gets the fused kernel for every call)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, queries, _ = query.shape
    limit = MAX_SCORES_GRAD if torch.is_grad_enabled() else MAX_SCORES
    small = batch * heads * queries * key.shape[-2] <= limit
    if query.device.type == "cpu" and attention_mask is not None and attention_mask.dtype.is_floating_point and small:
        scale = scaling if scaling is not None else getattr(module, "scaling", query.shape[-1] ** -0.5)
        return _plain(module, query, key, value, attention_mask[:, :, :, :key.shape[-2]], scale, dropout)
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)


def cpu_attention(model: Any) -> str:
    """Give a model on a CPU payoff's attention, where it runs transformers' default (``sdpa``);
    returns the attention it runs. A model on a GPU, or one loaded with another attention, keeps its own."""
    if os.environ.get("PAYOFF_ATTENTION", "auto") != "auto" or model.device.type != "cpu" or \
            getattr(model.config, "_attn_implementation", None) != "sdpa":
        return str(getattr(model.config, "_attn_implementation", ""))
    _register()
    model.set_attn_implementation(NAME)
    return NAME


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, eager_mask

    AttentionInterface.register(NAME, attention)  # idempotent: two threads racing here register the same
    # additive float masks (the eager form), which the fused kernel takes as well
    AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS.get("eager", eager_mask))
