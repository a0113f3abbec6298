"""Step rewards in `payoff rl train`: process-supervised GRPO (DeepSeekMath) wired to a reward
that reports steps, and the mapping of step ends from characters to sampled tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from payoff.rl.loop import train
from payoff.rl.token_advantages import process_advantages
from payoff.rl.token_context import char_ends_to_tokens
from tests.rl.test_trainer import ROWS, toy_config
from tests.rl.toy import tiny_model, tokenizer, two_steps


def test_character_ends_map_to_the_token_that_reaches_them() -> None:
    tok = tokenizer()
    text = "First, 12 + 30 = 42.\n\nSo the answer is 42."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    ends = [len("First"), text.index("\n\n") + 2, len(text), len(text) + 10]
    tokens = char_ends_to_tokens(tok, ids, ends)
    for end, index in zip(ends, tokens):
        reached = len(tok.decode(ids[: index + 1]))
        assert reached >= min(end, len(text))
        assert index == 0 or len(tok.decode(ids[:index])) < min(end, len(text))
    assert tokens[-1] == tokens[-2] == len(ids) - 1
    assert char_ends_to_tokens(tok, [], [3]) == [0]


def test_process_grpo_trains_on_the_step_rewards_the_reward_reports(tmp_path: Path) -> None:
    results, seen = [], []
    train(toy_config(tmp_path / "process", steps=3, algorithm={"advantage": "process_grpo"}), model=tiny_model(),
          tokenizer=tokenizer(), reward=two_steps, train_rows=ROWS, eval_rows=[], on_step=seen.append, on_result=results.append)
    assert all(r["trained_samples"] > 0 for r in seen)
    tok = tokenizer()
    for result in results:
        batch = result.batch
        size = batch.group_size
        for p in range(len(batch.rows)):
            members = range(p * size, (p + 1) * size)
            rewards, ends, lengths = [], [], []
            for i in members:
                ids, info = batch.rollouts.completion_ids[i], batch.outcomes[i].info
                if info.get("step_rewards"):
                    rewards.append(info["step_rewards"])
                    ends.append(char_ends_to_tokens(tok, ids, info["step_ends"]))
                else:  # an empty completion: its outcome is one step at its (absent) last token
                    rewards.append([batch.outcomes[i].score])
                    ends.append([max(len(ids) - 1, 0)])
                lengths.append(len(ids))
            expected = process_advantages(rewards, ends, lengths)
            for k, i in enumerate(members):
                assert torch.allclose(result.advantages[i], expected[k], atol=1e-5)
    steps = [r for r in results if any(len(a) > 1 and a[0] != a[-1] for a in r.advantages)]
    assert steps, "tokens of the first half should carry both steps' advantages, the second half only the last"
    assert seen[0]["process/samples_without_steps"] == pytest.approx(0.0)
