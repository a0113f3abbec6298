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
    assert half.score == pytest.approx(2 / 3) and half.info["failures"] == {"1": "AssertionError"}
    assert score("def add(a, b):\n    return a + b if a > 0 else -1", all_or_nothing=True).score == 0.0


def test_a_draft_program_inside_think_is_not_the_answer() -> None:
    draft = "<think>\n```python\ndef add(a, b):\n    return a - b\n```\nNo, that subtracts.\n</think>\n"
    assert score(draft + "def add(a, b):\n    return a + b").score == 1.0  # the fenced draft was taken before
    assert score("<think>\n" + GOOD + "\n</think>\ndef add(a, b):\n    return a - b").score == 0.0


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
    outcome = score(program, reference, timeout_s=1.0)
    assert outcome.score == 0.5 and outcome.info["failures"] == {"1": "timeout"}


def test_reference_validation_and_extraction() -> None:
    assert score(GOOD, {"nothing": 1}).status == "abstain"
    assert score(GOOD, '{"tests": ["assert add(2, 2) == 4"]}').score == 1.0
    assert extract_code("text\n```py\nx = 1\n```\nmore\n```python\ny = 2\n```") == "y = 2\n"


def test_code_reward_through_the_engine() -> None:
    samples = [{"completion": c, "reference": MBPP} for c in (GOOD, "def add(a, b):\n    return a - b", "while True: pass")]
    outcomes = payoff.score(samples, CODE.configure(timeout_s=1.0), workers=2)
    assert [o.score for o in outcomes] == [1.0, pytest.approx(0.0), 0.0]


def test_classes_and_methods_work_through_handles() -> None:
    program = ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, n in enumerate(nums):\n"
               "            if target - n in seen:\n                return [seen[target - n], i]\n            seen[n] = i\n")
    reference = {"tests": ["assert Solution().twoSum([2, 7, 11, 15], 9) == [0, 1]", "s = Solution()\nassert s.twoSum([3, 3], 6) == [0, 1]"]}
    assert score(program, reference).score == 1.0


def test_in_place_changes_to_arguments_reach_the_tests() -> None:
    reference = {"tests": ["xs = [3, 1, 2]\nsort_in_place(xs)\nassert xs == [1, 2, 3]"]}
    assert score("def sort_in_place(xs):\n    xs.sort()", reference).score == 1.0
    assert score("def sort_in_place(xs):\n    xs = sorted(xs)", reference).score == 0.0


def test_exceptions_keep_their_builtin_type_in_the_tests() -> None:
    reference = {"tests": ["try:\n    parse('x')\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError('no error')"]}
    assert score("def parse(s):\n    return int(s)", reference).score == 1.0
    assert score("def parse(s):\n    return 0", reference).score == 0.0


CUSTOM = ("class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
          "    def __eq__(self, other):\n        return (self.x, self.y) == (other.x, other.y)\n"
          "def origin():\n    return Point(0, 0)\n")


def test_program_objects_are_not_compared_unless_the_task_opts_in() -> None:
    reference = {"tests": ["assert origin() == Point(0, 0)", "assert origin().x == 0"]}
    strict = score(CUSTOM, reference)
    assert strict.score == 0.5 and "compare='program'" in strict.info["failures"]["0"]  # attributes are data
    assert score(CUSTOM, reference, compare="program").score == 1.0
    assert score(CUSTOM.replace("return Point(0, 0)", "return Point(0, 1)"), reference, compare="program").score == 0.5
    with pytest.raises(payoff.core.RewardParameterError, match="compare"):
        CODE.configure(compare="sometimes")


def test_data_subclasses_travel_as_their_base_type() -> None:
    program = ("import collections\ndef count(s):\n    return collections.Counter(s)\n"
               "def pair():\n    P = collections.namedtuple('P', 'a b')\n    return P(1, 2)\n")
    reference = {"tests": ["assert count('aab') == {'a': 2, 'b': 1}", "assert pair() == (1, 2)"]}
    assert score(program, reference).score == 1.0


def test_exit_and_quit_behave_as_in_python() -> None:
    reference = {"cases": [{"input": "2 3\n", "output": "5\n"}]}
    for ending in ("exit()", "quit()", "exit(0)", "import sys\nsys.exit()"):
        assert score(f"a, b = map(int, input().split())\nprint(a + b)\n{ending}", reference).score == 1.0, ending
    assert score("print(5)\nexit(1)", reference).score == 0.0  # a non-zero exit is a failed run


def test_a_harness_that_cannot_start_is_an_error_not_a_zero() -> None:
    broken_setup = {"setup": "import module_that_does_not_exist", "tests": ["assert add(1, 2) == 3"]}
    outcome = score(GOOD, broken_setup)
    assert outcome.status == "abstain" and "module_that_does_not_exist" in str(outcome.info)



def test_a_run_whose_sandbox_cannot_set_up_raises() -> None:
    from payoff.sandbox import SandboxError, run

    with pytest.raises(SandboxError, match="could not set up"):
        run("print(1)", files={"x": "1", "x/y": "2"})  # the child cannot write its input files


def test_a_hanging_test_fails_and_the_program_is_stopped() -> None:
    reference = {"tests": ["assert add(1, 2) == 3", "assert spin() == 1", "assert add(2, 2) == 4"]}
    program = "def add(a, b):\n    return a + b\ndef spin():\n    while True:\n        pass\n"
    outcome = score(program, reference, timeout_s=1.0)
    assert outcome.score == pytest.approx(1 / 3), outcome
    assert "out of time" in outcome.info["failures"]["1"]
