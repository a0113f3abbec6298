"""The conformance suite's fixed part: one set of samples, the rewards they go through, what
payoff itself says of them (`payoff.score`), and the table of client x reward x path that the
suite prints at its end (tests/integrations/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
# Right, wrong but well formatted, an unparseable reference (abstain), and a model that says it
# does not know.
SAMPLES = [
    {"prompt": "What is 2+2?", "completion": "The answer is 4.", "reference": "4"},
    {"prompt": "What is 2+3?", "completion": "<think>2+3 is 6</think> \\boxed{6}", "reference": "5"},
    {"prompt": "What is 7*6?", "completion": "42", "reference": "\\boxed{"},
    {"prompt": "What is 9-2?", "completion": "I do not know.", "reference": "7"},
]
# A plain reward and a rubric with components (math, think_format, exact_match as a metric).
REWARDS = {"math": "math", "math_rubric": str(ROOT / "examples" / "rubric.toml")}


def expected(reward: str) -> list[dict[str, Any]]:
    """What payoff says of SAMPLES with `reward`, scored directly: the reference every path is held to."""
    import payoff
    from payoff.integrations.common import resolve_reward

    return [{"score": o.score, "status": o.status, "components": o.components}
            for o in payoff.score(SAMPLES, resolve_reward(REWARDS[reward]), workers=1)]


def float32(value: float | None) -> float | None:
    """What a float becomes through a float32 tensor (verl's reward tensor, OpenRLHF's file mode)."""
    return None if value is None else torch.tensor(value, dtype=torch.float32).item()


@dataclass
class Row:
    client: str
    reward: str
    path: str
    samples: int
    identical: bool
    note: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def record(self, client: str, reward: str, path: str, got: list[Any], want: list[Any], note: str = "") -> None:
        """Add a row, then assert: every path's outcomes equal payoff's own, exactly."""
        self.rows.append(Row(client, reward, path, len(want), got == want, note))
        assert got == want, f"{client} / {reward} / {path}:\n got  {got}\n want {want}"

    def render(self) -> str:
        lines = ["| client | reward | path | samples | identical outcomes |", "| --- | --- | --- | --- | --- |"]
        for row in self.rows:
            mark = "yes" if row.identical else "NO"
            lines.append(f"| {row.client} | {row.reward} | {row.path}{f' ({row.note})' if row.note else ''} | {row.samples} | {mark} |")
        return "\n".join(lines)


TABLE = Table()
