"""The token prefixes a local judge's prompts share, computed once (the idea of SGLang's
RadixAttention, cut to the two levels a judge call has).

A judge call's prompts are one template filled in. All of them share the template's head (the
chat template's system turn and the instructions): the call's *head*. In RL they also come in
groups: the G completions of one prompt, judged against one question and one reference, share
everything up to the response: a *group prefix*. A causal model gives equal token ids at equal
positions equal keys and values, so both are cut from the ids themselves and computed once: the
head by one forward, every group's continuation of it by one more (all groups in a batch), and
each prompt then runs only the tokens after its own prefix, from a key/value cache assembled
per batch (head, group continuation, padding masked out). Identical prompts (a group's repeated
answers) are judged once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

GROUP_MIN_TOKENS = 16  # a group continuation shorter than this saves less than its forward costs


@dataclass
class Plan:
    """Which tokens of each prompt are computed once. ``rows`` are the distinct prompts (indices
    into the call's ids); ``same`` maps a repeated prompt to the row judged for it."""

    rows: list[int]
    head: int = 0
    groups: list[tuple[int, int]] = field(default_factory=list)  # (a member row, its prefix length)
    group_of: dict[int, int] = field(default_factory=dict)  # row -> index into groups
    same: dict[int, int] = field(default_factory=dict)

    def shared(self, row: int) -> int:
        """Tokens of ``row`` computed once for the call (head and group continuation)."""
        group = self.group_of.get(row)
        return self.head if group is None else self.groups[group][1]


def common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    first, n = sequences[0], min(len(s) for s in sequences)
    for k in range(n):
        if any(s[k] != first[k] for s in sequences):
            return k
    return n


def plan(ids: Sequence[Sequence[int]], kept: Sequence[int]) -> Plan:
    """The head every distinct prompt shares and the groups that share more (every prompt keeps
    at least one token of its own, whose logits are the verdict)."""
    first: dict[tuple[int, ...], int] = {}
    same: dict[int, int] = {}
    for i in kept:
        same_as = first.setdefault(tuple(ids[i]), i)
        if same_as != i:
            same[i] = same_as
    rows = [i for i in kept if i not in same]
    result = Plan(rows=rows, same=same)
    if len(rows) < 2:
        return result
    result.head = min(common_prefix([ids[i] for i in rows]), min(len(ids[i]) for i in rows) - 1)
    ordered = sorted(rows, key=lambda i: ids[i])  # lexicographic: prompts sharing a prefix are neighbours
    joins = [common_prefix([ids[a], ids[b]]) for a, b in zip(ordered, ordered[1:])]
    for lo, hi, join in _best_groups(joins, result.head):
        members = ordered[lo:hi + 1]
        length = min(join, min(len(ids[i]) for i in members) - 1)
        if length - result.head >= GROUP_MIN_TOKENS:
            for i in members:
                result.group_of[i] = len(result.groups)
            result.groups.append((members[0], length))
    return result


def _best_groups(joins: list[int], head: int) -> list[tuple[int, int, int]]:
    """Cut the lexicographic run into groups that save the most tokens: a group of k prompts
    sharing p tokens past the head saves (k - 1) * p; a run is kept whole or split where its
    neighbours share least, whichever saves more (a trie's best cut, recursively). Each group is
    (first, last) positions in the run and the tokens its members share."""
    done: dict[tuple[int, int], tuple[int, list[tuple[int, int, int]]]] = {}
    stack = [(0, len(joins))]  # positions lo..hi of the run; a loop, not recursion: a run can be long
    while stack:
        lo, hi = stack[-1]
        if lo == hi:
            done[stack.pop()] = (0, [])
            continue
        weakest = min(range(lo, hi), key=joins.__getitem__)
        parts = [(lo, weakest), (weakest + 1, hi)]
        if any(part not in done for part in parts):
            stack.extend(part for part in parts if part not in done)
            continue
        stack.pop()
        (left, left_groups), (right, right_groups) = (done.pop(part) for part in parts)
        past_head = joins[weakest] - head
        whole = (hi - lo) * past_head if past_head >= GROUP_MIN_TOKENS else 0
        done[(lo, hi)] = (left + right, left_groups + right_groups) if left + right > whole else \
            (whole, [(lo, hi, joins[weakest])] if whole else [])
    return done[(0, len(joins))][1]


def head_cache(model: Any, ids: Sequence[int]) -> list[tuple[Any, Any]]:
    """Keys and values of one row of tokens, per layer."""
    import torch

    row = torch.tensor([list(ids)])
    cache = model(input_ids=row, attention_mask=torch.ones_like(row), use_cache=True, logits_to_keep=1).past_key_values
    return [(layer.keys, layer.values) for layer in cache.layers]


def group_caches(model: Any, ids: Sequence[Sequence[int]], the_plan: Plan, head: list[tuple[Any, Any]] | None,
                 pad_id: int, rows_per_forward: int) -> tuple[list[tuple[Any, Any]], list[int]]:
    """Every group's continuation of the head, right-padded to the longest: keys and values per
    layer with the groups as the batch, and each group's continuation length."""
    import torch

    lengths = [length - the_plan.head for _, length in the_plan.groups]
    width = max(lengths)
    pieces: list[list[tuple[Any, Any]]] = []
    for start in range(0, len(the_plan.groups), rows_per_forward):
        chunk = the_plan.groups[start:start + rows_per_forward]
        tokens = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), the_plan.head + width), dtype=torch.long)
        mask[:, :the_plan.head] = 1
        for n, (row, length) in enumerate(chunk):
            tokens[n, :length - the_plan.head] = torch.tensor(ids[row][the_plan.head:length], dtype=torch.long)
            mask[n, :length] = 1
        # right padding: a continuation's own tokens never see the pads after them (causal)
        positions = torch.arange(the_plan.head, the_plan.head + width).expand(len(chunk), -1)
        options: dict[str, Any] = {"use_cache": True}
        if head is not None:
            options["past_key_values"] = reserved([[part] for part in head], len(chunk), width)
        cache = model(input_ids=tokens, attention_mask=mask, position_ids=positions, logits_to_keep=1, **options).past_key_values
        pieces.append([(layer.keys[:, :, the_plan.head:], layer.values[:, :, the_plan.head:]) for layer in cache.layers])
    layers = [(torch.cat([p[n][0] for p in pieces]), torch.cat([p[n][1] for p in pieces])) for n in range(len(pieces[0]))]
    return layers, lengths


def last_logits(model: Any, ids: Sequence[Sequence[int]], rows: Sequence[int], the_plan: Plan, pad_id: int,
                head: list[tuple[Any, Any]] | None, groups: tuple[list[tuple[Any, Any]], list[int]] | None) -> Any:
    """The next-token logits after each of ``rows``: its tokens past its shared prefix
    (left-padded), continuing a cache of the head and its group's continuation."""
    import torch

    from payoff.models.reward_model import collate

    continuations = groups[1] if groups else []
    cont = [continuations[the_plan.group_of[r]] if r in the_plan.group_of else 0 for r in rows]
    extra = max(cont)
    past = the_plan.head + extra
    tokens, own_mask = collate([ids[r][the_plan.head + c:] for r, c in zip(rows, cont)], pad_id, side="left")
    past_mask = torch.zeros((len(rows), past), dtype=torch.long)
    past_mask[:, :the_plan.head] = 1
    for n, c in enumerate(cont):
        past_mask[n, the_plan.head:the_plan.head + c] = 1  # the group's continuation; the rest of `extra` is padding
    mask = torch.cat([past_mask, own_mask], 1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
    options: dict[str, Any] = {}
    if past:
        pick = torch.tensor([the_plan.group_of.get(r, 0) for r in rows])  # no group: any group's slots, masked
        layers = []
        for n in range(len(head or groups[0])):
            parts = [head[n]] if head is not None else []
            if extra:
                parts.append((groups[0][n][0][:, :, :extra].index_select(0, pick), groups[0][n][1][:, :, :extra].index_select(0, pick)))
            layers.append(parts)
        options = {"past_key_values": reserved(layers, len(rows), tokens.shape[1]), "use_cache": True}
    return model(input_ids=tokens, attention_mask=mask, position_ids=positions, logits_to_keep=1, **options).logits[:, -1]


def reserved(layers: list[list[tuple[Any, Any]]], rows: int, room: int) -> Any:
    """A key/value cache of ``rows`` rows holding, per layer, the given parts (keys and values,
    of one row or of each) one after another, with ``room`` positions more for the forward's own
    tokens. Those are written in place, where transformers' cache concatenates: a copy of the
    whole prefix in every layer of every forward."""
    import torch
    from transformers.cache_utils import Cache

    built = []
    for parts in layers:
        keys, values = parts[0]
        shape = (rows, keys.shape[1], sum(k.shape[2] for k, _ in parts) + room, keys.shape[3])
        layer = _reserved_layer()(torch.empty(shape, dtype=keys.dtype, device=keys.device),
                                  torch.empty(shape, dtype=values.dtype, device=values.device))
        for k, v in parts:
            layer.update(k, v)  # a part of one row goes to every row
        built.append(layer)
    return Cache(layers=built)


@functools.cache
def _reserved_layer() -> type:
    from transformers.cache_utils import DynamicLayer

    class ReservedLayer(DynamicLayer):
        """One layer's keys and values in buffers with room for what is still to come."""

        def __init__(self, keys: Any, values: Any) -> None:
            super().__init__()
            self.keys, self.values, self.length = keys, values, 0
            self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            end = self.length + key_states.shape[-2]
            self.keys[:, :, self.length:end] = key_states
            self.values[:, :, self.length:end] = value_states
            self.length = end
            return self.keys[:, :, :end], self.values[:, :, :end]

        def get_seq_length(self) -> int:
            return self.length

    return ReservedLayer
