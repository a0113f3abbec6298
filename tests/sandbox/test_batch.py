"""A run of literal asserts sends its calls to the program at once (payoff.sandbox.batch): the
program sees the calls a one-at-a-time harness would make, in the same order, and never one past
a call that raised; verdicts are those of calling one at a time. Real sandboxed runs."""

from __future__ import annotations

import ast
import json
import os

import pytest

from payoff.sandbox import Limits, run_tests
from payoff.sandbox.batch import batched

# The program keeps a log of its calls; `seen()` hands it to the test.
PROGRAM = (
    "log = []\n"
    "def f(x):\n    log.append(x)\n    if x == 99:\n        raise ValueError('no 99')\n    return x * 2\n"
    "def seen():\n    return list(log)\n"
)


def verdicts(tests: list[str]) -> list[dict]:
    job = {"program": PROGRAM, "setup": "", "tests": tests, "compare": "canonical", "budget_s": 5.0}
    result = run_tests(job, Limits(timeout_s=6, cpu_s=6))
    return [e for e in map(json.loads, result.stdout.splitlines()) if "test" in e]


def test_a_run_of_literal_asserts_is_batched_and_only_that() -> None:
    tree = batched("def check(c):\n    assert c(1) == 2\n    assert abs(c(-2)) == 4\n    assert c([1], k=2) is not None\n")
    assert tree is not None
    first = tree.body[0].body[0]
    # In the order Python evaluates them: abs after its argument's call.
    assert ast.unparse(first) == "__payoff_batch__([(c, (1,), {}), (c, (-2,), {}), (abs, None, None), (c, ([1],), {'k': 2})])"
    for source in [
        "assert c(1) == 2",  # a single assert: nothing to gain
        "for i in range(3):\n    assert c(i) == i\n    assert c(i) == i",  # in a loop
        "assert c(x) == 2\nassert c(x) == 2",  # a name as argument
        "assert c(1) or c(2)\nassert c(3) == 6",  # and/or may skip a call
        "assert c(1).real == 2\nassert c(2) == 4",  # attribute of a result
        "try:\n    assert c(1) == 2\n    assert c(2) == 4\nexcept AssertionError:\n    pass",
        "assert c(1) ==",  # does not parse: left to the judge
    ]:
        assert batched(source) is None, source


def test_the_program_sees_the_calls_of_a_one_at_a_time_harness_in_order() -> None:
    test = ("def check(f):\n    assert f(1) == 2\n    assert abs(f(-2)) == 4\n    assert seen() == [1, -2]\n"
            "    assert f(3) == 6\n    assert seen() == [1, -2, 3]\ncheck(f)")
    assert verdicts([test]) == [{"test": 0, "pass": True}]


def test_a_callable_of_the_test_between_calls_ends_the_batch() -> None:
    # g calls the program itself: nothing after it may run ahead of it.
    test = "def g():\n    return f(10)\nassert f(1) == 2\nassert g() == 20\nassert f(2) == 4\nassert seen() == [1, 10, 2]"
    assert verdicts([test]) == [{"test": 0, "pass": True}]


def test_the_program_stops_at_a_call_that_raises() -> None:
    test = ("def check(f):\n    assert f(1) == 2\n    assert f(99) == 0\n    assert f(3) == 6\n"
            "try:\n    check(f)\nexcept ValueError:\n    pass\nassert seen() == [1, 99]")  # f(3) never ran
    assert verdicts([test]) == [{"test": 0, "pass": True}]


@pytest.mark.parametrize("last_passes", [True, False])
def test_verdicts_are_those_of_calling_one_at_a_time(last_passes: bool) -> None:
    tests = ["assert f(1) == 2\nassert f(2) == 5", "assert f(3) == 6\nassert f(4) == 8",
             "assert f(5) == 10\nassert f(6) == " + ("12" if last_passes else "13")]
    passed = [v["pass"] for v in verdicts(tests)]
    assert passed == [False, True, last_passes]


@pytest.mark.parametrize("open_files", [48, 40])
def test_a_program_process_made_ahead_is_confined_by_its_own_runs_limits(open_files: int) -> None:
    # After a test run the fork server makes the next run's child, the next program process, as
    # root and before the run's limits are known (the first test run's child judges and forks its
    # program itself); each drops to nobody and sets the limits its own request carries before
    # the program's first line. Consecutive runs with different limits see theirs.
    program = ("import os, resource\n"
               "def facts():\n    return [os.getuid(), resource.getrlimit(resource.RLIMIT_NOFILE)[0],"
               " resource.getrlimit(resource.RLIMIT_CPU)[0]]\n")
    expected = [65534 if os.getuid() == 0 else os.getuid(), open_files, open_files // 8]
    for _ in range(3):  # the later ones' program processes were made ahead, for the resident judge
        job = {"program": program, "setup": "", "tests": [f"assert facts() == {expected}"], "compare": "canonical",
               "budget_s": 5.0}
        result = run_tests(job, Limits(timeout_s=6, cpu_s=open_files // 8, open_files=open_files))
        events = list(map(json.loads, result.stdout.splitlines()))
        assert events[0]["confined"] is True and events[1] == {"test": 0, "pass": True}, (events, result.stderr)
