"""Views on a sharded database, and a dump of one restored into a fresh sharded database,
through real clients on two shards.

A view is made on physical database 0, where the single tables live whole: one reading only
single tables (or other such views) works as on MariaDB -- its rows, writes through it,
``SHOW CREATE VIEW``, ``SHOW [FULL] TABLES`` (listed as ``VIEW``), information_schema's
``VIEWS`` (the logical database's name in its definition), ``DROP VIEW``. One reading a
sharded table (physical database 0's partition alone) or a broadcast table (a write through it
would reach copy 0 alone) is refused with 1235 and nothing is made.

``mariadb-dump`` of the sharded database (sharded tables with their DRDS clause, a broadcast
and a single table, views) restores through the proxy into a fresh sharded database with the
same number of physical databases: every physical database then holds the same tables with the
same rows, read directly on the shards, and the views answer the same.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysql.constants import COMMAND

from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, sharded_database
from tests.e2e.tools import run_tool

PASSWORD = "Views#pass1"
DB = "shview"
RESTORED = "shviewr"
PARTITIONS = 4
SETUP = (
    "CREATE TABLE sp (id bigint NOT NULL AUTO_INCREMENT, v varchar(20), PRIMARY KEY (id))"
    " DBPARTITION BY HASH(id)",
    "CREATE TABLE st (id int NOT NULL, w int, PRIMARY KEY (id))"
    " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
    "CREATE TABLE b (k int NOT NULL PRIMARY KEY, n varchar(10)) BROADCAST",
    "CREATE TABLE s (k int NOT NULL PRIMARY KEY, n varchar(10), b_k int)",
    "INSERT INTO sp (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')",
    "INSERT INTO sp (v) VALUES ('from the sequence'), ('and again')",
    "INSERT INTO st VALUES (1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 60), (7, 70)",
    "INSERT INTO b VALUES (1, 'one'), (2, 'two')",
    "INSERT INTO s VALUES (1, 'p', 1), (2, 'q', 2), (3, 'r', NULL)",
    "CREATE VIEW vs AS SELECT k, n FROM s WHERE k < 3",
    "CREATE VIEW vv (kk, nn) AS SELECT k, UPPER(n) FROM vs",
    "CREATE VIEW vq AS SELECT k, n FROM shview.s WHERE b_k IS NULL",
)
LEAKS = (f"{DB}_000", "st_0")

pytestmark = pytest.mark.skipif(
    shutil.which("mariadb-dump") is None or shutil.which("mariadb") is None,
    reason="the MariaDB client tools are not installed",
)


@pytest.fixture(scope="module")
def views(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD, PARTITIONS, SETUP) as env:
        yield env


@pytest.fixture
def conn(views: ProxyEnv) -> Iterator[Any]:
    connection = views.connect(DB, PASSWORD, database=DB)
    try:
        yield connection
    finally:
        connection.close()


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(row) for row in cur.fetchall()]


def _refused(conn: Any, sql: str) -> tuple[int, str]:
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as failed:
        cur.execute(sql)
    return failed.value.args[0], failed.value.args[1]


def _no_leak(found: object) -> None:
    text = str(found)
    assert not any(leak in text for leak in LEAKS), text


def test_views_of_single_tables_work_as_on_mariadb(views: ProxyEnv, conn: Any) -> None:
    assert _rows(conn, "SELECT * FROM vs ORDER BY k") == [(1, "p"), (2, "q")]
    assert _rows(conn, "SELECT * FROM vv ORDER BY kk") == [(1, "P"), (2, "Q")]
    assert _rows(conn, "SELECT * FROM vq") == [(3, "r")]
    # Read with a broadcast table: physical database 0 holds a whole copy of it.
    assert _rows(conn, "SELECT vs.n, b.n FROM vs JOIN b ON b.k = vs.k ORDER BY vs.k") == [
        ("p", "one"),
        ("q", "two"),
    ]
    # With a sharded table: refused, as with a single table (physical database 0 alone).
    errno, message = _refused(conn, "SELECT * FROM vs JOIN sp ON sp.id = vs.k")
    assert errno == 1235 and "sharded table sp and table vs" in message
    shown = _rows(conn, "SHOW CREATE VIEW vs")
    _no_leak(shown)
    assert shown[0][0] == "vs"
    assert "VIEW `vs` AS select `s`.`k` AS `k`,`s`.`n` AS `n` from `s` where" in shown[0][1]
    assert _rows(conn, "SHOW CREATE TABLE vq") == _rows(conn, "SHOW CREATE VIEW vq")
    _no_leak(_rows(conn, "SHOW CREATE VIEW vq"))
    assert _rows(conn, "SHOW TABLES") == [(n,) for n in ("b", "s", "sp", "st", "vq", "vs", "vv")]
    assert _rows(conn, "SHOW FULL TABLES") == [
        ("b", "BASE TABLE"),
        ("s", "BASE TABLE"),
        ("sp", "BASE TABLE"),
        ("st", "BASE TABLE"),
        ("vq", "VIEW"),
        ("vs", "VIEW"),
        ("vv", "VIEW"),
    ]
    assert _rows(conn, "SHOW TABLES LIKE 'v%s'") == [("vs",)]
    assert _rows(conn, "SHOW FULL TABLES WHERE Table_type = 'VIEW'") == [
        ("vq", "VIEW"),
        ("vs", "VIEW"),
        ("vv", "VIEW"),
    ]
    assert _rows(conn, "SHOW FULL TABLES WHERE Table_type <> 'VIEW'") == [
        (n, "BASE TABLE") for n in ("b", "s", "sp", "st")
    ]
    assert _rows(
        conn,
        "SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS"
        " WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
    ) == [
        (
            DB,
            "vq",
            f"select `{DB}`.`s`.`k` AS `k`,`{DB}`.`s`.`n` AS `n` from `{DB}`.`s`"
            f" where `{DB}`.`s`.`b_k` is null",
        ),
        (
            DB,
            "vs",
            f"select `{DB}`.`s`.`k` AS `k`,`{DB}`.`s`.`n` AS `n` from `{DB}`.`s`"
            f" where `{DB}`.`s`.`k` < 3",
        ),
        (DB, "vv", f"select `vs`.`k` AS `kk`,ucase(`vs`.`n`) AS `nn` from `{DB}`.`vs`"),
    ]

    # ... under the column definitions MariaDB gives them.
    def definitions(connection: Any) -> list[tuple[Any, ...]]:
        with connection.cursor() as cur:
            cur.execute("SELECT * FROM information_schema.VIEWS")
            fields = cur._result.fields if cur._result is not None else []
            named = [(f.db, f.table_name, f.org_table, f.name, f.org_name) for f in fields]
            typed = [(f.charsetnr, f.length, f.type_code, f.flags, f.scale) for f in fields]
            return list(zip(named, typed, strict=True))

    direct = connect_admin(views.shards[0], database=f"{DB}_0000")
    try:
        assert definitions(conn) == definitions(direct)
    finally:
        direct.close()
    status = _rows(conn, "SHOW TABLE STATUS LIKE 'v%'")
    assert [(r[0], r[1], r[17]) for r in status] == [(n, None, "VIEW") for n in ("vq", "vs", "vv")]
    tables = _rows(
        conn,
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'VIEW' ORDER BY TABLE_NAME",
    )
    assert tables == [("vq", "VIEW"), ("vs", "VIEW"), ("vv", "VIEW")]
    # Writes through the view reach the single table.
    assert _rows(conn, "UPDATE vs SET n = 'qq' WHERE k = 2") == []
    assert _rows(conn, "SELECT n FROM s WHERE k = 2") == [("qq",)]
    _rows(conn, "UPDATE s SET n = 'q' WHERE k = 2")
    # The view's columns (SHOW COLUMNS, COM_FIELD_LIST: the mariadb client's completion).
    assert [r[0] for r in _rows(conn, f"SHOW FULL COLUMNS FROM vs FROM {DB}")] == ["k", "n"]
    conn._execute_command(COMMAND.COM_FIELD_LIST, b"vv\0")
    listed = [conn._read_packet() for _ in range(2)]
    assert [p.read_length_coded_string() for p in _field_names(listed)] == [b"kk", b"nn"]
    assert conn._read_packet().is_eof_packet()
    # Locked with a sharded table (as mariadb-dump's default LOCK TABLES ... READ LOCAL).
    _rows(conn, "LOCK TABLES vs READ LOCAL, sp READ LOCAL")
    assert _rows(conn, "SELECT k FROM vs ORDER BY k") == [(1,), (2,)]
    _rows(conn, "UNLOCK TABLES")
    # DROP VIEW, CREATE OR REPLACE VIEW and a qualified name.
    _rows(
        conn,
        "CREATE OR REPLACE DEFINER = `root`@`localhost` VIEW"
        f" {DB}.vtmp AS SELECT COUNT(*) AS c FROM {DB}.s",
    )
    assert _rows(conn, "SELECT c FROM vtmp") == [(3,)]
    assert ("vtmp", "VIEW") in _rows(conn, "SHOW FULL TABLES")
    # RENAME TABLE renames a view, never into a table's name nor together with tables.
    _rows(conn, "RENAME TABLE vtmp TO vtmp2")
    assert _rows(conn, "SELECT c FROM vtmp2") == [(3,)]
    assert _refused(conn, "RENAME TABLE vtmp2 TO st") == (1050, "Table 'st' already exists")
    assert _refused(conn, "RENAME TABLE vtmp2 TO v3, s TO s3")[0] == 1235
    # DROP TABLE of a view, or of nothing there is: MariaDB's errors, under the logical name.
    assert _refused(conn, "DROP TABLE vtmp2") == (1965, f"'{DB}.vtmp2' is a view")
    assert _refused(conn, "DROP TABLE nope") == (1051, f"Unknown table '{DB}.nope'")
    _rows(conn, f"DROP VIEW {DB}.vtmp2")
    assert ("vtmp2",) not in _rows(conn, "SHOW TABLES")


def _field_names(packets: list[Any]) -> list[Any]:
    """COM_FIELD_LIST's column definitions, each read up to its name."""
    for packet in packets:
        for _ in range(4):  # catalog, schema, table, org_table
            packet.read_length_coded_string()
    return packets


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("CREATE VIEW x AS SELECT id, v FROM sp", "sharded table sp"),
        ("CREATE VIEW x AS SELECT * FROM st WHERE id = 3", "sharded table st"),
        ("CREATE OR REPLACE VIEW x AS SELECT k FROM b", "broadcast table b"),
        ("CREATE VIEW x AS SELECT s.k FROM s JOIN b ON b.k = s.b_k", "broadcast table b"),
        ("CREATE VIEW x AS SELECT k FROM s WHERE k IN (SELECT id FROM sp)", "sharded table sp"),
        (
            "CREATE ALGORITHM = MERGE DEFINER = CURRENT_USER SQL SECURITY INVOKER VIEW"
            f" {DB}.x AS SELECT COUNT(*) FROM {DB}.sp",
            "sharded table sp",
        ),
        ("CREATE VIEW st_00 AS SELECT 1", "physical table"),
    ],
)
def test_views_reading_sharded_or_broadcast_tables_are_refused(
    views: ProxyEnv, conn: Any, sql: str, why: str
) -> None:
    errno, message = _refused(conn, sql)
    assert errno == 1235, message
    assert why in message
    assert f"{DB}_000" not in message
    for index in range(PARTITIONS):
        made = physical(
            views,
            DB,
            index,
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()",
        )
        assert sorted(made) == ([("vq",), ("vs",), ("vv",)] if index == 0 else [])


def test_an_account_lists_the_views_it_holds_privileges_on(views: ProxyEnv, conn: Any) -> None:
    user, password = "viewnarrow", "Narrow#view1"
    _rows(conn, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    try:
        _rows(conn, f"GRANT SELECT ON {DB}.vs TO '{user}'@'%'")
        _rows(conn, f"GRANT SELECT ON {DB}.sp TO '{user}'@'%'")
        narrow = views.connect(user, password, database=DB)
        try:
            assert _rows(narrow, "SHOW FULL TABLES") == [("sp", "BASE TABLE"), ("vs", "VIEW")]
            assert _rows(narrow, "SELECT * FROM vs ORDER BY k") == [(1, "p"), (2, "q")]
            assert _refused(narrow, "SELECT * FROM vv")[0] == 1142
        finally:
            narrow.close()
    finally:
        _rows(conn, f"DROP USER '{user}'@'%'")


def test_a_view_named_as_a_split_table_exists_already(conn: Any) -> None:
    assert _refused(conn, "CREATE VIEW st AS SELECT 1") == (1050, "Table 'st' already exists")


def _column(conn: Any, sql: str) -> tuple[Any, ...]:
    """The definition of the last column of ``sql``'s answer, as the client reads it."""
    with conn.cursor() as cur:
        cur.execute(sql)
        cur.fetchall()
        field = cur._result.fields[-1]
        return (
            field.name,
            field.type_code,
            field.length,
            field.flags,
            field.scale,
            field.charsetnr,
        )


def _counter(conn: Any, table: str) -> int | None:
    """The AUTO_INCREMENT=n SHOW CREATE TABLE shows of ``table``, if any."""
    ((_, shown),) = _rows(conn, f"SHOW CREATE TABLE `{table}`")
    found = re.search(r" AUTO_INCREMENT=(\d+)", shown)
    return None if found is None else int(found.group(1))


def test_show_create_table_shows_the_sequence_as_mariadb_shows_a_counter(
    views: ProxyEnv, conn: Any
) -> None:
    """A sharded table's AUTO_INCREMENT=n is where its GROUP sequence stands, in the form and
    place MariaDB shows a plain table's counter at that value; ALTER TABLE ... AUTO_INCREMENT
    moves the sequence (never below a value reserved)."""
    columns = "(id bigint NOT NULL AUTO_INCREMENT, v varchar(20), PRIMARY KEY (id))"
    _rows(conn, f"CREATE TABLE ai {columns} DBPARTITION BY HASH(id)")
    try:
        # Before any value was taken: the CREATE's start (DRDS's default 100001).
        assert _counter(conn, "ai") == 100001
        _rows(conn, "INSERT INTO ai (v) VALUES ('x'), ('y')")
        ids = [row[0] for row in _rows(conn, "SELECT id FROM ai ORDER BY id")]
        position = _counter(conn, "ai")
        assert position is not None and position > max(ids)
        # SHOW TABLE STATUS's Auto_increment: the same, not a physical table's counter.
        assert [row[10] for row in _rows(conn, "SHOW TABLE STATUS LIKE 'ai'")] == [position]
        # information_schema.TABLES' AUTO_INCREMENT (where GUI tools read it): the same, in
        # the column definition MariaDB's own has.
        counter = (
            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('ai', 'ai_copy')"
        )
        assert _rows(conn, counter) == [("ai", position)]
        every = "SELECT * FROM information_schema.TABLES WHERE TABLE_NAME = 'ai'"
        assert [row[13] for row in _rows(conn, every)] == [position]
        direct = connect_admin(views.shards[0])
        try:
            assert _column(conn, counter) == _column(direct, counter)
        finally:
            direct.close()
        ((_, shown),) = _rows(conn, "SHOW CREATE TABLE ai")
        # A plain MariaDB table with these rows and its counter at that value.
        physical(views, DB, 0, f"CREATE TABLE plain_ai {columns}")
        try:
            physical(views, DB, 0, f"INSERT INTO plain_ai (id) VALUES ({ids[0]}), ({ids[1]})")
            physical(views, DB, 0, f"ALTER TABLE plain_ai AUTO_INCREMENT = {position}")
            ((_, plain),) = physical(views, DB, 0, "SHOW CREATE TABLE plain_ai")
        finally:
            physical(views, DB, 0, "DROP TABLE plain_ai")
        assert f" AUTO_INCREMENT={position} " in plain
        assert shown == plain.replace("`plain_ai`", "`ai`") + " dbpartition by hash(`id`)"
        # ALTER TABLE ... AUTO_INCREMENT = n: the sequence moves there, as MariaDB's counter.
        _rows(conn, "ALTER TABLE ai AUTO_INCREMENT = 500000")
        assert _counter(conn, "ai") == 500000
        _rows(conn, "INSERT INTO ai (v) VALUES ('z')")
        assert _rows(conn, "SELECT id FROM ai WHERE v = 'z'") == [(500000,)]
        # Below the values reserved: it stays (no value handed out twice).
        moved = _counter(conn, "ai")
        _rows(conn, "ALTER TABLE ai AUTO_INCREMENT = 5")
        assert _counter(conn, "ai") == moved
        # The physical tables' counters mean nothing for it: CHECK TABLE sees them alike.
        assert _rows(conn, "CHECK TABLE ai") == [(f"{DB}.ai", "check", "status", "OK")]
    finally:
        _rows(conn, "DROP TABLE ai")


def test_show_create_table_of_a_single_table_shows_its_counter(views: ProxyEnv, conn: Any) -> None:
    """A single table keeps MariaDB's own AUTO_INCREMENT counter: SHOW CREATE TABLE shows
    it as its table on physical database 0 does (a dump restored goes on from it)."""
    _rows(conn, "CREATE TABLE si (id int NOT NULL AUTO_INCREMENT, v int, PRIMARY KEY (id))")
    try:
        assert _counter(conn, "si") is None  # (next value 1: MariaDB shows none)
        _rows(conn, "INSERT INTO si (v) VALUES (1), (2), (3)")
        _rows(conn, "DELETE FROM si WHERE id = 3")
        ((_, shown),) = _rows(conn, "SHOW CREATE TABLE si")
        ((_, own),) = physical(views, DB, 0, "SHOW CREATE TABLE si")
        assert _counter(conn, "si") == 4
        assert shown == own
    finally:
        _rows(conn, "DROP TABLE si")


def _physical_contents(env: ProxyEnv, name: str) -> list[list[tuple[Any, ...]]]:
    """Every physical database's tables and their rows, read directly on the shards."""
    found = []
    for index in range(PARTITIONS):
        tables = physical(env, name, index, "SHOW FULL TABLES")
        contents: list[tuple[Any, ...]] = []
        for table, kind in sorted(tables):
            if kind == "VIEW":
                contents.append((table, kind))
                continue
            rows = physical(env, name, index, f"SELECT * FROM `{table}` ORDER BY 1")
            contents.append((table, kind, rows))
        found.append(contents)
    return found


def _definitions(conn: Any) -> list[tuple[Any, ...]]:
    """Each table's and view's SHOW CREATE, the view's definer left out (the restoring
    account's mirror)."""
    shown = []
    for (name,) in _rows(conn, "SHOW TABLES"):
        (row,) = _rows(conn, f"SHOW CREATE TABLE `{name}`")
        shown.append((row[0], re.sub(r"DEFINER=`[^`]*`@`[^`]*` ", "", row[1])))
    return shown


def test_dump_restores_into_a_fresh_sharded_database(views: ProxyEnv) -> None:
    dumped = run_tool(views, "mariadb-dump", DB, PASSWORD, "--skip-add-locks", DB)
    assert dumped.returncode == 0, dumped.stderr
    # With its default options (LOCK TABLES ... READ LOCAL of the tables and views): the same.
    locking = run_tool(views, "mariadb-dump", DB, PASSWORD, DB)
    assert locking.returncode == 0, locking.stderr

    def lines(dump: bytes) -> list[bytes]:
        kept = (b"LOCK TABLES", b"UNLOCK TABLES", b"-- Dump completed")
        return [line for line in dump.splitlines() if not line.startswith(kept)]

    assert lines(locking.stdout) == lines(dumped.stdout)
    _no_leak(dumped.stdout)
    assert b"dbpartition by hash(`id`) tbpartition by hash(`id`) tbpartitions 2" in dumped.stdout
    assert b" BROADCAST" in dumped.stdout or b" broadcast" in dumped.stdout
    assert b"VIEW `vs` AS select" in dumped.stdout
    with sharded_database(views, RESTORED, PASSWORD, PARTITIONS):
        restored = run_tool(views, "mariadb", RESTORED, PASSWORD, RESTORED, stdin=dumped.stdout)
        assert restored.returncode == 0, restored.stderr
        assert _physical_contents(views, RESTORED) == _physical_contents(views, DB)
        source = views.connect(DB, PASSWORD, database=DB)
        target = views.connect(RESTORED, PASSWORD, database=RESTORED)
        try:
            assert _definitions(target) == _definitions(source)
            assert _rows(target, "SHOW FULL TABLES") == _rows(source, "SHOW FULL TABLES")
            assert _rows(target, "SHOW RULE") == _rows(source, "SHOW RULE")
            for view in ("vs", "vv", "vq"):
                assert _rows(target, f"SELECT * FROM {view} ORDER BY 1") == _rows(
                    source, f"SELECT * FROM {view} ORDER BY 1"
                )
            # The dump carries where sp's GROUP sequence stands (SHOW CREATE TABLE's
            # AUTO_INCREMENT=n, past every value given), and its CREATE TABLE starts the
            # restored table's sequence there: a row without its key goes on after the rows
            # restored (it took 100001 again, a duplicate key, before).
            ((highest,),) = _rows(target, "SELECT MAX(id) FROM sp")
            position = _counter(source, "sp")
            assert position is not None and position > highest
            assert b") ENGINE=InnoDB AUTO_INCREMENT=%d " % position in dumped.stdout
            assert _counter(target, "sp") == position
            _rows(target, "INSERT INTO sp (v) VALUES ('after the restore')")
            assert _rows(target, f"SELECT v FROM sp WHERE id > {highest}") == [
                ("after the restore",)
            ]
        finally:
            source.close()
            target.close()
    # Restored over the source itself (DROP TABLE then CREATE TABLE ... AUTO_INCREMENT=n),
    # through the node that holds a range of sp's old sequence: the new one starts at n.
    again = run_tool(views, "mariadb", DB, PASSWORD, DB, stdin=dumped.stdout)
    assert again.returncode == 0, again.stderr
    source = views.connect(DB, PASSWORD, database=DB)
    try:
        assert _counter(source, "sp") == position
        _rows(source, "INSERT INTO sp (v) VALUES ('after the restore')")
        assert _rows(source, "SELECT id FROM sp WHERE v = 'after the restore'") == [(position,)]
    finally:
        source.close()
