"""Statements the proxy answers itself, prepared (COM_STMT_PREPARE / EXECUTE), as MariaDB
prepares them: SHOW DATABASES, SHOW STATUS, SHOW PROCESSLIST, SHOW EVENTS, SHOW GRANTS, KILL,
CREATE / DROP DATABASE and the account statements. Each answer is compared with a real
MariaDB's to the same prepared statement (a shard, asked directly) where the statement means
the same on both -- the PREPARE's columns and parameters, the execution's column names, types
and binary rows -- and with the proxy's own text answer; every execution is decided again
against the catalog of the moment (a REVOKE between two executions shows), account statements
run under the caller's rights, and a password given in one is never logged."""

from __future__ import annotations

import logging
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, Prepared, ServerError, _lenenc
from tests.e2e.conftest import PASSWORDS, ProxyEnv
from tests.e2e.test_driver_fidelity import mysql2, needs_node


def _proxy(env: ProxyEnv, user: str = "easydb", password: str | None = None) -> BinaryClient:
    return BinaryClient(env.port, user, PASSWORDS[user] if password is None else password, "easydb")


def _shard(env: ProxyEnv) -> BinaryClient:
    endpoint = env.shards[0]
    return BinaryClient(endpoint.port, endpoint.user, endpoint.password, "easydb")


def _names_and_types(columns: list[bytes]) -> list[tuple[str, int]]:
    """Each column definition's name and type code."""
    out = []
    for column in columns:
        pos = 0
        fields = []
        for _ in range(6):
            length, pos = _lenenc(column, pos)
            fields.append(column[pos : pos + length].decode())
            pos += length
        pos += 1 + 2 + 4
        out.append((fields[4], column[pos]))
    return out


def _prepared(client: BinaryClient, sql: str) -> tuple[Prepared, list[tuple[str, int]]]:
    statement = client.prepare(sql)
    return statement, _names_and_types(client.columns) if statement.columns else []


def _executed(client: BinaryClient, statement: Prepared) -> tuple[list[tuple[str, int]], Any]:
    rows = client.execute(statement, [])
    return _names_and_types(client.columns), rows


def _text(env: ProxyEnv, sql: str, user: str = "easydb") -> list[tuple[Any, ...]]:
    conn = env.connect(user, PASSWORDS[user])
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()


def _error(client: BinaryClient, sql: str) -> int:
    with pytest.raises(ServerError) as info:
        client.prepare(sql)
    return info.value.errno


def test_show_statements_prepared_as_mariadb_prepares_them(proxy: ProxyEnv) -> None:
    ours, theirs = _proxy(proxy), _shard(proxy)
    try:
        for sql, same_rows in (
            ("SHOW DATABASES LIKE 'easy%'", True),
            ("SHOW STATUS LIKE 'Ssl_cipher'", True),
            ("SHOW SESSION STATUS LIKE 'Ssl_version'", True),
            ("SHOW GLOBAL STATUS LIKE 'Uptime'", False),
            ("SHOW STATUS", False),
            ("SHOW EVENTS", True),
            ("SHOW PROCESSLIST", False),
            ("SHOW FULL PROCESSLIST", False),
            ("SHOW DATABASES", False),
        ):
            mine, mine_columns = _prepared(ours, sql)
            real, real_columns = _prepared(theirs, sql)
            # The PREPARE: no parameters; the columns MariaDB names before running it (none
            # for SHOW PROCESSLIST), of the same names and types.
            assert (mine.params, mine.columns) == (real.params, real.columns), sql
            if sql == "SHOW EVENTS":
                # (its times and Originator are text here: no rows to show them in)
                assert [n for n, _ in mine_columns] == [n for n, _ in real_columns]
            else:
                assert mine_columns == real_columns, sql
            text = _text(proxy, sql)
            for _ in range(2):  # (again: each execution answers anew)
                columns, rows = _executed(ours, mine)
                real_executed, real_rows = _executed(theirs, real)
                assert [name for name, _ in columns] == [name for name, _ in real_executed], sql
                assert isinstance(rows, list)
                if same_rows:
                    assert rows == real_rows, sql
                if sql == "SHOW STATUS":  # (counters move: the names)
                    assert [row[0] for row in rows] == [row[0] for row in text]
                elif "PROCESSLIST" not in sql and "Uptime" not in sql:
                    assert rows == text, sql  # what the text protocol answers, in binary rows
            if "PROCESSLIST" in sql:
                assert columns[0] == ("Id", 8)  # a BIGINT: its binary row holds the integer
                assert isinstance(rows, list)
                me = [row for row in rows if row[0] == ours.thread_id]
                assert me and me[0][4] == "Query", rows
            if sql == "SHOW STATUS":
                assert isinstance(rows, list)
                assert ("Ssl_cipher", "") in rows
            if sql == "SHOW DATABASES":
                assert isinstance(rows, list)
                assert ("easydb",) in rows and ("otherdb",) not in rows  # the account's
        # Reset and close, as drivers do; the id is gone after the close.
        statement = ours.prepare("SHOW STATUS LIKE 'Ssl_cipher'")
        ours.reset(statement)
        assert ours.execute(statement, []) == [("Ssl_cipher", "")]
        ours.close_statement(statement)
        with pytest.raises(ServerError) as info:
            ours.execute(statement, [])
        assert info.value.errno == 1243
        # Where MariaDB's grammar has no place for a parameter, the same syntax error; dynamic
        # SQL is MariaDB's 1295.
        for sql in (
            "SHOW STATUS LIKE ?",
            "SHOW DATABASES LIKE ?",
            "CREATE USER pa IDENTIFIED BY ?",
            "SET PASSWORD FOR pa = ?",
            "GRANT SELECT ON easydb.* TO pa IDENTIFIED BY ?",
            "PREPARE s FROM 'SELECT 1'",
            "EXECUTE s",
            "DEALLOCATE PREPARE s",
        ):
            assert _error(ours, sql) == _error(theirs, sql), sql
        # The session's statements prepared on the shard are numbered around the proxy's own.
        relayed = ours.prepare("SELECT ? + 1")
        local = ours.prepare("SHOW DATABASES LIKE 'easy%'")
        assert relayed.statement_id != local.statement_id
        assert ours.execute(relayed, [41]) == [(42,)]
        assert ours.execute(local, []) == [("easydb",)]
        # A text another sql_mode reads otherwise runs only under the one it was read in.
        quoted = ours.prepare('SHOW DATABASES LIKE "easy%"')
        assert ours.execute(quoted, []) == [("easydb",)]
        ours.query("SET sql_mode = 'ANSI_QUOTES'")
        with pytest.raises(ServerError) as info:
            ours.execute(quoted, [])
        assert info.value.errno == 1235
        assert ours.execute(local, []) == [("easydb",)]
    finally:
        ours.close()
        theirs.close()


def test_prepared_answers_are_decided_at_each_execution(proxy: ProxyEnv) -> None:
    """The grants of the moment: a prepared SHOW DATABASES stops listing a database once its
    grant is revoked, SHOW GRANTS FOR an account shows its grants as they are, KILL reaches
    only the sessions the caller may see."""
    admin = proxy.connect()
    user, password = "pranswer", "Pranswer#pass1"
    try:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS {user}")
            cur.execute(f"CREATE USER {user} IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT SELECT ON easydb.* TO {user}")
        client = BinaryClient(proxy.port, user, password, "easydb")
        owner = _proxy(proxy)
        try:
            listing = client.prepare("SHOW DATABASES")
            grants, named = _prepared(owner, f"SHOW GRANTS FOR {user}")
            # (named at PREPARE, as MariaDB names it, and the same at execution)
            assert named == [(f"Grants for {user}@%", 253)]
            assert _executed(owner, grants)[0] == named
            own, mine = _prepared(client, "SHOW GRANTS FOR CURRENT_USER()")
            assert mine == [(f"Grants for {user}@%", 253)] == _executed(client, own)[0]
            assert client.execute(listing, []) == [("easydb",), ("information_schema",)]
            assert owner.execute(grants, []) == _text(proxy, f"SHOW GRANTS FOR {user}")
            with admin.cursor() as cur:
                cur.execute(f"REVOKE SELECT ON easydb.* FROM {user}")
            assert client.execute(listing, []) == [("information_schema",)]
            assert owner.execute(grants, []) == [(f"GRANT USAGE ON *.* TO '{user}'@'%'",)]
            # SHOW GRANTS FOR another account is the administrator's (TDDL-5107), at execution.
            others = client.prepare("SHOW GRANTS FOR easydb")
            with pytest.raises(ServerError) as info:
                client.execute(others, [])
            assert info.value.errno == 5107
            # KILL: an unknown thread and one the caller may not see are the same 1094.
            kill = client.prepare(f"KILL {owner.thread_id}")
            with pytest.raises(ServerError) as info:
                client.execute(kill, [])
            assert info.value.errno == 1094
            victim = _proxy(proxy)
            killing = owner.prepare(f"KILL {victim.thread_id}")
            assert owner.execute(killing, []) == 0
            with pytest.raises((ConnectionError, OSError, ServerError)):
                victim.query("SELECT 1")
        finally:
            client.close()
            owner.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS {user}")
        admin.close()


def test_account_statements_prepared(proxy: ProxyEnv, caplog: pytest.LogCaptureFixture) -> None:
    """CREATE USER, GRANT, SET PASSWORD, REVOKE, DROP USER prepared and executed: the text
    protocol's rules under the caller's rights at each execution (the second CREATE USER is
    1396, a non-administrator's GRANT TDDL-5107); never forwarded; the password never logged.
    CREATE / DROP DATABASE are MariaDB's errors at execution."""
    caplog.set_level(logging.DEBUG)
    user, secret = "praccount", "Prsecret#Word77"
    owner = _proxy(proxy)
    try:
        statements = {
            sql: owner.prepare(sql)
            for sql in (
                f"CREATE USER {user}@'%' IDENTIFIED BY '{secret}'",
                f"GRANT SELECT ON easydb.* TO {user}@'%'",
                f"SET PASSWORD FOR {user}@'%' = PASSWORD('{secret}x')",
                f"REVOKE SELECT ON easydb.* FROM {user}@'%'",
                f"DROP USER {user}@'%'",
                "FLUSH PRIVILEGES",
                "CREATE DATABASE easydb",
                "CREATE DATABASE IF NOT EXISTS easydb",
                "DROP DATABASE otherdb",
            )
        }
        create, grant, repassword, revoke, drop, flush, made, maybe, dropped = statements.values()
        assert all(s.params == 0 and s.columns == 0 for s in statements.values())
        assert owner.execute(create, []) == 0
        with pytest.raises(ServerError) as info:
            owner.execute(create, [])
        assert info.value.errno == 1396
        assert owner.execute(grant, []) == 0
        assert _text(proxy, f"SHOW GRANTS FOR {user}")[1:] == [
            (f"GRANT SELECT ON `easydb`.* TO '{user}'@'%'",)
        ]
        assert owner.execute(repassword, []) == 0
        logged_in = BinaryClient(proxy.port, user, f"{secret}x", "easydb")
        try:
            # Not the administrator: the same statements are refused at its executions.
            own = logged_in.prepare(f"GRANT SELECT ON easydb.* TO {user}@'%'")
            with pytest.raises(ServerError) as info:
                logged_in.execute(own, [])
            assert info.value.errno == 5107
        finally:
            logged_in.close()
        assert owner.execute(revoke, []) == 0
        assert owner.execute(flush, []) == 0
        with pytest.raises(ServerError) as info:
            owner.execute(made, [])
        assert info.value.errno == 1007
        assert owner.execute(maybe, []) == 0
        with pytest.raises(ServerError) as info:
            owner.execute(dropped, [])
        assert info.value.errno == 1044
        assert owner.execute(drop, []) == 0
        with pytest.raises(ServerError) as info:
            owner.execute(drop, [])
        assert info.value.errno == 1396
    finally:
        owner.close()
    # Never relayed: the shard has no such account (its mirrors are named otherwise).
    shard = connect_admin(proxy.shards[0])
    try:
        with shard.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user = %s", (user,))
            assert cur.fetchone() == (0,)
    finally:
        shard.close()
    assert secret not in caplog.text


def test_mysql_connector_prepared_cursor(proxy: ProxyEnv) -> None:
    """What drivers that prepare everything do (mysql2's test-select-ssl, JDBC with
    useServerPrepStmts, PDO without emulation): SHOW STATUS LIKE 'Ssl_cipher' prepared."""
    conn = proxy.connector()
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SHOW STATUS LIKE 'Ssl_cipher'")
        assert cur.fetchall() == [("Ssl_cipher", "")]
        cur.execute("SHOW DATABASES LIKE 'easy%'")
        assert cur.fetchall() == [("easydb",)]
        assert cur.column_names == ("Database (easy%)",)
        cur.close()
    finally:
        conn.close()


def test_pymysql_text_answer_names_the_like_column(proxy: ProxyEnv) -> None:
    conn: pymysql.connections.Connection[Any] = proxy.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE 'easy%'")
            assert cur.description is not None
            assert cur.description[0][0] == "Database (easy%)"
    finally:
        conn.close()


@needs_node
def test_mysql2_execute(proxy: ProxyEnv) -> None:
    """node's mysql2 ``execute()`` (what its test-select-ssl does): the proxy's own answers,
    prepared, as ``query()`` gets them (mysql2 asks for MariaDB's extended type information)."""
    statements = [
        "SHOW STATUS LIKE 'Ssl_cipher'",
        "SHOW DATABASES LIKE 'easy%'",
        "SHOW GRANTS",
        "SHOW EVENTS",
        "USE easydb",
    ]
    steps = [
        {"sql": sql, "execute": execute} for sql in statements for execute in (False, True, True)
    ]
    results = mysql2(proxy, steps)
    for index, sql in enumerate(statements):
        text, first, again = results[3 * index : 3 * index + 3]
        assert text["error"] is None and first["error"] is None, (sql, first)
        assert first["rows"] == again["rows"] == text["rows"], sql
        assert first["fields"] == again["fields"] == text["fields"], sql
    assert results[0]["rows"] == [{"Variable_name": "Ssl_cipher", "Value": ""}]
    processlist = mysql2(proxy, [{"sql": "SHOW FULL PROCESSLIST", "execute": True}])[0]
    assert [row["User"] for row in processlist["rows"]] == ["easydb"]
    assert processlist["rows"][0]["Info"] == "SHOW FULL PROCESSLIST"


def test_mariadb_connector_cached_metadata(proxy: ProxyEnv) -> None:
    """MariaDB Connector/Python negotiates metadata caching: re-executions of the proxy's own
    prepared answers carry their column definitions each time (the metadata-follows byte
    set), and parse."""
    mariadb = pytest.importorskip("mariadb")
    conn = mariadb.connect(
        host=proxy.host,
        port=proxy.port,
        user="easydb",
        password=PASSWORDS["easydb"],
        database="easydb",
    )
    try:
        assert conn.extended_server_capabilities & 0x10  # cache metadata
        # (one cursor per statement: a prepared cursor of this connector keeps answering its
        # first statement, against MariaDB too)
        status, listing, processes, relayed = (conn.cursor(prepared=True) for _ in range(4))
        for _ in range(3):
            status.execute("SHOW STATUS LIKE 'Ssl_cipher'")
            assert status.fetchall() == [("Ssl_cipher", "")]
            listing.execute("SHOW DATABASES LIKE 'easy%'")
            assert listing.fetchall() == [("easydb",)]
            processes.execute("SHOW PROCESSLIST")
            rows = processes.fetchall()
            assert [row[0] for row in rows] == [conn.connection_id]
            relayed.execute("SELECT ? + 1", (1,))  # (prepared on the shard, between)
            assert relayed.fetchall() == [(2,)]
    finally:
        conn.close()
