"""Scoring spread over a Ray cluster, with the local engine's results and fault semantics.

Each Ray actor runs a local `Engine` (worker processes, hard per-sample timeouts, memory and
process limits, crash blame) on its node; `RayEngine` deals units of samples out to the actors
and puts the outcomes back in input order. A sample therefore gets exactly the Outcome the
local pool would give it, timeouts included. An actor lost mid-call (its node died) turns its
share into ``error`` outcomes that say so; the other shares are still returned. Groups (for
group rewards) are never split across actors. Actors return raw outcomes; a reward's batch step
(a Rubric's normalisation, HAPO / LASER-D / PPO-C state) runs once here, over the whole batch,
so group statistics and shaper state mean what they mean locally.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from payoff.core import Outcome, Reward, Sample, SampleError
from payoff.engine.batch_step import run_batch_step
from payoff.registry import get_reward


class _Scorer:
    """The actor body: a local Engine, kept up across calls."""

    def __init__(self, reward: Reward, workers: int, timeout_s: float | None, engine_options: dict[str, Any]) -> None:
        from payoff.engine.pool import Engine

        self.engine = Engine(reward, workers=workers, timeout_s=timeout_s, **engine_options)

    def score(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Raw outcomes only: the batch step runs once, in the caller, over the whole batch.
        return [{"score": o.score, "status": o.status, "components": o.components, "info": o.info}
                for o in self.engine.score(samples, batch_step=False)]

    def timeout_s(self) -> float:
        return self.engine.timeout_s

    def close(self) -> None:
        self.engine.close()


class RayEngine:
    """``RayEngine(reward, actors=2, workers_per_actor=1)``; ``address`` joins an existing
    cluster (``ray start --head``), None starts or reuses a local one."""

    def __init__(self, reward: str | Reward | Callable[..., Any], *, actors: int | None = None, workers_per_actor: int = 1,
                 timeout_s: float | None = None, address: str | None = None,
                 **engine_options: Any) -> None:
        import ray

        self.reward = get_reward(reward)
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     **({} if address else {"num_cpus": os.cpu_count() or 1}))
        count = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // max(workers_per_actor, 1))
        remote = ray.remote(num_cpus=workers_per_actor)(_Scorer)
        self._actors = [remote.remote(self.reward, workers_per_actor, timeout_s, engine_options) for _ in range(count)]
        self.timeout_s = ray.get(self._actors[0].timeout_s.remote())

    def score(self, samples: Sequence[Sample | dict[str, Any]], on_progress: Callable[[int], None] | None = None,
              batch_step: bool = True) -> list[Outcome]:
        import ray

        outcomes: list[Outcome | None] = [None] * len(samples)
        parsed: list[Sample | None] = [None] * len(samples)
        records: list[tuple[int, dict[str, Any]]] = []
        for index, raw in enumerate(samples):
            try:
                sample = raw if isinstance(raw, Sample) else Sample.from_dict(raw)
            except SampleError as error:
                outcomes[index] = Outcome.error(f"sample {index}: {error}", index=index)
                continue
            parsed[index] = sample
            records.append((index, sample.to_dict()))
        shares: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in self._actors]
        if self.reward.is_group:  # a group stays on one actor
            groups: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
            for item in records:
                groups.setdefault(item[1].get("group"), []).append(item)
            for number, members in enumerate(groups.values()):
                shares[number % len(shares)].extend(members)
        else:
            size = -(-len(records) // len(shares)) if records else 0
            shares = [records[i * size:(i + 1) * size] for i in range(len(shares))]
        pending = {actor.score.remote([r for _, r in share]): share for actor, share in zip(self._actors, shares) if share}
        for ref, share in pending.items():
            try:
                results = ray.get(ref)
            except Exception as error:  # the actor or its node is gone: its share errors, the rest stands
                results = [{"score": None, "status": "error", "components": {}, "info": {"error": f"ray actor lost: {error!r}"[:500]}}
                           for _ in share]
            for (index, _), result in zip(share, results):
                outcomes[index] = Outcome(score=result["score"], status=result["status"], components=result["components"], info=result["info"])
            if on_progress is not None:
                on_progress(len(share))
        if batch_step:
            run_batch_step(self.reward, parsed, outcomes)  # once, here: this process owns the shaper state
        return outcomes  # type: ignore[return-value]  # every index was filled above

    def close(self) -> None:
        import ray

        for actor in self._actors:
            try:
                ray.get(actor.close.remote(), timeout=30)
            except Exception:  # already gone
                pass
            ray.kill(actor)
        self._actors = []

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
