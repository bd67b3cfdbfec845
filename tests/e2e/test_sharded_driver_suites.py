"""What the drivers' own test suites (``tests/drivers``, run with ``--sharded``) found on a
sharded database, kept as focused checks through PyMySQL on two real MariaDB shards: the
database ``shdrv`` over s0 and s1 (4 physical databases), with a sharded table ``t``
(``DBPARTITION BY HASH(id)``) and a single table ``single1`` (on physical database 0), as the
suites' own tables are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

PASSWORD = "ShDrv#pass1"
DB = "shdrv"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE t (id bigint NOT NULL PRIMARY KEY, v varchar(40)) DBPARTITION BY HASH(id)",
        "CREATE TABLE single1 (id int PRIMARY KEY, v varchar(40))",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


def _multi(env: ProxyEnv) -> pymysql.connections.Connection[Any]:
    return env.connect(
        DB, PASSWORD, database=DB, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS
    )


@pytest.mark.parametrize(
    ("packet", "named"),
    [
        ("SELECT 1; commit; SELECT 2;", "BEGIN, COMMIT, ROLLBACK and SET TRANSACTION"),
        ("BEGIN; SELECT v FROM t WHERE id = 1", "BEGIN, COMMIT, ROLLBACK and SET TRANSACTION"),
        ("SELECT 1; LOCK TABLES single1 READ", "LOCK and UNLOCK TABLES"),
    ],
)
def test_packet_refusal_names_the_statement(sharded: ProxyEnv, packet: str, named: str) -> None:
    """PyMySQL's test_ok_and_next: a transaction statement in a multi-statement packet is
    refused (1235, as documented), by a text that names it, not 'DDL and SHOW commands'."""
    conn = _multi(sharded)
    try:
        with conn.cursor() as cur:
            with pytest.raises(pymysql.err.MySQLError) as refused:
                cur.execute(packet)
            code, text = refused.value.args
            assert code == 1235
            assert named in text, text
            cur.execute("SELECT 3")
            assert cur.fetchall() == ((3,),)
    finally:
        conn.close()
