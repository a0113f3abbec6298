"""The sql reward on a real SQLite database file."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import payoff

SQL = payoff.get_reward("sql")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "shop.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT);
            CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL, code TEXT);
            INSERT INTO customers VALUES (1, 'Ann', 'Oslo'), (2, 'Bob', 'Rome'), (3, 'Cid', NULL), (4, 'Ann', 'Rome');
            INSERT INTO orders VALUES (1, 1, 10.5, '007'), (2, 1, 0.1, '7'), (3, 2, 20.0, 'x'), (4, 3, NULL, '12'),
                                      (5, 4, 0.30000000000000004, '08');
            """
        )
    return str(path)


def check(database: str, predicted: str, gold: str) -> payoff.Outcome:
    return SQL({"completion": f"```sql\n{predicted}\n```", "reference": {"gold": gold, "db": database}})


def test_multiset_comparison_ignores_order_unless_gold_orders(database: str) -> None:
    assert check(database, "SELECT name FROM customers ORDER BY id DESC", "SELECT name FROM customers").score == 1.0
    assert check(database, "SELECT name FROM customers ORDER BY id DESC", "SELECT name FROM customers ORDER BY id").score == 0.0
    assert check(database, "SELECT name FROM customers ORDER BY id", "SELECT name FROM customers ORDER BY id").score == 1.0


def test_duplicates_count(database: str) -> None:
    assert check(database, "SELECT DISTINCT name FROM customers", "SELECT name FROM customers").score == 0.0
    assert check(database, "SELECT name FROM customers WHERE id IN (1, 4)", "SELECT 'Ann' UNION ALL SELECT 'Ann'").score == 1.0


def test_nulls(database: str) -> None:
    assert check(database, "SELECT city FROM customers WHERE city IS NULL", "SELECT NULL").score == 1.0
    assert check(database, "SELECT city FROM customers WHERE city = NULL", "SELECT city FROM customers WHERE city IS NULL").score == 0.0


def test_floats_compare_after_rounding(database: str) -> None:
    assert check(database, "SELECT amount FROM orders WHERE id = 5", "SELECT 0.3").score == 1.0
    assert check(database, "SELECT SUM(amount) FROM orders WHERE customer_id = 1", "SELECT 10.6").score == 1.0


def test_type_affinity(database: str) -> None:
    # code is TEXT: '007' and 7 are different values, and so are 7 and '7'
    assert check(database, "SELECT code FROM orders WHERE id = 1", "SELECT '007'").score == 1.0
    assert check(database, "SELECT code FROM orders WHERE id = 2", "SELECT 7").score == 0.0
    assert check(database, "SELECT CAST(code AS INTEGER) FROM orders WHERE id = 2", "SELECT 7").score == 1.0


def test_a_cartesian_explosion_is_stopped_within_the_limit(database: str) -> None:
    # 5 rows joined 14 ways: 6e9 rows, which no machine counts within the 0.5 s limit (11 ways,
    # 5e7 rows, was near enough to it that a fast machine sometimes finished).
    explosion = "SELECT COUNT(*) FROM " + ", ".join(f"orders t{i}" for i in range(14))
    start = time.monotonic()
    outcome = SQL.configure(timeout_s=0.5)({"completion": explosion, "reference": {"gold": "SELECT 1", "db": database}})
    assert time.monotonic() - start < 3
    assert outcome.score == 0.0 and "exceeded" in outcome.info["error"]


def test_writes_are_refused_and_the_file_is_untouched(database: str) -> None:
    before = Path(database).read_bytes()
    for statement in ("DELETE FROM orders", "DROP TABLE customers", "INSERT INTO customers VALUES (9, 'Eve', 'X')"):
        outcome = check(database, statement, "SELECT 1")
        assert outcome.score == 0.0 and "readonly" in outcome.info["error"]
    assert Path(database).read_bytes() == before


def test_errors_never_match_and_a_failing_gold_abstains(database: str) -> None:
    broken = check(database, "SELEC name FROM customers", "SELECT name FROM customers")
    assert broken.score == 0.0 and broken.components["syntax_ok"] == 0.0
    assert check(database, "SELECT nope FROM customers", "SELECT nope FROM customers").status == "abstain"


def test_partial_components(database: str) -> None:
    outcome = check(database, "SELECT name FROM customers WHERE city = 'Rome'",
        "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id")
    assert outcome.score == 0.0
    assert outcome.components["table_jaccard"] == 0.5  # customers vs customers+orders
    assert 0 < outcome.components["ngram"] < 1 and outcome.components["syntax_ok"] == 1.0


def test_schema_in_the_reference_and_row_caps() -> None:
    reference = {"gold": "SELECT x FROM t", "schema": "CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2), (3);"}
    assert SQL({"completion": "SELECT x FROM t ORDER BY x DESC", "reference": reference}).score == 1.0
    capped = SQL.configure(max_rows=2)({"completion": "SELECT x FROM t", "reference": reference})
    assert capped.status == "abstain"  # the gold itself returns more rows than the cap
    assert SQL({"completion": "DELETE FROM t", "reference": reference}).score == 0.0


@pytest.mark.parametrize("bare, extracted", [
    ("SELECT name FROM (SELECT * FROM customers) WHERE id > 1", "SELECT name FROM (SELECT * FROM customers) WHERE id > 1"),
    ("WITH t AS (SELECT name FROM customers), u AS (SELECT 1) SELECT name FROM t;",
     "WITH t AS (SELECT name FROM customers), u AS (SELECT 1) SELECT name FROM t"),
    ("The query: SELECT 1 UNION ALL SELECT 2", "SELECT 1 UNION ALL SELECT 2"),
    ("A first try, SELECT 1; a better one: SELECT 2", "SELECT 2"),
])
def test_a_bare_query_with_a_subquery_is_read_whole(bare: str, extracted: str) -> None:
    """A bare query (no fence) was read from its last SELECT, which cut a subquery or a CTE's body
    out of a correct answer (false negatives found by benchmarks/hack_matrix.py)."""
    from payoff.rewards.sql import extract_sql

    assert extract_sql(bare) == extracted


def test_a_bare_subquery_answer_scores(database: str) -> None:
    outcome = SQL({"completion": "SELECT name FROM (SELECT * FROM customers) WHERE id > 2",
                   "reference": {"gold": "SELECT name FROM customers WHERE id IN (3, 4)", "db": database}})
    assert outcome.score == 1.0


def test_a_draft_query_inside_think_is_not_the_answer(database: str) -> None:
    """The last ```sql fence of the whole completion was a draft inside <think>; the answer after
    </think> is a bare statement."""
    gold = "SELECT name FROM customers WHERE city = 'Rome'"
    completion = "<think>First try:\n```sql\nSELECT name FROM customers\n```\nThat misses the city.</think>\n" + gold
    assert SQL({"completion": completion, "reference": {"gold": gold, "db": database}}).score == 1.0
    wrong = "<think>```sql\n" + gold + "\n```</think>\nSELECT name FROM customers"
    assert SQL({"completion": wrong, "reference": {"gold": gold, "db": database}}).score == 0.0
