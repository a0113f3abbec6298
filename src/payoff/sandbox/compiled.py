"""The tests of a harness job as code objects: compiled once on the caller's side and packed into
the job (`pack_tests`: marshal, base64), loaded by the judge (`compile_tests`). Standard library
only (the lean fork server loads it by path, the bubblewrap backend as a flat sibling)."""

from __future__ import annotations

import base64
import marshal
from typing import Any

try:
    from payoff.sandbox.batch import batched
except ImportError:  # outside the package: the sibling by its flat name
    from payoff_sandbox_batch import batched  # type: ignore[no-redef]


def compile_test(test: str, index: int, count: int) -> Any:
    """Test `index` of `count` as the judge runs it. The last test only is batched: a batch may run
    calls past a failing assert (see batch.py)."""
    source = (batched(test) if index == count - 1 else None) or test
    return compile(source, f"test_{index}", "exec")  # type: ignore[call-overload]


def pack_tests(tests: list[str]) -> list[str | None]:
    """Each test compiled (`compile_test`) and packed for a job's ``compiled`` (None where it does
    not compile: the judge then reports the error). On the caller's side, where the same tests
    come back for every sample of a problem and the compiler's pages are its own, not a forked
    child's to copy: loading a packed test takes the judge about 20 us, compiling it 1-5 ms."""
    packed: list[str | None] = []
    for index, test in enumerate(tests):
        try:
            packed.append(pack_code(compile_test(test, index, len(tests))))
        except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
            packed.append(None)
    return packed


_CODE = type(compile("", "", "exec"))


def program_source(setup: str, program: str) -> str:
    """What the program process runs: the task's setup code, then the program."""
    return setup + "\n" + program if setup else program


def compile_program(setup: str, program: str) -> Any:
    return compile(program_source(setup, program), "program.py", "exec")


def pack_code(code: Any) -> str | None:
    """A code object marshalled and base64-encoded; None where marshal refuses it (some deeply
    nested code): then it is compiled where it runs."""
    try:
        return base64.b64encode(marshal.dumps(code)).decode()
    except (ValueError, RecursionError, MemoryError):
        return None


def pack_program(setup: str, program: str) -> str | None:
    """The program compiled on the caller's side, packed like a test (None where it does not
    compile): the program process loads it instead of compiling it, whose allocations cost a
    forked child about a hundred copied pages."""
    try:
        return pack_code(compile_program(setup, program))
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError):
        return None


def load_program(setup: str, program: str, packed: Any) -> Any:
    """The program's code object: `packed` loaded, or the source compiled here (raises what
    compiling raises)."""
    if type(packed) is str:
        try:
            code = marshal.loads(base64.b64decode(packed))
        except (ValueError, EOFError, TypeError):
            code = None
        if type(code) is _CODE:
            return code
    return compile_program(setup, program)


def compile_tests(tests: list[str], packed: Any = None) -> list[Any]:
    """Each test's code object (loaded from `packed`, or compiled here), or the error compiling it
    raised (that test's failure)."""
    compiled: list[Any] = []
    for index, test in enumerate(tests):
        try:
            code = None
            if type(packed) is list and len(packed) == len(tests) and type(packed[index]) is str:
                try:
                    code = marshal.loads(base64.b64decode(packed[index]))
                except (ValueError, EOFError, TypeError):
                    code = None
            compiled.append(code if type(code) is _CODE else compile_test(test, index, len(tests)))
        except BaseException as error:  # noqa: BLE001 - a test that does not compile fails on its own
            compiled.append(error)
    return compiled
