"""PPO with a critic: GAE against a brute-force loop, the clipped value loss by hand, and
`advantage = "gae"` end to end on the tiny random Llama (critic, diagnostics, checkpoints)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.rl.critic import explained_variance, value_loss, whiten
from payoff.rl.loop import train
from payoff.rl.token_advantages import gae, gae_advantages
from payoff.rl.update import minibatch_order
from tests.rl.test_trainer import ROWS, toy_config
from tests.rl.toy import tiny_model, tokenizer, vowel_share


def brute_force_gae(rewards: list[float], values: list[float], gamma: float, lam: float) -> list[float]:
    """A_t = sum_l (gamma lambda)^l delta_{t+l}, delta_t = r_t + gamma V_{t+1} - V_t, V_T = 0."""
    n = len(rewards)
    v = values + [0.0]
    deltas = [rewards[t] + gamma * v[t + 1] - v[t] for t in range(n)]
    return [sum((gamma * lam) ** k * deltas[t + k] for k in range(n - t)) for t in range(n)]


floats = st.floats(-3, 3, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(floats, floats), min_size=0, max_size=7), min_size=1, max_size=4),
       st.floats(0, 1), st.floats(0, 1))
def test_gae_matches_the_brute_force_sum_over_padded_rows(rows: list[list[tuple[float, float]]], gamma: float, lam: float) -> None:
    width = max(1, max(len(r) for r in rows))
    rewards, values, mask = torch.zeros(len(rows), width), torch.zeros(len(rows), width), torch.zeros(len(rows), width)
    for i, row in enumerate(rows):
        for t, (r, v) in enumerate(row):
            rewards[i, t], values[i, t], mask[i, t] = r, v, 1.0
        # garbage in the padding must not leak into the real tokens
        rewards[i, len(row):], values[i, len(row):] = 5.0, -7.0
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    for i, row in enumerate(rows):
        expected = brute_force_gae([r for r, _ in row], [v for _, v in row], gamma, lam)
        got = advantages[i, :len(row)].tolist()
        assert got == pytest.approx(expected, abs=1e-3)
        assert returns[i, :len(row)].tolist() == pytest.approx([a + v for a, (_, v) in zip(expected, row)], abs=1e-3)
        assert torch.all(advantages[i, len(row):] == 0) and torch.all(returns[i, len(row):] == 0)


def test_gae_by_hand() -> None:
    # gamma = lambda = 1: A_t = (sum of rewards from t on) - V_t, the Monte-Carlo advantage.
    advantages, returns = gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.2, 0.9]]), torch.ones(1, 3), 1.0, 1.0)
    assert advantages.tolist()[0] == pytest.approx([0.5, 0.8, 0.1])
    assert returns.tolist()[0] == pytest.approx([1.0, 1.0, 1.0])
    # lambda = 0: one-step TD errors, delta_t = r_t + gamma V_{t+1} - V_t.
    advantages, _ = gae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.2]]), torch.ones(1, 2), 0.9, 0.0)
    assert advantages.tolist()[0] == pytest.approx([0.9 * 0.2 - 0.5, 1.0 - 0.2])


def test_gae_gives_a_masked_sample_nothing() -> None:
    out = gae_advantages(torch.zeros(1, 2), torch.tensor([[True, False]]), [torch.tensor([0.0, 1.0]), torch.tensor([1.0])],
                         [torch.tensor([0.1, 0.2]), torch.tensor([0.3])], gamma=1.0, lam=1.0)
    assert out[0].tolist() == pytest.approx([0.9, 0.8], abs=1e-6) and out[1].tolist() == [0.0]


def test_the_clipped_value_loss_by_hand() -> None:
    old, returns, mask = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, -1.0]]), torch.ones(1, 2)
    # token 0: V moved 0.5 towards R = 1 (clip range 0.2): clipped V = 0.2, (0.2 - 1)^2 = 0.64 > (0.5 - 1)^2 = 0.25
    # token 1: V = -0.1, inside the range: both terms equal (0.9^2 = 0.81)
    loss, bound = value_loss(torch.tensor([[0.5, -0.1]]), old, returns, mask, 0.2)
    assert float(loss) == pytest.approx(0.5 * (0.64 + 0.81) / 2)
    assert bound == pytest.approx(0.5)


def test_explained_variance_and_whitening() -> None:
    returns = [torch.tensor([1.0, 2.0]), torch.tensor([3.0])]
    assert explained_variance(returns, returns) == pytest.approx(1.0)
    assert explained_variance([torch.full((2,), 2.0), torch.tensor([2.0])], returns) == pytest.approx(0.0)
    assert explained_variance([torch.tensor([3.0, 2.0]), torch.tensor([1.0])], returns) < 0
    white = whiten([torch.tensor([1.0, 2.0]), torch.tensor([9.0]), torch.tensor([3.0])], [0, 2])
    flat = torch.cat([white[0], white[2]])
    assert float(flat.mean()) == pytest.approx(0.0, abs=1e-6) and float(flat.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    assert white[1].tolist() == [9.0]  # not a member: untouched


def test_minibatches_partition_the_samples_in_a_seeded_order() -> None:
    parts = minibatch_order(list(range(10)), 3, seed=4)
    assert sorted(i for part in parts for i in part) == list(range(10)) and len(parts) == 3
    assert parts == minibatch_order(list(range(10)), 3, seed=4) and parts != minibatch_order(list(range(10)), 3, seed=5)
    assert minibatch_order([4, 2, 7], 1, seed=0) == [[4, 2, 7]]  # one minibatch keeps the order


PPO = {"advantage": "gae", "kl_coef": 0.05, "kl_estimator": "k1", "epochs": 2, "minibatches": 2, "gamma": 1.0, "lam": 0.95}


def test_ppo_trains_the_policy_and_the_critic_and_reports_its_diagnostics(tmp_path: Path) -> None:
    seen, results = [], []
    train(toy_config(tmp_path / "ppo", steps=12, algorithm=PPO, critic={"lr": 1e-2}), model=tiny_model(), tokenizer=tokenizer(),
          reward=vowel_share, train_rows=ROWS, eval_rows=[], on_step=seen.append, on_result=results.append)
    assert len(seen) == 12
    for row in seen:
        for key in ("approx_kl", "clip_fraction", "explained_variance", "value_loss", "value_clip_fraction", "return_mean"):
            assert math.isfinite(row[key]), key
        assert row["optimizer_steps"] == 4.0  # 2 epochs x 2 minibatches
    assert seen[0]["value_mean"] == 0.0  # the zero-initialised head
    assert max(r["approx_kl"] for r in seen) > 0  # later minibatches moved away from the sampler
    assert max(abs(r["value_mean"]) for r in seen[1:]) > 0  # the critic learned something
    assert seen[-1]["value_loss"] < seen[0]["value_loss"]
    first = sum(r["reward_mean"] for r in seen[:3]) / 3
    last = sum(r["reward_mean"] for r in seen[-3:]) / 3
    assert last > first
    result = results[0]
    assert isinstance(result.advantages, list)  # one advantage per token
    assert [len(a) for a in result.advantages] == [len(c) for c in result.batch.rollouts.completion_ids]
    used = torch.cat([a for a, keep in zip(result.advantages, result.take_part) if keep])
    assert float(used.mean()) == pytest.approx(0.0, abs=1e-5)  # whitened over the batch
    assert float(used.std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)


def test_bf16_ppo_minibatches_train_on_the_weights_each_step_left(tmp_path: Path) -> None:
    # Autocast keeps one bfloat16 copy of each weight for its whole context, and a step's updates
    # all run in one: without clearing it after each optimiser step, the second minibatch and
    # epoch would run the weights from before the first, and PPO's ratio would stay exactly 1.
    # Only the matrix weights train (autocast casts those), so a stale copy changes nothing at all.
    model, seen = tiny_model(), []
    for name, weight in model.named_parameters():
        weight.requires_grad_(name.endswith("proj.weight"))
    train(toy_config(tmp_path / "ppo", steps=2, algorithm=PPO, critic={"lr": 1e-2}, precision="bf16"), model=model,
          tokenizer=tokenizer(), reward=vowel_share, train_rows=ROWS, eval_rows=[], on_step=seen.append)
    assert [row["optimizer_steps"] for row in seen] == [4.0, 4.0]
    assert all(row["approx_kl"] > 0 for row in seen)  # later minibatches saw the moved policy


def test_ppo_resume_restores_the_critic(tmp_path: Path) -> None:
    config = dict(steps=4, algorithm=PPO, critic={"lr": 1e-2}, checkpoint_every=2)
    whole: list[dict] = []
    train(toy_config(tmp_path / "whole", **config), model=tiny_model(), tokenizer=tokenizer(), reward=vowel_share,
          train_rows=ROWS, eval_rows=[], on_step=whole.append)
    first: list[dict] = []
    train(toy_config(tmp_path / "cut", **{**config, "steps": 2}), model=tiny_model(), tokenizer=tokenizer(), reward=vowel_share,
          train_rows=ROWS, eval_rows=[], on_step=first.append)
    assert (tmp_path / "cut" / "checkpoints" / "step-000002" / "critic.pt").exists()
    rest: list[dict] = []
    train(toy_config(tmp_path / "cut", **config), resume=tmp_path / "cut", model=tiny_model(), tokenizer=tokenizer(),
          reward=vowel_share, train_rows=ROWS, eval_rows=[], on_step=rest.append)
    assert [r["step"] for r in rest] == [3, 4]
    for ours, theirs in zip(first + rest, whole):
        for key in ("reward_mean", "loss", "value_loss", "value_mean", "explained_variance"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), (ours["step"], key)
    saved = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert saved["algorithm"]["kl_in_reward"] is True  # PPO's KL penalty is in the per-token reward
