"""``code``: run a model-written Python program against unit tests or stdin/stdout cases in the
sandbox; the harness, not the program, decides what passed.

References (the HumanEval, MBPP and APPS/CodeContests shapes):
- ``{"tests": ["assert f(1) == 2", ...], "setup": "import math"}``: MBPP's ``test_list`` and
  ``test_setup_code``; HumanEval's ``check(candidate)`` becomes
  ``{"tests": [test_source + "\\ncheck(entry_point)"]}``;
- ``{"cases": [{"input": "1 2\\n", "output": "3\\n"}, ...]}``: APPS / CodeContests ``input_output``.

How the harness keeps control: each unit test runs in the same sandboxed process as the program,
after it, inside a try block that records its verdict by writing a line starting with a random
per-run token to a file descriptor the program never learns (its number is random too, and the
token is unguessable). A program that exits early (``exit()``, ``sys.exit()``, ``os._exit()``)
leaves no verdicts, so nothing passes; builtins (``assert`` cannot be patched, but ``print``,
``AssertionError``, ``isinstance`` can) are restored from a private copy before the tests run. Not covered: a program that searches the
interpreter's own frames for the token to forge verdicts (a deliberate attack on the harness,
not a policy's accident); run such code with the bwrap backend and outcome-level audits.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from payoff.core import Outcome, Sample, reward
from payoff.sandbox import Limits, SandboxError, run

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_code(completion: str) -> str:
    """The last fenced code block (```python … ```), else the whole completion."""
    blocks = _FENCE.findall(completion)
    return blocks[-1] if blocks else completion


_HARNESS = '''
import builtins as __payoff_b, os as __payoff_os, sys as __payoff_sys
__payoff_saved = dict(vars(__payoff_b))
__payoff_fd = __payoff_os.dup2(1, {fd})
__payoff_os.set_inheritable(__payoff_fd, False)
del __payoff_b, __payoff_os, __payoff_sys
exec(compile({program!r}, "program.py", "exec"), globals())
import builtins as __payoff_b, os as __payoff_os, traceback as __payoff_tb
__payoff_b.__dict__.clear(); __payoff_b.__dict__.update(__payoff_saved)
for __payoff_i, __payoff_test in enumerate({tests!r}):
    try:
        exec(compile(__payoff_test, "test_%d" % __payoff_i, "exec"), globals())
        __payoff_os.write({fd}, ("{token} %d pass\\n" % __payoff_i).encode())
    except BaseException as __payoff_e:
        __payoff_msg = ("%s: %s" % (type(__payoff_e).__name__, __payoff_e)).replace("\\n", " ")[:200]
        __payoff_os.write({fd}, ("{token} %d fail %s\\n" % (__payoff_i, __payoff_msg)).encode())
'''


def _parse_reference(reference: Any) -> dict[str, Any] | None:
    if isinstance(reference, str):
        try:
            reference = json.loads(reference)
        except json.JSONDecodeError:
            return None
    return reference if isinstance(reference, dict) and ("tests" in reference or "cases" in reference) else None


def _syntax_error(program: str) -> str | None:
    try:
        compile(program, "program.py", "exec")
    except SyntaxError as error:
        return f"SyntaxError: {error.msg} (line {error.lineno})"
    except (ValueError, MemoryError, RecursionError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _score(passed: int, total: int, all_or_nothing: bool) -> float:
    if total == 0:
        return 0.0
    return float(passed == total) if all_or_nothing else passed / total


@reward(name="code", timeout=120)
def code(
    sample: Sample, all_or_nothing: bool = False, time_limit: float = 6.0, memory_mb: int = 512, backend: str = "fork",
) -> Outcome:
    """Python program correctness against unit tests or stdin/stdout cases, run in the sandbox
    (B-Coder, AutoTriton, PF-PPO style). Reward = pass fraction, or 1/0 with all_or_nothing.
    Syntax errors score 0 with the error in info; a program that exits before the tests passes
    nothing."""
    reference = _parse_reference(sample.reference)
    if reference is None:
        return Outcome.abstain('the reference needs {"tests": [...]} or {"cases": [...]}')
    program = extract_code(sample.completion)
    if not program.strip():
        return Outcome.ok(0.0, {"passed": 0.0}, error="no code found")
    problem = _syntax_error(program)
    if problem:
        return Outcome.ok(0.0, {"passed": 0.0, "syntax_ok": 0.0}, error=problem)
    # The wall deadline decides; the CPU rlimit sits above it as a backstop.
    limits = Limits(wall_s=time_limit, cpu_s=int(time_limit) + 1, memory_mb=memory_mb)
    try:
        if "tests" in reference:
            return _run_tests(program, reference, limits, all_or_nothing, backend)
        return _run_cases(program, reference["cases"], limits, all_or_nothing, backend)
    except SandboxError as error:
        return Outcome.error(f"sandbox: {error}")


def _run_tests(program: str, reference: dict[str, Any], limits: Limits, all_or_nothing: bool, backend: str) -> Outcome:
    tests = [str(t) for t in reference.get("tests") or []]
    if not tests:
        return Outcome.abstain("no tests in the reference")
    setup = str(reference.get("setup") or "")
    token = secrets.token_hex(16)
    fd = 16 + secrets.randbelow(limits.open_files - 24)  # random, below the open-files rlimit
    harness = _HARNESS.format(fd=fd, program=setup + "\n" + program, tests=tests, token=token)
    result = run(harness, limits=limits, backend=backend)
    verdicts: dict[int, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith(token + " "):
            _, index, verdict, *rest = line.split(" ", 3)
            verdicts.setdefault(int(index), verdict if verdict == "pass" else f"fail {rest[0] if rest else ''}".strip())
    passed = sum(1 for v in verdicts.values() if v == "pass")
    failures = {i: v for i, v in sorted(verdicts.items()) if v != "pass"}
    info: dict[str, Any] = {"passed": passed, "total": len(tests), "run_status": result.status}
    if failures:
        info["failures"] = {str(i): v[5:] for i, v in list(failures.items())[:5]}
    if len(verdicts) < len(tests):
        info["not_run"] = len(tests) - len(verdicts)
        info["stderr"] = result.stderr[-500:]
    return Outcome.ok(_score(passed, len(tests), all_or_nothing), {"passed": passed / len(tests), "syntax_ok": 1.0}, **info)


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
