"""The resident judge: one judge process per fork server that runs every test run's tests, so that
a test run forks one interpreter (its program process) instead of two.

A test run used to be a forked judge that forked its program process: two copies of the
interpreter, each copying the pages it writes (about 800 for the judge, 500 for the program) and
unmapping its copy at exit. The judge's work is a millisecond; its copy was most of a run's CPU.
The resident judge is forked once from the fork server while the server is still clean (it never
holds a job), and lives as long as it. Each test run's child is then the program process itself
(`child.run_child` with the spare's program socket), and the server hands the judge, over a
SOCK_SEQPACKET socket, the run's job (in a memfd: the tests and expected values never pass
through the server's memory), the judge's end of the program socket, the write end of a pipe for
the verdicts, which the server reads as the run's stdout, and the run's working directory.

Why the program still cannot reach the judge: its memory was never the judge's (the program
process is forked by the server's dormant copy, which never held a job). Where the server is
root, the judge runs as a user of its own (`limits.JUDGE_UID`), so a program, which runs as
nobody, can neither signal it, nor change its rlimits or priority, nor trace it or read its
/proc files; the judge is not dumpable either, and the program's seccomp filter refuses
kill/ptrace/process_vm calls on any process but itself. Only plain data crosses the socket,
rebuilt by the judge's decoder; a name the program binds to a module is bound in the tests only
to a module the judge has already imported, never imported for it. The verdict pipe is the
judge's alone. (Without root there is no second user: the program runs as the caller's user and
could reach the fork server itself, resident judge or not.)

Each job starts from the same state: a fresh namespace, the run's working directory, and the
interpreter settings the judge started with (recursion limit, sys.path, environment, no trace or
profile hook, no pending alarm and SIGALRM's own disposition). What a job's trusted tests change
in the judge's modules stays for the next. The judge does not signal the program process (it may
not): to stop it, the judge shuts down its socket, and the server kills the run's child once the
verdicts are in. A judge that has not finished its job a second after its run's deadline is
killed, and the next test run gets another; the server also retires a judge after `JOBS` jobs.

Standard library only (the server may run as a lean ``python -I -S``).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import NoReturn

try:
    import payoff.sandbox.harness as harness
    from payoff.sandbox.limits import JUDGE_UID, NOBODY, address_space
    from payoff.sandbox.protocol import receive_fds, write_stdin
except ImportError:  # loaded by path by a lean server.py, after these siblings
    harness = sys.modules["payoff_harness"]
    receive_fds, write_stdin = sys.modules["payoff_sandbox_protocol"].receive_fds, sys.modules["payoff_sandbox_protocol"].write_stdin
    _limits = sys.modules["payoff_limits"]
    JUDGE_UID, NOBODY, address_space = _limits.JUDGE_UID, _limits.NOBODY, _limits.address_space

NAME = b"payoff-judge"  # the process's name in ps and /proc (comm)
# The judge's own address space beyond what it starts with: tests are trusted, but what they
# build from the program's answers is not bounded by the program's limits.
JUDGE_MEMORY_MB = 2048
# Jobs the server hands a judge before it retires it and starts another at the next test run:
# what trusted tests leave in a long-lived process (modules, caches, a fragmented heap) stays bounded.
JOBS = 10_000


class ResidentJudge:
    """The server's side: starts the judge process (at the first test run), hands it each test
    run's job, and replaces it when it is gone, stuck or due (`JOBS`)."""

    def __init__(self, root: bool) -> None:
        self.root = root
        self.control: socket.socket | None = None  # the server's end of the judge's job socket
        self.pid = 0  # the judge's, while there is one
        self.jobs = 0
        self.broken = False  # a judge started afresh could not take a job: runs judge themselves

    def ready(self) -> bool:
        """Start a judge where there is none (or retire one that is due); whether one is there."""
        if self.control is not None and self.jobs >= JOBS:
            self.stop()
        if self.control is None and not self.broken:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                pid = os.fork()
            except OSError:
                ours.close()
                theirs.close()
                return False  # no room for it now: test runs judge themselves meanwhile
            if pid == 0:
                ours.close()
                serve(theirs.detach(), self.root)
            theirs.close()
            self.control, self.pid, self.jobs = ours, pid, 0
        return self.control is not None

    def reaped(self, pid: int) -> None:
        """The server reaped `pid`: if it was the judge, the next test run gets another."""
        if pid == self.pid and self.control is not None:
            self.control.close()
            self.control, self.pid = None, 0

    def take(self, workdir: str, program: socket.socket, protocol_fd: int | None, stdin_size: int, data: bytes,
             stdin_file: Callable[[], int]) -> int:
        """Put a test run's job (its stdin bytes: `stdin_size` still in `protocol_fd`, then `data`)
        in a memfd and hand it, with the run's program socket, a verdict pipe and its working
        directory, to the judge (started again once if it is gone). Returns the verdict pipe's read
        end, or -1 where no judge took the job: then the job is in the run's stdin file
        (`stdin_file()` opens it) and the run's child judges it itself."""
        try:
            job = os.memfd_create("payoff-job", os.MFD_CLOEXEC)
        except OSError:  # no memfd: straight into the stdin file
            fd = stdin_file()
            try:
                write_stdin(fd, protocol_fd, stdin_size, data)
            finally:
                os.close(fd)
            return -1
        try:
            write_stdin(job, protocol_fd, stdin_size, data)
            read_end = self._hand(job, workdir, program)
            if read_end >= 0:
                return read_end
            fd = stdin_file()
            try:
                os.sendfile(fd, job, 0, os.fstat(job).st_size)
            finally:
                os.close(fd)
            return -1
        finally:
            os.close(job)

    def _hand(self, job: int, workdir: str, program: socket.socket) -> int:
        try:
            read_end, write_end = os.pipe()
        except OSError:
            return -1  # out of descriptors
        try:
            workdir_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            workdir_fd = -1
        try:
            for attempt in (0, 1):
                if workdir_fd < 0 or not self.ready():
                    break
                try:
                    socket.send_fds(self.control, [workdir.encode()], [job, program.fileno(), write_end, workdir_fd],  # type: ignore[arg-type]
                                    socket.MSG_NOSIGNAL)
                    self.jobs += 1
                    return read_end
                except OSError:  # nobody at the other end: the judge is gone
                    self.stop()
                    self.broken = attempt == 1
        finally:
            for fd in (write_end, workdir_fd):
                if fd >= 0:
                    os.close(fd)
        os.close(read_end)
        return -1

    def rest(self, tail: int, room: int) -> tuple[bytes, bool]:
        """What the judge writes on a run's verdict pipe (`tail`, closed here) after the run's
        child has ended (the verdicts of the tests it had not reached when the program process
        died), up to its end of the pipe, at most a second: a judge that does not get there in time
        is stuck in a test of its own, and is killed. Returns (at most `room` bytes, whether the
        judge finished its job)."""
        rest, deadline = bytearray(), time.monotonic() + 1.0
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                if not select.select([tail], [], [], remaining)[0]:
                    break
                chunk = os.read(tail, 65536)
                if not chunk:
                    return bytes(rest[: max(room, 0)]), True
                rest += chunk
        finally:
            os.close(tail)
        self.stop()
        return bytes(rest[: max(room, 0)]), False

    def stop(self) -> None:
        """Kill the judge, if there is one (the server reaps it)."""
        if self.control is not None:
            self.control.close()
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        self.control, self.pid = None, 0


def serve(control_fd: int, root: bool) -> NoReturn:
    """In the judge: wait for jobs on `control_fd` and judge each. Never returns."""
    try:
        os.setsid()  # out of the server's process group: no run's kill reaches it by group
        if control_fd != 3:
            os.dup2(control_fd, 3)
            os.close(control_fd)
        os.closerange(4, 65536)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # what the tests print goes nowhere
        os.close(devnull)
        libc = harness.ctypes_kit()[0]
        libc.prctl(15, NAME, 0, 0, 0)  # PR_SET_NAME
        if root:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(JUDGE_UID)
        harness.undumpable()  # after the uid change, which resets it
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG (the uid change clears it): gone with the server
        os.chdir("/")
        space = address_space() + (JUDGE_MEMORY_MB << 20)
        resource.setrlimit(resource.RLIMIT_AS, (space, space))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        start = _State()
    except BaseException:  # noqa: BLE001 - could not set itself up: the server falls back
        os._exit(125)
    control = socket.socket(fileno=3)
    while True:
        message, fds = receive_fds(control, 65536, 4)
        if len(fds) != 4 or not message:  # the server closed its end
            os._exit(0)
        start.restore(message.decode())
        _judge_one(*fds)


class _State:
    """What a job's trusted code may change in the interpreter that the next job must not see."""

    def __init__(self) -> None:
        self.recursion, self.path, self.environ = sys.getrecursionlimit(), list(sys.path), dict(os.environ)
        self.alarm = signal.getsignal(signal.SIGALRM)
        self.streams = (sys.stdin, sys.stdout, sys.stderr)

    def restore(self, workdir: str) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)  # also cancels signal.alarm
        signal.signal(signal.SIGALRM, self.alarm)
        sys.settrace(None)
        sys.setprofile(None)
        sys.setrecursionlimit(self.recursion)
        sys.path[:] = self.path
        sys.stdin, sys.stdout, sys.stderr = self.streams
        os.environ.clear()
        os.environ.update(self.environ)
        os.environ["HOME"] = os.environ["TMPDIR"] = workdir


def _judge_one(job_fd: int, program_fd: int, verdict_fd: int, workdir_fd: int) -> None:
    started = time.monotonic()
    program = socket.socket(fileno=program_fd)

    def stop() -> None:
        # The judge may not signal the program process: its socket ends, and the server kills
        # the run's child once the verdicts are in.
        try:
            program.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    try:
        os.fchdir(workdir_fd)  # where the run's program is: a test's files are where it looks
        os.close(workdir_fd)
        workdir_fd = -1
        chunks, offset = [], 0
        while chunk := os.pread(job_fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        os.close(job_fd)
        job_fd = -1
        job = json.loads(b"".join(chunks))
        del chunks
        harness.judge_job(job, program, stop, verdict_fd, started)
    except BaseException as error:  # noqa: BLE001 - a job it cannot read: the run sees no verdicts
        try:
            os.write(verdict_fd, (json.dumps({"judge_error": f"{type(error).__name__}: {str(error)[:200]}"}) + "\n").encode())
        except OSError:
            pass
    finally:
        # The verdicts are closed before the program's socket: the program process exits when its
        # socket closes, and the server must find every verdict written by then.
        os.close(verdict_fd)
        program.close()
        for fd in (job_fd, workdir_fd):
            if fd >= 0:
                os.close(fd)
        os.chdir("/")
