"""A test fixture: an in-process code harness, the design payoff's code reward does not use: it
runs the tests in the program's own process. It exists to show that the audit catches what it let through, and
to measure the attacks before and after; nothing in payoff uses it."""

from __future__ import annotations

import secrets
from typing import Any

from payoff.core import Outcome, Sample, reward
from payoff.rewards.code import _parse_reference, _score, extract_code
from payoff.sandbox import Limits, run

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


@reward(name="old_code", timeout_s=120)
def old_code(sample: Sample, timeout_s: float = 6.0) -> Outcome:
    """The in-process harness (tests in the program's process, verdicts on a hidden fd)."""
    reference = _parse_reference(sample.reference)
    if reference is None or "tests" not in reference:
        return Outcome.abstain("unit tests only")
    limits = Limits(timeout_s=timeout_s, cpu_s=int(timeout_s) + 1)
    return _run_tests(extract_code(sample.completion), reference, limits, False, "fork")


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


