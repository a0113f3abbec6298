"""Requests merged into one engine call keep their own groups and their own batch steps: two
clients whose group ids collide each get exactly what they get alone. A real Engine with worker
processes; the engine's score is only wrapped to count the calls that reach it."""

from __future__ import annotations

import asyncio

from payoff.compose import Rubric, Term
from payoff.engine import Engine
from payoff.registry import get_reward
from payoff.serve.batcher import Batcher


def _client(answers: list[list[int]]) -> list[dict]:
    """One client's batch: group g holds the answers answers[g] (groups numbered 0..P-1)."""
    return [{"completion": f"The answer is {a}.", "reference": "4", "group": g, "prompt": f"q{g}"}
            for g, group in enumerate(answers) for a in group]


def _merged_and_alone(reward, first: list[dict], second: list[dict]):
    from payoff.core import Sample

    with Engine(reward, workers=2) as engine:
        calls = []
        score = engine.score

        def counting(samples, *args, **kwargs):
            calls.append(len(samples))
            return score(samples, *args, **kwargs)

        engine.score = counting  # type: ignore[method-assign]
        batcher = Batcher(engine)

        async def both():
            batcher.start()
            a = [Sample.from_dict(s) for s in first]
            b = [Sample.from_dict(s) for s in second]
            merged = await asyncio.gather(batcher.score(a), batcher.score(b))  # queued together: one batch
            alone = [await batcher.score(a), await batcher.score(b)]
            await batcher.stop()
            return merged, alone

        merged, alone = asyncio.run(both())
    assert calls[0] == len(first) + len(second)  # the two requests really shared one engine call
    return merged, alone


def _view(outcomes):
    return [(o.score, o.status, o.components) for o in outcomes]


def test_colliding_group_ids_stay_apart_for_a_group_reward() -> None:
    first = _client([[4, 4, 5], [5, 5, 4]])  # majority 4 in group 0, 5 in group 1
    second = _client([[5, 5, 4], [4, 4, 4]])  # the same ids 0 and 1, other majorities
    merged, alone = _merged_and_alone(get_reward("majority_vote"), first, second)
    assert [_view(m) for m in merged] == [_view(a) for a in alone]
    assert [o.score for o in alone[0]] == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def test_batch_normalisation_runs_per_request() -> None:
    rubric = Rubric([Term(get_reward("math"))], normalize="batch")
    first = _client([[4, 5], [4, 4]])
    second = _client([[5, 5, 5, 5, 4]])
    merged, alone = _merged_and_alone(rubric, first, second)
    assert [_view(m) for m in merged] == [_view(a) for a in alone]


def test_max_batch_splits_between_requests_never_inside_one() -> None:
    from payoff.core import Sample

    with Engine(get_reward("math"), workers=1) as engine:
        calls = []
        score = engine.score

        def counting(samples, *args, **kwargs):
            calls.append(len(samples))
            return score(samples, *args, **kwargs)

        engine.score = counting  # type: ignore[method-assign]
        batcher = Batcher(engine, max_batch=4)
        requests = [[Sample.from_dict(s) for s in _client([[4, 5, 4]])] for _ in range(3)]

        async def together():
            batcher.start()
            outcomes = await asyncio.gather(*(batcher.score(r) for r in requests))
            await batcher.stop()
            return outcomes

        outcomes = asyncio.run(together())
    # 3 + 3 reaches 4, so the third request waits for the next batch; no request is ever cut.
    assert calls == [6, 3]
    assert [[o.score for o in r] for r in outcomes] == [[1.0, 0.0, 1.0]] * 3


def test_the_server_and_an_in_process_adapter_share_one_engine() -> None:
    """Given the process's shared engine, the batcher dispatches to it: no second engine starts."""
    from payoff.core import Sample
    from payoff.engine.shared import shared_engine

    shared = shared_engine(get_reward("math"), workers=1)
    batcher = Batcher(shared)

    async def score():
        batcher.start()
        outcomes = await batcher.score([Sample.from_dict(s) for s in _client([[4, 5]])])
        await batcher.stop()
        return outcomes

    try:
        assert [o.score for o in asyncio.run(score())] == [1.0, 0.0]
        assert batcher.shared is shared and shared.score([{"completion": "4", "reference": "4"}])[0].score == 1.0
    finally:
        shared.close()  # the process's engine: not left running for the tests after this one
