"""Tests for proxy/dev/localshard.py: throwaway local MariaDB servers."""

from __future__ import annotations

import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from proxy.dev import localshard
from proxy.dev.localshard import (
    LocalMariaDB,
    LocalMariaDBError,
    MariaDBNotInstalledError,
    ShardEndpoint,
    find_mariadb_binaries,
    free_port,
)


def _scalar(conn: Any, sql: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
    assert row is not None
    return row[0]


# --------------------------------------------------------------- session shards


def test_two_shards_up_on_distinct_ports(shards: list[ShardEndpoint]) -> None:
    assert len(shards) == 2
    assert all(ep.host == "127.0.0.1" for ep in shards)
    assert shards[0].port != shards[1].port
    assert 3306 not in {ep.port for ep in shards}


def test_admin_login_and_privileges(
    shards: list[ShardEndpoint], shard_admin: Callable[..., Any]
) -> None:
    for i, ep in enumerate(shards):
        conn = shard_admin(ep)
        assert _scalar(conn, "SELECT 1") == 1
        assert "MariaDB" in _scalar(conn, "SELECT VERSION()")
        # Not the system server: the datadir is our temp dir.
        assert "/var/lib/mysql" not in _scalar(conn, "SELECT @@datadir")
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS lsdb{i}")
            cur.execute(f"CREATE TABLE IF NOT EXISTS lsdb{i}.t (id INT PRIMARY KEY)")
            cur.execute(f"DROP USER IF EXISTS 'lsuser{i}'@'%'")
            cur.execute(f"CREATE USER 'lsuser{i}'@'%' IDENTIFIED BY 'pw{i}'")
            cur.execute(f"GRANT SELECT, INSERT ON lsdb{i}.* TO 'lsuser{i}'@'%'")
        # The new account works over TCP from 127.0.0.1 (no anonymous shadowing).
        user_conn = shard_admin(
            ShardEndpoint(ep.host, ep.port, f"lsuser{i}", f"pw{i}"), database=f"lsdb{i}"
        )
        with user_conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1)")
            cur.execute("SELECT COUNT(*) FROM t")
            assert cur.fetchone() == (1,)
            with pytest.raises(pymysql.err.OperationalError):
                cur.execute("CREATE DATABASE not_allowed")
        with conn.cursor() as cur:
            cur.execute(f"DROP USER 'lsuser{i}'@'%'")
            cur.execute(f"DROP DATABASE lsdb{i}")


def test_no_anonymous_accounts(
    shards: list[ShardEndpoint], shard_admin: Callable[..., Any]
) -> None:
    for ep in shards:
        conn = shard_admin(ep)
        assert _scalar(conn, "SELECT COUNT(*) FROM mysql.user WHERE user=''") == 0


def test_wrong_password_rejected(shards: list[ShardEndpoint]) -> None:
    ep = shards[0]
    with pytest.raises(pymysql.err.OperationalError) as info:
        pymysql.connect(host=ep.host, port=ep.port, user=ep.user, password="nope")
    assert info.value.args[0] == 1045


def test_grant_option(shards: list[ShardEndpoint], shard_admin: Callable[..., Any]) -> None:
    conn = shard_admin(shards[1])
    with conn.cursor() as cur:
        cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        grants = " ".join(row[0] for row in cur.fetchall())
    assert "ALL PRIVILEGES ON *.*" in grants
    assert "WITH GRANT OPTION" in grants


# --------------------------------------------------------- own (persistent) server


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LocalMariaDB]:
    server = LocalMariaDB(tmp_path / "state")
    yield server
    server.stop()


def test_persistent_restart_kill_and_recover(
    own_server: LocalMariaDB, shard_admin: Callable[..., Any]
) -> None:
    base = own_server.base_dir
    ep1 = own_server.start()
    assert own_server.running
    assert own_server.pid is not None
    assert own_server.endpoint == ep1
    # Everything lives in the base dir.
    assert (base / "data" / "mysql").is_dir()
    assert own_server.error_log.parent == base
    assert own_server.pid_path.parent == base
    assert own_server.socket_path.parent == base
    assert stat.S_IMODE(own_server.state_path.stat().st_mode) == 0o600

    with shard_admin(ep1) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE keep")
        cur.execute("CREATE TABLE keep.t (id INT PRIMARY KEY, v VARCHAR(20))")
        cur.execute("INSERT INTO keep.t VALUES (1, 'before-stop')")
    own_server.stop()
    assert not own_server.running
    assert own_server.pid is None
    with pytest.raises(LocalMariaDBError):
        _ = own_server.endpoint

    # A fresh object on the same directory: same password, same port, same data.
    again = LocalMariaDB(base)
    try:
        ep2 = again.start()
        assert ep2.password == ep1.password
        assert ep2.port == ep1.port
        with shard_admin(ep2) as conn, conn.cursor() as cur:
            cur.execute("SELECT v FROM keep.t WHERE id = 1")
            assert cur.fetchone() == ("before-stop",)
            cur.execute("INSERT INTO keep.t VALUES (2, 'before-kill')")
            cur.execute("SELECT COUNT(*) FROM mysql.user WHERE user=''")
            assert cur.fetchone() == (0,)

        old_pid = again.pid
        again.kill()
        assert not again.running
        ep3 = again.start()
        assert again.pid != old_pid
        assert ep3.password == ep1.password
        with shard_admin(ep3) as conn, conn.cursor() as cur:
            cur.execute("SELECT id, v FROM keep.t ORDER BY id")
            assert cur.fetchall() == ((1, "before-stop"), (2, "before-kill"))
    finally:
        again.stop()


def test_explicit_password_and_port(tmp_path: Path, shard_admin: Callable[..., Any]) -> None:
    port = free_port()
    server = LocalMariaDB(tmp_path / "s", port, root_password="it's a \\ secret")
    try:
        ep = server.start()
        assert ep.port == port
        assert ep.password == "it's a \\ secret"
        with shard_admin(ep) as conn:
            assert _scalar(conn, "SELECT 1") == 1
        server.stop()
        # A later explicit password replaces the persisted one.
        server = LocalMariaDB(tmp_path / "s", root_password="second")
        ep = server.start()
        assert ep.port == port
        with shard_admin(ep) as conn:
            assert _scalar(conn, "SELECT 1") == 1
        server.stop()
        # ... and is what a password-less restart reuses.
        server = LocalMariaDB(tmp_path / "s")
        assert server.start().password == "second"
    finally:
        server.stop()


def test_port_in_use_error_names_error_log(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = LocalMariaDB(tmp_path / "busy", port)
        with pytest.raises(LocalMariaDBError) as info:
            server.start()
        assert str(server.error_log) in str(info.value)
        assert not server.running


def test_startup_failure_names_error_log(tmp_path: Path) -> None:
    server = LocalMariaDB(tmp_path / "broken")
    server.start()
    server.stop()
    # Corrupt the system tables' storage so mariadbd cannot start.
    (server.data_path / "ibdata1").write_bytes(b"\0" * 4096)
    with pytest.raises(LocalMariaDBError) as info:
        server.start(timeout=30)
    assert str(server.error_log) in str(info.value)
    assert not server.running


def test_missing_binaries_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(localshard, "_EXTRA_BIN_DIRS", ())
    with pytest.raises(MariaDBNotInstalledError, match="mariadb-server"):
        find_mariadb_binaries()


def test_refuses_system_datadir() -> None:
    with pytest.raises(LocalMariaDBError):
        LocalMariaDB(Path("/var/lib/mysql"))


def test_free_port() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
