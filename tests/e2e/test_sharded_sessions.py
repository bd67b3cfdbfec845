"""A sharded database through a real client, on two real MariaDB shards: DDL of each kind,
rows placed where DRDS places them (read back from the physical databases directly), point
statements reaching one partition, scatter reads, XA multi-partition writes, sequences,
refusals, privileges on logical tables, and the SHOW commands.

The layout: ``shdb`` over s0 and s1 with 4 physical databases (``shdb_0000``, ``shdb_0001`` on
s0; ``shdb_0002``, ``shdb_0003`` on s1). Expected placements are written out by hand from
sharding.md's formulas: for ``DBPARTITION BY HASH(id)`` db = |id| mod 4; with ``TBPARTITION BY
HASH(id) TBPARTITIONS 2`` the global table index is |id| mod 8 and db = index div 2.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from proxy.dev.localshard import ShardEndpoint
from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.served import serve
from tests.e2e.sharded import (
    physical,
    recovering_proxy,
    separate_database,
    sharded_database,
    xa_prepared,
)

PASSWORD = "Sharded#pass1"
DB = "shdb"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD) as env:
        yield env


def _client(env: ProxyEnv) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB)


def _general_log(env: ProxyEnv, shard: int, on: bool) -> None:
    admin = connect_admin(env.shards[shard])
    try:
        with admin.cursor() as cur:
            if on:
                cur.execute("SET GLOBAL log_output = 'TABLE'")
                cur.execute("TRUNCATE TABLE mysql.general_log")
            cur.execute(f"SET GLOBAL general_log = {'ON' if on else 'OFF'}")
    finally:
        admin.close()


def _logged(env: ProxyEnv, shard: int, marker: str) -> list[str]:
    admin = connect_admin(env.shards[shard])
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log"
                " WHERE command_type = 'Query' AND argument LIKE %s",
                (f"%{marker}%",),
            )
            return [row[0] for row in cur.fetchall() if "general_log" not in row[0]]
    finally:
        admin.close()


def test_ddl_placement_and_routing(sharded: ProxyEnv) -> None:
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE orders (id int NOT NULL, buyer varchar(20), PRIMARY KEY (id))"
                " DBPARTITION BY HASH(id)"
            )
            cur.execute(
                "CREATE TABLE items (id bigint NOT NULL AUTO_INCREMENT, v int, PRIMARY KEY (id))"
                " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2"
            )
            cur.execute("CREATE TABLE region (id int PRIMARY KEY, name varchar(20)) BROADCAST")
            cur.execute("CREATE TABLE config (k varchar(20) PRIMARY KEY, v int)")

            cur.execute("SHOW TABLES")
            assert [r[0] for r in cur.fetchall()] == ["config", "items", "orders", "region"]
            cur.execute("SHOW TOPOLOGY FROM items")
            assert cur.fetchall() == tuple(
                (g, f"{DB}_{g // 2:04d}", f"items_{g:02d}") for g in range(8)
            )
            cur.execute("SHOW RULE FROM orders")
            rule = cur.fetchall()[0]
            assert rule[1:6] == ("orders", 0, "id", "hash", 4)
            cur.execute("SHOW NODE")
            assert [r[1:] for r in cur.fetchall()] == [
                (f"{DB}_0000", "s0"),
                (f"{DB}_0001", "s0"),
                (f"{DB}_0002", "s1"),
                (f"{DB}_0003", "s1"),
            ]
            cur.execute("SHOW CREATE TABLE orders")
            assert "dbpartition by hash(`id`)" in cur.fetchall()[0][1]

            # A multi-row INSERT split over the partitions (one XA transaction).
            cur.execute(
                "INSERT INTO orders (id, buyer) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'),"
                " (-6, 'e'), (9, 'f')"
            )
            assert cur.rowcount == 6
            cur.execute("INSERT INTO region VALUES (1, 'north'), (2, 'south')")
            cur.execute("INSERT INTO config VALUES ('x', 1)")
            cur.execute("INSERT INTO items (id, v) VALUES (3, 30), (8, 80), (13, 130)")

        # Each row where the formula puts it, read from the physical databases directly.
        expected_orders = {0: [4], 1: [1, 9], 2: [-6, 2], 3: [3]}
        for index, ids in expected_orders.items():
            rows = physical(env, DB, index, "SELECT id FROM orders ORDER BY id")
            assert [r[0] for r in rows] == ids, index
        # items: g = id mod 8: 3 -> items_03 (db 1), 8 -> items_00 (db 0), 13 -> items_05 (db 2)
        assert physical(env, DB, 1, "SELECT id FROM items_03") == [(3,)]
        assert physical(env, DB, 0, "SELECT id FROM items_00") == [(8,)]
        assert physical(env, DB, 2, "SELECT id FROM items_05") == [(13,)]
        assert physical(env, DB, 0, "SELECT count(*) FROM items_01") == [(0,)]
        for index in range(4):
            assert physical(env, DB, index, "SELECT id FROM region ORDER BY id") == [(1,), (2,)]
        assert physical(env, DB, 0, "SELECT k FROM config") == [("x",)]
        assert physical(env, DB, 1, "SHOW TABLES LIKE 'config'") == []

        with conn.cursor() as cur:
            # Point reads route to one partition; scatter reads return everything.
            cur.execute("SELECT buyer FROM orders WHERE id = 9")
            assert cur.fetchall() == (("f",),)
            cur.execute("EXPLAIN SELECT buyer FROM orders WHERE id = 9")
            assert cur.fetchall() == ((f"{DB}_0001", "SELECT buyer FROM orders WHERE id = 9"),)
            cur.execute("SELECT id FROM orders WHERE id IN (1, 3, 4)")
            assert sorted(r[0] for r in cur.fetchall()) == [1, 3, 4]
            cur.execute("SELECT id, buyer FROM orders")
            assert sorted(cur.fetchall()) == [
                (-6, "e"),
                (1, "a"),
                (2, "b"),
                (3, "c"),
                (4, "d"),
                (9, "f"),
            ]
            # Merged across the partitions (proxy/merge).
            cur.execute("SELECT id FROM orders ORDER BY id DESC")
            assert cur.fetchall() == ((9,), (4,), (3,), (2,), (1,), (-6,))
            cur.execute("SELECT id, buyer FROM orders ORDER BY id LIMIT 1, 2")
            assert cur.fetchall() == ((1, "a"), (2, "b"))
            cur.execute("SELECT count(*), sum(id), min(buyer), max(id) FROM orders")
            assert cur.fetchall() == ((6, 13, "a", 9),)
            cur.execute("SELECT id % 2 AS odd, count(*) FROM orders GROUP BY odd ORDER BY odd")
            assert cur.fetchall() == ((0, 3), (1, 3))
            cur.execute("SELECT DISTINCT id > 0 FROM orders ORDER BY 1")
            assert cur.fetchall() == ((0,), (1,))
            cur.execute("SELECT v FROM items WHERE id = 13")
            assert cur.fetchall() == ((130,),)
            cur.execute("SELECT id FROM items")
            assert sorted(r[0] for r in cur.fetchall()) == [3, 8, 13]
            # Merged over all 8 physical tables of items (TBPARTITIONS 2), column definitions
            # naming the logical table.
            cur.execute("SELECT count(*), sum(v), max(id) FROM items")
            assert cur.fetchall() == ((3, 240, 13),)
            cur.execute("SELECT items.id, v FROM items ORDER BY v DESC LIMIT 1, 5")
            assert cur.fetchall() == ((8, 80), (3, 30))
            assert [d[0] for d in cur.description] == ["id", "v"]
            # Co-located joins: on the shard key, or with a broadcast table.
            cur.execute("SELECT a.id, b.v FROM items a JOIN items b ON a.id = b.id ORDER BY a.id")
            assert cur.fetchall() == ((3, 30), (8, 80), (13, 130))
            cur.execute(
                "SELECT o.id, r.name FROM orders o LEFT JOIN region r ON r.id = o.id"
                " ORDER BY o.id LIMIT 3"
            )
            assert cur.fetchall() == ((-6, None), (1, "north"), (2, "south"))
            cur.execute(
                "SELECT count(*) FROM orders o WHERE EXISTS"
                " (SELECT 1 FROM orders p WHERE p.id = o.id AND p.buyer < 'c')"
            )
            assert cur.fetchall() == ((2,),)
            cur.execute(
                "SELECT o.buyer, r.name FROM orders o JOIN region r ON r.id = o.id WHERE o.id = 1"
            )
            assert cur.fetchall() == (("a", "north"),)
            cur.execute("SELECT name FROM region ORDER BY id")
            assert cur.fetchall() == (("north",), ("south",))
            cur.execute("SELECT v FROM config")
            assert cur.fetchall() == ((1,),)

            # Writes routed and scattered.
            cur.execute("UPDATE orders SET buyer = 'z' WHERE id = 2")
            assert cur.rowcount == 1
            assert physical(env, DB, 2, "SELECT buyer FROM orders WHERE id = 2") == [("z",)]
            cur.execute("UPDATE region SET name = 'N' WHERE id = 1")
            for index in range(4):
                assert physical(env, DB, index, "SELECT name FROM region WHERE id = 1") == [("N",)]
            cur.execute("DELETE FROM orders WHERE buyer = 'e'")
            assert cur.rowcount == 1
            assert physical(env, DB, 2, "SELECT id FROM orders ORDER BY id") == [(2,)]

            # AUTO_INCREMENT of a sharded table: a GROUP sequence, the insert id reported.
            cur.execute("INSERT INTO items (v) VALUES (1), (2)")
            first = cur.lastrowid
            assert first >= 100001
            cur.execute("SELECT LAST_INSERT_ID()")
            assert cur.fetchall() == ((first,),)
            cur.execute("SELECT id, v FROM items WHERE id IN (%s, %s)", (first, first + 1))
            assert sorted(cur.fetchall()) == [(first, 1), (first + 1, 2)]
            g = first % 8
            assert physical(env, DB, g // 2, f"SELECT v FROM items_{g:02d} WHERE id = {first}") == [
                (1,)
            ]
    finally:
        conn.close()


def test_point_statements_reach_one_partition(sharded: ProxyEnv) -> None:
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE probe (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)")
        for shard in (0, 1):
            _general_log(env, shard, True)
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO probe VALUES (6, 1) /* probe-insert */")
                cur.execute("SELECT v FROM probe WHERE id = 6 /* probe-select */")
                assert cur.fetchall() == ((1,),)
                cur.execute("SELECT v FROM probe /* probe-scatter */")
                assert cur.fetchall() == ((1,),)
        finally:
            for shard in (0, 1):
                _general_log(env, shard, False)
        # 6 mod 4 = 2: physical database 2, on s1; nothing reached s0.
        assert _logged(env, 0, "probe-insert") == []
        assert len(_logged(env, 1, "probe-insert")) == 1
        assert _logged(env, 0, "probe-select") == []
        assert len(_logged(env, 1, "probe-select")) == 1
        assert len(_logged(env, 0, "probe-scatter")) == 2
        assert len(_logged(env, 1, "probe-scatter")) == 2
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("sql", "errno", "text"),
    [
        ("SELECT * FROM orders o LEFT JOIN items i ON o.id = i.v", 1235, "LEFT JOIN of sharded"),
        ("SELECT GROUP_CONCAT(buyer) FROM orders", 1235, "GROUP_CONCAT across partitions"),
        ("UPDATE orders SET id = 5 WHERE id = 1", 1235, "UPDATE of the shard key"),
        ("INSERT INTO orders (buyer) VALUES ('x')", 1235, "without its shard key id"),
        ("SELECT * FROM orders JOIN items USING (id)", 1235, "with different partitioning"),
        ("SELECT * FROM items_00", 1146, "doesn't exist"),
        ("ALTER TABLE orders MODIFY id bigint", 1235, "shard key column"),
        (
            "CREATE TABLE bad (d date) DBPARTITION BY HASH(d)",
            1235,
            "HASH on a DATE column",
        ),
        ("CREATE TABLE orders (id int) DBPARTITION BY HASH(id)", 1050, "already exists"),
        ("SELECT * FROM orders WHERE id = @x", 1235, "user variables"),
    ],
)
def test_refusals(sharded: ProxyEnv, sql: str, errno: int, text: str) -> None:
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, buyer varchar(20))"
                " DBPARTITION BY HASH(id)"
            )
            cur.execute(
                "CREATE TABLE IF NOT EXISTS items (id bigint AUTO_INCREMENT PRIMARY KEY, v int)"
                " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2"
            )
            with pytest.raises(pymysql.err.MySQLError) as refused:
                cur.execute(sql)
        assert refused.value.args[0] == errno
        assert text in refused.value.args[1]
    finally:
        conn.close()


def test_ddl_fans_out(sharded: ProxyEnv) -> None:
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE fan (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)"
                " TBPARTITION BY HASH(id) TBPARTITIONS 2"
            )
            # As MariaDB normalizes it (the shard's), not as the client spelled it.
            cur.execute("SHOW CREATE TABLE fan")
            assert cur.fetchall()[0] == (
                "fan",
                "CREATE TABLE `fan` (\n  `id` int(11) NOT NULL,\n  `v` int(11) DEFAULT NULL,\n"
                "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                " COLLATE=utf8mb4_general_ci dbpartition by hash(`id`)"
                " tbpartition by hash(`id`) tbpartitions 2",
            )
            cur.execute("INSERT INTO fan VALUES (1, 1), (2, 2)")
            cur.execute("ALTER TABLE fan ADD COLUMN w int DEFAULT 7")
            cur.execute("CREATE INDEX fan_v ON fan (v)")
            for g in range(8):
                columns = physical(env, DB, g // 2, f"SHOW COLUMNS FROM fan_{g:02d}")
                assert [c[0] for c in columns] == ["id", "v", "w"]
                indexes = physical(env, DB, g // 2, f"SHOW INDEX FROM fan_{g:02d}")
                assert "fan_v" in {i[2] for i in indexes}
            cur.execute("SHOW CREATE TABLE fan")
            definition = cur.fetchall()[0][1]
            assert "`w` int(11) DEFAULT 7" in definition
            assert "dbpartition by hash(`id`)" in definition
            cur.execute("SELECT w FROM fan WHERE id = 2")
            assert cur.fetchall() == ((7,),)
            cur.execute("TRUNCATE TABLE fan")
            cur.execute("SELECT * FROM fan")
            assert cur.fetchall() == ()
            cur.execute("CHECK TABLE fan")
            assert cur.fetchall() == ((f"{DB}.fan", "check", "status", "OK"),)
            # A partition that fails is named; CHECK TABLE finds the one that differs.
            physical(env, DB, 3, "DROP INDEX fan_v ON fan_07")
            cur.execute("CHECK TABLE fan")
            assert cur.fetchall() == (
                (f"{DB}.fan", "check", "error", f"Partition {DB}_0003.fan_07 differs"),
            )
            with pytest.raises(pymysql.err.MySQLError) as failed:
                cur.execute("DROP INDEX fan_v ON fan")
            assert failed.value.args[0] == 1091
            assert "failed on 1 of 8 physical tables" in failed.value.args[1]
            # (named as SHOW TOPOLOGY and SHOW NODE name it, not by its physical names)
            assert "fan #7 in partition 3 on shard s1: 1091" in failed.value.args[1]
            assert f"{DB}_0003" not in failed.value.args[1]
            cur.execute("INSERT INTO fan (id, v) VALUES (5, 50)")
            cur.execute("RENAME TABLE fan TO fan2")
            cur.execute("SHOW TABLES LIKE 'fan%'")
            assert cur.fetchall() == (("fan2",),)
            cur.execute("SELECT v FROM fan2 WHERE id = 5")
            assert cur.fetchall() == ((50,),)
            # The definition names the table by its new name (a dump recreates fan2).
            cur.execute("SHOW CREATE TABLE fan2")
            assert cur.fetchall()[0][1].startswith("CREATE TABLE `fan2` (\n  `id` int(11)")
            assert physical(env, DB, 2, "SELECT v FROM fan2_05") == [(50,)]
            cur.execute("DROP TABLE fan2")
            cur.execute("SHOW TABLES LIKE 'fan%'")
            assert cur.fetchall() == ()
        for index in range(4):
            assert physical(env, DB, index, "SHOW TABLES LIKE 'fan%'") == []
    finally:
        conn.close()


def test_privileges_on_logical_tables(sharded: ProxyEnv) -> None:
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS secret (id int PRIMARY KEY, v int)"
                " DBPARTITION BY HASH(id)"
            )
            cur.execute(
                "CREATE TABLE IF NOT EXISTS open_t (id int PRIMARY KEY, v int)"
                " DBPARTITION BY HASH(id)"
            )
            cur.execute("INSERT INTO open_t VALUES (1, 1), (2, 2), (3, 3)")
            cur.execute("CREATE USER 'reader'@'%' IDENTIFIED BY 'Reader#pass1'")
            cur.execute(f"GRANT SELECT ON {DB}.open_t TO 'reader'@'%'")
    finally:
        conn.close()
    reader = env.connect("reader", "Reader#pass1", database=DB)
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT id FROM open_t")
            assert sorted(r[0] for r in cur.fetchall()) == [1, 2, 3]
            cur.execute("SELECT v FROM open_t WHERE id = 3")
            assert cur.fetchall() == ((3,),)
            for sql in (
                "SELECT * FROM secret",
                "SELECT * FROM secret WHERE id = 1",
                "INSERT INTO open_t VALUES (9, 9)",
            ):
                with pytest.raises(pymysql.err.MySQLError) as denied:
                    cur.execute(sql)
                assert denied.value.args[0] == 1142, sql
    finally:
        reader.close()


def test_multi_partition_writes_are_atomic(sharded: ProxyEnv) -> None:
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE acct (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)")
            cur.execute("INSERT INTO acct VALUES (5, 0)")
            # 4 (db 0) would be inserted, 5 (db 1) is a duplicate: neither is applied.
            with pytest.raises(pymysql.err.IntegrityError) as duplicate:
                cur.execute("INSERT INTO acct VALUES (4, 1), (5, 1)")
            assert duplicate.value.args[0] == 1062
            assert physical(env, DB, 0, "SELECT * FROM acct") == []
            assert physical(env, DB, 1, "SELECT * FROM acct") == [(5, 0)]
            # Inside a transaction, statements on any partition run in it (one XA
            # transaction; tests/e2e/test_sharded_transactions.py).
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM acct WHERE id = 4")  # physical database 0
            cur.execute("UPDATE acct SET v = 2 WHERE id = 5")  # 1
            assert physical(env, DB, 1, "SELECT v FROM acct") == [(0,)]
            cur.execute("ROLLBACK")
            assert physical(env, DB, 1, "SELECT v FROM acct") == [(0,)]
            cur.execute("UPDATE acct SET v = 2 WHERE id = 5")
            assert physical(env, DB, 1, "SELECT v FROM acct") == [(2,)]
    finally:
        conn.close()


def test_hints(sharded: ProxyEnv) -> None:
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE hinted (id int PRIMARY KEY) DBPARTITION BY HASH(id)"
                " TBPARTITION BY HASH(id) TBPARTITIONS 2"
            )
            cur.execute("INSERT INTO hinted VALUES (1), (2), (3), (9)")
            # node(): the named physical database's physical tables (1 -> hinted_01, 9 ->
            # hinted_01, in shdb_0000), each answering; no merge, as DRDS.
            cur.execute(f"/*+TDDL:node('{DB}_0000')*/ SELECT count(*) FROM hinted")
            assert cur.fetchall() == ((0,), (2,))
            cur.execute("/*+TDDL:scan()*/ SELECT count(*) FROM hinted")
            assert [r[0] for r in cur.fetchall()] == [0, 2, 1, 1, 0, 0, 0, 0]
            with pytest.raises(pymysql.err.MySQLError) as physical:
                cur.execute(f"/*+TDDL:node('{DB}_0000')*/ SELECT * FROM hinted_01")
            assert physical.value.args[0] == 1146
            cur.execute("CREATE USER 'hintless'@'%' IDENTIFIED BY 'Hintless#pass1'")
            cur.execute(f"GRANT INSERT ON {DB}.hinted TO 'hintless'@'%'")
    finally:
        conn.close()
    reader = env.connect("hintless", "Hintless#pass1", database=DB)
    try:
        with reader.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as denied:
            cur.execute("/*+TDDL:scan()*/ SELECT * FROM hinted")
        assert denied.value.args[0] == 1142
    finally:
        reader.close()


def _on_shard(endpoint: ShardEndpoint, database: str, sql: str) -> list[tuple[Any, ...]]:
    admin = connect_admin(endpoint, database=database)
    try:
        with admin.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        admin.close()


@pytest.mark.parametrize(
    ("crash_at", "committed"), [("after-decision", True), ("after-prepare", False)]
)
def test_a_proxy_killed_between_prepare_and_commit_is_recovered(
    shards: list[ShardEndpoint],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash_at: str,
    committed: bool,
) -> None:
    """kill -9 of the proxy after every branch was prepared: the next proxy to start commits
    the branches when the outcome "commit" was recorded, rolls them back when it was not --
    on both shards alike. (A catalog of its own, opened by the nodes only: a SQLite catalog
    is shared between processes safely, not with this process holding it open too.)"""
    name = "xadb" if committed else "xbdb"
    with separate_database(shards, tmp_path, name, PASSWORD) as (config_path, port):
        monkeypatch.setenv("SHARDGATE_TEST_XA_CRASH", crash_at)
        dying = serve(config_path, port)
        try:
            client = pymysql.connect(
                host="127.0.0.1",
                port=port,
                user=name,
                password=PASSWORD,
                database=name,
                autocommit=True,
            )
            with client.cursor() as cur:
                cur.execute(
                    "CREATE TABLE crash (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)"
                )
                # 1 -> physical database 1 (s0), 2 -> physical database 2 (s1)
                with pytest.raises(pymysql.err.OperationalError):
                    cur.execute("INSERT INTO crash VALUES (1, 1), (2, 1)")
            client.close()
            assert dying.wait(timeout=30) == -signal.SIGKILL
        finally:
            if dying.poll() is None:
                dying.kill()
            dying.communicate(timeout=30)
        # Both branches prepared, neither visible.
        assert len(xa_prepared(shards)) == 2
        assert _on_shard(shards[0], f"{name}_0001", "SELECT id FROM crash") == []
        with recovering_proxy(config_path, port, shards, monkeypatch):
            assert _on_shard(shards[0], f"{name}_0001", "SELECT id FROM crash") == (
                [(1,)] if committed else []
            )
            assert _on_shard(shards[1], f"{name}_0002", "SELECT id FROM crash") == (
                [(2,)] if committed else []
            )


def test_group_sequences(sharded: ProxyEnv) -> None:
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE SEQUENCE seq1 START WITH 1000")
            cur.execute("SELECT seq1.NEXTVAL")
            first = cur.fetchall()[0][0]
            assert first == 1000
            cur.execute("SELECT seq1.NEXTVAL FROM DUAL")
            assert cur.fetchall()[0][0] == 1001
            cur.execute("CREATE TABLE numbered (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)")
            cur.execute("INSERT INTO numbered (id, v) VALUES (seq1.NEXTVAL, 7)")
            # 1002 mod 4 = 2
            assert physical(env, DB, 2, "SELECT id, v FROM numbered") == [(1002, 7)]
            cur.execute("ALTER SEQUENCE seq1 START WITH 5000")
            cur.execute("SELECT seq1.NEXTVAL")
            assert cur.fetchall()[0][0] == 5000
            with pytest.raises(pymysql.err.MySQLError) as exists:
                cur.execute("CREATE SEQUENCE seq1")
            assert exists.value.args[0] == 1050
            cur.execute("CREATE GROUP SEQUENCE seq2")
            cur.execute("SELECT seq2.NEXTVAL")
            assert cur.fetchall()[0][0] == 100001
            cur.execute("DROP SEQUENCE seq1")
            cur.execute("DROP SEQUENCE seq2")
            with pytest.raises(pymysql.err.MySQLError) as unknown:
                cur.execute("DROP SEQUENCE seq1")
            assert unknown.value.args[0] == 1051
    finally:
        conn.close()


def test_an_auto_increment_column_other_than_the_key_is_unique_across_partitions(
    sharded: ProxyEnv,
) -> None:
    """A table sharded by ``buyer`` with an AUTO_INCREMENT ``id``: rows that leave ``id`` out
    or give NULL take its GROUP sequence's values (each physical table's own counter would
    give 1, 2, ... in every partition), and the client is told the first one, text and
    prepared alike; a 0 the shard would replace with a value of its own is refused."""
    conn = _client(env := sharded)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE purchases (id BIGINT AUTO_INCREMENT PRIMARY KEY, buyer INT,"
                " v INT) DBPARTITION BY HASH(buyer)"
            )
            cur.execute("INSERT INTO purchases (buyer, v) VALUES (0, 1), (1, 1), (2, 1), (3, 1)")
            first = cur.lastrowid
            assert first == 100001  # a GROUP sequence's first value (sharding.md)
            cur.execute("SELECT LAST_INSERT_ID()")
            assert cur.fetchone() == (first,)
            cur.execute("INSERT INTO purchases VALUES (NULL, 1, 2)")
            assert cur.lastrowid == first + 4
            cur.execute("INSERT INTO purchases (id, buyer, v) VALUES (7, 2, 3)")
            with pytest.raises(pymysql.err.MySQLError) as zero:
                cur.execute("INSERT INTO purchases (id, buyer, v) VALUES (0, 2, 3)")
            assert zero.value.args[0] == 1235
        binary = BinaryClient(env.port, DB, PASSWORD, DB)
        try:
            statement = binary.prepare("INSERT INTO purchases (buyer, v) VALUES (?, ?)")
            assert binary.execute(statement, [3, 4]) == 1
            assert binary.execute(binary.prepare("SELECT LAST_INSERT_ID()"), []) == [(first + 5,)]
        finally:
            binary.close()
        rows = []
        for index in range(4):
            rows += physical(env, DB, index, "SELECT id, buyer FROM purchases")
        ids = sorted(row[0] for row in rows)
        assert ids == [7, *range(first, first + 6)]
        # Each row where its buyer places it: db = |buyer| mod 4.
        for index in range(4):
            for _, buyer in physical(env, DB, index, "SELECT id, buyer FROM purchases"):
                assert buyer % 4 == index
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS purchases")
        conn.close()


def test_the_copies_of_a_broadcast_table_number_their_rows_alike(sharded: ProxyEnv) -> None:
    """Concurrent INSERTs into a broadcast table with an AUTO_INCREMENT column: each copy's
    own counter would number them in the order each shard saw them, which differs between
    shards; the values come from the table's sequence, so every copy holds the same rows."""
    env = sharded
    setup = _client(env)
    try:
        with setup.cursor() as cur:
            cur.execute(
                "CREATE TABLE towns (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20)) BROADCAST"
            )
        failures: list[BaseException] = []

        def insert(worker: int) -> None:
            conn = _client(env)
            try:
                with conn.cursor() as cur:
                    for number in range(15):
                        cur.execute(f"INSERT INTO towns (name) VALUES ('w{worker}n{number}')")
            except BaseException as error:
                failures.append(error)
            finally:
                conn.close()

        threads = [threading.Thread(target=insert, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures, failures
        copies = [
            sorted(physical(env, DB, index, "SELECT id, name FROM towns")) for index in range(4)
        ]
        assert len(copies[0]) == 60
        assert copies[1] == copies[0] and copies[2] == copies[0] and copies[3] == copies[0]
        with setup.cursor() as cur:
            cur.execute("INSERT INTO towns VALUES (NULL, 'last')")
            assert cur.lastrowid not in {row[0] for row in copies[0]}
            with pytest.raises(pymysql.err.MySQLError) as zero:
                cur.execute("INSERT INTO towns VALUES (0, 'zero')")
            assert zero.value.args[0] == 1235
    finally:
        with setup.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS towns")
        setup.close()


def test_broadcast_rows_of_defaults_and_writes_reading_a_single_table(sharded: ProxyEnv) -> None:
    """INSERT ... VALUES () into a broadcast table with an AUTO_INCREMENT column takes the
    sequence's values on every copy (it was 1136); a write to a broadcast table reading a
    single table is refused (it ran on physical database 0 alone: the other copies missed it);
    a broadcast table named like a function takes writes (INSERT INTO user (...) was 1235)."""
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE hamlets (id INT AUTO_INCREMENT PRIMARY KEY, n INT) BROADCAST")
            cur.execute("CREATE TABLE seeds (n INT)")
            cur.execute("CREATE TABLE user (id INT, name VARCHAR(10)) BROADCAST")
            cur.execute("INSERT INTO seeds VALUES (7)")
            cur.execute("INSERT INTO hamlets VALUES ()")
            cur.execute("INSERT INTO hamlets () VALUES (), ()")
            cur.execute("INSERT INTO user(id, name) VALUES (1, 'a')")
            for sql in (
                "INSERT INTO hamlets (n) SELECT n FROM seeds",
                "UPDATE hamlets SET n = (SELECT MAX(n) FROM seeds)",
                "DELETE FROM hamlets WHERE n IN (SELECT n FROM seeds)",
            ):
                with pytest.raises(pymysql.err.MySQLError) as refused:
                    cur.execute(sql)
                assert refused.value.args[0] == 1235, sql
        copies = [
            sorted(physical(env, DB, index, "SELECT id, n FROM hamlets")) for index in range(4)
        ]
        assert len(copies[0]) == 3 and all(n is None for _, n in copies[0])
        assert copies[1] == copies[0] and copies[2] == copies[0] and copies[3] == copies[0]
        users = [physical(env, DB, index, "SELECT id, name FROM user") for index in range(4)]
        assert users == [[(1, "a")]] * 4
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS hamlets")
            cur.execute("DROP TABLE IF EXISTS seeds")
            cur.execute("DROP TABLE IF EXISTS user")
        conn.close()


def test_an_auto_increment_column_added_by_alter_table_takes_a_sequence(
    sharded: ProxyEnv,
) -> None:
    """ALTER TABLE giving a sharded or broadcast table an AUTO_INCREMENT column creates its
    sequence, as CREATE TABLE does: every INSERT into the sharded table failed with 1105
    (unknown sequence AUTO_SEQ_...), and the broadcast table's copies went on numbering rows
    with their own counters (which concurrent INSERTs make disagree)."""
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE lots (id INT, buyer INT, v INT) DBPARTITION BY HASH(buyer)")
            cur.execute("ALTER TABLE lots MODIFY id INT AUTO_INCREMENT PRIMARY KEY")
            cur.execute("INSERT INTO lots (buyer, v) VALUES (1, 1), (2, 2), (3, 3), (4, 4)")
            cur.execute("SELECT id FROM lots")
            ids = sorted(row[0] for row in cur.fetchall())
            assert len(set(ids)) == 4 and ids[0] >= 100001
            cur.execute("CREATE TABLE marks (id INT, v INT) BROADCAST")
            cur.execute("ALTER TABLE marks MODIFY id INT AUTO_INCREMENT PRIMARY KEY")
            cur.execute("INSERT INTO marks (v) VALUES (1), (2)")
            assert cur.lastrowid >= 100001
        copies = [sorted(physical(env, DB, index, "SELECT id, v FROM marks")) for index in range(4)]
        assert copies[0][0][0] == cur.lastrowid and len(copies[0]) == 2
        assert copies[1] == copies[0] and copies[2] == copies[0] and copies[3] == copies[0]
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS lots")
            cur.execute("DROP TABLE IF EXISTS marks")
        conn.close()


@pytest.mark.parametrize("broken", [0, 2])
def test_a_failing_partition_ends_the_scatter_cleanly(sharded: ProxyEnv, broken: int) -> None:
    """The partitions answer in parallel; when one fails, the answers still coming from the
    others are read and dropped, and the next statements get their own answers."""
    env = sharded
    conn = _client(env)
    table = f"frail{broken}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY) DBPARTITION BY HASH(id)")
            cur.execute(f"INSERT INTO {table} VALUES (0), (1), (2), (3), (4), (5), (6), (7)")
            physical(env, DB, broken, f"DROP TABLE {table}")
            with pytest.raises(pymysql.err.MySQLError) as failed:
                cur.execute(f"SELECT id FROM {table}")
                cur.fetchall()
            assert failed.value.args[0] == 1146
            for key in (1, 3, 5, 7):
                cur.execute(f"SELECT id FROM {table} WHERE id = {key}")
                assert cur.fetchall() == ((key,),)
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
    finally:
        conn.close()


def _sleeping(env: ProxyEnv, shard: int) -> int:
    admin = connect_admin(env.shards[shard])
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                " WHERE USER LIKE 'sgm\\_%%' AND INFO LIKE 'SELECT SLEEP(30)%%'"
            )
            row = cur.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        admin.close()


def test_kill_query_and_a_client_gone_interrupt_the_statement_on_every_partition(
    sharded: ProxyEnv,
) -> None:
    """KILL QUERY of a session running a scatter interrupts it on each partition it runs
    on (not only physical database 0's connection): the client gets 1317 at once. A client
    that leaves mid-scatter has its statement ended on every partition too."""
    setup = _client(sharded)
    victim = _client(sharded)
    killer = _client(sharded)
    try:
        with setup.cursor() as cur:
            cur.execute("CREATE TABLE naps (id INT PRIMARY KEY) DBPARTITION BY HASH(id)")
            cur.execute("INSERT INTO naps VALUES (0), (1), (2), (3)")  # one row per partition
        with victim.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            (victim_id,) = cur.fetchone()
        outcome: list[int] = []

        def run() -> None:
            try:
                with victim.cursor() as cur:
                    cur.execute("SELECT SLEEP(30) FROM naps")
                    cur.fetchall()
            except pymysql.err.MySQLError as error:
                outcome.append(int(error.args[0]))

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 10
        while _sleeping(sharded, 1) == 0 or _sleeping(sharded, 0) == 0:
            assert time.monotonic() < deadline, "the scatter never reached both shards"
            time.sleep(0.05)
        with killer.cursor() as cur:
            cur.execute(f"KILL QUERY {victim_id}")
        thread.join(10)
        assert not thread.is_alive() and outcome == [1317]
        assert _sleeping(sharded, 0) == _sleeping(sharded, 1) == 0
        # The partitions that had answered before the KILL carry nothing over to the next
        # statement (an interrupted SLEEP would return 1).
        with victim.cursor() as cur:
            cur.execute("SELECT SUM(SLEEP(0.01)), COUNT(*) FROM naps")
            assert cur.fetchone() == (0, 4)

        # A client gone mid-scatter: nothing of its statement runs on afterwards.
        leaving = BinaryClient(sharded.port, DB, PASSWORD, DB)
        leaving.send_only("SELECT SLEEP(30) FROM naps")
        deadline = time.monotonic() + 10
        while _sleeping(sharded, 1) == 0:
            assert time.monotonic() < deadline, "the scatter never reached shard 1"
            time.sleep(0.05)
        leaving.sock.close()
        deadline = time.monotonic() + 10
        while _sleeping(sharded, 0) + _sleeping(sharded, 1):
            assert time.monotonic() < deadline, "the gone client's statement ran on"
            time.sleep(0.05)
    finally:
        with setup.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS naps")
        for conn in (setup, victim, killer):
            conn.close()


def _digest(conn: pymysql.connections.Connection[Any]) -> dict[str, tuple[int, int, int]]:
    """SHOW QUERY_DIGEST: per shape, (count_star, scatter_count, max_partitions)."""
    with conn.cursor() as cur:
        cur.execute("SHOW QUERY_DIGEST")
        names = [d[0] for d in cur.description]
        assert names[-2:] == ["scatter_count", "max_partitions"]
        return {row[1]: (int(row[2]), int(row[-2]), int(row[-1])) for row in cur.fetchall()}


def test_digest_marks_scatter_shapes(sharded: ProxyEnv) -> None:
    """A shape that ran on every partition says so in the query digest, with how many
    physical statements it ran (D, or D x T over a split table); a routed one does not --
    text and prepared statements, concatenated and merged scatters."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE dgs (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)")
            cur.execute(
                "CREATE TABLE dgs2 (id int PRIMARY KEY, v int)"
                " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2"
            )
            cur.execute("INSERT INTO dgs VALUES (1, 10), (2, 20), (3, 30)")
            cur.execute("INSERT INTO dgs2 VALUES (1, 10), (2, 20), (3, 30)")
            cur.execute("SELECT v FROM dgs WHERE id = 2")
            assert cur.fetchall() == ((20,),)
            for _ in range(2):
                cur.execute("SELECT v FROM dgs WHERE v > 10")
                assert sorted(cur.fetchall()) == [(20,), (30,)]
            cur.execute("SELECT v FROM dgs2 ORDER BY v DESC LIMIT 2")
            assert cur.fetchall() == ((30,), (20,))
        prepared = sharded.connector(DB, PASSWORD, database=DB)
        try:
            pcur = prepared.cursor(prepared=True)
            pcur.execute("SELECT id FROM dgs2 WHERE v < %s", (25,))
            assert sorted(pcur.fetchall()) == [(1,), (2,)]
            pcur.close()
        finally:
            prepared.close()
        digest = _digest(conn)
        assert digest["SELECT v FROM dgs WHERE id = ?"] == (1, 0, 0)
        assert digest["SELECT v FROM dgs WHERE v > ?"] == (2, 2, 4)
        assert digest["SELECT v FROM dgs2 ORDER BY v DESC LIMIT ?"] == (1, 1, 8)
        assert digest["SELECT id FROM dgs2 WHERE v < ?"] == (1, 1, 8)
        with conn.cursor() as cur:
            cur.execute("DROP TABLE dgs")
            cur.execute("DROP TABLE dgs2")
    finally:
        conn.close()
