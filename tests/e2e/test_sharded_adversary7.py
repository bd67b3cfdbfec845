"""Findings of an adversarial review of sharded databases, on two real MariaDB shards, each
compared with what MariaDB answers holding the same table in one database (a plain copy on s0).

The layout: ``shav7`` over s0 and s1 with 4 physical databases; ``t`` by HASH(k), a string key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError, lenenc_bytes
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, plain_twin, sharded_database
from tests.e2e.tools import error_of

PASSWORD = "ShAdv7#pass1"
DB = "shav7"
TABLE = "CREATE TABLE t (k varchar(20) NOT NULL, v int, PRIMARY KEY (k)) DEFAULT CHARSET utf8mb4"
ROWS = "INSERT INTO t VALUES " + ", ".join(f"('k{n}', {n})" for n in range(8))
_VAR_STRING = 0xFD
EMOJI = "\U0001f600"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [TABLE + " DBPARTITION BY HASH(k)", ROWS]
    with sharded_database(proxy, DB, PASSWORD, setup=setup), plain_twin(proxy, DB, [TABLE, ROWS]):
        yield proxy


def _client(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB, **kwargs)


def _everywhere(env: ProxyEnv, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows on every physical database, together."""
    return sorted(row for index in range(4) for row in physical(env, DB, index, sql))


# ------------------------------------------------------------------------ character sets


def test_utf8mb3_client_keys_beyond_the_bmp_are_not_placed_by_guess(sharded: ProxyEnv) -> None:
    """A utf8mb3 client's 4-byte UTF-8 sequence is no character to MariaDB: without strict
    mode it stores '?' for each of its bytes ('a' + emoji is the row 'a????', warning 1366).
    The proxy read the client's bytes as Python's utf-8, placed the row by 'a' + emoji, and
    a read by the value stored went to another partition and found nothing. Now such a key
    is refused (1235) in text, prepared and repeated (fast path) statements alike; a key in
    the plane still is placed and read back as MariaDB does, and names in it still served."""
    env = sharded
    conn = _client(env, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute("SET NAMES utf8mb3")
            cur.execute("SET SESSION sql_mode = ''")
            for key in ("a", "b", "c", "d"):
                errno, message = error_of(cur, f"INSERT INTO t (k, v) VALUES ('{key}{EMOJI}', 1)")
                assert errno == 1235 and "shard key" in message, message
            # Its reads scatter: each partition answers as MariaDB does (1267 here).
            for _ in range(3):
                assert error_of(cur, f"SELECT v FROM t WHERE k = 'a{EMOJI}'")[0] == 1267
                assert error_of(cur, f"DELETE FROM t WHERE k = 'b{EMOJI}'")[0] == 1267
            # In the plane: placed as MariaDB stores it, read back by the value.
            for n in range(4):
                cur.execute(f"INSERT INTO t (k, v) VALUES ('\u00e9{n}\u4e2d', {100 + n})")
            for _ in range(3):
                for n in range(4):
                    cur.execute(f"SELECT v FROM t WHERE k = '\u00e9{n}\u4e2d'")
                    assert cur.fetchall() == ((100 + n,),)
            cur.execute("SELECT 1 AS \u00e9t\u00e9")
            assert cur.fetchall() == ((1,),)
            assert cur.description[0][0] == "\u00e9t\u00e9"
    finally:
        conn.close()
    assert not [r for r in _everywhere(env, "SELECT k FROM t") if "?" in r[0]]
    # A parameter: the same.
    binary = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        binary.query("SET NAMES utf8mb3")
        binary.query("SET SESSION sql_mode = ''")
        insert = binary.prepare("INSERT INTO t (k, v) VALUES (?, 2)")
        for key in ("e", "f", "g", "h"):
            raw = lenenc_bytes(f"{key}{EMOJI}".encode())
            with pytest.raises(ServerError) as refused:
                binary.execute_typed(insert, [(_VAR_STRING, raw)])
            assert refused.value.errno == 1235
        select = binary.prepare("SELECT v + 0 FROM t WHERE k = ?")
        for n in range(4):
            raw = lenenc_bytes(f"\u00e9{n}\u4e2d".encode())
            assert binary.execute_typed(select, [(_VAR_STRING, raw)]) == [(100 + n,)]
    finally:
        binary.close()
    assert not [r for r in _everywhere(env, "SELECT k FROM t") if "?" in r[0]]


# --------------------------------------------------------------------- other databases' tables


def test_writes_naming_another_databases_table_are_refused_as_selects_are(
    sharded: ProxyEnv,
) -> None:
    """A SELECT on a sharded table joining or reading in a subquery a table the logical
    database does not hold (information_schema's) is 1235: each partition would read its own.
    The same UPDATE or DELETE -- multi-table, or with a subquery -- was routed to the key's
    partition (or every one) and ran there, reading that physical database's view of it."""
    env = sharded
    subquery = "EXISTS (SELECT 1 FROM information_schema.tables x WHERE x.table_name = 't')"
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            for select in (
                f"SELECT v FROM t WHERE k = 'k3' AND {subquery}",
                "SELECT t.v FROM t, information_schema.tables x WHERE t.k = 'k3'",
            ):
                assert error_of(cur, select)[0] == 1235, select
            for sql in (
                f"UPDATE t SET v = v + 100 WHERE k = 'k3' AND {subquery}",
                f"DELETE FROM t WHERE k = 'k3' AND {subquery}",
                f"UPDATE t SET v = v + 100 WHERE {subquery}",
                "DELETE FROM t WHERE k IN (SELECT table_name FROM information_schema.tables)",
                "UPDATE t, information_schema.tables x SET t.v = t.v + 100"
                " WHERE t.k = 'k3' AND x.table_name = 't'",
                "DELETE t FROM t JOIN information_schema.tables x ON x.table_name = 't'"
                " WHERE t.k = 'k3'",
                "DELETE FROM t USING t, information_schema.tables x"
                " WHERE t.k = 'k3' AND x.table_name = 't'",
            ):
                for _ in range(2):
                    errno, why = error_of(cur, sql)
                    assert errno == 1235 and "sharded table t and table" in why, (sql, why)
            # A subquery reading no table is within the key's partition: still served.
            cur.execute("UPDATE t SET v = v + 0 WHERE k = 'k3' AND k IN (SELECT 'k3' FROM DUAL)")
            assert cur.rowcount == 0
    finally:
        conn.close()
    assert _everywhere(env, "SELECT k, v FROM t WHERE k LIKE 'k_'") == [
        (f"k{n}", n) for n in range(8)
    ]


# --------------------------------------------------------------- the last statement's values


def _answers(conn: Any, pairs: list[tuple[str, str]]) -> list[Any]:
    """Each (statement, question) run in turn on ``conn``: the questions' answers."""
    out = []
    with conn.cursor() as cur:
        for sql, question in pairs:
            cur.execute(sql)
            cur.fetchall()
            cur.execute(question)
            out.append(cur.fetchall())
    return out


def test_row_count_and_found_rows_answer_for_the_last_statement(sharded: ProxyEnv) -> None:
    """ROW_COUNT() and FOUND_ROWS() are about the session's last statement. On a sharded
    database a statement with no table runs on physical database 0's connection, which
    answered about its own last statement, not the one just routed to another partition
    (ROW_COUNT() -1 after an UPDATE of one row, FOUND_ROWS() 0 after a SELECT of one). Each
    pair runs on both paths (the text fast path serves a key's statements from the second)."""
    env = sharded
    keys = [f"k{n}" for n in range(8)]
    pairs = []
    for key in keys:
        pairs += [
            (f"UPDATE t SET v = v + 1000 WHERE k = '{key}'", "SELECT ROW_COUNT()"),
            (f"UPDATE t SET v = v - 1000 WHERE k = '{key}'", "SELECT ROW_COUNT() + 1 AS r"),
            (f"SELECT v FROM t WHERE k = '{key}'", "SELECT FOUND_ROWS(), ROW_COUNT()"),
            (f"DELETE FROM t WHERE k = '{key}' AND v < 0", "SELECT ROW_COUNT()"),
        ]
    pairs.append(("SELECT 1", "SELECT FOUND_ROWS(), ROW_COUNT()"))
    admin = connect_admin(env.shards[0], database=DB)
    try:
        expected = _answers(admin, pairs)
    finally:
        admin.close()
    conn = _client(env)
    try:
        assert _answers(conn, pairs) == expected
        # After a statement on several partitions, each knows its own part only: answered
        # from what the proxy sent (no longer 1235), as the plain copy answers.
        several = [("UPDATE t SET v = v + 0 WHERE k LIKE 'k_'", "SELECT ROW_COUNT()")]
        # (the rows both hold: the first test wrote others to the sharded one only)
        for sql in (
            "SELECT v FROM t WHERE k LIKE 'k_'",
            "SELECT v FROM t WHERE k LIKE 'k_' LIMIT 3",
        ):
            several += [(sql, "SELECT ROW_COUNT()"), (sql, "SELECT FOUND_ROWS(), ROW_COUNT()")]
        with conn.cursor() as cur:
            for sql, _ in several:
                cur.execute(sql)
                cur.execute("SELECT 1 AS row_count")  # (a name: no call)
                assert cur.fetchall() == ((1,),)
        admin = connect_admin(env.shards[0], database=DB)
        try:
            assert _answers(conn, several) == _answers(admin, several)
        finally:
            admin.close()
    finally:
        conn.close()
