"""Every supported client library, through the proxy, exactly as against MySQL.

Each test runs the same work with one client: DDL, DML with affected rows and insert ids,
NULL, DECIMAL, DATETIME(6), BLOB, JSON and utf8mb4 values, prepared statements where the
client has them, and transactions.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

import aiomysql
import asyncmy
import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.conftest import CONNECTOR_IMPLEMENTATIONS, PASSWORDS, ProxyEnv, run_isolated

BLOB = bytes(range(256)) * 4
TEXT = "Grüße, 世界 🐬"
WHEN = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456)
DOC = {"a": [1, 2, {"b": None}], "name": TEXT}

COLUMNS = (
    "id INT PRIMARY KEY AUTO_INCREMENT, label VARCHAR(64) CHARACTER SET utf8mb4, "
    "amount DECIMAL(12,4), at DATETIME(6), payload BLOB, doc JSON, maybe INT NULL"
)


def _check_row(row: tuple[Any, ...]) -> None:
    label, amount, at, payload, doc, maybe = row
    assert label == TEXT
    assert amount == Decimal("12345678.1234")
    assert at == WHEN
    assert bytes(payload) == BLOB
    assert json.loads(doc) == DOC
    assert maybe is None


def _run_sync(conn: Any, table: str, placeholder: str = "%s") -> None:
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(f"CREATE TABLE {table} ({COLUMNS})")
    p = placeholder
    sql = (
        f"INSERT INTO {table} (label, amount, at, payload, doc, maybe) "
        f"VALUES ({p},{p},{p},{p},{p},{p})"
    )
    cur.execute(sql, (TEXT, Decimal("12345678.1234"), WHEN, BLOB, json.dumps(DOC), None))
    assert cur.rowcount == 1
    assert cur.lastrowid == 1
    cur.execute(sql, (TEXT, Decimal("12345678.1234"), WHEN, BLOB, json.dumps(DOC), None))
    assert cur.lastrowid == 2
    cur.execute(f"SELECT label, amount, at, payload, doc, maybe FROM {table} WHERE id = {p}", (1,))
    _check_row(cur.fetchone())
    cur.execute(f"UPDATE {table} SET maybe = 7 WHERE id > 0")
    assert cur.rowcount == 2
    cur.execute(f"UPDATE {table} SET maybe = 7 WHERE id > 0")
    assert cur.rowcount == 0  # matched but unchanged: affected rows as MySQL counts them
    # A transaction rolled back leaves nothing behind.
    conn.begin() if hasattr(conn, "begin") else conn.start_transaction()
    cur.execute(f"DELETE FROM {table}")
    assert cur.rowcount == 2
    conn.rollback()
    cur.execute(f"SELECT COUNT(*) FROM {table}")
    assert cur.fetchone()[0] == 2
    cur.execute(f"DROP TABLE {table}")
    cur.close()


def test_pymysql(proxy: ProxyEnv) -> None:
    conn = proxy.connect()
    try:
        _run_sync(conn, "t_pymysql")
    finally:
        conn.close()


@pytest.mark.parametrize("use_pure", CONNECTOR_IMPLEMENTATIONS)
def test_mysql_connector(proxy: ProxyEnv, use_pure: bool) -> None:
    if use_pure:
        _connector_scenario(proxy, use_pure)
    else:
        run_isolated(_connector_scenario, proxy, use_pure)


def _connector_scenario(proxy: ProxyEnv, use_pure: bool) -> None:
    conn = proxy.connector(use_pure=use_pure, autocommit=True)
    try:
        _run_sync(conn, f"t_connector_{'pure' if use_pure else 'c'}")
        # Server-side prepared statements (COM_STMT_PREPARE / EXECUTE).
        cur = conn.cursor(prepared=True)
        cur.execute(
            "CREATE TABLE IF NOT EXISTS t_prep "
            "(id INT PRIMARY KEY, v VARCHAR(20), d DECIMAL(6,2), at DATETIME(6))"
        )
        cur.execute("DELETE FROM t_prep")
        for i in range(3):
            cur.execute(
                "INSERT INTO t_prep VALUES (?, ?, ?, ?)", (i, f"v{i}", Decimal("1.50"), WHEN)
            )
        cur.execute("SELECT id, v, d, at FROM t_prep WHERE id >= ? ORDER BY id", (1,))
        rows = cur.fetchall()
        assert [tuple(r) for r in rows] == [
            (1, "v1", Decimal("1.50"), WHEN),
            (2, "v2", Decimal("1.50"), WHEN),
        ]
        cur.close()
    finally:
        conn.close()


async def _run_async(conn: Any, table: str) -> None:
    """The same work for the asyncio drivers, whose APIs match."""
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"DROP TABLE IF EXISTS {table}")
            await cur.execute(f"CREATE TABLE {table} ({COLUMNS})")
            await cur.execute(
                f"INSERT INTO {table} (label, amount, at, payload, doc, maybe) "
                "VALUES (%s,%s,%s,%s,%s,%s)",
                (TEXT, Decimal("12345678.1234"), WHEN, BLOB, json.dumps(DOC), None),
            )
            assert cur.rowcount == 1
            assert cur.lastrowid == 1
            await cur.execute(f"SELECT label, amount, at, payload, doc, maybe FROM {table}")
            _check_row(await cur.fetchone())
            await conn.begin()
            await cur.execute(f"DELETE FROM {table}")
            await conn.rollback()
            await cur.execute(f"SELECT COUNT(*) FROM {table}")
            assert (await cur.fetchone())[0] == 1
            await cur.execute(f"DROP TABLE {table}")
    finally:
        conn.close()


async def test_aiomysql(proxy: ProxyEnv) -> None:
    conn = await aiomysql.connect(
        host=proxy.host,
        port=proxy.port,
        user="easydb",
        password=PASSWORDS["easydb"],
        db="easydb",
        autocommit=True,
    )
    await _run_async(conn, "t_aiomysql")


async def test_asyncmy(proxy: ProxyEnv) -> None:
    conn = await asyncmy.connect(
        host=proxy.host,
        port=proxy.port,
        user="easydb",
        password=PASSWORDS["easydb"],
        database="easydb",
        autocommit=True,
    )
    await _run_async(conn, "t_asyncmy")


def _description(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        cur.fetchall()
        return [tuple(d) for d in cur.description]


def test_metadata_identical_to_direct(proxy: ProxyEnv) -> None:
    """Column metadata (names, types, lengths, flags, decimals) as a direct connection sees it."""
    via = proxy.connect()
    direct = pymysql.connect(
        host=proxy.shards[0].host,
        port=proxy.shards[0].port,
        user=proxy.shards[0].user,
        password=proxy.shards[0].password,
        database="easydb",
        autocommit=True,
    )
    try:
        with via.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS t_meta")
            cur.execute(f"CREATE TABLE t_meta ({COLUMNS})")
            cur.execute("INSERT INTO t_meta (label, amount) VALUES ('x', 1.5)")
        sql = (
            "SELECT id, label, amount, at, payload, doc, maybe, NOW(6) AS n, 1+1 AS two FROM t_meta"
        )
        assert _description(via, sql) == _description(direct, sql)
        # The raw column definitions too, field by field, as PyMySQL decodes them.
        with via.cursor() as a, direct.cursor() as b:
            a.execute(sql)
            b.execute(sql)
            fields_a = [vars(f) for f in a._result.fields]
            fields_b = [vars(f) for f in b._result.fields]
        assert fields_a == fields_b
    finally:
        via.close()
        direct.close()


def test_help_as_direct(proxy: ProxyEnv) -> None:
    """``HELP 'topic'`` is relayed (it was refused, 1235): the rows a direct connection gets."""
    via = proxy.connect()
    direct = connect_admin(proxy.shards[0])
    try:
        for sql in ("HELP 'select'", "HELP 'contents'"):
            with via.cursor() as a, direct.cursor() as b:
                a.execute(sql)
                b.execute(sql)
                assert a.fetchall() == b.fetchall()
                assert [vars(f) for f in a._result.fields] == [vars(f) for f in b._result.fields]
    finally:
        via.close()
        direct.close()


@pytest.mark.parametrize(
    ("charset", "collation"), [("utf8mb4", 45), ("utf8mb3", 33), ("latin1", 8)]
)
def test_proxy_answers_in_the_results_character_set(
    proxy: ProxyEnv, charset: str, collation: int
) -> None:
    """The result sets the proxy answers itself (SHOW DATABASES, SHOW GRANTS, SHOW
    PROCESSLIST) carry the collation of the session's character_set_results in their text
    columns, as MariaDB's do (they said utf8mb3_general_ci to every client)."""
    via = proxy.connect(charset=charset)
    direct = connect_admin(proxy.shards[0], charset=charset)
    try:
        for sql in ("SHOW DATABASES", "SHOW GRANTS", "SHOW PROCESSLIST"):
            found = []
            for conn in (via, direct):
                with conn.cursor() as cur:
                    cur.execute(sql)
                    cur.fetchall()
                    found.append({f.charsetnr for f in cur._result.fields if f.charsetnr != 63})
            assert found[0] == found[1] == {collation}, sql
    finally:
        via.close()
        direct.close()


def test_warnings_and_status_relayed(proxy: ProxyEnv) -> None:
    conn = proxy.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS t_warn")
            cur.execute("CREATE TABLE t_warn (v TINYINT)")
            cur.execute("SET SESSION sql_mode = ''")
            cur.execute("INSERT INTO t_warn VALUES (1000)")
            assert conn.warning_count == 1 if hasattr(conn, "warning_count") else True
            cur.execute("SHOW WARNINGS")
            rows = cur.fetchall()
            assert rows and rows[0][1] == 1264
            conn.begin()
            assert conn.get_server_info()
            cur.execute("SELECT 1")
            assert conn.server_status & 1  # SERVER_STATUS_IN_TRANS relayed from the shard
            conn.rollback()
    finally:
        conn.close()


def test_multiple_result_sets(proxy: ProxyEnv) -> None:
    conn = proxy.connect(client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1; SELECT 2, 3")
            assert cur.fetchall() == ((1,),)
            assert cur.nextset()
            assert cur.fetchall() == ((2, 3),)
            assert not cur.nextset()
    finally:
        conn.close()


def test_large_result_streamed(proxy: ProxyEnv) -> None:
    conn = proxy.connect(cursorclass=pymysql.cursors.SSCursor)
    try:
        with conn.cursor() as cur:
            digits = (
                "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 "
                "UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 "
                "UNION ALL SELECT 8 UNION ALL SELECT 9)"
            )
            cur.execute(
                "SELECT a.d + 10*b.d + 100*c.d + 1000*e.d + 10000*f.d + 1, REPEAT('x', 50) "
                f"FROM {digits} a, {digits} b, {digits} c, {digits} e, {digits} f"
            )
            count = 0
            total = 0
            for row in cur:
                count += 1
                total += row[0]
        assert count == 100_000
        assert total == 100_000 * 100_001 // 2
    finally:
        conn.close()


def test_prepared_long_data(proxy: ProxyEnv) -> None:
    """COM_STMT_SEND_LONG_DATA: a file-like parameter is streamed in chunks."""
    import io

    conn = proxy.connector(autocommit=True)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("CREATE TABLE IF NOT EXISTS t_long (id INT PRIMARY KEY, data LONGBLOB)")
        cur.execute("DELETE FROM t_long")
        blob = bytes(range(256)) * 4096  # 1 MiB, sent in COM_STMT_SEND_LONG_DATA chunks
        cur.execute("INSERT INTO t_long VALUES (?, ?)", (1, io.BytesIO(blob)))
        cur.execute("SELECT data FROM t_long WHERE id = ?", (1,))
        assert bytes(cur.fetchone()[0]) == blob
        cur.close()
    finally:
        conn.close()


def test_prepared_transaction_statements(proxy: ProxyEnv) -> None:
    """BEGIN / COMMIT and SET prepared server-side, as sysbench's oltp_read_only does."""
    conn = proxy.connector(user="easydb_RO")
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("BEGIN")
        cur.execute("SELECT 1")
        assert cur.fetchall() == [(1,)]
        cur.execute("COMMIT")
        cur.execute("SET @x = 5")
        # A prepared SET is relayed too; the proxy reads the new state back from the shard.
        cur.execute("SET NAMES latin1")
        cur.execute("SELECT @@character_set_client")
        assert cur.fetchall() == [("latin1",)]
    finally:
        conn.close()
