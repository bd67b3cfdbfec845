"""Sixth adversarial pass: a statement the proxy reads one way and MariaDB 10.11 another,
tried against the real shards.

Findings (each test fails without its fix):

* A mirror's database-level grant named its physical database as a GRANT pattern: MariaDB
  reads ``_`` and ``%`` in ``GRANT ... ON `wc_a1`.*`` as wildcards, so the mirror of every
  account of database ``wc_a1`` held the same privileges on any database ``wcXa1`` on its shard
  (another tenant's, or a sharded database's physical ``x_0000`` on ``xa0000``).
  information_schema, which the shard filters by the mirror's grants, showed that tenant's
  tables and columns through the proxy; the wildcards are escaped now (``wc\\_a1``).
* DDL's identity calls are left to the shard (a column's DEFAULT CURRENT_USER() must stay a
  call), and so were those of a stored query: ``CREATE TABLE t AS SELECT CURRENT_USER(),
  USER(), CONNECTION_ID()`` kept the mirror's name, the shard's user@localhost and its
  connection id, and ``CREATE VIEW v AS SELECT CURRENT_USER`` showed the mirror's name to
  every reader. Refused now (1235).
* In a sharded database the proxy answers DATABASE() / SCHEMA() with the logical name, but
  MariaDB calls its native function backquoted too: `` `DATABASE`() ``, `` `schema`() ``,
  `` `SCHEMAS`() `` reached the shard, which named its physical database (adv6db_0000, or
  adv6db_0001 from a routed statement's partition). Answered like the bare words now.

Held (kept as cheap regression checks): ``@@global . hostname`` and the other spellings
MariaDB reads as one scoped variable are refused by the proxy, never the shard's value.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pymysql
import pytest

from proxy.manage.provision import create_database
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database
from tests.e2e.test_enforcement import error_of, rows

OWN = "wc_a1"  # the tenant's database: '_' is a wildcard in a GRANT's database name
VICTIM = "wcxa1"  # another tenant's database on the same shard, which the pattern matches
PASSWORD = "Wild#card1"


def _database(proxy: ProxyEnv, name: str) -> None:
    with proxy.catalog() as catalog:
        asyncio.run(create_database(proxy.config, catalog, name, "s0", PASSWORD, PASSWORD + "r"))
    deadline = time.monotonic() + 10
    while proxy.server.ctx.catalog.snapshot().database(name) is None:
        assert time.monotonic() < deadline, "the proxy never saw the new database"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def wildcard(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    for name in (OWN, VICTIM):
        _database(proxy, name)
    shard = connect_admin(proxy.shards[0])
    try:
        with shard.cursor() as cur:
            cur.execute(f"CREATE TABLE {VICTIM}.victim_secret (v TEXT)")
            cur.execute(f"INSERT INTO {VICTIM}.victim_secret VALUES ('TOPSECRET')")
            cur.execute(f"CREATE TABLE {OWN}.mine (id INT)")
        yield proxy
    finally:
        with proxy.catalog() as catalog:
            for name in (OWN, VICTIM):
                catalog.drop_database(name)
        with shard.cursor() as cur:
            for name in (OWN, VICTIM):
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
        shard.close()


def test_a_mirror_holds_nothing_on_a_database_its_name_matches_as_a_pattern(
    wildcard: ProxyEnv,
) -> None:
    conn = wildcard.connect(OWN, PASSWORD, database=OWN)
    try:
        seen = rows(
            conn,
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema') ORDER BY 1, 2",
        )
        assert seen == [(OWN, "mine")]
        assert rows(
            conn, f"SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{VICTIM}'"
        ) == [(0,)]
        assert rows(
            conn,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME NOT IN ('information_schema', 'performance_schema')",
        ) == [(OWN,)]
    finally:
        conn.close()


# MariaDB reads a system variable's scope and name as separate tokens: whitespace, a comment,
# a quoted name or string may come between them. Each names the shard's own value.
SCOPED_SPELLINGS = [
    "SELECT @@global . hostname",
    "SELECT @@GLOBAL/**/.hostname",
    "SELECT @@global.`hostname`",
    "SELECT @@global.'hostname'",
    "SELECT @@global .port",
    "SELECT @@global/*!.datadir*/",
]


def test_a_scoped_identity_variable_spelt_apart_is_never_the_shards(proxy: ProxyEnv) -> None:
    """Held: the proxy refuses each (1064 or 1235); never the shard's value."""
    shard = connect_admin(proxy.shards[0])
    conn = proxy.connect()
    try:
        for sql in SCOPED_SPELLINGS:
            on_shard = rows(shard, sql)
            try:
                answer = rows(conn, sql)
            except pymysql.err.MySQLError as exc:
                assert exc.args[0] in (1064, 1235), (sql, exc.args)  # the proxy's refusal
            else:
                assert answer != on_shard, (sql, answer)
    finally:
        conn.close()
        shard.close()


# A stored query evaluates its calls on the shard, as the mirror, whenever it runs: the table
# kept the mirror's name (sgm_...@%), the shard's user@localhost and its connection's id; the
# view answered the mirror's name to every reader.
STORED_IDENTITY = [
    "CREATE TABLE adv6_t AS SELECT CURRENT_USER() AS u, USER() AS v, CONNECTION_ID() AS c",
    "CREATE TABLE adv6_t (u VARCHAR(200)) SELECT SESSION_USER() AS u",
    "CREATE TABLE adv6_t AS (SELECT 1 AS a UNION SELECT CURRENT_USER)",
    "CREATE TABLE adv6_t AS VALUES (SYSTEM_USER())",
    "CREATE TABLE adv6_t WITH x AS (SELECT CURRENT_USER() AS u) SELECT * FROM x",
    "CREATE VIEW adv6_v AS SELECT CURRENT_USER AS u",
    "CREATE OR REPLACE SQL SECURITY INVOKER VIEW adv6_v AS SELECT USER() AS u",
    "CREATE DEFINER = CURRENT_USER VIEW adv6_v AS SELECT 1 FROM DUAL WHERE CURRENT_USER() = 'x'",
    "CREATE VIEW adv6_v AS VALUES (CONNECTION_ID())",
    "CREATE TABLE adv6_t AS SELECT @@hostname AS h, @@global.port AS p",
]


def test_identity_calls_in_a_stored_query_are_refused(proxy: ProxyEnv) -> None:
    conn = proxy.connect()
    try:
        for sql in STORED_IDENTITY:
            assert error_of(conn, sql)[0] in (1064, 1235), sql  # the proxy's refusal
            assert not rows(conn, "SHOW TABLES LIKE 'adv6\\_%'"), sql
        # Before the query, the proxy's DEFINER = CURRENT_USER and a column's DEFAULT
        # CURRENT_USER() (the shard's, a known gap) are as they were.
        rows(conn, "CREATE DEFINER = CURRENT_USER VIEW adv6_v AS SELECT 1 AS one")
        rows(conn, "CREATE TABLE adv6_t (u VARCHAR(200) DEFAULT CURRENT_USER()) SELECT 'x' AS u")
        assert rows(conn, "SELECT u FROM adv6_t") == [("x",)]
        assert rows(conn, "SELECT * FROM adv6_v") == [(1,)]
        # ... and a query that is not stored is answered by the proxy.
        rows(conn, "INSERT INTO adv6_t SELECT CURRENT_USER()")
        assert rows(conn, "SELECT u FROM adv6_t ORDER BY u") == [("easydb@%",), ("x",)]
    finally:
        rows(conn, "DROP TABLE IF EXISTS adv6_t")
        rows(conn, "DROP VIEW IF EXISTS adv6_v")
        conn.close()


# ------------------------------------------------------------ a sharded database's DATABASE()

SHARDED = "adv6db"
SHARDED_PASSWORD = "Adversary#pass6"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE t (id bigint NOT NULL PRIMARY KEY, x varchar(20)) DBPARTITION BY HASH(id)",
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    ]
    with sharded_database(proxy, SHARDED, SHARDED_PASSWORD, setup=setup) as env:
        yield env


def test_a_backquoted_database_call_names_the_logical_database(sharded: ProxyEnv) -> None:
    """MariaDB calls its native DATABASE() backquoted too (`DATABASE`(), `schema`(), even
    `SCHEMAS`()): the proxy answered only the bare words, and the shard named its physical
    database (adv6db_0000, adv6db_0001 from a routed statement's partition)."""
    conn = sharded.connect(SHARDED, SHARDED_PASSWORD, database=SHARDED)
    try:
        for call in ("`DATABASE`()", "`schema`()", "`SCHEMAS` ( )", "DATABASE()"):
            with conn.cursor() as cur:
                cur.execute(f"SELECT {call}")
                assert cur.fetchall() == ((SHARDED,),), call
                assert cur.description[0][0] == call
        for _ in range(3):  # (again: the shape cached, the fast path's)
            assert rows(conn, "SELECT x, `DATABASE`() FROM t WHERE id = 1") == [("a", SHARDED)]
            assert rows(conn, "SELECT `schema`()") == [(SHARDED,)]
            assert rows(conn, "SELECT 1 FROM DUAL WHERE `SCHEMA`() LIKE '%\\_0000'") == []
    finally:
        conn.close()
