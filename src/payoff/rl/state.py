"""The RL run's state: everything besides weights, optimisers and random streams that shapes the
rest of a run. The trainer owns it, each step updates it, and every checkpoint holds it."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunState:
    step: int = 0  # training steps done
    position: int = 0  # the next row to draw, an index into the training rows in their seeded epoch orders
    train_seconds: float = 0.0  # time in training steps (held-out evaluation excluded), across resumes
    wall_before: float = 0.0  # wall seconds the run took in the processes before this one (resumes)
    std_threshold: float = 0.0  # RLPR's std filter: an EMA of the batches' mean group std
    # Per-prompt success rates of the last `bnpo_window` steps (BNPO fits its Beta to them).
    success_history: deque[float] = field(default_factory=deque)
    before: dict[str, Any] | None = None  # held-out results before training: a resumed run keeps them
    started: float = field(default_factory=time.perf_counter)  # when this process began (not saved)

    def wall_seconds(self) -> float:
        """Seconds this run has taken so far, the processes before a resume included."""
        return self.wall_before + time.perf_counter() - self.started

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "position": self.position, "train_seconds": self.train_seconds,
                "wall_seconds_before_resume": self.wall_seconds(), "std_threshold": self.std_threshold,
                "success_history": list(self.success_history), "before": self.before}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.step, self.position = int(saved["step"]), int(saved["position"])
        self.train_seconds = float(saved.get("train_seconds", 0.0))
        self.wall_before = float(saved.get("wall_seconds_before_resume", 0.0))
        self.std_threshold = float(saved.get("std_threshold", 0.0))
        self.success_history.clear()
        self.success_history.extend(saved.get("success_history", []))
        self.before = saved.get("before")
