"""The harness's program process: run the model's program, then answer the judge's calls with
plain data; confined so that it can neither signal nor read the judge. Standard library only."""

from __future__ import annotations

import builtins
import json
import os
import socket
import struct
import sys
from typing import Any

try:
    from payoff.sandbox.compiled import load_program
    from payoff.sandbox.wire import from_wire, receive, send, to_wire
except ImportError:  # outside the package (lean fork server, bubblewrap): the siblings by their flat names
    from payoff_sandbox_compiled import load_program  # type: ignore[no-redef]
    from payoff_sandbox_wire import from_wire, receive, send, to_wire  # type: ignore[no-redef]


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
    if not _FILTER:
        prebuild_filter()  # outside a fork server: built here
    if _FILTER[0] is None:
        return False
    prctl, argument, filters, offsets = _FILTER[:4]
    me = os.getpid()
    for offset in offsets:
        struct.pack_into("=I", filters, offset, me)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        return False
    return prctl(pr_set_seccomp, seccomp_mode_filter, argument, 0, 0) == 0


# (libc's prctl, the sock_fprog argument, its filter buffer, the offsets of the pid in it, the
# sock_fprog), or
# (None,) where there is no table for this architecture. Built in the fork server, before it
# forks: built in each program process it cost about 140 copied pages (0.6 ms); there only the
# pid is written into the buffer.
_FILTER: list[Any] = []


def prebuild_filter() -> None:
    rows = seccomp_rows(0)
    if rows is None:
        _FILTER[:] = [None]
        return
    import ctypes

    # The rows that hold the pid are those that differ between two pids: its offset in each
    # 8-byte struct sock_filter is 4 (after code, jt and jf).
    offsets = [8 * i + 4 for i, (a, b) in enumerate(zip(rows, seccomp_rows(1) or [])) if a != b]
    libc, prog, filters = compiled_filter(rows)
    prctl = libc.prctl
    prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE: runs ctypes' call path once, changing nothing
    # The structure is kept too: the argument points into it, and it into the buffer.
    _FILTER[:] = [prctl, ctypes.byref(prog), filters, offsets, prog]


def seccomp_rows(me: int) -> list[tuple[int, int, int, int]] | None:
    """The filter's BPF instructions for the process `me`; None on an architecture without a table."""
    table = _SYSCALLS.get(os.uname().machine)
    if table is None:
        return None
    arch, targeted, forbidden = table
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
    return program


_TYPES: list[Any] = []  # (libc, Filter, Program), made once: in the fork server, before it forks


def ctypes_kit() -> list[Any]:
    """libc and the seccomp program structure, built once, in the fork server (`warm.harness_paths`):
    made in each process that needs them they cost it fresh types and the pages it writes."""
    if not _TYPES:
        import ctypes

        class Program(ctypes.Structure):  # struct sock_fprog
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        _TYPES.extend((ctypes.CDLL(None, use_errno=True), Program, ctypes.create_string_buffer, ctypes.addressof))
    return _TYPES


def compiled_filter(rows: list[tuple[int, int, int, int]]) -> tuple[Any, Any, Any]:
    """libc, the sock_fprog for `rows` and the buffer of struct sock_filter it points to (packed
    bytes: a ctypes array of structures cost the program process half a millisecond)."""
    libc, program_type, create_buffer, address_of = ctypes_kit()
    filters = create_buffer(b"".join([struct.pack("=HBBI", *row) for row in rows]))
    return libc, program_type(len(rows), address_of(filters)), filters


class Quitter:
    """``exit`` / ``quit`` as the interactive interpreter defines them (the sandbox has no site)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code: Any = None) -> None:
        raise SystemExit(code)


_BUILTINS: list[Any] = []


def program_builtins() -> Any:
    """The program's copy of the builtins module, with ``exit`` and ``quit``: made once, in the
    fork server (`warm.harness_paths`). Copied in each program process (as a saved copy of the
    builtins, to restore after the program), it cost about 80 copied pages: taking a reference
    to each builtin writes its reference count."""
    if not _BUILTINS:
        own = type(sys)("builtins", builtins.__doc__)
        own.__dict__.update(builtins.__dict__)
        own.exit, own.quit = Quitter("exit"), Quitter("quit")
        _BUILTINS.append(own)
    return _BUILTINS[0]


def serve_program(sock: socket.socket, report_fd: int | None = None) -> None:
    """The program process: wait for the program, run it, then answer the judge until EOF, and
    return. It already runs under its run's limits and user. `report_fd`: a descriptor to keep
    besides the socket (the fork-server child's report pipe, for its end record)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    low = 3
    for keep in sorted({sock.fileno()} | ({report_fd} if report_fd is not None else set())):
        os.closerange(low, keep)
        low = keep + 1
    os.closerange(low, 1 << 16)
    # The filter depends on nothing but this process's pid: installed before the job arrives.
    confined = confine_program()
    job = receive(sock)
    sys.set_int_max_str_digits(0)
    sys.argv = ["program.py"]
    # The program runs on its own copy of the builtins module (also what `import builtins` gives
    # it while it loads), so the serving code below runs on the builtins as they were, whatever
    # the program patched (its own process only: the judge's builtins are out of its reach anyway).
    own = program_builtins()
    namespace: dict[str, Any] = {"__name__": "program", "__builtins__": own}
    real = sys.modules["builtins"]
    sys.modules["builtins"] = own
    load_error = None
    try:
        exec(load_program(job["setup"], job["program"], job.get("compiled")), namespace)
    except SystemExit:
        pass  # the program ended itself: the tests run against what it defined by then
    except BaseException as error:  # noqa: BLE001 - the program's own error, reported to the judge
        load_error = describe(error)
    finally:
        sys.modules["builtins"] = real
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
            return
        if type(request) is dict and request.get("op") == "batch":
            send(sock, answer_batch(request, objects, make_handle))
        else:
            send(sock, answer(request, objects, make_handle))


def describe(error: BaseException) -> str:
    name = type(error).__name__
    try:
        message = str(error).strip()
    except Exception:  # noqa: BLE001 - a hostile __str__
        message = ""
    return (f"{name}: {message}" if message else name).replace("\n", " ")[:300]


def answer_batch(request: dict[str, Any], objects: list[Any], make_handle: Any) -> list[dict[str, Any]]:
    """Answer a batch of calls in order, up to the first that raises or returns an object of the
    program's own (the test may call into it before its next call)."""
    replies = []
    for call in request.get("calls") or []:
        before = len(objects)
        reply = answer(call if type(call) is dict and call.get("op") == "call" else {"op": "?"}, objects, make_handle)
        replies.append(reply)
        if "raise" in reply or len(objects) != before:
            break
    return replies


def answer(request: dict[str, Any], objects: list[Any], make_handle: Any) -> dict[str, Any]:
    """The program's reply to one request of the judge's."""
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
        return {"raise": [type(error).__name__, describe(error)]}


_COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge", "contains")
