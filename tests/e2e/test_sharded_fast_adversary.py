"""Conditions a point statement's shape hides, on two real MariaDB shards: a WHERE that reads
as fixing the shard key to one literal but does not, which routing -- and with it the text
fast path's shapes (``FastPath.sharded_text``) and the prepared fast path's key slots
(``FastPath.routed_execute``), made from its reading -- sent to one partition, reading and
writing only that partition's rows. The rows are compared with a plain database holding the
same table on s0 (what MariaDB answers), each statement repeated so the fast paths would serve
it.

The layout: ``shfa`` over s0 and s1 with 4 physical databases, ``t`` by HASH(id).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, plain_twin, sharded_database

PASSWORD = "ShFast#adv1"
DB = "shfa"
TABLE = "CREATE TABLE t (id bigint NOT NULL, v varchar(20), n bigint, window int, PRIMARY KEY (id))"
ROWS = "INSERT INTO t VALUES " + ", ".join(f"({k}, 'v{k}', {k}, {k % 2})" for k in range(8))


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [TABLE + " DBPARTITION BY HASH(id)", ROWS]
    with sharded_database(proxy, DB, PASSWORD, setup=setup), plain_twin(proxy, DB, [TABLE, ROWS]):
        yield proxy


def _client(env: ProxyEnv) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB)


def _plain(env: ProxyEnv, sql: str) -> list[tuple[Any, ...]]:
    """What MariaDB answers ``sql`` with, the table in one database."""
    admin = connect_admin(env.shards[0], database=DB)
    try:
        with admin.cursor() as cur:
            cur.execute(sql)
            return sorted(tuple(row) for row in cur.fetchall())
    finally:
        admin.close()


def _every_time(env: ProxyEnv, sql: str, times: int = 3) -> None:
    """``sql`` (a SELECT) answers as MariaDB does, ``times`` times in a row on one connection
    (the fast path's from the second on, had it a shape for it)."""
    expected = _plain(env, sql)
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            for _ in range(times):
                cur.execute(sql)
                assert sorted(tuple(row) for row in cur.fetchall()) == expected, sql
    finally:
        conn.close()


def _updates(env: ProxyEnv, sql: str, undo: str) -> None:
    """``sql`` (an UPDATE) changes the rows it changes on MariaDB, three times ("Rows
    matched" with CLIENT_FOUND_ROWS), each undone by ``undo``."""
    found_rows = pymysql.constants.CLIENT.FOUND_ROWS
    admin = connect_admin(env.shards[0], database=DB, client_flag=found_rows)
    try:
        with admin.cursor() as cur:
            expected = cur.execute(sql)
            cur.execute(undo)
    finally:
        admin.close()
    conn = env.connect(DB, PASSWORD, database=DB, client_flag=found_rows)
    try:
        with conn.cursor() as cur:
            for _ in range(3):
                assert cur.execute(sql) == expected, sql
                cur.execute(undo)
    finally:
        conn.close()


def test_double_pipe_below_and_does_not_fix_the_key(sharded: ProxyEnv) -> None:
    """By default ``||`` is OR, which binds less tightly than AND: ``id = 3 AND n = 1 || 1`` is
    ``(id = 3 AND n = 1) OR 1``, every row. Routing split the condition at AND alone and took
    ``id = 3`` as fixing the key: the statement (text, its shape on the fast path, prepared)
    read and wrote key 3's partition only."""
    env = sharded
    assert len(_plain(env, "SELECT v FROM t WHERE id = 3 AND n = 1 || 1")) == 8
    for key in (3, 2, 5):
        _every_time(env, f"SELECT v FROM t WHERE id = {key} AND n = 1 || 1")
        _every_time(env, f"SELECT COUNT(*) FROM t WHERE id = {key} && n = 1 || n = 2")
    _updates(
        env,
        "UPDATE t SET n = n + 100 WHERE id = 3 AND n = -1 || 1",
        "UPDATE t SET n = n - 100 WHERE n >= 100",
    )
    _prepared_reads_every_row(
        env,
        "SELECT v FROM t WHERE id = ? AND n = 1 || 1",
        (3, 6),
        (True, False, False, True, False),
    )


def test_a_column_named_window_does_not_end_the_where(sharded: ProxyEnv) -> None:
    """MariaDB does not reserve WINDOW: ``window`` may name a column. Routing ended the WHERE
    at it as at a WINDOW clause, so ``id = 3 AND window = 1 OR 1`` (every row) read as
    ``id = 3 AND``: key 3's partition only."""
    env = sharded
    assert len(_plain(env, "SELECT v FROM t WHERE id = 3 AND window = 1 OR 1")) == 8
    for key in (3, 2, 5):
        _every_time(env, f"SELECT v FROM t WHERE id = {key} AND window = 1 OR 1")
    _every_time(env, "SELECT v, window FROM t WHERE id = 3 AND window = 1")
    _updates(
        env,
        "UPDATE t SET n = n + 100 WHERE id = 3 AND window = 7 OR 1",
        "UPDATE t SET n = n - 100 WHERE n >= 100",
    )
    _prepared_reads_every_row(
        env, "SELECT v FROM t WHERE id = ? AND window = 1 OR 1", (3,), (True, False, False)
    )


def _prepared_reads_every_row(
    env: ProxyEnv, sql: str, keys: tuple[int, ...], sends: tuple[bool, ...]
) -> None:
    """``sql`` prepared, executed with each of ``keys`` per element of ``sends`` (whether
    that execution sends the parameter types: those that do not take the fast path), reads
    every row of ``t``."""
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        statement = client.prepare(sql)
        expected = [(f"v{k}",) for k in range(8)]
        for send_types in sends:
            for key in keys:
                rows = client.execute(statement, [key], send_types=send_types)
                assert isinstance(rows, list)
                assert sorted(rows) == expected
    finally:
        client.close()


def _misplaced(env: ProxyEnv) -> list[tuple[int, int]]:
    """(physical database, id) of each row of ``t`` not in the physical database its key
    places it in (|id| mod 4), read on the shards themselves."""
    found = []
    for index in range(4):
        for (key,) in physical(env, DB, index, "SELECT id FROM t"):
            if abs(key) % 4 != index:
                found.append((index, key))
    return found


# Parameter types MariaDB reads as NULL without taking the value's bytes, with a value of the
# size the proxy read for it: INT24 (4 bytes), YEAR (2), BIT and GEOMETRY (length-encoded).
SWALLOWED = [
    (0x09, struct.pack("<i", 2)),
    (0x0D, struct.pack("<h", 2)),
    (0x10, b"\x03\x02\x00\x00"),
    (0xFF, b"\x03\x02\x00\x00"),
]


@pytest.mark.parametrize(("code", "raw"), SWALLOWED)
def test_parameters_are_read_as_the_shard_reads_them(
    sharded: ProxyEnv, code: int, raw: bytes
) -> None:
    """A parameter of a type MariaDB reads as NULL without taking its bytes (INT24, YEAR,
    BIT, GEOMETRY) before the key: the proxy read its value and then the key where the client
    put it, and placed the row by that key, while the shard read the key from the bytes
    before it -- another key, stored in a partition that is not its own (and then not found
    by it). Refused now (1210, as MariaDB refuses the types it cannot read), every time (the
    first execution and those the fast path sees, with the types and without)."""
    env = sharded
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        insert = client.prepare("INSERT INTO t (n, id, v) VALUES (?, ?, 'swallowed')")
        for send_types in (True, False, False, True):
            key = (struct.pack("<q", 9),) if send_types else (struct.pack("<q", 13),)
            with pytest.raises(ServerError) as refused:
                client.execute_typed(insert, [(code, raw), (0x08, key[0])], send_types=send_types)
            assert refused.value.errno == 1210
        # The statement still runs with types the shard reads.
        assert client.execute_typed(insert, [(0x08, struct.pack("<q", 1)), (0x08, key[0])]) == 1
        select = client.prepare("SELECT v FROM t WHERE n = ? AND id = ?")
        with pytest.raises(ServerError) as refused:
            client.execute_typed(select, [(code, raw), (0x08, key[0])])
        assert refused.value.errno == 1210
    finally:
        client.query("DELETE FROM t WHERE v = 'swallowed'")
        client.close()
    assert _misplaced(env) == []


def test_an_execution_cut_short_is_refused_as_the_command_loop_refuses_it(
    sharded: ProxyEnv,
) -> None:
    """An execution whose string parameter's length is missing or cut short: 1210, as the
    command loop answers, whether the fast path sees it first or not."""
    env = sharded
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        select = client.prepare("SELECT v FROM t WHERE id = ?")
        for raw in (b"", b"\xfc\x01", b"\xfe\x01\x00"):
            for send_types in (True, False):
                with pytest.raises(ServerError) as refused:
                    client.execute_typed(select, [(0xFD, raw)], send_types=send_types)
                assert refused.value.errno == 1210
            assert client.execute_typed(select, [(0xFD, b"\x013")]) == [("v3",)]
    finally:
        client.close()


def test_a_temporal_parameters_length_is_read_length_encoded(sharded: ProxyEnv) -> None:
    """MariaDB reads a DATE parameter's length as any other length (``\\xfc`` and two bytes:
    4); the proxy read the one byte as the length (252 bytes), and then the key from inside
    the next parameter: an UPDATE of key 1 went to key 258's partition (and changed nothing
    there), the client's packet being what the shard read."""
    env = sharded
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    date = b"\xfc\x04\x00" + struct.pack("<HBB", 2024, 1, 2)
    # 250 bytes whose end the proxy read as a length-encoded string and its key's first byte.
    text = b"\xfa" + b"0" * 245 + b"\x03000\x02"
    try:
        update = client.prepare("UPDATE t SET v = ?, n = LENGTH(?) WHERE id = ?")
        for key, send_types in ((1, True), (5, False), (2, False), (6, True)):
            params: list[tuple[int, bytes | None]] = [
                (0x0A, date),
                (0xFD, text),
                (0x08, struct.pack("<q", key)),
            ]
            assert client.execute_typed(update, params, send_types=send_types) == 1
            assert client.execute(client.prepare("SELECT v, n FROM t WHERE id = ?"), [key]) == [
                ("2024-01-02", 250)
            ]
    finally:
        client.query("UPDATE t SET v = CONCAT('v', id), n = id WHERE v = '2024-01-02'")
        client.close()


def test_a_types_flag_neither_0_nor_1_is_refused(sharded: ProxyEnv) -> None:
    """MariaDB refuses an execution whose new_params_bound_flag is neither 0 nor 1 (1835); the
    proxy read it as "no types" and the types sent as values, and a multi-row INSERT split per
    partition (executions the proxy writes itself, with the types it read) stored rows from
    them."""
    env = sharded
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        insert = client.prepare(
            "INSERT INTO t (id, v, n) VALUES (?, 'flagged', 0), (?, 'flagged', 0)"
        )
        first: list[tuple[int, bytes | None]] = [
            (0x08, struct.pack("<q", 30)),
            (0x08, struct.pack("<q", 31)),
        ]
        assert client.execute_typed(insert, first) == 2
        client.query("DELETE FROM t WHERE v = 'flagged'")
        head = insert.statement_id.to_bytes(4, "little") + b"\x00" + (1).to_bytes(4, "little")
        # Flag 2, then types (TINY, TINY) and two one-byte values: 18 bytes after the flag, as
        # two 8-byte values and 2 more bytes for the proxy's reading by the last types.
        body = b"\x17" + head + b"\x00\x02" + b"\x01\x00\x01\x00" + bytes([32, 33]) + bytes(12)
        client._send(body)
        with pytest.raises(ServerError) as refused:
            client._check(client._read()[1])
        assert refused.value.errno in (1210, 1835)
        assert client.execute_typed(insert, first, send_types=False) == 2
    finally:
        client.query("DELETE FROM t WHERE v = 'flagged'")
        client.close()
    assert _misplaced(env) == []


def test_a_broadcast_write_counts_the_rows_of_one_copy(sharded: ProxyEnv) -> None:
    """A write to a broadcast table reaches every physical database's copy; its affected rows
    are the table's, as one MariaDB holding it answers (the proxy summed the copies': an
    INSERT of 2 rows said 8 over 4 physical databases)."""
    env = sharded
    statements = [
        "INSERT INTO bc VALUES (1, 'a'), (2, 'b')",
        "UPDATE bc SET v = 'c' WHERE id = 1",
        "UPDATE bc SET v = v",
        "INSERT INTO bc VALUES (2, 'x') ON DUPLICATE KEY UPDATE v = 'y'",
        "DELETE FROM bc WHERE id IN (1, 2)",
    ]
    admin = connect_admin(env.shards[0], database=DB)
    conn = _client(env)
    try:
        with admin.cursor() as plain, conn.cursor() as cur:
            plain.execute("CREATE TABLE bc (id int PRIMARY KEY, v varchar(10))")
            cur.execute("CREATE TABLE bc (id int PRIMARY KEY, v varchar(10)) BROADCAST")
            for sql in statements:
                assert cur.execute(sql) == plain.execute(sql), sql
            cur.execute("DROP TABLE bc")
    finally:
        conn.close()
        with admin.cursor() as plain:
            plain.execute("DROP TABLE IF EXISTS bc")
        admin.close()
