"""An attacker's review of the memos on the hot path (the fast key's shape cache, the session's
memo of decisions, the text shapes the sessions share, the routing and lexing memos, the
prepared statements' analysis), through real clients against real MariaDB shards. The account
``memoreader`` holds SELECT on table ``t`` only; a memo whose key misses something that changes
how MariaDB reads the same bytes would let it run a reading the proxy never authorized.

Findings (each test fails without its fix):

* A prepared statement's text is read by the shard again under the session's state *then*:
  on a sharded database's other partitions the first time an execution is routed there, on a
  new backend connection after the session's one was lost or taken. The proxy's analysis was
  of the reading at COM_STMT_PREPARE: after ``SET sql_mode = 'NO_BACKSLASH_ESCAPES'`` the text
  ``SELECT v, 'a\\', @@hostname -- '`` + newline + ``FROM t WHERE id = ?`` (two columns: a
  string holding a quote) ran as three, the shard's own ``@@hostname`` among them (a value
  the proxy answers itself). Refused now (1235) when the state reads the text otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

PASSWORD = "MemoAdv#pass1"
DB = "shmemo"
READER = "memoreader"
READER_PASSWORD = "Memo#reader1"
PLAIN_READER = "memoplain"  # (an account belongs to one database's administrator)
PLAIN = "easydb"
# Under the default sql_mode: two columns, v and a string; under NO_BACKSLASH_ESCAPES the
# string ends at the backslash and the shard's @@hostname is a third column.
TWO_READINGS = "SELECT v, 'a\\', @@hostname -- '\nFROM {t} WHERE id = ?"
PREPARED_READING = "a', @@hostname -- "
REFUSED_OTHERWISE = 1235


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD):
        conn = proxy.connect(DB, PASSWORD, database=DB)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE t (id bigint NOT NULL, v varchar(40), PRIMARY KEY (id))"
                    " DBPARTITION BY HASH(id)"
                )
                cur.execute(
                    "CREATE TABLE secret (id bigint NOT NULL, x varchar(40), PRIMARY KEY (id))"
                    " DBPARTITION BY HASH(id)"
                )
                cur.execute("INSERT INTO t VALUES (1, 'v1'), (2, 'v2'), (3, 'v3'), (4, 'v4')")
                cur.execute("INSERT INTO secret VALUES (1, 's1'), (2, 's2'), (3, 's3'), (4, 's4')")
                cur.execute(f"CREATE USER '{READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
                cur.execute(f"GRANT SELECT ON {DB}.t TO '{READER}'@'%'")
        finally:
            conn.close()
        yield proxy


@pytest.fixture(scope="module")
def plain(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """The same tables and account on the unsharded database ``easydb``."""
    with proxy.connect() as owner, owner.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS ma_t, ma_secret")
        cur.execute("CREATE TABLE ma_t (id bigint PRIMARY KEY, v varchar(40))")
        cur.execute("CREATE TABLE ma_secret (id bigint PRIMARY KEY, x varchar(40))")
        cur.execute("INSERT INTO ma_t VALUES (1, 'v1'), (2, 'v2'), (3, 'v3'), (4, 'v4')")
        cur.execute("INSERT INTO ma_secret VALUES (1, 's1'), (2, 's2')")
        cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER}'@'%'")
        cur.execute(f"CREATE USER '{PLAIN_READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
        cur.execute(f"GRANT SELECT ON {PLAIN}.ma_t TO '{PLAIN_READER}'@'%'")
    try:
        yield proxy
    finally:
        with proxy.connect() as owner, owner.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER}'@'%'")
            cur.execute("DROP TABLE IF EXISTS ma_t, ma_secret")


def _reader(
    env: ProxyEnv, database: str = DB, **kwargs: Any
) -> pymysql.connections.Connection[Any]:
    return env.connect(READER, READER_PASSWORD, database=database, **kwargs)


def _binary(env: ProxyEnv, database: str = DB) -> BinaryClient:
    user = READER if database == DB else PLAIN_READER
    return BinaryClient(env.port, user, READER_PASSWORD, database)


def _lose_backend(env: ProxyEnv, client: BinaryClient) -> None:
    """The shard's administrator kills the session's backend connection (nothing but
    prepared statements on it: the session goes on, preparing them again where needed)."""
    session = env.server.ctx.sessions[client.thread_id]
    backend = session.link.conn or session.link.affine
    assert backend is not None
    admin = connect_admin(env.shards[0])
    try:
        with admin.cursor() as cur:
            cur.execute(f"KILL {backend.thread_id}")
    finally:
        admin.close()


# -- a prepared statement read again under another sql_mode --------------------------------


def _executions(client: BinaryClient, sql: str, keys: list[int]) -> list[object]:
    statement = client.prepare(sql)
    assert statement.columns == 2
    out: list[object] = []
    for key in keys:
        try:
            out.append(client.execute(statement, [key]))
        except ServerError as error:
            out.append(error.errno)
    return out


@pytest.mark.parametrize("where", ["sharded", "plain"])
def test_a_prepared_statement_is_not_read_under_another_sql_mode(
    request: pytest.FixtureRequest, where: str
) -> None:
    """Prepared under the default sql_mode, executed under NO_BACKSLASH_ESCAPES -- on a
    sharded database on partitions it was not prepared on yet, on an unsharded one after its
    backend connection was lost -- it is refused (the shard would prepare its text again and
    read three columns, the shard's @@hostname among them); under the sql_mode it was
    prepared under it runs again, and a text every sql_mode reads alike runs under both."""
    env: ProxyEnv = request.getfixturevalue(where)
    database, table = (DB, "t") if where == "sharded" else (PLAIN, "ma_t")
    client = _binary(env, database)
    try:
        sql = TWO_READINGS.format(t=table)
        statement = client.prepare(sql)
        alike = client.prepare(f"SELECT v FROM {table} WHERE id = ?")
        assert client.execute(statement, [1]) == [("v1", PREPARED_READING)]
        client.query("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")
        if where == "plain":
            _lose_backend(env, client)
        for key in (1, 2, 3, 4):
            with pytest.raises(ServerError) as refused:
                client.execute(statement, [key])
            assert refused.value.errno == REFUSED_OTHERWISE
            assert client.execute(alike, [key]) == [(f"v{key}",)]
        client.query("SET sql_mode = DEFAULT")
        for key in (1, 2, 3, 4):
            assert client.execute(statement, [key]) == [(f"v{key}", PREPARED_READING)]
    finally:
        client.close()
