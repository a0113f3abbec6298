"""An opt-in on-disk cache of outcomes keyed by content, so rescoring the same samples is free.

The key is a hash of the reward's fingerprint (name, version, source code) and the samples' full
content. Only settled verdicts (ok, abstain) are kept: errors and timeouts may be transient and
are always retried.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import diskcache

from payoff.core import Outcome, Sample

log = logging.getLogger("payoff.cache")


class OutcomeCache:
    def __init__(self, directory: str | Path, reward_fingerprint: str) -> None:
        self.store = diskcache.Cache(str(directory))
        self.fingerprint = reward_fingerprint
        self.hits = 0
        self.misses = 0
        self.write_failures = 0

    def key(self, samples: list[Sample]) -> str:
        content = json.dumps([s.to_dict() for s in samples], sort_keys=True, default=repr)
        return hashlib.sha256(f"{self.fingerprint}\0{content}".encode()).hexdigest()

    def get(self, samples: list[Sample]) -> list[Outcome] | None:
        stored: Any = self.store.get(self.key(samples))
        if stored is None:
            self.misses += 1
            return None
        self.hits += 1
        return [Outcome(d["score"], d["status"], d["components"], {**d["info"], "cached": True}) for d in stored]

    def put(self, samples: list[Sample], outcomes: list[Outcome]) -> None:
        if all(o.status in ("ok", "abstain") for o in outcomes):
            rows = [{"score": o.score, "status": o.status, "components": o.components, "info": o.info} for o in outcomes]
            try:
                self.store.set(self.key(samples), rows)
            except Exception as error:  # noqa: BLE001 - a locked or full disk, an unpicklable value: skip, never raise
                self.write_failures += 1
                if self.write_failures <= 3:
                    log.warning("payoff cache: could not store an outcome (%s: %s); scoring goes on uncached",
                                type(error).__name__, str(error)[:200])

    def close(self) -> None:
        self.store.close()
