"""`python`: a stateful Python session per episode, inside payoff's sandbox.

One interpreter process per episode reads code cells over a pipe and runs each in the same
globals, so variables, imports and functions survive from one call to the next. It is started
the way the sandbox starts a run (payoff.sandbox): its own session and pids box
(payoff.containment), its own network namespace (no network), the nobody user when payoff runs
as root, the sandbox's rlimits (CPU seconds, address space, file size, open files; they apply to
the session as a whole), a scrubbed environment and an empty working directory. `close` kills
the box (the session and everything it started) and removes the directory.

A cell past its time limit is interrupted (SIGINT: a KeyboardInterrupt in the cell) and the
session goes on with its state; a cell that ignores the interrupt within a grace period, or a
session that dies (os._exit, a crash, the CPU or memory limit) is killed and a fresh session
started: its state is lost, and the tool message says so. Output past `max_output_chars` is cut
inside the session and the message says how much was cut.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from payoff.containment import Containment
from payoff.envs.base import Tool, ToolEnv
from payoff.sandbox import SandboxError
from payoff.sandbox.isolation import unshare_network
from payoff.sandbox.limits import NOBODY, Limits, apply_rlimits
from payoff.sandbox.warm import PRELOADED

# The session's side: standard library only, run as `python -I -S -c`, one JSON line per cell.
REPL = r'''
import importlib, io, json, os, resource, signal, sys, traceback
CAP, DROP, NPROC = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
# A cell's deadline arrives as SIGINT, to be a KeyboardInterrupt in the cell. A process started with
# SIGINT ignored (`cmd &` in a script: a shell without job control ignores it in background jobs)
# hands that on to its children, and Python leaves it ignored: every late cell would lose the state.
signal.signal(signal.SIGINT, signal.default_int_handler)
# Imported before dropping to nobody, as the fork server does: nobody may not be able to read the
# interpreter's own directory (a Python under /root).
for name in sys.argv[4].split():
    try:
        importlib.import_module(name)
    except ImportError:
        pass
if DROP:
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
if NPROC:
    resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))
class Capped(io.TextIOBase):
    def __init__(self): self.parts, self.size, self.lost = [], 0, 0
    def writable(self): return True
    def write(self, text):
        room = CAP - self.size
        if room > 0:
            self.parts.append(text[:room]); self.size += min(len(text), room)
        self.lost += max(len(text) - max(room, 0), 0)
        return len(text)
channel_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
channel_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
devnull = os.open(os.devnull, os.O_RDWR)
# A cell's input() or os.write(1, ...) must not read the next cell or corrupt a reply.
os.dup2(devnull, 0); os.dup2(devnull, 1); os.dup2(devnull, 2)
sys.stdin = open(0, encoding="utf-8", closefd=False)
scope = {"__name__": "__main__", "__builtins__": __builtins__}
for line in channel_in:
    cell = json.loads(line)
    out = Capped(); sys.stdout = sys.stderr = out
    status = "ok"
    try:
        try:
            code = compile(cell, "<cell>", "exec")
        except SyntaxError:
            traceback.print_exc(limit=0); status = "error"
        else:
            try:
                exec(code, scope)
            except KeyboardInterrupt:
                status = "interrupted"
            except SystemExit as stop:
                print(f"SystemExit: {stop.code}"); status = "error"
            except BaseException as error:  # the cell's traceback, without this loop's frame
                traceback.print_exception(error.with_traceback(error.__traceback__.tb_next)); status = "error"
    except KeyboardInterrupt:
        status = "interrupted"
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    channel_out.write(json.dumps({"status": status, "output": "".join(out.parts), "lost": out.lost}) + "\n")
    channel_out.flush()
'''


@dataclass
class CellResult:
    status: str  # ok, error, timeout, died
    output: str
    lost: int = 0  # characters of output cut
    restarted: bool = False  # the session was replaced: state lost
    wall_s: float = 0.0


class PythonSession:
    """A persistent sandboxed interpreter. `run(code)` runs one cell; `close()` kills it all."""

    def __init__(self, limits: Limits | None = None, max_output_chars: int = 4000, grace_s: float = 1.0,
                 require_isolation: bool = False) -> None:
        self.limits = limits or Limits(timeout_s=10.0, cpu_s=60)
        self.max_output_chars = max_output_chars
        self.grace_s = grace_s
        self.box = _box()
        self._pending = bytearray()
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir = ""
        self.network = "shared"
        self.pids: list[int] = []  # every session process started, for the caller to check
        self._start()
        if require_isolation and self.network != "namespace":
            self.close()
            raise SandboxError("no network namespace for the Python session (require_isolation=True): refusing to run")

    def _start(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="payoff-session-")
        self._pending = bytearray()
        self._eof = False
        self.box.max_procs = self.limits.max_procs + 1  # read by `enter` in the child
        root = os.getuid() == 0
        if root:
            os.chown(self.workdir, NOBODY, NOBODY)
        limits, box = self.limits, self.box
        baseline = _interpreter_address_space()
        network = os.environ.get("PAYOFF_SANDBOX_SHARED_NETWORK") is None
        ready_r, ready_w = os.pipe()

        def prepare_child() -> None:  # runs in the child between fork and exec
            os.setsid()
            box.enter(new_group=False)
            isolated = network and unshare_network()
            # The privilege drop (and RLIMIT_NPROC, which counts the user's processes) happen in
            # the session after it has imported the standard library it may use.
            apply_rlimits(limits, baseline=baseline)
            os.write(ready_w, b"1" if isolated else b"0")
            os.close(ready_w)  # the session must not hold it

        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": self.workdir, "TMPDIR": self.workdir}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-u", "-c", REPL, str(self.max_output_chars), "1" if root else "0",
                 str(limits.max_procs if root and box.kind != "cgroup" else 0), " ".join((*PRELOADED, "signal"))], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=self.workdir, env=env, close_fds=True,
                pass_fds=(ready_w,), preexec_fn=prepare_child)
        except BaseException:
            os.close(ready_r)
            os.close(ready_w)
            shutil.rmtree(self.workdir, ignore_errors=True)  # a session that never started leaves nothing
            raise
        os.close(ready_w)
        self.network = "namespace" if os.read(ready_r, 1) == b"1" else "shared"
        os.close(ready_r)
        self.pids.append(self.process.pid)

    def run(self, code: str, timeout_s: float | None = None) -> CellResult:
        timeout_s = self.limits.timeout_s if timeout_s is None else timeout_s
        start = time.monotonic()
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write((json.dumps(code) + "\n").encode())
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._restart("died", "the Python session had died before this cell; a new one was started", start)
        line = self._read_line(timeout_s)
        if line is None and not self._eof:
            os.killpg(process.pid, signal.SIGINT)  # interrupt the cell, keep the session
            line = self._read_line(self.grace_s)
            if line is not None:
                reply = json.loads(line)
                note = f"\n[the cell ran past {timeout_s:g} s and was interrupted; the session's state is kept]"
                return CellResult("timeout", reply["output"] + note, reply["lost"], False, time.monotonic() - start)
            why = f"the cell ran past {timeout_s:g} s and did not stop when interrupted: the session was killed and restarted, its state is lost"
            return self._restart("timeout", why, start)
        if line is None:
            code_ = process.wait()
            why = f"the Python session died (exit status {code_}: a crash or a CPU/memory limit); a new one was started, its state is lost"
            return self._restart("died", why, start)
        try:
            reply = json.loads(line)
        except ValueError:  # the cell wrote into the channel itself: the session cannot be trusted
            return self._restart("died", "the session's reply channel was corrupted; a new session was started, its state is lost", start)
        status = "ok" if reply["status"] == "ok" else ("timeout" if reply["status"] == "interrupted" else "error")
        return CellResult(status, reply["output"], reply["lost"], False, time.monotonic() - start)

    def _read_line(self, timeout_s: float) -> bytes | None:
        """The session's next reply line, or None at the deadline or when the session is gone."""
        process = self.process
        assert process is not None and process.stdout is not None
        fd = process.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    self._eof = True
                    return None
                self._pending.extend(chunk)
        line, _, rest = bytes(self._pending).partition(b"\n")
        self._pending = bytearray(rest)
        return line

    def _restart(self, status: str, why: str, start: float) -> CellResult:
        self._kill()
        self._start()
        return CellResult(status, f"[{why}]", 0, True, time.monotonic() - start)

    def _kill(self) -> None:
        if self.process is None:
            return
        self.box.kill(self.process.pid)  # the box holds every process the session started
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def close(self) -> None:
        self._kill()


_baseline: list[int] = []
_shared_box: list[Containment] = []


def _box() -> Containment:
    """This process's pids box for sessions (one cgroup root; a sub-box per session process)."""
    if not _shared_box:
        _shared_box.append(Containment(max_procs=64))
        atexit.register(_shared_box[0].close, set())
    return _shared_box[0]


def _interpreter_address_space() -> int:
    """The address space a fresh `python -I -S` starts with here (measured once): the session's
    memory allowance is on top of it, as for a sandbox run."""
    if not _baseline:
        probe = "print(int(open('/proc/self/statm').read().split()[0]) * __import__('resource').getpagesize())"
        out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
        _baseline.append(int(out.stdout.strip() or 0))
    return _baseline[0]


@dataclass
class PythonEnv(ToolEnv):
    """Tool: ``python(code)``, run in this episode's session; printed output is the tool's answer."""

    system: str = "You can run Python code with the python tool; state persists between calls. Print what you need to see."
    limits: Limits = field(default_factory=lambda: Limits(timeout_s=10.0, cpu_s=60))
    require_isolation: bool = False  # refuse to start a session that would share the network
    session: PythonSession | None = None

    def reset(self, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.close()
        # Room for the session's own note on what it cut, inside the environment's cap.
        self.session = PythonSession(self.limits, max(self.max_output_chars - 100, 0), require_isolation=self.require_isolation)
        self.tools = [Tool("python", "Run Python code in a persistent session and return what it prints.",
                           {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"],
                            "additionalProperties": False}, self._run, enforces_limit=True)]
        return super().reset(row)

    def _run(self, code: str) -> str:
        assert self.session is not None
        result = self.session.run(code, self.call_timeout_s)
        text = result.output
        if result.lost:
            text += f"\n[output truncated: {result.lost} more characters not shown]"
        return text if text.strip() else "(no output)"

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
