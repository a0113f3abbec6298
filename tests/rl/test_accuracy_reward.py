"""`accuracy_reward` is the verifier's verdict on every path: when it is not a term of the training
reward (a reward model, a judge, any reward scoring everything high), it is scored beside it and
accuracy counts its score, never the training reward's total."""

from __future__ import annotations

import json
from pathlib import Path

from payoff.core import Outcome, Sample
from payoff.engine import Engine
from payoff.registry import get_reward
from payoff.rl.loop import train
from payoff.rl.scoring import AccuracyJoin, is_correct
from tests.rl.test_trainer import toy_config
from tests.rl.toy import pays_for_length, tiny_model, tokenizer

ROWS = [{"prompt": f"Say the code word {i}.", "reference": "zebra-quartz-7"} for i in range(16)]


def test_a_named_component_the_outcome_lacks_is_not_correct() -> None:
    high = Outcome.ok(0.9)
    assert is_correct(high, None, 0.5)
    assert not is_correct(high, "math", 0.5)  # its check failed: the 0.9 of another reward does not stand in
    high.components["math"] = 1.0
    assert is_correct(high, "math", 0.5)


def test_the_accuracy_reward_joins_the_components_of_each_outcome() -> None:
    samples = [Sample(completion=c, prompt="2+2?", reference="4") for c in ("The answer is \\boxed{4}", "The answer is \\boxed{5}",
                                                                             "x" * 150)]
    with Engine(pays_for_length, workers=0) as reward, Engine(get_reward("math"), workers=1) as checker:
        outcomes = AccuracyJoin(reward, checker, "math").score(samples)
    assert [o.score for o in outcomes] == [min(len(s.completion), 200) / 100 for s in samples]  # the reward is untouched
    assert [o.components.get("math") for o in outcomes] == [1.0, 0.0, 0.0]
    assert [is_correct(o, "math", 0.5) for o in outcomes] == [True, False, False]


def test_train_counts_the_verifier_not_a_reward_that_pays_everything(tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = toy_config(run, steps=2, accuracy_reward="exact_match", rollout={"group_size": 2, "prompts_per_step": 2,
                                                                               "max_new_tokens": 8, "batch_size": 4})
    summary = train(config, model=tiny_model(), tokenizer=tokenizer(), reward=pays_for_length, train_rows=ROWS, eval_rows=ROWS[:4])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # the length reward pays every completion >= the 0.3 threshold; a random model never says the code word
    assert all(r["reward_mean"] > 0 for r in rows)
    assert summary["accuracy_before"] == 0.0 and summary["accuracy_after"] == 0.0
    assert all(r["accuracy"] == 0.0 for r in rows)
    assert all(r["reward/exact_match"] == 0.0 for r in rows)  # the verdict was scored and joined, not merely absent
