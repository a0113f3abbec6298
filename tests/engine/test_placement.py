"""Each engine worker's sandbox gets a core of its own (payoff.engine.worker.place_sandbox): real
engine workers, each with its real fork server; the test reads the affinity of the fork servers
its own engine's workers started."""

from __future__ import annotations

import os
import time

import pytest

import payoff
from payoff.sandbox import run
from payoff.sandbox.client import fork_server


@payoff.reward(register=False)
def sandbox_cores(sample: payoff.Sample) -> payoff.Outcome:
    """Where this worker's fork server, and a run it makes, may run."""
    assert run("pass").ok
    time.sleep(0.05)  # long enough that every worker gets samples
    server = fork_server().process.pid
    return payoff.Outcome.ok(1.0, worker=os.getpid(), server=sorted(os.sched_getaffinity(server)))


def _servers(workers: int) -> dict[int, list[int]]:
    with payoff.Engine(sandbox_cores, workers=workers) as engine:
        outcomes = engine.score([{"completion": str(i)} for i in range(8 * workers)])
    assert all(o.status == "ok" for o in outcomes), outcomes
    return {o.info["worker"]: o.info["server"] for o in outcomes}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_the_workers_sandboxes_take_the_cores_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYOFF_SANDBOX_CPU", raising=False)
    servers = _servers(2)
    assert len(servers) == 2, servers
    cores = sorted(cpus[0] for cpus in servers.values())
    assert all(len(cpus) == 1 for cpus in servers.values()) and cores == sorted(os.sched_getaffinity(0))[:2], servers


def test_placement_is_off_where_the_environment_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYOFF_SANDBOX_CPU", "any")
    for cpus in _servers(2).values():
        assert cpus == sorted(os.sched_getaffinity(0))
