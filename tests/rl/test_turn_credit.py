"""Credit over turns: episode-level advantages from every GRPO-family estimator and from PPO's GAE
over the policy's tokens only, and turn-level advantages (`turn_rewards` through process_grpo,
G-RA gating), each against a brute-force loop."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.rl import algorithms as alg
from payoff.rl.token_advantages import process_grpo_advantages, turn_steps
from payoff.rl.trainer import Trainer
from tests.rl.episode_kit import config
from tests.rl.toy import TOY_REWARD, tiny_model, tokenizer

ROWS = [{"prompt": f"What is {a} + {b}? Answer with only the number.", "reference": str(a + b)} for a, b in [(1, 2), (3, 4), (5, 6)]]


# -- the pure formulas ----------------------------------------------------------------------------
def brute_turn_advantages(groups: list[list[tuple[float, list[float], list[int], int]]], eps: float = 1e-6) -> list[list[float]]:
    """Per episode (score R, turn rewards, turn ends, length): r_t = turn_rewards[t], the last
    turn also R - sum(turn_rewards); per group, every turn reward of every episode is normalised
    by the group's mean and population std; a token's advantage is the sum over turns ending at
    or after it."""
    out = []
    for group in groups:
        steps = []
        for score, turn_rewards, _, _ in group:
            rewards = list(turn_rewards)
            rewards[-1] += score - sum(turn_rewards)
            steps.append(rewards)
        flat = [r for s in steps for r in s]
        mean = sum(flat) / len(flat)
        std = math.sqrt(sum((r - mean) ** 2 for r in flat) / len(flat))
        for rewards, (_, _, ends, length) in zip(steps, group):
            tokens = []
            for t in range(length):
                value = 0.0
                for reward, end in zip(rewards, ends):
                    if end >= t:
                        value += (reward - mean) / (std + eps)
                tokens.append(value)
            out.append(tokens)
    return out


@st.composite
def episode_groups(draw: st.DrawFn) -> list[list[tuple[float, list[float], list[int], int]]]:
    size = draw(st.integers(1, 4))
    groups = []
    for _ in range(draw(st.integers(1, 3))):
        group = []
        for _ in range(size):
            turns = draw(st.integers(1, 4))
            lengths = draw(st.lists(st.integers(1, 5), min_size=turns * 2, max_size=turns * 2))  # sampled, written, ...
            ends, position = [], 0
            for t in range(turns):
                position += lengths[2 * t]
                ends.append(position - 1)
                if t < turns - 1:
                    position += lengths[2 * t + 1]
            values = st.floats(-2, 2, allow_nan=False).map(lambda x: round(x, 3))
            group.append((draw(values), draw(st.lists(values, min_size=turns, max_size=turns)), ends, position))
        groups.append(group)
    return groups


@settings(max_examples=60, deadline=None)
@given(episode_groups())
def test_turn_level_advantages_match_a_brute_force_loop(groups: list) -> None:
    size = len(groups[0])
    rewards = torch.tensor([[e[0] for e in g] for g in groups])
    steps = [turn_steps(e[0], e[1], len(e[2])) for g in groups for e in g]
    ends = [list(e[2]) for g in groups for e in g]
    lengths = [e[3] for g in groups for e in g]
    got = process_grpo_advantages(rewards, torch.ones(len(groups), size, dtype=torch.bool), steps, ends, lengths)
    for a, b in zip(got, brute_turn_advantages(groups)):
        assert a.tolist() == pytest.approx(b, abs=1e-4)


def test_turn_steps_add_up_to_the_episode_reward_and_reject_misaligned_turn_rewards() -> None:
    assert turn_steps(1.3, [0.1, 0.2, 0.0], 3) == pytest.approx([0.1, 0.2, 1.0])
    assert sum(turn_steps(1.3, [0.1, 0.2, 0.0], 3)) == pytest.approx(1.3)
    assert turn_steps(1.0, [0.5], 2) is None and turn_steps(1.0, None, 1) is None and turn_steps(1.0, [float("nan")], 1) is None


# -- through the trainer, on episodes played by a real (tiny) model --------------------------------
def _trainer(env: dict, **changes: object) -> Trainer:
    changes.setdefault("reward", TOY_REWARD)  # vowels vary between random completions: advantages are not all 0
    cfg = config(env, **changes)
    return Trainer(cfg, model=tiny_model(1), tokenizer=tokenizer(), train_rows=ROWS, eval_rows=[])


def _scorer(trainer: Trainer):
    from payoff.engine import Engine
    from payoff.rl.scoring import EngineScoring

    return EngineScoring(Engine(trainer.reward, workers=0))


SAMPLE_LEVEL = sorted(set(alg.ESTIMATORS) - alg.TOKEN_LEVEL)


@pytest.mark.parametrize("name", SAMPLE_LEVEL)
def test_every_sample_estimator_gives_episode_level_advantages(name: str) -> None:
    """Each GRPO-family estimator sees the episodes' rewards as a [P, G] grid; the update trains
    the policy's tokens of every episode with a non-zero advantage."""
    trainer = _trainer({"name": "feedback", "options": {"tries": 2}}, algorithm={"advantage": name}, rollout={"group_size": 3})
    torch.manual_seed(0)
    result = trainer.train_step(_scorer(trainer), 0)
    batch = result.batch
    assert batch.episodes is not None and all(e.turns == 2 for e in batch.episodes)
    context = {"greedy_rewards": batch.greedy_rewards, "baseline": 0.0}
    if name == "bnpo":
        context["beta_params"] = alg.beta_fit(torch.tensor(list(trainer.state.success_history)[:-len(batch.rows)] or [0.5]))
    expected = alg.advantages(name, batch.rewards, batch.valid, **context).flatten()
    if name != "bnpo":  # BNPO's Beta is fitted to a history that this step extended
        assert result.advantages.tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    assert result.metrics["trained_samples"] == float(sum(1 for a in result.advantages if a != 0))
    assert result.metrics["episode/env_tokens"] > 0 and result.metrics["episode/turns"] == 2


def test_ppo_gae_runs_over_the_policy_tokens_only() -> None:
    """GAE with the environment's tokens taken out: against a brute-force loop over each
    episode's sampled tokens, with a critic whose values are not zero; 0 at environment tokens."""
    trainer = _trainer({"name": "feedback", "options": {"tries": 2}}, algorithm={"advantage": "gae", "gamma": 0.9, "lam": 0.8,
                                                                              "whiten_advantages": False})
    torch.nn.init.normal_(trainer.critic.head.weight, std=0.5)
    torch.manual_seed(0)
    result = trainer.train_step(_scorer(trainer), 0)
    batch = result.batch
    for i, episode in enumerate(batch.episodes):
        mask = torch.tensor(episode.mask, dtype=torch.bool)
        advantages = result.advantages[i]
        assert advantages.shape[0] == len(episode.ids)
        assert bool((advantages[~mask] == 0).all())
    # brute force on a fresh estimate (weights moved, so compute values and advantages together)
    estimate = trainer.estimate(batch)
    score = batch.rewards.flatten()
    for i, episode in enumerate(batch.episodes):
        keep = [k for k, m in enumerate(episode.mask) if m]
        values = [float(estimate.values[i][k]) for k in keep]
        assert any(abs(v) > 1e-4 for v in values)
        rewards = [0.0] * len(keep)
        rewards[-1] = float(score[i])
        expected = []
        for t in range(len(keep)):
            total = 0.0
            for step in range(t, len(keep)):
                following = values[step + 1] if step + 1 < len(keep) else 0.0
                delta = rewards[step] + 0.9 * following - values[step]
                total += (0.9 * 0.8) ** (step - t) * delta
            expected.append(total)
        got = estimate.advantages[i]
        assert [float(got[k]) for k in keep] == pytest.approx(expected, abs=1e-4)
        assert all(float(got[k]) == 0.0 for k in range(len(episode.mask)) if not episode.mask[k])
        assert float(estimate.values[i][[k for k in range(len(episode.mask)) if not episode.mask[k]]].abs().sum()) == 0.0


def test_turn_rewards_reach_the_tokens_of_their_turn() -> None:
    """`try_again` rewards the attempt that succeeded; through process_grpo each turn's tokens get
    the normalised rewards of the turns from theirs on, as the brute-force loop says."""
    trainer = _trainer({"name": "feedback", "options": {"tries": 3}}, reward="try_again", algorithm={"advantage": "process_grpo"},
                       rollout={"group_size": 3})
    torch.manual_seed(0)
    batch, _ = trainer.gather(_scorer(trainer), 0)
    estimate = trainer.estimate(batch)
    groups = []
    for p in range(len(batch.rows)):
        group = []
        for j in range(batch.group_size):
            i = p * batch.group_size + j
            episode, outcome = batch.episodes[i], batch.outcomes[i]
            assert len(outcome.info["turn_rewards"]) == episode.turns
            group.append((float(batch.rewards[p, j]), outcome.info["turn_rewards"], episode.turn_ends, len(episode.ids)))
        groups.append(group)
    for got, expected in zip(estimate.advantages, brute_turn_advantages(groups)):
        assert got.tolist() == pytest.approx(expected, abs=1e-4)
    assert estimate.metrics["process/samples_without_steps"] == 0


def test_gated_turn_rewards_count_only_when_the_outcome_passes() -> None:
    """G-RA: `gated_turns` pays the tool turn's reward only when the final answer is right. A
    policy that calls the calculator, then answers right or wrong at random: the advantages are
    the brute-force loop's, and within a group the tool turn's premium over the answer turn
    (its own normalised reward) is larger where the gate opened than where it stayed shut."""
    import random

    from tests.rl.episode_kit import ScriptedGenerator, calculator_script

    chance = random.Random(0)

    def script(context: str, turn: int) -> str:
        answer = calculator_script(context, turn)
        return answer if turn == 0 or chance.random() < 0.5 else "The answer is 1000"

    trainer = _trainer({"name": "calculator"}, reward="gated_turns", algorithm={"advantage": "process_grpo"},
                       rollout={"group_size": 4, "max_new_tokens": 64})
    trainer.generator = ScriptedGenerator(tokenizer(), script)
    batch, _ = trainer.gather(_scorer(trainer), 0)
    estimate = trainer.estimate(batch)
    groups, premiums = [], []
    for p in range(len(batch.rows)):
        group, shut, opened = [], [], []
        for j in range(batch.group_size):
            i = p * batch.group_size + j
            outcome, episode, advantages = batch.outcomes[i], batch.episodes[i], estimate.advantages[i]
            assert episode.turns == 2 and episode.tool_calls == 1
            group.append((float(batch.rewards[p, j]), outcome.info["turn_rewards"], episode.turn_ends, len(episode.ids)))
            premium = float(advantages[0] - advantages[episode.turn_ends[1]])
            if outcome.components["gate"] == 0.0:
                assert outcome.info["turn_rewards"] == [0.0, 0.0]
                shut.append(premium)
            else:
                assert outcome.info["turn_rewards"] == pytest.approx([0.1, 0.0])
                opened.append(premium)
        groups.append(group)
        if shut and opened:
            premiums.append((max(shut), min(opened)))
    for got, expected in zip(estimate.advantages, brute_turn_advantages(groups)):
        assert got.tolist() == pytest.approx(expected, abs=1e-4)
    assert premiums and all(shut < opened for shut, opened in premiums)
