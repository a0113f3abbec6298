"""The code reward on the shapes it claims (HumanEval, MBPP, APPS), and the harness keeping
control of the verdicts."""

from __future__ import annotations

import pytest

import payoff
from payoff.rewards.code import extract_code

CODE = payoff.get_reward("code")
MBPP = {"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(10, 5) == 15"]}
GOOD = "```python\ndef add(a, b):\n    return a + b\n```"


def score(completion: str, reference: object = MBPP, **options: object) -> payoff.Outcome:
    reward = CODE.configure(**options) if options else CODE
    return reward({"completion": completion, "reference": reference})


def test_pass_fraction_and_all_or_nothing() -> None:
    assert score(GOOD).score == 1.0
    half = score("def add(a, b):\n    return a + b if a > 0 else -1")
    assert half.score == pytest.approx(2 / 3) and half.info["failures"] == {"1": "AssertionError:"}
    assert score("def add(a, b):\n    return a + b if a > 0 else -1", all_or_nothing=True).score == 0.0


def test_humaneval_shape_with_check_function() -> None:
    reference = {"tests": ["def check(candidate):\n    assert candidate([1, 2]) == 3\n    assert candidate([]) == 0\ncheck(total)"]}
    assert score("def total(xs):\n    return sum(xs)", reference).score == 1.0
    assert score("def total(xs):\n    return len(xs)", reference).score == 0.0


def test_setup_code_runs_first() -> None:
    reference = {"setup": "import math", "tests": ["assert root(16) == 4"]}
    assert score("def root(x):\n    return int(math.sqrt(x))", reference).score == 1.0


@pytest.mark.parametrize(
    "cheat",
    [
        "import sys\nsys.exit(0)",
        "exit(0)",
        "import os\nos._exit(0)",
        "def add(a, b):\n    return 0\nimport os\nos._exit(0)",
        "print('pass')\nprint('0 pass')",
        "raise SystemExit",
    ],
)
def test_programs_that_exit_before_the_tests_pass_nothing(cheat: str) -> None:
    assert score(cheat).score == 0.0


def test_patched_builtins_are_restored_before_the_tests() -> None:
    program = "def add(a, b):\n    return 0\n"
    patch = "import builtins\nbuiltins.AssertionError = type('Fake', (Exception,), {})\nbuiltins.isinstance = lambda *a: True\n"
    honest, patched = score(program), score(program + patch)
    assert honest.score == pytest.approx(1 / 3)  # add(-1, 1) == 0 really holds
    assert patched.score == honest.score and patched.info["failures"] == honest.info["failures"]


def test_syntax_errors_score_zero_with_the_error() -> None:
    outcome = score("def add(a, b) return a + b")
    assert outcome.score == 0.0 and outcome.components["syntax_ok"] == 0.0 and "SyntaxError" in outcome.info["error"]


def test_stdin_stdout_cases_compare_line_by_line() -> None:
    reference = {"cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5", "output": "10   \n\n"}, {"input": "2 2", "output": "4\n5"}]}
    program = "a, b = map(int, input().split())\nprint(a + b)"
    outcome = score(program, reference)
    assert outcome.score == pytest.approx(2 / 3)  # trailing whitespace normalised; line counts must match


def test_timeouts_and_crashes_fail_their_case_only() -> None:
    reference = {"cases": [{"input": "1", "output": "1"}, {"input": "loop", "output": "x"}]}
    program = "s = input()\nwhile s == 'loop':\n    pass\nprint(s)"
    outcome = score(program, reference, time_limit=1.0)
    assert outcome.score == 0.5 and outcome.info["failures"] == {"1": "timeout"}


def test_reference_validation_and_extraction() -> None:
    assert score(GOOD, {"nothing": 1}).status == "abstain"
    assert score(GOOD, '{"tests": ["assert add(2, 2) == 4"]}').score == 1.0
    assert extract_code("text\n```py\nx = 1\n```\nmore\n```python\ny = 2\n```") == "y = 2\n"


def test_code_reward_through_the_engine() -> None:
    samples = [{"completion": c, "reference": MBPP} for c in (GOOD, "def add(a, b):\n    return a - b", "while True: pass")]
    outcomes = payoff.score(samples, CODE.configure(time_limit=1.0), workers=2)
    assert [o.score for o in outcomes] == [1.0, pytest.approx(0.0), 0.0]
