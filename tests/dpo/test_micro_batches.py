"""DPO's micro-batches hold the padded tokens the forward really allocates under the budget."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.dpo.train import Encoded, micro_batches
from payoff.models.logprobs import pack


def _encoded(shapes: list[tuple[int, int, int]]) -> Encoded:
    data = Encoded.__new__(Encoded)
    data.prompt = [[1] * p for p, _, _ in shapes]
    data.chosen = [[2] * c for _, c, _ in shapes]
    data.rejected = [[3] * r for _, _, r in shapes]
    data.ref = {}
    return data


def _allocated(data: Encoded, chunk: list[int]) -> int:
    """Tokens of the input `_sequence_logps` packs for ``chunk`` (every tensor of the forward is
    that wide or narrower)."""
    batch = pack([data.prompt[i] for i in chunk] * 2, [data.chosen[i] for i in chunk] + [data.rejected[i] for i in chunk], 0)
    return batch.input_ids.numel()


def test_a_short_prompt_long_answer_and_a_long_prompt_short_answer_are_not_packed_together() -> None:
    # widths (prompt + longest answer) 210 and 200: 2 pairs x 2 rows x 210 = 840 fit 1000, but the
    # forward pads both to 150 + 200 columns: 1400 tokens
    data = _encoded([(10, 200, 20), (150, 50, 40)])
    chunks = micro_batches(data, [0, 1], rows=8, tokens=1000)
    assert chunks == [[0], [1]]
    assert all(_allocated(data, c) <= 1000 for c in chunks)


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(1, 120), st.integers(1, 200), st.integers(1, 200)), min_size=1, max_size=24),
       rows=st.integers(1, 8), tokens=st.integers(0, 3000))
def test_every_micro_batch_fits_the_budget_and_every_pair_is_in_one(shapes: list[tuple[int, int, int]], rows: int, tokens: int) -> None:
    data = _encoded(shapes)
    chunks = micro_batches(data, range(len(shapes)), rows, tokens)
    assert sorted(i for c in chunks for i in c) == list(range(len(shapes)))
    for chunk in chunks:
        assert len(chunk) <= rows
        if tokens and len(chunk) > 1:  # a pair over the budget goes alone
            assert _allocated(data, chunk) <= tokens
