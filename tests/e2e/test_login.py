"""Logins: host matching and precedence from several loopback addresses, failures that close
the connection, the default database, USE / COM_INIT_DB, SHOW DATABASES."""

from __future__ import annotations

import socket

import pymysql
import pytest

from auth.model import CreateAccount, SetPrivileges, UserHost
from auth.privileges import Priv
from proxy.wire.packets import (
    Capability,
    build_handshake_response,
    parse_err,
    parse_handshake_v10,
)
from tests.e2e.conftest import ProxyEnv


def _make_accounts(proxy: ProxyEnv, *accounts: tuple[str, str, str], db: str = "easydb") -> None:
    """Create accounts (user, host, password) with SELECT on ``db``, skipping existing ones."""
    catalog = proxy.catalog()
    snapshot = catalog.snapshot()
    changes = []
    for user, host, password in accounts:
        if snapshot.find_account(user, host) is None:
            changes.append(CreateAccount(user, host, password, db))
            changes.append(SetPrivileges(UserHost(user, host), db, None, Priv.SELECT))
    if changes:
        catalog.apply(changes, actor="operator", client="", action="test set-up")
    _wait_for_catalog(proxy)


def _wait_for_catalog(proxy: ProxyEnv) -> None:
    """The proxy polls the catalog; its next login refreshes it anyway."""
    proxy.server.ctx.catalog.refresh()


def _login_error(proxy: ProxyEnv, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(pymysql.err.OperationalError) as info:
        proxy.connect(**kwargs).close()  # type: ignore[arg-type]
    code, message = info.value.args
    return code, message


def test_wrong_password_unknown_user_and_host_are_the_same_1045(proxy: ProxyEnv) -> None:
    _make_accounts(proxy, ("onlytwo", "127.0.0.2", "Secret#22"))
    assert _login_error(proxy, user="easydb", password="wrong#pass") == (
        1045,
        "Access denied for user 'easydb'@'127.0.0.1' (using password: YES)",
    )
    assert _login_error(proxy, user="nobody", password="wrong#pass") == (
        1045,
        "Access denied for user 'nobody'@'127.0.0.1' (using password: YES)",
    )
    assert _login_error(proxy, user="onlytwo", password="Secret#22") == (
        1045,
        "Access denied for user 'onlytwo'@'127.0.0.1' (using password: YES)",
    )
    assert _login_error(proxy, user="easydb", password="") == (
        1045,
        "Access denied for user 'easydb'@'127.0.0.1' (using password: NO)",
    )
    conn = proxy.connect(user="onlytwo", password="Secret#22", bind_address="127.0.0.2")
    conn.close()


def _raw_login(proxy: ProxyEnv, user: str, auth: bytes) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    header = sock.recv(4, socket.MSG_WAITALL)
    greeting = sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
    parse_handshake_v10(greeting)
    payload = build_handshake_response(
        capabilities=int(
            Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH
        ),
        max_packet_size=1 << 24,
        charset=45,
        username=user,
        auth_response=auth,
        database=None,
        auth_plugin="mysql_native_password",
    )
    sock.sendall(len(payload).to_bytes(3, "little") + b"\x01" + payload)
    return sock


def test_failed_login_closes_the_connection(proxy: ProxyEnv) -> None:
    sock = _raw_login(proxy, "easydb", b"\x01" * 20)
    try:
        header = sock.recv(4, socket.MSG_WAITALL)
        body = sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
        err = parse_err(body, Capability.PROTOCOL_41)
        assert (err.errno, err.sqlstate) == (1045, "28000")
        # Anything sent afterwards is never served: the proxy has closed the connection.
        try:
            sock.sendall(b"\x09\x00\x00\x00\x03SELECT 1")
        except OSError:
            pass
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass  # closed with unread data in flight: a reset is a close too
    finally:
        sock.close()


def test_login_precedence_across_overlapping_patterns(proxy: ProxyEnv) -> None:
    _make_accounts(
        proxy,
        ("prec", "127.0.%", "Wide#pass1"),
        ("prec", "127.0.0.%", "Narrow#pass1"),
        ("prec", "127.0.0.3", "Exact#pass1"),
    )
    # Exact IP wins from 127.0.0.3; from 127.0.0.4 the longest literal prefix wins.
    proxy.connect(
        user="prec", password="Exact#pass1", database=None, bind_address="127.0.0.3"
    ).close()
    code, _ = _login_error(
        proxy, user="prec", password="Narrow#pass1", database=None, bind_address="127.0.0.3"
    )
    assert code == 1045
    proxy.connect(
        user="prec", password="Narrow#pass1", database=None, bind_address="127.0.0.4"
    ).close()
    code, _ = _login_error(
        proxy, user="prec", password="Wide#pass1", database=None, bind_address="127.0.0.4"
    )
    assert code == 1045


def test_precedence_tie_goes_to_the_oldest_account(proxy: ProxyEnv) -> None:
    # Same literal prefix '127.0.0.' before the first wildcard: the first created wins.
    _make_accounts(proxy, ("tiebreak", "127.0.0._", "First#pass1"))
    _make_accounts(proxy, ("tiebreak", "127.0.0.%", "Second#pass1"))
    proxy.connect(
        user="tiebreak", password="First#pass1", database=None, bind_address="127.0.0.5"
    ).close()
    code, _ = _login_error(
        proxy, user="tiebreak", password="Second#pass1", database=None, bind_address="127.0.0.5"
    )
    assert code == 1045
    with (
        proxy.connect(
            user="tiebreak", password="First#pass1", database=None, bind_address="127.0.0.5"
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_default_database_rules(proxy: ProxyEnv) -> None:
    # Exactly one usable database and none named: that one.
    with proxy.connect(database=None) as conn, conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("easydb",)
    # Another tenant's database, existing or not: 1044 (checked before existence).
    assert _login_error(proxy, database="otherdb") == (
        1044,
        "Access denied for user 'easydb'@'127.0.0.1' to database 'otherdb'",
    )
    assert _login_error(proxy, database="nosuchdb")[0] == 1044


def test_use_and_init_db(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as info:
            cur.execute("USE otherdb")
        assert info.value.args == (
            1044,
            "Access denied for user 'easydb'@'127.0.0.1' to database 'otherdb'",
        )
        with pytest.raises(pymysql.err.OperationalError) as info:
            conn.select_db("otherdb")  # COM_INIT_DB
        assert info.value.args[0] == 1044
        cur.execute("USE easydb")
        conn.select_db("EasyDB")  # database names compare case-insensitively
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("easydb",)


def test_multi_database_account_switches_shards(proxy: ProxyEnv) -> None:
    catalog = proxy.catalog()
    if catalog.snapshot().find_account("multidb", "%") is None:
        catalog.apply(
            [
                CreateAccount("multidb", "%", "Multi#pass1", "easydb"),
                SetPrivileges(UserHost("multidb", "%"), "easydb", None, Priv.SELECT | Priv.CREATE),
                SetPrivileges(UserHost("multidb", "%"), "otherdb", None, Priv.SELECT | Priv.CREATE),
            ],
            actor="operator",
            client="",
            action="test set-up",
        )
    _wait_for_catalog(proxy)
    with proxy.connect(user="multidb", password="Multi#pass1", database=None) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone() == (None,)  # two usable databases: none chosen
            cur.execute("SHOW DATABASES")
            assert [r[0] for r in cur.fetchall()] == ["information_schema", "easydb", "otherdb"]
            cur.execute("USE otherdb")
            cur.execute("CREATE TABLE IF NOT EXISTS on_s1 (id INT)")
            cur.execute("SELECT @@port")
            assert cur.fetchone() == (proxy.shards[1].port,)
            cur.execute("USE easydb")
            cur.execute("SELECT @@port")
            assert cur.fetchone() == (proxy.shards[0].port,)


def test_show_databases_lists_only_usable(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        assert cur.fetchall() == (("information_schema",), ("easydb",))
        cur.execute("SHOW DATABASES LIKE 'easy%'")
        assert cur.fetchall() == (("easydb",),)
