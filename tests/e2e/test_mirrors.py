"""Mirrored backend accounts on the real shard: every session reaches MariaDB as an account
that holds, there, exactly its caller's grants (proxy/backend/mirror.py).

The grants are read back as the shard's administrator after each change; a change through
the proxy (SQL), the CLI or the dashboard is on the shard when it answers. The reconciler
repairs mirrors altered behind the proxy's back and drops stale ones; a session whose mirror
cannot be verified is refused, never served through another account.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from click.testing import CliRunner

from proxy.backend.mirror import mirror_password, mirror_suffix, mirror_user
from proxy.dev.localshard import ShardEndpoint
from proxy.manage.cli import main
from tests.conftest import connect_admin
from tests.e2e.conftest import PASSWORDS, ProxyEnv, ProxyThread, start_proxy
from tests.e2e.test_enforcement import classifier_misses, counted_miss

PASSWORD = "Mirror#pass1"
Grants = set[tuple[str, frozenset[str]]]
_GRANT = re.compile(r"^GRANT (.+) ON (\S+) TO ")


@pytest.fixture
def shard(proxy: ProxyEnv) -> Iterator[pymysql.connections.Connection]:
    """easydb's shard, as its administrator."""
    conn = connect_admin(proxy.shards[0])
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def admin(proxy: ProxyEnv) -> Iterator[Any]:
    """The easydb administrator, through the proxy."""
    conn = proxy.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS mir_a (id INT PRIMARY KEY, v INT)")
            cur.execute("CREATE TABLE IF NOT EXISTS mir_b (id INT PRIMARY KEY)")
            cur.execute("INSERT IGNORE INTO mir_a VALUES (1, 10)")
        yield conn
    finally:
        conn.close()


def sql(conn: Any, statement: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall())


def mirror_of(proxy: ProxyEnv, user: str, database: str = "easydb") -> str:
    with proxy.catalog() as catalog:
        account = catalog.snapshot().find_account(user, "%")
    assert account is not None
    return mirror_user(proxy.config.catalog_secret(), account.id, database)


def exists(shard: Any, user: str) -> bool:
    return bool(sql(shard, f"SELECT 1 FROM mysql.user WHERE User = '{user}'"))


def grants_on_shard(shard: Any, user: str) -> Grants:
    """What ``user``@'%' holds on the shard, as (level, privileges); the global level only
    if it holds more than USAGE there."""
    held: Grants = set()
    for (line,) in sql(shard, f"SHOW GRANTS FOR '{user}'@'%'"):
        match = _GRANT.match(line)
        assert match is not None, line
        privileges, level = match.groups()
        if level == "*.*" and privileges == "USAGE":
            continue
        held.add((level, frozenset(privileges.split(", "))))
    return held


def on_loop(proxy: ProxyEnv, work: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run_coroutine_threadsafe(work, proxy.loop).result(60)


SELECTING = frozenset({"SELECT", "REFERENCES", "SHOW VIEW"})


def test_builtin_accounts_have_their_mirrors(proxy: ProxyEnv, shard: Any) -> None:
    assert grants_on_shard(shard, mirror_of(proxy, "easydb")) == {
        (
            "`easydb`.*",
            frozenset(
                {
                    *("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX"),
                    *("ALTER", "REFERENCES", "SHOW VIEW", "LOCK TABLES"),
                    *("CREATE TEMPORARY TABLES", "CREATE VIEW"),
                }
            ),
        )
    }
    assert grants_on_shard(shard, mirror_of(proxy, "easydb_RO")) == {
        ("`easydb`.*", SELECTING | {"LOCK TABLES"})
    }
    # The all-privileges account of older versions is not made any more.
    assert not exists(shard, "sg_easydb")


def test_account_statements_are_on_the_shard_when_they_answer(
    proxy: ProxyEnv, admin: Any, shard: Any
) -> None:
    sql(admin, "DROP USER IF EXISTS mirone")
    sql(admin, f"CREATE USER mirone IDENTIFIED BY '{PASSWORD}'")
    mirror = mirror_of(proxy, "mirone")
    assert not exists(shard, mirror)  # no privilege, no mirror
    try:
        sql(admin, "GRANT SELECT ON easydb.mir_a TO mirone")
        sql(admin, "GRANT INSERT ON easydb.* TO mirone")
        assert grants_on_shard(shard, mirror) == {
            ("`easydb`.*", frozenset({"INSERT", "LOCK TABLES"})),
            ("`easydb`.`mir_a`", SELECTING),
        }
        sql(admin, "REVOKE SELECT ON easydb.mir_a FROM mirone")
        assert grants_on_shard(shard, mirror) == {("`easydb`.*", frozenset({"INSERT"}))}
        # ... and this node knows it: a session needs no sync before using it.
        snapshot = proxy.server.ctx.snapshot()
        account = snapshot.find_account("mirone", "%")
        assert account is not None
        assert proxy.server.ctx.mirrors.verified(snapshot, account.id, "easydb")
        sql(admin, "REVOKE INSERT ON easydb.* FROM mirone")
        assert not exists(shard, mirror)  # holds nothing in easydb: no mirror
        sql(admin, "GRANT UPDATE, CREATE ON easydb.mir_b TO mirone")
        assert grants_on_shard(shard, mirror) == {
            ("`easydb`.*", frozenset({"CREATE TEMPORARY TABLES"})),
            ("`easydb`.`mir_b`", frozenset({"UPDATE", "CREATE", "CREATE VIEW"})),
        }
        # A password change leaves the mirror as it is.
        sql(admin, "SET PASSWORD FOR mirone = 'Mirror#pass2'")
        assert grants_on_shard(shard, mirror) == {
            ("`easydb`.*", frozenset({"CREATE TEMPORARY TABLES"})),
            ("`easydb`.`mir_b`", frozenset({"UPDATE", "CREATE", "CREATE VIEW"})),
        }
    finally:
        sql(admin, "DROP USER IF EXISTS mirone")
    assert not exists(shard, mirror)


def test_a_session_runs_as_its_mirror(proxy: ProxyEnv, admin: Any, shard: Any) -> None:
    sql(admin, "DROP USER IF EXISTS mirtwo")
    sql(admin, f"GRANT SELECT ON easydb.mir_a TO mirtwo IDENTIFIED BY '{PASSWORD}'")
    try:
        marker = "mirror_probe_7731"
        with proxy.connect(user="mirtwo", password=PASSWORD) as conn:
            worker = threading.Thread(target=sql, args=(conn, f"SELECT SLEEP(2) AS {marker}"))
            worker.start()
            try:
                seen: list[tuple[Any, ...]] = []
                deadline = time.monotonic() + 10
                while not seen and time.monotonic() < deadline:
                    seen = sql(
                        shard,
                        "SELECT USER, DB FROM information_schema.PROCESSLIST "
                        f"WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'",
                    )
                    time.sleep(0.05)
            finally:
                worker.join()
        assert seen == [(mirror_of(proxy, "mirtwo"), "easydb")]
    finally:
        sql(admin, "DROP USER IF EXISTS mirtwo")


def test_reconcile_repairs_mirrors_and_drops_stale_accounts(
    proxy: ProxyEnv, admin: Any, shard: Any
) -> None:
    sql(admin, "DROP USER IF EXISTS mirthree")
    sql(admin, f"GRANT SELECT ON easydb.mir_a TO mirthree IDENTIFIED BY '{PASSWORD}'")
    mirror = mirror_of(proxy, "mirthree")
    suffix = mirror_suffix(proxy.config.catalog_secret(), "easydb")
    stale = f"sgm_987654{suffix}"
    foreign = "sgm_987654_0badf00d"  # another cluster's mirror (another secret): left alone
    expected = {("`easydb`.*", frozenset({"LOCK TABLES"})), ("`easydb`.`mir_a`", SELECTING)}
    try:
        with proxy.connect(user="mirthree", password=PASSWORD) as conn:
            assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
            for statement in (
                f"GRANT DELETE ON easydb.* TO '{mirror}'@'%'",
                f"GRANT INSERT ON easydb.mir_a TO '{mirror}'@'%'",
                f"GRANT SELECT ON easydb.mir_b TO '{mirror}'@'%'",
                f"GRANT SELECT ON easydb.* TO '{mirror}'@'%' WITH GRANT OPTION",
                f"CREATE USER '{mirror}'@'127.0.0.1' IDENTIFIED BY 'x'",
                f"CREATE USER '{stale}'@'%' IDENTIFIED BY 'x'",
                f"GRANT SELECT ON easydb.* TO '{stale}'@'%'",
                f"CREATE USER IF NOT EXISTS '{foreign}'@'%' IDENTIFIED BY 'x'",
                "CREATE USER IF NOT EXISTS 'sg_easydb'@'%' IDENTIFIED BY 'x'",
                "GRANT ALL PRIVILEGES ON easydb.* TO 'sg_easydb'@'%'",
            ):
                sql(shard, statement)
            on_loop(proxy, proxy.server.ctx.mirrors.reconcile())
            assert grants_on_shard(shard, mirror) == expected
            assert sql(shard, f"SELECT Host FROM mysql.user WHERE User = '{mirror}'") == [("%",)]
            assert not exists(shard, stale)
            assert not exists(shard, "sg_easydb")
            assert exists(shard, foreign)
            # Global privileges, roles, a wrong password: the mirror is made again.
            sql(shard, f"GRANT PROCESS ON *.* TO '{mirror}'@'%'")
            sql(shard, f"SET PASSWORD FOR '{mirror}'@'%' = PASSWORD('not-derived')")
            on_loop(proxy, proxy.server.ctx.mirrors.reconcile())
            assert grants_on_shard(shard, mirror) == expected
            # The open session carries on, and new ones log in with the derived password.
            assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
        with proxy.connect(user="mirthree", password=PASSWORD) as conn:
            assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
    finally:
        sql(shard, f"DROP USER IF EXISTS '{foreign}'@'%'")
        sql(admin, "DROP USER IF EXISTS mirthree")


def test_shard_refusal_is_relayed_and_counted(proxy: ProxyEnv, admin: Any, shard: Any) -> None:
    """A grant removed on the shard behind the proxy's back (no reconcile yet): the proxy
    allows the statement, the shard refuses it, the client gets the shard's error naming its
    own account (not the mirror: tests/e2e/test_shard_error_names.py) and the refusal is
    counted as a classifier miss."""
    sql(admin, "DROP USER IF EXISTS mirfour")
    sql(admin, f"GRANT SELECT ON easydb.mir_a TO mirfour IDENTIFIED BY '{PASSWORD}'")
    mirror = mirror_of(proxy, "mirfour")
    try:
        with proxy.connect(user="mirfour", password=PASSWORD) as conn:
            assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
            sql(shard, f"REVOKE SELECT ON easydb.mir_a FROM '{mirror}'@'%'")
            before = classifier_misses(proxy)
            with pytest.raises(pymysql.err.OperationalError) as info:
                sql(conn, "SELECT v FROM mir_a WHERE id = 1")
            assert info.value.args[0] == 1142
            assert info.value.args[1] == (
                "SELECT command denied to user 'mirfour'@'127.0.0.1' for table `easydb`.`mir_a`"
            )
            assert counted_miss(proxy, before)
            on_loop(proxy, proxy.server.ctx.mirrors.reconcile())
            assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
    finally:
        sql(admin, "DROP USER IF EXISTS mirfour")


def test_mirror_dropped_behind_the_proxys_back_is_made_again(
    proxy: ProxyEnv, admin: Any, shard: Any
) -> None:
    """A mirror this process had verified is dropped behind its back (by a DBA, or by another
    node for a change this one has not seen yet). A new backend connection's login is refused:
    the verification is forgotten, the mirror synced again, and the session served. A pooled
    connection still logged in as the old mirror gets the shard's refusal for one statement:
    the connection is closed, the verification forgotten, and the next statement is served
    through the mirror made again."""
    sql(admin, "DROP USER IF EXISTS mirseven")
    sql(admin, f"GRANT SELECT ON easydb.mir_a TO mirseven IDENTIFIED BY '{PASSWORD}'")
    mirror = mirror_of(proxy, "mirseven")
    try:
        with proxy.connect(user="mirseven", password=PASSWORD) as conn:
            assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
        sql(shard, f"DROP USER '{mirror}'@'%'")
        with proxy.connect(user="mirseven", password=PASSWORD) as conn:
            try:
                first = sql(conn, "SELECT v FROM mir_a WHERE id = 1")
            except pymysql.err.OperationalError as exc:
                assert exc.args[0] == 1142  # the pooled connection of the dropped mirror
                first = sql(conn, "SELECT v FROM mir_a WHERE id = 1")
            assert first == [(10,)]
        assert exists(shard, mirror)

        # A new login gets a new backend connection: refused, synced, served.
        async def close_pools() -> None:
            proxy.server.ctx.pools.close()

        on_loop(proxy, close_pools())
        sql(shard, f"DROP USER '{mirror}'@'%'")
        with proxy.connect(user="mirseven", password=PASSWORD) as conn:
            assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
        assert exists(shard, mirror)
    finally:
        sql(admin, "DROP USER IF EXISTS mirseven")


def test_mirror_made_again_keeps_grants_on_dropped_tables(
    proxy: ProxyEnv, admin: Any, shard: Any
) -> None:
    """A table-level grant outlives its table (as in MySQL); a mirror made again after the
    table was dropped gets it too (MariaDB grants on a missing table only with CREATE, which
    the mirror holds only in between)."""
    sql(admin, "CREATE TABLE IF NOT EXISTS mir_gone (id INT)")
    sql(admin, "DROP USER IF EXISTS mirfive")
    sql(admin, f"GRANT SELECT ON easydb.mir_gone TO mirfive IDENTIFIED BY '{PASSWORD}'")
    mirror = mirror_of(proxy, "mirfive")
    try:
        sql(admin, "DROP TABLE mir_gone")
        sql(shard, f"DROP USER '{mirror}'@'%'")
        with proxy.catalog() as catalog:
            account = catalog.snapshot().find_account("mirfive", "%")
        assert account is not None
        on_loop(proxy, proxy.server.ctx.mirrors.sync([account.id]))
        assert grants_on_shard(shard, mirror) == {
            ("`easydb`.*", frozenset({"LOCK TABLES"})),
            ("`easydb`.`mir_gone`", SELECTING),
        }
    finally:
        sql(admin, "DROP USER IF EXISTS mirfive")


def test_cli_changes_reach_the_shard(proxy: ProxyEnv, shard: Any) -> None:
    def run(*args: str, stdin: str | None = None) -> str:
        result = CliRunner().invoke(main, ["--config", str(proxy.config_path), *args], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    run(
        "users",
        "create",
        "mirsix",
        "--database",
        "easydb",
        "--read-only",
        "--password-stdin",
        stdin=f"{PASSWORD}\n",
    )
    mirror = mirror_of(proxy, "mirsix")
    assert grants_on_shard(shard, mirror) == {("`easydb`.*", SELECTING | {"LOCK TABLES"})}
    run("users", "delete", "mirsix", "--database", "easydb")
    assert not exists(shard, mirror)
    # reset-password (re)makes the built-ins' mirrors, e.g. after an older shardgate.
    ro_mirror = mirror_of(proxy, "easydb_RO")
    sql(shard, f"REVOKE LOCK TABLES ON easydb.* FROM '{ro_mirror}'@'%'")
    run(
        "database",
        "reset-password",
        "easydb",
        "--read-only",
        "--password-stdin",
        stdin=f"{PASSWORDS['easydb_RO']}\n",
    )
    assert grants_on_shard(shard, ro_mirror) == {("`easydb`.*", SELECTING | {"LOCK TABLES"})}


def test_unverifiable_mirror_refuses_the_session(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    """A proxy whose shard administrator credentials are wrong cannot verify any mirror: its
    sessions are refused with a clear error, never served."""
    # On s1: provisioning resets the shard's shared sg_usage account from this proxy's secret,
    # and the session proxy's sessions without a database use s0's.
    first = start_proxy(tmp_path, shards, "", [("mirbad", "s1")], "Mirbad#adm1", "Mirbad#ro1")
    config = first.config
    first.stop()
    broken = dataclasses.replace(
        config,
        shards=tuple(
            dataclasses.replace(shard, password="wrong") if shard.name == "s1" else shard
            for shard in config.shards
        ),
    )
    runner = ProxyThread(broken)
    server = runner.start()
    try:
        # PyMySQL's first statement (SET NAMES, as it connects) is refused, every time.
        for _ in range(2):
            with pytest.raises(pymysql.err.OperationalError) as info:
                pymysql.connect(
                    host="127.0.0.1",
                    port=server.port,
                    user="mirbad",
                    password="Mirbad#adm1",
                    database="mirbad",
                )
            assert info.value.args == (
                2006,
                "Backend unavailable: the shard account serving 'mirbad'@'%' on database "
                "'mirbad' could not be verified; try again later",
            )
    finally:
        runner.stop()
    # The mirror itself is intact: the proxy with the right credentials serves again.
    good = ProxyThread(config)
    server = good.start()
    try:
        with pymysql.connect(
            host="127.0.0.1",
            port=server.port,
            user="mirbad",
            password="Mirbad#adm1",
            database="mirbad",
        ) as conn:
            assert sql(conn, "SELECT 1") == [(1,)]
    finally:
        good.stop()


def test_mirror_password_is_derived(proxy: ProxyEnv, admin: Any) -> None:
    """The mirror logs in with the password derived from the catalog secret and the shard,
    has no role to switch to, and holds what its account holds (here: SELECT)."""
    mirror = mirror_of(proxy, "easydb_RO")
    endpoint = proxy.shards[0]
    password = mirror_password(proxy.config.catalog_secret(), "s0", mirror)
    with pymysql.connect(
        host=endpoint.host, port=endpoint.port, user=mirror, password=password, database="easydb"
    ) as conn:
        assert sql(conn, "SELECT CURRENT_USER(), CURRENT_ROLE()") == [(f"{mirror}@%", None)]
        assert sql(conn, "SELECT v FROM mir_a WHERE id = 1") == [(10,)]
        with pytest.raises(pymysql.err.OperationalError) as info:
            sql(conn, "INSERT INTO mir_a VALUES (9, 9)")
        assert info.value.args[0] == 1142
