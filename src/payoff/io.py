"""Reading sample files: one JSON object per line, every line accounted for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payoff.core import Sample, SampleError


@dataclass
class Line:
    """One non-blank input line: the parsed record and Sample, or why it could not be read."""

    number: int
    raw: str
    record: dict[str, Any] | None = None
    sample: Sample | None = None
    problem: str | None = None


def read_records(path: str | Path) -> tuple[list[Line], int]:
    """Every non-blank line of a JSONL file as a `Line` holding its JSON object (or the problem
    with it), and the count of blank lines skipped. Bad bytes are replaced rather than fatal, so
    one corrupt line cannot hide the others."""
    lines: list[Line] = []
    blank = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.rstrip("\n")
            if not text.strip():
                blank += 1
                continue
            lines.append(_parse_record(number, text))
    return lines, blank


def read_jsonl(path: str | Path) -> tuple[list[Line], int]:
    """`read_records`, with each object also read as a `Sample` (or the reason it is not one)."""
    lines, blank = read_records(path)
    for line in lines:
        if line.record is None:
            continue
        try:
            line.sample = Sample.from_dict(line.record)
        except SampleError as error:
            line.record, line.problem = None, f"line {line.number}: {error}"
    return lines, blank


def _parse_record(number: int, text: str) -> Line:
    line = Line(number, text)
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        line.problem = f"line {number}: not valid JSON ({error.msg} at column {error.colno})"
        return line
    if not isinstance(record, dict):
        line.problem = f"line {number}: expected a JSON object, got {type(record).__name__}"
    else:
        line.record = record
    return line
