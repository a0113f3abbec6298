"""A training step means one `payoff score` call over the step's samples: a Rubric's batch step
(batch normalisation, HAPO / LASER-D / PPO-C state) runs once over the whole step, however many
generation batches the step takes. Real Engine, real Rubric; the generator is a small stand-in
(ours, not a foreign protocol) that writes known completions."""

from __future__ import annotations

import random

import pytest

from payoff.compose.config import rubric_from_dict
from payoff.engine import Engine
from payoff.models.rollout import Rollouts, SamplingParams
from payoff.rl.batch import collect, to_samples
from payoff.rl.config import TrainConfig
from payoff.rl.heldout import heldout_accuracy
from payoff.rl.scoring import EngineScoring
from tests.rl.toy import HERE

ROWS = [{"prompt": f"Name fruit number {i}.", "reference": fruit} for i, fruit in enumerate(["apple", "pear", "plum", "fig"])]
GROUP, BATCH = 4, 8  # 16 samples a step, in 2 generation batches


def shaping_rubric():
    """Batch-normalised, with all three stateful shapers: anything computed per generation batch
    instead of per step shows in the scores or in the shapers' state."""
    return rubric_from_dict({
        "terms": [{"name": "exact_match", "weight": 1.0}, {"name": f"{HERE / 'toy.py'}:vowel_share", "label": "vowels", "weight": 0.5}],
        "normalize": "batch",
        "shapers": [{"kind": "hapo", "params": {"weight": 0.5, "correct_term": "exact_match", "unit": "chars"}},
                    {"kind": "laser_d", "params": {"alpha": 0.5, "initial": 30, "correct_term": "exact_match", "unit": "chars"}},
                    {"kind": "ppo_c", "params": {"alpha": 0.5, "weight": 1.0}}]})


class ScriptedGenerator:
    """Completions of known text: a think block of random length, then the reference or a wrong
    fruit; greedy completions are the shortest correct ones."""

    def __init__(self, seed: int = 0) -> None:
        self.random = random.Random(seed)
        self.calls: list[int] = []

    def generate(self, prompts, params, greedy: bool = False) -> Rollouts:
        self.calls.append(len(prompts))
        result = Rollouts()
        for prompt in prompts:
            answer = next(row["reference"] for row in ROWS if row["prompt"] == prompt)
            if not greedy and self.random.random() < 0.5:
                answer = self.random.choice(["kiwi", "lime"])
            think = "" if greedy else "hm " * self.random.randint(0, 8)
            text = f"<think>{think}</think>{answer}"
            result.extend(Rollouts([[1, 2]], [list(range(len(text) // 4 + 1))], [text], [False]))
        return result

    def weights_changed(self) -> None:
        pass


def _state(rubric) -> list:
    return [shaper.state_dict() for shaper in rubric.options.shapers]


def _view(outcomes) -> list:
    return [(o.status, o.score, dict(o.components)) for o in outcomes]


def _step(generator, rubric, step: int, greedy: bool = False):
    config = TrainConfig.model_validate({"rollout": {"group_size": GROUP, "batch_size": BATCH, "max_new_tokens": 8},
                                         "algorithm": {"advantage": "remax" if greedy else "grpo"}})
    with Engine(rubric, workers=0) as engine:
        return collect(generator, EngineScoring(engine), ROWS, [row["prompt"] for row in ROWS], config, step, "exact_match")


@pytest.mark.parametrize("greedy", [False, True], ids=["grpo", "remax"])
def test_a_step_of_two_generation_batches_is_one_score_call(greedy: bool) -> None:
    trained, reference = shaping_rubric(), shaping_rubric()
    generator = ScriptedGenerator()
    for step in range(3):  # the shapers' history carries from step to step
        batch = _step(generator, trained, step, greedy)
        assert generator.calls[-2 if greedy else -1] == BATCH and len(batch.outcomes) == GROUP * len(ROWS)
        samples = to_samples(ROWS, batch.rollouts, 0, GROUP, step)
        with Engine(reference, workers=0) as engine:
            expected = engine.score(samples)
        assert _view(batch.outcomes) == _view(expected), step
        assert _state(trained) == _state(reference), step
        assert batch.rewards.flatten().tolist() == pytest.approx([o.score for o in expected])
    assert _state(trained)[0]["history"] and _state(trained)[2]["rbar"] != 0.0  # the shapers did learn


def test_held_out_evaluation_never_moves_the_shapers() -> None:
    rubric = shaping_rubric()
    generator = ScriptedGenerator()
    _step(generator, rubric, 0)
    learned = _state(rubric)
    with Engine(rubric, workers=0) as engine:
        result = heldout_accuracy(generator, EngineScoring(engine), ROWS, [row["prompt"] for row in ROWS], SamplingParams(), "exact_match",
                                  1.0, pass_k=2)
    assert result["accuracy"] == 1.0 and result["statuses"] == ["ok"] * len(ROWS)  # greedy: every answer right
    assert _state(rubric) == learned
