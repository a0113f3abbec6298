"""One engine per process under threads, processes, event loops and signals: many engines started
at once never fail, and nothing (no cgroup box, no process) outlives a normal or an interrupted
exit. Every check looks only at the pids and boxes this test itself started: other payoff
processes may share the machine's cgroup tree."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import payoff
from payoff.containment import Containment, _v1_pids_root, _v2_own_cgroup
from payoff.engine.shared import SharedEngine, shared_engine

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
MATH = [{"completion": f"The answer is {i}.", "reference": "3"} for i in range(6)]


def _cgroup_base() -> Path | None:
    probe = Containment()
    probe.close(set())
    return probe.root.parent if probe.root is not None else None


def _boxes_of(pid: int) -> list[Path]:
    base = _cgroup_base()
    return sorted(base.glob(f"payoff-{pid}-*")) if base is not None else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose (its parent may be slow to reap it)
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_until(check, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_threads_share_one_engine_and_score_together() -> None:
    before = set(_boxes_of(os.getpid()))  # e.g. the python env's session box, kept until exit
    expected = [o.score for o in payoff.score(MATH, "math", workers=1)]
    engines: list[SharedEngine] = []
    results: dict[int, list] = {}
    barrier = threading.Barrier(16)

    def caller(number: int) -> None:
        barrier.wait()  # all 16 ask for the engine at the same instant
        engine = shared_engine("math", workers=2, timeout_s=5)
        engines.append(engine)
        results[number] = [o.score for o in engine.score(MATH)]

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(e) for e in engines}) == 1
    assert all(results[n] == expected for n in range(16))
    engine = engines[0]
    pids = set(engine.engine._workers.pids) | _live_worker_pids(engine)
    engine.close()
    assert _wait_until(lambda: not any(_alive(p) for p in pids))
    assert set(_boxes_of(os.getpid())) - before == set()


def test_many_separate_engines_started_at_once_from_threads() -> None:
    # Distinct engines (distinct rewards, or options, in one process) starting together: boxes
    # created and stale ones swept concurrently, janitors spawned while other threads fork workers.
    from payoff.engine import Engine

    before = set(_boxes_of(os.getpid()))  # e.g. the python env's session box, kept until exit
    from payoff.engine.processes import pebble_worker_pids

    expected = [o.score for o in payoff.score(MATH, "math", workers=1)]
    barrier = threading.Barrier(8)
    results: dict[int, list] = {}
    started: set[int] = set()
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            engine = Engine("math", workers=1, timeout_s=10)
            barrier.wait()
            results[number] = [o.score for o in engine.score(MATH)]
            workers = engine._workers
            started.update(pebble_worker_pids(workers.pool))
            if workers.containment._janitor:
                started.add(workers.containment._janitor)
            engine.close()
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and all(results[n] == expected for n in range(8))
    assert _wait_until(lambda: not any(_alive(p) for p in started)), [p for p in started if _alive(p)]
    assert set(_boxes_of(os.getpid())) - before == set()


def test_concurrent_calls_on_one_engine_keep_their_own_deadlines() -> None:
    # Two calls at once share the workers; each chunk has a slot of its own, so a hang in one call
    # times out there and never costs the other call a sample.
    from payoff.engine import Engine

    sys.path.insert(0, str(ROOT))
    from tests.engine.chaos import chaos

    hangs = [{"completion": "ab", "meta": {"kind": "sleep"}}, *({"completion": "abc"} for _ in range(6))]
    fine = [{"completion": "x" * n} for n in range(1, 13)]
    results: dict[str, list] = {}
    with Engine(chaos, workers=2, timeout_s=1.0) as engine:
        threads = [threading.Thread(target=lambda k=k, v=v: results.__setitem__(k, engine.score(v))) for k, v in
                   (("hangs", hangs), ("fine", fine))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert [o.status for o in results["hangs"]] == ["timeout"] + ["ok"] * 6
    assert [o.score for o in results["fine"]] == [float(n) for n in range(1, 13)]


def _live_worker_pids(engine: SharedEngine) -> set[int]:
    from payoff.engine.processes import pebble_worker_pids

    pool = engine.engine._workers.pool
    return pebble_worker_pids(pool) if pool is not None else set()


def test_group_ids_of_concurrent_requests_stay_apart() -> None:
    engine = shared_engine("majority_vote", workers=1)
    first = [{"completion": f"The answer is {a}.", "group": 0} for a in (4, 4, 5)]
    second = [{"completion": f"The answer is {a}.", "group": 0} for a in (7, 8, 8)]
    futures = [engine.submit(first), engine.submit(second)]
    assert [o.score for o in futures[0].result()] == [1.0, 1.0, 0.0]
    assert [o.score for o in futures[1].result()] == [0.0, 1.0, 1.0]


def test_ascore_never_blocks_the_event_loop() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.engine.chaos import chaos

    slow = [{"completion": "abc", "meta": {"kind": "slow", "seconds": 0.4}} for _ in range(4)]

    async def main() -> tuple[list, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        outcomes = await asyncio.gather(*(chaos.ascore(s) for s in slow), payoff.ascore(MATH, "math", workers=1))
        task.cancel()
        return list(outcomes), ticks

    outcomes, ticks = asyncio.run(main())
    assert [o.score for o in outcomes[:4]] == [3.0] * 4
    assert [o.score for o in outcomes[4]] == [o.score for o in payoff.score(MATH, "math", workers=1)]
    assert ticks >= 20  # the loop ran its ticker all along (>= 0.4 s of 10 ms ticks, with slack)


def test_concurrent_containment_starts_with_stale_boxes_never_fail() -> None:
    base = _v1_pids_root() or _v2_own_cgroup()
    if _cgroup_base() is None or base is None:
        pytest.skip("no writable cgroup tree here: process groups leave nothing to race over")
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    stale = [base / f"payoff-{dead}-stale{n:03d}" for n in range(40)]
    for root in stale:
        (root / "1").mkdir(parents=True)
        (root / "2").mkdir()
    errors: list[BaseException] = []
    barrier = threading.Barrier(12)

    def start() -> None:
        try:
            barrier.wait()
            Containment().close(set())
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(12)]
    code = "from payoff.containment import Containment\nfor _ in range(5): Containment().close(set())"
    children = [subprocess.Popen([sys.executable, "-c", code], env=ENV, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = [child.communicate()[1] for child in children if child.wait() != 0]
    assert errors == [] and failures == []
    assert not any(root.exists() for root in stale)


CHILD = """
import json, signal, sys, time
# SIGINT as an interactive run has it: a test runner started in the background has it ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
from payoff.engine.shared import shared_engine
from payoff.engine.processes import pebble_worker_pids
from tests.engine.chaos import chaos
engine = shared_engine(chaos, workers=2, timeout_s=20)
outcomes = engine.score([{"completion": "x", "meta": {"kind": "orphan", "pids": sys.argv[1]}},
                         {"completion": "abcd"}])
workers = engine.engine._workers
print(json.dumps({"scores": [o.score for o in outcomes], "workers": sorted(pebble_worker_pids(workers.pool)),
                  "janitor": workers.containment._janitor}), flush=True)
if sys.argv[2] == "wait":
    time.sleep(600)
"""


def _start_child(tmp_path: Path, name: str, mode: str) -> tuple[subprocess.Popen, Path]:
    pids = tmp_path / f"{name}.pids"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(pids), mode], env=ENV, stdout=subprocess.PIPE, text=True)
    return child, pids


def _everything_started(report: dict, pids_file: Path) -> set[int]:
    orphans = {int(p) for p in pids_file.read_text().split()} if pids_file.exists() else set()
    return set(report["workers"]) | orphans | ({report["janitor"]} if report["janitor"] else set())


def test_many_processes_start_engines_at_once_and_leave_nothing(tmp_path: Path) -> None:
    children = [_start_child(tmp_path, f"c{n}", "exit") for n in range(6)]
    started: set[int] = set()
    for child, pids in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0, out
        report = json.loads(out.strip().splitlines()[-1])
        assert report["scores"] == [1.0, 4.0]
        started |= _everything_started(report, pids)
        assert _wait_until(lambda child=child: _boxes_of(child.pid) == []), _boxes_of(child.pid)
    assert _wait_until(lambda: not any(_alive(p) for p in started)), [p for p in started if _alive(p)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_process_leaves_no_box_and_no_process(tmp_path: Path, signum: int) -> None:
    child, pids = _start_child(tmp_path, "sig", "wait")
    report = json.loads(child.stdout.readline())
    assert report["scores"] == [1.0, 4.0]
    started = _everything_started(report, pids)
    if _cgroup_base() is not None:
        assert _boxes_of(child.pid) != []  # the engine is up, boxed
    child.send_signal(signum)
    child.wait(timeout=30)
    assert _wait_until(lambda: _boxes_of(child.pid) == []), _boxes_of(child.pid)
    if _cgroup_base() is None:
        # Without cgroups a reward's setsid child escapes every process group: only the workers
        # are the engine's to reap.
        started -= {int(p) for p in pids.read_text().split()}
    assert _wait_until(lambda: not any(_alive(p) for p in started)), [p for p in started if _alive(p)]
