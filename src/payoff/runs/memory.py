"""A training run's memory: micro-batches cut by a token budget.

What a forward pass keeps for its backward grows with the tokens of its micro-batch (rows times
the padded width): on SmolLM2-135M under LoRA about 2.7 MB per token in float32 (measured: 16 rows
of 256 tokens peaked at 11.2 GB after the forward, 16 of 64 at 2.5 GB), most of it the layers'
activations and the float32 logits over the 49k-token vocabulary. A fixed number of rows per
micro-batch therefore makes the peak a matter of which pairs a step happens to draw: the longest
micro-batch of a long run sets it, and runs with more steps draw longer ones. `token_chunks` cuts
a step's examples, longest first, into micro-batches of at most ``max_tokens`` padded tokens, so
the peak has a bound that does not depend on the draw (and sorted rows pad little). What one
step frees serves the next without page faults: the loops run with the heap held (`payoff.heap`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def token_chunks(indices: Sequence[int], width: Callable[[int], int], max_rows: int, max_tokens: int,
                 rows_per_example: int = 1, padded: Callable[[list[int]], int] | None = None) -> list[list[int]]:
    """``indices`` longest first (by ``width``, ties in their given order), in micro-batches of at
    most ``max_rows`` examples and, when ``max_tokens`` > 0, at most ``max_tokens`` padded tokens.
    ``padded(chunk)`` counts a candidate micro-batch's padded tokens as its forward lays them out
    (the tokens of every tensor it pads, e.g. a prompt padded to the longest prompt and an answer
    to the longest answer); without it: examples x ``rows_per_example`` x the widest example's
    ``width``. An example over the budget goes alone. The same arguments give the same
    micro-batches."""
    if padded is None:
        padded = lambda chunk: len(chunk) * rows_per_example * max(width(i) for i in chunk)  # noqa: E731
    chunks: list[list[int]] = []
    for index in sorted(indices, key=lambda i: -width(i)):
        fits = bool(chunks) and len(chunks[-1]) < max_rows and (max_tokens <= 0 or padded([*chunks[-1], index]) <= max_tokens)
        if fits:
            chunks[-1].append(index)
        else:
            chunks.append([index])
    return chunks
