"""Sixth adversarial pass: a statement the proxy reads one way and MariaDB 10.11 another,
tried against the real shards.

Findings (each test fails without its fix):

* A mirror's database-level grant named its physical database as a GRANT pattern: MariaDB
  reads ``_`` and ``%`` in ``GRANT ... ON `wc_a1`.*`` as wildcards, so the mirror of every
  account of database ``wc_a1`` held the same privileges on any database ``wcXa1`` on its shard
  (another tenant's, or a sharded database's physical ``x_0000`` on ``xa0000``).
  information_schema, which the shard filters by the mirror's grants, showed that tenant's
  tables and columns through the proxy; the wildcards are escaped now (``wc\\_a1``).
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
from tests.e2e.test_enforcement import rows

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
