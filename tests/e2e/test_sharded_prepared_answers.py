"""A sharded database's statements the proxy answers or carries out itself, prepared: SHOW
TABLES, DESCRIBE, SHOW CREATE TABLE, SHOW INDEX, SHOW TABLE STATUS, DRDS's SHOW TOPOLOGY / RULE
/ NODE, DDL (CREATE TABLE ... DBPARTITION BY, DROP TABLE), and information_schema reads with
parameters (Laravel's schema builder) -- through mysql-connector-python's prepared cursor (the
binary protocol, every column type decoded) on two real MariaDB shards, each answer the same
as the text protocol's (the same driver's text cursor), and decided at each execution (a table
created after the PREPARE is listed by its next execution).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mysql.connector
import pytest

from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

PASSWORD = "ShAns#pass1"
DB = "shans"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE t (id bigint NOT NULL, v varchar(40), n int, PRIMARY KEY (id), KEY (n))"
        " DBPARTITION BY HASH(id)",
        "CREATE TABLE b (id bigint PRIMARY KEY, name varchar(20)) BROADCAST",
        "CREATE TABLE single1 (id int PRIMARY KEY, d datetime(3), dt date, tm time)",
        "INSERT INTO t (id, v, n) VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


def _connect(env: ProxyEnv) -> Any:
    return env.connector(DB, PASSWORD, database=DB)


def _answers(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, Any]:
    """(the text protocol's rows, the prepared statement's) and both column name lists."""
    text = conn.cursor()
    text.execute(sql.replace("?", "%s"), params)
    text_rows = [tuple(row) for row in text.fetchall()]
    text_names = text.column_names
    text.close()
    prepared = conn.cursor(prepared=True)
    prepared.execute(sql, params)
    rows = [tuple(row) for row in prepared.fetchall()]
    names = prepared.column_names
    prepared.close()
    return (text_names, text_rows), (names, rows)


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW TABLES",
        "SHOW FULL TABLES",
        "SHOW TABLES LIKE 't%'",
        "DESCRIBE t",
        "SHOW COLUMNS FROM t",
        "SHOW FULL COLUMNS FROM b",
        "SHOW CREATE TABLE t",
        "SHOW CREATE TABLE b",
        "SHOW INDEX FROM t",
        "SHOW TABLE STATUS LIKE 't'",
        "SHOW TOPOLOGY FROM t",
        "SHOW RULE",
        "SHOW RULE FROM t",
        "SHOW NODE",
        "SHOW DATABASES",
        "SHOW STATUS LIKE 'Ssl_cipher'",
        "SHOW CREATE TABLE single1",
    ],
)
def test_show_commands_prepared_answer_as_text(sharded: ProxyEnv, sql: str) -> None:
    conn = _connect(sharded)
    try:
        (text_names, text_rows), (names, rows) = _answers(conn, sql)
        assert names == text_names
        assert rows == text_rows, sql
        assert rows
    finally:
        conn.close()


def test_information_schema_with_parameters(sharded: ProxyEnv) -> None:
    """Laravel's schema builder: ``select ... from information_schema.tables where
    table_schema = ? and table_name = ?``, prepared with PDO's emulation off."""
    conn = _connect(sharded)
    try:
        for table in ("t", "b", "single1", "nosuch"):
            sql = (
                "select table_name as `name`, table_type as `type` from information_schema.tables"
                " where table_schema = ? and table_name = ?"
            )
            (_, text_rows), (_, rows) = _answers(conn, sql, (DB, table))
            assert rows == text_rows, table
            assert rows == ([] if table == "nosuch" else [(table, "BASE TABLE")])
            sql = (
                "select column_name, data_type from information_schema.columns"
                " where table_schema = ? and table_name = ? order by ordinal_position"
            )
            (_, text_rows), (_, rows) = _answers(conn, sql, (DB, table))
            assert rows == text_rows, table
    finally:
        conn.close()


def test_ddl_and_listing_prepared_are_decided_at_each_execution(sharded: ProxyEnv) -> None:
    conn = _connect(sharded)
    try:
        cur = conn.cursor(prepared=True)
        listing = conn.cursor(prepared=True)
        listing.execute("SHOW TABLES")
        before = [row[0] for row in listing.fetchall()]
        assert "pd" not in before
        cur.execute(
            "CREATE TABLE pd (id bigint NOT NULL PRIMARY KEY, v varchar(10))"
            " DBPARTITION BY HASH(id)"
        )
        listing.execute("SHOW TABLES")  # (the same statement, executed again)
        assert "pd" in [row[0] for row in listing.fetchall()]
        cur.execute("SHOW TOPOLOGY FROM pd")
        assert len(cur.fetchall()) == 4
        cur.execute("INSERT INTO pd (id, v) VALUES (?, ?)", (5, "five"))
        cur.execute("SELECT v FROM pd WHERE id = ?", (5,))
        assert cur.fetchall() == [("five",)]
        cur.execute("DROP TABLE pd")
        listing.execute("SHOW TABLES")
        assert [row[0] for row in listing.fetchall()] == before
        # A refusal at execution is the text protocol's: a table that is not there.
        with pytest.raises(mysql.connector.Error) as info:
            cur.execute("SHOW CREATE TABLE pd")
        assert info.value.errno == 1146
        cur.close()
        listing.close()
    finally:
        conn.close()
