"""Metadata leaks: an account with table-level grants only sees the tables it holds
privileges on, in SHOW TABLES, SHOW TABLE STATUS and information_schema."""

from __future__ import annotations

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv


@pytest.fixture(scope="module")
def narrow(proxy: ProxyEnv) -> str:
    """An account holding SELECT on easydb.meta_visible only; meta_hidden exists too."""
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS meta_visible (id INT)")
        cur.execute("CREATE TABLE IF NOT EXISTS meta_hidden (secret INT)")
        cur.execute("DROP USER IF EXISTS metauser")
        cur.execute("CREATE USER metauser IDENTIFIED BY 'Meta#pass1'")
        cur.execute("GRANT SELECT ON easydb.meta_visible TO metauser")
    return "Meta#pass1"


def _names(conn: pymysql.connections.Connection, sql: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return {row[0] for row in cur.fetchall()}


def test_show_tables_hides_tables_without_privileges(proxy: ProxyEnv, narrow: str) -> None:
    with proxy.connect(user="metauser", password=narrow) as conn:
        assert _names(conn, "SHOW TABLES") == {"meta_visible"}
        assert _names(conn, "SHOW FULL TABLES") == {"meta_visible"}
        assert _names(conn, "SHOW TABLE STATUS") == {"meta_visible"}
        assert _names(conn, "SHOW TABLES LIKE 'meta%'") == {"meta_visible"}
        with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
            cur.execute("SHOW COLUMNS FROM meta_hidden")
        assert info.value.args == (
            1142,
            "SELECT command denied to user 'metauser'@'127.0.0.1' for table 'meta_hidden'",
        )
    # Accounts with database-level privileges see every table, unfiltered.
    with proxy.connect(user="easydb_RO") as conn:
        assert {"meta_visible", "meta_hidden"} <= _names(conn, "SHOW TABLES")


def test_information_schema_hides_tables(proxy: ProxyEnv, narrow: str) -> None:
    with proxy.connect(user="metauser", password=narrow) as conn:
        tables = _names(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'easydb'",
        )
        assert tables == {"meta_visible"}
        columns = _names(
            conn,
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE()",
        )
        assert columns == {"meta_visible"}
        # A result that cannot be filtered (no TABLE_NAME column) is refused, not leaked.
        with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES")
        assert info.value.args[0] == 1227
        # The session carries on.
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM meta_visible")
            assert cur.fetchone() == (0,)


def test_metadata_in_multi_statement_packet_refused(proxy: ProxyEnv, narrow: str) -> None:
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS
    with proxy.connect(user="metauser", password=narrow, client_flag=flags) as conn:
        with pytest.raises(pymysql.err.NotSupportedError) as info, conn.cursor() as cur:
            cur.execute("SELECT 1; SHOW TABLES")
        assert info.value.args[0] == 1235


def test_information_schema_shapes_that_could_leak_are_refused(
    proxy: ProxyEnv, narrow: str
) -> None:
    """Joins, subqueries and computed columns could reveal hidden tables through which rows
    come back, so an account with table-level grants only may not send them."""
    with proxy.connect(user="metauser", password=narrow) as conn:
        for sql in (
            "SELECT c.TABLE_NAME FROM information_schema.COLUMNS AS c "
            "JOIN meta_visible ON 1 = 1 WHERE c.TABLE_SCHEMA = 'easydb'",
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_NAME = 'meta_visible' "
            "AND EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_NAME = 'meta_hidden')",
            "SELECT a.TABLE_NAME FROM information_schema.TABLES a, information_schema.TABLES b "
            "WHERE b.TABLE_NAME = 'meta_hidden'",
            "SELECT UPPER(TABLE_NAME) AS TABLE_NAME FROM information_schema.TABLES",
            "SHOW TABLES WHERE EXISTS (SELECT 1 FROM information_schema.TABLES)",
        ):
            with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
                cur.execute(sql)
            assert info.value.args[0] == 1227, sql
