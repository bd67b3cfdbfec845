"""Metadata leaks: an account with table-level grants only sees the tables it holds
privileges on, in SHOW TABLES, SHOW TABLE STATUS and information_schema.

The shard does the filtering: the session's backend account mirrors the caller's grants, and
MariaDB shows an account only the tables it holds a privilege on, row by row, whatever the
shape of the query (joins, subqueries and aggregates included), so the proxy relays these
statements unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv

PASSWORD = "Meta#pass1"


@pytest.fixture(scope="module")
def narrow(proxy: ProxyEnv) -> Iterator[str]:
    """An account holding SELECT on easydb.meta_visible only; meta_hidden exists too."""
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS meta_visible, meta_hidden, meta_later")
        cur.execute("CREATE TABLE meta_visible (id INT PRIMARY KEY, label VARCHAR(10))")
        cur.execute("CREATE TABLE meta_hidden (secret INT PRIMARY KEY, other INT, KEY (other))")
        cur.execute("CREATE TABLE meta_later (id INT)")
        cur.execute("DROP USER IF EXISTS metauser")
        cur.execute(f"CREATE USER metauser IDENTIFIED BY '{PASSWORD}'")
        cur.execute("GRANT SELECT ON easydb.meta_visible TO metauser")
    yield "metauser"
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS metauser")


def _names(conn: pymysql.connections.Connection, sql: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return {row[0] for row in cur.fetchall()}


def _meta(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith("meta_")}


def test_show_tables_shows_only_tables_with_privileges(proxy: ProxyEnv, narrow: str) -> None:
    with proxy.connect(user=narrow, password=PASSWORD) as conn:
        assert _names(conn, "SHOW TABLES") == {"meta_visible"}
        assert _names(conn, "SHOW FULL TABLES") == {"meta_visible"}
        assert _names(conn, "SHOW TABLE STATUS") == {"meta_visible"}
        assert _names(conn, "SHOW TABLES LIKE 'meta%'") == {"meta_visible"}
        assert _names(conn, "SHOW TABLES WHERE Tables_in_easydb LIKE '%hidden'") == set()
        with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
            cur.execute("SHOW COLUMNS FROM meta_hidden")
        assert info.value.args == (
            1142,
            "SELECT command denied to user 'metauser'@'127.0.0.1' for table 'meta_hidden'",
        )
    # Accounts with database-level privileges see every table.
    with proxy.connect(user="easydb_RO") as conn:
        assert {"meta_visible", "meta_hidden"} <= _names(conn, "SHOW TABLES")


def test_information_schema_shows_only_tables_with_privileges(proxy: ProxyEnv, narrow: str) -> None:
    where = "WHERE TABLE_SCHEMA = 'easydb' AND TABLE_NAME LIKE 'meta%'"
    with proxy.connect(user=narrow, password=PASSWORD) as conn:
        for table in ("TABLES", "COLUMNS", "STATISTICS", "KEY_COLUMN_USAGE", "PARTITIONS"):
            found = _names(conn, f"SELECT TABLE_NAME FROM information_schema.{table} {where}")
            assert found == {"meta_visible"}, table
        assert _names(
            conn,
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
        ) == {"id", "label"}
        # (MariaDB shows constraints only with more than SELECT: none here.)
        assert "meta_hidden" not in _names(
            conn, "SELECT TABLE_NAME FROM information_schema.TABLE_CONSTRAINTS"
        )
        # No other tenant's database on this shard shows through (the server's own schemas,
        # information_schema and performance_schema, are no tenant's).
        schemas = _names(conn, "SELECT DISTINCT TABLE_SCHEMA FROM information_schema.TABLES")
        assert schemas - {"information_schema", "performance_schema"} == {"easydb"}
    with proxy.connect(user="easydb_RO") as conn:
        found = _names(conn, f"SELECT TABLE_NAME FROM information_schema.TABLES {where}")
        assert found == {"meta_visible", "meta_hidden", "meta_later"}


def test_shapes_that_used_to_be_refused_are_filtered_exactly(proxy: ProxyEnv, narrow: str) -> None:
    """Joins, subqueries, aggregates and computed columns: the shard filters every row it
    reads from information_schema, so none of them reveals a hidden table."""
    with proxy.connect(user=narrow, password=PASSWORD) as conn:
        for sql, expected in (
            (
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'easydb'",
                {1},
            ),
            (
                "SELECT c.TABLE_NAME FROM information_schema.COLUMNS AS c "
                "JOIN meta_visible ON 1 = 1 WHERE c.TABLE_SCHEMA = 'easydb'",
                set(),  # meta_visible is empty
            ),
            (
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_NAME = "
                "'meta_visible' AND EXISTS (SELECT 1 FROM information_schema.TABLES "
                "WHERE TABLE_NAME = 'meta_hidden')",
                set(),
            ),
            (
                "SELECT a.TABLE_NAME FROM information_schema.TABLES a, information_schema.TABLES b "
                "WHERE b.TABLE_NAME = 'meta_hidden'",
                set(),
            ),
            (
                "SELECT UPPER(TABLE_NAME) AS TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = 'easydb'",
                {"META_VISIBLE"},
            ),
            (
                "SELECT GROUP_CONCAT(TABLE_NAME) FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = 'easydb'",
                {"meta_visible"},
            ),
        ):
            assert _names(conn, sql) == expected, sql


def test_metadata_in_multi_statement_packet(proxy: ProxyEnv, narrow: str) -> None:
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS
    with proxy.connect(user=narrow, password=PASSWORD, client_flag=flags) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 1; SHOW TABLES")
            assert cur.fetchall() == ((1,),)
            assert cur.nextset()
            assert {row[0] for row in cur.fetchall()} == {"meta_visible"}


def test_visibility_follows_grants_on_an_open_session(proxy: ProxyEnv, narrow: str) -> None:
    with (
        proxy.connect(user=narrow, password=PASSWORD) as conn,
        proxy.connect() as admin,
        admin.cursor() as cur,
    ):
        assert _meta(_names(conn, "SHOW TABLES")) == {"meta_visible"}
        try:
            cur.execute("GRANT INSERT ON easydb.meta_later TO metauser")
            assert _meta(_names(conn, "SHOW TABLES")) == {"meta_visible", "meta_later"}
            cur.execute("GRANT SELECT ON easydb.* TO metauser")
            assert _meta(_names(conn, "SHOW TABLES")) == {
                "meta_visible",
                "meta_hidden",
                "meta_later",
            }
            # Database level revoked (the table-level SELECT it absorbed goes with it): the open
            # connection's view narrows at once -- the shard's cached database privileges are
            # refreshed (mirror.follow).
            cur.execute("REVOKE SELECT ON easydb.* FROM metauser")
            assert _meta(_names(conn, "SHOW TABLES")) == {"meta_later"}
            # Nothing left in the database: no table of it shows.
            cur.execute("REVOKE ALL PRIVILEGES ON easydb.meta_later FROM metauser")
            assert _meta(_names(conn, "SHOW TABLES")) == set()
        finally:
            cur.execute("GRANT SELECT ON easydb.meta_visible TO metauser")
        assert _meta(_names(conn, "SHOW TABLES")) == {"meta_visible"}
