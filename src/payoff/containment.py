"""Keep everything a worker starts inside one box, so the engine can kill it all.

A reward may fork (on purpose, or as a fork bomb) and its children outlive a killed worker unless
they are found. Each worker gets its own box:

- ``cgroup`` (preferred): a pids cgroup per worker (cgroup v1 ``pids`` controller or a v2 subtree
  with ``pids`` enabled). ``pids.max`` caps the number of tasks, so a fork bomb stalls instead of
  exhausting the machine, and ``cgroup.procs`` lists every descendant, even one that called
  ``setsid``. This needs a writable cgroup tree (root, or a delegated subtree).
- ``process-group``: otherwise each worker leads its own process group and the engine kills the
  group. A descendant that calls ``setsid`` escapes; the number of processes is not capped.

`payoff doctor` reports which one this machine gets.

A box's owner cleans it up at `close` (the engine calls it at close, garbage collection and
exit), but a caller killed by SIGTERM or SIGKILL runs no Python at all. ``watch=True`` starts a
*janitor*: this file run as a lean script (``python -I -S containment.py``, in its own session so
a Ctrl-C to the caller's process group does not reach it), which waits for the owner to die and
then kills whatever is left in the boxes and removes them. A normal `close` cleans up itself and
stops the janitor.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The environment variable naming the core a sandbox's fork server keeps itself and its runs on:
# set by each engine worker for the server it starts (`payoff.engine.worker.place_sandbox`), read
# by the server (`payoff.sandbox.isolation.place`); anything but a core number the process may use
# means no placement. Here, below both, since neither imports the other.
SANDBOX_CPU = "PAYOFF_SANDBOX_CPU"


def _v1_pids_root() -> Path | None:
    root = CGROUP_ROOT / "pids"
    return root if (root / "cgroup.procs").exists() else None


def _v2_own_cgroup() -> Path | None:
    if not (CGROUP_ROOT / "cgroup.controllers").exists():
        return None
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return CGROUP_ROOT / line[3:].lstrip("/")
    except OSError:
        return None
    return None


class Containment:
    """One box per worker process; `kill` empties a worker's box, `close` removes them all."""

    def __init__(self, max_procs: int = 256, prefer_cgroup: bool = True, watch: bool = False) -> None:
        self.max_procs = max_procs
        self.kind = "process-group"
        self.root: Path | None = None
        self._janitor: int | None = None  # its pid
        if prefer_cgroup:
            self._try_cgroup()
        if watch and self.root is not None:
            self._janitor = _start_janitor(self.root)

    def __getstate__(self) -> dict[str, object]:
        # Workers get a copy (they only `enter`); the janitor is the owner's alone.
        return {**self.__dict__, "_janitor": None}

    def _try_cgroup(self) -> None:
        name = f"payoff-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for base in (_v1_pids_root(), _v2_own_cgroup()):
            if base is None:
                continue
            _remove_stale(base)
            root = base / name
            probe = root / "probe"
            try:
                root.mkdir()
                if (root / "cgroup.subtree_control").exists():
                    (root / "cgroup.subtree_control").write_text("+pids")
                probe.mkdir()
                (probe / "pids.max").write_text(str(self.max_procs))
                probe.rmdir()
            except OSError:
                _rmdir_quietly(probe)
                _rmdir_quietly(root)
                continue
            self.root, self.kind = root, "cgroup"
            return

    # -- in the worker ----------------------------------------------------------------------
    def enter(self, new_group: bool = True) -> None:
        """Called by a worker at start: lead a process group, and move into a fresh cgroup."""
        if new_group:
            os.setpgrp()
        if self.root is None:
            return
        box = self.root / str(os.getpid())
        try:
            box.mkdir(exist_ok=True)
            (box / "pids.max").write_text(str(self.max_procs))
            (box / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            pass  # the process group still contains it; kill() handles both

    # -- in the parent ----------------------------------------------------------------------
    def kill(self, worker_pid: int, remove: bool = True) -> None:
        """SIGKILL a worker and everything it started, then remove its box (``remove=False``
        leaves the empty box for a later `kill`, off a latency-critical path)."""
        if self.root is not None:
            box = self.root / str(worker_pid)
            _kill_cgroup(box)
            if remove:
                _rmdir_quietly(box)
        try:
            os.killpg(worker_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_members(self, owner_pid: int, keep: set[int], limit: int | None = None,
                     parents: set[int] | frozenset[int] = frozenset()) -> None:
        """SIGKILL every process in `owner_pid`'s box except `keep` and the children of
        `parents` (a server that lives in the box its children are born into: no per-child
        cgroup migration, which is slow)."""
        if self.root is None:
            return
        box = self.root / str(owner_pid)
        if limit is not None:
            try:
                (box / "pids.max").write_text(str(limit))
            except OSError:
                pass
        _kill_cgroup(box, keep, parents=parents)

    def leave(self) -> None:
        """Called by a process that lives in its own box (the sandbox's fork server) on its way
        out: move back to the parent cgroup, then remove its box and the root, so no empty
        cgroup directory outlives it."""
        if self.root is None:
            return
        try:
            (self.root.parent / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            return
        _kill_cgroup(self.root / str(os.getpid()))
        _rmdir_quietly(self.root / str(os.getpid()))
        _rmdir_quietly(self.root)

    def sweep(self, worker_pids: set[int]) -> None:
        """Kill what remains of every worker ever started (at shutdown)."""
        for pid in worker_pids:
            self.kill(pid)
        if self.root is not None:
            for box in self.root.iterdir() if self.root.exists() else ():
                if box.is_dir():
                    _kill_cgroup(box)
                    _rmdir_quietly(box)

    def close(self, worker_pids: set[int]) -> None:
        self.sweep(worker_pids)
        if self.root is not None:
            _rmdir_quietly(self.root)
        janitor, self._janitor = self._janitor, None
        if janitor is not None:
            try:
                os.kill(janitor, signal.SIGKILL)  # nothing left for it to do
                os.waitpid(janitor, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def _kill_cgroup(box: Path, keep: set[int] | frozenset[int] = frozenset(), attempts: int = 200,
                 parents: set[int] | frozenset[int] = frozenset()) -> None:
    """Kill every process in a cgroup but `keep` and the children of `parents` until none is
    left (a fork bomb keeps forking while we kill; pids.max bounds how long that can go on)."""
    procs = str(box / "cgroup.procs")
    if not keep:
        # cgroup v2's cgroup.kill (Linux 5.14+) kills the whole box at once, forks in flight
        # included; the loop below then only waits for it to empty (or does the work itself).
        try:
            (box / "cgroup.kill").write_text("1")
        except OSError:
            pass
    for _ in range(attempts):
        try:
            pids = [pid for pid in _read_pids(procs) if pid not in keep and not (parents and _parent(pid) in parents)]
        except (OSError, ValueError):
            return
        if not pids:
            return
        exits = []
        for pid in pids:
            try:
                handle = os.pidfd_open(pid)  # before the kill: the pid cannot be another's yet
            except ProcessLookupError:
                continue
            except (AttributeError, OSError):  # no pidfd here: a short sleep instead
                handle = -1
            try:
                os.kill(pid, signal.SIGKILL)
                exits.append(handle)
            except (ProcessLookupError, PermissionError):
                if handle >= 0:
                    os.close(handle)
        # A killed process leaves the cgroup as it exits: wait for exactly that (a fixed sleep
        # took a millisecond where an exit takes a fraction of one), then look again.
        _wait_exits(exits)


def _parent(pid: int) -> int:
    """A process's parent pid (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _read_pids(path: str) -> list[int]:
    """A cgroup's process list, read with plain system calls: this runs after every sandboxed
    run, and `Path.read_text`'s text layer cost about 20 µs more a read (a trivial run takes
    about 2.9 ms)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = b""
        while chunk := os.read(fd, 65536):  # a seq_file answers a page or so a read
            data += chunk
    finally:
        os.close(fd)
    return [int(p) for p in data.split()]


def _wait_exits(exits: list[int], timeout_s: float = 0.05) -> None:
    handles = [fd for fd in exits if fd >= 0]
    if len(handles) < len(exits) or not exits:
        time.sleep(0.001)
    deadline = time.monotonic() + timeout_s
    for fd in handles:
        try:
            select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        finally:
            os.close(fd)


def _remove_stale(base: Path) -> None:
    """Remove the empty boxes of payoff processes that died without cleaning up (a caller killed
    without a janitor cannot run its own `close`). Several starts may sweep at once, so a box
    that vanishes under us was removed by another sweep: every step tolerates it."""
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith("payoff-")]
    except OSError:
        return
    for root in candidates:
        try:
            owner = int(root.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if Path(f"/proc/{owner}").exists():
            continue
        try:
            boxes = [b for b in root.iterdir() if b.is_dir()]
        except OSError:  # gone already (another sweep), or not a directory
            continue
        for box in boxes:
            try:
                box.rmdir()  # fails (and stays) if anything still runs in it
            except OSError:
                pass
        try:
            root.rmdir()
        except OSError:
            pass


def _start_janitor(root: Path) -> int | None:
    # posix_spawn, not subprocess: Popen waits on a pipe that a worker forked at that moment by
    # another thread (engines start concurrently) would inherit and hold open, hanging the start.
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        return os.posix_spawn(
            sys.executable, [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), str(root)], dict(os.environ),
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)], setsid=True,
        )
    except (OSError, AttributeError, TypeError):
        return None  # no janitor: close and the next start's stale sweep still clean up
    finally:
        os.close(devnull)


def _wait_for_death(pid: int) -> None:
    try:
        handle = os.pidfd_open(pid)  # Linux 5.3+: readable once the process has exited
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])
        os.close(handle)
        return
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(0.1)


def _janitor(owner: int, root: Path) -> None:
    """Wait for `owner` to die, then empty and remove every box under `root`."""
    _wait_for_death(owner)
    if not root.exists():
        return  # the owner closed it
    try:
        boxes = [b for b in root.iterdir() if b.is_dir()]
    except OSError:
        boxes = []
    for box in boxes:
        _kill_cgroup(box)
        _rmdir_quietly(box)
    _rmdir_quietly(root)


def _rmdir_quietly(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)  # exiting tasks leave the cgroup a moment after SIGKILL


if __name__ == "__main__":  # the janitor (see the module docstring)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _janitor(int(sys.argv[1]), Path(sys.argv[2]))
