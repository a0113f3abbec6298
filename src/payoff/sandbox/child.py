"""The fork server's child: what a forked run does to itself before its program's first line, and
then runs it (a program, a shell command, or a test harness's judge). Never returns.

Split from server.py, which forks it; like the server it runs either inside the package or loaded
by path in a lean ``python -I -S server.py`` (then its siblings go by their flat names).
"""

from __future__ import annotations

import _signal
import builtins
import os
import pickle
import resource
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

try:
    import payoff.sandbox.harness as harness
    from payoff.sandbox.limits import END_RECORD, NOBODY, Limits, address_space, apply_rlimits, write_files
    from payoff.sandbox.program_side import Quitter
    from payoff.sandbox.protocol import receive_fds
except ImportError:  # loaded by path by a lean server.py, after these siblings
    harness = sys.modules["payoff_harness"]
    _limits = sys.modules["payoff_limits"]
    NOBODY, Limits, apply_rlimits, write_files = _limits.NOBODY, _limits.Limits, _limits.apply_rlimits, _limits.write_files
    address_space, END_RECORD = _limits.address_space, _limits.END_RECORD
    Quitter = sys.modules["payoff_sandbox_program"].Quitter
    receive_fds = sys.modules["payoff_sandbox_protocol"].receive_fds

# A request like a real one, for `_rehearse` (made here, in the fork server, before it forks).
STAND_IN = pickle.dumps({"code": "pass", "language": "python", "files": {}, "limits": Limits().to_dict(), "stdin_file": False},
                        protocol=pickle.HIGHEST_PROTOCOL)


def lie_dormant(control_fd: int, root: bool, nproc: bool) -> NoReturn:
    """A copy of the fork server, forked from it once, that makes each run's child in its place.

    A process that forks copies every page it writes afterwards while a child still shares it: the
    server, which runs Python for every request, copied about 300 pages per run that way. This
    copy does nothing but wait on `control_fd` (a SOCK_SEQPACKET socket) for the server's word,
    which carries the new child's four pipe ends (request, stdout, stderr, ready), for a child
    made for a test run its end of a program socket (`spares.Spare.program`), and its working
    directory. Then it forks its successor, which goes on waiting, and becomes the run's child
    itself (`run_child`), first writing its own pid and the successor's (0: none) on the ready
    pipe. When it exits at the end of its run, the fork server, a child subreaper, inherits the
    successor, so every run's child is the server's own child by the time the server waits for
    it. Exits when the server closes its end. Never returns."""
    if control_fd != 3:
        os.dup2(control_fd, 3)
        os.close(control_fd)
    os.closerange(4, 65536)  # the server's protocol pipes and anything else it held
    # The programs' signal dispositions, set once here: every child inherits them.
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
        _signal.signal(number, _signal.SIG_DFL)  # the C call: signal.signal's enum wrapping writes pages
    control = socket.socket(fileno=3)
    while True:
        message, fds = receive_fds(control, 4096, 5)
        if len(fds) not in (4, 5) or len(message) < 2:  # the server closed its end
            os._exit(0)
        successor = -1
        if message[:1] == b"C":  # the server is a subreaper: it will inherit the successor
            try:
                successor = os.fork()
            except OSError:
                pass  # the server forks a dormant copy itself next time
        if successor == 0:
            for fd in fds:
                os.close(fd)
            continue
        control.close()
        request_fd, out_w, err_w, ready_w = fds[:4]
        os.dup2(ready_w, 3)
        os.close(ready_w)
        os.write(3, os.getpid().to_bytes(4, "big") + max(successor, 0).to_bytes(4, "big"))
        workdir = message[1:].decode()
        os.environ["HOME"] = os.environ["TMPDIR"] = workdir
        run_child(request_fd, out_w, err_w, workdir, fds[4] if len(fds) == 5 else None, root, nproc)


def run_child(request_fd: int, out_w: int, err_w: int, workdir: str, program_fd: int | None, root: bool,
              nproc: bool) -> NoReturn:
    """In the forked child: box itself, wait for the program, then run it. Never returns.
    `program_fd`: a socket to the resident judge's side (`payoff.sandbox.resident`): if the
    request is a test run for it, this child becomes the run's program process. `root`: the server
    runs as root (drop to nobody); `nproc`: RLIMIT_NPROC must bound processes (no pids cgroup)."""
    try:
        os.setsid()
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(request_fd, 0)
        if program_fd is not None:
            os.dup2(program_fd, 4)
            program_fd = 4
        os.closerange(5 if program_fd else 4, 65536)  # 3 is the report pipe (pids, set-up byte, end record)
        os.chdir(workdir)
        _rehearse()
        chunks = []
        while chunk := os.read(0, 1 << 16):
            chunks.append(chunk)
        request = pickle.loads(b"".join(chunks))
        limits = Limits(**request["limits"])
        _drop_privileges(root)
        write_files(workdir, request.get("files") or {})
        stdin_path = os.path.join(workdir, ".stdin")  # written by the server
        stdin_fd = os.open(stdin_path if request.get("stdin_file") else os.devnull, os.O_RDONLY)
        if request.get("stdin_file"):
            os.unlink(stdin_path)
        os.dup2(stdin_fd, 0)
        os.close(stdin_fd)
        apply_rlimits(limits, nproc=nproc)
        os.write(3, b"1")
        os.set_inheritable(3, False)  # kept for the end record (`_end`); no program it execs gets it
    except BaseException:  # noqa: BLE001 - setup failed: say so on stderr, exit 125
        os.write(2, traceback.format_exc().encode())
        os._exit(125)
    if program_fd is not None:
        if request.get("resident"):
            # The run's program process, serving the resident judge (which holds the tests).
            harness.serve_program(socket.socket(fileno=program_fd), report_fd=3)
            _end(0)
        os.close(program_fd)  # not a test run for the resident judge after all
    _execute(request)


def prepare_interpreter() -> None:
    """What a run's program sees of the interpreter besides its builtins, made once in the fork
    server rather than in each child (made per child, about 250 µs and 70 copied pages a run):
    sys.stdin, sys.stdout and sys.stderr, which name descriptors 0, 1 and 2 (each child points
    them at its own run's stdin and pipes before its program runs, so the same unused, empty
    objects serve every child), and what `site` would add: sys.argv, exit() and quit()."""
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.argv = ["program.py"]
    builtins.exit, builtins.quit = Quitter("exit"), Quitter("quit")


def _rehearse() -> None:
    """Walk the path from the request to the program's first line once on a stand-in, before the
    request comes: a forked child copies every page it first writes (reference counts, the
    allocator's pools), about 150 of them on this path, and copying them now, while the previous
    run still runs, takes them off the next run's time."""
    stand_in = pickle.loads(STAND_IN)
    Limits(**stand_in["limits"])
    address_space()
    os.close(os.open(os.devnull, os.O_RDONLY))
    exec(compile(stand_in["code"], "program.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})


def _drop_privileges(root: bool) -> None:
    if root:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def _execute(request: dict[str, Any]) -> NoReturn:
    language = request.get("language", "python")
    if language in ("sh", "bash"):
        os.execve(f"/bin/{language}", [language, "-c", request["code"]], dict(os.environ))
    code = 0
    try:
        if request.get("harness"):
            harness.judge()
            _end(0)
        program = compile(request["code"], "program.py", "exec")
        exec(program, {"__name__": "__main__", "__file__": "program.py", "__builtins__": builtins})
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if stop.code is not None and not isinstance(stop.code, int):
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - the program's own error, reported like python would
        traceback.print_exc()
        code = 1
    _end(code)


def _end(code: int) -> NoReturn:
    """Flush and close the run's streams, write the end record on the report pipe, then exit.
    The server answers from the record: the exit itself unmaps this copy of the interpreter, which
    takes longer than the rest of a trivial run."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - a stream the program broke: the exit code stands
        pass
    try:
        os.close(1)
        os.close(2)
        me, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = me.ru_utime + me.ru_stime + reaped.ru_utime + reaped.ru_stime
        os.write(3, END_RECORD.pack(b"E", code & 0xFF, cpu, max(me.ru_maxrss, reaped.ru_maxrss)))
    except OSError:
        pass  # no report pipe (the program closed it): the server waits for the exit instead
    os._exit(code)
