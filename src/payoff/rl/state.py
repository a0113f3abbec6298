"""The RL run's own state: what shapes the rest of an RL run besides the weights, the optimisers,
the random streams and the step count and wall time (the run harness's, `payoff.runs.run.Run`).
The trainer owns it, each step updates it, and every checkpoint holds it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RLState:
    position: int = 0  # the next row to draw, an index into the training rows in their seeded epoch orders
    train_seconds: float = 0.0  # time in training steps (held-out evaluation excluded), across resumes
    std_threshold: float = 0.0  # RLPR's std filter: an EMA of the batches' mean group std
    # Per-prompt success rates of the last `bnpo_window` steps (BNPO fits its Beta to them).
    success_history: deque[float] = field(default_factory=deque)
    before: dict[str, Any] | None = None  # held-out results before training: a resumed run keeps them

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "train_seconds": self.train_seconds, "std_threshold": self.std_threshold,
                "success_history": list(self.success_history), "before": self.before}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.position = int(saved["position"])
        self.train_seconds = float(saved.get("train_seconds", 0.0))
        self.std_threshold = float(saved.get("std_threshold", 0.0))
        self.success_history.clear()
        self.success_history.extend(saved.get("success_history", []))
        self.before = saved.get("before")
