"""A test harness the program under test cannot reach: the tests run in one process, the
program in another, and only plain data crosses between them.

This file is the program the sandbox runs for unit-test tasks (the ``code`` reward sends its
source); it uses the standard library only. Two processes, both inside the sandbox:

- the *judge* runs the trusted test code. Every name the program defined is, on the judge's
  side, a proxy: calling it sends the arguments to the program process and waits for the
  result. Results come back as plain builtin data (ints, strs, lists, dicts, tuples, sets ...)
  rebuilt by the judge's own decoder, so ``==`` in a test is the judge's ``==`` on the judge's
  objects. An object the program made that is not plain data stays in the program process and
  the judge holds a handle to it: methods and attributes work through the handle, but
  comparing it, hashing it or testing its truth raises, unless the task opts into the
  program's own comparisons (``compare="program"``, for tasks that return custom objects).
- the *program* process runs the model's code and serves the judge's calls. Its memory never
  holds the tests: under the fork server it is the run's own child, made by the server's dormant
  copy, which never held a job, and the judge is the server's resident judge
  (`payoff.sandbox.resident`); where no resident judge serves the run (bubblewrap, the first
  test run of a server) the run's child is the judge and forks the program process before it
  reads its job (`start_program`). The program process has no file descriptor but its socket
  (and, as a fork-server child, its report pipe); its output goes to /dev/null; it cannot
  signal, ptrace or read the judge (the judge is not dumpable, and a seccomp filter where the
  kernel has one refuses the program's kill/ptrace/process_vm calls on any process but itself).

The judge writes one JSON line per event to its verdict descriptor, which only it holds (the
run's stdout, or a pipe to the fork server): ``{"ready": ...}`` once the program is loaded,
``{"test": i, "pass": bool, "why": str}`` per test and ``{"done": true}``. A test without a line
did not pass. A run of literal asserts sends its calls in one message (`payoff.sandbox.batch`).

The job (on stdin, or in a memfd for the resident judge) is JSON: ``program``, ``setup``,
``tests``, ``compare`` (``canonical`` or ``program``), ``budget_s`` (the judge's time for all the
tests) and, optionally, ``compiled``: each test's code object as the caller compiled it
(`pack_tests`: marshal, base64), which the judge loads instead of compiling the test itself, and
``program_compiled``: the setup and program compiled the same way (`pack_program`), which the
program process loads.
"""

from __future__ import annotations

import builtins
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

try:
    from payoff.sandbox.batch import NAME as BATCH_NAME
    from payoff.sandbox.batch import plan
    from payoff.sandbox.compiled import compile_tests
    from payoff.sandbox.program_side import ctypes_kit, describe, serve_program
    from payoff.sandbox.wire import from_wire, pair, receive, send, text, to_wire
except ImportError:  # outside the package (lean fork server, bubblewrap): the siblings by their flat names
    from payoff_sandbox_batch import NAME as BATCH_NAME  # type: ignore[no-redef]
    from payoff_sandbox_batch import plan  # type: ignore[no-redef]
    from payoff_sandbox_compiled import compile_tests  # type: ignore[no-redef]
    from payoff_sandbox_program import ctypes_kit, describe, serve_program  # type: ignore[no-redef]
    from payoff_sandbox_wire import from_wire, pair, receive, send, text, to_wire  # type: ignore[no-redef]

# Its siblings by their flat names, for whoever runs this file outside the package.
SIBLINGS = {"payoff_sandbox_wire.py": "wire.py", "payoff_sandbox_program.py": "program_side.py",
            "payoff_sandbox_batch.py": "batch.py", "payoff_sandbox_compiled.py": "compiled.py"}


# -- the judge ----------------------------------------------------------------------------------
class UnsafeComparison(TypeError):
    """A test compared an object the program made: the program's own __eq__ would decide."""


class ProgramError(Exception):
    """The program raised an exception that is not a builtin one (or ended itself)."""


class ProgramGone(Exception):
    """The program process ended or ran out of time while a test waited on it."""


class Link:
    """The judge's end of the socket, with the deadline every call counts against."""

    def __init__(self, sock: socket.socket, stop: Callable[[], None], deadline: float, trust_program: bool) -> None:
        # `stop()` ends the program process (killed, where the judge forked it; its socket shut
        # down, where the resident judge serves a run's child it may not signal).
        self.sock, self.stop, self.deadline, self.trust_program = sock, stop, deadline, trust_program
        self.gone: str | None = None
        self.ahead: list[tuple[dict[str, Any], Any]] = []  # (call, its answer) sent ahead, in order (`batch`)

    def request(self, op: str, target: int, args: list[Any], kwargs: dict[str, Any] | None = None,
                originals: tuple[Any, ...] = ()) -> Any:
        if self.gone:
            raise ProgramGone(self.gone)
        message: dict[str, Any] = {"op": op, "target": target, "args": to_wire(list(args), _handle_id)}
        if kwargs is not None:
            message["kwargs"] = to_wire(kwargs, _handle_id)
        if self.ahead:
            call, reply = self.ahead.pop(0)
            if call == message:
                return self._result(reply, originals)
            self.ahead.clear()  # the test went another way: ask as usual
        return self._result(self._exchange(message), originals)

    def batch(self, entries: Any) -> None:
        """Send the calls a run of asserts will make (see `payoff.sandbox.batch`) in one message;
        the test's own calls then take their answers in order."""
        calls = plan(entries, lambda f: type(f) is Remote and object.__getattribute__(f, "_link") is self)
        if self.gone or len(calls) < 2:
            return
        messages = [{"op": "call", "target": object.__getattribute__(f, "_number"), "args": to_wire(list(args), _handle_id),
                     "kwargs": to_wire(kwargs, _handle_id)} for f, args, kwargs in calls]
        replies = self._exchange({"op": "batch", "calls": messages})
        if type(replies) is not list or len(replies) > len(messages):
            self._end("unreadable reply from the program")
        self.ahead = list(zip(messages, replies))

    def _exchange(self, message: dict[str, Any]) -> Any:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self._end("out of time")
        self.sock.settimeout(remaining)
        try:
            send(self.sock, message)
            reply = receive(self.sock)
        except TimeoutError:
            self._end("out of time")
        except (EOFError, OSError) as error:
            self._end(f"the program process ended ({error})")
        except (ValueError, RecursionError, MemoryError) as error:
            self._end(f"unreadable reply from the program: {type(error).__name__}")
        return reply

    def _result(self, reply: Any, originals: tuple[Any, ...]) -> Any:
        if type(reply) is not dict:
            self._end("unreadable reply from the program")
        if "raise" in reply:
            name, text = (str(part)[:300] for part in pair(reply["raise"]))
            kind = getattr(builtins, name, None)
            error: Exception = ProgramError(f"{name}: {text}")
            if isinstance(kind, type) and issubclass(kind, Exception) and kind.__module__ == "builtins":
                try:
                    error = kind(text)
                except TypeError:  # an exception class whose constructor wants other arguments
                    pass
            raise error
        try:
            value = from_wire(reply.get("ok"), self.handle)
            for original, changed in zip(originals, reply.get("args") or []):
                if changed is not None:
                    _update_in_place(original, from_wire(changed, self.handle))
        except (ValueError, TypeError, RecursionError, MemoryError) as error:
            raise ProgramError(f"unreadable result from the program: {error}") from None
        return value

    def handle(self, number: int, type_name: str) -> Remote:
        return Remote(self, number, type_name)

    def _end(self, why: str) -> None:
        self.gone = why
        self.stop()
        raise ProgramGone(why)


def _handle_id(value: Any) -> int:
    if type(value) is Remote:
        return object.__getattribute__(value, "_number")
    raise TypeError(f"a {type(value).__name__} cannot be sent to the program (plain data or program objects only)")


def _update_in_place(original: Any, changed: Any) -> None:
    if type(original) is list and type(changed) is list:
        original[:] = changed
    elif type(original) is dict and type(changed) is dict:
        original.clear()
        original.update(changed)
    elif type(original) is set and type(changed) is set:
        original.clear()
        original.update(changed)


class Remote:
    """A handle on an object in the program process (a function, a class, an instance)."""

    __slots__ = ("_link", "_number", "_type")

    def __init__(self, link: Link, number: int, type_name: str) -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_number", number)
        object.__setattr__(self, "_type", type_name)

    def _ask(self, op: str, *args: Any, **kwargs: Any) -> Any:
        link = object.__getattribute__(self, "_link")
        return link.request(op, object.__getattribute__(self, "_number"), list(args), **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ask("call", *args, kwargs=kwargs, originals=args)

    def __getattr__(self, name: str) -> Any:
        return self._ask("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", name, value)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ask("setitem", key, value)

    def __iter__(self) -> Any:
        return iter(self._ask("iter"))

    def __len__(self) -> int:
        value = self._ask("len")
        if type(value) is not int:
            raise TypeError("len() of a program object gave a non-int")
        return value

    def __str__(self) -> str:
        value = self._ask("str")
        return value if type(value) is str else "<program object>"

    def __repr__(self) -> str:
        value = self._ask("repr")
        return value if type(value) is str else "<program object>"

    def _refuse_or_ask(self, op: str, name: str, *args: Any) -> Any:
        if not object.__getattribute__(self, "_link").trust_program:
            raise UnsafeComparison(
                f"the test used {name} on a {object.__getattribute__(self, '_type')} made by the program; only plain "
                "data (numbers, strings, lists, tuples, dicts, sets) is compared, never the program's own operators "
                "(compare='program' allows them)")
        return self._ask(op, *args)

    def __contains__(self, item: Any) -> bool:
        return self._refuse_or_ask("binary", "in", "contains", item) is True

    def __bool__(self) -> bool:
        return self._refuse_or_ask("unary", "truth testing", "bool") is True

    def __hash__(self) -> int:
        value = self._refuse_or_ask("unary", "hash()", "hash")
        if type(value) is not int:
            raise TypeError("hash() of a program object gave a non-int")
        return value


def _guarded(op: str, symbol: str, name: str) -> Any:
    if op == "unary":
        return lambda self: self._refuse_or_ask(op, symbol, name)
    return lambda self, other: self._refuse_or_ask(op, symbol, name, other)


# Comparisons and arithmetic on a program object: refused, or asked of the program under
# compare="program".
for _name, _symbol in (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="), ("add", "+"),
                       ("sub", "-"), ("mul", "*"), ("truediv", "/")):
    setattr(Remote, f"__{_name}__", _guarded("binary", _symbol, _name))
for _name, _symbol in (("neg", "-"), ("abs", "abs()")):
    setattr(Remote, f"__{_name}__", _guarded("unary", _symbol, _name))


def _emit(fd: int, record: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())


def start_program() -> tuple[socket.socket, int]:
    """Fork the program process, which waits on its end of a socket pair for its program (see
    `serve_program`); this process becomes not dumpable first. Returns (the judge's end, pid)."""
    undumpable()
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            serve_program(theirs)
        finally:
            os._exit(0)
    theirs.close()
    return ours, pid


def undumpable() -> None:
    # Not dumpable: a same-uid process (the program) can neither ptrace this one nor open its
    # /proc files (its stdout, its memory).
    try:
        ctypes_kit()[0].prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


def judge() -> None:
    """The judge as the run's own child (bubblewrap, or a fork server without a resident judge:
    see `payoff.sandbox.resident`). It forks the program process before it reads its job, so the
    program's memory never holds the tests."""
    started = time.monotonic()
    undumpable()
    verdict_fd = os.dup(1)
    os.set_inheritable(verdict_fd, False)
    ours, pid = start_program()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)  # what the tests print does not land among the verdicts
    job = json.loads(sys.stdin.buffer.read())
    judge_job(job, ours, functools.partial(_kill, pid), verdict_fd, started)
    os.close(verdict_fd)  # the last holder of the run's stdout but fd 1: the sandbox sees its end
    # Nothing of the program process is needed any more: killed, not waited for, so that it and
    # the judge go away side by side (the sandbox reaps whatever of the run is left).
    _kill(pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except OSError:
        pass


def judge_job(job: dict[str, Any], ours: socket.socket, stop: Callable[[], None], verdict_fd: int, started: float) -> None:
    """Run one job's tests against the program process at the other end of `ours`, writing the
    verdicts on `verdict_fd` (see the module's docstring); `stop()` ends the program process."""
    sys.set_int_max_str_digits(100_000)
    tests = [str(test) for test in job["tests"]]
    link = Link(ours, stop, started + float(job.get("budget_s", 5.0)), job.get("compare") == "program")
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, BATCH_NAME: link.batch}
    try:
        exec(compile(str(job.get("setup") or ""), "setup.py", "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - the task's own setup is broken: say so, run nothing
        _emit(verdict_fd, {"setup_error": describe(error)})
        return
    ours.settimeout(max(link.deadline - time.monotonic(), 0.001))
    compiled: list[Any] | None = None
    try:
        send(ours, {"program": str(job["program"]), "setup": str(job.get("setup") or ""),
                    "compiled": job.get("program_compiled")})
        compiled = compile_tests(tests, job.get("compiled"))  # while the program process loads the program
        manifest = receive(ours)
        names = manifest["names"]
        if type(names) is not dict:
            raise ValueError("malformed manifest")
        own = set(namespace)  # what the setup code bound: the tests' own, like the builtins
        for name, entry in names.items():
            name = str(name)
            kind, payload = pair(entry)
            if name in own or name in builtins.__dict__ or (kind != "module" and name in sys.modules):
                continue  # a program's `abs`, or a `math` of its own making, does not replace the tests' own
            if kind == "module":
                # Only a module this judge has imported already: a module the program names is
                # never imported for it (an import runs code in the judge).
                module = sys.modules.get(text(payload))
                if module is not None:
                    namespace[name] = module
            else:
                namespace[name] = from_wire(payload, link.handle)
        load_error = manifest.get("load_error")
        _emit(verdict_fd, {"ready": True, "load_error": str(load_error)[:300] if load_error else None,
                           "confined": manifest.get("confined") is True})
    except Exception as error:  # noqa: BLE001 - the program never got as far as defining anything
        link.gone = f"the program did not load ({type(error).__name__}: {str(error)[:200]})"
        stop()
        _emit(verdict_fd, {"ready": True, "load_error": link.gone, "confined": False})
    for index in range(len(tests)):
        try:
            if link.gone:
                raise ProgramGone(link.gone)
            code = (compiled or compile_tests(tests, job.get("compiled")))[index]
            if isinstance(code, BaseException):
                raise code
            exec(code, namespace)
            record = {"test": index, "pass": True}
        except BaseException as error:  # noqa: BLE001 - any failure of a test is that test's verdict
            record = {"test": index, "pass": False, "why": describe(error)}
        _emit(verdict_fd, record)
    _emit(verdict_fd, {"done": True})


if __name__ == "__main__":
    judge()
