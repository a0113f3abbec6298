"""Every `payoff rl train` example config validates, variants included, and names rewards that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from payoff.rl.config import load_config, variant_configs
from payoff.rl.trainer import reward_from_config

ROOT = Path(__file__).resolve().parents[2]
TRAIN_EXAMPLES = ["demo.toml", "minimalist.toml", "ppo_vs_grpo.toml", "self_rewards.toml", "judges/train_with_judge.toml",
                  "rm/train_against_rm.toml", "multiturn/feedback.toml", "multiturn/calculator.toml"]


@pytest.mark.parametrize("name", TRAIN_EXAMPLES)
def test_train_examples_validate(name: str) -> None:
    config = load_config(ROOT / "examples" / name)
    configs = list(variant_configs(config).values()) or [config]
    for variant in configs:
        if "out/rm_example/rm" in str(variant.reward):
            continue  # needs the worked example's trained RM on disk
        reward = reward_from_config(variant.reward)
        assert reward.name


def test_the_ppo_example_is_ppo_and_the_self_rewards_read_the_policy() -> None:
    ppo = variant_configs(load_config(ROOT / "examples" / "ppo_vs_grpo.toml"))
    assert ppo["ppo"].algorithm.advantage == "gae" and ppo["ppo"].algorithm.kl_in_reward
    assert ppo["grpo"].time_budget_s == ppo["ppo"].time_budget_s
    selves = variant_configs(load_config(ROOT / "examples" / "self_rewards.toml"))
    for variant in selves.values():
        assert getattr(reward_from_config(variant.reward), "policy_scorer", None) is not None
