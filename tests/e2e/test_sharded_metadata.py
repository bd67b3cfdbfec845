"""A sharded database's metadata through real clients shows what one MariaDB holding the
logical database shows: the logical database's name, its logical tables (one row each, never a
physical database ``shmeta_0000`` nor a split table's physical tables ``sp_00``, ``sp_01``),
only the tables the account holds privileges on.

The reference is a plain database ``shmeta`` made directly on shard 0 with the same tables;
each answer through the proxy is compared with the same statement's answer there (statistics
such as row counts and cardinalities aside: they are sums over the partitions,
test_statistics_are_sums_over_the_partitions).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysql.constants import COMMAND

from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database
from tests.e2e.tools import run_tool

PASSWORD = "Metadata#pass1"
DB = "shmeta"
NARROW = ("metanarrow", "Narrow#pass1")
TABLES = [
    "CREATE TABLE sp (id bigint NOT NULL, v varchar(20), PRIMARY KEY (id), KEY (v))",
    "CREATE TABLE t (id int NOT NULL, w int, PRIMARY KEY (id), UNIQUE KEY uw (w))",
    "CREATE TABLE b (k varchar(10) NOT NULL, PRIMARY KEY (k))",
    "CREATE TABLE u (id int NOT NULL, PRIMARY KEY (id))",
]
CLAUSES = [
    " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
    " DBPARTITION BY HASH(id)",
    " BROADCAST",
    "",
]
LEAKS = (f"{DB}_000", "sp_0")


@pytest.fixture(scope="module")
def meta(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD) as env:
        conn = env.connect(DB, PASSWORD, database=DB)
        try:
            with conn.cursor() as cur:
                for ddl, clause in zip(TABLES, CLAUSES, strict=True):
                    cur.execute(ddl + clause)
                cur.execute("INSERT INTO sp VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')")
                cur.execute(f"CREATE USER '{NARROW[0]}'@'%' IDENTIFIED BY '{NARROW[1]}'")
                cur.execute(f"GRANT SELECT ON {DB}.t TO '{NARROW[0]}'@'%'")
        finally:
            conn.close()
        admin = connect_admin(env.shards[0])
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {DB}")
                cur.execute(f"CREATE DATABASE {DB}")
                for ddl in TABLES:
                    cur.execute(ddl.replace("TABLE ", f"TABLE {DB}.", 1))
        finally:
            admin.close()
        try:
            yield env
        finally:
            admin = connect_admin(env.shards[0])
            try:
                with admin.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {DB}")
            finally:
                admin.close()
            conn = env.connect(DB, PASSWORD, database=DB)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DROP USER IF EXISTS '{NARROW[0]}'@'%'")
            finally:
                conn.close()


def _rows(conn: pymysql.connections.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return sorted(tuple(row) for row in cur.fetchall())


def _fields(conn: pymysql.connections.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        fields = cur._result.fields if cur._result is not None else []
        return [(f.db, f.table_name, f.org_table, f.name) for f in fields]


def _full_fields(conn: pymysql.connections.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        fields = cur._result.fields if cur._result is not None else []
        return [(*_field(f), f.length, f.flags, f.scale) for f in fields]


def _no_leak(found: object) -> None:
    text = str(found)
    assert not any(leak in text for leak in LEAKS), text


@pytest.fixture
def both(meta: ProxyEnv) -> Iterator[tuple[Any, Any]]:
    proxied = meta.connect(DB, PASSWORD, database=DB)
    plain = connect_admin(meta.shards[0], database=DB)
    try:
        yield proxied, plain
    finally:
        proxied.close()
        plain.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW TABLES",
        "SHOW FULL TABLES",
        "SHOW TABLES LIKE 's%'",
        # As tools filter the listing (Django, GUI clients, dump tools).
        "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'",
        "SHOW FULL TABLES FROM shmeta WHERE `Table_type` != 'VIEW'",
        "SHOW FULL TABLES WHERE Table_type = 'view'",
        "SHOW TABLES WHERE Tables_in_shmeta LIKE 's%' AND Tables_in_shmeta <> 'SP '",
        "SHOW TABLES WHERE tables_in_shmeta NOT LIKE 'u%'",
        "SELECT DATABASE()",
        "SELECT database() AS d, SCHEMA()",
        "SHOW COLUMNS FROM sp",
        "SHOW FULL COLUMNS FROM sp FROM shmeta LIKE 'v%'",
        "SHOW FIELDS IN t",
        "DESCRIBE sp",
        # (Cardinality, column 6, is a statistic)
        "SHOW INDEX FROM sp",
        "SHOW KEYS FROM shmeta.t",
        "SHOW INDEXES IN sp IN shmeta",
        # (Rows, lengths and times are statistics: summed over the partitions)
        "SHOW TABLE STATUS",
        "SHOW TABLE STATUS LIKE 'sp'",
        "SHOW CREATE DATABASE shmeta",
        "SHOW CREATE SCHEMA IF NOT EXISTS shmeta",
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = 'shmeta'",
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = 'sp'",
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.COLUMN_NAME, t.ORDINAL_POSITION, t.COLUMN_TYPE"
        " FROM information_schema.COLUMNS AS t WHERE t.TABLE_SCHEMA = DATABASE()",
        "SELECT TABLE_NAME, COUNT(*) FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = 'shmeta' GROUP BY TABLE_NAME",
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_SCHEMA, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME"
        " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'shmeta'",
        "SELECT CONSTRAINT_SCHEMA, TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME"
        " FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'shmeta'",
        "SELECT CONSTRAINT_SCHEMA, TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_TYPE"
        " FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = 'shmeta'",
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'shmeta'",
        "SELECT information_schema.TABLES.TABLE_NAME FROM information_schema.TABLES"
        " WHERE TABLES.TABLE_SCHEMA = 'shmeta'",
    ],
)
def test_metadata_answers_as_one_mariadb(both: tuple[Any, Any], sql: str) -> None:
    proxied, plain = both
    seen, want = _rows(proxied, sql), _rows(plain, sql)
    if "INDEX" in sql or "KEYS" in sql:
        seen, want = [r[:6] + r[7:] for r in seen], [r[:6] + r[7:] for r in want]
    if "STATUS" in sql:
        seen, want = [r[:2] for r in seen], [r[:2] for r in want]
    assert seen == want, sql
    _no_leak(seen)
    fields = _fields(proxied, sql)
    _no_leak(fields)
    if " AS t " not in sql:
        # (an aliased information_schema table's computed columns say no schema)
        assert _full_fields(proxied, sql) == _full_fields(plain, sql), sql


def test_table_status_sums_the_physical_tables(both: tuple[Any, Any]) -> None:
    """One row per logical table, its lengths the sums over its physical tables (a new InnoDB
    table's clustered index and each secondary index take one 16 KiB page): sp has 8
    physical tables, t 4, the broadcast table b counts one copy, the single table u one."""
    proxied, _ = both
    with proxied.cursor() as cur:
        cur.execute("SHOW TABLE STATUS")
        found = {row[0]: (row[6], row[8]) for row in cur.fetchall()}
    page = 16384
    assert found == {
        "b": (page, 0),
        "sp": (8 * page, 8 * page),
        "t": (4 * page, 4 * page),
        "u": (page, 0),
    }


def test_field_list_names_the_logical_table(both: tuple[Any, Any]) -> None:
    """COM_FIELD_LIST (the mysql client's table-name completion) of a split table and a
    sharded one: the definitions one MariaDB sends; an unknown table is 1146 naming the
    logical database."""

    def field_list(conn: Any, table: str) -> list[bytes]:
        conn._execute_command(COMMAND.COM_FIELD_LIST, table.encode() + b"\0")
        out: list[bytes] = []
        while True:
            packet = conn._read_packet()
            if packet.is_eof_packet():
                return out
            out.append(packet.get_all_data())

    proxied, plain = both
    for table in ("sp", "t", "u"):
        seen = field_list(proxied, table)
        assert seen == field_list(plain, table), table
        _no_leak(seen)
    with pytest.raises(pymysql.err.ProgrammingError) as missing:
        field_list(proxied, "nope")
    assert missing.value.args == (1146, f"Table '{DB}.nope' doesn't exist")


def test_an_account_sees_only_the_tables_it_holds_privileges_on(meta: ProxyEnv) -> None:
    conn = meta.connect(NARROW[0], NARROW[1], database=DB)
    try:
        for sql in (
            "SHOW TABLES",
            "SHOW FULL TABLES",
            "SHOW TABLE STATUS",
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shmeta'",
            "SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE()",
        ):
            assert [r[0] for r in _rows(conn, sql)] == ["t"], sql
        assert [r[1] for r in _rows(conn, "SHOW RULE")] == ["t"]
        for sql in ("SHOW INDEX FROM sp", "SHOW TOPOLOGY FROM sp", "SHOW RULE FROM sp"):
            with pytest.raises(pymysql.err.OperationalError) as denied:
                _rows(conn, sql)
            assert denied.value.args == (
                1142,
                f"SELECT command denied to user '{NARROW[0]}'@'127.0.0.1' for table 'sp'",
            ), sql
        assert len(_rows(conn, "SHOW TOPOLOGY FROM t")) == 4
    finally:
        conn.close()


def test_every_result_set_of_a_relayed_packet_names_the_logical_database(meta: ProxyEnv) -> None:
    """A multi-statement packet on single tables is relayed from physical database 0 as one
    answer: each of its result sets' definitions name the logical database, not only the
    first one's (rows, OKs and the end pass as they come)."""
    sql = (
        "SELECT * FROM u; SELECT id AS k FROM u AS x; INSERT INTO u VALUES (77);"
        " SELECT id FROM u WHERE id = 77; DELETE FROM u WHERE id = 77; SELECT 1 AS one"
    )
    multi = pymysql.constants.CLIENT.MULTI_STATEMENTS
    proxied = meta.connect(DB, PASSWORD, database=DB, client_flag=multi)
    plain = connect_admin(meta.shards[0], database=DB, client_flag=multi)

    def answers(conn: Any) -> list[tuple[Any, ...]]:
        out = []
        with conn.cursor() as cur:
            cur.execute(sql)
            while True:
                fields = getattr(cur._result, "fields", None) or []
                out.append((tuple(_field(f) for f in fields), cur.fetchall()))
                if not cur.nextset():
                    return out

    try:
        seen = answers(proxied)
        assert seen == answers(plain)
        assert len(seen) == 6
        _no_leak(seen)
    finally:
        proxied.close()
        plain.close()


def _field(f: Any) -> tuple[Any, ...]:
    return (f.db, f.table_name, f.org_table, f.name, f.org_name, f.charsetnr, f.type_code)


def test_prepared_statements_read_logical_metadata(meta: ProxyEnv) -> None:
    """Server-side prepared statements (mysql-connector's prepared cursor), each executed
    three times (the command loop's executions, then the fast path's)."""
    conn = meta.connector(DB, PASSWORD, DB)
    try:
        cur = conn.cursor(prepared=True)
        for sql, params, want in [
            (
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE ?",
                (DB, "s%"),
                [(DB, "sp")],
            ),
            (
                "SELECT DISTINCT TABLE_NAME FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = ?",
                ("v",),
                [("sp",)],
            ),
            ("SELECT DATABASE(), id FROM sp WHERE id = ?", (2,), [(DB, 2)]),
            ("SELECT DATABASE(), ?", (5,), [(DB, 5)]),
        ]:
            for _ in range(3):
                cur.execute(sql, params)
                assert [tuple(r) for r in cur.fetchall()] == want, sql
    finally:
        conn.close()


def test_the_logical_database_qualifies_single_tables(both: tuple[Any, Any]) -> None:
    """``shmeta.u`` of a single table (physical database 0 has it under its own name) reads
    and writes it, as ``shmeta.sp`` does a sharded table."""
    proxied, plain = both
    for sql in (
        "INSERT INTO shmeta.u VALUES (41), (42)",
        "UPDATE shmeta.u SET id = 43 WHERE shmeta.u.id = 42",
    ):
        for conn in (proxied, plain):
            _rows(conn, sql)
    for sql in (
        "SELECT shmeta.u.id FROM shmeta.u WHERE id > 40",
        "SELECT x.id FROM `shmeta`.`u` AS x JOIN shmeta.b WHERE x.id > 40",
    ):
        assert _rows(proxied, sql) == _rows(plain, sql), sql
        assert _full_fields(proxied, sql) == _full_fields(plain, sql), sql
    sql = "SELECT id FROM shmeta.sp WHERE id = 2"  # (the plain sp has no rows)
    assert _rows(proxied, sql) == [(2,)]
    assert _full_fields(proxied, sql) == _full_fields(plain, sql)
    for conn in (proxied, plain):
        _rows(conn, "DELETE FROM shmeta.u WHERE id > 40")


def test_identity_calls_are_answered_in_routed_statements(both: tuple[Any, Any]) -> None:
    proxied, _ = both
    assert _rows(proxied, "SELECT CURRENT_USER(), DATABASE(), id FROM sp WHERE id = 2") == [
        (f"{DB}@%", DB, 2)
    ]
    assert _rows(proxied, "SELECT DATABASE() AS d, id FROM sp WHERE id > 2") == [
        (DB, 3),
        (DB, 4),
    ]
    # With an executable comment the statement is routed as the shard reads it, where the
    # identity calls were not answered: refused, never the mirror account's name.
    with pytest.raises(pymysql.err.NotSupportedError) as refused:
        _rows(proxied, "SELECT /*!50000 CURRENT_USER(), */ id FROM sp WHERE id = 2")
    assert refused.value.args[0] == 1235


def _analyze_every_physical_table(meta: ProxyEnv) -> None:
    """ANALYZE TABLE on the shards (exact InnoDB statistics for tables this small)."""
    for index in range(4):
        admin = connect_admin(meta.shards[index // 2], database=f"{DB}_{index:04d}")
        try:
            with admin.cursor() as cur:
                cur.execute("SHOW TABLES")
                for (name,) in cur.fetchall():
                    cur.execute(f"ANALYZE TABLE `{name}`")
                    cur.fetchall()
        finally:
            admin.close()


def test_statistics_are_sums_over_the_partitions(meta: ProxyEnv) -> None:
    """A sharded table's row count, sizes and index cardinalities are its physical tables'
    summed -- information_schema.TABLES and STATISTICS (in any query over them), SHOW INDEX
    and SHOW TABLE STATUS alike; a broadcast table's are one copy's (here, of 3 rows: each
    copy holds them all, so a sum would say 12)."""
    conn = meta.connect(DB, PASSWORD, database=DB)
    try:
        _rows(conn, "INSERT INTO b VALUES ('x'), ('y'), ('z')")
        _rows(conn, "INSERT INTO t VALUES (11, 1), (12, 2), (13, 3), (14, 4), (15, 5)")
        _analyze_every_physical_table(meta)
        assert _rows(
            conn,
            "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('sp', 't', 'b')",
        ) == [("b", 3), ("sp", 4), ("t", 5)]
        assert _rows(
            conn,
            "SELECT SUM(TABLE_ROWS) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shmeta'"
            " AND TABLE_ROWS > 3",
        ) == [(9,)]
        sizes = _rows(
            conn,
            "SELECT DATA_LENGTH, AVG_ROW_LENGTH FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sp'",
        )
        assert sizes == [(8 * 16384, 8 * 16384 // 4)]  # 8 physical tables of one page
        assert _rows(
            conn,
            "SELECT TABLE_NAME, INDEX_NAME, CARDINALITY FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'u'",
        ) == [("b", "PRIMARY", 3), ("sp", "PRIMARY", 4), ("sp", "v", 4), ("t", "PRIMARY", 5),
              ("t", "uw", 5)]  # fmt: skip
        shown = _rows(conn, "SHOW INDEX FROM sp")
        assert [(r[2], r[6]) for r in shown] == [("PRIMARY", 4), ("v", 4)]
        assert [(r[2], r[6]) for r in _rows(conn, "SHOW KEYS FROM b")] == [("PRIMARY", 3)]
        plain = connect_admin(meta.shards[0], database=DB)
        try:
            for sql in (
                "SELECT TABLE_ROWS, AVG_ROW_LENGTH, DATA_LENGTH, INDEX_LENGTH, DATA_FREE"
                " FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shmeta'",
                "SELECT CARDINALITY FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = 'shmeta'",
            ):
                assert _full_fields(conn, sql) == _full_fields(plain, sql), sql
        finally:
            plain.close()
        status = _rows(conn, "SHOW TABLE STATUS")
        assert [(r[0], r[4]) for r in status if r[0] != "u"] == [("b", 3), ("sp", 4), ("t", 5)]
    finally:
        _rows(conn, "DELETE FROM b")
        _rows(conn, "DELETE FROM t WHERE id BETWEEN 11 AND 15")
        conn.close()


def test_refused_rather_than_leaked(both: tuple[Any, Any]) -> None:
    proxied, _ = both
    with pytest.raises(pymysql.err.OperationalError) as locked:
        _rows(proxied, "LOCK TABLES sp READ, other.x READ")
    assert locked.value.args[0] == 1044
    _rows(proxied, "LOCK TABLES u WRITE")  # a single table: physical database 0 has it all
    _rows(proxied, "UNLOCK TABLES")
    for sql in ("SELECT * FROM nope", "SELECT * FROM u JOIN nope", "SHOW COLUMNS FROM nope"):
        with pytest.raises(pymysql.err.ProgrammingError) as missing:
            _rows(proxied, sql)
        assert missing.value.args == (1146, f"Table '{DB}.nope' doesn't exist"), sql
    for sql in ("SHOW TABLE STATUS WHERE Name = 'sp'", "SHOW COLUMNS FROM nope"):
        with pytest.raises(pymysql.err.MySQLError) as refused:
            _rows(proxied, sql)
        _no_leak(refused.value.args)


def _direct_insert(meta: ProxyEnv, partition: int, sql: str) -> int | None:
    """``sql`` run directly on physical database ``partition`` (4 over 2 shards), waiting for
    a table lock at most a second: the error number, or None when it ran (and was undone)."""
    admin = connect_admin(meta.shards[partition // 2], database=f"{DB}_{partition:04d}")
    try:
        with admin.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1, innodb_lock_wait_timeout = 1")
            cur.execute("START TRANSACTION")
            try:
                cur.execute(sql)
            except pymysql.err.MySQLError as exc:
                return int(exc.args[0])
            finally:
                cur.execute("ROLLBACK")
        return None
    finally:
        admin.close()


def test_lock_tables_holds_every_partition(meta: ProxyEnv) -> None:
    """LOCK TABLES of sharded, split and broadcast tables locks their physical tables on every
    partition (a direct write to the last partition waits), statements on them run on the
    locked connections (a scatter, a merge over split tables, a one-partition write), a table
    not locked is MariaDB's 1100, a write that needs XA is 1235, and UNLOCK TABLES (or BEGIN)
    releases every partition."""
    conn = meta.connect(DB, PASSWORD, database=DB)
    narrow = meta.connect(NARROW[0], NARROW[1], database=DB)
    try:
        _rows(conn, "LOCK TABLES `sp` READ /*!32311 LOCAL */, t WRITE, b READ, u READ NOWAIT")
        assert _direct_insert(meta, 3, "INSERT INTO t VALUES (1003, 1003)") == 1205
        assert _direct_insert(meta, 3, "INSERT INTO b VALUES ('zz')") == 1205
        assert _direct_insert(meta, 3, "INSERT INTO sp_07 VALUES (1003, 'x')") == 1205
        assert _rows(conn, "SELECT id FROM sp") == [(1,), (2,), (3,), (4,)]
        for key in (1, 2, 3, 4, 1, 2, 3, 4):  # point reads, twice (the fast path's shapes)
            assert _rows(conn, f"SELECT id FROM sp WHERE id = {key}") == [(key,)]
        assert _rows(conn, "SELECT v FROM sp ORDER BY id DESC LIMIT 2") == [("c",), ("d",)]
        assert _rows(conn, "SELECT COUNT(*) FROM sp") == [(4,)]
        assert _rows(conn, "SELECT k FROM b") == []
        _rows(conn, "INSERT INTO t VALUES (7, 7)")  # (one partition)
        assert _rows(conn, "SELECT id, w FROM t") == [(7, 7)]
        with pytest.raises(pymysql.err.NotSupportedError) as xa:
            _rows(conn, "DELETE FROM t")  # every partition: XA, which locks forbid
        assert xa.value.args[0] == 1235 and "UNLOCK TABLES first" in xa.value.args[1]
        _rows(conn, "LOCK TABLES t WRITE WAIT 5")  # the previous locks are released
        assert _direct_insert(meta, 3, "INSERT INTO b VALUES ('zz')") is None
        assert _direct_insert(meta, 3, "INSERT INTO t VALUES (1003, 1003)") == 1205
        # A newer catalog (another session's table) keeps the locked connections.
        other = meta.connect(DB, PASSWORD, database=DB)
        try:
            _rows(other, "CREATE TABLE newer (id int PRIMARY KEY) DBPARTITION BY HASH(id)")
            _rows(other, "DROP TABLE newer")
        finally:
            other.close()
        assert _rows(conn, "SELECT id, w FROM t") == [(7, 7)]
        assert _direct_insert(meta, 3, "INSERT INTO t VALUES (1003, 1003)") == 1205
        with pytest.raises(pymysql.err.OperationalError) as other:
            _rows(conn, "SELECT id FROM sp")
        assert other.value.args == (1100, "Table 'sp' was not locked with LOCK TABLES")
        _rows(conn, "DELETE FROM t WHERE id = 7")
        _rows(conn, "UNLOCK TABLES")
        assert _direct_insert(meta, 3, "INSERT INTO t VALUES (1003, 1003)") is None
        assert _rows(conn, "SELECT id FROM t") == []
        _rows(conn, "LOCK TABLES t READ")
        _rows(conn, "BEGIN")  # as on MariaDB: the table locks end
        assert _direct_insert(meta, 3, "INSERT INTO t VALUES (1003, 1003)") is None
        _rows(conn, "COMMIT")
        # The privileges: LOCK TABLES READ needs SELECT on each table, WRITE a write too.
        _rows(narrow, "LOCK TABLES t READ")
        assert _rows(narrow, "SELECT COUNT(*) FROM t") == [(0,)]
        _rows(narrow, "UNLOCK TABLES")
        for sql in ("LOCK TABLES t WRITE", "LOCK TABLES t READ, sp READ"):
            with pytest.raises(pymysql.err.OperationalError) as denied:
                _rows(narrow, sql)
            assert denied.value.args[0] == 1142, sql
    finally:
        conn.close()
        narrow.close()


def test_lock_tables_with_autocommit_off(meta: ProxyEnv) -> None:
    """With autocommit off (PyMySQL's default), statements under LOCK TABLES run without the
    proxy's XA transaction (MariaDB refuses XA START then): reads work, a write to a sharded
    table is 1235 (it would stay in one partition's own transaction), single tables are
    physical database 0's own; after UNLOCK TABLES the proxy's transactions are back."""
    conn = meta.connect(DB, PASSWORD, database=DB, autocommit=False)
    try:
        _rows(conn, "LOCK TABLES sp READ, t WRITE, u WRITE")
        assert _rows(conn, "SELECT id FROM sp WHERE id > 2") == [(3,), (4,)]
        assert _rows(conn, "SELECT COUNT(*) FROM sp") == [(4,)]
        with pytest.raises(pymysql.err.NotSupportedError) as refused:
            _rows(conn, "INSERT INTO t VALUES (21, 21)")
        assert refused.value.args[0] == 1235 and "autocommit=0" in refused.value.args[1]
        _rows(conn, "INSERT INTO u VALUES (77)")
        conn.commit()
        _rows(conn, "UNLOCK TABLES")
        _rows(conn, "INSERT INTO t VALUES (21, 21), (22, 22), (23, 23)")  # XA again
        conn.rollback()
        assert _rows(conn, "SELECT id FROM t WHERE id > 20") == []
        assert _rows(conn, "SELECT id FROM u WHERE id = 77") == [(77,)]
        _rows(conn, "DELETE FROM u WHERE id = 77")
        conn.commit()
    finally:
        conn.close()


@pytest.mark.skipif(
    shutil.which("mariadb") is None or shutil.which("mariadb-dump") is None,
    reason="the mariadb client tools are not installed",
)
def test_mariadb_cli_and_dump(meta: ProxyEnv) -> None:
    """The mariadb CLI's metadata commands, and a dump (without LOCK TABLES, which a sharded
    database does not take) naming only logical tables that restores through the proxy."""
    shown = run_tool(
        meta, "mariadb", DB, PASSWORD, DB, "-e", "SHOW TABLE STATUS; SHOW INDEX FROM sp; \\s"
    )
    assert shown.returncode == 0, shown.stderr
    _no_leak(shown.stdout)
    assert b"sp" in shown.stdout
    # With its default options (LOCK TABLES ... READ LOCAL of every table, then each table's
    # rows): the same dump as without locks, but for the restore's LOCK / UNLOCK lines.
    locking = run_tool(meta, "mariadb-dump", DB, PASSWORD, DB)
    assert locking.returncode == 0, locking.stderr
    _no_leak(locking.stdout)
    dumped = run_tool(
        meta, "mariadb-dump", DB, PASSWORD, "--skip-lock-tables", "--skip-add-locks", DB
    )
    assert dumped.returncode == 0, dumped.stderr

    def lines(dump: bytes) -> list[bytes]:
        kept = (b"LOCK TABLES", b"UNLOCK TABLES", b"-- Dump completed")
        return [line for line in dump.splitlines() if not line.startswith(kept)]

    assert lines(locking.stdout) == lines(dumped.stdout)
    assert b"LOCK TABLES `sp` WRITE;" in locking.stdout
    assert locking.stdout.count(b"INSERT INTO ") == 1 and b"INSERT INTO `sp` " in locking.stdout
    assert all(row in locking.stdout for row in (b"(1,'a')", b"(2,'b')", b"(3,'c')", b"(4,'d')"))
    _no_leak(dumped.stdout)
    assert b"tbpartition by hash(`id`) tbpartitions 2" in dumped.stdout
    # The default dump's LOCK TABLES `sp` WRITE before its INSERT of rows of every partition:
    # the restore stops there (XA cannot start under table locks), saying how to dump instead.
    refused = run_tool(meta, "mariadb", DB, PASSWORD, DB, stdin=locking.stdout)
    assert refused.returncode != 0
    assert b"ERROR 1235" in refused.stderr and b"--skip-add-locks" in refused.stderr
    restored = run_tool(meta, "mariadb", DB, PASSWORD, DB, stdin=dumped.stdout)
    assert restored.returncode == 0, restored.stderr
    conn = meta.connect(DB, PASSWORD, database=DB)
    try:
        assert _rows(conn, "SELECT id, v FROM sp") == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
        assert len(_rows(conn, "SHOW TOPOLOGY FROM sp")) == 8
    finally:
        conn.close()
