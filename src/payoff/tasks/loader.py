"""Task rows from files: JSONL, Parquet, or a Hugging Face ``datasets`` folder saved with
``save_to_disk``; plus `task_rows`, which builds rows from a trainer's ``[task]`` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from payoff.io import read_records


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a JSONL / JSON-list / Parquet file or a datasets folder, as dicts; a JSONL
    line that cannot be read is an error naming the line."""
    return _records(Path(path))


def _records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".json" and path.is_file():
        import json

        data = json.loads(path.read_text())
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ValueError(f"{path}: a .json data file must hold a list of objects")
        return data
    if path.is_dir():
        from datasets import load_from_disk

        data = load_from_disk(str(path))
        if hasattr(data, "keys") and not hasattr(data, "column_names"):  # a DatasetDict
            raise ValueError(f"{path} holds several splits ({', '.join(data.keys())}); point at one split's folder")
        return [dict(row) for row in data]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    records = []
    lines, _ = read_records(path)
    for line in lines:
        if line.problem is not None or line.record is None:
            raise ValueError(f"{path}:{line.number}: {line.problem}")
        records.append(line.record)
    return records


def load_rows(path: str | Path, prompt: str = "prompt", reference: str = "reference", meta: list[str] | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    """Rows ``{"prompt", "reference", "meta"}`` from a file, mapping the source's field names
    (``prompt="question", reference="answer"``). A row missing a mapped field is an error that
    names the row and the field."""
    path = Path(path)
    rows = []
    for index, record in enumerate(_records(path)[:limit]):
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
