"""What a sandboxed run may use, what it reports, and the supervision shared by the backends."""

from __future__ import annotations

import os
import resource
import select
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

NOBODY = 65534
# The resident judge's user where the server is root (`payoff.sandbox.resident`): not the
# programs' user, so no program can signal it, change its limits or priority, or trace it; it
# keeps nobody's group, through which it enters the runs' working directories.
JUDGE_UID = 65533

# What a fork-server child writes on its report pipe once its program has ended and its streams
# are closed: b"E", the exit status, CPU seconds (its own and its reaped children's) and peak RSS
# in KiB. The server answers from it without waiting for the exit itself, which unmaps a copy of
# the whole interpreter: about half of a trivial run's time (see docs/sandbox.md).
END_RECORD = struct.Struct("!cBdq")


@dataclass(frozen=True)
class Usage:
    """The parts of `os.wait4`'s rusage a run reports, as a child's end record gives them."""

    ru_utime: float
    ru_stime: float
    ru_maxrss: int


@dataclass(frozen=True)
class Limits:
    """What a run may use. Limits are named as everywhere in payoff: ``timeout_s`` (wall clock)
    and ``memory_mb`` (address space the program may add to the interpreter it starts as, the
    same kind of limit as the engine's per-worker ``memory_mb``)."""

    timeout_s: float = 10.0  # wall-clock deadline; the whole process group dies at it
    cpu_s: int = 10  # RLIMIT_CPU
    memory_mb: int = 512  # RLIMIT_AS on top of the address space at start
    max_procs: int = 32  # processes and threads (pids cgroup; RLIMIT_NPROC only for a dropped uid without one)
    file_size_mb: int = 16  # RLIMIT_FSIZE
    open_files: int = 64  # RLIMIT_NOFILE
    output_bytes: int = 1_000_000  # cap per stream (stdout, stderr)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    status: str  # ok, error, timeout, memory, output_limit, killed
    stdout: str
    stderr: str
    exit_code: int | None
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    signal: str | None = None
    isolation: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def check_file_names(files: dict[str, Any]) -> None:
    """Refuse file names that would land outside the run's working directory."""
    for name in files:
        target = os.path.normpath(os.path.join("/w", name))
        if not target.startswith("/w/"):
            raise ValueError(f"file name {name!r} leaves the working directory")


def write_files(workdir: str, files: dict[str, Any]) -> None:
    """Write the run's input files (names already checked) into its working directory."""
    for name, content in files.items():
        target = os.path.join(workdir, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(content if isinstance(content, bytes) else str(content).encode())


def address_space() -> int:
    """This process's address space now, in bytes."""
    fd = os.open("/proc/self/statm", os.O_RDONLY)  # raw: no text stream to build in a fresh child
    try:
        return int(os.read(fd, 256).split()[0]) * resource.getpagesize()
    finally:
        os.close(fd)


def apply_rlimits(limits: Limits, nproc: bool = False, baseline: int | None = None) -> None:
    """In the child, before running anything of the program's. ``RLIMIT_NPROC`` counts every
    process of the uid, machine-wide: it is set (``nproc``) only when the run dropped to another
    uid and no pids cgroup caps it. Otherwise it would count the caller's other processes, or
    every other sandbox run as nobody (a second test suite beside this one)."""
    mb = 1024 * 1024
    # CPU: SIGXCPU at the soft limit (reported as a timeout), SIGKILL a second later as backstop.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    for kind, value in (
        (resource.RLIMIT_AS, (address_space() if baseline is None else baseline) + limits.memory_mb * mb),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(kind, (value, value))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_procs, limits.max_procs))


def supervise(pid: int, stdout_fd: int, stderr_fd: int, limits: Limits, kill: Callable[..., None],
              report_fd: int | None = None, reap: Callable[[int], tuple[int, Any]] | None = None,
              settle_s: float | None = None) -> tuple[str | None, bytes, bytes, float, int, Any, bytes]:
    """Collect both streams and reap the child, killing it (and everything it started) at the
    deadline or when a stream passes its cap. Returns (forced status or None, stdout, stderr,
    wall seconds, wait status, rusage, what came on `report_fd`). The child's exit is watched
    through a pidfd, so the run ends the moment it does.

    `report_fd` (the fork server's children): the child's report pipe, which carries b"1" once it
    is set up and then `END_RECORD` once its program has ended and both streams are closed. The
    run ends at that record with both streams at EOF; the child is then killed with the rest of
    the run and left to the caller to reap, and the status and usage come from the record. A
    program can write that pipe too, but a forged record only ends the run the way `os._exit`
    would: its streams must be closed, and everything of the run is killed at once.

    `reap(pid)` -> (wait status, rusage) replaces `os.wait4` (the fork server's children become
    its own only once the run before has exited).

    `settle_s`: the run is over when stdout closes (a test run's verdicts, written by the
    resident judge); the child then has `settle_s` seconds to end itself before it is killed,
    which is not a timeout."""
    start = time.monotonic()
    deadline = start + limits.timeout_s
    reap = reap or (lambda child: os.wait4(child, 0)[1:])
    poller = select.poll()  # not `selectors`: its Python bookkeeping is most of a trivial run's supervision
    buffers = {stdout_fd: bytearray(), stderr_fd: bytearray()}
    for fd in buffers:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    exit_fd = os.pidfd_open(pid)
    poller.register(exit_fd, select.POLLIN)
    report = bytearray()
    if report_fd is not None:
        os.set_blocking(report_fd, False)
        poller.register(report_fd, select.POLLIN)
    forced: str | None = None
    open_streams, exited, ended, over, settled = 2, False, False, False, False
    while (open_streams or not (exited or ended)) and forced is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            settled = over  # past the moment given to end itself: killed, which is no timeout
            forced = None if over else "timeout"
            break
        for fd, _ in poller.poll(min(remaining, 0.5) * 1000 + 1):
            if fd == exit_fd:
                exited = True
                poller.unregister(exit_fd)
                continue
            if fd == report_fd:
                ended = _read_report(report_fd, report, poller)
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                poller.unregister(fd)
                open_streams -= 1
                if fd == stdout_fd and settle_s is not None:
                    over = True
                    deadline = min(deadline, time.monotonic() + settle_s)
                continue
            buffer = buffers[fd]
            room = limits.output_bytes - len(buffer)
            buffer.extend(chunk[: max(room, 0)])
            if len(chunk) > room:
                forced = "output_limit"
                break
        if (exited or ended) and open_streams:
            # The child is gone (or has closed its streams and said how it ended); a grandchild,
            # or the dormant copy that a fork-server child forked before it had set itself up, may
            # still hold the pipes open. Drain what is already written, then stop waiting for them.
            for fd in list(buffers):
                try:
                    while chunk := os.read(fd, 65536):
                        buffers[fd].extend(chunk[: max(limits.output_bytes - len(buffers[fd]), 0)])
                except (BlockingIOError, OSError):
                    pass
            break
    for fd in (*buffers, exit_fd):
        os.close(fd)
    if report_fd is not None and not ended:
        _read_report(report_fd, report, None)  # the set-up byte, where the exit came first
    if forced or settled:
        kill()  # the program and everything it started, at the deadline or past a stream's cap
        status, usage = reap(pid)
    elif ended and not exited:
        # The child is on its way out: made sure of (a forged record), not waited for, reaped
        # later by the caller; whatever else of the run is left is killed.
        os.kill(pid, signal.SIGKILL)
        kill(exiting=True)
        _, code, cpu, rss = END_RECORD.unpack(report[1:])
        status, usage = code << 8, Usage(cpu, 0.0, rss)
    else:
        # It exited: reap it first, so that what `kill` finds in the run's process group or
        # cgroup is only what it left behind (an exiting process lingers there a moment, and
        # waiting for it to go took a millisecond of every run).
        status, usage = reap(pid)
        kill()
    return forced, bytes(buffers[stdout_fd]), bytes(buffers[stderr_fd]), time.monotonic() - start, status, usage, bytes(report)


def _read_report(fd: int, report: bytearray, poller: Any) -> bool:
    """Read what is on a child's report pipe; True once it holds the set-up byte and an end record."""
    try:
        while chunk := os.read(fd, 64):
            report.extend(chunk[: 64 - len(report)])
        if poller is not None:
            poller.unregister(fd)  # EOF: the child and everything holding the pipe are gone
    except BlockingIOError:
        pass
    return len(report) == 1 + END_RECORD.size and report[:2] == b"1E"


def classify(forced: str | None, wait_status: int, stderr: bytes) -> tuple[str, int | None, str | None]:
    """(status, exit code, signal name) from how the run ended."""
    if forced:
        return forced, None, "SIGKILL"
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        if number == signal.SIGXCPU:
            return "timeout", None, name
        if number == signal.SIGXFSZ:
            return "output_limit", None, name
        return "killed", None, name
    code = os.WEXITSTATUS(wait_status)
    if code != 0 and b"MemoryError" in stderr[-4000:]:
        return "memory", code, None
    return ("ok" if code == 0 else "error"), code, None


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
