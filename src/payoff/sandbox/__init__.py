"""Run untrusted, model-written code: a fresh process per run with CPU, memory, process,
file-size and open-file limits, an empty working directory, a scrubbed environment, no network,
and the whole process tree killed at the deadline. See docs/sandbox.md."""

from payoff.sandbox.client import SandboxError, capabilities, run, run_tests
from payoff.sandbox.limits import Limits, RunResult

__all__ = ["Limits", "RunResult", "SandboxError", "capabilities", "run", "run_tests"]
