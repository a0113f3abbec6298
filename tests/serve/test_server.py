"""`payoff serve` over real HTTP on 127.0.0.1, the server in its own process."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payoff.engine import score
from payoff.serve import Client, ServerError, remote_reward
from tests.serve.helpers import SLEEPY, running_server

MATH = [
    {"completion": "The answer is \\boxed{12}.", "reference": "12"},
    {"completion": "I think 13", "reference": "12"},
    {"completion": "x = 1/2", "reference": "0.5"},
    {"completion": "", "reference": "12"},
    {"completion": "5", "reference": "\\boxed{"},
]


@pytest.fixture(scope="module")
def math_server():
    with running_server("--reward", "math", "--workers", "2", "--max-body-mb", "1") as (url, _):
        yield url


def test_score_matches_the_local_engine(math_server: str) -> None:
    response = httpx.post(f"{math_server}/v1/score", json={"samples": MATH})
    assert response.status_code == 200
    served = response.json()["outcomes"]
    local = score(MATH, "math", workers=0)
    assert [(o["reward"], o["status"]) for o in served] == [(o.score, o.status) for o in local]
    assert set(served[0]) == {"reward", "status", "components", "info"}  # payoff score's fields


def test_openrlhf_round_trip(math_server: str) -> None:
    prompts = ["Q: 5+7? A:", "Q: 2+2? A:"]
    body = {"query": [prompts[0] + " 12", prompts[1] + " 5"], "prompts": prompts, "labels": ["12", "4"]}
    reply = httpx.post(f"{math_server}/get_reward", json=body).json()
    assert reply["rewards"] == [1.0, 0.0] and reply["scores"] == [1.0, 0.0]
    assert reply["extra_logs"]["payoff_error"] == [0.0, 0.0]
    bad = httpx.post(f"{math_server}/get_reward", json={"query": ["a"], "labels": ["1", "2"]})
    assert bad.status_code == 422 and "'labels' has 2 items" in bad.json()["error"]


def test_health_rewards_metrics_and_openapi(math_server: str) -> None:
    assert httpx.get(f"{math_server}/healthz").json()["status"] == "ok"
    listing = httpx.get(f"{math_server}/v1/rewards").json()
    assert listing["served"] == "math" and "exact_match" in listing["registered"]
    httpx.post(f"{math_server}/v1/score", json={"samples": MATH})
    text = httpx.get(f"{math_server}/metrics").text
    assert 'payoff_requests_total{code="200",endpoint="/v1/score"}' in text
    assert 'payoff_outcomes_total{reward="math",status="abstain"}' in text
    assert "payoff_request_seconds_bucket" in text
    spec = httpx.get(f"{math_server}/openapi.json").json()
    assert "samples" in json.dumps(spec["paths"]["/v1/score"]["post"]["requestBody"])


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "not JSON"),
    (b'{"samples": [{"completion": "\xff\xfe"}]}', 400, "not UTF-8"),
    (b'{"samples": "nope"}', 422, "samples"),
    (b'{}', 422, "samples: Field required"),
    (b'{"samples": [{"prompt": "no completion"}]}', 422, "samples.0: missing field 'completion'"),
    (b'{"samples": [{"completion": 5}]}', 422, "samples.0: 'completion' must be a string"),
    (b'{"samples": [], "reward": "nope"}', 404, "unknown reward 'nope'"),
])
def test_bad_requests_get_a_4xx_that_says_why(math_server: str, body: bytes, status: int, words: str) -> None:
    response = httpx.post(f"{math_server}/v1/score", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert words in response.json()["error"]


def test_huge_body_is_413(math_server: str) -> None:
    big = {"samples": [{"completion": "x" * 2_000_000}]}
    response = httpx.post(f"{math_server}/v1/score", json=big)
    assert response.status_code == 413 and "limit" in response.json()["error"]

    def chunks():  # no content-length: the limit must hold while streaming too
        for _ in range(40):
            yield b"x" * 50_000

    assert httpx.post(f"{math_server}/v1/score", content=chunks()).status_code == 413
    assert httpx.get(f"{math_server}/healthz").status_code == 200


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"samples": st.lists(st.dictionaries(st.sampled_from(["completion", "prompt", "reference", "meta", "group"]),
                                                                json_values, max_size=5), max_size=4)}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"query": json_values, "prompts": json_values, "labels": json_values}).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path=st.sampled_from(["/v1/score", "/get_reward"]))
def test_fuzzed_bodies_never_get_a_5xx(math_server: str, body: bytes, path: str) -> None:
    response = httpx.post(f"{math_server}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]


def test_bearer_token() -> None:
    with running_server("--reward", "exact_match", "--token", "s3cret", "--workers", "1") as (url, _):
        sample = {"samples": [{"completion": "a", "reference": "a"}]}
        assert httpx.post(f"{url}/v1/score", json=sample).status_code == 401
        assert httpx.post(f"{url}/v1/score", json=sample, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200  # probes need no token
        with Client(url, token="s3cret") as client:
            assert client.score(sample["samples"])[0].score == 1.0
        with Client(url) as client, pytest.raises(ServerError, match="401"):
            client.score(sample["samples"])


def _wait_until_queued(url: str, samples: int, timeout_s: float = 30.0) -> None:
    """Poll /healthz until the server holds `samples` samples (never a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{url}/healthz").json()["queued"] < samples:
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.01)


def test_overload_sheds_with_503_and_recovers_and_client_retries() -> None:
    with running_server("--reward", SLEEPY, "--workers", "1", "--max-pending", "4") as (url, _):
        slow = {"samples": [{"completion": "x", "meta": {"sleep": 1.0}}] * 4}
        results: list[int] = []
        first = threading.Thread(target=lambda: results.append(httpx.post(f"{url}/v1/score", json=slow, timeout=60).status_code))
        first.start()
        _wait_until_queued(url, 4)
        shed = httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "y"}]})
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        with Client(url, backoff=0.2) as client:  # retries through the 503s until the queue drains
            assert client.score([{"completion": "z"}])[0].score == 1.0
        first.join()
        assert results == [200]
        assert httpx.get(f"{url}/healthz").json()["queued"] == 0


def test_graceful_shutdown_finishes_in_flight_requests() -> None:
    with running_server("--reward", SLEEPY, "--workers", "1") as (url, process):
        results: list[httpx.Response] = []
        request = threading.Thread(target=lambda: results.append(
            httpx.post(f"{url}/v1/score", json={"samples": [{"completion": "x", "meta": {"sleep": 1.5}}]}, timeout=60)))
        request.start()
        _wait_until_queued(url, 1)
        process.send_signal(signal.SIGTERM)
        request.join()
        assert results[0].status_code == 200 and results[0].json()["outcomes"][0]["reward"] == 1.0
        # uvicorn re-raises the signal once shutdown is complete, so the exit reads as SIGTERM.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in process.stderr.read()


def test_remote_reward_works_inside_the_engine(math_server: str) -> None:
    remote = remote_reward(math_server)
    served = score(MATH, remote, workers=2)
    local = score(MATH, "math", workers=0)
    assert [(o.score, o.status) for o in served] == [(o.score, o.status) for o in local]


def test_client_and_remote_reward_are_top_level_names(math_server: str) -> None:
    import payoff

    assert payoff.Client is Client and payoff.remote_reward is remote_reward
    with payoff.Client(math_server) as client:
        outcomes = client.score(MATH[:2])
    assert [o.score for o in outcomes] == [o.score for o in score(MATH[:2], "math", workers=0)]
