"""FOUND_ROWS() after a statement relayed to physical database 0 (single tables, statements
naming no table), following a scatter SELECT whose count the proxy keeps: the statement either
sets FOUND_ROWS() (then physical database 0's answer is right) or leaves it (then the scatter's
count is), and which is MariaDB's rule -- read from the analysed statement (its words, never a
word inside a string), compared statement by statement with one MariaDB holding the same
tables (the plain twin)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import plain_twin, sharded_database

DB = "shfound"
PASSWORD = "Shfound#pass1"
TABLES = [
    "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v INT)",
    "CREATE TABLE s (id INT NOT NULL PRIMARY KEY, v INT)",
    "CREATE TABLE g (id INT NOT NULL PRIMARY KEY, v INT)",
]
ROWS = [
    "INSERT INTO t VALUES (0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)",
    "INSERT INTO s VALUES (1, 1), (2, 2), (3, 3), (4, 4)",
    "INSERT INTO g VALUES (1, 1), (2, 2)",
]

# Each runs after "SELECT id FROM t" (a scatter read of 7 rows): FOUND_ROWS() is then 7 if it
# leaves it, else what it sets (s has 4 rows, g 2); ROW_COUNT() is asked too.
STATEMENTS = [
    "SET @a = 1",
    "SET @a = 'SELECT v FROM s'",
    "SET @a = (SELECT 1)",
    "SET @a = (SELECT COUNT(*) FROM s)",
    "SET @a = (SELECT id FROM s WHERE id = 2)",
    "UPDATE s SET v = v",
    "UPDATE s SET v = 'SELECT' WHERE id = 0",
    "UPDATE s SET v = (SELECT MAX(v) FROM g)",
    "UPDATE s JOIN g ON g.id = s.id SET s.v = s.v",
    "DELETE FROM s WHERE id = 99",
    "DELETE s FROM s JOIN g ON g.id = s.id WHERE s.id = 99",
    "INSERT INTO g VALUES (10, 1)",
    "INSERT INTO g VALUES (11, (SELECT 1))",
    "INSERT INTO g VALUES (12, (SELECT COUNT(*) FROM s))",
    "INSERT INTO g SELECT id + 20, v FROM s WHERE id < 4",
    "REPLACE INTO g SELECT id + 30, v FROM s",
    "INSERT INTO g VALUES (13, 1) ON DUPLICATE KEY UPDATE v = 2",
    "SELECT 1",
    "SELECT 'UPDATE' FROM s",
    "SELECT v FROM s WHERE id < 3",
    "SELECT v FROM s WHERE id = 3 INTO @x",
    "WITH x AS (SELECT 1 AS n) SELECT n FROM x",
    "(SELECT 1) UNION (SELECT 2)",
    "SELECT * FROM nosuch",
    "BEGIN",
    "COMMIT",
    "CREATE TABLE IF NOT EXISTS h (a INT)",
    "DROP TABLE IF EXISTS h",
    "SHOW WARNINGS",
    "SHOW VARIABLES LIKE 'port'",
    "SHOW CREATE TABLE s",
    "DESCRIBE s",
    "EXPLAIN SELECT * FROM s",
    "CHECK TABLE s",
    "ANALYZE TABLE t, s",
    "CHECKSUM TABLE t",
    # (on a sharded table: one partition, several, every physical table's definition)
    "UPDATE t SET v = v WHERE id = 2",
    "UPDATE t SET v = v + 0",
    "SELECT v FROM t WHERE id = 3",
    "SELECT v FROM t WHERE id IN (1, 2, 3)",
    "INSERT INTO t VALUES (9, 9)",
    "DELETE FROM t WHERE id = 9",
    "ALTER TABLE t COMMENT 'x'",
]


@pytest.fixture(scope="module")
def twins(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    sharded = [TABLES[0] + " DBPARTITION BY HASH(id)", *TABLES[1:]]
    with (
        sharded_database(proxy, DB, PASSWORD, setup=sharded + ROWS) as env,
        plain_twin(proxy, DB + "_plain", TABLES + ROWS),
    ):
        yield env


def _run(conn: Any, sql: str) -> Any:
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
        except pymysql.err.MySQLError as exc:
            return ("error", exc.args[0])
        return cur.fetchall()


@pytest.mark.parametrize("statement", STATEMENTS)
def test_found_rows_after_a_relayed_statement_is_mariadbs(twins: ProxyEnv, statement: str) -> None:
    """It was judged from the text by two regular expressions: a SELECT inside a string
    counted as reading rows, a CREATE or DROP TABLE ("TABLE") too, a SET reading a table
    with a subquery did not."""
    ours = twins.connect(DB, PASSWORD, database=DB)
    theirs = connect_admin(twins.shards[0], database=DB + "_plain")
    try:
        answers = []
        for conn in (ours, theirs):
            _run(conn, "DELETE FROM g WHERE id > 2")
            assert len(_run(conn, "SELECT id FROM t")) == 7
            _run(conn, statement)
            answers.append(_run(conn, "SELECT FOUND_ROWS(), ROW_COUNT()"))
            _run(conn, "ROLLBACK")
            _run(conn, "DELETE FROM t WHERE id = 9")
        assert answers[0] == answers[1], statement
    finally:
        ours.close()
        theirs.close()


def test_found_rows_after_statements_on_the_fast_path_is_mariadbs(twins: ProxyEnv) -> None:
    """Statements of a shape the fast path routes (the second of each shape in a session)
    are commands of their own too: an UPDATE or DELETE by key leaves FOUND_ROWS() as it was,
    a SELECT by key sets it (it showed the partition's count of the scatter SELECT, 2 of 7,
    after such an UPDATE)."""
    ours = twins.connect(DB, PASSWORD, database=DB)
    theirs = connect_admin(twins.shards[0], database=DB + "_plain")
    sequence = [
        "SELECT id FROM t ORDER BY id",
        "UPDATE t SET v = v WHERE id = 2",
        "SELECT FOUND_ROWS()",
        "UPDATE t SET v = v WHERE id = 2",
        "SELECT FOUND_ROWS()",
        "SELECT v FROM t WHERE id = 3",
        "SELECT v FROM t WHERE id = 5",
        "UPDATE t SET v = v WHERE id = 1",
        "SELECT FOUND_ROWS()",
        "SELECT id FROM t ORDER BY id",
        "DELETE FROM t WHERE id = 99",
        "DELETE FROM t WHERE id = 97",
        "SELECT FOUND_ROWS()",
        "SELECT id FROM t WHERE id = 5",
        "SELECT id FROM t WHERE id = 6",
        "SELECT FOUND_ROWS()",
        "COMMIT",
        "SELECT id FROM t WHERE id = 4",  # (physical database 0's)
        "SELECT ROW_COUNT()",
        "UPDATE t SET v = v WHERE id = 1",
        "SELECT v FROM t WHERE id = 3",
        "SELECT FOUND_ROWS(), ROW_COUNT()",
        "UPDATE t SET v = v WHERE id = 1",
        "UPDATE t SET v = v WHERE id = 4",
        "SELECT FOUND_ROWS(), ROW_COUNT()",
    ]
    try:
        assert [_run(ours, sql) for sql in sequence] == [_run(theirs, sql) for sql in sequence]
    finally:
        ours.close()
        theirs.close()
