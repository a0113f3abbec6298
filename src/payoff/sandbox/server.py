"""The fork server: one clean interpreter per client process that forks a child for each run.

A fork costs about a millisecond; starting an interpreter costs tens. The server sets up what can
be shared once (its own network namespace, so no child can reach any network, loopback included)
and each child sets up the rest before running a line of the program: a new session, rlimits, an
unprivileged uid (when the server is root), an empty working directory, a scrubbed environment,
and no file descriptors but 0, 1, 2 and its report pipe (3, write-only). The children are made
ahead of their requests by a dormant copy of the server (`spares`), so the server itself forks
nothing per run. A child that ends its program writes an end record on its report pipe and the
server answers from it, without waiting for the exit (see `limits.supervise`).

Protocol on the server's stdin/stdout: 4-byte big-endian length + pickle, request then reply; a
request's stdin bytes follow its pickle raw (``stdin_size`` of them) and are spliced by the kernel
straight into the run's stdin file, so they never sit in the server's memory, from which every
later run is forked (a test harness's job carries the expected answers).
Started by the client as ``python -I -S path/to/server.py`` (lean: no site-packages, no payoff
package), or as ``python -m payoff.sandbox.server``.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import shutil
import signal
import sys
import tempfile
from collections import deque
from typing import Any

try:
    from payoff.containment import SANDBOX_CPU, Containment
    from payoff.sandbox.child import prepare_interpreter
    from payoff.sandbox.isolation import READABLE, place, private_filesystem, set_child_subreaper, unshare_network
    from payoff.sandbox.limits import NOBODY, Limits, Usage, address_space, check_file_names, classify, decode, supervise
    from payoff.sandbox.protocol import copy_stdin, read_request, write_message, write_stdin
    from payoff.sandbox.resident import ResidentJudge
    from payoff.sandbox.spares import Spare, SpareMaker, discard
    from payoff.sandbox.warm import warm
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
    _containment = _load("payoff_containment", _here.parent / "containment.py")
    Containment, SANDBOX_CPU = _containment.Containment, _containment.SANDBOX_CPU
    _limits = _load("payoff_limits", _here / "limits.py")
    NOBODY, Limits, classify, address_space = _limits.NOBODY, _limits.Limits, _limits.classify, _limits.address_space
    check_file_names, decode, supervise, Usage = _limits.check_file_names, _limits.decode, _limits.supervise, _limits.Usage
    _isolation = _load("payoff_sandbox_isolation", _here / "isolation.py")
    READABLE, private_filesystem = _isolation.READABLE, _isolation.private_filesystem
    set_child_subreaper, unshare_network, place = _isolation.set_child_subreaper, _isolation.unshare_network, _isolation.place
    _protocol = _load("payoff_sandbox_protocol", _here / "protocol.py")
    copy_stdin, read_request, write_message = _protocol.copy_stdin, _protocol.read_request, _protocol.write_message
    write_stdin = _protocol.write_stdin
    # The harness imports its siblings by these flat names when it is not in a package.
    _load("payoff_sandbox_wire", _here / "wire.py")
    _load("payoff_sandbox_batch", _here / "batch.py")
    _load("payoff_sandbox_compiled", _here / "compiled.py")
    _load("payoff_sandbox_program", _here / "program_side.py")
    _load("payoff_harness", _here / "harness.py")
    warm = _load("payoff_sandbox_warm", _here / "warm.py").warm
    ResidentJudge = _load("payoff_sandbox_resident", _here / "resident.py").ResidentJudge
    # The child's side reads its siblings by the flat names loaded above.
    prepare_interpreter = _load("payoff_sandbox_child", _here / "child.py").prepare_interpreter
    _spares = _load("payoff_sandbox_spares", _here / "spares.py")
    Spare, SpareMaker, discard = _spares.Spare, _spares.SpareMaker, _spares.discard

# Children made ahead of their requests. Two: a child takes longer to make (the dormant copy's
# fork, then the child's own set-up) than a trivial run and the caller's turnaround together, so
# with one the next request often waited for the end of its child's set-up.
SPARES = 2
# How long a test run's program process may take to end itself once the resident judge's
# verdicts are in (it normally ends within a millisecond of its socket's end; one that does not is
# killed, the verdicts stand).
SETTLE_S = 0.1
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}


class Server:
    def __init__(self) -> None:
        warm()
        prepare_interpreter()
        # Move every object the server holds out of the collector's reach: a child's first garbage
        # collection would otherwise touch (and so copy) every inherited page.
        gc.collect()
        gc.freeze()
        self.root = os.getuid() == 0
        # PAYOFF_SANDBOX_SHARED_NETWORK=1 skips the network namespace (where namespaces misbehave).
        self.network_isolated = not os.environ.get("PAYOFF_SANDBOX_SHARED_NETWORK") and unshare_network()
        # The children inherit this environment: scrubbed once here, each adds only HOME and TMPDIR.
        self.scratch = tempfile.gettempdir()
        os.environ.clear()
        os.environ.update(SAFE_ENV)
        self.filesystem_private = self.root and private_filesystem()
        # The server lives in its own pids cgroup and its children are born there: moving each
        # child into a cgroup of its own costs milliseconds of kernel time on cgroup v1.
        self.box = Containment(max_procs=64)
        self.box.enter(new_group=False)
        # A subreaper: what a run leaves behind when its parent dies (a fork bomb's tree, a
        # setsid'd orphan) is reparented here, not to the machine's init, and reaped below the
        # moment it is killed, so no zombie of a run outlives it.
        self.subreaper = set_child_subreaper()
        self.pids_limit = 64
        self.spares: deque[Spare] = deque()  # oldest first: the next run's child is spares[0]
        self.maker = SpareMaker(self.scratch, self.root, nproc=self.root and self.box.kind != "cgroup", chain=self.subreaper)
        self.expect_harness = False  # whether the next request is likely a test run (the last one was)
        self.judge = ResidentJudge(self.root)
        self.leftovers: list[tuple[int | None, str]] = []
        # Children of finished runs on their way out (ended by their end record, killed, not yet
        # reaped), oldest first: each is the child of the one before until that one has exited.
        self.exiting: list[int] = []
        self.isolation = {
            "network": "namespace" if self.network_isolated else "shared",
            "user": "nobody" if self.root else f"uid {os.getuid()} (not root: no privilege drop)",
            "processes": self.box.kind,
            "filesystem": ("allow-list: " + ", ".join(sorted("/" + d for d in READABLE)) + "; private /tmp")
            if self.filesystem_private else "shared: read access as the run's user; writes where that user may write",
            "backend": "fork",
        }

    def _making(self) -> tuple[set[int], set[int]]:
        """What a sweep of the cgroup spares: the server and the processes making the next
        children, and the children of `parents` (see `SpareMaker.keep`)."""
        keep, parents = self.maker.keep(self.spares)
        return keep | {os.getpid(), self.judge.pid} - {0}, parents

    def _kill_run(self, pid: int, exiting: bool = False) -> None:
        """Kill a run's program and everything it started (never the server, its spares, their
        program processes or the dormant copy, nor a child being forked for them this moment).
        `exiting`: the run's child has ended and is on its way out (already sent SIGKILL): not
        waited for, its exit unmaps a whole interpreter; the server reaps it later."""
        keep, parents = self._making()
        if exiting:
            keep.add(pid)
        self.box.kill_members(os.getpid(), keep=keep, parents=parents)
        try:
            os.killpg(pid, signal.SIGKILL)  # the program's session, also where there is no cgroup
        except (ProcessLookupError, PermissionError):
            pass

    def prepare(self, fork: bool = True) -> None:
        for pid, workdir in self.leftovers:
            if pid is not None:  # None: a finished run, killed by supervise already
                self._kill_run(pid)
            try:
                os.rmdir(workdir)  # a run's directory is usually empty (its stdin is unlinked)
            except OSError:
                shutil.rmtree(workdir, ignore_errors=True)
        if self.leftovers:
            self._reap()
        self.leftovers.clear()
        if fork:
            if self.expect_harness:
                self.judge.ready()
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
            if pid in self.exiting:
                self.exiting.remove(pid)
            self.judge.reaped(pid)
            for spare in self.spares:
                if pid == spare.pid:  # a waiting child died: another is forked in its place
                    discard(spare)
                    self.spares.remove(spare)
                    break

    def _reap_run(self, pid: int) -> tuple[int, Any]:
        """Wait for a run's child (see `supervise`): first for the children of the runs before,
        oldest first, whose exits make it the server's own (a subreaper inherits its dead
        children's)."""
        for earlier in self.exiting:
            try:
                os.waitpid(earlier, 0)
            except ChildProcessError:
                pass
        self.exiting.clear()
        return os.wait4(pid, 0)[1:]

    def idle(self, protocol_fd: int) -> None:
        """Wait for the next request, reaping the children of finished runs as they exit meanwhile
        (each answered before its exit), so that none lingers as a zombie of an idle server."""
        poller = select.poll()
        poller.register(protocol_fd, select.POLLIN)
        exits = []
        for pid in self.exiting:
            try:
                exits.append(os.pidfd_open(pid))
            except OSError:
                continue
            poller.register(exits[-1], select.POLLIN)
        try:
            while self.exiting:
                ready = {fd for fd, _ in poller.poll()}
                self._reap()  # an exited child is the server's once the run before it has exited too
                if protocol_fd in ready:
                    return
                for fd in ready:
                    poller.unregister(fd)
        finally:
            for fd in exits:
                os.close(fd)

    def _fork_spare(self) -> None:
        while len(self.spares) < SPARES:
            # Every spare's pids are known before the next is asked for (these forks are a run
            # old), so that only the newest can be unknown to a sweep: see `SpareMaker.keep`.
            for spare in self.spares:
                try:
                    self.maker.pids(spare)
                except OSError:
                    pass  # it died: `_reap` finds out and another is made
            try:
                self.spares.append(self.maker.make(for_tests=self.expect_harness))
            except OSError:
                if not self.spares:
                    raise
                return  # no room for another now (a process limit): one spare runs the next request

    def run(self, request: dict[str, Any], protocol_fd: int | None = None) -> dict[str, Any]:
        stdin_size = int(request.pop("stdin_size", 0))
        try:
            limits = Limits(**request["limits"])
            check_file_names(request.get("files") or {})
            # The server, the dormant copy, the spares and the child of the run before, which may
            # still be exiting, count too; for test runs the resident judge, and where it cannot
            # serve a run, the judge that run's child becomes, which forks the program process.
            self.expect_harness = bool(request.get("harness"))
            wanted = limits.max_procs + 3 + SPARES + (2 if self.expect_harness else 0)
            if wanted != self.pids_limit:
                keep, parents = self._making()
                self.box.kill_members(os.getpid(), keep=keep, parents=parents, limit=wanted)
                self.pids_limit = wanted
            self.prepare()
        except BaseException:
            if protocol_fd is not None:  # keep the protocol in step: the stdin bytes are still in the pipe
                devnull = os.open(os.devnull, os.O_WRONLY)
                copy_stdin(protocol_fd, devnull, stdin_size)
                os.close(devnull)
            raise
        spare = self.spares.popleft()
        try:
            self.maker.pids(spare)
        except OSError:  # it died before it started (the machine is out of processes?): one more try
            discard(spare)
            self.prepare()
            spare = self.spares.popleft()
            self.maker.pids(spare)
        # The stdin bytes follow the request in the pipe: the kernel moves them into the run's file
        # (for the resident judge, a memfd it alone gets). No bytes, no file: the child reads /dev/null.
        data = request.pop("stdin", b"") or b""
        verdicts = -1  # the read end of the resident judge's verdicts for this run, if it judges it
        if request.get("harness") and spare.program is not None and self.judge.ready():
            # The job goes to the judge, or where no judge takes it into the stdin file as below.
            verdicts = self.judge.take(spare.workdir, spare.program, protocol_fd, stdin_size, data,
                                       lambda: self._stdin_file(spare))
        elif stdin_size or data:
            stdin_fd = self._stdin_file(spare)
            try:
                write_stdin(stdin_fd, protocol_fd, stdin_size, data)
            finally:
                os.close(stdin_fd)
        if spare.program is not None:
            spare.program.close()
            spare.program = None
        request["resident"] = verdicts >= 0
        request["stdin_file"] = bool(stdin_size or data) and verdicts < 0
        try:
            os.write(spare.request_fd, pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:
            pass  # the child died before its program arrived: reported by supervise below
        os.close(spare.request_fd)
        try:
            self._fork_spare()  # the next child forks on the other core while this program runs
        except OSError:
            pass  # no room under this run's process limit: prepare() forks it after the run

        def kill(exiting: bool = False) -> None:
            self._kill_run(spare.pid, exiting)

        tail = -1
        if verdicts >= 0:
            # The run's stdout is the judge's verdicts; the child (the program process) has none.
            os.close(spare.stdout_fd)
            spare.stdout_fd, tail = verdicts, os.dup(verdicts)
        # With the resident judge, the run is over once its verdicts are: the program process gets
        # a moment to end itself (the judge has closed its socket), then it is killed.
        forced, out, err, wall, status, usage, report = supervise(spare.pid, spare.stdout_fd, spare.stderr_fd, limits,
                                                                   kill, report_fd=spare.ready_fd, reap=self._reap_run,
                                                                   settle_s=SETTLE_S if tail >= 0 else None)
        if isinstance(usage, Usage):  # from its end record: the child is not reaped yet
            self.exiting.append(spare.pid)
        self.leftovers.append((None, spare.workdir))
        os.close(spare.ready_fd)
        verdict, code, sig = classify(forced, status, err)
        if tail >= 0:
            rest, finished = self.judge.rest(tail, limits.output_bytes - len(out))
            out += rest
            if finished and not forced:
                # The judge ended the program process (its tests were over, or it stopped
                # answering): the run itself went as it should, as when the judge was the child.
                verdict, code, sig = "ok", 0, None
        if not report.startswith(b"1"):
            return self._failed("the sandbox could not set up the run: " + decode(err)[-2000:].strip())
        return {
            "status": verdict, "stdout": decode(out), "stderr": decode(err), "exit_code": code, "signal": sig,
            "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024,
            "isolation": self.isolation,
        }

    def _stdin_file(self, spare: Spare) -> int:
        fd = os.open(os.path.join(spare.workdir, ".stdin"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        if self.root:
            os.fchown(fd, NOBODY, NOBODY)
        return fd

    def _failed(self, why: str) -> dict[str, Any]:
        return {"status": "error", "stdout": "", "stderr": why, "exit_code": None, "signal": None,
                "wall_s": 0.0, "cpu_s": 0.0, "max_rss_mb": 0.0, "isolation": self.isolation, "sandbox_error": True}

    def close(self) -> None:
        while self.spares:
            spare = self.spares.popleft()
            os.close(spare.request_fd)  # the waiting child reads EOF and exits
            self.leftovers.append((spare.pid, spare.workdir))
        self.maker.close()
        self.judge.stop()
        self.prepare(fork=False)
        self.box.kill_members(os.getpid(), keep={os.getpid()})
        self.box.leave()


def main() -> None:
    protocol_in = os.dup(0)
    protocol_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    place(os.environ.get(SANDBOX_CPU, ""))
    server = Server()
    try:
        server.prepare()
        write_message(protocol_out, server.isolation)
        # The client closing the pipe (exit, crash, SIGKILL) ends the loop: EOF, or a broken pipe
        # when it died mid-run. Either way the server cleans up after itself.
        while True:
            server.idle(protocol_in)
            if (request := read_request(protocol_in)) is None:
                break
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
