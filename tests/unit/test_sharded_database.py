"""``shardgate database create NAME --shards s0,s1 [--db-partitions D]`` on two real MariaDB
shards: the physical databases where sharding.md puts them, the topology in the catalog, and
mirrored accounts that treat every physical database of the logical one as that database (a
privilege on a logical table covers its physical tables, wherever they are)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest

from auth.catalog import Catalog
from auth.model import KeyType, LogicalTable, ShardKey, TableRule
from auth.privileges import Priv
from proxy.backend.connection import BackendError
from proxy.backend.mirror import MirrorManager, mirror_user
from proxy.dev.localshard import ShardEndpoint
from proxy.manage.provision import topology_summary
from proxy.ops.config import Config, load_config
from tests.unit.test_cli_users import ok, open_catalog, refused, runner_for, write_config

_GRANT = re.compile(r"^GRANT (.+) ON (\S+) TO ")
SELECTING = frozenset({"SELECT", "SHOW VIEW", "REFERENCES"})


def _config(tmp_path: Path, shards: list[ShardEndpoint]) -> Path:
    return write_config(
        tmp_path,
        shards="".join(
            f'[[shards]]\nname = "s{i}"\nhost = "{s.host}"\nport = {s.port}\n'
            f'user = "{s.user}"\npassword = "{s.password}"\n'
            for i, s in enumerate(shards)
        ),
    )


def _sql(conn: Any, statement: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall())


def _grants(conn: Any, user: str) -> set[tuple[str, frozenset[str]]]:
    """(level, privileges) of ``user``@'%' on the shard, beyond global USAGE."""
    held = set()
    for (line,) in _sql(conn, f"SHOW GRANTS FOR '{user}'@'%'"):
        match = _GRANT.match(line)
        assert match is not None, line
        privileges, level = match.groups()
        if level != "*.*":
            held.add((level, frozenset(privileges.split(", "))))
    return held


def _mirror(config: Config, catalog: Catalog, user: str, physical: str) -> str:
    account = catalog.snapshot().find_account(user, "%")
    assert account is not None
    return mirror_user(config.catalog_secret(), account.id, physical)


def test_database_create_over_two_shards(
    shards: list[ShardEndpoint], tmp_path: Path, shard_admin: Callable[..., Any]
) -> None:
    path = _config(tmp_path, shards)
    run = runner_for(path)
    output = ok(run("database", "create", "sdb", "--shards", "s0,s1", "--db-partitions", "4"))
    lines = output.splitlines()
    assert lines[0] == (
        "Database 'sdb' created with 4 physical databases: s0 (sdb_0000-sdb_0001),"
        " s1 (sdb_0002-sdb_0003)."
    )
    assert lines[1].startswith('Account "sdb" created with password "')
    s0, s1 = shard_admin(shards[0]), shard_admin(shards[1])
    like = "SHOW DATABASES LIKE 'sdb%'"
    assert [r[0] for r in _sql(s0, like)] == ["sdb_0000", "sdb_0001"]
    assert [r[0] for r in _sql(s1, like)] == ["sdb_0002", "sdb_0003"]
    config = load_config(path)
    with open_catalog(tmp_path) as catalog:
        database = catalog.snapshot().database("sdb")
        assert database is not None and database.sharded
        assert topology_summary(database) == "s0 (sdb_0000-sdb_0001), s1 (sdb_0002-sdb_0003)"
        # The built-ins' mirrors: one per physical database, on its shard, holding the
        # database-level privileges there and nothing anywhere else.
        for physical in database.physical_databases:
            conn = s0 if physical.shard == "s0" else s1
            other = s1 if conn is s0 else s0
            ro = _mirror(config, catalog, "sdb_RO", physical.name)
            # (the database named literally: ``_`` escaped, not a wildcard)
            literal = physical.name.replace("_", "\\_")
            assert _grants(conn, ro) == {(f"`{literal}`.*", SELECTING | {"LOCK TABLES"})}
            assert not _sql(other, f"SELECT 1 FROM mysql.user WHERE User = '{ro}'")
    # The default: four physical databases per shard.
    output = ok(run("database", "create", "wide", "--shards", "s1,s0"))
    assert output.splitlines()[0] == (
        "Database 'wide' created with 8 physical databases: s1 (wide_0000-wide_0003),"
        " s0 (wide_0004-wide_0007)."
    )
    assert [r[0] for r in _sql(s0, "SHOW DATABASES LIKE 'wide%'")] == [
        f"wide_000{i}" for i in range(4, 8)
    ]
    # One shard alone keeps today's layout.
    output = ok(run("database", "create", "plain", "--shard", "s1"))
    assert output.splitlines()[0] == "Database 'plain' created on shard 's1'."
    assert _sql(s1, "SHOW DATABASES LIKE 'plain'") == [("plain",)]
    refused(run("database", "create", "sdb", "--shards", "s0,s1"), "database 'sdb' already exists")
    refused(
        run("database", "create", "x1", "--shards", "s0,s1", "--db-partitions", "3"),
        "the number of physical databases (3) must be a positive multiple of the number of"
        " shards (2)",
    )
    refused(
        run("database", "create", "x1", "--shards", "s0,s9"),
        "unknown shard 's9' (configured: s0, s1)",
    )
    refused(run("database", "create", "x1", "--shards", "s0,s0"), "name each shard once")
    for usage in (
        ("x1",),
        ("x1", "--shard", "s0", "--shards", "s0,s1"),
        ("x1", "--shard", "s0", "--db-partitions", "2"),
        ("x1", "--shards", "s0,,s1"),
    ):
        result = run("database", "create", *usage)
        assert result.exit_code == 2 and "Usage" in result.stderr, usage
    assert not _sql(s0, "SHOW DATABASES LIKE 'x1%'")
    for conn in (s0, s1):
        for name in ("sdb", "wide"):
            for (physical,) in _sql(conn, f"SHOW DATABASES LIKE '{name}\\_%'"):
                _sql(conn, f"DROP DATABASE `{physical}`")
        _sql(conn, "DROP DATABASE IF EXISTS plain")


def test_privileges_on_logical_tables_cover_their_physical_tables(
    shards: list[ShardEndpoint], tmp_path: Path, shard_admin: Callable[..., Any]
) -> None:
    path = _config(tmp_path, shards)
    ok(runner_for(path)("database", "create", "mdb", "--shards", "s0,s1", "--db-partitions", "4"))
    config = load_config(path)
    s0, s1 = shard_admin(shards[0]), shard_admin(shards[1])
    conns = {"s0": s0, "s1": s1}
    key = ShardKey("HASH", "id", KeyType("int"))
    orders = LogicalTable("orders", TableRule("sharded", key, key, 2), "CREATE TABLE orders")
    with open_catalog(tmp_path) as catalog:
        mirrors = MirrorManager(lambda: config, catalog)
        database = catalog.snapshot().database("mdb")
        assert database is not None
        before = catalog.snapshot()
        reader = catalog.create_account("reader", "%", "Reader#pw1", "mdb", "t", "")
        catalog.set_privileges(reader.id, "mdb", "orders", Priv.SELECT, "t", "")
        catalog.set_privileges(reader.id, "mdb", "orders_03", Priv.INSERT, "t", "")
        asyncio.run(mirrors.catalog_changed(before))
        # Before the catalog knows `orders`: it would be a single table, in physical
        # database 0 only (granted there although it does not exist yet).
        held = {
            p.name: _grants(conns[p.shard], _mirror(config, catalog, "reader", p.name))
            if _exists(conns[p.shard], _mirror(config, catalog, "reader", p.name))
            else None
            for p in database.physical_databases
        }
        assert held == {
            "mdb_0000": {
                ("`mdb\\_0000`.*", frozenset({"LOCK TABLES"})),
                ("`mdb_0000`.`orders`", SELECTING),
                ("`mdb_0000`.`orders_03`", frozenset({"INSERT"})),
            },
            "mdb_0001": None,
            "mdb_0002": None,
            "mdb_0003": None,
        }
        # The data path creates the physical tables, then the catalog records the table.
        for index, name in orders.physical_tables(4):
            physical = database.physical_databases[index]
            _sql(conns[physical.shard], f"CREATE TABLE `{physical.name}`.`{name}` (id INT)")
        before = catalog.snapshot()
        catalog.create_table("mdb", orders)
        asyncio.run(mirrors.catalog_changed(before))
        expected = {
            "mdb_0000": ("orders_00", "orders_01"),
            "mdb_0001": ("orders_02", "orders_03"),
            "mdb_0002": ("orders_04", "orders_05"),
            "mdb_0003": ("orders_06", "orders_07"),
        }
        for physical in database.physical_databases:
            mirror = _mirror(config, catalog, "reader", physical.name)
            # orders_03 is a physical table of `orders` now: never granted by that name.
            assert _grants(conns[physical.shard], mirror) == {
                (f"`{physical.name.replace('_', chr(92) + '_')}`.*", frozenset({"LOCK TABLES"})),
                *((f"`{physical.name}`.`{name}`", SELECTING) for name in expected[physical.name]),
            }
        # Sessions reach a sharded database one physical database at a time; without one
        # named, physical database 0 (where single tables live: the session's own link).
        snapshot = catalog.snapshot()
        account = snapshot.find_account("reader", "%")
        assert account is not None
        first = asyncio.run(mirrors.target_for(snapshot, account, "mdb"))
        assert (first.shard, first.database) == ("s0", "mdb_0000")
        with pytest.raises(BackendError, match="no partition 4"):
            asyncio.run(mirrors.target_for(snapshot, account, "mdb", partition=4))
        target = asyncio.run(mirrors.target_for(snapshot, account, "mdb", partition=2))
        assert (target.shard, target.database) == ("s1", "mdb_0002")
        assert mirrors.verified(snapshot, account.id, "mdb", 2)
        conn = pymysql.connect(
            host=shards[1].host,
            port=shards[1].port,
            user=target.user,
            password=target.password,
            database=target.database,
        )
        try:
            assert _sql(conn, "SELECT COUNT(*) FROM orders_05") == [(0,)]
            with pytest.raises(pymysql.err.OperationalError) as denied:
                _sql(conn, "SELECT COUNT(*) FROM mdb_0003.orders_06")
            assert denied.value.args[0] in (1142, 1044)
        finally:
            conn.close()
        # Dropping the table: back to "a single table in physical database 0".
        before = catalog.snapshot()
        catalog.drop_table("mdb", "orders")
        asyncio.run(mirrors.catalog_changed(before))
        assert not _exists(s0, _mirror(config, catalog, "reader", "mdb_0001"))
        assert ("`mdb_0000`.`orders_03`", frozenset({"INSERT"})) in _grants(
            s0, _mirror(config, catalog, "reader", "mdb_0000")
        )
    for conn in (s0, s1):
        for (physical,) in _sql(conn, "SHOW DATABASES LIKE 'mdb\\_%'"):
            _sql(conn, f"DROP DATABASE `{physical}`")


def _exists(conn: Any, user: str) -> bool:
    return bool(_sql(conn, f"SELECT 1 FROM mysql.user WHERE User = '{user}'"))
