"""Attention on a CPU: plain attention where the score matrix is small, PyTorch's fused kernel
where it is large.

PyTorch's CPU flash attention (transformers' ``sdpa``) is built for long sequences. A local
judge runs short ones: rows of a few dozen tokens over a cached prompt prefix, where plain
attention (two matrix products and a softmax) gave 1.4x the judgments with shared prefixes on a
Zen 5 EPYC (docs/judges.md). The reward-model and PRM trainers use it by default
(``model.attention = "plain"``; on an Intel Xeon with AMX, 0.83x the time a step of transformers'
sdpa and 0.97x its peak memory, docs/rm.md).

Plain attention holds the whole batch x heads x queries x keys score matrix while it runs, so a
call whose matrix is past ``MAX_SCORES`` (``MAX_SCORES_GRAD`` with gradients on) goes to the fused
kernel: a long prompt costs what it did, not gigabytes more. With gradients on, its backward
recomputes the probabilities from the queries and keys, as flash attention does, rather than
keeping them for every layer (autograd would keep them twice: 6 bytes per score).
``PAYOFF_ATTENTION=default`` keeps transformers' choice.
"""

from __future__ import annotations

import functools
import os
from typing import Any

NAME = "payoff_cpu"
MAX_SCORES = 1 << 24  # score entries per layer call without gradients: 64 MB in float32
MAX_SCORES_GRAD = 1 << 21  # with gradients on: the bound set when the backward kept the matrix


def _probabilities(query: Any, key: Any, mask: Any, scaling: float) -> Any:
    """softmax(q k^T * scaling + mask) in float32, [batch, kv heads, groups * queries, keys]: the
    query heads of a key head stacked as rows (grouped-query attention: key head j serves query
    heads j*groups .. (j+1)*groups - 1), rather than each key head copied ``groups`` times."""
    import torch

    batch, heads, queries, width = query.shape
    kv_heads, keys = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    stacked = query.reshape(batch, kv_heads, groups * queries, width)
    scores = (torch.matmul(stacked, key.transpose(2, 3)) * scaling).view(batch, kv_heads, groups, queries, keys) + mask[:, :, None]
    return torch.softmax(scores, dim=-1, dtype=torch.float32).view(batch, kv_heads, groups * queries, keys)


@functools.cache
def _recomputed_attention() -> Any:
    """The autograd function below, defined on first use (this module does not import torch)."""
    import torch

    class Recomputed(torch.autograd.Function):
        """Plain attention whose backward recomputes the probabilities from q and k, as flash
        attention does, rather than keeping them: autograd would keep each layer's probabilities
        twice (float32 for the softmax, the cast for the product), batch x heads x queries x keys x 6
        bytes a layer; this keeps nothing past q, k and v. (Keeping them once, in bfloat16, made a
        PRM step 2-3% faster and a reward-model epoch's peak 170 MB larger: docs/rm.md.)"""

        @staticmethod
        def forward(ctx: Any, query: Any, key: Any, value: Any, mask: Any, scaling: float) -> Any:
            ctx.save_for_backward(query, key, value, mask)
            ctx.scaling = scaling
            return torch.matmul(_probabilities(query, key, mask, scaling).to(value.dtype), value)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            query, key, value, mask = ctx.saved_tensors
            batch, heads, queries, width = query.shape
            kv_heads = key.shape[1]
            with torch.autocast(query.device.type, enabled=False):
                probabilities = _probabilities(query, key, mask, ctx.scaling)
                grad = grad.to(value.dtype)
                grad_value = torch.matmul(probabilities.to(value.dtype).transpose(2, 3), grad)
                # softmax backward in float32, ds = p * (dp - sum(dp * p)), in one fused kernel
                grad_p = torch.matmul(grad, value.transpose(2, 3)).float()
                grad_scores = torch._softmax_backward_data(grad_p, probabilities, -1, torch.float32)
                grad_scores = grad_scores.mul_(ctx.scaling).to(query.dtype)
                grad_query = torch.matmul(grad_scores, key).view(batch, heads, queries, width)
                stacked = query.reshape(batch, kv_heads, -1, width)
                grad_key = torch.matmul(grad_scores.transpose(2, 3), stacked)
            return grad_query, grad_key, grad_value, None, None

    return Recomputed


def _plain(module: Any, query: Any, key: Any, value: Any, mask: Any, scaling: float, dropout: float) -> Any:
    import torch

    batch, heads, queries, width = query.shape
    if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad) \
            and not (dropout and module.training):
        out = _recomputed_attention().apply(query, key, value, mask, scaling)
        return out.view(batch, heads, queries, width).transpose(1, 2).contiguous(), None
    probabilities = _probabilities(query, key, mask, scaling)
    weights = torch.nn.functional.dropout(probabilities.to(query.dtype), p=dropout, training=module.training)
    out = torch.matmul(weights, value)
    return out.view(batch, heads, queries, width).transpose(1, 2).contiguous(), weights.view(batch, heads, queries, -1)


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
