"""caching_sha2_password (fast path, full authentication over TLS and over RSA), TLS required,
and a shard that dies and comes back while clients of another shard carry on."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import mysql.connector
import pymysql
import pytest
from mysql.connector.abstracts import MySQLConnectionAbstract
from mysql.connector.pooling import PooledMySQLConnection

from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from tests.e2e.conftest import ProxyThread, self_signed_cert, start_proxy

ADMIN_PASSWORD = "Tls#admin1"
RO_PASSWORD = "Tls#ro12345"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    return self_signed_cert(directory, "server")


def _start_proxy(
    base: Path, shards: list[ShardEndpoint], extra: str, databases: list[tuple[str, str]]
) -> ProxyThread:
    return start_proxy(base, shards, extra, databases, ADMIN_PASSWORD, RO_PASSWORD)


@pytest.fixture
def sha2_proxy(shards: list[ShardEndpoint], tmp_path: Path) -> Iterator[ProxyThread]:
    cert, key = _self_signed(tmp_path)
    extra = f'auth_plugin = "caching_sha2_password"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
    runner = _start_proxy(tmp_path, shards, extra, [("tlsdb", "s0")])
    try:
        yield runner
    finally:
        runner.stop()


def _no_verify() -> dict[str, object]:
    return {"check_hostname": False, "verify_mode": ssl.CERT_NONE}


def _port(runner: ProxyThread) -> int:
    assert runner.server is not None
    return runner.server.port


def test_caching_sha2_full_auth_over_tls_then_fast_path(sha2_proxy: ProxyThread) -> None:
    port = _port(sha2_proxy)
    # First login: no cached digest, so full authentication — over TLS, the password itself.
    with (
        pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="tlsdb",
            password=ADMIN_PASSWORD,
            database="tlsdb",
            ssl=_no_verify(),
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    # Now the digest is cached: the fast path works without TLS.
    with (
        pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="tlsdb",
            password=ADMIN_PASSWORD,
            database="tlsdb",
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
    with pytest.raises(pymysql.err.OperationalError) as info:
        pymysql.connect(
            host="127.0.0.1", port=port, user="tlsdb", password="Wrong#pass1", database="tlsdb"
        )
    assert info.value.args[0] == 1045


def test_caching_sha2_full_auth_with_rsa_key_exchange(sha2_proxy: ProxyThread) -> None:
    # The read-only account has never logged in: no cached digest, no TLS -> RSA exchange.
    with (
        pymysql.connect(
            host="127.0.0.1",
            port=_port(sha2_proxy),
            user="tlsdb_RO",
            password=RO_PASSWORD,
            database="tlsdb",
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT 3")
        assert cur.fetchone() == (3,)


def test_mysql_connector_over_tls(sha2_proxy: ProxyThread) -> None:
    conn = mysql.connector.connect(
        host="127.0.0.1",
        port=_port(sha2_proxy),
        user="tlsdb",
        password=ADMIN_PASSWORD,
        database="tlsdb",
        ssl_verify_cert=False,
        use_pure=True,
    )
    try:
        cur = conn.cursor()
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        cur.fetchall()
        cur.execute("SELECT 4")
        assert cur.fetchone() == (4,)
    finally:
        conn.close()


def test_require_tls_refuses_plain_connections(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    extra = f'tls_cert = "{cert}"\ntls_key = "{key}"\nrequire_tls = true\n'
    runner = _start_proxy(tmp_path, shards, extra, [("reqtls", "s1")])
    try:
        with pytest.raises(pymysql.err.OperationalError) as info:
            pymysql.connect(
                host="127.0.0.1",
                port=_port(runner),
                user="reqtls",
                password=ADMIN_PASSWORD,
                database="reqtls",
            )
        assert info.value.args[0] == 3159
        with (
            pymysql.connect(
                host="127.0.0.1",
                port=_port(runner),
                user="reqtls",
                password=ADMIN_PASSWORD,
                database="reqtls",
                ssl=_no_verify(),
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT 5")
            assert cur.fetchone() == (5,)
    finally:
        runner.stop()


def test_shard_down_and_back(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    fault = LocalMariaDB(tmp_path / "fault")
    endpoint = fault.start()
    runner = _start_proxy(
        tmp_path,
        [shards[0], endpoint],
        "backend_connect_timeout = 2.0\n",
        [("healthy", "s0"), ("fragile", "s1")],
    )
    port = _port(runner)
    try:
        fragile = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="fragile",
            password=ADMIN_PASSWORD,
            database="fragile",
            read_timeout=30,
        )
        healthy = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="healthy",
            password=ADMIN_PASSWORD,
            database="healthy",
            read_timeout=30,
        )
        with fragile.cursor() as cur:
            cur.execute("SELECT 1")
        fault.kill()
        started = time.monotonic()
        with pytest.raises(pymysql.err.MySQLError) as info, fragile.cursor() as cur:
            cur.execute("SELECT 1")
        assert info.value.args[0] in (2013, 2006)
        with pytest.raises(pymysql.err.MySQLError) as info, fragile.cursor() as cur:
            cur.execute("SELECT 1")
        assert info.value.args[0] == 2006
        assert time.monotonic() - started < 10
        # Clients of the other shard are unaffected.
        with healthy.cursor() as cur:
            cur.execute("SELECT 6")
            assert cur.fetchone() == (6,)
        # The shard comes back: the same client session works again, no restart needed.
        fault.start()
        with fragile.cursor() as cur:
            cur.execute("SELECT 7")
            assert cur.fetchone() == (7,)
        fragile.close()
        healthy.close()
    finally:
        runner.stop()
        fault.stop()


def test_caching_sha2_without_tls_on_a_native_proxy_is_always_switched_to_native(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    """Whether a client asking for caching_sha2 is switched depends on TLS and auth_plugin
    only. (It used to be switched to native only when its account existed and had no cached
    digest, which told both to anyone.) Real clients follow the switch."""
    cert, key = _self_signed(tmp_path)
    extra = f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    runner = _start_proxy(tmp_path, shards, extra, [("switchdb", "s0")])

    def connect(password: str, tls: bool) -> MySQLConnectionAbstract | PooledMySQLConnection:
        return mysql.connector.connect(
            host="127.0.0.1",
            port=_port(runner),
            user="switchdb",
            password=password,
            database="switchdb",
            auth_plugin="caching_sha2_password",
            ssl_disabled=not tls,
            ssl_verify_cert=False,
            use_pure=True,
        )

    try:
        # Over TLS: caching_sha2 itself (full authentication, which caches the digest), ...
        for tls in (True, False):  # ... and without TLS, switched to native, cached or not.
            conn = connect(ADMIN_PASSWORD, tls)
            try:
                cur = conn.cursor()
                cur.execute("SELECT 8")
                assert cur.fetchone() == (8,)
            finally:
                conn.close()
        with pytest.raises(mysql.connector.Error) as info:
            connect("Wrong#pass1", tls=False)
        assert info.value.errno == 1045
    finally:
        runner.stop()
