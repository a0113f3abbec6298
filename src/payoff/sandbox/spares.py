"""The fork server's side of making each run's child ahead of its request.

The server forks one *dormant* copy of itself (`child.lie_dormant`) and from then on forks
nothing per run: for each run it sends the dormant copy the new child's pipe ends and working
directory, and the dormant copy forks its successor and becomes that child. The child writes its
pid and its successor's on its ready pipe first; the server, a child subreaper, inherits it when
the run before it ends. Where the server is no subreaper, or the dormant copy is gone, the server
forks a fresh dormant copy for the next child. Standard library only (the server runs as a lean
``python -I -S``)."""

from __future__ import annotations

import os
import select
import shutil
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

try:
    from payoff.sandbox.child import lie_dormant
    from payoff.sandbox.limits import NOBODY
except ImportError:  # loaded by path by a lean server.py, after these siblings
    import sys

    lie_dormant = sys.modules["payoff_sandbox_child"].lie_dormant
    NOBODY = sys.modules["payoff_limits"].NOBODY


@dataclass
class Spare:
    """A child made ahead of time, waiting for its program on `request_fd`."""

    request_fd: int
    stdout_fd: int
    stderr_fd: int
    # The child writes its pid and its successor's (4 bytes each) here first, and one byte when
    # its setup is done, before the program runs.
    ready_fd: int
    workdir: str
    # Made for a test run (the last request was one): the server's end of a socket pair whose
    # other end the child holds. If the run is a test run, the child becomes its program process
    # and this end goes to the resident judge (`payoff.sandbox.resident`).
    program: socket.socket | None = None
    pid: int | None = None  # once read
    successor: int = 0  # the dormant copy it forked (0: none), once read


class SpareMaker:
    def __init__(self, scratch: str, root: bool, nproc: bool, chain: bool) -> None:
        self.scratch, self.root, self.nproc, self.chain = scratch, root, nproc, chain
        self.control: socket.socket | None = None  # the server's end of the dormant copy's socket
        self.dormant = 0  # its pid, as last known
        self.newest: Spare | None = None  # the last spare made: its successor is the dormant copy

    def make(self, for_tests: bool) -> Spare:
        """Have the dormant copy make the next run's child (forking a dormant copy first where
        there is none); `for_tests`: give it a program socket (see `Spare.program`)."""
        workdir = tempfile.mkdtemp(prefix="payoff-run-", dir=self.scratch)
        if self.root:
            os.chown(workdir, NOBODY, NOBODY)
            os.chmod(workdir, 0o770)  # nobody's group: the resident judge works there too
        (request_r, request_w), (out_r, out_w), (err_r, err_w), (ready_r, ready_w) = (os.pipe() for _ in range(4))
        theirs = None
        message = (b"C" if self.chain else b"-") + workdir.encode()
        spare = Spare(request_w, out_r, err_r, ready_r, workdir)
        if for_tests:
            spare.program, theirs = socket.socketpair()
        given = [request_r, out_w, err_w, ready_w] + ([theirs.fileno()] if theirs is not None else [])
        try:
            for attempt in (0, 1):
                if self.control is None:
                    self._fork_dormant()
                try:
                    socket.send_fds(self.control, [message], given, socket.MSG_NOSIGNAL)
                    break
                except OSError:  # nobody at the other end: the dormant copy is gone
                    self.close()
                    if attempt:
                        raise
            if not self.chain:  # its successor would not be the server's child
                self.close()
        except BaseException:
            discard(spare)
            raise
        finally:
            for fd in (request_r, out_w, err_w, ready_w):
                os.close(fd)
            if theirs is not None:
                theirs.close()
        self.newest = spare
        return spare

    def _fork_dormant(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            lie_dormant(theirs.detach(), root=self.root, nproc=self.nproc)
        theirs.close()
        self.control, self.dormant = ours, pid

    def pids(self, spare: Spare) -> None:
        """Read the pids a spare writes first (its own and the next dormant copy's); raises
        OSError when it never started."""
        if spare.pid is None:
            data = _read(spare.ready_fd, 8)
            if len(data) < 8:
                raise OSError("the run's child did not start")
            spare.pid, spare.successor = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big")
            if spare is self.newest:  # an older spare's successor is a newer spare, not the dormant copy
                self.dormant = spare.successor

    def keep(self, spares: Iterable[Spare]) -> tuple[set[int], set[int]]:
        """The processes of the making, for a sweep of a run's leftovers: (the processes to
        spare, the processes whose children to spare too). The first holds the spares and the
        dormant copy, as far as they are known now; the second the spares and the dormant copy,
        so that a child being forked this moment (the newest spare's successor, whose pid comes
        later) is spared without waiting for its pid. A run's process never has a spare for its
        parent: orphans go to the server, and a spare is no subreaper. Where the spares do not
        chain (no subreaper), the newest spare's own pid comes only from the spare: then this
        waits for it."""
        keep, parents = {self.dormant}, {self.dormant}
        for spare in spares:
            if spare.pid is None and (not self.chain or _readable(spare.ready_fd)):
                try:
                    self.pids(spare)
                except OSError:
                    pass  # it died before it started: the server finds out and makes another
            keep |= {spare.pid or 0, spare.successor}
            parents |= {spare.pid or 0, spare.successor}
        return keep - {0}, parents - {0}

    def close(self) -> None:
        if self.control is not None:
            self.control.close()  # the dormant copy reads EOF and exits
        self.control, self.dormant = None, 0


def discard(spare: Spare) -> None:
    for fd in (spare.request_fd, spare.stdout_fd, spare.stderr_fd, spare.ready_fd):
        os.close(fd)
    if spare.program is not None:
        spare.program.close()
    shutil.rmtree(spare.workdir, ignore_errors=True)


def _readable(fd: int) -> bool:
    """Whether a read of `fd` would not block (each record on a spare's report pipe is one write
    of a few bytes, so it is there whole or not at all)."""
    return bool(select.select([fd], [], [], 0)[0])


def _read(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := os.read(fd, size - len(data))):
        data += chunk
    return data
