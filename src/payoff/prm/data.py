"""Step-labelled solutions: TRL's PRM format (``prompt``, ``completions``: the list of steps,
``labels``: one per step, bool or float in [0, 1]; soft labels stay floats, where TRL casts them
to int) and PRM800K-style ratings (``ratings`` of -1 / 0 / +1 per step). The rating map is
documented and configurable: -1 -> 0.0 (the step is wrong), +1 -> 1.0, and 0 (neutral: "fine but
not progress") -> ``neutral`` (1.0 by default, as ProcessBench and Math-Shepherd count a step
wrong only when it is an error). Unusable rows are counted with their line, as for pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payoff.tasks.loader import table_rows
from payoff.tasks.preferences import DataReport, PreferenceDataError


@dataclass
class StepExample:
    prompt: Any
    steps: list[str]
    labels: list[float]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def first_wrong(self) -> int:
        """ProcessBench's label: the first step labelled below 1/2, or -1."""
        return next((i for i, label in enumerate(self.labels) if label < 0.5), -1)


def _labels(row: dict[str, Any], neutral: float) -> list[float] | str:
    if "labels" in row:
        out = []
        for value in row["labels"] if isinstance(row["labels"], list) else [None]:
            if isinstance(value, bool):
                out.append(float(value))
            elif isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1:
                out.append(float(value))
            else:
                return f"label {value!r} is not a bool or a number in [0, 1]"
        return out
    if "ratings" in row:
        mapping = {-1: 0.0, 0: neutral, 1: 1.0}
        if not isinstance(row["ratings"], list) or any(r not in mapping or isinstance(r, bool) for r in row["ratings"]):
            return "ratings must be a list of -1, 0 and 1"
        return [mapping[r] for r in row["ratings"]]
    return "no 'labels' or 'ratings'"


def read_step_data(path: str | Path, neutral: float = 1.0, on_bad: str = "skip") -> tuple[list[StepExample], DataReport]:
    path = Path(path)
    if not path.exists():
        raise PreferenceDataError(f"{path}: no such file or folder")
    report = DataReport(str(path))
    examples = []
    try:
        rows = list(table_rows(path))
    except ValueError as error:
        raise PreferenceDataError(str(error)) from None
    for index, found in enumerate(rows):
        report.rows += 1
        row = found.record
        if row is None:
            report.skip("unreadable", found.problem or found.where)
            continue
        steps = row.get("completions", row.get("steps"))
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            report.skip("malformed: completions must be a non-empty list of strings", f"row {index}")
            continue
        labels = _labels(row, neutral)
        if isinstance(labels, str):
            report.skip(f"malformed: {labels}", f"row {index}")
            continue
        if len(labels) != len(steps):
            report.skip("malformed: one label per step", f"row {index}")
            continue
        examples.append(StepExample(row.get("prompt", row.get("problem", "")), steps, labels, {"subset": row.get("subset"), "row": index}))
    report.close(len(examples), on_bad, "solutions")
    return examples, report
