"""``sql``: execution accuracy of a model-written SQLite query, with Reasoning-SQL's partial
rewards as components.

Reference: ``{"gold": "SELECT ...", "db": "path/to.sqlite"}`` or
``{"gold": "SELECT ...", "schema": "CREATE TABLE ...; INSERT ...;"}`` (DDL and rows, loaded into
a private in-memory database). Results compare as multisets unless the gold query has a
top-level ORDER BY. A query that errors scores 0 and never equals a gold query that errors (that
case abstains: the reference is broken). Databases open read-only (``mode=ro`` URI); a progress
handler stops any query past its time budget; results are capped in rows.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from typing import Annotated, Any

from annotated_types import Gt

from payoff.core import Outcome, Sample, reward
from payoff.rewards.common import after_reasoning

_FENCE = re.compile(r"```(?:sql|sqlite)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "join", "inner", "left", "right", "outer", "on", "as", "group",
    "by", "order", "having", "limit", "offset", "distinct", "count", "sum", "avg", "min", "max", "asc", "desc",
    "in", "is", "null", "like", "between", "case", "when", "then", "else", "end", "union", "all", "exists", "with",
    "cast", "integer", "text", "real",
}


_CONTINUES = re.compile(r"(?:\)|,|\bUNION|\bALL|\bINTERSECT|\bEXCEPT)\s*$", re.IGNORECASE)


def extract_sql(completion: str) -> str:
    """The last ```sql fence, else the last statement that starts with SELECT/WITH, else
    everything. A SELECT inside parentheses (a subquery) or after a CTE's ``)`` or a UNION
    belongs to the statement around it: the last bare SELECT would cut a correct query in half."""
    blocks = _FENCE.findall(completion)
    if blocks:
        return blocks[-1].strip()
    start = None
    for match in re.finditer(r"\b(?:SELECT|WITH)\b", completion, re.IGNORECASE):
        before = completion[: match.start()]
        if before.count("(") > before.count(")"):
            continue  # a subquery
        if start is None or not _CONTINUES.search(before):
            start = match.start()
    return completion[start:].strip().rstrip(";").strip() if start is not None else completion.strip()


def _open(reference: dict[str, Any]) -> sqlite3.Connection:
    if reference.get("db"):
        return sqlite3.connect(f"file:{reference['db']}?mode=ro", uri=True, check_same_thread=False)
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    connection.executescript(str(reference.get("schema") or ""))
    connection.execute("PRAGMA query_only = ON")  # the in-memory copy is read-only too
    return connection


class QueryError(Exception):
    pass


# ATTACH creates a file on disk even under mode=ro and query_only, and a PRAGMA that sets a value
# can turn query_only off; the authorizer refuses both (SQLite's security page advises one).
# Writes are left to mode=ro / query_only, which refuse them with a "readonly" error.
def _reads_only(action: int, arg1: str | None, arg2: str | None, database: str | None, trigger: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH) or (action == sqlite3.SQLITE_PRAGMA and arg2 is not None):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def bounded_query(connection: sqlite3.Connection, query: str, timeout_s: float, max_rows: int,
                  check_every: int = 10_000) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, at most ``max_rows + 1`` rows) of one statement under a time
    budget: a progress handler, checked every ``check_every`` SQLite instructions, interrupts a
    runaway query (``TimeoutError``) instead of abandoning it; an authorizer refuses ATTACH,
    DETACH and PRAGMA assignments ("not authorized"). Other SQLite errors propagate."""
    deadline = time.monotonic() + timeout_s
    connection.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, check_every)
    connection.set_authorizer(_reads_only)
    try:
        cursor = connection.execute(query)
        rows = cursor.fetchmany(max_rows + 1)
    except sqlite3.OperationalError as error:
        if "interrupted" in str(error):
            raise TimeoutError(f"the query ran past {timeout_s:g} s and was interrupted") from None
        raise
    finally:
        connection.set_progress_handler(None, 0)
        connection.set_authorizer(None)
    return [d[0] for d in cursor.description or []], rows


def execute(connection: sqlite3.Connection, query: str, timeout_s: float, max_rows: int) -> list[tuple[Any, ...]]:
    """Run one statement under a time budget and a row cap; every failure is a `QueryError`."""
    try:
        rows = bounded_query(connection, query, timeout_s, max_rows)[1]
    except TimeoutError as error:
        raise QueryError(f"query exceeded {timeout_s:g} s") from error
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError) as error:
        raise QueryError(f"{type(error).__name__}: {error}") from error
    if len(rows) > max_rows:
        raise QueryError(f"more than {max_rows} rows")
    return rows


def _normalise(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    return value


def _ordered(query: str) -> bool:
    """A top-level ORDER BY (outside parentheses) makes row order part of the answer."""
    depth = 0
    text = query.lower()
    for index, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and text.startswith("order by", index):
            return True
    return False


def _schema_items(query: str, tables: set[str], columns: set[str]) -> tuple[set[str], set[str]]:
    words = {w.lower() for w in _IDENTIFIER.findall(query)} - _KEYWORDS
    return words & tables, words & columns


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def _ngram_similarity(a: str, b: str, n: int = 2) -> float:
    def grams(text: str) -> Counter[tuple[str, ...]]:
        tokens = re.findall(r"\w+|[^\w\s]", text.lower())
        return Counter(tuple(tokens[i : i + n]) for i in range(max(len(tokens) - n + 1, 0)))

    left, right = grams(a), grams(b)
    total = sum((left | right).values())
    return sum((left & right).values()) / total if total else 1.0


@reward(name="sql", timeout_s=60)
def sql(sample: Sample, timeout_s: Annotated[float, Gt(0)] = 5.0, max_rows: Annotated[int, Gt(0)] = 10_000) -> Outcome:
    """SQLite execution accuracy (Reasoning-SQL, Think2SQL): 1 if the predicted query's result
    equals the gold query's (as multisets unless the gold orders its rows). Components:
    execution match, syntax validity, schema-linking Jaccard of tables and of columns, bigram
    similarity to the gold query."""
    reference = sample.reference
    if not isinstance(reference, dict) or "gold" not in reference or not (reference.get("db") or reference.get("schema")):
        return Outcome.abstain('the reference needs {"gold": ..., "db": path} or {"gold": ..., "schema": DDL}')
    predicted = extract_sql(after_reasoning(sample.completion))  # a draft query inside <think> is not the answer
    gold = str(reference["gold"])
    try:
        connection = _open(reference)
    except sqlite3.Error as error:
        return Outcome.abstain(f"cannot open the database: {error}")
    try:
        tables = {r[0].lower() for r in connection.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
        columns = {row[1].lower() for t in tables for row in connection.execute(f'PRAGMA table_info("{t}")')}
        try:
            gold_rows = execute(connection, gold, timeout_s, max_rows)
        except QueryError as error:
            return Outcome.abstain(f"the gold query fails: {error}")
        pred_tables, pred_columns = _schema_items(predicted, tables, columns)
        gold_tables, gold_columns = _schema_items(gold, tables, columns)
        components = {
            "table_jaccard": _jaccard(pred_tables, gold_tables),
            "column_jaccard": _jaccard(pred_columns, gold_columns),
            "ngram": _ngram_similarity(predicted, gold),
        }
        try:
            pred_rows = execute(connection, predicted, timeout_s, max_rows)
        except QueryError as error:
            syntax_ok = "syntax error" not in str(error) and "incomplete input" not in str(error)
            return Outcome.ok(0.0, {**components, "syntax_ok": float(syntax_ok), "execution": 0.0}, error=str(error)[:300])
    finally:
        connection.close()
    gold_norm = [tuple(_normalise(v) for v in row) for row in gold_rows]
    pred_norm = [tuple(_normalise(v) for v in row) for row in pred_rows]
    ordered = _ordered(gold)
    match = pred_norm == gold_norm if ordered else Counter(pred_norm) == Counter(gold_norm)
    return Outcome.ok(float(match), {**components, "syntax_ok": 1.0, "execution": float(match)}, ordered=ordered, rows=len(pred_rows))
