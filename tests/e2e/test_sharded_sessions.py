"""A sharded database before the data path routes statements to its partitions: a session
there is refused with a clear error (never served from one partition as if it were the whole
database), and the proxy's other databases go on as before."""

from __future__ import annotations

import asyncio
import time

import pymysql
import pytest

from proxy.manage.provision import create_sharded_database
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv

PASSWORD = "Sharded#pass1"


def test_a_session_in_a_sharded_database_is_refused_clearly(proxy: ProxyEnv) -> None:
    with proxy.catalog() as catalog:
        asyncio.run(
            create_sharded_database(
                proxy.config, catalog, "shdb", ["s0", "s1"], 2, PASSWORD, PASSWORD
            )
        )
    try:
        deadline = time.monotonic() + 10
        while proxy.server.ctx.catalog.snapshot().database("shdb") is None:
            assert time.monotonic() < deadline, "the proxy never saw the new database"
            time.sleep(0.1)
        with pytest.raises(pymysql.err.OperationalError) as refused:
            conn = proxy.connect("shdb", PASSWORD, database="shdb")
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
            finally:
                conn.close()
        errno, message = refused.value.args
        assert errno == 2006
        assert "database 'shdb' is sharded" in message
        # Other databases are not affected.
        with proxy.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
    finally:
        with proxy.catalog() as catalog:
            catalog.drop_database("shdb")
        for endpoint, name in ((proxy.shards[0], "shdb_0000"), (proxy.shards[1], "shdb_0001")):
            admin = connect_admin(endpoint)
            try:
                with admin.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {name}")
            finally:
                admin.close()
