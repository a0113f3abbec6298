"""`sql`: read-only queries against a real SQLite file; the final answer (a query) is scored by
payoff's ``sql`` reward (execution accuracy against the gold query).

Row: ``{"prompt": question, "reference": {"gold": "SELECT ...", "db": "path.sqlite"}}``. The
database opens with a ``mode=ro`` URI and ``PRAGMA query_only``, so no query can change it; a
progress handler interrupts any query past the per-call time limit. Results come back as JSON
with column names, each value's SQLite type, at most `max_rows` rows and whether rows were cut.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payoff.envs.base import Tool, ToolEnv
from payoff.rewards.sql import bounded_query

_TYPES = {int: "integer", float: "real", str: "text", bytes: "blob", type(None): "null"}


def open_read_only(path: str | Path) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no SQLite database at {path}")
    connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    connection.execute("PRAGMA query_only = ON")
    return connection


def run_query(connection: sqlite3.Connection, query: str, max_rows: int, timeout_s: float) -> str:
    """The query's result as JSON: columns, types (of the first row's values), rows, truncated."""
    # Checked every 1000 SQLite instructions: a runaway query is interrupted, not abandoned.
    columns, rows = bounded_query(connection, query, timeout_s, max_rows, check_every=1000)
    truncated = len(rows) > max_rows
    rows = rows[:max_rows]
    types = [_TYPES.get(type(v), type(v).__name__) for v in rows[0]] if rows else []
    values = [[v.hex() if isinstance(v, bytes) else v for v in row] for row in rows]
    return json.dumps({"columns": columns, "types": types, "rows": values, "truncated": truncated})


@dataclass
class SqlEnv(ToolEnv):
    """Tools: ``sql(query)`` (read-only) and ``schema()``. The final answer is the query itself."""

    system: str = ("Answer with one SQLite query. Explore the database with the sql and schema tools first; "
                   "your final message is the query, in a ```sql block.")
    db: str | None = None  # default database when the row's reference has none
    max_rows: int = 50
    connection: sqlite3.Connection | None = None

    def reset(self, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.close()
        reference = row.get("reference") if isinstance(row.get("reference"), dict) else {}
        path = reference.get("db") or self.db
        if not path:
            raise ValueError('the row needs reference {"gold": ..., "db": path} (or the environment a db)')
        self.connection = open_read_only(path)
        self.tools = [
            Tool("sql", "Run a read-only SQLite query; returns columns, types and rows as JSON.",
                 {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"], "additionalProperties": False},
                 self._query, enforces_limit=True),  # the progress handler interrupts it
            Tool("schema", "The database's CREATE statements.", {"type": "object", "properties": {}, "additionalProperties": False},
                 self._schema),
        ]
        return super().reset(row)

    def _query(self, query: str) -> str:
        assert self.connection is not None
        return run_query(self.connection, query, self.max_rows, self.call_timeout_s)

    def _schema(self) -> str:
        assert self.connection is not None
        return "\n".join(r[0] for r in self.connection.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"))

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
