"""The backend connection pool attacked: with one pooled connection per account and database,
every statement of a client may run on the connection another client just used. Whatever one
client leaves on a connection must stay its own (never seen by the next user of the
connection, never lost by its owner), as on a connection of its own."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from auth.catalog import Catalog
from auth.model import CreateAccount, SetPrivileges, UserHost
from auth.privileges import Priv
from proxy.dev.localshard import ShardEndpoint
from proxy.manage.provision import create_database
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyThread
from tests.e2e.test_pool import ADMIN, RO, _all, _connector, _one, _start

Connect = Callable[..., pymysql.Connection]


def _proxy(
    shards: list[ShardEndpoint], base: Path, pool_size: int, wait: float = 1.0
) -> Iterator[tuple[ProxyThread, Connect]]:
    db = f"pooladv{random.randrange(10**6)}"
    runner = _start(
        base,
        shards,
        f"pool_size = {pool_size}\nmax_connections = {pool_size}\npool_wait_timeout = {wait}",
        db,
    )
    assert runner.server is not None
    port = runner.server.port

    connect = _connector(port, db)

    with connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v TINYINT)")
        cur.execute("CREATE SEQUENCE s")
    try:
        yield runner, connect
    finally:
        runner.stop()
        with connect_admin(shards[0]) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")


@pytest.fixture
def one_conn(shards: list[ShardEndpoint], tmp_path: Path) -> Iterator[tuple[ProxyThread, Connect]]:
    """A proxy with a single backend connection per account and database: every statement
    of a client runs on the connection the client before it used."""
    yield from _proxy(shards, tmp_path, 1)


@pytest.fixture
def two_conns(shards: list[ShardEndpoint], tmp_path: Path) -> Iterator[tuple[ProxyThread, Connect]]:
    yield from _proxy(shards, tmp_path, 2)


def _try(conn: pymysql.Connection, sql: str) -> list[tuple[Any, ...]] | int:
    """The rows, or the error number."""
    try:
        return _all(conn, sql)
    except pymysql.MySQLError as exc:
        return int(exc.args[0])


def test_a_sequence_value_stays_with_its_session(two_conns: tuple[ProxyThread, Connect]) -> None:
    """NEXTVAL(s) leaves LASTVAL(s) on the connection: another client on it saw the value
    (and changed it under its owner). It now pins the session, like a user variable."""
    runner, connect = two_conns
    assert runner.server is not None
    pool = runner.server.ctx.pools.shard("s0")
    a, b, c = connect(), connect(), connect()
    try:
        assert _one(a, "SELECT NEXTVAL(s)") == (1,)
        for _ in range(3):  # b and c take turns on the other connection
            assert _one(b, "SELECT LASTVAL(s), PREVIOUS VALUE FOR s") == (None, None)
            assert _one(c, "SELECT LASTVAL(s)") == (None,)
        assert _one(a, "SELECT LASTVAL(s), PREVIOUS VALUE FOR s") == (1, 1)
        assert _one(b, "SELECT NEXT VALUE FOR s") == (2,)  # b pinned too, now
        assert _one(a, "SELECT PREVIOUS VALUE FOR s") == (1,)
        assert _one(b, "SELECT PREVIOUS VALUE FOR s") == (2,)
        assert pool.handoffs >= 5
        # c has no connection left: it waits, then gets the clear 1040, as documented.
        with pytest.raises(pymysql.OperationalError) as caught:
            _all(c, "SELECT LASTVAL(s)")
        assert caught.value.args[0] == 1040
    finally:
        for conn in (a, b, c):  # bound sessions would hold the proxy's drain
            conn.close()


def test_session_transaction_characteristics_keep_the_order_they_were_set_in(
    one_conn: tuple[ProxyThread, Connect],
) -> None:
    """SET SESSION TRANSACTION was replayed after the variables on a hand-off, so a later
    SET tx_isolation lost to it; and undoing another client's SET SESSION TRANSACTION reset
    the isolation level after the session's own value was applied."""
    _runner, connect = one_conn
    a, b = connect(), connect()
    _all(a, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    _all(a, "SET SESSION tx_isolation = 'SERIALIZABLE'")
    assert _one(b, "SELECT @@tx_isolation, @@tx_read_only") == ("REPEATABLE-READ", 0)
    assert _one(a, "SELECT @@tx_isolation, @@tx_read_only") == ("SERIALIZABLE", 0)
    # One statement, two characteristics: the later variable replaces one of them only.
    _all(a, "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED, READ ONLY")
    _all(a, "SET SESSION tx_read_only = 0")
    assert _one(b, "SELECT @@tx_isolation, @@tx_read_only") == ("REPEATABLE-READ", 0)
    assert _one(a, "SELECT @@tx_isolation, @@tx_read_only") == ("READ-UNCOMMITTED", 0)
    # b's SET SESSION TRANSACTION is undone for a; a's own variable still holds.
    _all(b, "SET SESSION TRANSACTION READ ONLY")
    _all(a, "SET SESSION tx_isolation = 'READ-COMMITTED'")
    for _ in range(2):
        assert _one(b, "SELECT @@tx_isolation, @@tx_read_only") == ("REPEATABLE-READ", 1)
        assert _one(a, "SELECT @@tx_isolation, @@tx_read_only") == ("READ-COMMITTED", 0)
    fresh = connect()
    assert _one(fresh, "SELECT @@tx_isolation, @@tx_read_only") == ("REPEATABLE-READ", 0)


def test_every_form_of_show_warnings_after_a_hand_off(
    one_conn: tuple[ProxyThread, Connect],
) -> None:
    """The saved warnings answered SHOW COUNT(*) WARNINGS with the warning list and ignored
    LIMIT; SHOW ERRORS and SHOW COUNT(*) ERRORS forgot the last statement's error."""
    _runner, connect = one_conn
    a, b = connect(), connect()
    _all(a, "SET SESSION sql_mode = ''")
    clipped = "INSERT INTO t (v) VALUES (1000), (2000)"

    def after_hand_off(first: str, then: str) -> list[tuple[Any, ...]] | int:
        _try(a, first)
        _all(b, "SELECT 1")
        return _try(a, then)

    assert after_hand_off(clipped, "SHOW COUNT(*) WARNINGS") == [(2,)]
    assert after_hand_off(clipped, "SHOW COUNT(*) ERRORS") == [(0,)]
    assert after_hand_off(clipped, "SHOW ERRORS") == []
    row2 = ("Warning", 1264, "Out of range value for column 'v' at row 2")
    assert after_hand_off(clipped, "SHOW WARNINGS LIMIT 1, 1") == [row2]
    assert len(after_hand_off(clipped, "show warnings limit 1")) == 1  # type: ignore[arg-type]
    missing = "SELECT * FROM nosuch"
    shown = after_hand_off(missing, "SHOW ERRORS")
    assert isinstance(shown, list) and [r[:2] for r in shown] == [("Error", 1146)]
    assert after_hand_off(missing, "SHOW COUNT(*) ERRORS") == [(1,)]
    assert after_hand_off(missing, "SHOW COUNT(*) WARNINGS") == [(1,)]
    # The same on the client's own connection (no hand-off), straight from the shard.
    _try(a, missing)
    assert _all(a, "SHOW COUNT(*) ERRORS") == [(1,)]


@pytest.fixture
def patient(shards: list[ShardEndpoint], tmp_path: Path) -> Iterator[tuple[ProxyThread, Connect]]:
    """One backend connection, and clients wait for it for up to a minute."""
    yield from _proxy(shards, tmp_path, 1, wait=60.0)


def test_a_statement_waiting_for_a_connection_is_killed_not_run_later(
    patient: tuple[ProxyThread, Connect],
) -> None:
    """KILL and KILL QUERY of a session whose statement waits for a pooled connection did not
    stop the wait: the killed client got 2013 (or nothing, for KILL QUERY), and its INSERT ran
    on the shard once a connection was free. Now the statement fails with 1317 and never
    runs; after KILL QUERY the session goes on."""
    runner, connect = patient
    assert runner.server is not None
    pool = runner.server.ctx.pools.shard("s0")
    a, b, c = connect(), connect(), connect()
    b_id = _one(b, "SELECT CONNECTION_ID()")[0]
    c_id = _one(c, "SELECT CONNECTION_ID()")[0]
    _all(a, "BEGIN")
    _all(a, "INSERT INTO t (v) VALUES (1)")  # a holds the only connection
    results: dict[str, object] = {}

    def run(name: str, conn: pymysql.Connection, sql: str) -> None:
        results[name] = _try(conn, sql)

    waiting = [
        threading.Thread(target=run, args=("b", b, "INSERT INTO t (v) VALUES (2)")),
        threading.Thread(target=run, args=("c", c, "INSERT INTO t (v) VALUES (3)")),
    ]
    for thread in waiting:
        thread.start()
    _until(lambda: pool.figures()["waiting"] == 2)
    _all(a, f"KILL {b_id}")
    _all(a, f"KILL QUERY {c_id}")
    for thread in waiting:
        thread.join()  # both answered while a still holds the connection
    assert results == {"b": 2013, "c": 1317}
    assert pool.figures()["waiting"] == 0
    _all(a, "COMMIT")
    assert _all(c, "INSERT INTO t (v) VALUES (4)") == []  # c's session goes on
    assert _all(a, "SELECT v FROM t ORDER BY id") == [(1,), (4,)]
    _until(lambda: pool.figures() == {"open": 1, "idle": 1, "waiting": 0})


def _until(condition: Callable[[], bool]) -> None:
    """Wait for a condition the proxy reaches by itself (polled; fails after a minute)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_client_gone_while_waiting_for_a_connection_has_its_statement_dropped(
    patient: tuple[ProxyThread, Connect],
) -> None:
    """A client that closes its connection while its statement waits for the pool kept its
    place in the queue and its statement ran once a connection was free; now the wait ends
    with the client (the queue empties at once) and the statement never runs."""
    runner, connect = patient
    assert runner.server is not None
    pool = runner.server.ctx.pools.shard("s0")
    a, b = connect(), connect()
    _all(b, "SELECT 1")
    _all(a, "BEGIN")
    _all(a, "INSERT INTO t (v) VALUES (1)")
    thread = threading.Thread(target=_try, args=(b, "INSERT INTO t (v) VALUES (2)"))
    thread.start()
    _until(lambda: pool.figures()["waiting"] == 1)
    sock = b._sock
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)  # the client goes away without a word
    thread.join()
    _until(lambda: pool.figures()["waiting"] == 0)  # while a still holds the connection
    assert pool.timeouts == 0  # it stopped waiting because the client went, not at the limit
    _all(a, "COMMIT")
    assert _all(a, "SELECT v FROM t ORDER BY id") == [(1,)]
    _until(lambda: pool.figures() == {"open": 1, "idle": 1, "waiting": 0})


@pytest.mark.xfail(
    strict=True,
    reason="an INSERT into a table whose column defaults to NEXTVAL(s) sets LASTVAL(s) on the"
    " connection without naming the sequence: the analyzer cannot see it, so the session is"
    " not pinned and the next user of the connection sees the value (needs the tables'"
    " column defaults, or pinning every INSERT in a database with sequences)",
)
def test_a_sequence_value_from_a_column_default_stays_with_its_session(
    one_conn: tuple[ProxyThread, Connect],
) -> None:
    _runner, connect = one_conn
    a, b = connect(), connect()
    _all(a, "CREATE TABLE sq (id INT DEFAULT NEXTVAL(s), v INT)")
    _all(a, "INSERT INTO sq (v) VALUES (1)")
    assert _one(b, "SELECT LASTVAL(s)") == (None,)
    assert _one(a, "SELECT LASTVAL(s)") == (1,)


@pytest.mark.xfail(
    strict=True,
    reason="IS_USED_LOCK() answers the shard's thread id of the backend connection holding the"
    " lock, not the holder's CONNECTION_ID() (which is the proxy's): a KILL of that id would"
    " target another proxy session; needs the proxy to map backend thread ids in results",
)
def test_is_used_lock_names_the_holders_connection_id(
    two_conns: tuple[ProxyThread, Connect],
) -> None:
    _runner, connect = two_conns
    a, b = connect(), connect()
    try:
        holder = _one(a, "SELECT CONNECTION_ID()")[0]
        assert _one(a, "SELECT GET_LOCK('lk', 0)") == (1,)
        assert _one(b, "SELECT IS_USED_LOCK('lk')") == (holder,)
    finally:
        a.close()
        b.close()


@pytest.fixture
def two_databases(
    shards: list[ShardEndpoint], tmp_path: Path
) -> Iterator[tuple[ProxyThread, Connect, str, str]]:
    """One backend connection per login, and an account with SELECT, INSERT in two databases
    (each reached through its own backend login): connect() logs it in to the first."""
    first = f"pooluse{random.randrange(10**6)}"
    second = f"{first}b"
    runner = _start(tmp_path, shards, "pool_size = 1\nmax_connections = 2", first)
    assert runner.server is not None
    server = runner.server
    config = server.ctx.config
    catalog = Catalog.open(config.catalog.url, config.base_dir)
    user = f"multi{random.randrange(10**6)}"
    try:
        asyncio.run(create_database(config, catalog, second, "s0", ADMIN, RO))
        catalog.apply(
            [
                CreateAccount(user, "%", "Multi#pass1", None),
                SetPrivileges(UserHost(user, "%"), first, None, Priv.SELECT | Priv.INSERT),
                SetPrivileges(UserHost(user, "%"), second, None, Priv.SELECT | Priv.INSERT),
            ],
            actor="operator",
            client="",
            action="test set-up",
        )
    finally:
        catalog.close()
    server.ctx.catalog.refresh()

    def connect(**kwargs: Any) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1", port=server.port, user=user, password="Multi#pass1",
            database=first, autocommit=True, connect_timeout=10, read_timeout=30, **kwargs,
        )  # fmt: skip

    for db in (first, second):
        with pymysql.connect(
            host="127.0.0.1", port=server.port, user=db, password=ADMIN, database=db,
            autocommit=True,
        ) as conn, conn.cursor() as cur:  # fmt: skip
            cur.execute("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    try:
        yield runner, connect, first, second
    finally:
        runner.stop()
        with connect_admin(shards[0]) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {first}")
            cur.execute(f"DROP DATABASE IF EXISTS {second}")


def test_use_keeps_what_the_last_statement_left(
    two_databases: tuple[ProxyThread, Connect, str, str],
) -> None:
    """USE of another database moves the session to another backend login: LAST_INSERT_ID(),
    FOUND_ROWS() and the warnings of the statement before were lost with the old connection
    (MySQL keeps them: USE reads no table)."""
    _runner, connect, first, second = two_databases
    conn = connect()
    try:
        _all(conn, "INSERT INTO t (v) VALUES (1), (2)")
        _all(conn, f"USE {second}")
        assert _one(conn, "SELECT LAST_INSERT_ID()") == (1,)
        _all(conn, f"USE {first}")
        assert _one(conn, "SELECT LAST_INSERT_ID()") == (1,)
        _all(conn, "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1")
        _all(conn, f"USE {second}")
        assert _one(conn, "SELECT FOUND_ROWS()") == (2,)
        _all(conn, "INSERT INTO t (v) VALUES (10), (11), (12)")
        _all(conn, f"USE {first}")
        assert _one(conn, "SELECT LAST_INSERT_ID()") == (1,)
        _all(conn, "SET SESSION sql_mode = ''")
        _all(conn, "INSERT INTO t (v) VALUES (1000000000000)")  # out of range: a warning
        _all(conn, f"USE {second}")
        assert [w[:2] for w in _all(conn, "SHOW WARNINGS")] == [("Warning", 1264)]
    finally:
        conn.close()


def test_a_revoke_holds_on_the_next_statement_of_every_pooled_session(
    two_databases: tuple[ProxyThread, Connect, str, str],
) -> None:
    """Sessions of one account share its pooled connections: a REVOKE (here from the catalog,
    as another node would write it) holds for each one's next statement, on a connection
    taken back or handed over, and a GRANT back too."""
    runner, connect, first, _second = two_databases
    assert runner.server is not None
    server = runner.server
    a, b = connect(), connect()
    user = a.user.decode() if isinstance(a.user, bytes) else str(a.user)
    config = server.ctx.config

    def grant(privs: Priv) -> None:
        catalog = Catalog.open(config.catalog.url, config.base_dir)
        try:
            catalog.apply(
                [SetPrivileges(UserHost(user, "%"), first, None, privs)],
                actor="operator",
                client="",
                action="test",
            )
        finally:
            catalog.close()
        server.ctx.catalog.refresh()

    try:
        _all(a, "INSERT INTO t (v) VALUES (1)")
        _all(b, "INSERT INTO t (v) VALUES (2)")  # b takes a's connection
        grant(Priv.SELECT)
        for conn in (a, b, a, b):
            assert _try(conn, "INSERT INTO t (v) VALUES (3)") == 1142
            assert _one(conn, "SELECT COUNT(*) FROM t") == (2,)
        grant(Priv(0))
        for conn in (a, b):
            assert _try(conn, "SELECT COUNT(*) FROM t") in (1142, 1044)
        grant(Priv.SELECT | Priv.INSERT)
        for conn in (b, a):
            assert _try(conn, "INSERT INTO t (v) VALUES (4)") == []
        assert _one(a, "SELECT COUNT(*) FROM t") == (4,)
    finally:
        a.close()
        b.close()


@pytest.fixture
def short_lived(
    shards: list[ShardEndpoint], tmp_path: Path
) -> Iterator[tuple[ProxyThread, Connect]]:
    """Idle pooled connections are closed after a fraction of a second."""
    db = f"poolidle{random.randrange(10**6)}"
    runner = _start(tmp_path, shards, "pool_size = 2\nidle_lifetime = 0.2", db)
    assert runner.server is not None
    port = runner.server.port

    def connect(**kwargs: Any) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1", port=port, user=db, password=ADMIN, database=db,
            autocommit=True, connect_timeout=10, read_timeout=30, **kwargs,
        )  # fmt: skip

    with connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v TINYINT)")
    try:
        yield runner, connect
    finally:
        runner.stop()
        with connect_admin(shards[0]) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")


def test_what_the_last_statement_left_survives_idle_lifetime(
    short_lived: tuple[ProxyThread, Connect],
) -> None:
    """An idle pooled connection closed after idle_lifetime took the LAST_INSERT_ID(),
    FOUND_ROWS() and warnings of its last owner's last statement with it (nobody else took
    it, so nothing was saved): the client, idle for a while, lost them silently."""
    runner, connect = short_lived
    assert runner.server is not None
    pool = runner.server.ctx.pools.shard("s0")
    conn = connect()
    try:
        _all(conn, "SET SESSION sql_mode = '', time_zone = '+03:00'")
        _all(conn, "INSERT INTO t (v) VALUES (1), (2), (3)")
        _all(conn, "INSERT INTO t (v) VALUES (1000)")  # a warning, LAST_INSERT_ID() 4
        _until(lambda: pool.figures()["open"] == 0)  # closed while the client was idle
        assert [w[:2] for w in _all(conn, "SHOW WARNINGS")] == [("Warning", 1264)]
        _until(lambda: pool.figures()["open"] == 0)
        assert _one(conn, "SELECT LAST_INSERT_ID(), @@session.time_zone") == (4, "+03:00")
        _all(conn, "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1")
        _until(lambda: pool.figures()["open"] == 0)
        assert _one(conn, "SELECT FOUND_ROWS()") == (4,)
    finally:
        conn.close()


def test_a_view_cannot_hide_a_named_lock_or_a_sequence_value(
    one_conn: tuple[ProxyThread, Connect],
) -> None:
    """SELECT from a view calling GET_LOCK() or NEXTVAL() left the lock or LASTVAL() on the
    pooled connection without pinning the session: the next client on it held the lock (and
    released it) and saw the value. Such views are refused; a view reading LASTVAL() is not
    (it leaves nothing)."""
    _runner, connect = one_conn
    a = connect()
    for body in ("GET_LOCK('vlock', 0)", "NEXTVAL(s)", "NEXT VALUE FOR s", "SETVAL(s, 5)"):
        assert _try(a, f"CREATE VIEW v AS SELECT {body} AS x") == 1235
    assert _try(a, "CREATE VIEW v AS SELECT LASTVAL(s) AS x") == []
    assert _one(a, "SELECT * FROM v") == (None,)
