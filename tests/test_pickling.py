"""Everything pickles: every built-in reward, wrapped terms, rubrics and remote_reward, and the
engine scores the same under the spawn start method as under fork."""

from __future__ import annotations

import pickle

import pytest

import payoff
from payoff.compose import Rubric, Term
from payoff.compose.shapers import HapoShaper
from payoff.compose.wrappers import noisy_corrected, par_reward, step_shaped
from payoff.engine import Engine
from payoff.registry import get_reward, list_rewards

SAMPLES = [{"completion": "<think>ok</think> The answer is \\boxed{4}.", "reference": "4", "prompt": "2+2?", "group": 0},
           {"completion": "<think>ok</think> The answer is \\boxed{5}.", "reference": "4", "prompt": "2+2?", "group": 0}]


def _view(outcomes):
    return [(o.score, o.status, sorted(o.components.items())) for o in outcomes]


@pytest.mark.parametrize("name", sorted(list_rewards()))
def test_every_builtin_reward_pickles_to_an_equal_reward(name: str) -> None:
    reward = get_reward(name)
    copy = pickle.loads(pickle.dumps(reward))
    assert copy.name == reward.name and copy.fingerprint() == reward.fingerprint()


def _composed() -> list:
    math = get_reward("math")
    return [
        noisy_corrected(math, 0.1, 0.2),
        step_shaped(math, "clip", eta=0.1),
        par_reward(math),
        get_reward("cosine_length").configure(max_length=64),
        Rubric([Term(math), Term(get_reward("think_format"), 0.2, gate="math >= 1"), Term(noisy_corrected(math, 0.05, 0.1), 0.5, label="noisy")],
               normalize="group", shapers=[HapoShaper(weight=0.3, unit="words")]),
        payoff.remote_reward("http://127.0.0.1:9"),
    ]


@pytest.mark.parametrize("index", range(6))
def test_wrapped_terms_rubrics_and_remote_rewards_pickle(index: int) -> None:
    reward = _composed()[index]
    copy = pickle.loads(pickle.dumps(reward))
    assert copy.name == reward.name and copy.fingerprint() == reward.fingerprint()
    if index < 5:  # the remote one needs a server; the others score the same after the round trip
        assert _view([copy.score_one(payoff.Sample.from_dict(s)) for s in SAMPLES]) == \
            _view([reward.score_one(payoff.Sample.from_dict(s)) for s in SAMPLES])


@pytest.mark.parametrize("reward_index", [None, 4])
def test_the_engine_gives_the_same_outcomes_under_spawn_and_fork(reward_index) -> None:
    reward = get_reward("math") if reward_index is None else _composed()[reward_index]
    results = {}
    for method in ("fork", "spawn"):
        with Engine(pickle.loads(pickle.dumps(reward)), workers=2, start_method=method) as engine:
            results[method] = _view(engine.score(SAMPLES * 3))
    assert results["spawn"] == results["fork"]
