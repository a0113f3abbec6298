"""The escape suite: hostile programs against both backends. Each case is contained, the result
says what happened, and no process outlives the run."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from payoff.sandbox import Limits, SandboxError, capabilities, run
from payoff.sandbox.client import bwrap_path, fork_server
from payoff.sandbox.resident import NAME

RESIDENT_NAME = NAME.decode()

BACKENDS = ["fork"] + (["bwrap"] if bwrap_path() else [])
FAST = Limits(timeout_s=2, cpu_s=2, memory_mb=256, max_procs=16)
ROOT = os.getuid() == 0
# Without root the fork server gets no private mount namespace and cannot drop to another user.
needs_root = pytest.mark.skipif(not ROOT, reason="needs root: private filesystem view and uid drop (CI runs as root)")


def _poll(condition, timeout_s: float = 5.0) -> bool:
    """Wait for `condition()` with a deadline (never a fixed sleep); its last value."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(value)


def _run_leftovers(backend: str) -> list[psutil.Process]:
    """What is left of this test's runs: every descendant of its own fork server except its
    resident judge, the spare children waiting for the next runs and the dormant copy that makes
    the next spare (the oldest spare, the server's child, and all its descendants: each spare is
    the parent of the next), or for bwrap every bwrap process this test process started. The
    server is a subreaper, so orphans count too."""
    if backend == "bwrap":
        return [p for p in psutil.Process().children(recursive=True) if "bwrap" in " ".join(_look(p.cmdline, []))]
    server = psutil.Process(fork_server().process.pid)
    children = [c for c in server.children(recursive=True) if not _is_judge(c)]
    spares = [c for c in server.children() if _alive(c.pid) and not _is_judge(c)][:1]
    spares += [c for spare in spares for c in _look(functools.partial(spare.children, recursive=True), [])]
    # A process that exits between the listing and the look is gone, not left over (a zombie is).
    return [c for c in children if c not in spares and _look(c.status) is not None]


def _is_judge(process: psutil.Process) -> bool:
    """The fork server's resident judge (`payoff.sandbox.resident`): the server's own, for its
    whole life, never a run's."""
    return _look(process.name, "") == RESIDENT_NAME


def _look(read, gone=None):
    """`read()` of a process that may exit meanwhile: `gone` once it has."""
    try:
        return read()
    except psutil.NoSuchProcess:
        return gone


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def listener():
    """A real TCP server on 127.0.0.1, this test's own port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def _network_namespace() -> bool:
    return capabilities()["network"] == "namespace"


needs_netns = pytest.mark.skipif(not _network_namespace(), reason="no network namespace on this machine (unshare refused)")


@needs_netns
@needs_root
def test_the_machine_gives_the_isolation_the_suite_relies_on() -> None:
    info = capabilities()
    assert info["network"] == "namespace", info  # the suite below must not touch any real network
    assert info["filesystem"].startswith("allow-list"), info


@needs_netns
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_connection_to_loopback(backend: str, listener) -> None:
    port = listener.getsockname()[1]
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')"
    result = run(code, limits=FAST, backend=backend)
    assert result.status == "error" and "connected" not in result.stdout
    assert "Error" in result.stderr
    # The run is over: a connection it made would already sit in the listener's backlog.
    with pytest.raises(BlockingIOError):
        listener.accept()


@needs_netns
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_connection_to_an_outside_address(backend: str) -> None:
    # Inside a network namespace there is no route: the connect fails before any packet exists.
    # 192.0.2.1 is TEST-NET-1, reserved for documentation, in case it ever did not.
    code = "import socket\ns = socket.create_connection(('192.0.2.1', 80), timeout=1)\nprint('connected')"
    result = run(code, limits=FAST, backend=backend)
    assert result.status == "error" and "connected" not in result.stdout


@needs_root
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("target", ["/tmp/payoff-escape-marker", "/var/tmp/payoff-escape-marker", "/work/payoff-escape-marker",
    "/root/payoff-escape-marker"])
def test_no_writes_outside_the_working_directory(backend: str, target: str) -> None:
    result = run(f"open({target!r}, 'w').write('escaped')\nprint('wrote')", limits=FAST, backend=backend)
    assert not os.path.exists(target)
    assert "wrote" not in result.stdout or not os.path.exists(target)
    own = run("open('inside.txt', 'w').write('ok')\nprint(open('inside.txt').read())", limits=FAST, backend=backend)
    assert own.status == "ok" and own.stdout.strip() == "ok"


@needs_root
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/hostname", "/root/.bashrc", os.path.abspath(__file__)])
def test_no_reads_outside_the_allow_list(backend: str, path: str) -> None:
    result = run(f"print(open({path!r}).read()[:50])", limits=FAST, backend=backend)
    assert result.status == "error" and result.stdout == ""
    assert "Error" in result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_fork_bomb(backend: str) -> None:
    code = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.001)"
    result = run(code, limits=FAST, backend=backend)
    assert result.status in ("timeout", "killed")
    assert _poll(lambda: not _run_leftovers(backend)), _run_leftovers(backend)  # nothing of the bomb, zombies included


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_bomb(backend: str) -> None:
    result = run("hog = bytearray(4 * 1024**3)", limits=FAST, backend=backend)
    assert result.status == "memory" and "MemoryError" in result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("code", ["while True:\n    pass", "import time\ntime.sleep(100)"])
def test_infinite_loops_end_at_the_deadline(backend: str, code: str) -> None:
    start = time.monotonic()
    result = run(code, limits=Limits(timeout_s=1, cpu_s=5), backend=backend)
    assert result.status == "timeout" and time.monotonic() - start < 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_flood_of_output_is_capped(backend: str) -> None:
    result = run("while True:\n    print('x' * 10000)", limits=Limits(timeout_s=5, output_bytes=100_000), backend=backend)
    assert result.status == "output_limit" and len(result.stdout) <= 100_000


def test_a_child_that_outlives_its_parent_is_killed() -> None:
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        print(os.getpid(), flush=True)\n        time.sleep(100)\n    os._exit(0)\n"
        "time.sleep(0.3)\n"
    )
    result = run(code, limits=FAST)
    orphan = int(result.stdout.split()[0])
    assert result.status == "ok" and _poll(lambda: not _alive(orphan))
    assert _poll(lambda: not _run_leftovers("fork"))


def test_bwrap_leaves_no_process_behind() -> None:
    if not bwrap_path():  # CI installs it (.ci/run); elsewhere the backend must refuse clearly
        with pytest.raises(SandboxError, match="bubblewrap is not installed"):
            run("print(1)", backend="bwrap")
        return
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(100)\ntime.sleep(0.2)"
    run(code, limits=FAST, backend="bwrap")
    assert _poll(lambda: not _run_leftovers("bwrap"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_process_that_ignores_sigterm_still_dies(backend: str) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(100)"
    result = run(code, limits=Limits(timeout_s=1), backend=backend)
    assert result.status == "timeout" and result.stdout.strip() == "ready"


def test_environment_is_scrubbed_and_results_are_complete() -> None:
    os.environ["PAYOFF_TEST_SECRET"] = "hunter2"
    try:
        result = run("import os, sys\nprint(sorted(os.environ))\nprint(sys.stdin.read())", stdin="fed", limits=FAST)
    finally:
        del os.environ["PAYOFF_TEST_SECRET"]
    assert "PAYOFF_TEST_SECRET" not in result.stdout and "fed" in result.stdout
    assert result.exit_code == 0 and result.wall_s > 0 and result.max_rss_mb > 0 and result.cpu_s >= 0


def test_require_isolation_refuses_without_a_network_namespace() -> None:
    code = (
        "import os\nos.environ['PAYOFF_SANDBOX_SHARED_NETWORK'] = '1'\n"
        "from payoff.sandbox import run, SandboxError\n"
        "print(run('print(1)').isolation['network'])\n"
        "try:\n    run('print(1)', require_isolation=True)\nexcept SandboxError as e:\n    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines()[0] == "shared"
    assert out.stdout.splitlines()[1].startswith("refused: no network namespace")
    with pytest.raises(ValueError):
        run("print(1)", language="cobol")
    with pytest.raises(SandboxError, match="leaves the working directory"):
        run("print(1)", files={"../escape.txt": "x"})


def _payoff_cgroups() -> set[str]:
    root = "/sys/fs/cgroup/pids"
    return {name for name in os.listdir(root) if name.startswith("payoff-")} if os.path.isdir(root) else set()


def test_a_client_that_exits_or_is_killed_leaves_no_server_and_no_cgroup() -> None:
    before = _payoff_cgroups()
    code = ("from payoff.sandbox import run\nfrom payoff.sandbox.client import fork_server\n"
            "print(run('print(1)').stdout.strip(), fork_server().process.pid, flush=True)\nimport os, sys\n"
            "if sys.argv[1] == 'kill':\n    os.kill(os.getpid(), 9)\n")
    servers = []
    for how in ("exit", "kill"):
        result = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, timeout=60)
        answer, server_pid = result.stdout.split()
        assert answer == "1"
        servers.append(int(server_pid))
    # Only the cgroups these two clients made: their names carry their servers' pids.
    assert _poll(lambda: not {c for c in _payoff_cgroups() - before if int(c.split("-")[1]) in servers})
    assert _poll(lambda: not any(_alive(pid) for pid in servers))  # both servers went with their clients


def test_threads_random_and_environment_work_as_in_a_fresh_interpreter() -> None:
    # The fork server preloads threading without its after-fork handler (it forks from its only
    # thread) and sets each child's HOME and TMPDIR before forking: threads still start and join,
    # every run draws fresh random numbers, and the environment is the scrubbed one.
    code = (
        "import os, random, threading\nout = []\n"
        "threads = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
        "[t.start() for t in threads]\n[t.join() for t in threads]\n"
        "print(sorted(out), threading.current_thread() is threading.main_thread(), threading.active_count())\n"
        "print(random.getrandbits(64))\nprint(os.environ['HOME'] == os.environ['TMPDIR'] == os.getcwd(), sorted(os.environ))\n"
        "import sys\nprint(repr(sys.stdin.read()), os.listdir('.'))"  # no stdin given: empty, and no file for it
    )
    first, second = (run(code, limits=FAST) for _ in range(2))
    assert first.status == second.status == "ok", (first.stderr, second.stderr)
    assert first.stdout.splitlines()[0] == "[0, 1, 2, 3] True 1"
    assert first.stdout.splitlines()[1] != second.stdout.splitlines()[1]
    assert first.stdout.splitlines()[2] == "True ['HOME', 'LANG', 'LC_ALL', 'PATH', 'PYTHONIOENCODING', 'TMPDIR']"
    assert first.stdout.splitlines()[3] == "'' []"


def test_a_forged_end_record_ends_the_run_as_an_exit_would() -> None:
    # The child's report pipe (fd 3) is the program's to write: a record that claims a clean end
    # while the program goes on ends the run at once, and the program dies with it.
    code = (
        "import os, struct, sys, time\n"
        "print(os.getpid(), flush=True)\n"
        "os.close(1); os.close(2)\n"
        "os.write(3, struct.pack('!cBdq', b'E', 0, 0.0, 0))\n"
        "time.sleep(100)\n"
    )
    result = run(code, limits=FAST)
    assert result.status == "ok"  # ended at the record, not at the deadline (that would be "timeout")
    pid = int(result.stdout.split()[0])
    assert _poll(lambda: not _alive(pid)) and _poll(lambda: not _run_leftovers("fork"))


def test_junk_on_the_report_pipe_changes_nothing() -> None:
    result = run("import os\nos.write(3, b'E' * 100)\nprint('done')\nraise SystemExit(3)", limits=FAST)
    assert (result.status, result.exit_code, result.stdout) == ("error", 3, "done\n")


def test_an_idle_server_keeps_no_zombie_of_its_runs() -> None:
    # Each run is answered before its child has exited; the server reaps them while it waits.
    for index in range(5):
        assert run(f"print({index})", limits=FAST).stdout == f"{index}\n"
    server = psutil.Process(fork_server().process.pid)

    def zombies() -> list[psutil.Process]:
        return [c for c in server.children() if _look(c.status) == psutil.STATUS_ZOMBIE]

    assert _poll(lambda: not zombies()), zombies()
