"""The resident judge: one judge process per fork server that runs every test run's tests, so that
a test run forks one interpreter (its program process) instead of two.

A test run used to be a forked judge that forked its program process: two copies of the
interpreter, each copying the pages it writes (about 800 for the judge, 500 for the program) and
unmapping its copy at exit. The judge's work is a millisecond; its copy was most of a run's CPU.
The resident judge is forked once from the fork server while the server is still clean (it never
holds a job), and lives as long as it. Each test run's child is then the program process itself
(`child.run_child` with the spare's program socket), and the server hands the judge, over a
SOCK_SEQPACKET socket, the run's job (in a memfd: the tests and expected values never pass
through the server's memory), the judge's end of the program socket, a pidfd of the program
process and the write end of a pipe for the verdicts, which the server reads as the run's stdout.

Why the program still cannot reach the judge: its memory was never the judge's (the program
process is forked by the server's dormant copy, which never held a job); the judge is not
dumpable, so a program of the same uid can neither ptrace it nor open its /proc files, and the
program's seccomp filter refuses kill/ptrace/process_vm calls on any process but itself; only
plain data crosses the socket, rebuilt by the judge's decoder; the verdict pipe is the judge's
alone. What one job's tests leave in the judge (modules they import, state they change) stays for
the next: the tests are trusted code, and each job gets a fresh namespace. A judge that does not
finish its job by the run's deadline is killed and another is forked for the next run.

Standard library only (the server may run as a lean ``python -I -S``).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys
import time
from typing import NoReturn

try:
    import payoff.sandbox.harness as harness
    from payoff.sandbox.limits import NOBODY, address_space
except ImportError:  # loaded by path by a lean server.py, after these siblings
    harness = sys.modules["payoff_harness"]
    NOBODY, address_space = sys.modules["payoff_limits"].NOBODY, sys.modules["payoff_limits"].address_space

NAME = b"payoff-judge"  # the process's name in ps and /proc (comm)
# The judge's own address space beyond what it starts with: tests are trusted, but what they
# build from the program's answers is not bounded by the program's limits.
JUDGE_MEMORY_MB = 2048
# Jobs a judge runs before it exits and the server starts another at the next test run: what
# trusted tests leave in a long-lived process (modules, caches, a fragmented heap) stays bounded.
JOBS = 10_000


class Resident:
    """The server's handle on its resident judge."""

    def __init__(self, root: bool, workdir: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            serve(theirs.detach(), root, workdir)
        theirs.close()
        self.control, self.pid = ours, pid

    def hand(self, job_fd: int, program: socket.socket, program_pidfd: int, verdict_fd: int) -> None:
        """Give the judge one run's job; raises OSError where the judge is gone."""
        socket.send_fds(self.control, [b"job"], [job_fd, program.fileno(), program_pidfd, verdict_fd], socket.MSG_NOSIGNAL)

    def stop(self) -> None:
        """Kill it (it did not finish a job in time, or the server is closing); the server reaps it."""
        self.control.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass


def serve(control_fd: int, root: bool, workdir: str) -> NoReturn:
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
            os.setuid(NOBODY)
        harness.undumpable()  # after the uid change, which resets it
        os.chdir(workdir)
        space = address_space() + (JUDGE_MEMORY_MB << 20)
        resource.setrlimit(resource.RLIMIT_AS, (space, space))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except BaseException:  # noqa: BLE001 - could not set itself up: the server falls back
        os._exit(125)
    control = socket.socket(fileno=3)
    for _ in range(JOBS):
        try:
            message, fds, _, _ = socket.recv_fds(control, 65536, 4)
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
        if len(fds) != 4 or not message:  # the server closed its end
            os._exit(0)
        _judge_one(*fds)
    os._exit(0)


def _judge_one(job_fd: int, program_fd: int, pidfd: int, verdict_fd: int) -> None:
    started = time.monotonic()
    program = socket.socket(fileno=program_fd)

    def stop() -> None:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass

    try:
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
        for fd in (pidfd, job_fd):
            if fd >= 0:
                os.close(fd)
