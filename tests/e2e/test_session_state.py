"""One source of truth for lexing state, and no silent loss (issue #11, items 2 and 8).

Every way a client can change ``sql_mode`` or the character set, followed by a forced new backend
connection, leaves the proxy and the shard agreeing: asserted against the shard's own
``@@sql_mode`` / ``@@character_set_client`` *and* against the proxy's lexing (a payload that
reads differently under ANSI_QUOTES or NO_BACKSLASH_ESCAPES is refused or run exactly as the
shard's mode says). A backend connection lost with a transaction (or anything else) on it ends
the session with 2013 and loses nothing silently: ``wait_timeout``, a KILL from the shard's root,
a shard killed and restarted, each mid-transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mysql.connector
import pymysql
import pytest

from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv, start_proxy

PASSWORD = "State#pass1"
COM_RESET_CONNECTION = 0x1F
# One string under the default mode; under ANSI_QUOTES "..." is a name and stsec is read.
ANSI_PROBE = 'SELECT 1 AS "\\" , (SELECT v FROM stsec) -- "'
# One string with an escaped quote by default; under NO_BACKSLASH_ESCAPES the string ends at
# the backslash and stsec is read.
NBE_PROBE = "SELECT 'a\\' , (SELECT v FROM stsec) -- '"


def _rows(conn: Any, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _error(conn: Any, sql: str) -> tuple[int, str] | None:
    try:
        _rows(conn, sql)
    except pymysql.err.MySQLError as exc:
        return int(exc.args[0]), str(exc.args[1])
    return None


@pytest.fixture(scope="module")
def world(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    shard = connect_admin(proxy.shards[0], "easydb")
    with shard.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS stpub, stsec, sttx")
        cur.execute("CREATE TABLE stpub (id INT, v VARCHAR(20))")
        cur.execute("INSERT INTO stpub VALUES (1, 'public')")
        cur.execute("CREATE TABLE stsec (id INT, v VARCHAR(20))")
        cur.execute("INSERT INTO stsec VALUES (1, 'SECRET')")
        cur.execute("CREATE TABLE sttx (id INT PRIMARY KEY) ENGINE=InnoDB")
    shard.close()
    admin = proxy.connect()
    with admin.cursor() as cur:
        cur.execute("DROP USER IF EXISTS stuser")
        cur.execute(f"CREATE USER stuser IDENTIFIED BY '{PASSWORD}'")
        cur.execute("GRANT SELECT ON easydb.stpub TO stuser")
        cur.execute("GRANT SELECT, INSERT, DELETE ON easydb.sttx TO stuser")
    admin.close()
    yield proxy


def _connect(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection:
    return env.connect(user="stuser", password=PASSWORD, **kwargs)


def _kill_backends(env: ProxyEnv) -> None:
    """KILL, from the shard's administrator, every connection of the proxy's backend logins."""
    shard = connect_admin(env.shards[0])
    try:
        for (thread,) in _rows(
            shard,
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER <> %s AND ID <> "
            "CONNECTION_ID() AND COMMAND <> 'Daemon'",
            (env.shards[0].user,),
        ):
            try:
                _rows(shard, f"KILL {int(thread)}")
            except pymysql.err.MySQLError:
                pass  # gone meanwhile
    finally:
        shard.close()


def _after_reconnect(env: ProxyEnv, conn: Any) -> tuple[str, str]:
    """Force a new backend connection, then the shard's sql_mode and client character set."""
    _kill_backends(env)
    for _ in range(3):
        try:
            [(mode, charset)] = _rows(
                conn, "SELECT @@session.sql_mode, @@session.character_set_client"
            )
            return str(mode), str(charset)
        except pymysql.err.OperationalError as exc:
            # a statement already on its way to the dead connection: 2013, then the session
            # goes on (nothing was bound to the connection)
            assert exc.args[0] == 2013, exc.args
    pytest.fail("no new backend connection")


def _denied_ansi(conn: Any) -> bool:
    """Whether the proxy lexes ANSI_PROBE as naming stsec (it then refuses it)."""
    error = _error(conn, ANSI_PROBE)
    if error is None:
        return False
    assert error == (
        1142,
        "SELECT command denied to user 'stuser'@'127.0.0.1' for table 'stsec'",
    ), error
    return True


def _denied_nbe(conn: Any) -> bool:
    error = _error(conn, NBE_PROBE)
    if error is None:
        return False
    assert error[0] == 1142, error
    return True


Change = Callable[[Any], None]


def _text(sql: str) -> Change:
    def run(conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(sql)
            while cur.nextset():
                pass

    run.__name__ = sql
    return run


SQL_MODE_CHANGES: list[tuple[str, Change, str]] = [
    ("literal", _text("SET sql_mode = 'ANSI_QUOTES'"), "ANSI_QUOTES"),
    ("@@session", _text("SET @@session.sql_mode = 'NO_BACKSLASH_ESCAPES'"), "NO_BACKSLASH_ESCAPES"),
    ("SESSION", _text("SET SESSION sql_mode = 'ANSI'"), "ANSI_QUOTES"),
    ("subquery", _text("SET sql_mode = (SELECT 'ANSI_QUOTES')"), "ANSI_QUOTES"),
    ("expression", _text("SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')"), "ANSI_QUOTES"),
    ("bitmask", _text("SET sql_mode = 4"), "ANSI_QUOTES"),
    (
        "table read",
        _text("SET sql_mode = (SELECT 'ANSI_QUOTES' FROM stpub LIMIT 1)"),
        "ANSI_QUOTES",
    ),
    (
        "with another variable",
        _text("SET time_zone = '+02:00', sql_mode = 'NO_BACKSLASH_ESCAPES'"),
        "NO_BACKSLASH_ESCAPES",
    ),
    ("multi-statement", _text("SELECT 1; SET sql_mode = 'ANSI_QUOTES'"), "ANSI_QUOTES"),
]


@pytest.mark.parametrize(
    ("how", "change", "flag"), SQL_MODE_CHANGES, ids=[c[0] for c in SQL_MODE_CHANGES]
)
def test_sql_mode_survives_a_new_backend_connection(
    world: ProxyEnv, how: str, change: Change, flag: str
) -> None:
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS
    with _connect(world, client_flag=flags) as conn:
        assert not _denied_ansi(conn) and not _denied_nbe(conn)
        change(conn)
        [(before,)] = _rows(conn, "SELECT @@session.sql_mode")
        assert flag in before
        mode, _ = _after_reconnect(world, conn)
        assert mode == before  # the shard, after a reconnect, has the session's mode
        # and the proxy lexes as that mode says
        # (under NO_BACKSLASH_ESCAPES the ANSI probe's string ends early too)
        assert _denied_ansi(conn) == ("ANSI_QUOTES" in mode or "NO_BACKSLASH_ESCAPES" in mode)
        assert _denied_nbe(conn) == ("NO_BACKSLASH_ESCAPES" in mode)


def test_set_statement_changes_nothing(world: ProxyEnv) -> None:
    with _connect(world) as conn:
        assert _rows(conn, "SET STATEMENT sql_mode = 'ANSI_QUOTES' FOR SELECT \"v\"") == [("v",)]
        mode, _ = _after_reconnect(world, conn)
        assert "ANSI_QUOTES" not in mode
        assert not _denied_ansi(conn)


@pytest.mark.parametrize(
    "sql",
    [
        "SET NAMES latin1",
        "SET CHARACTER SET latin1",
        "SET character_set_client = 'latin1'",
        "SET character_set_client = (SELECT 'latin1')",
        "SET @@session.character_set_client = CONCAT('lat', 'in1')",
    ],
)
def test_character_set_survives_a_new_backend_connection(world: ProxyEnv, sql: str) -> None:
    with _connect(world) as conn:
        _rows(conn, sql)
        [(before,)] = _rows(conn, "SELECT @@session.character_set_client")
        assert before == "latin1"
        _, charset = _after_reconnect(world, conn)
        assert charset == "latin1"


def test_an_unsafe_character_set_from_an_expression_is_undone_and_refused(
    world: ProxyEnv,
) -> None:
    with _connect(world) as conn:
        error = _error(conn, "SET character_set_client = (SELECT 'gbk')")
        assert error is not None and error[0] == 1235 and "gbk" in error[1]
        assert _rows(conn, "SELECT @@session.character_set_client") == [("utf8mb4",)]
        error = _error(conn, "SET sql_mode = (SELECT 'ORACLE')")
        assert error is not None and error[0] == 1235 and "ORACLE" in error[1]
        [(mode,)] = _rows(conn, "SELECT @@session.sql_mode")
        assert "ORACLE" not in mode


def test_prepared_set(world: ProxyEnv) -> None:
    """A prepared SET is read back like a text one; once the statement is closed nothing binds
    the session, so a new backend connection gets the mode replayed."""
    conn = world.connector(user="stuser", password=PASSWORD)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SET sql_mode = ?", ("ANSI_QUOTES",))
        cur.close()  # COM_STMT_CLOSE
        text = conn.cursor()
        text.execute("SELECT @@session.sql_mode")
        [(before,)] = text.fetchall()
        assert "ANSI_QUOTES" in str(before)
        _kill_backends(world)
        for _ in range(3):
            try:
                text.execute("SELECT @@session.sql_mode")
                [(after,)] = text.fetchall()
                break
            except mysql.connector.errors.OperationalError as exc:
                assert exc.errno == 2013
        else:
            pytest.fail("no new backend connection")
        assert after == before
    finally:
        conn.close()


def test_a_prepared_statement_in_a_transaction_is_not_lost_silently(world: ProxyEnv) -> None:
    """mysql-connector starts with autocommit off: the statement's SELECT opened a
    transaction, which a lost backend connection takes with it (2013)."""
    conn = world.connector(user="stuser", password=PASSWORD)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT id FROM stpub WHERE id = ?", (1,))
        assert cur.fetchall() == [(1,)]
        _kill_backends(world)
        with pytest.raises(mysql.connector.errors.Error) as info:
            cur.execute("SELECT id FROM stpub WHERE id = ?", (1,))
            cur.fetchall()
        assert info.value.errno == 2013
        assert "an open transaction" in str(info.value.msg)
    finally:
        conn.close()


def test_a_prepared_statement_survives_a_lost_backend_connection(world: ProxyEnv) -> None:
    """Outside a transaction, the statement is prepared again on the new connection."""
    conn = world.connector(user="stuser", password=PASSWORD, autocommit=True)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT id FROM stpub WHERE id = ?", (1,))
        assert cur.fetchall() == [(1,)]
        _kill_backends(world)
        cur.execute("SELECT id FROM stpub WHERE id = ?", (1,))
        assert cur.fetchall() == [(1,)]
    finally:
        conn.close()


def test_reset_connection_and_change_user_go_back_to_the_shard_defaults(
    world: ProxyEnv,
) -> None:
    conn = world.connector(user="stuser", password=PASSWORD, database="easydb")

    def mode() -> str:
        cur = conn.cursor()
        cur.execute("SELECT @@session.sql_mode")
        [(value,)] = cur.fetchall()
        cur.close()
        return str(value)

    def ansi_denied() -> bool:
        cur = conn.cursor()
        try:
            cur.execute(ANSI_PROBE)
            cur.fetchall()
        except mysql.connector.Error as exc:
            assert exc.errno == 1142, exc
            return True
        finally:
            cur.close()
        return False

    try:
        for reset in (
            conn.cmd_reset_connection,
            lambda: conn.cmd_change_user("stuser", PASSWORD, "easydb"),
        ):
            cur = conn.cursor()
            cur.execute("SET sql_mode = 'ANSI_QUOTES'")
            cur.close()
            assert "ANSI_QUOTES" in mode() and ansi_denied()
            reset()
            assert "ANSI_QUOTES" not in mode() and not ansi_denied()
            _kill_backends(world)  # and the next connection agrees
            for _ in range(3):
                try:
                    assert "ANSI_QUOTES" not in mode()
                    break
                except mysql.connector.errors.OperationalError as exc:
                    assert exc.errno == 2013
            assert not ansi_denied()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# No silent loss


def _lost_mid_transaction(conn: Any, lose: Callable[[], None]) -> tuple[int, str]:
    """BEGIN; INSERT; the backend connection goes; COMMIT -> the error the client gets."""
    _rows(conn, "DELETE FROM sttx")
    _rows(conn, "BEGIN")
    _rows(conn, "INSERT INTO sttx VALUES (1)")
    lose()
    error = _error(conn, "COMMIT")
    assert error is not None, "COMMIT answered OK with the transaction gone"
    return error


def _row_count(env: ProxyEnv) -> int:
    shard = connect_admin(env.shards[0], "easydb")
    try:
        return int(_rows(shard, "SELECT COUNT(*) FROM sttx")[0][0])
    finally:
        shard.close()


def _closed(conn: Any) -> bool:
    try:
        _rows(conn, "SELECT 1")
    except pymysql.err.MySQLError as exc:
        return exc.args[0] in (0, 2006, 2013)
    return False


def test_kill_from_the_shard_mid_transaction(world: ProxyEnv) -> None:
    with _connect(world) as conn:
        error = _lost_mid_transaction(conn, lambda: _kill_backends(world))
        assert error[0] == 2013 and "an open transaction" in error[1], error
        assert _closed(conn)
    assert _row_count(world) == 0


def test_wait_timeout_mid_transaction(world: ProxyEnv) -> None:
    with _connect(world) as conn:
        _rows(conn, "SET SESSION wait_timeout = 1")
        error = _lost_mid_transaction(conn, lambda: time.sleep(2.5))
        assert error[0] == 2013, error
        assert _closed(conn)
    assert _row_count(world) == 0


def test_nothing_bound_reconnects_silently(world: ProxyEnv) -> None:
    with _connect(world) as conn:
        _rows(conn, "SET SESSION time_zone = '+03:00'")
        _kill_backends(world)  # the shard closes the idle connection; nothing was on it
        time.sleep(0.5)
        assert _rows(conn, "SELECT id FROM stpub") == [(1,)]
        # and the replayed setting is back on the new connection
        assert _rows(conn, "SELECT @@session.time_zone") == [("+03:00",)]


@pytest.mark.parametrize(
    ("binds", "reason"),
    [
        ("SET @x = 1", "user variable"),
        ("CREATE TEMPORARY TABLE sttmp (a INT)", "temporary table"),
        ("SELECT GET_LOCK('stlock', 1)", "named lock"),
    ],
)
def test_other_session_state_is_not_lost_silently(world: ProxyEnv, binds: str, reason: str) -> None:
    admin = world.connect()  # CREATE TEMPORARY TABLE needs CREATE: the administrator
    try:
        _rows(admin, binds)
        _kill_backends(world)
        error = _error(admin, "SELECT 1")
        assert error is not None and error[0] == 2013 and reason in error[1], error
        assert _closed(admin)
    finally:
        admin.close()


@pytest.fixture
def own_shard(tmp_path: Path) -> Iterator[tuple[LocalMariaDB, ShardEndpoint]]:
    server = LocalMariaDB(tmp_path / "shard")
    endpoint = server.start()
    try:
        yield server, endpoint
    finally:
        server.stop()


def test_shard_restart_mid_transaction(
    own_shard: tuple[LocalMariaDB, ShardEndpoint], tmp_path: Path
) -> None:
    server, endpoint = own_shard
    runner = start_proxy(
        tmp_path, [endpoint], "", [("restartdb", "s0")], "Restart#pw1", "RestartRO#1"
    )
    try:
        assert runner.server is not None
        port = runner.server.port
        conn = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="restartdb",
            password="Restart#pw1",
            database="restartdb",
            autocommit=True,
        )
        _rows(conn, "CREATE TABLE r (id INT PRIMARY KEY) ENGINE=InnoDB")
        _rows(conn, "BEGIN")
        _rows(conn, "INSERT INTO r VALUES (1)")
        server.stop()
        server.start()
        error = _error(conn, "COMMIT")
        assert error is not None and error[0] == 2013, error
        assert _closed(conn)
        conn.close()
        again = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="restartdb",
            password="Restart#pw1",
            database="restartdb",
            autocommit=True,
        )
        assert _rows(again, "SELECT COUNT(*) FROM r") == [(0,)]
        again.close()
    finally:
        runner.stop()
