from __future__ import annotations

import math

import pytest

import payoff
from payoff.compose import CalibrationShaper, HapoShaper, LaserDShaper, Rubric, Term, noisy_corrected, par_reward, step_shaped
from payoff.compose.transforms import sigmoid
from payoff.core import Outcome, Reward


def from_meta(name: str) -> Reward:
    return Reward(lambda sample: Outcome.ok(sample.meta[name]), name=name)


def batch(rows: list[tuple[str, bool, int]]) -> list[dict]:
    return [{"completion": "x", "prompt": p, "group": p, "meta": {"correct": float(c), "num_tokens": n}} for p, c, n in rows]


def test_hapo_rewards_beating_the_shortest_correct_length_seen_so_far() -> None:
    hapo = HapoShaper(weight=1.0, correct_term="correct")
    rubric = Rubric([Term(from_meta("correct"))], shapers=[hapo])
    first = payoff.score(batch([("p", True, 100), ("p", True, 200)]), rubric, workers=0)
    assert [o.components["hapo"] for o in first] == [0.0, 0.0]  # no history yet
    assert hapo.history  # h = 100 for prompt p
    second = payoff.score(batch([("p", True, 50), ("p", True, 100), ("p", True, 300), ("p", False, 20), ("p", False, 300)]), rubric, workers=0)
    bonus = [o.components["hapo"] for o in second]
    assert bonus[0] == pytest.approx(math.cos(math.pi / 4)) and bonus[1] == pytest.approx(0.0, abs=1e-12)
    assert bonus[2] == pytest.approx(-1.0) and bonus[3] == 0.0 and bonus[4] == pytest.approx(-1.0)
    assert second[0].score == pytest.approx(1 + math.cos(math.pi / 4))
    assert list(hapo.history.values()) == [50]


def test_laser_d_adapts_the_target_per_difficulty() -> None:
    shaper = LaserDShaper(alpha=1.0, coverage=0.5, initial=1000, correct_term="correct")
    rubric = Rubric([Term(from_meta("correct"))], shapers=[shaper])
    rows = [("easy", True, 100), ("easy", True, 300), ("easy", True, 500),
            ("hard", False, 50), ("hard", False, 60), ("hard", False, 70), ("hard", True, 900)]  # accuracy 1/4: hard
    outcomes = payoff.score(batch(rows), rubric, workers=0)
    assert [o.components["laser_d"] for o in outcomes] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert shaper.targets["easy"] == 300 and shaper.targets["hard"] == 900 and shaper.targets["medium"] == 1000
    again = payoff.score(batch([("easy", True, 400), ("easy", True, 200), ("easy", True, 250)]), rubric, workers=0)
    assert [o.components["laser_d"] for o in again] == [0.0, 1.0, 1.0]


def test_calibration_shaper() -> None:
    shaper = CalibrationShaper(alpha=1.0, weight=1.0)
    rubric = Rubric([Term(from_meta("r"))], shapers=[shaper])
    samples = [{"completion": "<confidence>0.9</confidence>", "meta": {"r": 1.0}}, {"completion": "<confidence>0.9</confidence>", "meta": {"r": 0.0}}]
    outcomes = payoff.score(samples, rubric, workers=0)
    assert [o.score for o in outcomes] == pytest.approx([1 + 0.5 * 0.4, 0 - 0.5 * 0.4])


def test_par_wrapper() -> None:
    base = Reward(lambda sample: float(len(sample.completion)), name="len")
    wrapped = par_reward(base)
    outcome = wrapped({"completion": "abcd", "meta": {"reference_completions": ["ab", "abcdef"]}})
    assert outcome.score == pytest.approx((sigmoid(2) + sigmoid(-2)) / 2)
    assert wrapped({"completion": "abcd"}).status == "abstain"


def test_noisy_corrected_wrapper() -> None:
    wrapped = noisy_corrected(payoff.get_reward("exact_match"), rho_fp=0.1, rho_fn=0.2)
    assert wrapped({"completion": "a", "reference": "a"}).score == pytest.approx((1 - 0.1) / 0.7)
    assert wrapped({"completion": "b", "reference": "a"}).score == pytest.approx(-0.1 / 0.7)
    with pytest.raises(ValueError):
        noisy_corrected(payoff.get_reward("exact_match"), rho_fp=0.5, rho_fn=0.5)


def test_step_shaped_wrapper() -> None:
    prm = Reward(lambda sample: Outcome.ok(0.0, step_rewards=sample.meta["steps"]), name="prm")
    steps = {"completion": "", "meta": {"steps": [0.9, 0.8, 0.95]}}
    assert step_shaped(prm, "delta")(steps).score == pytest.approx(0.9)  # telescopes to r_1
    assert step_shaped(prm, "clip", eta=0.9)(steps).score == pytest.approx(-0.1)
    assert step_shaped(prm, "min")(steps).score == pytest.approx(0.8)
    assert step_shaped(Reward(lambda sample: 1.0, name="flat"), "clip")(steps).status == "error"


def test_a_batch_shaped_without_learning_leaves_the_shapers_as_they_stood() -> None:
    from payoff.engine import Engine, run_batch_step

    rubric = Rubric([Term(from_meta("correct"))], shapers=[HapoShaper(weight=1.0, correct_term="correct"), CalibrationShaper(alpha=0.5)])
    with Engine(rubric, workers=0) as engine:
        engine.score(batch([("p", True, 100), ("q", True, 40)]))
        learned = rubric.state_dict()
        rows = batch([("p", True, 50), ("p", False, 300), ("q", True, 80)])
        dry = engine.score(rows, batch_step=False)
        run_batch_step(rubric, [payoff.Sample.from_dict(r) for r in rows], dry, learn=False)
        assert rubric.state_dict() == learned  # nothing learned from that batch
        wet = engine.score(rows)  # the same batch, learning: the same scores, then the state moves
    assert [o.score for o in dry] == [o.score for o in wet] and dry[0].components["hapo"] == pytest.approx(math.cos(math.pi / 4))
    assert rubric.state_dict() != learned


def test_a_rubric_checkpoints_what_its_shapers_learned() -> None:
    def rubric() -> Rubric:
        return Rubric([Term(from_meta("correct"))], shapers=[HapoShaper(correct_term="correct"), LaserDShaper(correct_term="correct"),
                                                            CalibrationShaper(), lambda samples, outcomes: None])

    trained, restored = rubric(), rubric()
    payoff.score(batch([("p", True, 100), ("p", False, 20)]), trained, workers=0)
    saved = trained.state_dict()
    assert saved[-1] is None and saved[0]["history"]  # a shaper without state has nothing to save
    restored.load_state_dict(saved)
    assert restored.state_dict() == saved
