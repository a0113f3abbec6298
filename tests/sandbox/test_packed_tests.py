"""Tests compiled on the caller's side (`compiled.pack_tests`) and loaded by the judge: the judge
runs what it was given, falls back to compiling where a packed test is unusable, and a test that
does not compile fails on its own. Real sandboxed runs."""

from __future__ import annotations

import json

from payoff.sandbox import Limits, run_tests
from payoff.sandbox.compiled import pack_tests

LIMITS = Limits(timeout_s=5, cpu_s=5)
PROGRAM = "def add(a, b):\n    return a + b\n"


def _verdicts(job: dict) -> dict[int, bool]:
    result = run_tests(job, LIMITS)
    return {e["test"]: e["pass"] for e in map(json.loads, result.stdout.splitlines()) if "test" in e}


def test_the_judge_runs_the_packed_tests_it_is_given() -> None:
    tests = ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]
    job = {"program": PROGRAM, "setup": "", "tests": tests, "compare": "canonical", "budget_s": 4.0}
    assert _verdicts(job) == {0: True, 1: True}  # packed by run_tests itself
    # Packed from other tests: the judge runs those, not the source beside them.
    assert _verdicts({**job, "compiled": pack_tests(["assert add(1, 2) == 4", "assert add(2, 2) == 4"])}) == {0: False, 1: True}


def test_unusable_packed_tests_are_compiled_by_the_judge() -> None:
    tests = ["assert add(1, 2) == 3", "assert add(2, 2) == 5"]
    job = {"program": PROGRAM, "setup": "", "tests": tests, "compare": "canonical", "budget_s": 4.0}
    for compiled in (["not base64!", None], ["aGVsbG8=", 7], ["x"], "junk"):
        assert _verdicts({**job, "compiled": compiled}) == {0: True, 1: False}, compiled


def test_a_test_that_does_not_compile_fails_on_its_own() -> None:
    tests = ["assert add(1, 2) == 3", "assert add(1, 2) ==", "assert add(0, 0) == 0"]
    assert pack_tests(tests)[1] is None
    job = {"program": PROGRAM, "setup": "", "tests": tests, "compare": "canonical", "budget_s": 4.0}
    result = run_tests(job, LIMITS)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    verdicts = {e["test"]: e for e in events if "test" in e}
    assert [verdicts[i]["pass"] for i in range(3)] == [True, False, True]
    assert verdicts[1]["why"].startswith("SyntaxError")
