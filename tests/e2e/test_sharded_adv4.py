"""Open defects of sharded databases found by review, on two real MariaDB shards: what the
client sees of a sharded database must be what MariaDB shows of an unsharded one -- the note
of a CREATE TABLE IF NOT EXISTS, a partition's failure named in the client's terms.

The layout: ``adv4db`` over s0 and s1 with 4 physical databases (``adv4db_0000``,
``adv4db_0001`` on s0; ``adv4db_0002``, ``adv4db_0003`` on s1); ``DBPARTITION BY HASH(id)``:
db = |id| mod 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

PASSWORD = "Adversary#pass4"
DB = "adv4db"
SHARD_OF = {0: 0, 1: 0, 2: 1, 3: 1}  # physical database -> shard index


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD):
        conn = _client(proxy)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE ja (id int NOT NULL PRIMARY KEY, x int) DBPARTITION BY HASH(id)"
                )
                cur.execute("INSERT INTO ja VALUES (0, 7), (1, 7), (2, 7), (3, 7)")
                cur.execute("CREATE TABLE bc (id int PRIMARY KEY) BROADCAST")
                cur.execute("CREATE TABLE single_t (id int PRIMARY KEY)")
        finally:
            conn.close()
        yield proxy


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
