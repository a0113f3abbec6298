"""The fork server's way of making each run's child: a dormant copy of the server forks its
successor and becomes the run's child (`payoff.sandbox.child.lie_dormant`); the server forks
only when there is no dormant copy. Real processes throughout."""

from __future__ import annotations

import os
import signal
import time

import psutil

from payoff.sandbox import Limits, run
from payoff.sandbox.client import fork_server
from payoff.sandbox.resident import NAME
from payoff.sandbox.server import SPARES

FAST = Limits(timeout_s=2, cpu_s=2, memory_mb=256, max_procs=16)


def _tree() -> tuple[psutil.Process, list[psutil.Process]]:
    """The fork server and its live direct children but its resident judge."""
    server = psutil.Process(fork_server().process.pid)
    return server, [c for c in server.children() if _live(c) and c.name() != NAME.decode()]


def _chain() -> list[psutil.Process]:
    """After plain runs: the spares, oldest first, then the dormant copy, each the child of the one
    before (each spare forked its successor). The oldest is the server's only live child once the
    children of the runs before, which answer before they exit, have exited."""
    deadline = time.monotonic() + 5
    while True:
        _, children = _tree()
        chain = children if len(children) == 1 else []
        while chain and len(following := [c for c in _children(chain[-1]) if _live(c)]) == 1:
            chain = chain + following
        if len(chain) == SPARES + 1 or time.monotonic() > deadline:
            return chain
        time.sleep(0.01)


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children()
    except psutil.NoSuchProcess:  # exited between the listing and the look
        return []


def _live(process: psutil.Process) -> bool:
    """Running and not a zombie; False for one that exited between the listing and the look."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _server_minor_faults() -> int:
    with open(f"/proc/{fork_server().process.pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[7])


def test_each_run_is_the_servers_child_and_the_server_forks_nothing_per_run() -> None:
    for _ in range(SPARES):
        assert run("print(1)", limits=FAST).stdout == "1\n"
    assert len(_chain()) == SPARES + 1  # the next runs' children and the dormant copy, each the child of the one before
    before = _server_minor_faults()
    results = [run("print(2)", limits=FAST) for _ in range(30)]
    assert all(r.status == "ok" and r.stdout == "2\n" and r.cpu_s > 0 for r in results)
    # A server that forked each child would copy the pages it writes after every fork (about 300
    # a run); one that does not copies each page at most once.
    assert _server_minor_faults() - before < 30 * 20


def test_runs_go_on_when_the_dormant_copy_is_gone() -> None:
    for _ in range(SPARES):
        run("print(1)", limits=FAST)
    dormant = _chain()[-1]
    os.kill(dormant.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _live(dormant) and time.monotonic() < deadline:
        time.sleep(0.01)
    results = [run(f"print({i})", limits=FAST) for i in range(3)]
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n"]
    assert all(r.status == "ok" for r in results)


def test_runs_go_on_after_a_fork_bomb_took_every_process() -> None:
    # The bomb fills the run's process limit, so the dormant copy cannot fork its successor.
    bomb = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.001)"
    assert run(bomb, limits=FAST).status in ("timeout", "killed")
    results = [run("import random\nprint(random.getrandbits(64))", limits=FAST) for _ in range(3)]
    assert all(r.status == "ok" for r in results), [r.stderr for r in results]
    assert len({r.stdout for r in results}) == 3  # every child draws its own random numbers


def test_runs_that_end_without_their_record_follow_runs_that_do() -> None:
    # A run answered from its end record leaves its child exiting; the next run's child is that
    # child's child until it has gone, and a run that ends without a record (os._exit, a signal,
    # the deadline) must still be reaped as the server's own.
    programs = [
        ("print(1)", "ok"),
        ("import os\nos._exit(0)", "ok"),
        ("print(2)", "ok"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "killed"),
        ("print(3)", "ok"),
        ("while True:\n    pass", "timeout"),
    ]
    for _ in range(3):
        for code, status in programs:
            limits = Limits(timeout_s=0.5, cpu_s=2, memory_mb=256, max_procs=16) if status == "timeout" else FAST
            assert run(code, limits=limits).status == status, code
