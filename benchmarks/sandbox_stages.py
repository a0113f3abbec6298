"""Where a trivial sandbox run's time goes, stage by stage, end to end: client -> fork server ->
the spare child wakes -> the program's first line -> its exit seen by the server -> the reply ->
the client; and what the server does after replying (cleanup, the next spare's fork).

The fork server runs as usual (``python -I -S server.py``, loaded by path) inside a thin wrapper
that stamps ``time.monotonic_ns()`` (one clock for every process) at the server's stage
boundaries; the program prints its own stamp at its first line; this process stamps the request
and the reply. Medians over the runs, in microseconds, plus the floors measured in the same
server image: ``fork`` + ``_exit`` + ``waitpid`` of the server process (what no fork server can
go below), and a fresh ``python -I -S -c pass`` (what a naive runner cannot go below).

    .venv/bin/python benchmarks/sandbox_stages.py [--runs 200]
"""

from __future__ import annotations

import os
import sys
import time


def _wrapped_server(log_path: str) -> None:
    """In the fork server's process: the real server, its stage boundaries stamped."""
    import importlib.util

    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "payoff", "sandbox")
    spec = importlib.util.spec_from_file_location("payoff_fork_server", os.path.join(here, "server.py"))
    server = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["payoff_fork_server"] = server
    spec.loader.exec_module(server)  # type: ignore[union-attr]
    stamps: list[tuple[str, int]] = []
    now = time.monotonic_ns

    def stamped(name: str, function):  # noqa: ANN001, ANN202
        def call(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            stamps.append((name + ">", now()))
            try:
                return function(*args, **kwargs)
            finally:
                stamps.append((name + "<", now()))
        return call

    server.read_request = stamped("read", server.read_request)
    server.supervise = stamped("supervise", server.supervise)
    server.write_message = stamped("reply", server.write_message)
    server.Server.prepare = stamped("prepare", server.Server.prepare)
    server.Server._fork_spare = stamped("fork_spare", server.Server._fork_spare)
    server.Server.run = stamped("run", server.Server.run)
    box = server.Containment
    box.kill_members = stamped("kill_members", box.kill_members)
    log = open(log_path, "w")  # noqa: SIM115 - opened before the server hides /tmp behind its own
    try:
        server.main()
    finally:
        with log as handle:
            handle.write("\n".join(f"{name} {t}" for name, t in stamps))


def _boundaries(events: list[tuple[str, int]]) -> dict[str, int]:
    """One run's stamps by stage: the request read, the next spare's fork while the program runs
    (the last fork before supervise), supervise's kill, the reply, the cleanup after it."""
    at_supervise = next(i for i, (name, _) in enumerate(events) if name == "supervise>")
    before = events[:at_supervise]
    fork_in = max(i for i, (name, _) in enumerate(before) if name == "fork_spare>")
    after = events[at_supervise:]
    first = {}
    for name, t in after:
        first.setdefault(name, t)
    reply_done = next(i for i, (name, _) in enumerate(after) if name == "reply<")
    cleanup = dict(after[reply_done:])
    return {"read<": events[0][1], "fork_spare_in_run>": before[fork_in][1], "fork_spare_in_run<": before[fork_in + 1][1],
            "kill_members>": first["kill_members>"], "supervise<": first["supervise<"], "reply>": first["reply>"],
            **{k: cleanup[k] for k in ("prepare>", "prepare<") if k in cleanup}}


def _floors(runs: int) -> dict[str, float]:
    """Median microseconds of fork+_exit+waitpid in a server image, and of a fresh interpreter."""
    import statistics
    import subprocess

    probe = (
        "import importlib.util, os, sys, time, statistics\n"
        f"spec = importlib.util.spec_from_file_location('s', {_server_path()!r})\n"
        "s = importlib.util.module_from_spec(spec); sys.modules['s'] = s; spec.loader.exec_module(s)\n"
        "s.warm()\n"
        "import gc; gc.collect(); gc.freeze()\n"
        "times = []\n"
        f"for _ in range({runs}):\n"
        "    t = time.monotonic_ns(); pid = os.fork()\n"
        "    if pid == 0: os._exit(0)\n"
        "    os.waitpid(pid, 0); times.append(time.monotonic_ns() - t)\n"
        "print(statistics.median(times) / 1000)\n"
    )
    fork = float(subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True).stdout)
    fresh = []
    for _ in range(max(runs // 4, 10)):
        t = time.monotonic_ns()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        fresh.append((time.monotonic_ns() - t) / 1000)
    return {"fork": fork, "fresh": statistics.median(fresh)}


def _server_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "payoff", "sandbox", "server.py")


def main() -> None:
    import argparse
    import statistics
    import subprocess
    import tempfile

    from payoff.sandbox.limits import Limits
    from payoff.sandbox.protocol import read_message, write_message

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    process = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), "--server", log],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={"PATH": os.environ.get("PATH", "/usr/bin")},
                               start_new_session=True)
    read_message(process.stdout)  # the server's isolation report: it is up
    limits = Limits(timeout_s=10, cpu_s=10).to_dict()
    request = {"code": "import time\nprint(time.monotonic_ns())", "language": "python", "files": {}, "limits": limits,
               "stdin_size": 0}
    client: list[tuple[int, int, int]] = []
    for index in range(args.runs + 20):  # 20 to warm up
        sent = time.monotonic_ns()
        write_message(process.stdin, request)
        reply = read_message(process.stdout)
        received = time.monotonic_ns()
        assert reply["status"] == "ok", reply
        if index >= 20:
            client.append((sent, int(reply["stdout"]), received))
    process.stdin.close()
    process.wait()
    with open(log) as handle:
        stamps = [(line.split()[0], int(line.split()[1])) for line in handle if line.strip()]
    os.unlink(log)
    # One run's stamps lie between its request's "read<" and the next request's "read>".
    runs: list[list[tuple[str, int]]] = []
    for name, t in stamps:
        if name == "read<":
            runs.append([])
        if runs:
            runs[-1].append((name, t))
    runs = [_boundaries(events) for events in runs if any(n == "supervise>" for n, _ in events)]
    runs = runs[20:20 + len(client)]
    stages: dict[str, list[float]] = {}

    def add(name: str, value: int) -> None:
        stages.setdefault(name, []).append(value / 1000)

    for (sent, program, received), run in zip(client, runs):
        add("client writes -> server has the request", run["read<"] - sent)
        add("server: limits, stdin, request to the spare", run["fork_spare_in_run>"] - run["read<"])
        add("spare wakes -> program's first line", program - run["fork_spare_in_run>"])
        add("  (meanwhile, in the server: asking for the next child)", run["fork_spare_in_run<"] - run["fork_spare_in_run>"])
        add("program's first line -> server has its end (record or exit)", run["kill_members>"] - program)
        add("kill what the run left (cgroup read) + wait4", run["supervise<"] - run["kill_members>"])
        add("server builds the reply", run["reply>"] - run["supervise<"])
        add("reply -> client has it", received - run["reply>"])
        add("client: request to reply (the run)", received - sent)
        if "prepare>" in run and "prepare<" in run:
            add("after the reply: server cleans up (the client is free)", run["prepare<"] - run["prepare>"])
    floors = _floors(args.runs)
    width = max(len(k) for k in stages) + 2
    print(f"{'stage':{width}}  median us    p90 us")
    for name, values in stages.items():
        values.sort()
        print(f"{name:{width}}{statistics.median(values):10.0f}{values[int(len(values) * 0.9)]:10.0f}")
    print(f"{'floor: fork + _exit + waitpid of the server image':{width}}{floors['fork']:10.0f}")
    print(f"{'floor: a fresh python -I -S -c pass':{width}}{floors['fresh']:10.0f}")
    print(f"runs: {args.runs}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--server":
        _wrapped_server(sys.argv[2])
    else:
        main()
