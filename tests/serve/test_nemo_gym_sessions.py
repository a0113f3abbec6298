"""`payoff serve --env calculator` as a multi-turn NeMo-Gym resources server, over real HTTP on
127.0.0.1: seed (cookie), tool routes, verify scoring the session like `run_episode`, close,
the session contract (idempotent seed, no seed after close), a session lost at its TTL; then
NeMo-Gym 0.7.0's own SimpleAgent playing an episode against it (tests/serve/nemo/sessions_conformance.py,
in NeMo-Gym's virtualenv)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from payoff.envs import get_env, run_episode
from payoff.serve.nemo_gym import responses_tools
from tests.envs.scripted import Scripted, call, say
from tests.serve.helpers import running_server

HERE = Path(__file__).resolve().parent
QUESTION = [{"role": "user", "content": "What is 6 * 7?", "type": "message"}]


def seed(session: str, **row) -> dict:
    return {"resources_session_id": session, "episode_id": {"rollout_id": "r"}, "task_id": {"taskset": "t", "task_id": "1"},
            "task_data": {"prompt": "What is 6 * 7?", "reference": "42", **row}}


def verify(text: str) -> dict:
    return {"reference": "42", "responses_create_params": {"input": QUESTION},
            "response": {"id": "r", "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}]}}


@pytest.fixture(scope="module")
def server():
    with running_server("--reward", "math", "--workers", "1", "--env", "calculator", "--session-ttl-s", "4") as (url, process):
        yield url, process


def test_a_session_through_the_nemo_gym_routes_scores_as_run_episode(server) -> None:
    url, _ = server
    http = httpx.Client(base_url=url)  # keeps the cookies the server sets, as NeMo-Gym's agents do
    opened = http.post("/seed_session", json=seed("a"))
    assert opened.json() == {"resources_session_id": "a"} and "payoff_session" in opened.cookies
    cookies = dict(opened.cookies)
    tool = http.post("/calculator", json={"expression": "6 * 7"})
    assert (tool.status_code, tool.text) == (200, "42")
    bad = http.post("/calculator", json={"expression": "import os"})
    assert bad.status_code == 200 and bad.text.startswith("error: the tool calculator raised ValueError")  # the model reads it
    answer = http.post("/verify", json=verify("\\boxed{42}")).json()
    _, local = run_episode(get_env("calculator"), Scripted(call("calculator", {"expression": "6 * 7"}, "c1"),
                                                           call("calculator", {"expression": "import os"}, "c2"), say("\\boxed{42}")),
                           {"prompt": "What is 6 * 7?", "reference": "42"})
    assert (answer["reward"], answer["payoff_status"], answer["mask_sample"], answer["failure_kind"]) == (local.score, "ok", False, None)
    assert answer["reward_components"] == local.components and answer["reference"] == "42"
    assert answer["payoff_episode"] == {"turns": 3, "tool_calls": 2, "ended": "done"} == {k: local.info[k] for k in ("turns", "tool_calls", "ended")}
    close = {"resources_session_id": "a", "episode_id": {"rollout_id": "r"}}
    assert http.post("/close_session", json=close).json() == {"resources_session_id": "a"}
    assert http.post("/close_session", json=close).status_code == 200  # closing again succeeds
    assert http.post("/seed_session", json=seed("a")).status_code == 409  # no seed after close
    assert httpx.post(f"{url}/calculator", json={"expression": "1"}, cookies=cookies).status_code == 410


def test_the_contract_and_the_failure_fields(server) -> None:
    url, process = server
    http = httpx.Client(base_url=url)
    first, again = http.post("/seed_session", json=seed("b")), http.post("/seed_session", json=seed("b"))
    assert first.cookies["payoff_session"] == again.cookies["payoff_session"]  # the same session
    assert http.post("/seed_session", json=seed("c", env="nope")).status_code == 422
    no_cookie = httpx.post(f"{url}/calculator", json={"expression": "1"})
    assert no_cookie.status_code == 404 and "cookie" in no_cookie.json()["error"]
    # a tool call after /verify scored the episode: refused, and the text says why
    done = dict(first.cookies)
    assert httpx.post(f"{url}/verify", json=verify("\\boxed{41}"), cookies=done).json()["reward"] == 0.0
    after = httpx.post(f"{url}/calculator", json={"expression": "1"}, cookies=done)
    assert after.status_code == 409 and "scored" in after.json()["error"]
    # a client that went away: the session is reaped at its TTL (4 s); /verify then masks the sample
    lost = httpx.post(f"{url}/seed_session", json=seed("d"))
    time.sleep(6.5)
    answer = httpx.post(f"{url}/verify", json=verify("\\boxed{42}"), cookies=dict(lost.cookies)).json()
    assert (answer["reward"], answer["mask_sample"], answer["failure_kind"]) == (0.0, True, "session_expired")
    unknown = httpx.post(f"{url}/verify", json=verify("\\boxed{42}"), cookies={"payoff_session": "nope"}).json()
    assert (unknown["mask_sample"], unknown["failure_kind"]) == (True, "session_lost")
    # a row without an env on a server without --env stays single-turn: covered in test_nemo_gym.py
    assert process.poll() is None


def test_responses_tools_are_the_environment_tools_in_the_responses_format() -> None:
    _, tools = get_env("calculator").reset({"prompt": "x"})
    [tool] = responses_tools(tools)
    assert tool["type"] == "function" and tool["name"] == "calculator" and tool["parameters"]["required"] == ["expression"]


def test_nemo_gym_own_agent_plays_an_episode_against_payoff(server) -> None:
    from tests.serve.nemo.venv import nemo_gym_python
    from tests.venvs import OFFLINE

    url, _ = server
    try:
        python, wheel = nemo_gym_python()
    except RuntimeError as error:
        if not any(marker in str(error) for marker in OFFLINE):
            raise
        pytest.skip(f"package registry unreachable, cannot build NeMo-Gym's virtualenv: {str(error).splitlines()[-1]}")
    done = subprocess.run([str(python), str(HERE / "nemo" / "sessions_conformance.py"), url], capture_output=True, text=True,
                          timeout=600, env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["run_status"] == 200, report.get("run_error")
    _, local = run_episode(get_env("calculator"), Scripted(call("calculator", {"expression": "6 * 7"}), say("The answer is \\boxed{42}.")),
                           {"prompt": [{"role": "user", "content": "What is 6 * 7?"}], "reference": "42"})
    run = report["run"]
    assert run["tool_output"] == "42" and run["output_types"] == ["function_call", "function_call_output", "message"]
    assert local.score == 1.0
    assert (run["reward"], run["payoff_status"], run["mask_sample"], run["failure_kind"]) == (local.score, "ok", False, None)
    assert run["reward_components"] == local.components and report["model_calls"] == 2
    assert run["payoff_episode"] == {k: local.info[k] for k in ("turns", "tool_calls", "ended")}
    # the Environment Server's sequence with NeMo-Gym's models
    assert report["seed"]["status"] == 200 and report["seed"]["cookie"] and report["seed"]["answer"]["resources_session_id"] == "rs-1"
    assert report["repeated_seed_same_session"] and report["tool"] == {"status": 200, "text": "42"}
    assert report["typed_verify"]["reward"] == 1.0 and not report["typed_verify"]["mask_sample"]
    assert report["close"] == [{"resources_session_id": "rs-1"}] * 2 and report["close_never_seeded"] == 200
    assert all(status >= 400 for status in report["seed_after_close"]) and report["tool_after_close"] == 410
