"""Episode sessions over real HTTP on 127.0.0.1 (a `payoff serve` subprocess): the same episode
scored the same in process (`run_episode`) and through the server, several clients at once from
threads, a client that disappears mid-episode (its session reaped at the TTL and the Python
environment's sandboxed process gone), overload (503 with Retry-After), and clear 4xx errors
that leave the server up."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest

from payoff.envs import EpisodeLimits, get_env, run_episode
from payoff.serve.client import Client, ServerError, play_remote, play_remote_batch
from tests.envs.scripted import Scripted, call, say
from tests.serve.helpers import free_port, running_server

ROW = {"prompt": "What is 6 * 7?", "reference": "42"}
# (name, env, row, the policy's turns, limits, reward): each played in process and on the server
EPISODES = [
    ("right", "calculator", ROW, [call("calculator", {"expression": "6 * 7"}), say("The answer is \\boxed{42}.")], None, None),
    ("wrong", "calculator", ROW, [call("calculator", {"expression": "6 + 7"}), say("\\boxed{13}")], None, None),
    ("tool errors", "calculator", ROW, [call("nope", {"x": 1}, "c1"), call("calculator", {"expression": "9**9**9"}, "c2"),
                                        call("calculator", {"expr": "1"}, "c3"), say("\\boxed{42}")], None, None),
    ("arguments not JSON", "calculator", ROW, [call("calculator", "{not json"), say("\\boxed{42}")], None, None),
    ("max_turns", "calculator", ROW, [call("calculator", {"expression": "1"}, f"c{i}") for i in range(5)], {"max_turns": 3}, None),
    ("max_tool_calls", "calculator", ROW, [call("calculator", {"expression": "1"}, f"c{i}") for i in range(5)], {"max_tool_calls": 2}, None),
    ("another reward", "calculator", {"prompt": "Say 42.", "reference": "42"}, [say("42")], None, "exact_match"),
    ("feedback", "feedback", ROW, [say("\\boxed{41}"), say("\\boxed{42}")], None, None),
    ("python state", "python", {"prompt": "Compute 6 * 7 in Python.", "reference": "42"},
     [call("python", {"code": "x = 6 * 7"}, "c1"), call("python", {"code": "print(x)"}, "c2"), say("\\boxed{42}")], None, None),
]


def comparable(outcome) -> tuple:
    return outcome.status, outcome.score, outcome.components, {k: v for k, v in outcome.info.items() if k != "wall_s"}


@pytest.fixture(scope="module")
def server():
    with running_server("--reward", "math", "--workers", "1", "--max-sessions", "32", "--session-ttl-s", "4") as (url, process):
        yield url, process


@pytest.mark.parametrize(("name", "env", "row", "turns", "limits", "reward"), EPISODES, ids=[e[0] for e in EPISODES])
def test_the_same_episode_scores_the_same_in_process_and_served(server, name, env, row, turns, limits, reward) -> None:
    url, _ = server
    sample, local = run_episode(get_env(env), Scripted(*turns), row, EpisodeLimits(**(limits or {})), reward=reward)
    with Client(url) as client:
        messages, served = play_remote(client, env, Scripted(*turns), row, limits, reward)
    assert comparable(served) == comparable(local), name
    assert messages == (sample.messages if sample.messages is not None else sample.meta["messages"]), name
    expected = {"right": ("ok", 1.0, "done"), "wrong": ("ok", 0.0, "done"), "tool errors": ("ok", 1.0, "done"),
                "max_turns": (None, None, "max_turns"), "max_tool_calls": (None, None, "max_tool_calls"),
                "another reward": ("ok", 1.0, "done"), "feedback": ("ok", None, "done"), "python state": ("ok", 1.0, "done")}
    if name == "arguments not JSON":  # a policy's malformed call: the tool says so, the episode is an error outcome
        assert served.status == "error" and "not a valid trajectory" in served.info["error"]
        return
    status, score, ended = expected[name]
    assert served.info["ended"] == ended
    if status is not None:
        assert served.status == status and (score is None or served.score == score)


def test_a_batch_in_lockstep_scores_as_in_process(server) -> None:
    url, _ = server
    cases = [e for e in EPISODES if e[1] == "calculator" and e[4] is None and e[5] is None]
    rows = [{**row, "prompt": f"{name}: {row['prompt']}"} for name, _, row, *_ in cases]
    scripts = {r["prompt"]: Scripted(*turns) for r, (_, _, _, turns, _, _) in zip(rows, cases)}

    def policy(messages, tools):  # each episode's own script, found by its prompt
        return scripts[messages[1]["content"]](messages, tools)

    with Client(url) as client:
        played = play_remote_batch(client, "calculator", policy, rows)
    for (name, _, _, turns, _, _), r, (messages, served) in zip(cases, rows, played):
        sample, local = run_episode(get_env("calculator"), Scripted(*turns), r)
        assert comparable(served) == comparable(local), name
        assert messages == (sample.messages if sample.messages is not None else sample.meta["messages"]), name
    assert httpx.get(f"{url}/v1/episodes").json()["open"] == 0
    # one bad item is that item's error, not the batch's
    results = httpx.post(f"{url}/v1/batch/episodes/open",
                         json={"episodes": [{"env": "calculator", "row": ROW}, {"env": "nope", "row": {}}]}).json()["results"]
    assert results[0]["tools"] and results[1]["status"] == 422 and "unknown environment" in results[1]["error"]
    steps = httpx.post(f"{url}/v1/batch/episodes/step", json={"steps": [
        {"session": results[0]["session"], "message": {"role": "user", "content": "x"}},
        {"session": "gone", "message": {"content": "x"}}]}).json()["results"]
    assert [r["status"] for r in steps] == [422, 404]
    malformed = httpx.post(f"{url}/v1/batch/episodes/step", json={"steps": [{"session": 1, "message": {}}]})
    assert malformed.status_code == 422 and "steps.0.session" in malformed.json()["error"]
    bad_opens = [([{"env": "calculator", "row": ROW}, {"env": 3, "row": {}}], "episodes.1.env"),
                 ([{"env": "calculator", "row": [1]}], "episodes.0.row"),
                 ([{"env": "calculator", "row": ROW, "reward": 1}], "episodes.0.reward"),
                 ([ROW, "x"], "episodes.0.env")]
    for episodes, where in bad_opens:
        malformed = httpx.post(f"{url}/v1/batch/episodes/open", json={"episodes": episodes})  # checked whole: nothing opened
        assert malformed.status_code == 422 and where in malformed.json()["error"], (episodes, malformed.text)
    scored = httpx.post(f"{url}/v1/batch/episodes/score", json={"sessions": [results[0]["session"]], "close": True}).json()["results"]
    assert scored[0]["info"]["ended"] == "stopped"  # scored before its end: stopped there
    assert httpx.delete(f"{url}/v1/episodes/{results[0]['session']}").status_code == 410  # closed with the score


def _batch_opens(url: str) -> float:
    """How many batch opens the server at ``url`` answered 200 (its Prometheus counter)."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("payoff_requests_total{") and 'endpoint="/v1/batch/episodes/open"' in line and 'code="200"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_batch_spread_over_two_servers_scores_as_in_process_in_order(server) -> None:
    url, _ = server
    rows = [{"prompt": f"What is {k} * 7?", "reference": str(k * 7)} for k in range(7)]

    def policy(messages, tools):  # thread-safe: the turn from the episode itself
        k = int(messages[1]["content"].split()[2])
        turns = [call("calculator", {"expression": f"{k} * 7"}), say(f"\\boxed{{{k * 7}}}")]
        return turns[sum(1 for m in messages if m["role"] == "assistant")]

    with running_server("--reward", "math", "--workers", "1") as (other, _):
        before = _batch_opens(url), _batch_opens(other)
        with Client(url) as first, Client(other) as second:
            played = play_remote_batch([first, second], "calculator", policy, rows)
        assert _batch_opens(url) - before[0] == 1 and _batch_opens(other) - before[1] == 1  # one part on each
        for r, (messages, served) in zip(rows, played):
            sample, local = run_episode(get_env("calculator"), policy, r)
            assert comparable(served) == comparable(local) and served.score == 1.0
            assert messages == sample.messages
        # a part whose server is gone fails the call, once the other part has played and closed its sessions
        with Client(url) as first, Client(f"http://127.0.0.1:{free_port()}", retries=0) as gone:
            with pytest.raises(ServerError, match="cannot reach"):
                play_remote_batch([first, gone], "calculator", policy, rows)
        assert httpx.get(f"{url}/v1/episodes").json()["open"] == 0


def test_several_clients_at_once(server) -> None:
    url, _ = server
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def client_thread(number: int) -> None:
        try:
            with Client(url) as client:
                results[number] = [play_remote(client, "calculator", Scripted(
                    call("calculator", {"expression": f"{number} * {k}"}), say(f"\\boxed{{{number * k}}}")),
                    {"prompt": f"{number} * {k}?", "reference": str(number * k)})[1] for k in range(1, 6)]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sorted(results) == list(range(1, 9))
    assert all(o.status == "ok" and o.score == 1.0 and o.info["tool_calls"] == 1 for outcomes in results.values() for o in outcomes)
    assert httpx.get(f"{url}/v1/episodes").json()["open"] == 0  # play_remote closed every session


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"  # a zombie is gone for our purposes
    except FileNotFoundError:
        return False


def test_a_client_that_disappears_has_its_session_reaped_and_its_process_killed(server) -> None:
    url, process = server
    opened = httpx.post(f"{url}/v1/episodes", json={"env": "python", "row": {"prompt": "pid?"}}, timeout=60).json()
    step = httpx.post(f"{url}/v1/episodes/{opened['session']}/step", timeout=60,
                      json={"message": {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "python", "arguments": "{\"code\": \"import os; print(os.getpid())\"}"}}]}}).json()
    pid = int(step["messages"][0]["content"])
    assert pid != process.pid and _alive(pid)  # the episode's own sandboxed interpreter
    # the client goes away: no close, no more requests; the TTL is 4 s
    deadline = time.time() + 30
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the session's process outlived its TTL"
    gone = httpx.post(f"{url}/v1/episodes/{opened['session']}/step", json={"message": {"content": "hello?"}})
    assert gone.status_code == 410 and "TTL" in gone.json()["error"]
    assert process.poll() is None  # the server stays up


def test_bad_requests_are_clear_4xx_and_the_server_stays_up(server) -> None:
    url, process = server
    http = httpx.Client(base_url=url, timeout=60)
    for body, words in [({"env": "nope", "row": {}}, "unknown environment 'nope'"), ({"env": "calculator", "row": []}, "row"),
                        ({"env": "calculator", "row": {}, "limits": {"max_turns": -1}}, "limits.max_turns"),
                        ({"env": "calculator", "row": {}, "limits": {"turns": 1}}, "unknown limit"),
                        ({"env": "calculator", "row": {}, "reward": "tests/evil.py:fn"}, "not a registered reward")]:
        answer = http.post("/v1/episodes", json=body)
        assert answer.status_code == 422 and words in answer.json()["error"], (body, answer.text)
    opened = http.post("/v1/episodes", json={"env": "calculator", "row": ROW}).json()
    session = opened["session"]
    assert opened["tools"][0]["function"]["name"] == "calculator" and opened["messages"][-1]["content"] == ROW["prompt"]
    cases = [  # (path, body, status, words in the error)
        (f"/v1/episodes/{session}/step", {"message": {"role": "user", "content": "hi"}}, 422, "assistant's message"),
        (f"/v1/episodes/{session}/step", {"message": {"content": 3}}, 422, "message.content"),
        (f"/v1/episodes/{session}/step", {"message": {"tool_calls": [{"function": "x"}]}}, 422, "tool_calls[0]"),
        (f"/v1/episodes/{session}/step", {"message": {}}, 422, "content or tool_calls"),
        (f"/v1/episodes/{session}/step", {"msg": {}}, 422, "message"),
        ("/v1/episodes/no-such-session/step", {"message": {"content": "x"}}, 404, "unknown session"),
        ("/v1/episodes/no-such-session/score", None, 404, "unknown session"),
    ]
    for path, body, status, words in cases:
        answer = http.post(path, json=body)
        assert answer.status_code == status and words in answer.json()["error"], (path, body, answer.text)
    assert http.post(f"/v1/episodes/{session}/step", content=b"{not json").status_code == 400
    # after all that, the session still plays and scores
    assert http.post(f"/v1/episodes/{session}/step", json={"message": {"content": "\\boxed{42}"}}).json()["ended"] == "done"
    again = http.post(f"/v1/episodes/{session}/step", json={"message": {"content": "more"}})
    assert again.status_code == 409 and "ended (done)" in again.json()["error"]
    scored = http.post(f"/v1/episodes/{session}/score").json()
    assert (scored["status"], scored["reward"]) == ("ok", 1.0)
    assert http.post(f"/v1/episodes/{session}/score").json() == scored  # scoring again: the same
    assert http.delete(f"/v1/episodes/{session}").json()["closed"] is True
    assert http.delete(f"/v1/episodes/{session}").status_code == 410
    assert process.poll() is None
    assert 'payoff_requests_total{code="422",endpoint="/v1/episodes/{session}/step"}' in httpx.get(f"{url}/metrics").text


def test_overload_is_a_503_with_retry_after_and_the_client_gets_in_once_a_session_closes() -> None:
    with running_server("--reward", "math", "--workers", "1", "--max-sessions", "2", "--session-ttl-s", "60") as (url, _):
        first = httpx.post(f"{url}/v1/episodes", json={"env": "calculator", "row": ROW}).json()
        httpx.post(f"{url}/v1/episodes", json={"env": "calculator", "row": ROW}).raise_for_status()
        full = httpx.post(f"{url}/v1/episodes", json={"env": "calculator", "row": ROW})
        assert full.status_code == 503 and full.headers["Retry-After"] == "1" and "2 sessions are open" in full.json()["error"]
        # a scored session holds no environment: it no longer counts against the cap
        httpx.post(f"{url}/v1/episodes/{first['session']}/step", json={"message": {"content": "\\boxed{42}"}})
        httpx.post(f"{url}/v1/episodes/{first['session']}/score").raise_for_status()
        third = httpx.post(f"{url}/v1/episodes", json={"env": "calculator", "row": ROW}).json()
        with Client(url, retries=0) as impatient:
            with pytest.raises(ServerError) as refused:
                impatient.open_episode("calculator", ROW)
            assert refused.value.status == 503
        threading.Timer(1.0, lambda: httpx.delete(f"{url}/v1/episodes/{third['session']}")).start()
        began = time.monotonic()
        with Client(url, retries=5, backoff=0.2) as patient:  # honours Retry-After until a slot frees
            episode = patient.open_episode("calculator", ROW)
        assert episode.ended is None and time.monotonic() - began >= 0.9
        assert httpx.get(f"{url}/v1/episodes").json()["open"] == 2


def test_no_process_is_left_after_the_server_stops() -> None:
    with running_server("--reward", "math", "--workers", "1") as (url, process):
        opened = httpx.post(f"{url}/v1/episodes", json={"env": "python", "row": {"prompt": "pid?"}}, timeout=60).json()
        step = httpx.post(f"{url}/v1/episodes/{opened['session']}/step", timeout=60, json={"message": {
            "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                             "function": {"name": "python", "arguments": "{\"code\": \"import os; print(os.getpid())\"}"}}]}}).json()
        pid = int(step["messages"][0]["content"])
        assert _alive(pid)
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid) and os.getpid() != pid


def test_a_reward_that_hangs_is_that_episodes_timeout_and_the_batch_is_still_scored() -> None:
    """Finished episodes are scored in the server's engine workers: a reward that hangs on one
    episode is its `timeout` outcome within the engine's limit; the others keep their scores."""
    from tests.serve.helpers import SLEEPY

    with running_server("--reward", SLEEPY, "--workers", "2", "--timeout-s", "1") as (url, _):
        rows = [{**ROW, "meta": {"sleep": 30}}, {**ROW, "meta": {"sleep": 0}}, {**ROW, "meta": {"sleep": 0}}]
        opened = httpx.post(f"{url}/v1/batch/episodes/open", json={"episodes": [
            {"env": "calculator", "row": row, "reward": "sleepy"} for row in rows]}).json()["results"]
        sessions = [item["session"] for item in opened]
        httpx.post(f"{url}/v1/batch/episodes/step", json={"steps": [
            {"session": s, "message": {"content": "\\boxed{42}"}} for s in sessions]}).raise_for_status()
        began = time.monotonic()
        scored = httpx.post(f"{url}/v1/batch/episodes/score", json={"sessions": sessions, "close": True}, timeout=60).json()["results"]
        assert time.monotonic() - began < 15
        assert [r["status"] for r in scored] == ["timeout", "ok", "ok"]
        assert [r["reward"] for r in scored[1:]] == [1.0, 1.0] and all(r["info"]["ended"] == "done" for r in scored)
        assert httpx.get(f"{url}/v1/episodes").json()["open"] == 0
