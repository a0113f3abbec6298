"""``python`` graders: the config's ``source`` defines ``grade(sample, item) -> float``, run in
payoff's sandbox (a fresh process per sample with time, CPU, memory, process and file limits, no
network where the kernel gives a namespace; see docs/sandbox.md), as OpenAI ran it in a container.

``sample`` holds ``output_text``, ``output_json`` (None when the completion is not a JSON object),
``output_tools`` and ``choices``; ``item`` is the dataset row (`payoff.graders.template`).
What a grader may import depends on the sandbox backend (``python_backend``): the default fork
server shows a program only the system directories (/usr, /lib, ...), so a grader has the standard
library; ``bwrap`` (bubblewrap installed) also binds payoff's own environment read-only, so numpy,
rapidfuzz and whatever else is installed beside payoff import as on OpenAI's image. A grader that raises,
returns something other than a number, or runs out of time or memory is an ``error`` (``timeout``)
outcome with its stderr's last lines, never a 0.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from payoff.core import Outcome
from payoff.sandbox import Limits, SandboxError, run

MARK = "\x1epayoff-grader-result\x1e"
RUNNER = """\
import json, sys
sys.path[:0] = {paths!r}
namespace = {{"__name__": "grader"}}
exec(compile({source!r}, "grader.py", "exec"), namespace)
data = json.loads(sys.stdin.read())
result = namespace["grade"](data["sample"], data["item"])
if isinstance(result, bool) or not isinstance(result, (int, float)):
    report = {{"type": type(result).__name__}}
else:
    report = {{"score": float(result)}}
sys.stdout.write("\\n" + {mark!r} + json.dumps(report) + "\\n")
"""


def _paths() -> list[str]:
    # The sandbox's interpreter starts without site-packages (-I -S): hand it this process's
    # import path, so that where the backend shows the environment (bwrap) `import numpy` works.
    return [p for p in sys.path if p and os.path.isdir(p)]


def grade(grader: dict[str, Any], scopes: list[dict[str, Any]], timeout_s: float, memory_mb: int, backend: str = "fork") -> list[Outcome]:
    code = RUNNER.format(paths=_paths(), source=grader["source"], mark=MARK)
    limits = Limits(timeout_s=timeout_s, cpu_s=max(1, math.ceil(timeout_s)), memory_mb=memory_mb)
    return [_one(code, scope, limits, backend) for scope in scopes]


def _one(code: str, scope: dict[str, Any], limits: Limits, backend: str) -> Outcome:
    sample = {"output_json": None, **scope["sample"]}
    try:
        data = json.dumps({"sample": sample, "item": scope["item"]}, default=repr)
        result = run(code, stdin=data, limits=limits, backend=backend)
    except SandboxError as error:
        return Outcome.error(f"sandbox: {error}")
    tail = result.stderr.strip()[-800:]
    if result.status == "timeout":
        return Outcome.timeout(limits.timeout_s, stderr=tail)
    head, _, report = result.stdout.rpartition(MARK)
    if result.status != "ok" or not report:
        return Outcome.error(f"python grader failed ({result.status}, exit {result.exit_code}): {tail.splitlines()[-1] if tail else 'no output'}",
                             stderr=tail)
    answer = json.loads(report)
    if "score" not in answer:
        return Outcome.error(f"python grader returned {answer['type']}, expected a number")
    if not math.isfinite(answer["score"]):
        return Outcome.error(f"python grader returned a non-finite score {answer['score']!r}")
    info = {"stdout": head.strip()[-500:]} if head.strip() else {}
    return Outcome.ok(answer["score"], **info)
