"""Dump and restore through the proxy with the MariaDB tools, unedited, as a tenant runs them.

A source database holds rows of every common type (integers at their limits, DECIMAL, FLOAT and
DOUBLE, dates and times with fractions, utf8mb4 text with emoji, BLOB / BINARY / VARBINARY with
every byte value, BIT, JSON, ENUM, SET, NULLs), a foreign key and a view. ``mariadb-dump`` dumps
it through the proxy (default options, and ``--single-transaction --routines --events``); the
``mariadb`` client loads each file, as written and without ``--force``, through the proxy into
a fresh database made with the operator's CLI; every table's ``CHECKSUM TABLE`` and the view's
rows must match the source's. An account holding only table-level SELECT grants dumps what it
may read the same way.

Also here: LOCK TABLES (what it needs, a WRITE lock with table-level grants, the shard's rule
that a locked session touches only what it locked, UNLOCK TABLES releasing the session's bind),
CREATE / ALTER / DROP DATABASE, the metadata statements the tools send, and views (their
definer is always the mirror of the account that creates them).
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy.backend.mirror import mirror_user
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.test_enforcement import (
    PASSWORD,
    Env,
    db_denied,
    error_of,
    not_supported,
    rows,
    table_denied,
)
from tests.e2e.tools import new_database, run_tool

pytestmark = pytest.mark.skipif(
    shutil.which("mariadb-dump") is None or shutil.which("mariadb") is None,
    reason="the MariaDB client tools are not installed",
)

ADMIN_PASSWORD = "Dump#admin1"
OPTION_SETS = {
    "default": (),
    "single_transaction_routines_events": ("--single-transaction", "--routines", "--events"),
}
ALL_BYTES = bytes(range(256))

SCHEMA = (
    "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL) DEFAULT CHARSET=utf8mb4",
    """CREATE TABLE typed (
        id INT PRIMARY KEY AUTO_INCREMENT,
        i INT, bi BIGINT, ub BIGINT UNSIGNED, dc DECIMAL(30, 10), f FLOAT, d DOUBLE,
        dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(3), y YEAR,
        c CHAR(10), vc VARCHAR(200), tx TEXT, lt LONGTEXT,
        bl BLOB, bn BINARY(16), vb VARBINARY(300), bt BIT(8),
        js JSON, en ENUM('a', 'b', 'c'), st SET('x', 'y', 'z'),
        parent_id INT,
        CONSTRAINT typed_parent FOREIGN KEY (parent_id) REFERENCES parent (id)
    ) DEFAULT CHARSET=utf8mb4""",
    "CREATE TABLE secret (id INT PRIMARY KEY, v VARCHAR(20))",
    "CREATE VIEW parent_sizes AS SELECT p.id, p.name, COUNT(t.id) AS n "
    "FROM parent p LEFT JOIN typed t ON t.parent_id = p.id GROUP BY p.id, p.name",
)
PARENTS = [(1, "first ✓"), (2, "zweite 😀"), (3, "третий")]
TYPED_COLUMNS = (
    "i, bi, ub, dc, f, d, dt, dtm, ts, tm, y, c, vc, tx, lt, bl, bn, vb, bt, js, en, st, parent_id"
)
TYPED_ROWS: list[tuple[Any, ...]] = [
    (
        2147483647,
        9223372036854775807,
        18446744073709551615,
        Decimal("12345678901234567890.0123456789"),
        3.25,
        2.718281828459045,
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 1, 2, 3, 4, 5, 678901),
        datetime.datetime(2030, 6, 1, 12, 0, 0, 123456),
        "838:59:59.999",
        2155,
        "abc",
        "héllo wörld ✓ 😀🎉 'quoted' \"double\" back\\slash",
        "日本語テキスト 💾\n\ttab\r\0nul" * 50,
        "x" * 70_000,
        ALL_BYTES * 4,
        bytes([0, 39, 92, 255, 10, 13, 26, 34, 0, 1, 2, 3, 4, 5, 6, 7]),
        ALL_BYTES[::-1] + ALL_BYTES[:44],
        b"\xff",
        '{"a": [1, 2.5, {"b": "😀"}], "c": null, "d": "\\"q\\""}',
        "b",
        "x,z",
        1,
    ),
    (
        -2147483648,
        -9223372036854775808,
        0,
        Decimal("-0.0000000001"),
        -1.5,
        -1.7976931348623157e308,
        datetime.date(1000, 1, 1),
        datetime.datetime(1970, 1, 1, 0, 0, 0, 1),
        datetime.datetime(1980, 1, 1, 0, 0, 1),
        "-838:59:59",
        1901,
        "",
        "",
        "",
        "",
        b"",
        bytes(16),
        b"",
        b"\x00",
        "[]",
        "a",
        "",
        2,
    ),
    (None,) * 23,
]
TABLES = ("parent", "typed", "secret")


def _fill(conn: Any) -> None:
    for statement in SCHEMA:
        rows(conn, statement)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO parent VALUES (%s, %s)", PARENTS)
        marks = ", ".join(["%s"] * len(TYPED_ROWS[0]))
        cur.executemany(f"INSERT INTO typed ({TYPED_COLUMNS}) VALUES ({marks})", TYPED_ROWS)
        cur.executemany("INSERT INTO secret VALUES (%s, %s)", [(1, "TOPSECRET")])


def checksums(conn: Any, tables: tuple[str, ...]) -> dict[str, int]:
    """CHECKSUM TABLE of each table, by table name."""
    found = rows(conn, f"CHECKSUM TABLE {', '.join(tables)}")
    return {name.split(".", 1)[1]: value for name, value in found}


@dataclass
class Source:
    name: str
    conn: Any  # its administrator, through the proxy
    checksums: dict[str, int]
    view_rows: list[tuple[Any, ...]]


@pytest.fixture(scope="module")
def source(proxy: ProxyEnv) -> Iterator[Source]:
    name = new_database(proxy, "dumpsrc", ADMIN_PASSWORD)
    conn = proxy.connect(user=name, password=ADMIN_PASSWORD, database=name)
    try:
        _fill(conn)
        sums = checksums(conn, TABLES)
        assert all(sums.values())
        view = rows(conn, "SELECT * FROM parent_sizes ORDER BY id")
        assert view == [(1, "first ✓", 1), (2, "zweite 😀", 1), (3, "третий", 0)]
        yield Source(name, conn, sums, view)
    finally:
        conn.close()


def dump(
    proxy: ProxyEnv, user: str, password: str, database: str, options: tuple[str, ...]
) -> bytes:
    done = run_tool(proxy, "mariadb-dump", user, password, *options, database)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b"", done.stderr.decode()
    return done.stdout


def load(proxy: ProxyEnv, database: str, dumped: bytes) -> None:
    """The dump file, as written, into ``database`` as its administrator (no --force)."""
    done = run_tool(proxy, "mariadb", database, ADMIN_PASSWORD, database, stdin=dumped)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b"", done.stderr.decode()


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=list(OPTION_SETS))
def test_dump_loads_unedited_into_a_fresh_database(
    proxy: ProxyEnv, source: Source, options: tuple[str, ...]
) -> None:
    dumped = dump(proxy, source.name, ADMIN_PASSWORD, source.name, options)
    # What mariadb-dump writes that the proxy now takes as it is.
    for written in (
        b"/*M!999999\\- enable the sandbox mode */",
        b"SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT",
        b"/*!40000 ALTER TABLE `typed` DISABLE KEYS */",
        f"/*!50013 DEFINER=`{source.name}`@`%` SQL SECURITY DEFINER */".encode(),
    ):
        assert written in dumped
    assert b"sgm_" not in dumped  # the source's mirror
    assert b"LOCK TABLES `typed` WRITE" in dumped
    target = new_database(proxy, "dumpdst", ADMIN_PASSWORD)
    load(proxy, target, dumped)
    with proxy.connect(user=target, password=ADMIN_PASSWORD, database=target) as conn:
        assert checksums(conn, TABLES) == source.checksums
        assert rows(conn, "SELECT * FROM parent_sizes ORDER BY id") == source.view_rows
        assert rows(conn, "SELECT * FROM typed ORDER BY id") == rows(
            source.conn, "SELECT * FROM typed ORDER BY id"
        )
        # the foreign key came along
        with pytest.raises(pymysql.err.IntegrityError):
            rows(conn, "INSERT INTO typed (parent_id) VALUES (99)")
        # the view's definer is the loading account (its mirror on the shard), not the
        # source's; the client sees the account
        [(definer,)] = rows(
            conn,
            "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'parent_sizes'",
        )
        assert definer == f"{target}@%"
        shard = connect_admin(proxy.shards[0])
        try:
            [(on_shard,)] = rows(
                shard,
                "SELECT DEFINER FROM information_schema.VIEWS "
                f"WHERE TABLE_SCHEMA = '{target}' AND TABLE_NAME = 'parent_sizes'",
            )
        finally:
            shard.close()
        assert on_shard == f"{mirror_of(proxy, target, target)}@%"
        # session state the dump set and restored is the session's own again
        assert rows(conn, "SELECT @@session.foreign_key_checks, @@session.unique_checks") == [
            (1, 1)
        ]


def mirror_of(proxy: ProxyEnv, user: str, database: str) -> str:
    account = proxy.server.ctx.snapshot().find_account(user, "%")
    assert account is not None
    return mirror_user(proxy.config.catalog_secret(), account.id, database)


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=list(OPTION_SETS))
def test_an_account_with_table_level_select_dumps_what_it_may_read(
    proxy: ProxyEnv, source: Source, options: tuple[str, ...]
) -> None:
    reader = "tlread" + options_id(options)
    rows(source.conn, f"DROP USER IF EXISTS {reader}")
    rows(source.conn, f"CREATE USER {reader} IDENTIFIED BY '{PASSWORD}'")
    rows(source.conn, f"GRANT SELECT ON parent TO {reader}")
    rows(source.conn, f"GRANT SELECT ON typed TO {reader}")
    try:
        dumped = dump(proxy, reader, PASSWORD, source.name, options)
    finally:
        rows(source.conn, f"DROP USER {reader}")
    assert b"CREATE TABLE `typed`" in dumped and b"CREATE TABLE `parent`" in dumped
    assert b"secret" not in dumped and b"TOPSECRET" not in dumped
    assert b"parent_sizes" not in dumped  # no grant on the view
    target = new_database(proxy, "dumptl", ADMIN_PASSWORD)
    load(proxy, target, dumped)
    with proxy.connect(user=target, password=ADMIN_PASSWORD, database=target) as conn:
        assert rows(conn, "SHOW TABLES") == [("parent",), ("typed",)]
        wanted = {t: source.checksums[t] for t in ("parent", "typed")}
        assert checksums(conn, ("parent", "typed")) == wanted


def options_id(options: tuple[str, ...]) -> str:
    return "s" if options else "d"


# --------------------------------------------------------------------------------------------
# LOCK TABLES


@pytest.fixture(scope="module")
def env(proxy: ProxyEnv) -> Iterator[Env]:
    environment = Env(proxy)
    try:
        for statement in (
            "DROP TABLE IF EXISTS lk_a, lk_b",
            "CREATE TABLE lk_a (id INT PRIMARY KEY, v INT)",
            "INSERT INTO lk_a VALUES (1, 10)",
            "CREATE TABLE lk_b (id INT PRIMARY KEY)",
        ):
            environment.shard_exec(statement)
        yield environment
    finally:
        environment.shard_exec("DROP TABLE IF EXISTS lk_a, lk_b")
        environment.close()


def test_lock_tables_needs_select_and_for_write_a_write_privilege(env: Env) -> None:
    reader = env.create_account([("SELECT", "lk_a")], prefix="lk")
    writer = env.create_account([("SELECT, INSERT", "lk_a"), ("SELECT", "lk_b")], prefix="lk")
    with env.connect(reader) as conn:
        rows(conn, "LOCK TABLES lk_a READ")
        assert rows(conn, "SELECT v FROM lk_a") == [(10,)]
        rows(conn, "UNLOCK TABLES")
        assert error_of(conn, "LOCK TABLES lk_a WRITE") == table_denied(
            "LOCK TABLES", reader, "lk_a"
        )
        assert error_of(conn, "LOCK TABLES lk_a READ, lk_b READ") == table_denied(
            "SELECT", reader, "lk_b"
        )
        assert error_of(conn, "LOCK TABLES lk_a AS lk_b READ, lk_b AS x READ") == table_denied(
            "SELECT", reader, "lk_b"
        )
        # a database the account may not use: 1044, as USE would say
        assert error_of(conn, "LOCK TABLES otherdb.lk_a READ") == db_denied(reader, "otherdb")
    # A WRITE lock with table-level grants only (the mirror holds LOCK TABLES on the database).
    with env.connect(writer) as conn:
        rows(conn, "LOCK TABLES lk_a WRITE")
        rows(conn, "INSERT INTO lk_a VALUES (2, 20)")
        assert rows(conn, "SELECT COUNT(*) FROM lk_a") == [(2,)]
        # The shard's rule: a locked session touches only the tables it locked.
        assert error_of(conn, "SELECT COUNT(*) FROM lk_b") == (
            1100,
            "Table 'lk_b' was not locked with LOCK TABLES",
        )
        rows(conn, "UNLOCK TABLES")
        assert rows(conn, "SELECT COUNT(*) FROM lk_b") == [(0,)]
    assert env.on_shard("SELECT id, v FROM lk_a ORDER BY id") == [(1, 10), (2, 20)]
    env.shard_exec("DELETE FROM lk_a WHERE id = 2")


def test_unlock_tables_releases_the_session_from_its_connection(env: Env) -> None:
    """While a table lock is held the session cannot switch databases (the switch would lose
    it); UNLOCK TABLES ends that, and only that."""
    user = env.create_account([("SELECT", "lk_a")], prefix="lk")
    env.grant(user, "SELECT", None, db="otherdb")
    with env.connect(user) as conn:
        rows(conn, "LOCK TABLES lk_a READ")
        errno, message = error_of(conn, "USE otherdb")
        assert errno == 1235 and "Switching databases" in message
        rows(conn, "UNLOCK TABLES")
        rows(conn, "USE otherdb")
        rows(conn, "USE easydb")
        rows(conn, "LOCK TABLES lk_a READ")
        rows(conn, "SET @x = 1")
        rows(conn, "UNLOCK TABLES")
        errno, message = error_of(conn, "USE otherdb")  # the user variable still binds
        assert errno == 1235 and "Switching databases" in message


# --------------------------------------------------------------------------------------------
# CREATE / ALTER / DROP DATABASE


def test_database_statements(proxy: ProxyEnv) -> None:
    name = new_database(proxy, "dbstmt", ADMIN_PASSWORD)
    admin = proxy.connect(user=name, password=ADMIN_PASSWORD, database=name)
    shard = connect_admin(proxy.shards[0])
    collation = (
        "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        f"WHERE SCHEMA_NAME = '{name}'"
    )
    try:
        exists = (1007, f"Can't create database '{name}'; database exists")
        assert error_of(admin, f"CREATE DATABASE {name}") == exists
        assert error_of(admin, f"CREATE SCHEMA `{name}`") == exists
        rows(admin, f"CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4")
        assert rows(admin, "SHOW WARNINGS") == [("Note", 1007, exists[1])]
        rows(admin, "SELECT 1")
        # As MariaDB's area: kept through a statement that reads no table, gone after one
        assert rows(admin, "SHOW WARNINGS") == [("Note", 1007, exists[1])]
        rows(admin, "SELECT COUNT(*) FROM information_schema.SCHEMATA")
        assert rows(admin, "SHOW WARNINGS") == []
        for sql, db in (
            ("CREATE DATABASE otherdb", "otherdb"),
            ("CREATE DATABASE IF NOT EXISTS nosuchdb", "nosuchdb"),
            (f"CREATE OR REPLACE DATABASE {name}", name),
            (f"DROP DATABASE {name}", name),
            ("DROP DATABASE IF EXISTS otherdb", "otherdb"),
            ("ALTER DATABASE otherdb CHARACTER SET latin1", "otherdb"),
        ):
            assert error_of(admin, sql) == db_denied(name, db), sql
        # ALTER DATABASE of its own database: the administrator's, relayed to the shard.
        rows(admin, f"ALTER DATABASE {name} CHARACTER SET latin1 COLLATE latin1_swedish_ci")
        assert rows(shard, collation) == [("latin1_swedish_ci",)]
        rows(admin, "ALTER DATABASE DEFAULT CHARACTER SET utf8mb4 COLLATE = utf8mb4_bin")
        assert rows(shard, collation) == [("utf8mb4_bin",)]
        # Anyone else: 1044, whatever they hold.
        rows(admin, f"CREATE USER dbstmtuser IDENTIFIED BY '{PASSWORD}'")
        rows(admin, f"GRANT ALL PRIVILEGES ON {name}.* TO dbstmtuser")
        with proxy.connect(user="dbstmtuser", password=PASSWORD, database=name) as conn:
            for sql in (
                f"CREATE DATABASE {name}",
                f"CREATE DATABASE IF NOT EXISTS {name}",
                "ALTER DATABASE CHARACTER SET latin1",
            ):
                assert error_of(conn, sql) == db_denied("dbstmtuser", name), sql
        assert rows(shard, collation) == [("utf8mb4_bin",)]
    finally:
        admin.close()
        shard.close()


# --------------------------------------------------------------------------------------------
# What the tools ask for


def test_tool_metadata(source: Source) -> None:
    admin = source.conn
    with admin.cursor() as cur:
        cur.execute("SHOW EVENTS")
        assert cur.fetchall() == ()
        assert [d[0] for d in cur.description] == [
            *("Db", "Name", "Definer", "Time zone", "Type", "Execute at", "Interval value"),
            *("Interval field", "Starts", "Ends", "Status", "Originator"),
            *("character_set_client", "collation_connection", "Database Collation"),
        ]
    assert rows(admin, f"SHOW EVENTS FROM {source.name} WHERE Name LIKE 'x%'") == []
    assert error_of(admin, "SHOW EVENTS FROM otherdb") == db_denied(source.name, "otherdb")
    for sql in (
        "SHOW TRIGGERS",
        f"SHOW TRIGGERS FROM {source.name} LIKE 'ty%'",
        "SHOW PROCEDURE STATUS",
        f"SHOW FUNCTION STATUS WHERE Db = '{source.name}'",
        f"SHOW PACKAGE STATUS WHERE Db = '{source.name}'",
        f"SHOW PACKAGE BODY STATUS WHERE Db = '{source.name}'",
    ):
        assert rows(admin, sql) == [], sql
    plugins = [r[0] for r in rows(admin, "SHOW PLUGINS")]
    assert "InnoDB" in plugins
    assert error_of(admin, "SHOW PLUGINS SONAME") == not_supported("SHOW PLUGINS SONAME")


def test_routines_made_on_the_shard_stay_hidden(env: Env) -> None:
    """The mirror holds no routine privilege: routines the shard's operator made are not shown
    (the shard filters them)."""
    env.shard_exec("DROP PROCEDURE IF EXISTS dr_proc")
    env.shard_exec("CREATE PROCEDURE dr_proc() SELECT 1")
    try:
        assert rows(env.admin, "SHOW PROCEDURE STATUS") == []
        assert rows(env.admin, "SHOW PROCEDURE STATUS WHERE Db = 'easydb'") == []
    finally:
        env.shard_exec("DROP PROCEDURE IF EXISTS dr_proc")


# --------------------------------------------------------------------------------------------
# Views


def definer_on_shard(env: Env, view: str) -> str:
    [(definer,)] = env.on_shard(
        "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'easydb' "
        f"AND TABLE_NAME = '{view}'"
    )
    return str(definer)


def test_a_view_never_runs_with_more_than_its_creators_grants(proxy: ProxyEnv, env: Env) -> None:
    creator = env.create_account(
        [("SELECT", "lk_a"), ("SELECT, CREATE, DROP", "vw_one")], prefix="vw"
    )
    mirror = mirror_of(proxy, creator, "easydb")
    admin_mirror = mirror_of(proxy, "easydb", "easydb")
    try:
        with env.connect(creator) as conn:
            # what the query reads needs SELECT; the view's name CREATE
            sql = "CREATE VIEW vw_one AS SELECT id FROM lk_b"
            assert error_of(conn, sql) == table_denied("SELECT", creator, "lk_b")
            sql = "CREATE VIEW vw_two AS SELECT id FROM lk_a"
            assert error_of(conn, sql) == table_denied("CREATE", creator, "vw_two")
            # whatever DEFINER names, the creator's mirror defines the view
            rows(
                conn,
                f"CREATE DEFINER=`{admin_mirror}`@`%` SQL SECURITY DEFINER VIEW vw_one "
                "AS SELECT id, v FROM lk_a",
            )
            assert definer_on_shard(env, "vw_one") == f"{mirror}@%"
            rows(
                conn,
                "/*!50001 CREATE OR REPLACE ALGORITHM=UNDEFINED */ /*!50013 DEFINER="
                "'root'@'localhost' SQL SECURITY DEFINER */ "
                "/*!50001 VIEW vw_one AS SELECT id FROM lk_a */",
            )
            assert definer_on_shard(env, "vw_one") == f"{mirror}@%"
            rows(
                conn,
                "/* ünï 😀 */ CREATE OR REPLACE DEFINER = 'bob'@'%' VIEW vw_one "
                "AS SELECT v AS `wért ü` FROM lk_a WHERE 'ä' <> '😀'",
            )
            assert definer_on_shard(env, "vw_one") == f"{mirror}@%"
            assert rows(conn, "SELECT `wért ü` FROM vw_one") == [(10,)]
            rows(conn, "CREATE OR REPLACE DEFINER = CURRENT_USER VIEW vw_one AS SELECT v FROM lk_a")
            assert definer_on_shard(env, "vw_one") == f"{mirror}@%"
            # the account that made it reads it; so does the administrator
            assert rows(conn, "SELECT v FROM vw_one") == [(10,)]
        assert rows(env.admin, "SELECT v FROM vw_one") == [(10,)]
        # Once its creator may no longer read lk_a, nobody reads lk_a through the view: it runs
        # with its definer's (the creator's mirror's) current grants.
        env.revoke(creator, "SELECT", "lk_a")
        errno, message = error_of(env.admin, "SELECT v FROM vw_one")
        assert errno == 1356, message
    finally:
        env.shard_exec("DROP VIEW IF EXISTS vw_one, vw_two")


def test_view_definer_replacement_only_where_it_can_be_done(env: Env) -> None:
    """The DEFINER account is replaced at its token position in a text request, alone or in a
    multi-statement packet; a prepared CREATE VIEW naming a DEFINER is refused (a view without
    DEFINER is not)."""
    admin = env.admin
    try:
        connector = env.proxy.connector()
        try:
            cur = connector.cursor(prepared=True)
            with pytest.raises(Exception) as info:
                cur.execute("CREATE DEFINER=u VIEW vw_three AS SELECT 1 AS one")
            assert getattr(info.value, "errno", None) == 1235
        finally:
            connector.close()
        assert env.on_shard("SHOW TABLES LIKE 'vw_three'") == []
        with env.proxy.connect(client_flag=CLIENT.MULTI_STATEMENTS) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1; CREATE DEFINER=`root`@`%` VIEW vw_three AS SELECT 1 AS one")
                while cur.nextset():
                    pass
        assert env.on_shard("SELECT one FROM vw_three") == [(1,)]
        [(definer,)] = env.on_shard(
            "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_NAME = 'vw_three'"
        )
        assert str(definer).startswith("sgm_"), definer  # the creator's mirror, not root
        rows(admin, "DROP VIEW vw_three")
        assert env.on_shard("SHOW TABLES LIKE 'vw_three'") == []
    finally:
        env.shard_exec("DROP VIEW IF EXISTS vw_three")


def test_the_shard_refuses_a_definer_it_was_not_sent(proxy: ProxyEnv) -> None:
    """Why the proxy replaces DEFINER: the mirror, which holds no SUPER or SET USER, could
    not make a view for another account (MariaDB's 1227)."""
    shard = connect_admin(proxy.shards[0], "easydb")
    try:
        rows(shard, "CREATE USER IF NOT EXISTS 'dr_plain'@'%' IDENTIFIED BY 'Dr#plain1'")
        rows(shard, "GRANT SELECT, CREATE VIEW ON easydb.* TO 'dr_plain'@'%'")
        plain = pymysql.connect(
            host=proxy.shards[0].host,
            port=proxy.shards[0].port,
            user="dr_plain",
            password="Dr#plain1",
            database="easydb",
        )
        try:
            errno, _ = error_of(plain, "CREATE DEFINER=root@localhost VIEW dr_v AS SELECT 1")
            assert errno == 1227
        finally:
            plain.close()
    finally:
        rows(shard, "DROP USER IF EXISTS 'dr_plain'@'%'")
        shard.close()


def test_view_definer_replaced_whatever_touches_it(proxy: ProxyEnv, env: Env) -> None:
    """The account is replaced by a word of its own: text written right against it stays
    apart (MariaDB reads ``DEFINER='u'@'h'VIEW`` as DEFINER then VIEW)."""
    try:
        rows(env.admin, "CREATE DEFINER='bob'@'%'VIEW vw_four AS SELECT 1 AS one")
        assert definer_on_shard(env, "vw_four") == f"{mirror_of(proxy, 'easydb', 'easydb')}@%"
    finally:
        env.shard_exec("DROP VIEW IF EXISTS vw_four")
