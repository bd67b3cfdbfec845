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
from tests.e2e.sharded import physical, sharded_database
from tests.e2e.tools import error_of

PASSWORD = "ShAdv7#pass1"
DB = "shav7"
TABLE = "CREATE TABLE t (k varchar(20) NOT NULL, v int, PRIMARY KEY (k)) DEFAULT CHARSET utf8mb4"
ROWS = "INSERT INTO t VALUES " + ", ".join(f"('k{n}', {n})" for n in range(8))
_VAR_STRING = 0xFD
EMOJI = "\U0001f600"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD, setup=[TABLE + " DBPARTITION BY HASH(k)", ROWS]):
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
