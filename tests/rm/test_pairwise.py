"""The shared-prefix pair forward gives the rewards, loss and gradients of two whole sequences."""

from __future__ import annotations

from pathlib import Path

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
@given(seed=st.integers(0, 10_000), n=st.integers(1, 5), multiple=st.sampled_from([1, 4, 16]))
def test_pair_rewards_match_for_any_pairs(seed: int, n: int, multiple: int) -> None:
    """Whatever the pairs, and however far each part is padded: padding is invisible."""
    model = _model(seed=seed % 3)
    chosen, rejected = _pairs(seed, n)
    batch = PairBatch(chosen, rejected, pad_id=0, multiple=multiple)
    assert batch.answer_ids.shape[1] % multiple == 0 and (batch.prefix_ids is None or batch.prefix_ids.shape[1] % multiple == 0)
    with torch.no_grad():
        torch.testing.assert_close(model(batch), _whole(model, chosen, rejected), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("multiple", [1, 16])
def test_micro_batches_fit_the_budget_as_pair_batch_pads_them(multiple: int) -> None:
    from payoff.rm.train import Encoded

    chosen, rejected = _pairs(4, 12)
    data = Encoded.__new__(Encoded)
    data.chosen, data.rejected = chosen, rejected
    data.shared = [shared_length(c, r) for c, r in zip(chosen, rejected)]
    budget = 60 * multiple
    chunks = data.micro_batches(list(range(12)), rows=8, tokens=budget, multiple=multiple)
    assert sorted(i for c in chunks for i in c) == list(range(12)) and len(chunks) > 1
    for chunk in chunks:
        padded = PairBatch([chosen[i] for i in chunk], [rejected[i] for i in chunk], pad_id=0, multiple=multiple).padded_tokens()
        assert data.padded_tokens(chunk, multiple) == padded
        assert len(chunk) == 1 or padded <= budget


def test_a_pair_that_shares_nothing_does_not_take_its_micro_batch_off_the_pair_path() -> None:
    """``prompt_left`` cuts a long pair's two prompts by different amounts, so its sides share no
    token: it goes in a micro-batch of its own, and every other micro-batch keeps its shared prefix."""
    from payoff.rm.train import Encoded

    chosen, rejected = _pairs(7, 6)
    chosen.append([9, 8, 7, 6, 5])
    rejected.append([4, 8, 7, 6, 3])  # differs at the first token
    data = Encoded.__new__(Encoded)
    data.chosen, data.rejected = chosen, rejected
    data.shared = [shared_length(c, r) for c, r in zip(chosen, rejected)]
    assert data.shared[6] == 0 and min(data.shared[:6]) > 0
    chunks = data.micro_batches(list(range(7)), rows=8, tokens=0)
    assert sorted(i for c in chunks for i in c) == list(range(7))
    assert [6] in chunks
    for chunk in chunks:
        batch = PairBatch([chosen[i] for i in chunk], [rejected[i] for i in chunk], pad_id=0)
        assert (batch.prefix_ids is None) == (chunk == [6])


def test_a_run_split_by_the_token_budget_logs_the_unsplit_run(tmp_path: Path) -> None:
    """Longest-first micro-batches under a small budget: the same step losses and gradient norms
    as one forward per step (the gradient is the same sum over the step's pairs)."""
    from payoff.rm.config import load_rm_config
    from payoff.rm.train import train_reward_model
    from tests.rl.toy import save_tiny
    from tests.rm.helpers import read_metrics, write_config

    tiny = save_tiny(tmp_path / "model")
    rows = {}
    for budget in (0, 120):
        run = tmp_path / f"run-{budget}"
        config = load_rm_config(write_config(tmp_path, tiny, run, steps=3),
                                ["optim.micro_batch=8", f"optim.micro_tokens={budget}", "log.plot=false", "checkpoint_every=0"])
        train_reward_model(config)
        rows[budget] = read_metrics(run)
    for whole, split in zip(rows[0], rows[120]):
        for key in ("loss", "accuracy", "grad_norm"):
            assert split[key] == pytest.approx(whole[key], rel=1e-4, abs=1e-6), key
