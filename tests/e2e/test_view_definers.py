"""A view made through the proxy shows its creator's account as its definer, never the mirror
the shard made it with: SHOW CREATE VIEW, SHOW CREATE TABLE of the view, information_schema's
VIEWS.DEFINER, text and prepared, unsharded and sharded, and so mariadb-dump's DEFINER clause.

The reference for "as MariaDB shows it": the same view made directly on the shard with the
account (``'user'@'%'``, a real account there) as its DEFINER, shown by the shard under the
same session settings; the proxy's answer must be the shard's text for it. Definers that are
not this catalog's mirrors of the session's database (the shard operator's, a name that only
looks like a mirror's, another database's mirror) are shown unchanged.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy.backend.mirror import mirror_user
from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, sharded_database
from tests.e2e.test_enforcement import PASSWORD, Env, rows
from tests.e2e.tools import new_database, run_tool

SETTINGS = (
    "SET SESSION sql_mode = DEFAULT, sql_quote_show_create = 1",
    "SET SESSION sql_mode = 'ANSI_QUOTES', sql_quote_show_create = 1",
    "SET SESSION sql_mode = DEFAULT, sql_quote_show_create = 0",
)


@pytest.fixture(scope="module")
def env(proxy: ProxyEnv) -> Iterator[Env]:
    environment = Env(proxy)
    environment.shard_exec("DROP TABLE IF EXISTS vd_base")
    environment.shard_exec("CREATE TABLE vd_base (id INT PRIMARY KEY)")
    environment.shard_exec("INSERT INTO vd_base VALUES (1)")
    try:
        yield environment
    finally:
        environment.shard_exec("DROP VIEW IF EXISTS vd_v, vd_ref, vd_admin, vd_root, vd_forged")
        environment.shard_exec("DROP TABLE IF EXISTS vd_base")
        environment.close()


def account_id(proxy: ProxyEnv, user: str) -> int:
    account = proxy.server.ctx.snapshot().find_account(user, "%")
    assert account is not None
    return account.id


def mirror(proxy: ProxyEnv, user: str, physical_db: str) -> str:
    return mirror_user(proxy.config.catalog_secret(), account_id(proxy, user), physical_db)


def _clause(text: str) -> str:
    """The ``DEFINER=... `` clause of a view's definition."""
    return "DEFINER=" + text.split("DEFINER=", 1)[1].split(" SQL SECURITY", 1)[0]


def reference(env: Env, setting: str) -> tuple[str, str]:
    """(SHOW CREATE VIEW vd_v, its I_S DEFINER) as the shard would show them were vd_v's
    definer the real account vd_ref's is, under ``setting``: vd_v's own text on the shard,
    its DEFINER clause written as the shard writes vd_ref's."""
    shard = connect_admin(env.proxy.shards[0], "easydb")
    try:
        rows(shard, setting)
        [(_, ours, _, _)] = rows(shard, "SHOW CREATE VIEW vd_v")
        [(_, theirs, _, _)] = rows(shard, "SHOW CREATE VIEW vd_ref")
        [(definer,)] = rows(
            shard,
            "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'easydb' "
            "AND TABLE_NAME = 'vd_ref'",
        )
    finally:
        shard.close()
    return ours.replace(_clause(ours), _clause(theirs)), definer


def test_a_views_definer_is_its_creators_account(env: Env) -> None:
    proxy = env.proxy
    creator = env.create_account(
        [("SELECT", "vd_base"), ("SELECT, CREATE, DROP", "vd_v")], prefix="vd"
    )
    with env.connect(creator) as conn:
        rows(conn, "CREATE OR REPLACE DEFINER = 'x'@'y' VIEW vd_v AS SELECT id FROM vd_base")
    # The shard's own view of it: the mirror.
    [(on_shard,)] = env.on_shard(
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = 'vd_v'"
    )
    assert on_shard == f"{mirror(proxy, creator, 'easydb')}@%"
    # The reference: the same view, the real account its definer, made on the shard.
    env.shard_exec(f"CREATE USER IF NOT EXISTS '{creator}'@'%'")
    env.shard_exec(
        f"CREATE OR REPLACE DEFINER = '{creator}'@'%' VIEW vd_ref AS SELECT id FROM vd_base"
    )
    try:
        for setting in SETTINGS:
            text, definer = reference(env, setting)
            assert creator in text and "sgm_" not in text
            with env.connect(creator) as conn:
                rows(conn, setting)
                assert rows(conn, "SHOW CREATE VIEW vd_v") == [
                    ("vd_v", text, "utf8mb4", "utf8mb4_general_ci")
                ], setting
                assert rows(conn, "SHOW CREATE TABLE vd_v")[0][1] == text
                assert rows(
                    conn,
                    "SELECT v.DEFINER AS d, TABLE_NAME FROM information_schema.VIEWS v "
                    "WHERE TABLE_NAME = 'vd_v'",
                ) == [(definer, "vd_v")]
                assert definer == f"{creator}@%"
            # prepared (binary rows)
            prepared = env.connect_prepared(creator)
            try:
                cur = prepared.cursor(prepared=True)
                cur.execute(setting)
                cur.execute("SHOW CREATE VIEW vd_v")
                assert cur.fetchall()[0][1] == text
                for _ in range(2):  # executed again (its metadata may be left out)
                    cur.execute(
                        "SELECT TABLE_NAME, DEFINER, SECURITY_TYPE FROM information_schema.VIEWS"
                        " WHERE TABLE_NAME = ?",
                        ("vd_v",),
                    )
                    assert [tuple(r) for r in cur.fetchall()] == [("vd_v", definer, "DEFINER")]
                cur.close()
            finally:
                prepared.close()
        # A cursor's rows (COM_STMT_FETCH)
        client = BinaryClient(proxy.port, creator, PASSWORD, "easydb")
        try:
            statement = client.prepare(
                "SELECT TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = ?"
            )
            for _ in range(2):
                assert client.execute(statement, ["vd_v"], cursor=True) == []
                assert client.fetch(statement, 10) == [("vd_v", f"{creator}@%")]
        finally:
            client.close()
        # Another account (the administrator) sees the view with its own creator, and its own
        # view with itself.
        env.shard_exec("DROP VIEW IF EXISTS vd_admin")
        rows(env.admin, "CREATE VIEW vd_admin AS SELECT 1 AS one")
        assert rows(
            env.admin,
            "SELECT TABLE_NAME, DEFINER FROM information_schema.VIEWS "
            "WHERE TABLE_NAME IN ('vd_v', 'vd_admin') ORDER BY TABLE_NAME",
        ) == [("vd_admin", "easydb@%"), ("vd_v", f"{creator}@%")]
        assert rows(env.admin, "SHOW CREATE VIEW vd_v")[0][1] == reference(env, SETTINGS[0])[0]
    finally:
        env.shard_exec("DROP VIEW IF EXISTS vd_ref")
        env.shard_exec(f"DROP USER IF EXISTS '{creator}'@'%'")


def test_definers_that_are_not_the_sessions_mirrors_are_unchanged(env: Env) -> None:
    proxy = env.proxy
    creator = env.create_account([("SELECT", "vd_base")], prefix="vd")
    forged = f"sgm_{account_id(proxy, creator)}_0badf00d"
    elsewhere = mirror(proxy, creator, "otherdb")  # a real mirror name, of another database
    cases = {
        "vd_root": ("root", "localhost"),
        "vd_forged": (forged, "%"),
        "vd_admin": (elsewhere, "%"),
    }
    try:
        for view, (user, host) in cases.items():
            env.shard_exec(
                f"CREATE OR REPLACE DEFINER = '{user}'@'{host}' VIEW {view} AS SELECT 1 AS one"
            )
        found = rows(
            env.admin,
            "SELECT TABLE_NAME, DEFINER FROM information_schema.VIEWS "
            "WHERE TABLE_NAME IN ('vd_root', 'vd_forged', 'vd_admin') ORDER BY TABLE_NAME",
        )
        assert found == sorted((v, f"{u}@{h}") for v, (u, h) in cases.items())
        for view, (user, host) in cases.items():
            [(_, text, _, _)] = rows(env.admin, f"SHOW CREATE VIEW {view}")
            assert f"DEFINER=`{user}`@`{host}` SQL SECURITY" in text
    finally:
        env.shard_exec("DROP VIEW IF EXISTS vd_root, vd_forged, vd_admin")


def test_the_view_of_a_dropped_account_keeps_its_mirror(env: Env) -> None:
    """A dropped account has no account to show: its mirror's name stays (nothing else
    is known of it)."""
    proxy = env.proxy
    creator = env.create_account([("SELECT", "vd_base"), ("CREATE", "vd_gone")], prefix="vd")
    name = mirror(proxy, creator, "easydb")
    try:
        with env.connect(creator) as conn:
            rows(conn, "CREATE VIEW vd_gone AS SELECT id FROM vd_base")
        rows(env.admin, f"DROP USER {creator}")
        [(definer,)] = rows(
            env.admin,
            "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = 'vd_gone'",
        )
        assert definer == f"{name}@%"
    finally:
        env.shard_exec("DROP VIEW IF EXISTS vd_gone")


# --------------------------------------------------------------------------------------------
# mariadb-dump


@pytest.mark.skipif(
    shutil.which("mariadb-dump") is None or shutil.which("mariadb") is None,
    reason="the MariaDB client tools are not installed",
)
def test_a_dump_names_the_creator_and_loads_through_the_proxy(proxy: ProxyEnv) -> None:
    admin_password = "Vd#admin1"
    source = new_database(proxy, "vdsrc", admin_password)
    with proxy.connect(user=source, password=admin_password, database=source) as admin:
        rows(admin, "CREATE TABLE t (id INT PRIMARY KEY)")
        rows(admin, "INSERT INTO t VALUES (1), (2)")
        rows(admin, f"CREATE USER vdmaker IDENTIFIED BY '{PASSWORD}'")
        rows(admin, f"GRANT SELECT, CREATE ON {source}.* TO vdmaker")
    try:
        with proxy.connect(user="vdmaker", password=PASSWORD, database=source) as conn:
            rows(conn, "CREATE VIEW t_view AS SELECT id FROM t")
        done = run_tool(proxy, "mariadb-dump", source, admin_password, source)
        assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
        dumped = done.stdout
        assert b"/*!50013 DEFINER=`vdmaker`@`%` SQL SECURITY DEFINER */" in dumped
        assert b"sgm_" not in dumped
        target = new_database(proxy, "vddst", admin_password)
        loaded = run_tool(proxy, "mariadb", target, admin_password, target, stdin=dumped)
        assert loaded.returncode == 0 and loaded.stderr == b"", loaded.stderr.decode()
        with proxy.connect(user=target, password=admin_password, database=target) as conn:
            assert rows(conn, "SELECT id FROM t_view ORDER BY id") == [(1,), (2,)]
            # the loading account made it: its definer now
            [(definer,)] = rows(
                conn,
                "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()",
            )
            assert definer == f"{target}@%"
    finally:
        with proxy.connect(user=source, password=admin_password, database=source) as admin:
            rows(admin, "DROP USER IF EXISTS vdmaker")


# --------------------------------------------------------------------------------------------
# A sharded database (views live in physical database 0)

SHARDED = "vdshard"
CHARSETS = ("utf8mb4", "utf8mb4_general_ci")
SHARDED_PASSWORD = "Vd#shard1"


def test_sharded_database_views_name_their_creator(proxy: ProxyEnv) -> None:
    setup = (
        "CREATE TABLE single_t (id INT PRIMARY KEY)",
        "CREATE TABLE spread (id INT PRIMARY KEY) DBPARTITION BY hash(id)",
        "INSERT INTO single_t VALUES (1)",
        f"CREATE USER vdsh IDENTIFIED BY '{PASSWORD}'",
        f"GRANT SELECT, CREATE ON {SHARDED}.* TO vdsh",
    )
    with sharded_database(proxy, SHARDED, SHARDED_PASSWORD, setup=setup):
        with proxy.connect(user="vdsh", password=PASSWORD, database=SHARDED) as conn:
            rows(conn, "CREATE VIEW sh_view AS SELECT id FROM single_t")
            shard_text = physical(proxy, SHARDED, 0, "SHOW CREATE VIEW sh_view")[0][1]
            assert "sgm_" in shard_text
            expected = shard_text.replace(
                shard_text.split("DEFINER=")[1].split(" ")[0], "`vdsh`@`%`"
            )
            for sql in (
                "SHOW CREATE VIEW sh_view",
                "SHOW CREATE TABLE sh_view",
                f"SHOW CREATE VIEW {SHARDED}.sh_view",
            ):
                assert rows(conn, sql)[0][1] == expected, sql
            for sql in (
                "SELECT TABLE_SCHEMA, DEFINER FROM information_schema.VIEWS",
                "SELECT TABLE_SCHEMA, DEFINER FROM information_schema.VIEWS "
                "WHERE TABLE_SCHEMA = DATABASE()",
            ):
                assert rows(conn, sql) == [(SHARDED, "vdsh@%")], sql
        # in a multi-statement packet (each statement run by the sharded executor)
        with proxy.connect(
            user="vdsh", password=PASSWORD, database=SHARDED, client_flag=CLIENT.MULTI_STATEMENTS
        ) as conn:
            for sql, wanted in (
                ("SELECT DEFINER FROM information_schema.VIEWS", ("vdsh@%",)),
                (
                    "SHOW CREATE VIEW sh_view",
                    ("sh_view", expected, "utf8mb4", "utf8mb4_general_ci"),
                ),
            ):
                with conn.cursor() as several:
                    several.execute(f"SELECT 1; {sql}; {sql}")
                    answers = [several.fetchall()]
                    while several.nextset():
                        answers.append(several.fetchall())
                assert answers == [((1,),), (wanted,), (wanted,)], sql
        with proxy.connector(user="vdsh", password=PASSWORD, database=SHARDED) as prepared:
            cur: Any = prepared.cursor(prepared=True)
            for _ in range(3):  # (executed again: not a fast path's)
                cur.execute(
                    "SELECT TABLE_SCHEMA, DEFINER FROM information_schema.VIEWS"
                    " WHERE TABLE_NAME = ?",
                    ("sh_view",),
                )
                assert [tuple(r) for r in cur.fetchall()] == [(SHARDED, "vdsh@%")]
            cur.execute("SHOW CREATE VIEW sh_view")
            assert cur.fetchall()[0][1] == expected
            cur.close()
        with proxy.connect(user=SHARDED, password=SHARDED_PASSWORD, database=SHARDED) as admin:
            assert rows(admin, "SELECT DEFINER FROM information_schema.VIEWS") == [("vdsh@%",)]
            rows(admin, "DROP VIEW sh_view")
            rows(admin, "DROP USER vdsh")


_ = pymysql  # (the clients' errors)
