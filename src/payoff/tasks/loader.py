"""Tables from files: the one reader of JSONL, JSON lists, Parquet and Hugging Face ``datasets``
folders saved with ``save_to_disk``; task rows from them (`load_rows`), and `task_rows`, which
builds rows from a trainer's ``[task]`` table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payoff.io import read_records


@dataclass
class Row:
    """One row of a table: its record, or why it cannot be read. ``position`` is the line number
    in a JSONL file (from 1), the row index in the other formats (from 0)."""

    position: int
    record: dict[str, Any] | None
    problem: str | None = None
    line: bool = False  # a JSONL line

    @property
    def where(self) -> str:
        return f"{'line' if self.line else 'row'} {self.position}"


def table_rows(path: str | Path) -> Iterator[Row]:
    """Every row of a JSONL / JSON-list / Parquet file or a ``datasets`` folder saved with
    ``save_to_disk``; a row that cannot be read is a `Row` with its problem, and the rows after it
    are still read. A file that is not a table at all raises ValueError."""
    path = Path(path)
    if path.is_dir():
        from datasets import load_from_disk

        data = load_from_disk(str(path))
        if hasattr(data, "keys") and not hasattr(data, "column_names"):  # a DatasetDict
            raise ValueError(f"{path} holds several splits ({', '.join(data.keys())}); point at one split's folder")
        for index, row in enumerate(data):
            yield Row(index, dict(row))
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for index, row in enumerate(pq.read_table(path).to_pylist()):
            yield Row(index, row)
    elif path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{path}: a .json data file must hold a list of objects")
        for index, row in enumerate(data):
            yield Row(index, row) if isinstance(row, dict) else Row(index, None, f"row {index}: not an object")
    else:
        lines, _ = read_records(path)
        for line in lines:
            yield Row(line.number, line.record, line.problem if line.record is None else None, line=True)


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a table (`table_rows`) as a dict; a row that cannot be read is an error naming
    the file and the line or row."""
    records = []
    for row in table_rows(path):
        if row.record is None:
            raise ValueError(f"{path}:{row.position}: {row.problem}")
        records.append(row.record)
    return records


def load_rows(path: str | Path, prompt: str = "prompt", reference: str = "reference", meta: list[str] | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    """Rows ``{"prompt", "reference", "meta"}`` from a file, mapping the source's field names
    (``prompt="question", reference="answer"``). A row missing a mapped field is an error that
    names the row and the field."""
    path = Path(path)
    rows = []
    for index, record in enumerate(read_table(path)[:limit]):
        for field, source in (("prompt", prompt), ("reference", reference)):
            if source not in record:
                raise ValueError(f"{path} row {index}: no field {source!r} for {field} (fields: {', '.join(record)})")
        extra = {key: record[key] for key in (meta or []) if key in record}
        rows.append({"prompt": record[prompt], "reference": record[reference], "meta": {"index": index, **extra}})
    return rows


def task_rows(kind: str, n: int, seed: int, **options: Any) -> list[dict[str, Any]]:
    """Rows for a trainer task table: ``arithmetic``, ``reasoning_gym`` or ``file``."""
    if kind == "arithmetic":
        from payoff.tasks.arithmetic import arithmetic

        return arithmetic(n, seed=seed, **options)
    if kind == "reasoning_gym":
        from payoff.tasks.reasoning_gym import reasoning_gym_rows

        return reasoning_gym_rows(options.pop("name"), n, seed=seed, **options)
    if kind == "file":
        return load_rows(options.pop("path"), limit=n, **options)
    raise ValueError(f"unknown task kind {kind!r}: arithmetic, reasoning_gym or file")
