"""The Ray backend on a local Ray cluster gives the local pool's outcomes, timeouts included."""

from __future__ import annotations

import pytest

from payoff.core import Sample, reward
from payoff.engine import score


@reward(name="ray_test_mixed", timeout=1.0)
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
