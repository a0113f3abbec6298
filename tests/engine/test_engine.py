from __future__ import annotations

import os
import statistics
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import payoff
from payoff.core import Outcome, Sample
from payoff.engine import summarize
from payoff.engine.stats import percentile


@payoff.reward(register=False)
def length_reward(sample: Sample) -> Outcome:
    return Outcome.ok(len(sample.completion), {"chars": len(sample.completion), "pid_parity": os.getpid() % 2})


@payoff.group_reward(register=False)
def group_rank(samples: list[Sample]) -> list[float]:
    """Score = share of the group this completion is longer than (needs the whole group)."""
    lengths = [len(s.completion) for s in samples]
    return [sum(x < n for x in lengths) / len(lengths) for n in lengths]


CALLS = Path(os.environ.get("TMPDIR", "/tmp")) / f"payoff-calls-{os.getpid()}"


@payoff.reward(register=False)
def counting_reward(sample: Sample) -> float:
    with open(CALLS, "a") as handle:
        handle.write("x")
    return 1.0


def test_one_outcome_per_input_in_order_for_any_workers() -> None:
    samples = [{"completion": "x" * i} for i in range(300)]
    for workers in (0, 1, 2):
        outcomes = payoff.score(samples, length_reward, workers=workers, timeout_s=5)
        assert [o.score for o in outcomes] == [float(i) for i in range(300)]


def test_bad_records_become_errors_that_name_the_sample() -> None:
    outcomes = payoff.score([{"completion": "ok"}, {"prompt": "no completion"}, {"completion": 5}], length_reward, workers=1)
    assert [o.status for o in outcomes] == ["ok", "error", "error"]
    assert outcomes[1].info["error"] == "sample 1: missing field 'completion'"
    assert outcomes[2].info["error"].startswith("sample 2:")


def test_group_rewards_receive_whole_groups_across_chunks() -> None:
    samples = []
    for group in range(40):
        for i in range(4):
            samples.append({"completion": "y" * (i + group), "group": f"g{group}"})
    samples.append({"completion": "alone"})  # no group: a group of its own
    outcomes = payoff.score(samples, group_rank, workers=2)
    for group in range(40):
        assert [o.score for o in outcomes[group * 4 : group * 4 + 4]] == [0.0, 0.25, 0.5, 0.75]
    assert outcomes[-1].score == 0.0


def test_plain_functions_and_names_are_rewards() -> None:
    assert payoff.score([{"completion": "abc"}], lambda s: s.completion.count("b"), workers=1)[0].score == 1.0
    outcome = payoff.score([{"completion": "Paris", "reference": "paris"}], "exact_match", workers=1)[0]
    assert outcome.score == 1.0


def test_wrong_return_types_are_errors_not_zeros() -> None:
    outcome = payoff.score([{"completion": "a"}], lambda s: "1", workers=1)[0]
    assert outcome.status == "error" and "returned str" in outcome.info["error"]


def test_cache_makes_rescoring_free(tmp_path: Path) -> None:
    CALLS.unlink(missing_ok=True)
    samples = [{"completion": f"c{i}"} for i in range(50)]
    first = payoff.score(samples, counting_reward, workers=2, cache=tmp_path / "cache")
    assert CALLS.read_text() == "x" * 50
    second = payoff.score(samples, counting_reward, workers=2, cache=tmp_path / "cache")
    assert CALLS.read_text() == "x" * 50  # no new call
    assert [o.score for o in second] == [o.score for o in first]
    assert all(o.info["cached"] for o in second) and summarize(second).cached == 50
    changed = payoff.score(samples[:1] + [{"completion": "new"}], counting_reward, workers=1, cache=tmp_path / "cache")
    assert CALLS.read_text() == "x" * 51 and changed[0].info.get("cached") and not changed[1].info.get("cached")
    CALLS.unlink()


def test_progress_counts_every_sample() -> None:
    seen = []
    payoff.score([{"completion": "a"}] * 37 + [{"bad": 1}], length_reward, workers=2, on_progress=seen.append)
    assert sum(seen) == 38


def test_engine_scores_from_threads() -> None:
    results: dict[int, list[float | None]] = {}

    def run(k: int) -> None:
        outcomes = payoff.score([{"completion": "z" * k}] * 10, length_reward, workers=1)
        results[k] = [o.score for o in outcomes]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {k: [float(k)] * 10 for k in range(3)}


def test_summary_statistics() -> None:
    outcomes = [
        Outcome.ok(1.0, {"a": 1.0}, elapsed_s=0.1),
        Outcome.ok(0.0, {"a": 0.0, "b": 2.0}, elapsed_s=0.3),
        Outcome.error("x", elapsed_s=0.2),
        Outcome.abstain("y"),
    ]
    summary = summarize(outcomes)
    assert summary.statuses == {"ok": 2, "abstain": 1, "error": 1, "timeout": 0}
    assert summary.score_mean == 0.5 and summary.score_std == 0.5
    assert summary.components["a"] == {"mean": 0.5, "std": 0.5, "count": 2.0}
    assert summary.components["b"]["count"] == 1.0
    assert summary.latency_s["p50"] == pytest.approx(0.2) and summary.latency_s["max"] == 0.3


@settings(max_examples=200)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_is_bounded_and_matches_statistics_quantiles(values: list[float], q: float) -> None:
    ordered = sorted(values)
    p = percentile(ordered, q)
    assert ordered[0] - 1e-6 <= p <= ordered[-1] + 1e-6
    assert percentile(ordered, 0) == ordered[0] and percentile(ordered, 100) == ordered[-1]
    if len(values) > 1:
        median = statistics.median(values)
        assert percentile(ordered, 50) == pytest.approx(median, rel=1e-9, abs=1e-6)


def test_workers_can_use_torch_after_the_caller_started_torch_threads() -> None:
    # A trainer always has torch running; a worker forked from it would hang in its first torch
    # op unless the worker drops to one torch thread, which the engine does.
    import torch

    torch.ones(256, 256) @ torch.ones(256, 256)
    from tests.engine.torch_reward import torch_norm

    outcomes = payoff.score([{"completion": "abc"}, {"completion": "abcd"}], torch_norm, workers=1, timeout_s=60)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert [o.score for o in outcomes] == pytest.approx([3.0, 4.0])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_model_in_a_worker_gets_the_workers_share_of_the_cores(workers: int) -> None:
    # Its own thread, whose OpenMP pool is fresh: at one thread a reward model scored 1.7x
    # slower than one sample per forward on two cores (benchmarks/rm_scoring.py).
    import torch

    from payoff.engine.processes import model_cores
    from tests.engine.torch_reward import torch_threads

    torch.ones(256, 256) @ torch.ones(256, 256)  # this process's pool is running
    outcomes = payoff.score([{"completion": "x" * n} for n in range(1, 9)], torch_threads, workers=workers, timeout_s=60)
    assert [o.status for o in outcomes] == ["ok"] * 8
    share = max(1, min(len(os.sched_getaffinity(0)) // workers, torch.get_num_threads()))
    assert model_cores(workers) == share
    assert {o.info["threads"] for o in outcomes} == {share}
    assert {o.info["thread"].split("_")[0] for o in outcomes} == {"payoff-model"}
    plain = payoff.score([{"completion": "x"}], threads_of, workers=1, timeout_s=60)
    assert plain[0].info["thread"] == "MainThread"  # a reward that may set signal handlers keeps the main thread


def test_a_model_reward_runs_on_the_main_thread_when_no_thread_can_start(monkeypatch) -> None:
    from multiprocessing.sharedctypes import RawArray

    from payoff.engine import worker

    def no_thread() -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(worker, "model_thread", no_thread)
    monkeypatch.setattr(worker, "_reward", payoff.core.batched_reward(lambda samples: [Outcome.ok(1.0, thread=threading.current_thread().name)
                                                                                       for _ in samples], batch_size=2, register=False))
    monkeypatch.setattr(worker, "_slots", RawArray("d", worker.SLOT_WIDTH))
    [(outcomes, _)] = worker.run_chunk(0, [[Sample(prompt="", completion="x"), Sample(prompt="", completion="y")]])
    assert [(o.status, o.info["thread"]) for o in outcomes] == [("ok", "MainThread")] * 2


def threads_of(sample: Sample) -> Outcome:
    return Outcome.ok(1.0, thread=threading.current_thread().name)


def niceness(sample: Sample) -> float:
    return float(os.nice(0))


def test_workers_run_below_the_parent_so_the_watchdog_gets_the_cpu() -> None:
    from payoff.engine.worker import WORKER_NICENESS

    outcomes = payoff.score([{"completion": "x"}] * 4, niceness, workers=2)
    expected = min(19, os.nice(0) + WORKER_NICENESS)
    assert [o.score for o in outcomes] == [expected] * 4
    assert os.nice(0) < expected  # this process keeps its own priority
