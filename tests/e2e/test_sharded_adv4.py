"""Open defects of sharded databases found by review, on two real MariaDB shards: what the
client sees of a sharded database must be what MariaDB shows of an unsharded one -- the note
of a CREATE TABLE IF NOT EXISTS, a partition's failure named in the client's terms.

The layout: ``adv4db`` over s0 and s1 with 4 physical databases (``adv4db_0000``,
``adv4db_0001`` on s0; ``adv4db_0002``, ``adv4db_0003`` on s1); ``DBPARTITION BY HASH(id)``:
db = |id| mod 4.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import kill_connections, sharded_database

PASSWORD = "Adversary#pass4"
DB = "adv4db"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE ja (id int NOT NULL PRIMARY KEY, x int) DBPARTITION BY HASH(id)",
        "INSERT INTO ja VALUES (0, 7), (1, 7), (2, 7), (3, 7)",
        "CREATE TABLE bc (id int PRIMARY KEY) BROADCAST",
        "CREATE TABLE single_t (id int PRIMARY KEY)",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


def _client(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB, **kwargs)


# ------------------------------------------------------------- CREATE TABLE IF NOT EXISTS


def test_create_if_not_exists_of_a_table_there_is_leaves_mariadbs_note(sharded: ProxyEnv) -> None:
    """MariaDB answers CREATE TABLE IF NOT EXISTS of a table there is with an OK of one
    warning, which SHOW WARNINGS shows: Note 1050 naming the table. So does a sharded
    database, for a sharded, a broadcast and a single table (the note names the logical
    table); the next statement's warnings are its own again."""
    plain = sharded.connect()  # an unsharded database: MariaDB's own answer, relayed
    try:
        with plain.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS adv4_exists (id int)")
            cur.execute("CREATE TABLE IF NOT EXISTS adv4_exists (id int)")
            assert cur.warning_count == 1
            cur.execute("SHOW WARNINGS")
            expected = cur.fetchall()
            cur.execute("DROP TABLE adv4_exists")
        assert expected == (("Note", 1050, "Table 'adv4_exists' already exists"),)
    finally:
        plain.close()
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for table, clause in (
                ("ja", "DBPARTITION BY HASH(id)"),
                ("bc", "BROADCAST"),
                ("single_t", ""),
            ):
                cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY) {clause}")
                assert cur.warning_count == 1, table
                cur.execute("SHOW WARNINGS")
                assert cur.fetchall() == (("Note", 1050, f"Table '{table}' already exists"),), table
                cur.execute("SHOW COUNT(*) WARNINGS")
                assert cur.fetchall() == ((1,),)
                cur.execute("SELECT COUNT(*) FROM ja")
                assert cur.fetchall() == ((4,),)
                cur.execute("SHOW WARNINGS")
                assert cur.fetchall() == ()
    finally:
        conn.close()


# ------------------------------------------------------------ a partition's failure, named


def _kill_partition(env: ProxyEnv, index: int) -> None:
    """Kill the proxy's connections to physical database ``index`` on its shard."""
    kill_connections(env.shards, DB, index)
    time.sleep(0.3)  # (the proxy's end of the connection sees it closed)


def _failure(cur: Any, sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.err.MySQLError) as failed:
        cur.execute(sql)
    return failed.value.args[0], failed.value.args[1]


@pytest.mark.parametrize(
    ("begin", "then", "lost_with"),
    [
        # a transaction's branch lost, found when the transaction reaches it again
        ("BEGIN", "UPDATE ja SET x = 10", "an open transaction"),
        # ... or at its COMMIT (XA END on the lost branch)
        ("BEGIN", "COMMIT", ""),
        # a partition's table locks lost
        ("LOCK TABLES ja WRITE", "SELECT COUNT(*) FROM ja", "table locks"),
    ],
)
def test_a_lost_partition_is_named_by_partition_and_shard(
    sharded: ProxyEnv, begin: str, then: str, lost_with: str
) -> None:
    """A partition's connection lost under a transaction or table locks: 2013 saying which
    partition and shard, as SHOW NODE shows them (``partition 3 on shard s1``), never the
    physical database's name (``adv4db_0003``), which is not the client's."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute(begin)
            cur.execute("UPDATE ja SET x = 9" if begin == "BEGIN" else "SELECT * FROM ja")
            _kill_partition(sharded, 3)
            errno, message = _failure(cur, then)
        assert errno == 2013, message
        assert "partition 3 on shard s1" in message, message
        assert f"{DB}_" not in message, message
        assert lost_with in message, message
    finally:
        conn.close()
    check = _client(sharded)  # (nothing left behind: every row as it was)
    try:
        with check.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM ja WHERE x = 7")
            assert cur.fetchall() == ((4,),)
    finally:
        check.close()
