"""Privilege enforcement end to end: for every row of "What each statement needs" (README.md),
an account holding exactly the needed privileges succeeds (and the
effect is checked on the shard itself), and an account missing any one of them gets the exact
MySQL error (1142 for a table privilege, 1044 for a database-level one) while nothing changes
on the shard. Text statements through PyMySQL, prepared statements through mysql-connector.

The shard enforces the same grants (the session's backend account mirrors the caller's); the
proxy asks for what MariaDB asks for, so each refusal here is the proxy's own 1142 -- reading a
column needs SELECT (UPDATE and DELETE), and so do ``ON DUPLICATE KEY UPDATE`` and the targets
of a multi-table DELETE.

Accounts are made the way a tenant makes them: CREATE USER / GRANT / REVOKE sent as the easydb
administrator through the proxy. Helpers here are shared with test_hostile.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import mysql.connector
import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.metrics_text import parse_exposition

CLIENT_IP = "127.0.0.1"
PASSWORD = "Enf#pass1"

# --------------------------------------------------------------------------------------------
# Helpers (also used by test_hostile.py)


def unique(prefix: str) -> str:
    """A fresh account or table name: letters and digits, at most 20 characters."""
    return prefix + uuid.uuid4().hex[:10]


def rows(conn: Any, sql: str | bytes, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return [tuple(r) for r in cur.fetchall()]


def error_of(conn: Any, sql: str | bytes, args: Any = None) -> tuple[int, str]:
    """The (errno, message) a statement fails with; fails the test if it succeeds."""
    with pytest.raises(pymysql.err.MySQLError) as info:
        rows(conn, sql, args)
    errno, message = info.value.args
    return errno, message


def table_denied(priv: str, user: str, table: str) -> tuple[int, str]:
    return 1142, f"{priv} command denied to user '{user}'@'{CLIENT_IP}' for table '{table}'"


def db_denied(user: str, db: str = "easydb") -> tuple[int, str]:
    return 1044, f"Access denied for user '{user}'@'{CLIENT_IP}' to database '{db}'"


def cross_db(db: str) -> tuple[int, str]:
    return 1235, f"Cross-database queries are not supported; USE {db} first"


def need_global(priv: str) -> tuple[int, str]:
    return (
        1227,
        f"Access denied; you need (at least one of) the {priv} privilege(s) for this operation",
    )


def not_supported(what: str) -> tuple[int, str]:
    return 1235, f"This version of shardgate doesn't yet support '{what}'"


class Env:
    """The easydb administrator (through the proxy) and the shard's own administrator."""

    def __init__(self, proxy: ProxyEnv) -> None:
        self.proxy = proxy
        self.admin = proxy.connect()
        self.shard = connect_admin(proxy.shards[0], "easydb")
        self.other_admin = proxy.connect(user="otherdb", database="otherdb")
        self.other_shard = connect_admin(proxy.shards[1], "otherdb")

    def close(self) -> None:
        for conn in (self.admin, self.shard, self.other_admin, self.other_shard):
            try:
                conn.close()
            except Exception:
                pass

    # -- state as the shard sees it ------------------------------------------------------------

    def on_shard(self, sql: str, shard: int = 0) -> Any:
        """Rows of ``sql`` run by the shard's administrator, or ('error', errno)."""
        conn = self.shard if shard == 0 else self.other_shard
        try:
            return rows(conn, sql)
        except pymysql.err.MySQLError as exc:
            return ("error", exc.args[0])

    def shard_exec(self, sql: str, shard: int = 0) -> None:
        rows(self.shard if shard == 0 else self.other_shard, sql)

    def table_exists(self, table: str, db: str = "easydb") -> bool:
        shard = 0 if db == "easydb" else 1
        found = self.on_shard(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            f"'{db}' AND TABLE_NAME = '{table}'",
            shard,
        )
        return bool(found)

    # -- accounts ------------------------------------------------------------------------------

    def create_account(
        self, grants: Sequence[tuple[str, str | None]] = (), prefix: str = "e"
    ) -> str:
        user = unique(prefix)
        rows(self.admin, f"CREATE USER {user} IDENTIFIED BY '{PASSWORD}'")
        for privs, table in grants:
            self.grant(user, privs, table)
        return user

    def _on(self, table: str | None, db: str) -> str:
        return f"{db}.*" if table is None else f"{db}.`{table}`"

    def grant(self, user: str, privs: str, table: str | None, db: str = "easydb") -> None:
        """GRANT through the proxy; a table-level grant on a missing table briefly creates it
        (the proxy checks that the table exists on its shard)."""
        admin = self.admin if db == "easydb" else self.other_admin
        shard = 0 if db == "easydb" else 1
        placeholder = table is not None and not self.table_exists(table, db)
        if placeholder:
            self.shard_exec(f"CREATE TABLE `{table}` (id INT)", shard)
        try:
            rows(admin, f"GRANT {privs} ON {self._on(table, db)} TO {user}")
        finally:
            if placeholder:
                self.shard_exec(f"DROP TABLE `{table}`", shard)

    def revoke(self, user: str, privs: str, table: str | None, db: str = "easydb") -> None:
        admin = self.admin if db == "easydb" else self.other_admin
        rows(admin, f"REVOKE {privs} ON {self._on(table, db)} FROM {user}")

    def connect(self, user: str, database: str | None = "easydb", **kwargs: Any) -> Any:
        return self.proxy.connect(user=user, password=PASSWORD, database=database, **kwargs)

    def connect_prepared(self, user: str) -> Any:
        return mysql.connector.connect(
            host=self.proxy.host,
            port=self.proxy.port,
            user=user,
            password=PASSWORD,
            database="easydb",
            use_pure=True,
            autocommit=True,
        )


@pytest.fixture(scope="module")
def env(proxy: ProxyEnv) -> Iterator[Env]:
    environment = Env(proxy)
    try:
        yield environment
    finally:
        environment.close()


# --------------------------------------------------------------------------------------------
# The statement table


@dataclass(frozen=True)
class Row:
    """One statement: what it needs, how to set it up, and what it does.

    Names in braces are per-row tables: {a} {b} (base tables), {n} (a new table), {v} (a view),
    {s} (a sequence). ``needs`` lists (PRIV, name) with name None for the database level.
    ``check`` runs on the shard (as its administrator) before and after: refused attempts must
    leave it unchanged; the allowed one must make it ``after``. ``returns`` is what the statement
    itself returns (through ``project``); ``then`` a follow-up on the same connection.
    """

    id: str
    sql: str
    needs: tuple[tuple[str, str | None], ...]
    setup: tuple[str, ...] = ()
    check: str | None = None
    after: Any = None
    returns: Any = None
    project: Callable[[list[tuple[Any, ...]]], Any] | None = None
    then: tuple[str, Any] | None = None
    unneeded: tuple[str, ...] = field(default=())  # tables that exist but need no privilege


def classifier_misses(proxy: ProxyEnv) -> float:
    """shardgate_classifier_misses_total over all error numbers, from the exposition."""
    samples = parse_exposition(proxy.server.ctx.metrics.render())
    return sum(v for (name, _), v in samples.items() if name == "shardgate_classifier_misses_total")


def counted_miss(proxy: ProxyEnv, before: float) -> bool:
    """Whether one more classifier miss than ``before`` is counted (the proxy counts it just
    after relaying the shard's answer, so the client may see the answer first)."""
    deadline = time.monotonic() + 2
    while classifier_misses(proxy) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    return classifier_misses(proxy) == before + 1


AB = (
    "CREATE TABLE {a} (id INT PRIMARY KEY, v INT)",
    "INSERT INTO {a} VALUES (1, 10), (2, 20)",
    "CREATE TABLE {b} (id INT PRIMARY KEY, w INT)",
    "INSERT INTO {b} VALUES (2, 200), (3, 300)",
)
A_ROWS = "SELECT id, v FROM {a} ORDER BY id"
TABLES = (
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'easydb' "
    "AND TABLE_NAME LIKE '{p}%' ORDER BY TABLE_NAME"
)


def _first(rs: list[tuple[Any, ...]]) -> list[Any]:
    return [r[0] for r in rs]


ROWS: list[Row] = [
    # --- SELECT and every table read ----------------------------------------------------------
    Row("select", "SELECT v FROM {a} ORDER BY id", (("SELECT", "a"),), AB, returns=[(10,), (20,)]),
    Row(
        "select_join",
        "SELECT {a}.v, {b}.w FROM {a} JOIN {b} ON {a}.id = {b}.id",
        (("SELECT", "a"), ("SELECT", "b")),
        AB,
        returns=[(20, 200)],
    ),
    Row(
        "select_left_join_alias",
        "SELECT x.id, y.w FROM {a} AS x LEFT JOIN {b} AS y USING (id) ORDER BY x.id",
        (("SELECT", "a"), ("SELECT", "b")),
        AB,
        returns=[(1, None), (2, 200)],
    ),
    Row(
        "select_where_subquery",
        "SELECT v FROM {a} WHERE id IN (SELECT id FROM {b})",
        (("SELECT", "a"), ("SELECT", "b")),
        AB,
        returns=[(20,)],
    ),
    Row(
        "select_scalar_subquery",
        "SELECT (SELECT MAX(w) FROM {b}) AS m",
        (("SELECT", "b"),),
        AB,
        returns=[(300,)],
    ),
    Row(
        "select_exists_subquery",
        "SELECT id FROM {a} WHERE EXISTS (SELECT 1 FROM {b} WHERE {b}.id = {a}.id)",
        (("SELECT", "a"), ("SELECT", "b")),
        AB,
        returns=[(2,)],
    ),
    Row(
        "select_derived_table",
        "SELECT d.total FROM (SELECT SUM(w) AS total FROM {b}) AS d",
        (("SELECT", "b"),),
        AB,
        returns=[(500,)],
        project=lambda rs: [(int(r[0]),) for r in rs],
    ),
    Row(
        # the CTE is named like an existing table the account may not read: not a table
        "select_cte",
        "WITH {b} AS (SELECT id, v FROM {a}) SELECT v FROM {b} ORDER BY id",
        (("SELECT", "a"),),
        AB,
        returns=[(10,), (20,)],
        unneeded=("b",),
    ),
    Row(
        "select_recursive_cte",
        "WITH RECURSIVE c (n) AS (SELECT MIN(id) FROM {a} UNION ALL SELECT n + 1 FROM c "
        "WHERE n < 3) SELECT n FROM c",
        (("SELECT", "a"),),
        AB,
        returns=[(1,), (2,), (3,)],
    ),
    Row(
        "select_union",
        "SELECT v FROM {a} UNION ALL SELECT w FROM {b} ORDER BY 1",
        (("SELECT", "a"), ("SELECT", "b")),
        AB,
        returns=[(10,), (20,), (200,), (300,)],
    ),
    Row(
        # a view is a table for privileges: SELECT on the view, not on what it reads
        "select_view",
        "SELECT v FROM {v} ORDER BY v",
        (("SELECT", "v"),),
        (*AB, "CREATE VIEW {v} AS SELECT v FROM {a}"),
        returns=[(10,), (20,)],
        unneeded=("a",),
    ),
    Row(
        "select_sequence_nextval",
        "SELECT NEXTVAL({s})",
        (("INSERT", "s"), ("SELECT", "s")),
        ("CREATE SEQUENCE {s} START WITH 7 NOCACHE",),
        check="SELECT next_not_cached_value FROM {s}",
        after=[(8,)],
        returns=[(7,)],
    ),
    # --- writes -------------------------------------------------------------------------------
    Row(
        "insert",
        "INSERT INTO {a} (id, v) VALUES (3, 30)",
        (("INSERT", "a"),),
        AB,
        A_ROWS,
        [(1, 10), (2, 20), (3, 30)],
    ),
    Row(
        "insert_set",
        "INSERT INTO {a} SET id = 4, v = 40",
        (("INSERT", "a"),),
        AB,
        A_ROWS,
        [(1, 10), (2, 20), (4, 40)],
    ),
    Row(
        "insert_select",
        "INSERT INTO {a} (id, v) SELECT id + 10, w FROM {b}",
        (("INSERT", "a"), ("SELECT", "b")),
        AB,
        A_ROWS,
        [(1, 10), (2, 20), (12, 200), (13, 300)],
    ),
    Row(
        "insert_select_union_of_sources",
        "INSERT INTO {a} (id, v) SELECT id + 10, w FROM {b} UNION ALL SELECT id + 20, v FROM {a}",
        (("INSERT", "a"), ("SELECT", "b"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 10), (2, 20), (12, 200), (13, 300), (21, 10), (22, 20)],
    ),
    Row(
        "insert_values_subquery",
        "INSERT INTO {a} (id, v) VALUES (5, (SELECT MAX(w) FROM {b}))",
        (("INSERT", "a"), ("SELECT", "b")),
        AB,
        A_ROWS,
        [(1, 10), (2, 20), (5, 300)],
    ),
    Row(
        "insert_on_duplicate_key_update",
        "INSERT INTO {a} (id, v) VALUES (1, 0) ON DUPLICATE KEY UPDATE v = v + 1",
        (("INSERT", "a"), ("UPDATE", "a"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 11), (2, 20)],
    ),
    Row(
        "insert_on_duplicate_key_update_values",
        "INSERT INTO {a} (id, v) VALUES (2, 7) ON DUPLICATE KEY UPDATE v = VALUES(v)",
        (("INSERT", "a"), ("UPDATE", "a"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 10), (2, 7)],
    ),
    Row(
        "replace",
        "REPLACE INTO {a} (id, v) VALUES (1, 99)",
        (("INSERT", "a"), ("DELETE", "a")),
        AB,
        A_ROWS,
        [(1, 99), (2, 20)],
    ),
    Row(
        "replace_select",
        "REPLACE INTO {a} (id, v) SELECT id, w FROM {b}",
        (("INSERT", "a"), ("DELETE", "a"), ("SELECT", "b")),
        AB,
        A_ROWS,
        [(1, 10), (2, 200), (3, 300)],
    ),
    Row(
        "update",
        "UPDATE {a} SET v = v + 1 WHERE id = 1",
        (("UPDATE", "a"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 11), (2, 20)],
    ),
    Row(
        "update_reads_no_column",
        "UPDATE {a} SET v = 5",
        (("UPDATE", "a"),),
        AB,
        A_ROWS,
        [(1, 5), (2, 5)],
    ),
    Row(
        "update_subquery",
        "UPDATE {a} SET v = (SELECT MIN(w) FROM {b}) WHERE id = 2",
        (("UPDATE", "a"), ("SELECT", "b"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 10), (2, 200)],
    ),
    Row(
        "update_multi_table_reads_other",
        "UPDATE {a} JOIN {b} ON {a}.id = {b}.id SET {a}.v = {b}.w",
        (("UPDATE", "a"), ("SELECT", "b"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 10), (2, 200)],
    ),
    Row(
        "update_multi_table_writes_both",
        "UPDATE {a} AS x, {b} AS y SET x.v = 0, y.w = 0 WHERE x.id = y.id",
        (("UPDATE", "a"), ("UPDATE", "b"), ("SELECT", "a"), ("SELECT", "b")),
        AB,
        "SELECT (SELECT GROUP_CONCAT(v ORDER BY id) FROM {a}), "
        "(SELECT GROUP_CONCAT(w ORDER BY id) FROM {b})",
        [("10,0", "0,300")],
    ),
    Row(
        "delete",
        "DELETE FROM {a} WHERE id = 1",
        (("DELETE", "a"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(2, 20)],
    ),
    Row(
        "delete_reads_no_column",
        "DELETE FROM {a}",
        (("DELETE", "a"),),
        AB,
        A_ROWS,
        [],
    ),
    Row(
        "delete_subquery",
        "DELETE FROM {a} WHERE id IN (SELECT id FROM {b})",
        (("DELETE", "a"), ("SELECT", "b"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 10)],
    ),
    Row(
        "delete_multi_table_reads_other",
        "DELETE {a} FROM {a} JOIN {b} ON {a}.id = {b}.id",
        (("DELETE", "a"), ("SELECT", "b"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 10)],
    ),
    Row(
        "delete_multi_table_both",
        "DELETE x, y FROM {a} AS x JOIN {b} AS y ON x.id = y.id",
        (("DELETE", "a"), ("DELETE", "b"), ("SELECT", "a"), ("SELECT", "b")),
        AB,
        "SELECT (SELECT COUNT(*) FROM {a}), (SELECT COUNT(*) FROM {b})",
        [(1, 1)],
    ),
    Row(
        "delete_using",
        "DELETE FROM {a} USING {a} JOIN {b} ON {a}.id = {b}.id",
        (("DELETE", "a"), ("SELECT", "b"), ("SELECT", "a")),
        AB,
        A_ROWS,
        [(1, 10)],
    ),
    Row("truncate", "TRUNCATE TABLE {a}", (("DROP", "a"),), AB, A_ROWS, []),
    # --- DDL ----------------------------------------------------------------------------------
    Row(
        "create_table",
        "CREATE TABLE {n} (id INT PRIMARY KEY, label VARCHAR(10))",
        (("CREATE", "n"),),
        (),
        TABLES,
        [("{n}",)],
    ),
    Row(
        "create_table_like",
        "CREATE TABLE {n} LIKE {a}",
        (("CREATE", "n"), ("SELECT", "a")),
        AB,
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'easydb' "
        "AND TABLE_NAME = '{n}' ORDER BY ORDINAL_POSITION",
        [("id",), ("v",)],
    ),
    Row(
        "create_table_as_select",
        "CREATE TABLE {n} AS SELECT id, w FROM {b}",
        (("CREATE", "n"), ("INSERT", "n"), ("SELECT", "b")),
        AB,
        "SELECT id, w FROM {n} ORDER BY id",
        [(2, 200), (3, 300)],
    ),
    Row(
        "create_table_select_no_as",
        "CREATE TABLE {n} SELECT v FROM {a} WHERE id = 1",
        (("CREATE", "n"), ("INSERT", "n"), ("SELECT", "a")),
        AB,
        "SELECT v FROM {n}",
        [(10,)],
    ),
    Row(
        "create_table_foreign_key",
        "CREATE TABLE {n} (id INT, a_id INT, FOREIGN KEY (a_id) REFERENCES {a} (id))",
        (("CREATE", "n"), ("SELECT", "a")),
        AB,
        TABLES,
        [("{a}",), ("{b}",), ("{n}",)],
    ),
    Row("drop_table", "DROP TABLE {a}", (("DROP", "a"),), AB, TABLES, [("{b}",)]),
    Row(
        "drop_tables",
        "DROP TABLE IF EXISTS {a}, {b}",
        (("DROP", "a"), ("DROP", "b")),
        AB,
        TABLES,
        [],
    ),
    Row(
        "alter_table",
        "ALTER TABLE {a} ADD COLUMN extra INT",
        (("ALTER", "a"),),
        AB,
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'easydb' "
        "AND TABLE_NAME = '{a}' ORDER BY ORDINAL_POSITION",
        [("id",), ("v",), ("extra",)],
    ),
    Row(
        "alter_table_rename_to",
        "ALTER TABLE {a} RENAME TO {n}",
        (("ALTER", "a"), ("DROP", "a"), ("CREATE", "n"), ("INSERT", "n")),
        AB,
        TABLES,
        [("{b}",), ("{n}",)],
    ),
    Row(
        "create_index",
        "CREATE INDEX ix_v ON {a} (v)",
        (("INDEX", "a"),),
        AB,
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
        "'easydb' AND TABLE_NAME = '{a}' ORDER BY BINARY INDEX_NAME",
        [("PRIMARY",), ("ix_v",)],
    ),
    Row(
        "create_unique_index",
        "CREATE UNIQUE INDEX ux_v ON {a} (v)",
        (("INDEX", "a"),),
        AB,
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
        "'easydb' AND TABLE_NAME = '{a}' ORDER BY BINARY INDEX_NAME",
        [("PRIMARY",), ("ux_v",)],
    ),
    Row(
        "drop_index",
        "DROP INDEX ix_v ON {a}",
        (("INDEX", "a"),),
        (*AB, "CREATE INDEX ix_v ON {a} (v)"),
        "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
        "'easydb' AND TABLE_NAME = '{a}' ORDER BY BINARY INDEX_NAME",
        [("PRIMARY",)],
    ),
    Row(
        "rename_table",
        "RENAME TABLE {a} TO {n}",
        (("ALTER", "a"), ("DROP", "a"), ("CREATE", "n"), ("INSERT", "n")),
        AB,
        TABLES,
        [("{b}",), ("{n}",)],
    ),
    # --- sequences: privileges on the database ------------------------------------------------
    Row(
        "create_sequence",
        "CREATE SEQUENCE {s}",
        (("CREATE", None),),
        (),
        TABLES,
        [("{s}",)],
    ),
    Row(
        "drop_sequence",
        "DROP SEQUENCE {s}",
        (("DROP", None),),
        ("CREATE SEQUENCE {s}",),
        TABLES,
        [],
    ),
    Row(
        "alter_sequence",
        "ALTER SEQUENCE {s} INCREMENT BY 5",
        (("ALTER", None),),
        ("CREATE SEQUENCE {s}",),
        "SELECT increment FROM {s}",
        [(5,)],
    ),
    # --- session: a user variable set from a table --------------------------------------------
    Row(
        "set_user_variable_from_table",
        "SET @enf_x = (SELECT v FROM {a} WHERE id = 2)",
        (("SELECT", "a"),),
        AB,
        then=("SELECT @enf_x", [(20,)]),
    ),
    # --- metadata statements on one table -----------------------------------------------------
    Row(
        "show_columns",
        "SHOW COLUMNS FROM {a}",
        (("SELECT", "a"),),
        AB,
        returns=["id", "v"],
        project=_first,
    ),
    Row(
        "show_full_columns_from_db",
        "SHOW FULL COLUMNS FROM {a} FROM easydb",
        (("SELECT", "a"),),
        AB,
        returns=["id", "v"],
        project=_first,
    ),
    Row(
        "show_index",
        "SHOW INDEX FROM {a}",
        (("SELECT", "a"),),
        AB,
        returns=["PRIMARY"],
        project=lambda rs: [r[2] for r in rs],
    ),
    Row(
        "show_create_table",
        "SHOW CREATE TABLE {a}",
        (("SELECT", "a"),),
        AB,
        returns=["{a}"],
        project=_first,
    ),
    Row("describe", "DESCRIBE {a}", (("SELECT", "a"),), AB, returns=["id", "v"], project=_first),
    Row("desc_column", "DESC {a} v", (("SELECT", "a"),), AB, returns=["v"], project=_first),
    Row(
        "explain_select",
        "EXPLAIN SELECT * FROM {a} JOIN {b} ON {a}.id = {b}.id",
        (("SELECT", "a"), ("SELECT", "b")),
        AB,
        returns=["{a}", "{b}"],
        project=lambda rs: sorted(r[2] for r in rs),
    ),
    Row(
        # EXPLAIN of a write needs what the write needs, and writes nothing
        "explain_update",
        "EXPLAIN UPDATE {a} SET v = 0",
        (("UPDATE", "a"),),
        AB,
        A_ROWS,
        [(1, 10), (2, 20)],
    ),
    Row(
        "check_table",
        "CHECKSUM TABLE {a}",
        (("SELECT", "a"),),
        AB,
        returns=["easydb.{a}"],
        project=_first,
    ),
]


def _names(index: int) -> dict[str, str]:
    base = f"enf{index:02d}"
    return {k: f"{base}{k}" for k in "abnvs"} | {"p": base}


def _fill(text: str, names: dict[str, str]) -> str:
    return text.format(**names)


def _fill_any(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _fill(value, names)
    if isinstance(value, list):
        return [_fill_any(v, names) for v in value]
    if isinstance(value, tuple):
        return tuple(_fill_any(v, names) for v in value)
    return value


def _reset(env: Env, names: dict[str, str]) -> None:
    env.shard_exec(f"DROP VIEW IF EXISTS {names['v']}")
    env.shard_exec(f"DROP SEQUENCE IF EXISTS {names['s']}")
    env.shard_exec(f"DROP TABLE IF EXISTS {names['n']}, {names['b']}, {names['a']}")


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[r.id for r in ROWS])
def test_statement_needs_exactly_its_privileges(env: Env, index: int) -> None:
    row = ROWS[index]
    names = _names(index)
    _reset(env, names)
    for statement in row.setup:
        env.shard_exec(_fill(statement, names))
    sql = _fill(row.sql, names)
    check = _fill(row.check, names) if row.check else None
    before = env.on_shard(check) if check else None
    needs = [(priv, None if key is None else names[key]) for priv, key in row.needs]

    user = env.create_account([(priv, table) for priv, table in needs])
    conn = env.connect(user)
    try:
        # Missing any one of the needed privileges: the exact error, and nothing changes.
        for priv, table in needs:
            env.revoke(user, priv, table)
            expected = db_denied(user) if table is None else table_denied(priv, user, table)
            assert error_of(conn, sql) == expected, (row.id, priv, table)
            if check:
                assert env.on_shard(check) == before, (row.id, priv, table)
            env.grant(user, priv, table)
        # The tables the statement must not need privileges on really exist.
        for key in row.unneeded:
            assert env.table_exists(names[key])
        # Exactly the needed privileges: it runs, with its effect.
        result = rows(conn, sql)
        if row.returns is not None:
            shown = row.project(result) if row.project else result
            assert shown == _fill_any(row.returns, names), row.id
        if row.then is not None:
            assert rows(conn, row.then[0]) == row.then[1]
        if check:
            assert env.on_shard(check) == _fill_any(row.after, names), row.id
    finally:
        conn.close()
        _reset(env, names)


def test_every_documented_statement_kind_has_a_row() -> None:
    ids = {r.id for r in ROWS}
    for kind in (
        "select",
        "select_join",
        "select_where_subquery",
        "select_derived_table",
        "select_cte",
        "select_union",
        "select_view",
        "insert",
        "insert_select",
        "insert_on_duplicate_key_update",
        "replace",
        "update",
        "update_multi_table_reads_other",
        "delete",
        "delete_multi_table_reads_other",
        "truncate",
        "create_table",
        "create_table_like",
        "create_table_as_select",
        "drop_table",
        "alter_table",
        "create_index",
        "drop_index",
        "rename_table",
        "create_sequence",
        "drop_sequence",
        "alter_sequence",
        "show_columns",
        "show_index",
        "show_create_table",
        "describe",
        "explain_select",
    ):
        assert kind in ids


# --------------------------------------------------------------------------------------------
# Prepared statements are checked the same way


PREPARED: list[tuple[str, str, tuple[Any, ...], tuple[tuple[str, str], ...], str, Any]] = [
    # id, sql, params, needs, check (on the shard) or "" , expected rows (result or check)
    ("select", "SELECT v FROM {a} WHERE id = ?", (2,), (("SELECT", "a"),), "", [(20,)]),
    (
        "select_join",
        "SELECT {b}.w FROM {a} JOIN {b} ON {a}.id = {b}.id WHERE {a}.v > ?",
        (0,),
        (("SELECT", "a"), ("SELECT", "b")),
        "",
        [(200,)],
    ),
    (
        "insert",
        "INSERT INTO {a} (id, v) VALUES (?, ?)",
        (7, 70),
        (("INSERT", "a"),),
        A_ROWS,
        [(1, 10), (2, 20), (7, 70)],
    ),
    (
        "insert_select",
        "INSERT INTO {a} (id, v) SELECT id + ?, w FROM {b} WHERE id = 3",
        (20,),
        (("INSERT", "a"), ("SELECT", "b")),
        A_ROWS,
        [(1, 10), (2, 20), (23, 300)],
    ),
    (
        "upsert",
        "INSERT INTO {a} (id, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = ?",
        (1, 0, 5),
        (("INSERT", "a"), ("UPDATE", "a"), ("SELECT", "a")),
        A_ROWS,
        [(1, 5), (2, 20)],
    ),
    (
        "replace",
        "REPLACE INTO {a} (id, v) VALUES (?, ?)",
        (2, 22),
        (("INSERT", "a"), ("DELETE", "a")),
        A_ROWS,
        [(1, 10), (2, 22)],
    ),
    (
        "update",
        "UPDATE {a} SET v = ? WHERE id = ?",
        (11, 1),
        (("UPDATE", "a"), ("SELECT", "a")),
        A_ROWS,
        [(1, 11), (2, 20)],
    ),
    (
        "update_join",
        "UPDATE {a} JOIN {b} ON {a}.id = {b}.id SET {a}.v = {b}.w + ?",
        (1,),
        (("UPDATE", "a"), ("SELECT", "b"), ("SELECT", "a")),
        A_ROWS,
        [(1, 10), (2, 201)],
    ),
    (
        "delete",
        "DELETE FROM {a} WHERE id = ?",
        (1,),
        (("DELETE", "a"), ("SELECT", "a")),
        A_ROWS,
        [(2, 20)],
    ),
    (
        "delete_subquery",
        "DELETE FROM {a} WHERE id IN (SELECT id FROM {b} WHERE w > ?)",
        (0,),
        (("DELETE", "a"), ("SELECT", "b"), ("SELECT", "a")),
        A_ROWS,
        [(1, 10)],
    ),
]


@pytest.mark.parametrize("index", range(len(PREPARED)), ids=[p[0] for p in PREPARED])
def test_prepared_statement_needs_exactly_its_privileges(env: Env, index: int) -> None:
    ident, sql_t, params, needs_t, check_t, expected = PREPARED[index]
    names = {k: f"enfp{index:02d}{k}" for k in "abnvs"}
    _reset(env, names)
    for statement in AB:
        env.shard_exec(_fill(statement, names))
    sql = _fill(sql_t, names)
    check = _fill(check_t, names) if check_t else ""
    before = env.on_shard(check) if check else None
    needs = [(priv, names[key]) for priv, key in needs_t]
    user = env.create_account(needs)
    conn = env.connect_prepared(user)
    try:
        for priv, table in needs:
            env.revoke(user, priv, table)
            cur = conn.cursor(prepared=True)
            with pytest.raises(mysql.connector.Error) as info:
                cur.execute(sql, params)
            error = (info.value.errno, info.value.msg)
            assert error == table_denied(priv, user, table), ident
            cur.close()
            if check:
                assert env.on_shard(check) == before
            env.grant(user, priv, table)
        cur = conn.cursor(prepared=True)
        cur.execute(sql, params)
        result = [tuple(r) for r in cur.fetchall()] if cur.description else []
        if check:
            assert env.on_shard(check) == expected, ident
        else:
            assert result == expected, ident
        # Executing the same prepared statement again after a REVOKE is refused, and changes
        # nothing.
        state = env.on_shard(check) if check else None
        priv, table = needs[-1]
        env.revoke(user, priv, table)
        with pytest.raises(mysql.connector.Error) as info:
            cur.execute(sql, params)
        assert (info.value.errno, info.value.msg) == table_denied(priv, user, table)
        if check:
            assert env.on_shard(check) == state
    finally:
        conn.close()
        _reset(env, names)


# --------------------------------------------------------------------------------------------
# Transactions, savepoints and session variables need no privilege of their own


def test_transactions_and_savepoints(env: Env) -> None:
    names = {k: f"enftx{k}" for k in "abnvs"}
    _reset(env, names)
    for statement in AB:
        env.shard_exec(_fill(statement, names))
    a, b = names["a"], names["b"]
    user = env.create_account([("INSERT", a), ("SELECT", a)])
    conn = env.connect(user)
    try:
        rows(conn, "START TRANSACTION")
        rows(conn, f"INSERT INTO {a} VALUES (3, 30)")
        rows(conn, "SAVEPOINT sp1")
        rows(conn, f"INSERT INTO {a} VALUES (4, 40)")
        # a refused statement inside the transaction changes nothing and ends nothing
        assert error_of(conn, f"INSERT INTO {b} VALUES (9, 90)") == table_denied("INSERT", user, b)
        rows(conn, "ROLLBACK TO SAVEPOINT sp1")
        rows(conn, "RELEASE SAVEPOINT sp1")
        # not yet visible on the shard
        assert env.on_shard(f"SELECT id FROM {a} ORDER BY id") == [(1,), (2,)]
        rows(conn, "COMMIT")
        assert env.on_shard(f"SELECT id FROM {a} ORDER BY id") == [(1,), (2,), (3,)]
        rows(conn, "BEGIN")
        rows(conn, f"INSERT INTO {a} VALUES (5, 50)")
        rows(conn, "ROLLBACK")
        rows(conn, "SET autocommit = 0")
        rows(conn, f"INSERT INTO {a} VALUES (6, 60)")
        rows(conn, "ROLLBACK WORK")
        rows(conn, "SET autocommit = 1")
        rows(conn, "START TRANSACTION READ ONLY")
        assert rows(conn, f"SELECT COUNT(*) FROM {a}") == [(3,)]
        rows(conn, "COMMIT WORK")
        assert env.on_shard(f"SELECT id FROM {b} ORDER BY id") == [(2,), (3,)]
        assert env.on_shard(f"SELECT id FROM {a} ORDER BY id") == [(1,), (2,), (3,)]
        # The read-only account may run transactions, but not write in them.
        with env.proxy.connect(user="easydb_RO") as ro:
            rows(ro, "BEGIN")
            assert error_of(ro, f"DELETE FROM {a}") == table_denied("DELETE", "easydb_RO", a)
            rows(ro, "COMMIT")
        assert env.on_shard(f"SELECT COUNT(*) FROM {a}") == [(3,)]
    finally:
        conn.close()
        _reset(env, names)


def test_session_variables(env: Env) -> None:
    names = {k: f"enfsv{k}" for k in "abnvs"}
    _reset(env, names)
    for statement in AB:
        env.shard_exec(_fill(statement, names))
    a = names["a"]
    user = env.create_account([("SELECT", a)])
    conn = env.connect(user)
    try:
        rows(conn, "SET SESSION sql_select_limit = 1")
        assert rows(conn, f"SELECT id FROM {a} ORDER BY id") == [(1,)]
        rows(conn, "SET @@session.sql_select_limit = DEFAULT, time_zone = '+02:00'")
        assert rows(conn, f"SELECT id FROM {a} ORDER BY id") == [(1,), (2,)]
        assert rows(conn, "SELECT @@session.time_zone") == [("+02:00",)]
        rows(conn, "SET @x = 5, @y := 'six'")
        assert rows(conn, "SELECT @x, @y") == [(5, "six")]
        rows(conn, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        rows(conn, "SET NAMES utf8mb4")
        assert error_of(conn, "SET GLOBAL max_connections = 5") == need_global("SUPER")
        assert error_of(conn, "SET sql_log_bin = 0") == not_supported("SET of variable sql_log_bin")
    finally:
        conn.close()
        _reset(env, names)


# --------------------------------------------------------------------------------------------
# Names qualified with another database: 1235, even where the account holds privileges there


@pytest.fixture(scope="module")
def two_db_account(env: Env) -> Iterator[tuple[str, dict[str, str]]]:
    names = {"a": "enfxa", "o": "enfxo"}
    env.shard_exec(f"DROP TABLE IF EXISTS {names['a']}")
    env.shard_exec(f"CREATE TABLE {names['a']} (id INT PRIMARY KEY, v INT)")
    env.shard_exec(f"INSERT INTO {names['a']} VALUES (1, 10)")
    env.shard_exec(f"DROP TABLE IF EXISTS {names['o']}", 1)
    env.shard_exec(f"CREATE TABLE {names['o']} (id INT PRIMARY KEY, v INT)", 1)
    env.shard_exec(f"INSERT INTO {names['o']} VALUES (1, 111)", 1)
    user = env.create_account([("ALL", names["a"])])
    env.grant(user, "ALL", names["o"], db="otherdb")
    yield user, names


CROSS_DB = [
    ("SELECT * FROM otherdb.{o}", "otherdb"),
    ("SELECT * FROM `otherdb`.`{o}`", "otherdb"),
    ("SELECT * FROM OTHERDB.{o}", "OTHERDB"),
    ("SELECT * FROM {a} JOIN otherdb.{o} USING (id)", "otherdb"),
    ("SELECT * FROM {a} WHERE id IN (SELECT id FROM otherdb.{o})", "otherdb"),
    ("SELECT (SELECT v FROM otherdb.{o}) FROM {a}", "otherdb"),
    ("WITH c AS (SELECT * FROM otherdb.{o}) SELECT * FROM c", "otherdb"),
    ("INSERT INTO otherdb.{o} VALUES (2, 2)", "otherdb"),
    ("INSERT INTO {a} SELECT id + 1, v FROM otherdb.{o}", "otherdb"),
    ("UPDATE otherdb.{o} SET v = 0", "otherdb"),
    ("UPDATE {a} JOIN otherdb.{o} USING (id) SET {a}.v = 0", "otherdb"),
    ("DELETE FROM otherdb.{o}", "otherdb"),
    ("DELETE {a} FROM {a} JOIN otherdb.{o} USING (id)", "otherdb"),
    ("TRUNCATE otherdb.{o}", "otherdb"),
    ("DROP TABLE otherdb.{o}", "otherdb"),
    ("ALTER TABLE otherdb.{o} ADD COLUMN c INT", "otherdb"),
    ("CREATE TABLE otherdb.enfxn (id INT)", "otherdb"),
    ("CREATE TABLE enfxn LIKE otherdb.{o}", "otherdb"),
    ("CREATE TABLE enfxn AS SELECT * FROM otherdb.{o}", "otherdb"),
    ("RENAME TABLE {a} TO otherdb.enfxn", "otherdb"),
    ("CREATE INDEX i ON otherdb.{o} (v)", "otherdb"),
    ("SHOW COLUMNS FROM otherdb.{o}", "otherdb"),
    ("SHOW COLUMNS FROM {o} FROM otherdb", "otherdb"),
    ("SHOW TABLES FROM otherdb", "otherdb"),
    ("SHOW CREATE TABLE otherdb.{o}", "otherdb"),
    ("DESCRIBE otherdb.{o}", "otherdb"),
    ("EXPLAIN SELECT * FROM otherdb.{o}", "otherdb"),
    ("SET @v = (SELECT v FROM otherdb.{o})", "otherdb"),
    ("SELECT otherdb.f(1)", "otherdb"),
    ("SELECT NEXTVAL(otherdb.s)", "otherdb"),
]


@pytest.mark.parametrize(("sql", "db"), CROSS_DB, ids=[c[0][:50] for c in CROSS_DB])
def test_other_database_is_refused(
    env: Env, two_db_account: tuple[str, dict[str, str]], sql: str, db: str
) -> None:
    user, names = two_db_account
    with env.connect(user) as conn:
        assert error_of(conn, sql.format(**names)) == cross_db(db)
    assert env.on_shard(f"SELECT id, v FROM {names['o']}", 1) == [(1, 111)]
    assert env.on_shard(f"SELECT id, v FROM {names['a']}") == [(1, 10)]
    assert not env.table_exists("enfxn") and not env.table_exists("enfxn", "otherdb")


def test_a_database_it_may_not_use_is_1044_not_use_it_first(
    env: Env, two_db_account: tuple[str, dict[str, str]]
) -> None:
    """Naming another database says "USE it first" only where USE would work: a system schema
    or a database the account holds nothing on gets USE's own 1044 (whether it exists or not)."""
    user, names = two_db_account
    with env.connect(user) as conn:
        for db, sql in (
            ("mysql", "SELECT * FROM mysql.user"),
            ("performance_schema", "SELECT * FROM performance_schema.threads"),
            ("sys", "SELECT sys.version_major()"),
            ("nosuchdb", f"SELECT * FROM nosuchdb.{names['a']}"),
        ):
            assert error_of(conn, sql) == db_denied(user, db), sql
            assert error_of(conn, f"USE {db}") == db_denied(user, db)
        assert error_of(conn, f"SELECT v FROM otherdb.{names['o']}") == cross_db("otherdb")


def test_other_database_after_use(env: Env, two_db_account: tuple[str, dict[str, str]]) -> None:
    """The same account reads the other database once it USEs it (and then not easydb)."""
    user, names = two_db_account
    with env.connect(user) as conn:
        assert rows(conn, f"SELECT v FROM {names['a']}") == [(10,)]
        rows(conn, "USE otherdb")
        assert rows(conn, f"SELECT v FROM {names['o']}") == [(111,)]
        assert error_of(conn, f"SELECT v FROM easydb.{names['a']}") == cross_db("easydb")
        conn.select_db("easydb")
        assert rows(conn, f"SELECT v FROM {names['a']}") == [(10,)]


def test_use_and_show_databases(env: Env, two_db_account: tuple[str, dict[str, str]]) -> None:
    user, _ = two_db_account
    one_db = env.create_account([("SELECT", "enfxa")])
    with env.connect(one_db) as conn:
        assert rows(conn, "SHOW DATABASES") == [("easydb",), ("information_schema",)]
        assert error_of(conn, "USE otherdb") == db_denied(one_db, "otherdb")
        assert error_of(conn, "USE nosuchdb") == db_denied(one_db, "nosuchdb")
        with pytest.raises(pymysql.err.MySQLError) as info:
            conn.select_db("otherdb")
        assert info.value.args == db_denied(one_db, "otherdb")
    with env.connect(user) as conn:
        assert rows(conn, "SHOW DATABASES") == [  # sorted, as MariaDB lists them
            ("easydb",),
            ("information_schema",),
            ("otherdb",),
        ]
        assert rows(conn, "SHOW DATABASES LIKE 'other%'") == [("otherdb",)]
    with env.proxy.connect(user="otherdb_RO", database="otherdb") as conn:
        assert rows(conn, "SHOW DATABASES") == [("information_schema",), ("otherdb",)]
        assert error_of(conn, "USE easydb") == db_denied("otherdb_RO", "easydb")
    with pytest.raises(pymysql.err.MySQLError) as info:
        env.connect(one_db, database="otherdb")
    assert info.value.args == db_denied(one_db, "otherdb")


def test_revoke_applies_to_the_next_statement(env: Env) -> None:
    names = {k: f"enfrv{k}" for k in "abnvs"}
    _reset(env, names)
    for statement in AB:
        env.shard_exec(_fill(statement, names))
    a = names["a"]
    user = env.create_account([("SELECT, INSERT", a)])
    conn = env.connect(user)
    try:
        assert rows(conn, f"SELECT COUNT(*) FROM {a}") == [(2,)]
        env.revoke(user, "INSERT", a)
        assert error_of(conn, f"INSERT INTO {a} VALUES (9, 9)") == table_denied("INSERT", user, a)
        env.grant(user, "INSERT", None)  # database level covers every table
        rows(conn, f"INSERT INTO {a} VALUES (9, 9)")
        assert env.on_shard(f"SELECT COUNT(*) FROM {a}") == [(3,)]
        rows(env.admin, f"DROP USER {user}")
        with pytest.raises(pymysql.err.MySQLError):
            rows(conn, f"SELECT COUNT(*) FROM {a}")
    finally:
        conn.close()
        _reset(env, names)


def test_builtin_accounts(env: Env) -> None:
    names = {k: f"enfbi{k}" for k in "abnvs"}
    _reset(env, names)
    for statement in AB:
        env.shard_exec(_fill(statement, names))
    a = names["a"]
    try:
        with env.proxy.connect(user="easydb_RO") as ro:
            assert rows(ro, f"SELECT COUNT(*) FROM {a}") == [(2,)]
            for sql, priv in [
                (f"INSERT INTO {a} VALUES (5, 5)", "INSERT"),
                (f"REPLACE INTO {a} VALUES (1, 5)", "INSERT"),
                (f"UPDATE {a} SET v = 0", "UPDATE"),
                (f"DELETE FROM {a}", "DELETE"),
                (f"TRUNCATE {a}", "DROP"),
                (f"ALTER TABLE {a} ADD COLUMN c INT", "ALTER"),
                (f"CREATE INDEX i ON {a} (v)", "INDEX"),
                (f"DROP TABLE {a}", "DROP"),
                (f"CREATE TABLE {names['n']} (id INT)", "CREATE"),
            ]:
                table = names["n"] if priv == "CREATE" else a
                assert error_of(ro, sql) == table_denied(priv, "easydb_RO", table), sql
            assert error_of(ro, f"CREATE SEQUENCE {names['s']}") == db_denied("easydb_RO")
        assert env.on_shard(A_ROWS.format(a=a)) == [(1, 10), (2, 20)]
        # The administrator holds all eight on its database.
        rows(env.admin, f"ALTER TABLE {a} ADD COLUMN c INT")
        rows(env.admin, f"CREATE SEQUENCE {names['s']}")
        assert rows(env.admin, f"SELECT NEXTVAL({names['s']})") == [(1,)]
        # The other database's administrator is bound to it.
        with pytest.raises(pymysql.err.MySQLError) as info:
            env.proxy.connect(user="otherdb", database="easydb")
        assert info.value.args == db_denied("otherdb")
    finally:
        _reset(env, names)
