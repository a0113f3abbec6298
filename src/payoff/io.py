"""Reading sample files: one JSON object per line, every line accounted for."""

from __future__ import annotations

import json
import math
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


def answer_fields(row: dict[str, Any]) -> dict[str, Any]:
    """What a row gives of a sample's answer: its ``messages`` (an episode) and its
    ``completion``, as given, for `Sample.from_dict` to check; a row with neither gets an empty
    completion."""
    if "messages" not in row:
        return {"completion": row.get("completion", "")}
    return {k: row[k] for k in ("messages", "completion") if k in row}


def read_records(path: str | Path, keep_blank: bool = False) -> tuple[list[Line], int]:
    """Every line of a JSONL file as a `Line` holding its JSON object, or the problem with it,
    and the count of blank lines among them. Nothing in a line can stop the others being read:
    lines end at ``\n`` only (a bare ``\r`` is data), a byte-order mark is dropped, bad UTF-8 is
    replaced, and a blank line, deep nesting, an integer past Python's digit limit or a value
    that is not an object each make that one line an error. Blank lines are counted, and kept
    as error lines with ``keep_blank`` (one output line per input line, as `payoff score` writes)."""
    lines: list[Line] = []
    blank = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
            text = text[:-1] if text.endswith("\n") else text
            text = text[:-1] if text.endswith("\r") else text  # CRLF files
            if not text.strip():
                blank += 1
                if keep_blank:
                    lines.append(Line(number, text, problem=f"line {number}: blank line"))
                continue
            lines.append(_parse_record(number, text))
    return lines, blank


def read_jsonl(path: str | Path, keep_blank: bool = False) -> tuple[list[Line], int]:
    """`read_records`, with each object also read as a `Sample` (or the reason it is not one)."""
    lines, blank = read_records(path, keep_blank)
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
        record = json.loads(text, strict=False)  # raw control characters (a bare \r) inside strings are data
    except json.JSONDecodeError as error:
        line.problem = f"line {number}: not valid JSON ({error.msg} at column {error.colno})"
        return line
    except RecursionError:
        line.problem = f"line {number}: JSON nested too deeply to read"
        return line
    except (ValueError, MemoryError) as error:  # e.g. an integer with more digits than Python converts
        line.problem = f"line {number}: unreadable JSON ({str(error)[:120]})"
        return line
    if not isinstance(record, dict):
        line.problem = f"line {number}: expected a JSON object, got {type(record).__name__}"
    else:
        line.record = record
    return line


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as the strings "NaN", "Infinity", "-Infinity": JSON has no
    such numbers, and a file of valid JSON lines must stay one."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dump_line(row: dict[str, Any]) -> str:
    """One output line: valid JSON in valid UTF-8 whatever the row holds (non-finite floats as
    strings; strings with lone surrogates escaped as \\uXXXX, which JSON allows)."""
    try:
        text = json.dumps(row, ensure_ascii=False, allow_nan=False, default=repr)
    except ValueError:  # NaN or an infinity somewhere
        row = _finite(row)
        text = json.dumps(row, ensure_ascii=False, allow_nan=False, default=repr)
    except RecursionError:
        text = json.dumps({"error": "row nested too deeply to write"})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(row, ensure_ascii=True, allow_nan=False, default=repr)
    return text + "\n"


def check_writable(path: str | Path) -> str | None:
    """Why `path` cannot be written (None if it can), found before any work is done."""
    target = Path(path)
    if target.is_dir():
        return f"{target} is a directory"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8"):
            pass
    except OSError as error:
        return f"cannot write {target}: {error.strerror or error}"
    return None
