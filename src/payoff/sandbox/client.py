"""`run`: execute model-written code in the sandbox, through the fork server or bubblewrap."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any

from payoff.containment import Containment
from payoff.sandbox.limits import Limits, RunResult, apply_rlimits, check_file_names, classify, decode, supervise, write_files
from payoff.sandbox.protocol import read_message, write_message


class SandboxError(RuntimeError):
    """The sandbox could not run the program at all (as opposed to the program failing)."""


class ForkServer:
    """A client's handle on its fork server (one per process, started on first use)."""

    def __init__(self) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update({k: v for k, v in os.environ.items() if k.startswith("PAYOFF_SANDBOX_")})
        self.process = subprocess.Popen(
            # -I -S: an interpreter without site-packages or payoff's package imports forks in a
            # third of the time and its children take a third of the page faults.
            [sys.executable, "-I", "-S", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            # No parent-death signal: the server notices its client is gone when the pipe closes,
            # and then removes its cgroup; a signal would kill it before it could.
            # Its own session, so killing a worker's process group (the engine does) leaves the
            # server to see EOF and clean up.
            stderr=subprocess.DEVNULL, env=env, close_fds=True, start_new_session=True,
        )
        self.lock = threading.Lock()
        self.isolation: dict[str, Any] = read_message(self.process.stdout)
        if self.isolation is None:
            raise SandboxError("the fork server did not start")

    def request(self, message: dict[str, Any], stdin: bytes = b"") -> dict[str, Any]:
        with self.lock:
            write_message(self.process.stdin, {**message, "stdin_size": len(stdin)}, flush=False)
            self.process.stdin.write(stdin)  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
            reply = read_message(self.process.stdout)
        if reply is None:
            raise SandboxError("the fork server died")
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # type: ignore[union-attr]
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


_servers: dict[int, ForkServer] = {}
_servers_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server (a forked engine worker starts its own, never its parent's)."""
    with _servers_lock:
        server = _servers.get(os.getpid())
        if server is None or server.process.poll() is not None:
            server = ForkServer()
            _servers[os.getpid()] = server
        return server


@atexit.register
def _close_servers() -> None:
    server = _servers.pop(os.getpid(), None)
    if server is not None:
        server.close()


# -- bubblewrap -----------------------------------------------------------------------------------
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _read_only_paths() -> list[str]:
    paths = {"/usr", "/bin", "/lib", "/lib64", "/etc/alternatives", "/etc/ld.so.cache", sys.base_prefix, sys.prefix}
    return sorted(p for p in paths if os.path.exists(p))


_bwrap_box: Containment | None = None
_baseline: list[int] = []


def _interpreter_address_space() -> int:
    """The address space a fresh `python` starts with here (measured once)."""
    if not _baseline:
        probe = "print(int(open('/proc/self/statm').read().split()[0]) * __import__('resource').getpagesize())"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        _baseline.append(int(out.stdout.strip() or 0))
    return _baseline[0]


def _box() -> Containment:
    """A pids cgroup per bwrap run: inside its user namespace the run is root on the host, where
    RLIMIT_NPROC does not apply, so the cgroup is what stops a fork bomb."""
    global _bwrap_box
    if _bwrap_box is None:
        _bwrap_box = Containment(max_procs=64)
        atexit.register(_bwrap_box.close, set())
    return _bwrap_box


def _run_bwrap(code: str, language: str, stdin: bytes, files: dict[str, Any], limits: Limits) -> RunResult:
    binary = bwrap_path()
    if binary is None:
        raise SandboxError("bubblewrap is not installed (Debian package 'bubblewrap')")
    try:
        check_file_names(files)
    except ValueError as error:
        raise SandboxError(str(error)) from error
    workdir = tempfile.mkdtemp(prefix="payoff-bwrap-")
    try:
        write_files(workdir, files)
        with open(os.path.join(workdir, "program.py"), "w") as handle:
            handle.write(code)
        command = [binary, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
                   "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/sandbox",
                   "--setenv", "LANG", "C.UTF-8", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in _read_only_paths():
            command += ["--ro-bind", path, path]
        command += ["--bind", workdir, "/sandbox", "--chdir", "/sandbox"]
        if os.getuid() == 0:
            command += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        command += ([sys.executable, "program.py"] if language == "python" else [f"/bin/{language}", "-c", code])
        stdin_file = tempfile.TemporaryFile()
        stdin_file.write(stdin)
        stdin_file.seek(0)
        box = _box()
        box.max_procs = limits.max_procs + 2  # bwrap and its namespace init count too

        baseline = _interpreter_address_space()

        def prepare_child() -> None:
            os.setsid()
            box.enter(new_group=False)
            # This child becomes bwrap and then a fresh interpreter: the program's allowance is on
            # top of what such an interpreter starts with, not of the caller's own size.
            apply_rlimits(limits, baseline=baseline)

        process = subprocess.Popen(command, stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   preexec_fn=prepare_child, close_fds=True)
        stdout_fd, stderr_fd = os.dup(process.stdout.fileno()), os.dup(process.stderr.fileno())  # type: ignore[union-attr]
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]

        def kill() -> None:
            box.kill(process.pid)  # the cgroup holds every process of the run
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass

        forced, out, err, wall, status, usage, _ = supervise(process.pid, stdout_fd, stderr_fd, limits, kill)
        process.returncode = -1  # reaped by supervise
        stdin_file.close()
        verdict, exit_code, sig = classify(forced, status, err)
        isolation = {"backend": "bwrap", "network": "namespace", "filesystem": "read-only allow-list + empty work dir",
                     "processes": f"pid namespace + {box.kind}", "user": "nobody" if os.getuid() == 0 else f"uid {os.getuid()}"}
        return RunResult(verdict, decode(out), decode(err), exit_code, wall, usage.ru_utime + usage.ru_stime,
                         usage.ru_maxrss / 1024, sig, isolation)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- the API --------------------------------------------------------------------------------------
def run(
    code: str,
    language: str = "python",
    stdin: str | bytes | None = None,
    files: dict[str, str | bytes] | None = None,
    limits: Limits | None = None,
    backend: str = "fork",
    require_isolation: bool = False,
) -> RunResult:
    """Run `code` in a fresh sandboxed process and report what happened.

    ``backend`` is ``fork`` (the fork server: milliseconds per run) or ``bwrap`` (bubblewrap: a
    read-only filesystem allow-list as well). With ``require_isolation=True`` a run that cannot
    get a network namespace raises SandboxError instead of running with network access.
    """
    if language not in ("python", "sh", "bash"):
        raise ValueError(f"unsupported language {language!r}: python, sh or bash")
    limits = limits or Limits()
    data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
    if backend == "bwrap":
        return _run_bwrap(code, language, data, files or {}, limits)
    if backend != "fork":
        raise ValueError("backend must be 'fork' or 'bwrap'")
    server = fork_server()
    if require_isolation and server.isolation.get("network") != "namespace":
        raise SandboxError("no network namespace on this machine (require_isolation=True): refusing to run")
    reply = server.request({"code": code, "language": language, "files": files or {}, "limits": limits.to_dict()}, data)
    if reply.pop("sandbox_error", False):
        raise SandboxError(reply["stderr"])
    return RunResult(**reply)


def run_tests(job: dict[str, Any], limits: Limits | None = None, backend: str = "fork") -> RunResult:
    """Run unit tests against a program in the split-process harness (`payoff.sandbox.harness`):
    the tests in a judge process, the program in another that only exchanges plain data with it.
    `job` holds ``program``, ``setup``, ``tests``, ``compare`` and ``budget_s``; the verdicts are
    JSON lines on the result's stdout. The tests are compiled here, once per distinct list of
    tests in this process (`compiled.pack_tests`), and the judge loads them."""
    import json

    import payoff.sandbox.harness as harness

    limits = limits or Limits()
    if "compiled" not in job:
        job = {**job, "compiled": _packed_tests(tuple(str(test) for test in job.get("tests") or ()))}
    if "program_compiled" not in job:
        from payoff.sandbox.compiled import pack_program

        job = {**job, "program_compiled": pack_program(str(job.get("setup") or ""), str(job.get("program", "")))}
    data = json.dumps(job).encode()
    if backend == "bwrap":
        folder = os.path.dirname(os.path.abspath(harness.__file__))
        siblings = {}
        for flat, name in harness.SIBLINGS.items():
            with open(os.path.join(folder, name)) as handle:
                siblings[flat] = handle.read()
        with open(harness.__file__) as handle:
            return _run_bwrap(handle.read(), "python", data, siblings, limits)
    if backend != "fork":
        raise ValueError("backend must be 'fork' or 'bwrap'")
    reply = fork_server().request({"code": "", "language": "python", "harness": True, "files": {}, "limits": limits.to_dict()}, data)
    if reply.pop("sandbox_error", False):
        raise SandboxError(reply["stderr"])
    return RunResult(**reply)


@functools.lru_cache(maxsize=2048)
def _packed_tests(tests: tuple[str, ...]) -> list[str | None]:
    from payoff.sandbox.compiled import pack_tests

    return pack_tests(list(tests))


def capabilities() -> dict[str, Any]:
    """What isolation this machine gives sandboxed runs (for `payoff doctor`)."""
    return {**fork_server().isolation, "bwrap": bwrap_path() or "not installed"}
