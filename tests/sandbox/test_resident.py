"""The resident judge (payoff.sandbox.resident): one judge process per fork server runs every test
run's tests, and each test run's child is its program process. Real fork server, real runs; each
test looks only at its own fork server's processes."""

from __future__ import annotations

import errno
import json
import os
import signal
import time

import psutil
import pytest

from payoff.sandbox import Limits, run_tests
from payoff.sandbox.client import ForkServer, fork_server
from payoff.sandbox.limits import JUDGE_UID
from payoff.sandbox.resident import NAME

LIMITS = Limits(timeout_s=4, cpu_s=4)


def _job(program: str, tests: list[str], budget_s: float = 3.0) -> dict:
    return {"program": program, "setup": "", "tests": tests, "compare": "canonical", "budget_s": budget_s}


def _events(job: dict, limits: Limits = LIMITS) -> list[dict]:
    return [json.loads(line) for line in run_tests(job, limits).stdout.splitlines()]


def _passes(job: dict, limits: Limits = LIMITS) -> list[bool]:
    return [e["pass"] for e in _events(job, limits) if "test" in e]


def _judges() -> list[psutil.Process]:
    """This test process's fork server's resident judges (live ones)."""
    server = psutil.Process(fork_server().process.pid)
    found = []
    for child in server.children():
        try:
            if child.name() == NAME.decode() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _poll(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(value)


def _address_space_limit(process: psutil.Process) -> str:
    """Its "Max address space" line, as /proc shows it to anyone."""
    with open(f"/proc/{process.pid}/limits") as handle:
        return next(line for line in handle if line.startswith("Max address space"))


DOUBLE = "def f(x):\n    return 2 * x\n"


@pytest.fixture
def judge() -> psutil.Process:
    """Two test runs first: the first starts the resident judge, the second is judged by it."""
    for _ in range(2):
        assert _passes(_job(DOUBLE, ["assert f(1) == 2"])) == [True]
    judges = _judges()
    assert len(judges) == 1, judges
    return judges[0]


def test_one_judge_serves_every_test_run_and_the_program_runs_elsewhere(judge: psutil.Process) -> None:
    program = DOUBLE + "import os\ndef me():\n    return [os.getpid(), os.getppid()]\n"
    seen = set()
    for _ in range(4):
        events = _events(_job(program, ["assert f(2) == 4", f"assert me()[0] != {judge.pid}",
                                        f"assert me()[1] != {judge.pid}"]))
        assert [e["pass"] for e in events if "test" in e] == [True, True, True], events
        assert events[0]["confined"] is True
        seen.add(tuple(_judges()))
    assert seen == {(judge,)}  # the same process all along
    # Where the server is root, a user of its own: not the programs' nobody.
    assert judge.uids().real == (JUDGE_UID if os.getuid() == 0 else os.getuid())


def test_one_jobs_tests_leave_nothing_in_the_next_jobs_namespace(judge: psutil.Process) -> None:
    assert _passes(_job(DOUBLE, ["LEFT = 1\nassert f(1) == 2"])) == [True]
    assert _passes(_job(DOUBLE, ["assert 'LEFT' not in globals()", "assert 'check' not in globals()"])) == [True, True]


@pytest.mark.skipif(os.getuid() != 0, reason="needs root: without it the judge and the programs share a user")
def test_the_program_cannot_change_the_resident_judge(judge: psutil.Process) -> None:
    # What a process of the judge's own user could do to it for every later run: lower its
    # memory limit, its priority, have SIGSTOP sent to it through a pipe's owner.
    program = ("import ctypes, os, resource, signal\n"
               "def tries(pid):\n"
               "    out = []\n"
               "    for attempt in (lambda: resource.prlimit(pid, resource.RLIMIT_AS, (1 << 26, 1 << 26)),\n"
               "                    lambda: os.setpriority(os.PRIO_PROCESS, pid, 19),\n"
               "                    lambda: os.sched_setaffinity(pid, {0})):\n"
               "        try:\n            attempt()\n            out.append('done')\n"
               "        except OSError as error:\n            out.append(error.errno)\n"
               "    r, w = os.pipe()\n"
               "    libc = ctypes.CDLL(None)\n"  # fcntl: F_SETOWN 8, F_SETSIG 10, F_SETFL 4 (O_ASYNC | O_NONBLOCK)
               "    libc.fcntl(r, 8, pid)\n    libc.fcntl(r, 10, int(signal.SIGSTOP))\n    libc.fcntl(r, 4, 0o20000 | 0o4000)\n"
               "    os.write(w, b'x')\n"
               "    return out\n")
    limit, nice = _address_space_limit(judge), judge.nice()
    events = _events(_job(program, [f"assert tries({judge.pid}) == [{errno.EPERM}] * 3"]))
    assert [e["pass"] for e in events if "test" in e] == [True], events
    assert _address_space_limit(judge) == limit and judge.nice() == nice
    assert judge.status() != psutil.STATUS_STOPPED
    assert _passes(_job(DOUBLE, ["assert f(5) == 10"])) == [True]
    assert _judges() == [judge]


def test_the_program_cannot_signal_the_resident_judge(judge: psutil.Process) -> None:
    program = ("import os, signal\n"
               "def hit(pid):\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError as error:\n"
               "        return error.errno\n    return 0\n")
    events = _events(_job(program, [f"assert hit({judge.pid}) == {errno.EPERM}"]))
    if not events[0]["confined"]:
        pytest.skip("no seccomp filter on this machine: the program process is not confined")
    assert [e["pass"] for e in events if "test" in e] == [True], events
    assert judge.is_running() and judge.status() != psutil.STATUS_ZOMBIE
    assert _judges() == [judge]


def test_a_judge_stuck_in_a_test_of_its_own_is_replaced(judge: psutil.Process) -> None:
    # The test, not the program, loops: only the run's deadline ends it. The judge is killed and
    # the next test run gets another; every later run is judged as before.
    result = run_tests(_job(DOUBLE, ["while True:\n    pass", "assert f(1) == 2"], budget_s=1.0), Limits(timeout_s=1.5, cpu_s=3))
    assert result.status == "timeout"
    assert _poll(lambda: not judge.is_running() or judge.status() == psutil.STATUS_ZOMBIE)
    for _ in range(2):
        assert _passes(_job(DOUBLE, ["assert f(3) == 6", "assert f(3) == 7"])) == [True, False]
    assert len(_judges()) == 1 and _judges()[0].pid != judge.pid


def test_a_judge_that_dies_between_runs_loses_no_run(judge: psutil.Process) -> None:
    os.kill(judge.pid, signal.SIGKILL)
    assert _poll(lambda: not judge.is_running() or judge.status() == psutil.STATUS_ZOMBIE)
    for _ in range(3):
        assert _passes(_job(DOUBLE, ["assert f(4) == 8", "assert f(4) == 9"])) == [True, False]
    assert len(_judges()) == 1


def test_a_program_that_patches_the_builtins_is_still_served(judge: psutil.Process) -> None:
    # The serving code answers on the builtins as they were: the program patched its own copy.
    program = ("import builtins\nbuiltins.len = lambda x: 0\nbuiltins.isinstance = lambda *a: False\n"
               "__builtins__.type = None\n" + DOUBLE + "def size(xs):\n    return len(xs)\n")
    assert _passes(_job(program, ["assert f([1]) == [1, 1]", "assert size([1, 2, 3]) == 0",
                                  "assert len([1, 2]) == 2"])) == [True, True, True]


def test_a_closed_fork_server_leaves_no_judge_behind() -> None:
    server = ForkServer()
    try:
        data = json.dumps(_job(DOUBLE, ["assert f(1) == 2"])).encode()
        for _ in range(2):
            reply = server.request({"code": "", "language": "python", "harness": True, "files": {},
                                    "limits": LIMITS.to_dict()}, data)
            assert '"pass": true' in reply["stdout"], reply
        judges = [c for c in psutil.Process(server.process.pid).children() if c.name() == NAME.decode()]
        assert len(judges) == 1
    finally:
        server.close()
    assert server.process.returncode == 0
    assert _poll(lambda: not judges[0].is_running())


def test_a_program_name_never_replaces_the_tests_own_names_nor_imports_a_module(judge: psutil.Process) -> None:
    # A wrong f, with an `abs` that answers 0 and a `math` whose isclose says yes: the tests'
    # own abs (a builtin) and math (imported by the setup) decide. A module the program binds
    # is not imported into the judge for it.
    program = ("import types\nmod = types.ModuleType('this')\n"
               "def f(x):\n    return -1\n"
               "def abs(x):\n    return 0\n"
               "class math:\n    isclose = staticmethod(lambda *a, **k: True)\n")
    job = {**_job(program, ["assert abs(f(1) - 0.5) < 1e-6", "assert math.isclose(f(2), 3.25)",
                            "import sys\nassert 'this' not in sys.modules and 'mod' not in globals()"]),
           "setup": "import math"}
    assert _passes(job) == [False, False, True]


def test_each_job_starts_from_the_judges_own_settings_in_its_runs_directory(judge: psutil.Process) -> None:
    program = "def read(name):\n    with open(name) as handle:\n        return handle.read()\n"
    first = ("import signal, sys\nsys.setrecursionlimit(60)\nsignal.signal(signal.SIGALRM, lambda *a: 1 / 0)\n"
             "signal.alarm(30)\nwith open('data.txt', 'w') as handle:\n    handle.write('7')\n"
             "assert read('data.txt') == '7'")
    assert _passes(_job(program, [first])) == [True]
    later = ("import os, signal, sys\nassert sys.getrecursionlimit() > 60\nassert signal.alarm(0) == 0\n"
             "assert not os.path.exists('data.txt') and os.environ['HOME'] == os.getcwd()")
    assert _passes(_job(program, [later])) == [True]


def test_a_program_that_hangs_ends_with_its_verdicts_not_at_the_runs_deadline(judge: psutil.Process) -> None:
    program = "def f(x):\n    while True:\n        pass\n"
    result = run_tests(_job(program, ["assert f(1) == 2", "assert True"], budget_s=1.0), Limits(timeout_s=30, cpu_s=30))
    events = [json.loads(line) for line in result.stdout.splitlines()]
    # The judge stopped waiting at its budget; the run ended with its verdicts, not 30 s later.
    assert result.status == "ok" and result.wall_s < 20, result
    assert [e["pass"] for e in events if "test" in e] == [False, False], events  # the second: the program is gone
    assert _judges() == [judge]
