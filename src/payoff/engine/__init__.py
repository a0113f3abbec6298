"""Run rewards over many samples: worker processes, hard per-sample timeouts, memory and process
limits, an on-disk cache and statistics. Never raises because one sample failed."""

from payoff.engine.pool import Engine, score
from payoff.engine.stats import Summary, summarize

__all__ = ["Engine", "Summary", "score", "summarize"]
