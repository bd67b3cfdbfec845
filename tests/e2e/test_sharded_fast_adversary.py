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

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

PASSWORD = "ShFast#adv1"
DB = "shfa"
TABLE = "CREATE TABLE t (id bigint NOT NULL, v varchar(20), n bigint, window int, PRIMARY KEY (id))"
ROWS = "INSERT INTO t VALUES " + ", ".join(f"({k}, 'v{k}', {k}, {k % 2})" for k in range(8))


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD, setup=[TABLE + " DBPARTITION BY HASH(id)", ROWS]):
        admin = connect_admin(proxy.shards[0])
        try:
            with admin.cursor() as plain:
                plain.execute(f"DROP DATABASE IF EXISTS {DB}")
                plain.execute(f"CREATE DATABASE {DB}")
                plain.execute(f"USE {DB}")
                plain.execute(TABLE)
                plain.execute(ROWS)
        finally:
            admin.close()
        try:
            yield proxy
        finally:
            admin = connect_admin(proxy.shards[0])
            try:
                with admin.cursor() as plain:
                    plain.execute(f"DROP DATABASE IF EXISTS {DB}")
            finally:
                admin.close()


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
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        statement = client.prepare("SELECT v FROM t WHERE id = ? AND n = 1 || 1")
        expected = [(f"v{k}",) for k in range(8)]
        for send_types in (True, False, False, True, False):
            for key in (3, 6):
                rows = client.execute(statement, [key], send_types=send_types)
                assert isinstance(rows, list)
                assert sorted(rows) == expected
    finally:
        client.close()


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
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        statement = client.prepare("SELECT v FROM t WHERE id = ? AND window = 1 OR 1")
        expected = [(f"v{k}",) for k in range(8)]
        for send_types in (True, False, False):
            rows = client.execute(statement, [3], send_types=send_types)
            assert isinstance(rows, list)
            assert sorted(rows) == expected
    finally:
        client.close()
