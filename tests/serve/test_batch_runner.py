"""How a batch route runs its items (`payoff.serve.episode_routes.run_batch`): quick items one
after another on the request's thread, in order (no hop per item); once one is slow, the rest in
parallel on the second pool (they wait for the slow one once, not for each other); an item only
somewhat slow (what waiting for the interpreter lock under load looks like) fans out only when
the next one is too; an item's SessionError is that item's answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from payoff.serve.episode_routes import run_batch
from payoff.serve.session_errors import BadRequest, SessionsFull


class Recorder:
    """The sessions' calling convention (``getattr(sessions, method)(*args)``), recording where
    each item ran; `step` sleeps its seconds."""

    def __init__(self) -> None:
        self.ran: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def step(self, key: int, seconds: float) -> dict:
        with self.lock:
            self.ran.append((key, threading.current_thread().name))
        time.sleep(seconds)
        return {"key": key}

    def open(self, key: int) -> dict:
        if key == 1:
            raise BadRequest("row: the task row must be an object, got str")
        if key == 2:
            raise SessionsFull("2 sessions are open", retry_after=1)
        return {"key": key}


def test_quick_items_run_in_order_on_the_calling_thread() -> None:
    sessions = Recorder()
    with ThreadPoolExecutor(4, thread_name_prefix="fan") as fan:
        results = run_batch(sessions, [("step", k, 0.0) for k in range(50)], fan, fan_out_s=0.5)
    assert results == [{"key": k} for k in range(50)]
    assert sessions.ran == [(k, threading.current_thread().name) for k in range(50)]


def test_after_a_slow_item_the_rest_run_in_parallel() -> None:
    sessions = Recorder()
    calls = [("step", k, 0.4) for k in range(6)]
    with ThreadPoolExecutor(8, thread_name_prefix="fan") as fan:
        began = time.perf_counter()
        results = run_batch(sessions, calls, fan, fan_out_s=0.1)
        took = time.perf_counter() - began
    assert results == [{"key": k} for k in range(6)]
    where = dict(sessions.ran)
    assert where[0] == threading.current_thread().name and all(where[k].startswith("fan") for k in range(1, 6))
    assert took < 1.5, took  # one after another: 2.4 s; the first, then five at once: about 0.8 s


def test_one_somewhat_slow_item_does_not_fan_out_but_two_in_a_row_do() -> None:
    with ThreadPoolExecutor(8, thread_name_prefix="fan") as fan:
        one = Recorder()  # over fan_out_s once, under at_once_s: the rest stay on this thread
        assert run_batch(one, [("step", 0, 0.4)] + [("step", k, 0.0) for k in range(1, 6)], fan,
                         fan_out_s=0.2, at_once_s=30) == [{"key": k} for k in range(6)]
        assert dict(one.ran) == {k: threading.current_thread().name for k in range(6)}
        two = Recorder()  # twice in a row: the items after the second run on the pool
        assert run_batch(two, [("step", k, 0.4) for k in range(5)], fan, fan_out_s=0.2, at_once_s=30) == [{"key": k} for k in range(5)]
        where = dict(two.ran)
        assert where[0] == where[1] == threading.current_thread().name and all(where[k].startswith("fan") for k in (2, 3, 4))


def test_an_item_that_fails_is_that_items_answer() -> None:
    with ThreadPoolExecutor(2) as fan:
        results = run_batch(Recorder(), [("open", 0), ("open", 1), ("open", 2), ("open", 3)], fan)
    assert results == [{"key": 0}, {"error": "row: the task row must be an object, got str", "status": 422},
                       {"error": "2 sessions are open", "status": 503, "retry_after": 1}, {"key": 3}]


def test_a_score_batch_of_slow_rewards_runs_in_parallel_once_one_is_slow() -> None:
    """Episodes the engine does not score (here: sessions without one) are each scored by their
    reward; once one is slow the rest run side by side on the pool, and every one is scored."""
    from payoff.serve.sessions import Sessions
    from tests.serve import helpers  # noqa: F401 - registers the "sleepy" reward

    sessions = Sessions(max_sessions=16)
    try:
        row = {"prompt": "What is 6 * 7?", "reference": "42", "meta": {"sleep": 0.5}}
        ids = [sessions.open("calculator", row, None, "sleepy")["session"] for _ in range(6)]
        for session in ids:
            sessions.step(session, {"content": "\\boxed{42}"})
        with ThreadPoolExecutor(8) as fan:
            began = time.monotonic()
            results = sessions.score_many(ids, close=True, fan=fan)
            elapsed = time.monotonic() - began
        assert [r["status"] for r in results] == ["ok"] * 6 and all(r["reward"] == 1.0 for r in results)
        assert elapsed < 2.5, elapsed  # one after another: 3 s
        assert sessions.stats()["kept"] == 0
    finally:
        sessions.shutdown()
