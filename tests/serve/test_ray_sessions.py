"""Episode sessions on Ray actors (a local one-CPU Ray cluster): the API of local sessions, the
outcome `run_episode` gives, the cap, the TTL reaper inside the actor, errors raised as themselves."""

from __future__ import annotations

import time

import pytest

from payoff.envs import get_env, run_episode
from payoff.serve.session_errors import Busy, ExpiredSession, SessionsFull, UnknownSession
from tests.envs.scripted import Scripted, call, say

ROW = {"prompt": "What is 6 * 7?", "reference": "42"}
TURNS = [call("calculator", {"expression": "6 * 7"}), say("\\boxed{42}")]


@pytest.fixture(scope="module")
def sessions():
    ray = pytest.importorskip("ray")
    from payoff.serve.ray_sessions import RaySessions

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    held = RaySessions(actors=2, max_sessions=2, ttl_s=1.0, reap_every_s=0.2)
    yield held
    held.shutdown()
    ray.shutdown()


@pytest.mark.slow
def test_ray_sessions_play_an_episode_as_run_episode_does(sessions) -> None:
    _, local = run_episode(get_env("calculator"), Scripted(*TURNS), ROW)
    opened = sessions.open("calculator", ROW)
    assert opened["session"].split(".")[0] in ("0", "1") and opened["tools"][0]["function"]["name"] == "calculator"
    replies = [sessions.step(opened["session"], turn) for turn in TURNS]
    assert replies[0]["messages"][0]["content"] == "42" and replies[1]["ended"] == "done"
    with pytest.raises(Busy):
        sessions.step(opened["session"], say("again"))
    scored = sessions.score(opened["session"])
    assert (scored["status"], scored["reward"], scored["components"]) == (local.status, local.score, local.components)
    assert {k: v for k, v in scored["info"].items() if k != "wall_s"} == {k: v for k, v in local.info.items() if k != "wall_s"}
    assert sessions.close(opened["session"])["closed"] is True
    with pytest.raises(ExpiredSession):  # closed: the actor remembers it
        sessions.step(opened["session"], say("x"))
    with pytest.raises(UnknownSession):
        sessions.step("7.nope", say("x"))


@pytest.mark.slow
def test_ray_sessions_cap_and_reap_at_the_ttl(sessions) -> None:
    first, second = sessions.open("calculator", ROW), sessions.open("calculator", ROW)
    assert {first["session"][0], second["session"][0]} == {"0", "1"}  # one on each actor
    with pytest.raises(SessionsFull) as full:
        sessions.open("calculator", ROW)
    assert full.value.retry_after == 1 and full.value.status == 503
    time.sleep(2.0)  # nobody touches them: the actors' reapers close them
    assert sessions.stats()["open"] == 0
    with pytest.raises(ExpiredSession):
        sessions.step(first["session"], say("x"))
    assert sessions.open("calculator", ROW)["ended"] is None
