"""The shared-prefix pair forward gives the rewards, loss and gradients of two whole sequences."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.models.reward_model import collate
from payoff.rm.losses import reward_model_loss
from payoff.rm.pairwise import PairBatch, PairRewardModel, shared_length
from tests.rl.toy import tiny_model


def _model(heads: int = 1, seed: int = 0) -> PairRewardModel:
    torch.manual_seed(seed)
    model = PairRewardModel(tiny_model(seed).model, heads)
    with torch.no_grad():
        model.head.weight.normal_(std=0.5)  # rewards far enough from 0 that a wrong read shows
    return model.train()


def _pairs(seed: int, n: int, vocab: int = 500) -> tuple[list[list[int]], list[list[int]]]:
    """Pairs with prompts of different lengths, answers of different lengths, some sharing a
    token or two of the answer, one whose answer is a strict extension of the other's."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda k: torch.randint(3, vocab, (k,), generator=g).tolist()  # noqa: E731
    chosen, rejected = [], []
    for i in range(n):
        prompt = rand(int(torch.randint(1, 12, (1,), generator=g)))
        common = rand(i % 3)
        a, b = rand(int(torch.randint(1, 9, (1,), generator=g))), rand(int(torch.randint(1, 9, (1,), generator=g)))
        chosen.append(prompt + common + a)
        rejected.append(prompt + common + (a + b if i == 1 else b))
    return chosen, rejected


def _whole(model: PairRewardModel, chosen: list[list[int]], rejected: list[list[int]]) -> torch.Tensor:
    ids, mask = collate(chosen + rejected, pad_id=0)
    return model(ids, mask)


def _grads(model: PairRewardModel, rewards: torch.Tensor, n: int) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = reward_model_loss(rewards[:n, 0], rewards[n:, 0], 0.3, center_coef=0.01)
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_shared_length_leaves_each_answer_a_token() -> None:
    assert shared_length([1, 2, 3, 4], [1, 2, 5]) == 2
    assert shared_length([1, 2], [1, 2, 3]) == 1  # one sequence is the other's start: each keeps one token
    assert shared_length([7, 1], [8, 1]) == 0
    assert shared_length([5], [5]) == 0


@pytest.mark.parametrize("heads", [1, 3])
def test_pair_forward_equals_whole_sequences(heads: int) -> None:
    model = _model(heads)
    chosen, rejected = _pairs(1, 6)
    batch = PairBatch(chosen, rejected, pad_id=0)
    assert batch.prefix_ids is not None and batch.padded_tokens() < 2 * 6 * max(map(len, chosen + rejected))
    torch.testing.assert_close(model(batch), _whole(model, chosen, rejected), rtol=1e-4, atol=1e-5)


def test_loss_and_gradients_equal_the_whole_sequence_path() -> None:
    model = _model()
    chosen, rejected = _pairs(2, 5)
    loss_whole, grads_whole = _grads(model, _whole(model, chosen, rejected), 5)
    loss_pair, grads_pair = _grads(model, model(PairBatch(chosen, rejected, pad_id=0)), 5)
    assert loss_pair == pytest.approx(loss_whole, rel=1e-5)
    assert grads_pair.keys() == grads_whole.keys()
    for name, grad in grads_whole.items():
        torch.testing.assert_close(grads_pair[name], grad, rtol=1e-3, atol=1e-6, msg=name)


def test_a_pair_sharing_nothing_runs_whole_sequences() -> None:
    model = _model()
    chosen, rejected = _pairs(3, 3)
    rejected[2] = [499] + rejected[2][1:]
    chosen[2] = [498] + chosen[2][1:]
    batch = PairBatch(chosen, rejected, pad_id=0)
    assert batch.prefix_ids is None
    torch.testing.assert_close(model(batch), _whole(model, chosen, rejected))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 5))
def test_pair_rewards_match_for_any_pairs(seed: int, n: int) -> None:
    model = _model(seed=seed % 3)
    chosen, rejected = _pairs(seed, n)
    with torch.no_grad():
        torch.testing.assert_close(model(PairBatch(chosen, rejected, pad_id=0)), _whole(model, chosen, rejected), rtol=1e-4, atol=1e-5)
