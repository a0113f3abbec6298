"""A reward's batch step, run once by whoever owns the batch (see `run_batch_step`)."""

from __future__ import annotations

from collections.abc import Sequence

from payoff.core import Outcome, Reward, Sample


def run_batch_step(reward: Reward, parsed: Sequence[Sample | None], outcomes: list[Outcome | None], learn: bool = True) -> None:
    """A reward's batch-level step (a Rubric's group or batch normalisation and its stateful
    shapers), once, in the caller's process, over the whole batch, after every sample has its
    raw outcome. Whoever calls it owns the shaper state: workers and Ray actors never run it.
    ``learn=False``: shape the batch without the shapers learning from it (`Rubric.finalize`)."""
    finalize = getattr(reward, "finalize", None)
    if finalize is None:
        return
    present = [i for i, s in enumerate(parsed) if s is not None and outcomes[i] is not None]
    try:
        finalize([parsed[i] for i in present], [outcomes[i] for i in present], learn=learn)
    except Exception as error:  # noqa: BLE001 - a failed batch step must not drop samples
        for i in present:
            outcomes[i] = Outcome.error(f"{reward.name}: batch step failed: {error!r}")
