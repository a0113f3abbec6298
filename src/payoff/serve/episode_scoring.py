"""How `payoff serve` scores finished episodes: in the engine's worker processes, many at once.

A session's episode is scored when its client asks (`Sessions.score_many`). In the request's
thread, the reward would run under the server's GIL, beside the event loop and every other
session's steps: the one core the sessions have. In the engine's workers it runs on another
core, under the engine's time limit (a reward that hangs is a ``timeout`` outcome, not a thread
held for ever), and the episodes of one batch request go to the workers together.

Only where the engine gives what the reward's own call gives (`Episode.finish` calls
``score_one``): a registered reward (a client names rewards by name, and the engine is kept per
reward) with no batch step, no groups and no batches. Any other is scored in the request's
thread, as in process.
"""

from __future__ import annotations

from typing import Any

from payoff.core import Outcome, Reward, Sample


class EngineScoring:
    """``(reward, samples) -> outcomes`` on this process's shared engine for the reward, with the
    server's `workers` and `timeout_s`; `takes(reward)` says which rewards it scores."""

    def __init__(self, workers: int, timeout_s: float | None) -> None:
        self.workers, self.timeout_s = workers, timeout_s
        self._engines: dict[int, Any] = {}

    def takes(self, reward: Any) -> bool:
        from payoff.registry import REGISTRY

        return (self.workers > 0 and isinstance(reward, Reward) and REGISTRY.get(reward.name) is reward and not reward.is_group
                and not reward.batch_size and getattr(reward, "finalize", None) is None)

    def __call__(self, reward: Reward, samples: list[Sample]) -> list[Outcome]:
        from payoff.engine.shared import shared_engine

        engine = self._engines.get(id(reward))
        if engine is None:
            engine = self._engines[id(reward)] = shared_engine(reward, workers=self.workers, timeout_s=self.timeout_s)
        return engine.score(samples)

    def close(self) -> None:
        """Stop the workers of every engine this scored with (they start again if called later)."""
        for engine in list(self._engines.values()):
            engine.close()
