"""Table maintenance on a sharded database (ANALYZE, CHECK, CHECKSUM, OPTIMIZE, REPAIR TABLE),
against one MariaDB holding the same rows.

``mariadb-check --analyze`` (or ``--optimize``, ``--repair``) failed on any database with a
sharded or broadcast table (1235), ``CHECKSUM TABLE`` of a split table was refused and of a
broadcast table named the physical database (``shmaint_0000.b``), and ``CHECK TABLE`` only
compared the physical definitions without checking a row. Each now runs on every physical
table (CHECKSUM reads one copy of a broadcast table), and the rows are combined per logical
table: the same rows and column definitions as the plain twin's, a checksum equal to the
one table's (MariaDB sums its rows' checksums modulo 2**32).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, plain_twin, shard_of, sharded_database
from tests.e2e.tools import error_of, run_tool

DB = "shmaint"
PASSWORD = "Shmaint#pass1"
SPLIT = (
    "CREATE TABLE t (id INT NOT NULL, name VARCHAR(20), amount DECIMAL(8,2), note BLOB,"
    " PRIMARY KEY (id), KEY (name))"
)
COPIES = "CREATE TABLE b (code CHAR(3) NOT NULL PRIMARY KEY, label VARCHAR(30))"
SINGLE = "CREATE TABLE s (k INT NOT NULL PRIMARY KEY, v DOUBLE)"
ROWS = [
    "INSERT INTO t VALUES "
    + ", ".join(
        f"({n}, {'NULL' if n % 7 == 0 else repr(f'name{n}')}, {n * 3.25:.2f},"
        f" {'NULL' if n % 5 == 0 else repr('x' * (n % 11))})"
        for n in range(1, 121)
    ),
    "INSERT INTO b VALUES ('AAA', 'first'), ('BBB', NULL), ('CCC', 'third')",
    "INSERT INTO s VALUES (1, 0.5), (2, NULL)",
]


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        SPLIT + " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
        COPIES + " BROADCAST",
        SINGLE,
        *ROWS,
    ]
    with (
        sharded_database(proxy, DB, PASSWORD, setup=setup),
        plain_twin(proxy, DB, [SPLIT, COPIES, SINGLE, *ROWS]),
    ):
        yield proxy


def _answer(conn: Any, sql: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``sql``'s rows and its columns' definitions (name, type, length, flags, charset,
    decimals)."""
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = [tuple(row) for row in cur.fetchall()]
        fields = [
            (f.name, f.type_code, f.length, f.flags, f.charsetnr, f.scale)
            for f in cur._result.fields
        ]
    return rows, fields


def test_checksums_are_one_tables(sharded: ProxyEnv) -> None:
    """CHECKSUM TABLE of a split, a broadcast and a single table: the twin's numbers, rows
    and column definitions (QUICK on InnoDB: NULL), before and after rows change."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    twin = connect_admin(env.shards[0], database=DB)
    try:
        for _ in range(2):
            for sql in (
                "CHECKSUM TABLE t",
                "CHECKSUM TABLE t, b, s EXTENDED",
                "checksum table `b`, shmaint.t",
                "CHECKSUM TABLE t QUICK",
            ):
                found = _answer(conn, sql)
                assert found == _answer(twin, sql), sql
                assert found[0][0][1] is not None or "QUICK" in sql, sql
            with conn.cursor() as cur, twin.cursor() as other:
                for sql in ("CHECKSUM TABLE t, b, T", "ANALYZE TABLE b, t, B"):
                    assert error_of(cur, sql) == error_of(other, sql), sql
            for each in (conn, twin):
                with each.cursor() as cur:
                    cur.execute("UPDATE t SET amount = amount + 1 WHERE id % 3 = 0")
                    cur.execute("DELETE FROM t WHERE id = 17")
    finally:
        conn.close()
        twin.close()


@pytest.mark.parametrize(
    "sql",
    [
        "ANALYZE TABLE t",
        "ANALYZE TABLE t, b, s",
        "ANALYZE TABLE s",
        "OPTIMIZE TABLE s, nothere",
        "ANALYZE NO_WRITE_TO_BINLOG TABLE b",
        "ANALYZE TABLE t PERSISTENT FOR ALL",
        "OPTIMIZE TABLE t",
        "OPTIMIZE LOCAL TABLE b, t",
        "REPAIR TABLE t",
        "REPAIR TABLE b QUICK",
        "CHECK TABLE t",
        "CHECK TABLE t, b EXTENDED",
        "CHECK TABLE b FOR UPGRADE",
        "CHECK TABLE t, nothere",
    ],
)
def test_maintenance_rows_are_one_tables(sharded: ProxyEnv, sql: str) -> None:
    """The rows a sharded database answers are the twin's, with its column definitions."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    twin = connect_admin(env.shards[0], database=DB)
    try:
        assert _answer(conn, sql) == _answer(twin, sql)
    finally:
        conn.close()
        twin.close()


def test_every_physical_table_is_analyzed(sharded: ProxyEnv) -> None:
    """ANALYZE ... PERSISTENT FOR ALL reaches every physical table: each has its
    engine-independent statistics (mysql.table_stats) on its own shard."""
    env = sharded
    expected = []
    for index in range(4):
        for name in (f"t_{2 * index:02d}", f"t_{2 * index + 1:02d}", "b"):
            expected.append((shard_of(index, 4), f"{DB}_{index:04d}", name))
    for shard in env.shards:
        admin = connect_admin(shard)
        try:
            with admin.cursor() as cur:
                cur.execute(f"DELETE FROM mysql.table_stats WHERE db_name LIKE '{DB}\\_%'")
        finally:
            admin.close()
    conn = env.connect(DB, PASSWORD, database=DB)
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE TABLE t, b PERSISTENT FOR ALL")
            assert {row[0] for row in cur.fetchall()} == {f"{DB}.t", f"{DB}.b"}
    finally:
        conn.close()
    found = []
    for number, shard in enumerate(env.shards):
        admin = connect_admin(shard)
        try:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT db_name, table_name FROM mysql.table_stats"
                    f" WHERE db_name LIKE '{DB}\\_%'"
                )
                found += [(number, db, table) for db, table in cur.fetchall()]
        finally:
            admin.close()
    assert sorted(found) == sorted(expected)


def test_check_finds_a_partition_that_differs(sharded: ProxyEnv) -> None:
    """CHECK TABLE still names a partition whose definition differs (the rows of the check
    itself are the shard's), and the twin-equal answer comes back once it is mended."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    try:
        physical(env, DB, 2, "ALTER TABLE t_05 ADD COLUMN extra INT")
        with conn.cursor() as cur:
            cur.execute("CHECK TABLE t")
            assert cur.fetchall() == (
                (f"{DB}.t", "check", "error", f"Partition {DB}_0002.t_05 differs"),
            )
        physical(env, DB, 2, "ALTER TABLE t_05 DROP COLUMN extra")
        with conn.cursor() as cur:
            cur.execute("CHECK TABLE t")
            assert cur.fetchall() == ((f"{DB}.t", "check", "status", "OK"),)
    finally:
        conn.close()


def test_maintenance_commits_as_mariadb_does(sharded: ProxyEnv) -> None:
    """ANALYZE, CHECK, OPTIMIZE and REPAIR commit the open transaction first (a ROLLBACK
    after them keeps the write), CHECKSUM does not -- on the sharded database as on the
    twin."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    twin = connect_admin(env.shards[0], database=DB)
    try:
        for number, sql in enumerate(
            (
                "CHECK TABLE t",
                "ANALYZE TABLE b",
                "CHECKSUM TABLE t",
                "REPAIR TABLE t",
                "ANALYZE TABLE s",  # (a single table's rows named its physical database here)
                "CHECKSUM TABLE s",
            )
        ):
            kept = []
            answered = []
            for each in (conn, twin):
                with each.cursor() as cur:
                    cur.execute("START TRANSACTION")
                    cur.execute(f"INSERT INTO t (id, name) VALUES ({1000 + number}, 'tx')")
                    cur.execute(sql)
                    answered.append(cur.fetchall())
                    cur.execute("ROLLBACK")
                    cur.execute(f"SELECT COUNT(*) FROM t WHERE id = {1000 + number}")
                    kept.append(cur.fetchall()[0][0])
            assert kept == ([0, 0] if sql.startswith("CHECKSUM") else [1, 1]), sql
            assert answered[0] == answered[1], sql
    finally:
        conn.close()
        twin.close()


def test_a_physical_name_or_missing_privilege_is_refused(sharded: ProxyEnv) -> None:
    """A split table's physical table is no table to the client (1146); ANALYZE needs
    INSERT as in MariaDB (1142), CHECKSUM only SELECT."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    try:
        with conn.cursor() as cur:
            assert error_of(cur, "ANALYZE TABLE t, t_03") == (
                1146,
                f"Table '{DB}.t_03' doesn't exist",
            )
            cur.execute("CREATE USER 'maintro'@'%' IDENTIFIED BY 'Maint#ro1'")
            cur.execute(f"GRANT SELECT ON {DB}.t TO 'maintro'@'%'")
        reader = env.connect("maintro", "Maint#ro1", database=DB)
        try:
            with reader.cursor() as cur:
                assert error_of(cur, "ANALYZE TABLE t")[0] == 1142
                assert error_of(cur, "OPTIMIZE TABLE t")[0] == 1142
                cur.execute("CHECKSUM TABLE t")
                assert cur.fetchall()[0][0] == f"{DB}.t"
        finally:
            reader.close()
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'maintro'@'%'")
        conn.close()


@pytest.mark.skipif(shutil.which("mariadb-check") is None, reason="mariadb-check not installed")
@pytest.mark.parametrize("option", ["--check", "--analyze", "--optimize", "--repair"])
def test_mariadb_check_runs_on_a_sharded_database(sharded: ProxyEnv, option: str) -> None:
    """``mariadb-check`` on the sharded database through the proxy: exit 0, one line per
    logical table, as on the twin."""
    env = sharded
    done = run_tool(env, "mariadb-check", DB, PASSWORD, option, DB)
    assert done.returncode == 0, done.stderr.decode()
    shard = env.shards[0]
    twin = subprocess.run(
        ["mariadb-check", "-h", shard.host, "-P", str(shard.port), "-u", shard.user, option, DB],
        capture_output=True,
        timeout=60,
        env={**os.environ, "MYSQL_PWD": shard.password},
        check=True,
    )
    assert done.stdout.decode() == twin.stdout.decode()


def test_mixed_list_with_another_database_is_still_decided_by_the_analysis(
    sharded: ProxyEnv,
) -> None:
    """A list naming another database's table is decided by the analysis as before: this
    account may not use that database (1044)."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    try:
        with conn.cursor() as cur:
            errno, message = error_of(cur, "CHECKSUM TABLE easydb.t, t")
            assert (errno, message.split(" for user ")[0]) == (1044, "Access denied"), message
            assert message.endswith("to database 'easydb'"), message
    finally:
        conn.close()


def test_help_is_the_servers(sharded: ProxyEnv) -> None:
    """``HELP 'topic'`` (the mariadb shell's ``help select``) reads the server's help tables,
    as on MariaDB; it was refused (1235). Other forms are MariaDB's syntax error."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    twin = connect_admin(env.shards[0], database=DB)
    try:
        for sql in ("HELP 'select'", "help 'contents'", "HELP 'no such topic'"):
            assert _answer(conn, sql) == _answer(twin, sql), sql
        with conn.cursor() as cur:
            assert error_of(cur, "HELP select")[0] == 1064
    finally:
        conn.close()
        twin.close()


def test_an_ungranted_table_is_never_reached_whatever_the_spelling(sharded: ProxyEnv) -> None:
    """The maintenance statement is rebuilt per physical table from the names the proxy reads
    in it: an account granted only t may not have b checked, summed or analyzed through any
    spelling of the list (comments, executable comments, qualifiers, letter case, TABLES, a
    TDDL hint), nor t analyzed without INSERT -- each refused (1142 naming the table), never
    answered with b's rows; a comment hiding b is no table."""
    env = sharded
    conn = env.connect(DB, PASSWORD, database=DB)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER 'maintsp'@'%' IDENTIFIED BY 'Maint#sp1'")
            cur.execute(f"GRANT SELECT ON {DB}.t TO 'maintsp'@'%'")
        reader = env.connect("maintsp", "Maint#sp1", database=DB)
        try:
            with reader.cursor() as cur:
                for sql in (
                    "CHECKSUM TABLE t, b",
                    "CHECKSUM TABLE t /* x */ , b",
                    "CHECKSUM TABLE t /*!, b */",
                    "CHECKSUM TABLE t /*!100000 , b */",
                    "CHECKSUM TABLE t -- x\n, b",
                    "CHECKSUM TABLE t, `B`",
                    f"CHECKSUM TABLE t, {DB}.b",
                    f"CHECKSUM TABLES `{DB}`.`t`, `{DB}` . `b` EXTENDED",
                    "CHECK TABLE b",
                    "/*+TDDL:node(0)*/ CHECKSUM TABLE b",
                    "/*!50000 CHECKSUM TABLE b */",
                    "ANALYZE TABLE t",
                    "OPTIMIZE TABLE t, b",
                ):
                    needs, table = ("INSERT", "t") if sql[:2] in ("AN", "OP") else ("SELECT", "b")
                    table = "B" if "`B`" in sql else table
                    assert error_of(cur, sql) == (
                        1142,
                        f"{needs} command denied to user 'maintsp'@'127.0.0.1' for table '{table}'",
                    ), sql
                cur.execute("CHECKSUM TABLE t /* , b */")
                assert [row[0] for row in cur.fetchall()] == [f"{DB}.t"]
        finally:
            reader.close()
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'maintsp'@'%'")
        conn.close()
