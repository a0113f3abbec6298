"""The Ray backend on a local Ray cluster gives the local pool's outcomes, timeouts included."""

from __future__ import annotations

import pytest

from payoff.core import Sample, reward
from payoff.engine import score


@reward(name="ray_test_mixed", timeout_s=1.0)
def mixed(sample: Sample) -> float:
    """Hangs, raises or scores, depending on the completion."""
    if sample.completion == "hang":
        import time

        time.sleep(60)
    if sample.completion == "raise":
        raise ValueError("bad sample")
    return float(len(sample.completion))


@pytest.fixture(scope="module")
def ray_cluster():
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_local_results_including_timeouts(ray_cluster) -> None:
    samples = [{"completion": c} for c in ["a", "bb", "hang", "raise", "cccc", "dd", "e"]] + [{"prompt": "no completion"}]
    local = score(samples, mixed, workers=2)
    remote = score(samples, mixed, backend="ray", actors=2, workers_per_actor=1)
    assert [o.status for o in remote] == [o.status for o in local] == ["ok", "ok", "timeout", "error", "ok", "ok", "ok", "error"]
    assert [o.score for o in remote] == [o.score for o in local]
    assert "bad sample" in remote[3].info["error"] and remote[3].info["error"] == local[3].info["error"]
    assert remote[7].info["error"] == local[7].info["error"] == "sample 7: missing field 'completion'"


@pytest.mark.slow
def test_serve_with_the_ray_backend_answers_like_the_local_one() -> None:
    import httpx

    from tests.serve.helpers import running_server

    samples = [{"completion": "\\boxed{4}", "reference": "4"}, {"completion": "5", "reference": "4"}, {"completion": "x", "reference": "\\boxed{"}]
    with running_server("--reward", "math", "--backend", "ray", ready_timeout=120) as (url, _):
        served = httpx.post(f"{url}/v1/score", json={"samples": samples}, timeout=60).json()["outcomes"]
    local = score(samples, "math", workers=0)
    assert [(o["reward"], o["status"]) for o in served] == [(o.score, o.status) for o in local]


def _shaping_rubric():
    from payoff.compose import Rubric, Term
    from payoff.compose.shapers import HapoShaper, LaserDShaper
    from payoff.registry import get_reward

    return Rubric([Term(get_reward("math")), Term(get_reward("think_format"), 0.2)], normalize="group",
                  shapers=[HapoShaper(weight=0.5, unit="words"), LaserDShaper(alpha=0.3, initial=8, unit="words")])


def _batch(step: int) -> list[dict]:
    samples = []
    for group in range(6):  # 6 prompts x 4 samples: groups straddle any split over two actors
        for k in range(4):
            right = (group + k + step) % 3 != 0
            words = " ".join(["step"] * (k + 2 * step))
            samples.append({"prompt": f"What is {group} + {group}?", "group": group, "reference": str(2 * group),
                            "completion": f"<think>{words}</think> The answer is {2 * group if right else 2 * group + 1}."})
    return samples


@pytest.mark.slow
def test_a_normalising_shaping_rubric_gives_the_same_outcomes_locally_and_on_ray(ray_cluster) -> None:
    """Group normalisation and HAPO / LASER-D state over two consecutive batches: the batch step
    runs once, over the whole batch, in the caller (which owns the state), on both backends."""
    from payoff.engine import Engine
    from payoff.engine.ray_backend import RayEngine

    local_rubric, ray_rubric = _shaping_rubric(), _shaping_rubric()
    with Engine(local_rubric, workers=2) as local, RayEngine(ray_rubric, actors=2, workers_per_actor=1) as remote:
        for step in range(2):
            here, there = local.score(_batch(step)), remote.score(_batch(step))
            assert [(o.score, o.status, o.components) for o in there] == [(o.score, o.status, o.components) for o in here]
    assert ray_rubric.options.shapers[0].history == local_rubric.options.shapers[0].history != {}
    assert ray_rubric.options.shapers[1].targets == local_rubric.options.shapers[1].targets
