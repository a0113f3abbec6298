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

    nice -n 5 .venv/bin/python benchmarks/serve_episodes.py [--clients 4] [--episodes 250] [--batch 25,100,250] [--repeats 3]

On a small machine the client threads, the server and its threads share the cores: the served
figure is a lower bound of what a trainer on another machine sees.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=250, help="episodes per client per run")
    parser.add_argument("--batch", default="25,100,250", help="episodes played together by one client (lockstep): a comma list")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(b) for b in args.batch.split(",") if b.strip()]

    def local(index: int) -> list:
        return [run_episode(get_env("calculator"), Policy(k), row(k))[1] for k in range(index * 1000, index * 1000 + args.episodes)]

    in_process_1 = [in_threads(1, lambda _: [o for i in range(args.clients) for o in local(i)]) for _ in range(args.repeats)]
    in_process_n = [in_threads(args.clients, local) for _ in range(args.repeats)]
    with running_server("--reward", "math", "--workers", "1", "--max-sessions", str(2 * args.clients * max(*sizes, 2))) as (url, _):
        clients = [Client(url) for _ in range(args.clients)]

        def served(index: int) -> list:
            return [play_remote(clients[index], "calculator", Policy(k), row(k))[1]
                    for k in range(index * 1000, index * 1000 + args.episodes)]

        def batched(index: int, size: int) -> list:
            ks = list(range(index * 1000, index * 1000 + args.episodes))
            batches = [[row(k) for k in ks[start:start + size]] for start in range(0, len(ks), size)]
            return [outcome for rows in batches for _, outcome in play_remote_batch(clients[index], "calculator", lockstep_policy, rows)]

        in_threads(args.clients, lambda i: served(i)[:5])  # warm up: connections, imports
        through_server = [in_threads(args.clients, served) for _ in range(args.repeats)]
        lockstep = {size: [in_threads(args.clients, lambda i, size=size: batched(i, size)) for _ in range(args.repeats)] for size in sizes}
        for client in clients:
            client.close()
    best_local = max(statistics.median(in_process_1), statistics.median(in_process_n))
    report = {
        "clients": args.clients, "episodes_per_run": args.clients * args.episodes, "repeats": args.repeats, "cpus": os.cpu_count(),
        "in_process_one_thread_eps": [round(x, 1) for x in in_process_1],
        "in_process_threads_eps": [round(x, 1) for x in in_process_n],
        "served_eps": [round(x, 1) for x in through_server],
        "median_in_process_one_thread": round(statistics.median(in_process_1), 1),
        "median_in_process_threads": round(statistics.median(in_process_n), 1),
        "median_served": round(statistics.median(through_server), 1),
        "served_over_in_process": round(statistics.median(through_server) / best_local, 3),
        "load_average": os.getloadavg(),
    }
    for size, runs in lockstep.items():
        report[f"served_lockstep_{size}_eps"] = [round(x, 1) for x in runs]
        report[f"median_served_lockstep_{size}"] = round(statistics.median(runs), 1)
        report[f"served_lockstep_{size}_over_in_process"] = round(statistics.median(runs) / best_local, 3)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
