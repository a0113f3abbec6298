"""Judges through a real OpenAI-compatible server (llama.cpp's, serving SmolLM2 on 127.0.0.1):
verdicts from the server's logprobs, the master-key guard, the judgment cache, and the retry path
under a real failure: the server is killed mid-run and restarted, and every sample settles as ok
or error, none lost or duplicated."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python (built by make) is missing: no real judge server")

from payoff.engine import score  # noqa: E402
from payoff.registry import get_reward  # noqa: E402
from tests.judges.server import llama_server, start, wait_ready  # noqa: E402

SAMPLES = [{"prompt": "What is 2 + 2?", "completion": c, "reference": "4"} for c in ("The answer is 4.", "The answer is 5.", ":", "Thought process:")]


@pytest.fixture(scope="module")
def server():
    with llama_server() as found:
        yield found


def test_reference_judge_through_the_server_with_the_guard(server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PAYOFF_JUDGE_CACHE", str(tmp_path / "cache"))
    url, _ = server
    judge = get_reward("judge_reference").configure(backend="openai", base_url=url, model="smollm2")
    unguarded = score(SAMPLES, judge.configure(guard=False), workers=0)
    guarded = score(SAMPLES, judge, workers=0)
    assert all(o.status == "ok" and 0 <= o.score <= 1 for o in unguarded + guarded)
    assert unguarded[0].components["verdict_mass"] > 0  # read from the server's top_logprobs
    assert guarded[2].score == guarded[3].score == 0.0 and guarded[2].info["judge_called"] is False
    again = score(SAMPLES[:2], judge, workers=0)  # served from the on-disk judgment cache
    assert [o.score for o in again] == [o.score for o in guarded[:2]]
    assert again[0].info["judge_usage"]["cached"] == 2 and again[0].info["judge_usage"]["calls"] == 0


def test_a_dead_server_is_an_error_outcome_not_a_number(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PAYOFF_JUDGE_CACHE", "off")
    from tests.serve.helpers import free_port

    judge = get_reward("judge_binary").configure(backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1", retries=1, call_timeout_s=2.0)
    outcomes = score(SAMPLES[:2], judge.configure(guard=False), workers=0)
    assert [o.status for o in outcomes] == ["error", "error"] and "after 2 attempts" in outcomes[0].info["error"]


def test_server_killed_mid_run_and_restarted(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PAYOFF_JUDGE_CACHE", "off")
    from tests.serve.helpers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(port)
    wait_ready(url, process)
    samples = [{"prompt": f"Is {n} even?", "completion": "Yes." if n % 2 == 0 else "No.", "group": n} for n in range(12)]
    judge = get_reward("judge_binary").configure(backend="openai", base_url=f"{url}/v1", model="smollm2", guard=False, concurrency=2,
                                                 retries=8, call_timeout_s=10.0)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(outcomes=score(samples, judge, workers=0)))
    runner.start()
    time.sleep(1.5)
    process.kill()  # mid-run: some judgments done, some in flight, some not asked yet
    process.wait(timeout=30)
    time.sleep(1.0)
    revived = start(port)
    try:
        runner.join(timeout=300)
        assert not runner.is_alive()
    finally:
        revived.kill()
        revived.wait(timeout=30)
    outcomes = result["outcomes"]
    assert len(outcomes) == 12 and all(o.status in ("ok", "error") for o in outcomes)  # none lost, none duplicated
    assert sum(o.status == "ok" for o in outcomes) >= 10  # retries with backoff carried them over the restart
    assert max(o.info.get("judge_usage", {}).get("retries", 0) for o in outcomes) > 0
