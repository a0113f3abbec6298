"""The fork server: one clean interpreter per client process that forks a child for each run.

A fork costs about a millisecond; starting an interpreter costs tens. The server sets up what can
be shared once (its own network namespace, so no child can reach any network, loopback included)
and each child sets up the rest before running a line of the program: a new session, its own
pids cgroup (where writable), rlimits, an unprivileged uid (when the server is root), an empty
working directory, a scrubbed environment, and no file descriptors but 0, 1 and 2.

Protocol on the server's stdin/stdout: 4-byte big-endian length + pickle, request then reply; a
request's stdin bytes follow its pickle raw (``stdin_size`` of them) and are spliced by the kernel
straight into the run's stdin file, so they never sit in the server's memory, from which every
later run is forked (a test harness's job carries the expected answers).
Started by the client as ``python -I -S path/to/server.py`` (lean: no site-packages, no payoff
package), or as ``python -m payoff.sandbox.server``.
"""

from __future__ import annotations

import builtins
import ctypes
import gc
import os
import pickle
import shutil
import signal
import struct
import sys
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any

try:
    import payoff.sandbox.harness as harness
    from payoff.containment import Containment
    from payoff.sandbox.limits import NOBODY, Limits, apply_rlimits, check_file_names, classify, decode, supervise, write_files
except ImportError:
    # Started as `python -I -S server.py` (see client.py): a lean interpreter forks faster and its
    # children take fewer copy-on-write faults, so load the two sibling modules it needs by path
    # (neither imports anything of payoff).
    import importlib.util
    from pathlib import Path

    def _load(name: str, path: Path) -> Any:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module

    _here = Path(__file__).resolve().parent
    Containment = _load("payoff_containment", _here.parent / "containment.py").Containment
    _limits = _load("payoff_limits", _here / "limits.py")
    NOBODY, Limits, apply_rlimits, classify = _limits.NOBODY, _limits.Limits, _limits.apply_rlimits, _limits.classify
    check_file_names, decode, supervise, write_files = _limits.check_file_names, _limits.decode, _limits.supervise, _limits.write_files
    harness = _load("payoff_harness", _here / "harness.py")

CLONE_NEWNET = 0x40000000
# Imported once here so every child has them: faster runs, and the unprivileged run user may not
# be able to read the interpreter's own directory (a Python under /root, for instance).
PRELOADED = (
    "abc array base64 binascii bisect calendar cmath collections collections.abc contextlib copy csv dataclasses "
    "datetime decimal encodings.idna enum fractions functools hashlib heapq io itertools json keyword math numbers "
    "operator pprint queue random re socket statistics string struct textwrap threading time typing unicodedata"
).split()
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}


CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 1, 2, 4, 0x4000, 0x40000
# Top-level directories a program may read; everything else is hidden under an empty tmpfs.
READABLE = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "sys", "tmp"}
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def _private_filesystem() -> bool:
    """Give the server (and so every child) its own mount namespace: fresh tmpfs on the
    world-writable scratch directories and an empty read-only tmpfs over every top-level
    directory outside `READABLE` (/etc, /home, /root, /var, project directories...)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            return False
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            return False
        for path in SCRATCH:
            if os.path.isdir(path):
                libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=1777,size=512m")
        for name in os.listdir("/"):
            full = "/" + name
            if name in READABLE or not os.path.isdir(full) or os.path.islink(full):
                continue
            if libc.mount(b"tmpfs", full.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"mode=755,size=4k") != 0:
                return False
        return True
    except (OSError, AttributeError):
        return False


def _set_child_subreaper() -> bool:
    try:
        return ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _unshare_network() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(CLONE_NEWNET) == 0
    except (OSError, AttributeError):
        return False


def read_message(stream: Any) -> Any:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return pickle.loads(stream.read(size))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            raise EOFError("the client closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_request(fd: int) -> Any:
    """A request from the raw protocol fd (unbuffered: the stdin bytes after it stay in the pipe)."""
    header = os.read(fd, 4)
    if not header:
        return None
    header += _read_exactly(fd, 4 - len(header)) if len(header) < 4 else b""
    (size,) = struct.unpack(">I", header)
    return pickle.loads(_read_exactly(fd, size))


def copy_stdin(source_fd: int, target_fd: int, size: int) -> None:
    """Move `size` bytes from the protocol pipe to the run's stdin file inside the kernel."""
    while size:
        try:
            moved = os.splice(source_fd, target_fd, size)
        except (AttributeError, OSError):  # no splice here: the bytes pass through memory
            moved = os.write(target_fd, os.read(source_fd, min(size, 1 << 20)))
        if not moved:
            raise EOFError("the client closed the pipe mid-request")
        size -= moved


def write_message(stream: Any, message: Any, flush: bool = True) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    if flush:
        stream.flush()


def _preload() -> list[str]:
    import importlib

    missing = []
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


@dataclass
class Spare:
    """A child forked ahead of time, waiting for its program on `request_fd`."""

    pid: int
    request_fd: int
    stdout_fd: int
    stderr_fd: int
    ready_fd: int  # the child writes one byte here when its setup is done, before the program runs
    workdir: str


class Server:
    def __init__(self) -> None:
        _preload()
        # Move every object the server holds out of the collector's reach: a child's first garbage
        # collection would otherwise touch (and so copy) every inherited page.
        gc.collect()
        gc.freeze()
        self.root = os.getuid() == 0
        # PAYOFF_SANDBOX_SHARED_NETWORK=1 skips the network namespace (where namespaces misbehave).
        self.network_isolated = not os.environ.get("PAYOFF_SANDBOX_SHARED_NETWORK") and _unshare_network()
        self.filesystem_private = self.root and _private_filesystem()
        # The server lives in its own pids cgroup and its children are born there: moving each
        # child into a cgroup of its own costs milliseconds of kernel time on cgroup v1.
        self.box = Containment(max_procs=64)
        self.box.enter(new_group=False)
        # A subreaper: what a run leaves behind when its parent dies (a fork bomb's tree, a
        # setsid'd orphan) is reparented here, not to the machine's init, and reaped below the
        # moment it is killed, so no zombie of a run outlives it.
        self.subreaper = _set_child_subreaper()
        self.pids_limit = 64
        self.spare: Spare | None = None
        self.leftovers: list[tuple[int, str]] = []
        self.isolation = {
            "network": "namespace" if self.network_isolated else "shared",
            "user": "nobody" if self.root else f"uid {os.getuid()} (not root: no privilege drop)",
            "processes": self.box.kind,
            "filesystem": ("allow-list: " + ", ".join(sorted("/" + d for d in READABLE)) + "; private /tmp")
            if self.filesystem_private else "shared: read access as the run's user; writes where that user may write",
            "backend": "fork",
        }

    # Forking a 20 MB interpreter costs over a millisecond; it happens here, between requests.
    def _kill_run(self, pid: int) -> None:
        """Kill a run's program and everything it started (never the server or its spare)."""
        keep = {os.getpid()} | ({self.spare.pid} if self.spare is not None else set())
        self.box.kill_members(os.getpid(), keep=keep)
        try:
            os.killpg(pid, signal.SIGKILL)  # the program's session, also where there is no cgroup
        except (ProcessLookupError, PermissionError):
            pass

    def prepare(self) -> None:
        for pid, workdir in self.leftovers:
            self._kill_run(pid)
            shutil.rmtree(workdir, ignore_errors=True)
        if self.leftovers:
            self._reap()
        self.leftovers.clear()
        self._fork_spare()

    def _reap(self) -> None:
        """Collect every exited child (killed runs and the orphans they left) without blocking."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.spare is not None and pid == self.spare.pid:  # the waiting child died: fork another
                for fd in (self.spare.request_fd, self.spare.stdout_fd, self.spare.stderr_fd, self.spare.ready_fd):
                    os.close(fd)
                shutil.rmtree(self.spare.workdir, ignore_errors=True)
                self.spare = None

    def _fork_spare(self) -> None:
        if self.spare is not None:
            return
        workdir = tempfile.mkdtemp(prefix="payoff-run-")
        if self.root:
            os.chown(workdir, NOBODY, NOBODY)
        request_r, request_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            os.dup2(ready_w, 3)
            self._child(request_r, out_w, err_w, workdir)
        for fd in (request_r, out_w, err_w, ready_w):
            os.close(fd)
        self.spare = Spare(pid, request_w, out_r, err_r, ready_r, workdir)

    def run(self, request: dict[str, Any], protocol_fd: int | None = None) -> dict[str, Any]:
        stdin_size = int(request.pop("stdin_size", 0))
        try:
            limits = Limits(**request["limits"])
            check_file_names(request.get("files") or {})
            # The server and the next spare count too; a test harness's judge is one more process.
            wanted = limits.max_procs + (3 if request.get("harness") else 2)
            if wanted != self.pids_limit:
                keep = {os.getpid()} | ({self.spare.pid} if self.spare is not None else set())
                self.box.kill_members(os.getpid(), keep=keep, limit=wanted)
                self.pids_limit = wanted
            self.prepare()
        except BaseException:
            if protocol_fd is not None:  # keep the protocol in step: the stdin bytes are still in the pipe
                devnull = os.open(os.devnull, os.O_WRONLY)
                copy_stdin(protocol_fd, devnull, stdin_size)
                os.close(devnull)
            raise
        spare, self.spare = self.spare, None
        assert spare is not None
        # The stdin bytes follow the request in the pipe: the kernel moves them into the run's file.
        stdin_fd = os.open(os.path.join(spare.workdir, ".stdin"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if protocol_fd is not None:
                copy_stdin(protocol_fd, stdin_fd, stdin_size)
            else:
                os.write(stdin_fd, request.pop("stdin", b"") or b"")
            if self.root:
                os.fchown(stdin_fd, NOBODY, NOBODY)
        finally:
            os.close(stdin_fd)
        try:
            os.write(spare.request_fd, pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:
            pass  # the child died before its program arrived: reported by supervise below
        os.close(spare.request_fd)
        try:
            self._fork_spare()  # the next child forks on the other core while this program runs
        except OSError:
            pass  # no room under this run's process limit: prepare() forks it after the run

        def kill() -> None:
            self._kill_run(spare.pid)

        forced, out, err, wall, status, usage = supervise(spare.pid, spare.stdout_fd, spare.stderr_fd, limits, kill)
        self.leftovers.append((spare.pid, spare.workdir))
        os.set_blocking(spare.ready_fd, False)
        try:
            set_up = os.read(spare.ready_fd, 1) == b"1"
        except BlockingIOError:
            set_up = False
        os.close(spare.ready_fd)
        verdict, code, sig = classify(forced, status, err)
        if not set_up:
            return self._failed("the sandbox could not set up the run: " + decode(err)[-2000:].strip())
        return {
            "status": verdict, "stdout": decode(out), "stderr": decode(err), "exit_code": code, "signal": sig,
            "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024,
            "isolation": self.isolation,
        }

    def _failed(self, why: str) -> dict[str, Any]:
        return {"status": "error", "stdout": "", "stderr": why, "exit_code": None, "signal": None,
                "wall_s": 0.0, "cpu_s": 0.0, "max_rss_mb": 0.0, "isolation": self.isolation, "sandbox_error": True}

    def _child(self, request_fd: int, out_w: int, err_w: int, workdir: str) -> None:
        """In the forked child: box itself, wait for the program, then run it. Never returns."""
        try:
            os.setsid()
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.dup2(request_fd, 0)
            os.closerange(4, 65536)  # 3 is the ready pipe, closed before the program runs
            os.chdir(workdir)
            for number in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
                signal.signal(number, signal.SIG_DFL)
            with os.fdopen(0, "rb", closefd=False) as pipe:
                request = pickle.loads(pipe.read())
            limits = Limits(**request["limits"])
            if self.root:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            write_files(workdir, request.get("files") or {})
            stdin_path = os.path.join(workdir, ".stdin")  # written by the server
            stdin_fd = os.open(stdin_path, os.O_RDONLY)
            os.unlink(stdin_path)
            os.dup2(stdin_fd, 0)
            os.close(stdin_fd)
            apply_rlimits(limits, nproc=self.root and self.box.kind != "cgroup")
            os.environ.clear()
            os.environ.update(SAFE_ENV, HOME=workdir, TMPDIR=workdir)
            os.write(3, b"1")
            os.close(3)
        except BaseException:  # noqa: BLE001 - setup failed: say so on stderr, exit 125
            os.write(2, traceback.format_exc().encode())
            os._exit(125)
        self._execute(request)

    @staticmethod
    def _execute(request: dict[str, Any]) -> None:
        language = request.get("language", "python")
        if language in ("sh", "bash"):
            os.execve(f"/bin/{language}", [language, "-c", request["code"]], dict(os.environ))
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
        sys.argv = ["program.py"]
        builtins.exit, builtins.quit = harness._Quitter("exit"), harness._Quitter("quit")  # what `site` would add
        code = 0
        try:
            if request.get("harness"):
                harness.judge()
                os._exit(0)
            program = compile(request["code"], "program.py", "exec")
            exec(program, {"__name__": "__main__", "__file__": "program.py", "__builtins__": builtins})
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if stop.code is not None and not isinstance(stop.code, int):
                print(stop.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - the program's own error, reported like python would
            traceback.print_exc()
            code = 1
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

    def close(self) -> None:
        if self.spare is not None:
            os.close(self.spare.request_fd)  # the waiting child reads EOF and exits
            self.leftovers.append((self.spare.pid, self.spare.workdir))
            self.spare = None
        self.prepare()
        self.box.kill_members(os.getpid(), keep={os.getpid()})
        self.box.leave()


def main() -> None:
    protocol_in = os.dup(0)
    protocol_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    server = Server()
    try:
        server.prepare()
        write_message(protocol_out, server.isolation)
        # The client closing the pipe (exit, crash, SIGKILL) ends the loop: EOF, or a broken pipe
        # when it died mid-run. Either way the server cleans up after itself.
        while (request := read_request(protocol_in)) is not None:
            try:
                reply = server.run(request, protocol_in)
            except (EOFError, BrokenPipeError):
                raise
            except Exception as error:  # noqa: BLE001 - a bad request is answered, never fatal
                reply = server._failed(f"sandbox: {error}")
            write_message(protocol_out, reply)
            del reply  # the next spare is forked from this process: leave it nothing of this run
            try:
                server.prepare()  # clean up the last run and fork the next child while the client reads
            except OSError:
                pass  # the next run sets its own process limit and tries again
    except (BrokenPipeError, EOFError, OSError):
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
