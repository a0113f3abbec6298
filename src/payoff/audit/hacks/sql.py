"""Hack classes against SQL rewards: queries that error (both sides failing must not match),
that write, that attach or shadow another schema, or that burn the time budget."""

from __future__ import annotations

import re
from typing import Any

import payoff.audit.probes as old
from payoff.audit.hacks.base import Hack, hack
from payoff.audit.probes import Probe

SQL = ("sql",)


def _table(task: dict[str, Any]) -> str:
    """The first table the gold query reads (else the schema's first CREATE TABLE)."""
    reference = task.get("reference") if isinstance(task.get("reference"), dict) else {}
    for text, pattern in ((str(reference.get("gold") or task.get("solution") or ""), r"\bFROM\s+([A-Za-z_]\w*)"),
                          (str(reference.get("schema") or ""), r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_]\w*)")):
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            return match.group(1)
    return "sqlite_master"


OLD: tuple[Hack, ...] = (
    Hack("sql_errors", old.sql_errors, SQL, ("sql",), "A query that errors: evaluators that compare results with errors as None "
         "score error == error as a match (Spider-style execution-accuracy scripts)."),
)


@hack(SQL, ("sql",), naive="shared_connection_sql")
def sql_write(task: dict[str, Any]) -> list[Probe]:
    """A query that deletes or updates the table the gold query reads: an evaluator that runs the
    prediction before the gold query on one writable connection then compares an empty result
    with an empty result (BIRD / Spider evaluation copies the database for this reason)."""
    table = _table(task)
    return [Probe("sql_write", "exploit", f"DELETE FROM {table}", "deletes the gold query's rows"),
            Probe("sql_write", "exploit", f"DROP TABLE {table}", "drops the gold query's table")]


@hack(SQL, ("sql",), naive="shared_connection_sql")
def sql_attach(task: dict[str, Any]) -> list[Probe]:
    """A script that attaches another database and shadows the gold query's table with an empty
    temp table (SQLite resolves temp before main): evaluators that ``executescript`` the whole
    answer then run the gold query on the same connection. ATTACH alone also creates files on
    the grader's disk (SQLite's docs on ATTACH; 'Defense against the dark arts' of SQLite's
    security page: set an authorizer)."""
    table = _table(task)
    return [Probe("sql_attach", "exploit", f"ATTACH DATABASE ':memory:' AS scratch; CREATE TEMP TABLE {table} AS SELECT * FROM "
                  f"main.{table} WHERE 0; SELECT * FROM {table}", "attach, then shadow the table with an empty temp one"),
            Probe("sql_attach", "exploit", "ATTACH DATABASE '/tmp/payoff-audit-attached.sqlite' AS side",
                  "attach a database file (creates it on the grader's disk)")]


@hack(SQL, ("sql",), naive="shared_connection_sql", effect="hang")
def sql_sleep(task: dict[str, Any]) -> list[Probe]:
    """A query that runs for ever (SQLite has no SLEEP: a recursive CTE or a cross join does
    it): an evaluator with one deadline for both queries lets the gold query time out too, and
    one without a deadline hangs (SQLite's progress handler is the documented way out)."""
    table = _table(task)
    return [Probe("sql_sleep", "exploit", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c",
                  "an endless recursive CTE", effect="hang"),
            Probe("sql_sleep", "exploit", f"SELECT count(*) FROM {table} a, {table} b, {table} c, {table} d, {table} e, {table} f, "
                  f"(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10000000) SELECT x FROM c)",
                  "a cross join past any budget", effect="hang")]


NEW: tuple[Hack, ...] = (sql_write, sql_attach, sql_sleep)
HACKS: tuple[Hack, ...] = OLD + NEW
