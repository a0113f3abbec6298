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
- the *program* process runs the model's code and serves the judge's calls. It is forked from
  the judge before the judge reads its job, so its memory never holds the tests. It has no file
  descriptor but its socket (its output goes to /dev/null), cannot be signalled, ptraced or read
  by the judge (the judge is not dumpable, and a seccomp filter where the kernel has one refuses
  the program's kill/ptrace/process_vm calls on any process but itself).

The judge writes one JSON line per event to its stdout, which only it holds: ``{"ready": ...}``
once the program is loaded, ``{"test": i, "pass": bool, "why": str}`` per test and
``{"done": true}``. A test without a line did not pass.

The job arrives on stdin as JSON: ``program``, ``setup``, ``tests``, ``compare``
(``canonical`` or ``program``) and ``budget_s`` (the judge's time for all the tests).
"""

from __future__ import annotations

import builtins
import json
import os
import socket
import struct
import sys
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any

MAX_MESSAGE = 32 << 20
NOT_DATA = object()


# -- wire format: tagged JSON that decodes to builtin data only ----------------------------------
def to_wire(value: Any, make_handle: Any) -> Any:
    """A JSON-able tree for `value`: plain data natively, other types under a one-key tag.
    Objects that are not data become ``{"~h": [id, type name]}`` through `make_handle`
    (None: refuse them)."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int or kind is float:
        return value
    if kind is list:
        return [to_wire(item, make_handle) for item in value]
    if kind is tuple:
        return {"~t": [to_wire(item, make_handle) for item in value]}
    if kind is dict:
        return {"~d": [[to_wire(k, make_handle), to_wire(v, make_handle)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"~s" if kind is set else "~f": [to_wire(item, make_handle) for item in value]}
    if kind is complex:
        return {"~c": [value.real, value.imag]}
    if kind is bytes or kind is bytearray:
        return {"~b" if kind is bytes else "~y": value.hex()}
    if kind is range:
        return {"~r": [value.start, value.stop, value.step]}
    if kind is Fraction:
        return {"~q": [value.numerator, value.denominator]}
    if kind is Decimal:
        return {"~D": str(value)}
    # Subclasses of builtin data (IntEnum, namedtuple, OrderedDict, Counter ...) travel as their
    # base type, read through the base type's own methods.
    for base, convert in _BASES:
        if isinstance(value, base):
            return to_wire(convert(value), make_handle)
    if make_handle is None:
        raise TypeError(f"a {kind.__name__} cannot be sent to the program (plain data only)")
    return {"~h": [make_handle(value), kind.__name__]}


_BASES = (
    (bool, bool), (int, int.__int__), (float, float.__float__), (str, str.__str__),
    (tuple, lambda v: tuple(tuple.__iter__(v))), (list, lambda v: list(list.__iter__(v))),
    (dict, lambda v: dict(dict.items(v))), (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    (set, lambda v: set(set.__iter__(v))), (bytes, bytes), (bytearray, bytes),
)


def from_wire(node: Any, resolve_handle: Any) -> Any:
    """Rebuild a tree made by `to_wire` from builtin types only; anything else is refused.
    This is the judge's side of the boundary: it trusts nothing in `node`."""
    kind = type(node)
    if node is None or kind is bool or kind is str or kind is int or kind is float:
        return node
    if kind is list:
        return [from_wire(item, resolve_handle) for item in node]
    if kind is not dict or len(node) != 1:
        raise ValueError("malformed value from the program")
    ((tag, payload),) = node.items()
    if tag == "~t":
        return tuple(from_wire(item, resolve_handle) for item in _list(payload))
    if tag == "~d":
        return {from_wire(k, resolve_handle): from_wire(v, resolve_handle) for k, v in (_pair(p) for p in _list(payload))}
    if tag == "~s":
        return {from_wire(item, resolve_handle) for item in _list(payload)}
    if tag == "~f":
        return frozenset(from_wire(item, resolve_handle) for item in _list(payload))
    if tag == "~c":
        real, imag = _pair(payload)
        return complex(_number(real), _number(imag))
    if tag in ("~b", "~y"):
        data = bytes.fromhex(_text(payload))
        return data if tag == "~b" else bytearray(data)
    if tag == "~r":
        return range(*(_integer(x) for x in _list(payload)))
    if tag == "~q":
        numerator, denominator = _pair(payload)
        return Fraction(_integer(numerator), _integer(denominator))
    if tag == "~D":
        return Decimal(_text(payload))
    if tag == "~h":
        handle, type_name = _pair(payload)
        return resolve_handle(_integer(handle), _text(type_name))
    raise ValueError(f"unknown tag {tag!r} from the program")


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise ValueError("malformed value from the program")
    return value


def _pair(value: Any) -> list[Any]:
    if type(value) is not list or len(value) != 2:
        raise ValueError("malformed value from the program")
    return value


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise ValueError("malformed value from the program")
    return value


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise ValueError("malformed value from the program")
    return float(value)


def _text(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("malformed value from the program")
    return value


def send(sock: socket.socket, message: Any) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def receive(sock: socket.socket) -> Any:
    header = _exactly(sock, 4)
    (size,) = struct.unpack(">I", header)
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes from the program (limit {MAX_MESSAGE})")
    return json.loads(_exactly(sock, size))


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("the program process ended")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# -- the program process ------------------------------------------------------------------------
# Syscalls the program may aim only at itself: signals, ptrace and cross-process memory access.
_SYSCALLS = {
    "x86_64": (0xC000003E, {"kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297},
               (101, 310, 311, 424, 434, 438, 440)),  # ptrace, process_vm_readv/writev, pidfd_*, process_madvise
    "aarch64": (0xC00000B7, {"kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240},
                (117, 270, 271, 424, 434, 438, 440)),
}


def confine_program() -> bool:
    """A seccomp filter in the program process: kill-family calls only on its own pid, and no
    ptrace, process_vm_* or pidfd calls at all (EPERM). False where the kernel or the
    architecture does not allow it; the judge then still treats a missing verdict as a fail."""
    import ctypes

    table = _SYSCALLS.get(os.uname().machine)
    if table is None:
        return False
    arch, targeted, forbidden = table
    me = os.getpid()
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    allow, deny, kill = 0x7FFF0000, 0x00050000 | 1, 0x80000000  # ALLOW, ERRNO(EPERM), KILL_PROCESS
    program: list[tuple[int, int, int, int]] = [(ld_w_abs, 0, 0, 4), (jeq_k, 1, 0, arch), (ret_k, 0, 0, kill),
                                               (ld_w_abs, 0, 0, 0)]
    if arch == 0xC000003E:
        program += [(jge_k, 0, 1, 0x40000000), (ret_k, 0, 0, deny)]  # the x32 ABI's numbers
    for number in forbidden:
        program += [(jeq_k, 0, 1, number), (ret_k, 0, 0, deny)]
    for number in targeted.values():
        # nr == number: allow only if args[0] (low word at 16, high at 20) is this process's pid.
        program += [(jeq_k, 0, 6, number), (ld_w_abs, 0, 0, 16), (jeq_k, 0, 3, me), (ld_w_abs, 0, 0, 20),
                    (jeq_k, 0, 1, 0), (ret_k, 0, 0, allow), (ret_k, 0, 0, deny)]
    program.append((ret_k, 0, 0, allow))

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*[Filter(*row) for row in program])
    prog = Program(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(prog), 0, 0) == 0


class _Quitter:
    """``exit`` / ``quit`` as the interactive interpreter defines them (the sandbox has no site)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code: Any = None) -> None:
        raise SystemExit(code)


def serve_program(sock: socket.socket) -> None:
    """The program process: wait for the program, run it, then answer the judge until EOF."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    job = receive(sock)
    confined = confine_program()
    builtins.exit, builtins.quit = _Quitter("exit"), _Quitter("quit")
    sys.set_int_max_str_digits(0)
    sys.argv = ["program.py"]
    namespace: dict[str, Any] = {"__name__": "program", "__builtins__": builtins}
    # The serving code below runs on the builtins as they were, whatever the program patched
    # while loading (its own process only: the judge's builtins are out of its reach anyway).
    table = builtins.__dict__
    saved_builtins = dict(table)
    load_error = None
    try:
        exec(compile(job["setup"] + "\n" + job["program"], "program.py", "exec"), namespace)
    except SystemExit:
        pass  # the program ended itself: the tests run against what it defined by then
    except BaseException as error:  # noqa: BLE001 - the program's own error, reported to the judge
        load_error = _describe(error)
    table.clear()
    table.update(saved_builtins)
    objects: list[Any] = []

    def make_handle(value: Any) -> int:
        objects.append(value)
        return len(objects) - 1

    names = {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        if type(value).__name__ == "module":
            names[name] = ["module", getattr(value, "__name__", name)]
            continue
        try:
            wire = to_wire(value, make_handle)
            if len(json.dumps(wire)) > 65536:
                wire = {"~h": [make_handle(value), type(value).__name__]}
        except Exception:  # noqa: BLE001 - a value the encoder cannot walk stays a handle
            wire = {"~h": [make_handle(value), type(value).__name__]}
        names[name] = ["value", wire]
    send(sock, {"load_error": load_error, "names": names, "confined": confined})
    while True:
        try:
            request = receive(sock)
        except (EOFError, OSError, ValueError):
            os._exit(0)
        send(sock, _answer(request, objects, make_handle))


def _describe(error: BaseException) -> str:
    name = type(error).__name__
    try:
        message = str(error).strip()
    except Exception:  # noqa: BLE001 - a hostile __str__
        message = ""
    return (f"{name}: {message}" if message else name).replace("\n", " ")[:300]


def _answer(request: dict[str, Any], objects: list[Any], make_handle: Any) -> dict[str, Any]:
    def resolve(handle: int, _type_name: str) -> Any:
        return objects[handle]

    try:
        op = request["op"]
        target = objects[request["target"]]
        args = from_wire(request.get("args", []), resolve)
        if op == "call":
            kwargs = from_wire(request.get("kwargs", {"~d": []}), resolve)
            value = target(*args, **kwargs)
        elif op == "getattr":
            value = getattr(target, args[0])
        elif op == "setattr":
            setattr(target, args[0], args[1])
            value = None
        elif op == "iter":
            value = list(target)
        elif op == "len":
            value = len(target)
        elif op == "str":
            value = str(target)
        elif op == "repr":
            value = repr(target)
        elif op == "getitem":
            value = target[args[0]]
        elif op == "setitem":
            target[args[0]] = args[1]
            value = None
        elif op == "binary":  # only under compare="program": the program's own operators
            import operator

            value = getattr(operator, args[0])(target, args[1])
            if args[0] in _COMPARISONS:
                value = bool(value)
        elif op == "unary":
            import operator

            value = {"bool": bool, "hash": hash, "neg": operator.neg, "abs": abs}[args[0]](target)
        else:
            raise ValueError(f"unknown operation {op!r}")
        reply: dict[str, Any] = {"ok": to_wire(value, make_handle)}
        if op == "call":
            # Arguments the function may have changed in place travel back so the judge's
            # copies change too (tests that sort a list in place and then check it).
            reply["args"] = [to_wire(a, make_handle) if type(a) in (list, dict, set) else None for a in args]
        return reply
    except BaseException as error:  # noqa: BLE001 - the program's exception, raised again on the judge's side
        return {"raise": [type(error).__name__, _describe(error)]}


_COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "contains")


# -- the judge ----------------------------------------------------------------------------------
class UnsafeComparison(TypeError):
    """A test compared an object the program made: the program's own __eq__ would decide."""


class ProgramError(Exception):
    """The program raised an exception that is not a builtin one (or ended itself)."""


class ProgramGone(Exception):
    """The program process ended or ran out of time while a test waited on it."""


class Link:
    """The judge's end of the socket, with the deadline every call counts against."""

    def __init__(self, sock: socket.socket, pid: int, deadline: float, trust_program: bool) -> None:
        self.sock, self.pid, self.deadline, self.trust_program = sock, pid, deadline, trust_program
        self.gone: str | None = None

    def request(self, op: str, target: int, args: list[Any], kwargs: dict[str, Any] | None = None,
                originals: tuple[Any, ...] = ()) -> Any:
        if self.gone:
            raise ProgramGone(self.gone)
        message: dict[str, Any] = {"op": op, "target": target, "args": to_wire(list(args), _handle_id)}
        if kwargs is not None:
            message["kwargs"] = to_wire(kwargs, _handle_id)
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
        if type(reply) is not dict:
            self._end("unreadable reply from the program")
        if "raise" in reply:
            name, text = (str(part)[:300] for part in _pair(reply["raise"]))
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
        try:
            os.kill(self.pid, 9)
        except OSError:
            pass
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

    def __eq__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "==", "eq", other)

    def __ne__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "!=", "ne", other)

    def __lt__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "<", "lt", other)

    def __le__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "<=", "le", other)

    def __gt__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", ">", "gt", other)

    def __ge__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", ">=", "ge", other)

    def __contains__(self, item: Any) -> bool:
        return self._refuse_or_ask("binary", "in", "contains", item) is True

    def __bool__(self) -> bool:
        return self._refuse_or_ask("unary", "truth testing", "bool") is True

    def __hash__(self) -> int:
        value = self._refuse_or_ask("unary", "hash()", "hash")
        if type(value) is not int:
            raise TypeError("hash() of a program object gave a non-int")
        return value

    def __add__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "+", "add", other)

    def __sub__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "-", "sub", other)

    def __mul__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "*", "mul", other)

    def __truediv__(self, other: Any) -> Any:
        return self._refuse_or_ask("binary", "/", "truediv", other)

    def __neg__(self) -> Any:
        return self._refuse_or_ask("unary", "-", "neg")

    def __abs__(self) -> Any:
        return self._refuse_or_ask("unary", "abs()", "abs")


def _emit(fd: int, record: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())


def judge() -> None:
    started = time.monotonic()
    # Not dumpable: a same-uid process (the program) can neither ptrace this one nor open its
    # /proc files (its stdout, its memory).
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass
    verdict_fd = os.dup(1)
    os.set_inheritable(verdict_fd, False)
    ours, theirs = socket.socketpair()
    # Fork before reading the job: the program's memory never holds the tests.
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            serve_program(theirs)
        finally:
            os._exit(0)
    theirs.close()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)  # what the tests print does not land among the verdicts
    job = json.loads(sys.stdin.buffer.read())
    sys.set_int_max_str_digits(100_000)
    tests = [str(test) for test in job["tests"]]
    link = Link(ours, pid, started + float(job.get("budget_s", 5.0)), job.get("compare") == "program")
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(str(job.get("setup") or ""), "setup.py", "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - the task's own setup is broken: say so, run nothing
        _emit(verdict_fd, {"setup_error": _describe(error)})
        return
    ours.settimeout(max(link.deadline - time.monotonic(), 0.001))
    try:
        send(ours, {"program": str(job["program"]), "setup": str(job.get("setup") or "")})
        manifest = receive(ours)
        names = manifest["names"]
        if type(names) is not dict:
            raise ValueError("malformed manifest")
        for name, entry in names.items():
            kind, payload = _pair(entry)
            if kind == "module":
                try:
                    namespace[str(name)] = __import__(_text(payload))
                except ImportError:
                    pass
            else:
                namespace[str(name)] = from_wire(payload, link.handle)
        load_error = manifest.get("load_error")
        _emit(verdict_fd, {"ready": True, "load_error": str(load_error)[:300] if load_error else None,
                           "confined": manifest.get("confined") is True})
    except Exception as error:  # noqa: BLE001 - the program never got as far as defining anything
        link.gone = f"the program did not load ({type(error).__name__}: {str(error)[:200]})"
        try:
            os.kill(pid, 9)
        except OSError:
            pass
        _emit(verdict_fd, {"ready": True, "load_error": link.gone, "confined": False})
    for index, test in enumerate(tests):
        try:
            if link.gone:
                raise ProgramGone(link.gone)
            exec(compile(test, f"test_{index}", "exec"), namespace)
            record = {"test": index, "pass": True}
        except BaseException as error:  # noqa: BLE001 - any failure of a test is that test's verdict
            record = {"test": index, "pass": False, "why": _describe(error)}
        _emit(verdict_fd, record)
    _emit(verdict_fd, {"done": True})
    # No wait for the program process: it ends on EOF, and the sandbox kills and reaps whatever
    # of the run is left the moment the judge exits.
    ours.close()


if __name__ == "__main__":
    judge()
