"""``code``: run a model-written Python program against unit tests or stdin/stdout cases in the
sandbox; the harness, not the program, decides what passed.

References (the HumanEval, MBPP and APPS/CodeContests shapes):
- ``{"tests": ["assert f(1) == 2", ...], "setup": "import math"}``: MBPP's ``test_list`` and
  ``test_setup_code``; HumanEval's ``check(candidate)`` becomes
  ``{"tests": [test_source + "\\ncheck(entry_point)"]}``;
- ``{"cases": [{"input": "1 2\\n", "output": "3\\n"}, ...]}``: APPS / CodeContests ``input_output``.

How the harness keeps control (``payoff.sandbox.harness``): the tests run in a judge process and
the program in another; only plain data crosses between them, so nothing the program can name,
import, patch or find (its globals, builtins, ``sys.modules``, ``os``, file descriptors, frames,
``gc``, ``ctypes``) reaches a verdict. Results are compared as builtin data rebuilt by the judge
(``compare="canonical"``): an object of the program's own class cannot decide ``==``; a task whose
functions legitimately return custom objects opts into their own comparisons with
``compare="program"``. A program that exits, crashes or hangs fails the tests it did not reach.
A sandbox that could not set itself up, or a harness that never started, is an ``error``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt

from payoff.core import Outcome, Sample, reward
from payoff.rewards.common import after_reasoning
from payoff.sandbox import Limits, SandboxError, run, run_tests
from payoff.sandbox.compiled import compile_program, pack_code

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_code(completion: str) -> str:
    """The last fenced code block (```python … ```), else the whole completion."""
    blocks = _FENCE.findall(completion)
    return blocks[-1] if blocks else completion


def _parse_reference(reference: Any) -> dict[str, Any] | None:
    if isinstance(reference, str):
        try:
            reference = json.loads(reference)
        except json.JSONDecodeError:
            return None
    return reference if isinstance(reference, dict) and ("tests" in reference or "cases" in reference) else None


def _compiled(program: str) -> tuple[Any, str | None]:
    """(the program's code object as the sandbox runs it without setup code, None) or (None, what
    is wrong with its syntax)."""
    try:
        return compile_program("", program), None
    except SyntaxError as error:
        return None, f"SyntaxError: {error.msg} (line {error.lineno})"
    except (ValueError, MemoryError, RecursionError) as error:
        return None, f"{type(error).__name__}: {error}"


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _score(passed: int, total: int, all_or_nothing: bool) -> float:
    if total == 0:
        return 0.0
    return float(passed == total) if all_or_nothing else passed / total


@reward(name="code", timeout_s=120)
def code(
    sample: Sample, all_or_nothing: bool = False, timeout_s: Annotated[float, Gt(0)] = 6.0, memory_mb: Annotated[int, Ge(16)] = 512,
    backend: Literal["fork", "bwrap"] = "fork", compare: Literal["canonical", "program"] = "canonical",
) -> Outcome:
    """Python program correctness against unit tests or stdin/stdout cases, run in the sandbox
    (B-Coder, AutoTriton, PF-PPO style). Reward = pass fraction, or 1/0 with all_or_nothing.
    Syntax errors score 0 with the error in info; tests a program never reached (it exited,
    crashed or hung) fail. ``compare="program"`` lets the program's own ``==`` decide on objects
    of its classes (off by default: an always-equal object would pass everything)."""
    reference = _parse_reference(sample.reference)
    if reference is None:
        return Outcome.abstain('the reference needs {"tests": [...]} or {"cases": [...]}')
    program = extract_code(after_reasoning(sample.completion))  # a draft program inside <think> is not the answer
    if not program.strip():
        return Outcome.ok(0.0, {"passed": 0.0}, error="no code found")
    compiled, problem = _compiled(program)
    if problem:
        return Outcome.ok(0.0, {"passed": 0.0, "syntax_ok": 0.0}, error=problem)
    # The wall deadline decides; the CPU rlimit sits above it as a backstop.
    limits = Limits(timeout_s=timeout_s, cpu_s=int(timeout_s) + 1, memory_mb=memory_mb)
    try:
        if "tests" in reference:
            return _run_tests(program, compiled, reference, limits, all_or_nothing, backend, compare, timeout_s)
        return _run_cases(program, reference["cases"], limits, all_or_nothing, backend)
    except SandboxError as error:
        return Outcome.error(f"sandbox: {error}")


def _run_tests(program: str, compiled: Any, reference: dict[str, Any], limits: Limits, all_or_nothing: bool,
               backend: str, compare: str, timeout_s: float) -> Outcome:
    tests = [str(t) for t in reference.get("tests") or []]
    if not tests:
        return Outcome.abstain("no tests in the reference")
    setup = str(reference.get("setup") or "")
    job = {"program": program, "setup": setup, "tests": tests, "compare": compare, "budget_s": timeout_s}
    if not setup:  # the syntax check's code object is the program process's (with setup, run_tests compiles it)
        job["program_compiled"] = pack_code(compiled)
    # The judge stops the tests at timeout_s itself; the sandbox's deadline is the backstop.
    result = run_tests(job, Limits(**{**limits.to_dict(), "timeout_s": timeout_s + 1.0}), backend=backend)
    events = _events(result.stdout)
    start = next((e for e in events if "ready" in e or "setup_error" in e), None)
    if start is None:
        return Outcome.error(f"the test harness did not start ({result.status}): {result.stderr[-300:].strip()}")
    if "setup_error" in start:
        return Outcome.abstain(f"the reference's setup code fails on its own: {start['setup_error']}")
    verdicts = {e["test"]: e for e in events if isinstance(e.get("test"), int) and 0 <= e["test"] < len(tests)}
    passed = sum(1 for e in verdicts.values() if e.get("pass") is True)
    info: dict[str, Any] = {"passed": passed, "total": len(tests), "run_status": result.status}
    failures = {str(i): str(e.get("why", "")) for i, e in sorted(verdicts.items()) if e.get("pass") is not True}
    if failures:
        info["failures"] = dict(list(failures.items())[:5])
    if start.get("load_error"):
        info["load_error"] = start["load_error"]
    if len(verdicts) < len(tests):
        info["not_run"] = len(tests) - len(verdicts)
        info["stderr"] = result.stderr[-500:]
    return Outcome.ok(_score(passed, len(tests), all_or_nothing), {"passed": passed / len(tests), "syntax_ok": 1.0}, **info)


def _events(stdout: str) -> list[dict[str, Any]]:
    events = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _run_cases(program: str, cases: list[dict[str, Any]], limits: Limits, all_or_nothing: bool, backend: str) -> Outcome:
    if not cases:
        return Outcome.abstain("no cases in the reference")
    passed = 0
    failures: dict[str, str] = {}
    for index, case in enumerate(cases):
        result = run(program, stdin=str(case.get("input", "")), limits=limits, backend=backend)
        if result.status == "ok" and _lines(result.stdout) == _lines(str(case.get("output", ""))):
            passed += 1
        elif len(failures) < 5:
            failures[str(index)] = result.status if result.status != "ok" else "wrong output"
    info: dict[str, Any] = {"passed": passed, "total": len(cases)}
    if failures:
        info["failures"] = failures
    return Outcome.ok(_score(passed, len(cases), all_or_nothing), {"passed": passed / len(cases), "syntax_ok": 1.0}, **info)
