"""Episodes per second through `payoff serve`'s episode sessions, beside the same episodes played
in process with `run_episode`: the calculator environment (the trivial tool), a scripted policy
(one calculator call, then the boxed answer), the math reward on the final answer.

Served, one episode at a time: `--clients` threads, each with its own `Client`, each playing
`--episodes` episodes with `play_remote` (open, two steps, score-and-close: four HTTP requests an
episode) against a real `payoff serve` subprocess on 127.0.0.1. Served in lockstep: the same, but
each client plays its episodes `--batch` at a time with `play_remote_batch` (four requests per
batch), for each batch size of the comma list `--batch` (a trainer steps all its live episodes
together). In process: the same episodes with `run_episode`, from one thread and from `--clients`
threads. Each figure is the median of `--repeats` runs; the ratio is against the better
in-process figure. Every outcome is checked (status ok, reward 1.0).

    nice -n 5 .venv/bin/python benchmarks/serve_episodes.py [--clients 4] [--episodes 250] [--single N] [--batch 25,100,250]
        [--repeats 3] [--workers 1] [--servers 1]

On a small machine the client threads, the server and its threads share the cores: the served
figure is a lower bound of what a trainer on another machine sees. One server process steps its
sessions under one interpreter lock; ``--servers N`` runs N of them (one port each, client i on
server i mod N), as a deployment scales out past one core's worth of sessions. CPU per served
episode (server processes, their engine workers, the clients) is reported at the largest batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from payoff.envs import get_env, run_episode  # noqa: E402
from payoff.serve.client import Client, play_remote, play_remote_batch  # noqa: E402
from tests.serve.helpers import running_server  # noqa: E402


def script(k: int) -> list[dict]:
    arguments = json.dumps({"expression": f"{k} * 7"})
    return [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                                  "function": {"name": "calculator", "arguments": arguments}}]},
            {"role": "assistant", "content": f"The answer is \\boxed{{{k * 7}}}."}]


class Policy:
    def __init__(self, k: int) -> None:
        self.turns = script(k)

    def __call__(self, messages: list[dict], tools: list[dict]) -> dict:
        return self.turns.pop(0)


def lockstep_policy(messages: list[dict], tools: list[dict]) -> dict:
    """The same script, for episodes played together: the turn from how far the episode is."""
    k = int(messages[1]["content"].split()[2])
    return script(k)[sum(1 for m in messages if m["role"] == "assistant")]


def row(k: int) -> dict:
    return {"prompt": f"What is {k} * 7?", "reference": str(k * 7)}


def in_threads(clients: int, work) -> float:
    """Episodes per second of `work(client_index)` (each returns its outcomes) on `clients` threads."""
    outcomes: list = []
    errors: list = []

    def run(index: int) -> None:
        try:
            outcomes.extend(work(index))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    bad = [o for o in outcomes if o.status != "ok" or o.score != 1.0]
    if bad:
        raise AssertionError(f"{len(bad)} episodes not scored 1.0: {bad[0]}")
    return len(outcomes) / elapsed


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """CPU seconds (user + system) of ``process``, and of its children (the engine's workers)."""
    own = process.cpu_times()
    children = 0.0
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        children += times.user + times.system
    return own.user + own.system, children


def served_cpu(servers: list) -> tuple[float, float]:
    """`cpu_seconds` of every server process (and of their workers), added up."""
    times = [cpu_seconds(psutil.Process(process.pid)) for _, process in servers]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=250, help="episodes per client per run (in process and in lockstep)")
    parser.add_argument("--single", type=int, default=None, help="episodes per client per one-at-a-time run (default: --episodes)")
    parser.add_argument("--batch", default="25,100,250", help="episodes played together by one client (lockstep): a comma list")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="the server's engine workers (finished episodes are scored there)")
    parser.add_argument("--servers", type=int, default=1, help="server processes, one port each; client i plays on server i mod N")
    args = parser.parse_args()
    sizes = [int(b) for b in args.batch.split(",") if b.strip()]
    single = args.episodes if args.single is None else args.single

    def ks(index: int, count: int) -> range:
        return range(index * 100_000, index * 100_000 + count)

    def local(index: int) -> list:
        return [run_episode(get_env("calculator"), Policy(k), row(k))[1] for k in ks(index, args.episodes)]

    runs: dict[str, list[float]] = {"in_process_one_thread": [], "in_process_threads": [], "served": []}
    runs.update({f"served_lockstep_{size}": [] for size in sizes})
    sessions = str(2 * args.clients * max(*sizes, 2))
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(running_server("--reward", "math", "--workers", str(args.workers), "--max-sessions", sessions))
                   for _ in range(args.servers)]
        clients = [Client(servers[i % args.servers][0]) for i in range(args.clients)]

        def served(index: int, count: int) -> list:
            return [play_remote(clients[index], "calculator", Policy(k), row(k))[1] for k in ks(index, count)]

        def batched(index: int, size: int) -> list:
            rows = [row(k) for k in ks(index, args.episodes)]
            return [outcome for start in range(0, len(rows), size)
                    for _, outcome in play_remote_batch(clients[index], "calculator", lockstep_policy, rows[start:start + size])]

        in_threads(args.clients, lambda i: served(i, 5))  # warm up: connections, imports
        # Where each served episode's CPU goes, at the largest batch: the server process, its
        # engine workers, this process (the clients and their policy).
        me = psutil.Process()
        cpu = {"server": 0.0, "engine_workers": 0.0, "clients": 0.0}
        # Round after round, each way once, so that a machine that is slower for a while slows
        # every way alike rather than one of them.
        for _ in range(args.repeats):
            runs["in_process_one_thread"].append(in_threads(1, lambda _: [o for i in range(args.clients) for o in local(i)]))
            runs["in_process_threads"].append(in_threads(args.clients, local))
            runs["served"].append(in_threads(args.clients, lambda i: served(i, single)))
            for size in sizes:
                (server_0, workers_0), (clients_0, _) = served_cpu(servers), cpu_seconds(me)
                runs[f"served_lockstep_{size}"].append(in_threads(args.clients, lambda i, size=size: batched(i, size)))
                if size == sizes[-1]:
                    (server_1, workers_1), (clients_1, _) = served_cpu(servers), cpu_seconds(me)
                    cpu["server"] += server_1 - server_0
                    cpu["engine_workers"] += workers_1 - workers_0
                    cpu["clients"] += clients_1 - clients_0
        for client in clients:
            client.close()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    best_local = max(medians["in_process_one_thread"], medians["in_process_threads"])
    played = args.repeats * args.clients * args.episodes
    report: dict = {
        "clients": args.clients, "servers": args.servers, "server_workers": args.workers, "episodes_per_run": args.clients * args.episodes,
        "single_episodes_per_run": args.clients * single, "repeats": args.repeats, "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        f"cpu_us_per_episode_lockstep_{sizes[-1]}": {k: round(v / played * 1e6, 1) for k, v in cpu.items()},
    }
    for name, values in runs.items():
        report[f"{name}_eps"] = [round(x, 1) for x in values]
        report[f"median_{name}"] = round(medians[name], 1)
        if name.startswith("served"):
            report[f"{name}_over_in_process"] = round(medians[name] / best_local, 3)
    # The same ratio round by round (each against that round's better in-process figure).
    local_by_round = [max(a, b) for a, b in zip(runs["in_process_one_thread"], runs["in_process_threads"])]
    report[f"served_lockstep_{sizes[-1]}_over_in_process_by_round"] = [
        round(x / y, 3) for x, y in zip(runs[f"served_lockstep_{sizes[-1]}"], local_by_round)]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
