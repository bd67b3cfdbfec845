"""Account protections of issue #7 through real clients: the lockout after consecutive failed
logins (shared by the nodes of one catalog, only from addresses that match the account) and
per-account max_user_connections (from SQL and from the configuration's default)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mysql.connector
import pymysql
import pytest

from auth.catalog import Catalog
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.ops.config import load_config
from tests.e2e.conftest import ProxyThread, start_proxy, write_config
from tests.metrics_text import parse_exposition

DB = "protdb"
ADMIN_PASSWORD = "Prot#admin1"
LOCK = "login_max_failures = 3\nlogin_lock_seconds = 30.0\n"


@dataclass
class Node:
    port: int
    config_path: Path

    def connect(self, user: str, password: str, **kwargs: object) -> pymysql.connections.Connection:
        # Always with a database (see the sg_usage note in test_dual_passwords).
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            database=DB,
            autocommit=True,
            connect_timeout=10,
            read_timeout=30,
            **kwargs,
        )

    def refused(self, user: str, password: str, **kwargs: object) -> tuple[int, str] | None:
        """The login's error (number, text), or None if it succeeded."""
        try:
            self.connect(user, password, **kwargs).close()
        except pymysql.err.OperationalError as error:
            return int(error.args[0]), str(error.args[1])
        return None


@dataclass
class Cluster:
    a: Node  # login_max_failures = 3
    b: Node  # the same catalog file; also max_user_connections = 1 by default
    base: Path

    def catalog(self) -> Catalog:
        config = load_config(self.a.config_path)
        return Catalog.open(config.catalog.url, config.base_dir)


@pytest.fixture(scope="module")
def cluster(
    shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("protections")
    first = start_proxy(base, shards, LOCK, [(DB, "s0")], ADMIN_PASSWORD, "ProtRO#1")
    # A second node on the same directory: the same SQLite catalog file.
    second_path = base / "second.toml"
    write_config(second_path, shards, free_port(), LOCK + "max_user_connections = 1\n")
    second = ProxyThread(load_config(second_path))
    second.start()
    try:
        assert first.server is not None and second.server is not None
        yield Cluster(
            Node(first.server.port, base / "shardgate.toml"),
            Node(second.server.port, second_path),
            base,
        )
    finally:
        second.stop()
        first.stop()


@pytest.fixture
def admin(cluster: Cluster) -> Iterator[pymysql.connections.Connection]:
    conn = cluster.a.connect(DB, ADMIN_PASSWORD)
    try:
        yield conn
    finally:
        conn.close()


def _make_user(
    admin: pymysql.connections.Connection, user: str, host: str, password: str, tail: str = ""
) -> None:
    with admin.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS {user}@'{host}'")
        cur.execute(f"CREATE USER {user}@'{host}' IDENTIFIED BY '{password}'{tail}")
        cur.execute(f"GRANT SELECT ON {DB}.* TO {user}@'{host}'")


def _blocked(user: str) -> Callable[[tuple[int, str] | None], bool]:
    pattern = re.compile(
        rf"Access denied for user '{user}'@'127\.0\.0\.1'\. Account is blocked for 30 second\(s\)"
        r" \((30|29) second\(s\) remaining\) due to 3 consecutive failed logins\."
    )
    return lambda refusal: (
        refusal is not None and refusal[0] == 3955 and bool(pattern.fullmatch(refusal[1]))
    )


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_three_wrong_passwords_lock_until_the_admin_unlocks(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "lockme1", "127.0.0.1", "Right#pw1")
    node = cluster.a
    denied = (1045, "Access denied for user 'lockme1'@'127.0.0.1' (using password: YES)")
    assert node.refused("lockme1", "Wrong#pw1") == denied
    assert node.refused("lockme1", "Wrong#pw2") == denied
    # The third consecutive failure locks the account and says so (MySQL 8's 3955) ...
    assert _blocked("lockme1")(node.refused("lockme1", "Wrong#pw3"))
    # ... and while locked even the right password is refused, and the connection closed.
    assert _blocked("lockme1")(node.refused("lockme1", "Right#pw1"))
    with admin.cursor() as cur:
        cur.execute("ALTER USER lockme1@'127.0.0.1' ACCOUNT UNLOCK")
    assert node.refused("lockme1", "Right#pw1") is None
    # Both the lock and the unlock are in the catalog's audit log, never a password.
    with cluster.catalog() as catalog:
        records = catalog.audit(limit=20)
    lock = [r for r in records if r.action == "LOCK ACCOUNT 'lockme1'@'127.0.0.1'"]
    assert lock and lock[-1].client == "127.0.0.1"
    unlock = [r for r in records if r.action == "ALTER USER 'lockme1'@'127.0.0.1' ACCOUNT UNLOCK"]
    assert unlock and unlock[-1].actor == f"'{DB}'@'%'"
    for record in records:
        text = record.action + record.details
        assert "Right#pw1" not in text and "Wrong#pw" not in text


def test_only_matching_addresses_count(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "lockme2", "127.0.0.1", "Right#pw2")
    node = cluster.a
    # From 127.0.0.2 no account matches: every attempt is the same 1045, nothing is counted.
    for attempt in range(6):
        refusal = node.refused("lockme2", f"Wrong#pw{attempt}", bind_address="127.0.0.2")
        assert refusal == (
            1045,
            "Access denied for user 'lockme2'@'127.0.0.2' (using password: YES)",
        )
        assert node.refused("nosuchuser", "Wrong#pw1")[0] == 1045  # type: ignore[index]
    with cluster.catalog() as catalog:
        account = catalog.snapshot().find_account("lockme2", "127.0.0.1")
        assert account is not None and account.failed_logins == 0
    assert node.refused("lockme2", "Right#pw2") is None
    # Even the right password from the wrong address is the plain 1045.
    assert node.refused("lockme2", "Right#pw2", bind_address="127.0.0.2")[0] == 1045  # type: ignore[index]


def test_a_successful_login_resets_the_count(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "lockme3", "127.0.0.1", "Right#pw3")
    node = cluster.a
    for _ in range(2):
        assert node.refused("lockme3", "Wrong#pw1")[0] == 1045  # type: ignore[index]
        assert node.refused("lockme3", "Wrong#pw2")[0] == 1045  # type: ignore[index]
        assert node.refused("lockme3", "Right#pw3") is None  # not consecutive: no lock


def test_the_lock_is_shared_by_the_nodes_and_the_cli_unlocks(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "lockme4", "127.0.0.1", "Right#pw4")
    # The new account reaches the other node within its catalog poll.
    assert _eventually(lambda: cluster.b.refused("lockme4", "Right#pw4") is None)
    for attempt in range(3):
        cluster.a.refused("lockme4", f"Wrong#pw{attempt}")
    # The other node refuses the right password too, within its catalog poll.
    assert _eventually(lambda: _blocked("lockme4")(cluster.b.refused("lockme4", "Right#pw4")))
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("shardgate")),
            "--config",
            str(cluster.a.config_path),
            "users",
            "unlock",
            "--database",
            DB,
            "--host",
            "127.0.0.1",
            "lockme4",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'User "lockme4@127.0.0.1" unlocked.\n'
    # Both nodes see the unlock within their catalog poll (the CLI wrote the shared catalog).
    assert _eventually(lambda: cluster.b.refused("lockme4", "Right#pw4") is None)
    assert _eventually(lambda: cluster.a.refused("lockme4", "Right#pw4") is None)


def test_a_new_password_unlocks(cluster: Cluster, admin: pymysql.connections.Connection) -> None:
    _make_user(admin, "lockme5", "127.0.0.1", "Right#pw5")
    for attempt in range(3):
        cluster.a.refused("lockme5", f"Wrong#pw{attempt}")
    assert _blocked("lockme5")(cluster.a.refused("lockme5", "Right#pw5"))
    with admin.cursor() as cur:
        cur.execute("SET PASSWORD FOR lockme5@'127.0.0.1' = 'Fresh#pw5'")
    assert cluster.a.refused("lockme5", "Fresh#pw5") is None


def test_unlock_is_for_the_owning_administrator_only(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "lockme6", "127.0.0.1", "Right#pw6")
    user = cluster.a.connect("lockme6", "Right#pw6")
    try:
        with user.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as caught:
            cur.execute("ALTER USER lockme6@'127.0.0.1' ACCOUNT UNLOCK")
        assert caught.value.args[0] == 5107
    finally:
        user.close()
    with admin.cursor() as cur:
        with pytest.raises(pymysql.err.MySQLError) as missing:
            cur.execute("ALTER USER nobody1@'127.0.0.1' ACCOUNT UNLOCK")
        assert missing.value.args == (1396, "Operation ALTER USER failed for 'nobody1'@'127.0.0.1'")
        with pytest.raises(pymysql.err.MySQLError) as builtin:
            cur.execute(f"ALTER USER {DB}_RO ACCOUNT UNLOCK")
        assert builtin.value.args[0] == 5107


# --- max_user_connections ---


def _limit_error(user: str, limit: int) -> tuple[int, str]:
    return (
        1226,
        f"User '{user}' has exceeded the 'max_user_connections' resource (current value: {limit})",
    )


def test_max_user_connections_from_sql(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "limited1", "127.0.0.1", "Limit#pw1", " WITH MAX_USER_CONNECTIONS 2")
    with admin.cursor() as cur:
        cur.execute("SHOW GRANTS FOR limited1@'127.0.0.1'")
        assert cur.fetchall()[0] == (
            "GRANT USAGE ON *.* TO 'limited1'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 2",
        )
    node = cluster.a
    first, second = node.connect("limited1", "Limit#pw1"), node.connect("limited1", "Limit#pw1")
    try:
        assert node.refused("limited1", "Limit#pw1") == _limit_error("limited1", 2)
        # Closing a connection frees its slot.
        second.close()
        assert _eventually(lambda: node.refused("limited1", "Limit#pw1") is None)
        with admin.cursor() as cur:
            cur.execute("ALTER USER limited1@'127.0.0.1' WITH MAX_USER_CONNECTIONS 3")
        second = node.connect("limited1", "Limit#pw1")
        third = node.connect("limited1", "Limit#pw1")
        assert node.refused("limited1", "Limit#pw1") == _limit_error("limited1", 3)
        third.close()
        # GRANT ... WITH MAX_USER_CONNECTIONS (MySQL 5.7's way) sets it too.
        with admin.cursor() as cur:
            cur.execute(
                f"GRANT INSERT ON {DB}.* TO limited1@'127.0.0.1' WITH MAX_USER_CONNECTIONS 1"
            )
        assert _eventually(
            lambda: node.refused("limited1", "Limit#pw1") == _limit_error("limited1", 1)
        )
        with first.cursor() as cur:  # sessions already open keep working
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
    finally:
        first.close()
        second.close()


def test_max_user_connections_default_from_the_configuration(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "limited2", "127.0.0.1", "Limit#pw2")
    node = cluster.b  # max_user_connections = 1 in its [server]
    assert _eventually(lambda: node.refused("limited2", "Limit#pw2") is None)  # its catalog poll
    held = node.connect("limited2", "Limit#pw2")
    try:
        assert node.refused("limited2", "Limit#pw2") == _limit_error("limited2", 1)
        # Per node: the other node (no default) takes more.
        other = cluster.a.connect("limited2", "Limit#pw2")
        other.close()
        # An account's own limit wins over the default.
        with admin.cursor() as cur:
            cur.execute("ALTER USER limited2@'127.0.0.1' WITH MAX_USER_CONNECTIONS 2")
        assert _eventually(lambda: node.refused("limited2", "Limit#pw2") is None)
    finally:
        held.close()


# --- COM_CHANGE_USER is a login like any other ---


def _connector(port: int, user: str, password: str, database: str = DB) -> Any:
    return mysql.connector.connect(
        host="127.0.0.1",
        port=port,
        user=user,
        password=password,
        database=database,
        use_pure=True,
        connection_timeout=10,
    )


def test_change_user_counts_towards_the_lock(
    cluster: Cluster, admin: pymysql.connections.Connection
) -> None:
    _make_user(admin, "lockme7", "127.0.0.1", "Right#pw7")
    conn = _connector(cluster.a.port, "lockme7", "Right#pw7")
    try:
        denied = (1045, "Access denied for user 'lockme7'@'127.0.0.1' (using password: YES)")
        assert cluster.a.refused("lockme7", "Wrong#pw1") == denied
        assert cluster.a.refused("lockme7", "Wrong#pw2") == denied
        # The third consecutive failure, a COM_CHANGE_USER, locks the account.
        with pytest.raises(mysql.connector.Error) as info:
            conn.cmd_change_user(username="lockme7", password="Wrong#pw3")
        error = info.value
        assert error.msg is not None
        assert _blocked("lockme7")((error.errno, error.msg))
    finally:
        try:
            conn.close()
        except mysql.connector.Error:
            pass  # closed by the proxy after its failed COM_CHANGE_USER
    assert _blocked("lockme7")(cluster.a.refused("lockme7", "Right#pw7"))


# --- the per-address throttle of failed logins ---

THROTTLE = (
    "login_throttle_failures = 2\n"
    "login_throttle_window = 60.0\n"
    "login_throttle_delay = 0.6\n"
    "login_throttle_max_delay = 1.2\n"
    "handshake_timeout = 1.0\n"  # shorter than the longest wait, which does not count
)
THROTTLE_DB = "throtdb"
THROTTLE_PASSWORD = "Throt#admin1"


def _timed_login(port: int, user: str, password: str, bind: str) -> tuple[float, int | None]:
    """How long a login took, and its error number (None: logged in)."""
    started = time.monotonic()
    try:
        pymysql.connect(
            host="127.0.0.1",
            port=port,
            user=user,
            password=password,
            bind_address=bind,
            autocommit=None,  # no statement after the login
            connect_timeout=10,
        ).close()
        code = None
    except pymysql.err.OperationalError as error:
        code = int(error.args[0])
    return time.monotonic() - started, code


def test_failed_logins_from_one_address_slow_down_its_later_attempts_only(
    shards: list[ShardEndpoint], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shardgate.audit")
    runner = start_proxy(
        tmp_path, shards, THROTTLE, [(THROTTLE_DB, "s1")], THROTTLE_PASSWORD, "ThrotRO#1"
    )
    assert runner.server is not None
    port = runner.server.port
    first = _connector(port, THROTTLE_DB, THROTTLE_PASSWORD, THROTTLE_DB)
    second = _connector(port, THROTTLE_DB, THROTTLE_PASSWORD, THROTTLE_DB)
    try:
        # Two failures from 127.0.0.1, a COM_CHANGE_USER and a login: neither is slowed down.
        started = time.monotonic()
        with pytest.raises(mysql.connector.Error) as info:
            first.cmd_change_user(username=THROTTLE_DB, password="Wrong#pass1")
        assert info.value.errno == 1045 and time.monotonic() - started < 0.5
        took, code = _timed_login(port, "nobody1", "Wrong#pass1", "127.0.0.1")
        assert code == 1045 and took < 0.5
        # Now every attempt from 127.0.0.1 waits first, whatever the user and the password:
        # 0.6 s, then 1.2 s (the cap, longer than the handshake timeout, which it extends) ...
        took, code = _timed_login(port, "nobody1", "Wrong#pass1", "127.0.0.1")
        assert code == 1045 and took >= 0.6
        started = time.monotonic()
        second.cmd_change_user(username=THROTTLE_DB, password=THROTTLE_PASSWORD)
        assert time.monotonic() - started >= 1.2
        # ... a wrong password still ends in the same 1045 ...
        took, code = _timed_login(port, THROTTLE_DB, "Wrong#pass1", "127.0.0.1")
        assert code == 1045 and took >= 1.2
        # ... and another address is not slowed down; nothing is locked.
        took, code = _timed_login(port, THROTTLE_DB, THROTTLE_PASSWORD, "127.0.0.2")
        assert code is None and took < 0.5
        samples = parse_exposition(runner.server.ctx.metrics.registry.render())
        assert samples[("shardgate_logins_throttled_total", ())] == 3
        # The COM_CHANGE_USERs are logins like the others: counted and audited.
        assert samples[("shardgate_logins_total", (("result", "failed"),))] == 4
        assert samples[("shardgate_logins_total", (("result", "ok"),))] == 4
        audit = [r.getMessage() for r in caplog.records if r.name == "shardgate.audit"]
        assert audit.count(f"login failed: '{THROTTLE_DB}' from 127.0.0.1 (wrong password)") == 2
        assert audit.count(f"login ok: {THROTTLE_DB}@'%' from 127.0.0.1") == 3
    finally:
        for conn in (first, second):
            try:
                conn.close()
            except mysql.connector.Error:
                pass  # closed by the proxy after its failed COM_CHANGE_USER
        runner.stop()
