"""Logins: host matching and precedence from several loopback addresses, failures that close
the connection, the default database, USE / COM_INIT_DB, SHOW DATABASES."""

from __future__ import annotations

import math
import random
import socket
import statistics
import time
from collections.abc import Iterator

import pymysql
import pytest

from auth.catalog import Catalog
from auth.model import Change, CreateAccount, SetPrivileges, UserHost
from auth.privileges import Priv
from proxy.dev.localshard import ShardEndpoint
from proxy.wire.packets import (
    Capability,
    build_handshake_response,
    parse_err,
    parse_handshake_v10,
)
from tests.e2e import rawlogin
from tests.e2e.conftest import ProxyEnv, ProxyThread, self_signed_cert, start_proxy


def _make_accounts(proxy: ProxyEnv, *accounts: tuple[str, str, str], db: str = "easydb") -> None:
    """Create accounts (user, host, password) with SELECT on ``db``, skipping existing ones."""
    catalog = proxy.catalog()
    snapshot = catalog.snapshot()
    changes: list[Change] = []
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
            assert [r[0] for r in cur.fetchall()] == ["easydb", "information_schema", "otherdb"]
            cur.execute("USE otherdb")
            cur.execute("CREATE TABLE IF NOT EXISTS on_s1 (id INT)")
            assert proxy.backend_thread(conn)[0] == "s1"
            cur.execute("USE easydb")
            cur.execute("SELECT 1")
            assert proxy.backend_thread(conn)[0] == "s0"


def test_show_databases_lists_only_usable(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        assert cur.fetchall() == (("easydb",), ("information_schema",))
        cur.execute("SHOW DATABASES LIKE 'easy%'")
        assert cur.fetchall() == (("easydb",),)


# --- Before login, the same for everyone -------------------------------------------------------

SAME_DB = "samedb"
KNOWN_PASSWORD = "Known#pass1"
WRONG_PASSWORD = "Wrong#pass1"


@pytest.fixture(scope="module")
def same_proxies(
    shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ProxyThread]]:
    """A proxy proposing each plugin, both offering TLS, with the same accounts: ``known1`` and
    ``cache1`` (whose caching_sha2 digest the test caches), and ``nomat1``, which only
    127.0.0.2 matches. User names of one length, so the 1045 texts are the same length."""
    runners: dict[str, ProxyThread] = {}
    try:
        for plugin in (rawlogin.NATIVE, rawlogin.CACHING_SHA2):
            base = tmp_path_factory.mktemp(plugin)
            cert, key = self_signed_cert(base)
            extra = f'auth_plugin = "{plugin}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
            runner = start_proxy(base, shards, extra, [(SAME_DB, "s0")], "Same#admin1", "SameRO#1")
            runners[plugin] = runner
            with Catalog.open(runner.config.catalog.url, runner.config.base_dir) as catalog:
                changes: list[object] = []
                for user, host in (("known1", "%"), ("cache1", "%"), ("nomat1", "127.0.0.2")):
                    changes.append(CreateAccount(user, host, KNOWN_PASSWORD, SAME_DB))
                    changes.append(SetPrivileges(UserHost(user, host), SAME_DB, None, Priv.SELECT))
                catalog.apply(changes, actor="operator", client="", action="test set-up")  # type: ignore[arg-type]
            assert runner.server is not None
            runner.server.ctx.catalog.refresh()
        yield runners
    finally:
        for runner in runners.values():
            runner.stop()


def _kinds(exchange: rawlogin.Exchange) -> list[str]:
    names = {b"\x0a": "greeting", b"\xfe": "switch", b"\x01": "more", b"\xff": "err", b"\x00": "ok"}
    return [names[payload[:1]] for _, payload in exchange.packets]


# What each client is told before the verdict, by the plugin the server proposes, the plugin
# the client asks for and TLS -- never by the account: caching_sha2 always goes to full
# authentication (0x04) when the cache cannot prove the scramble, as MySQL does, and without
# TLS a server proposing native always switches caching_sha2 clients to native.
EXPECTED_KINDS = {
    (rawlogin.NATIVE, rawlogin.NATIVE, False): ["greeting", "err"],
    (rawlogin.NATIVE, rawlogin.NATIVE, True): ["greeting", "err"],
    (rawlogin.NATIVE, rawlogin.CACHING_SHA2, False): ["greeting", "switch", "err"],
    (rawlogin.NATIVE, rawlogin.CACHING_SHA2, True): ["greeting", "more", "err"],
    (rawlogin.CACHING_SHA2, rawlogin.NATIVE, False): ["greeting", "err"],
    (rawlogin.CACHING_SHA2, rawlogin.NATIVE, True): ["greeting", "err"],
    (rawlogin.CACHING_SHA2, rawlogin.CACHING_SHA2, False): ["greeting", "more", "more", "err"],
    (rawlogin.CACHING_SHA2, rawlogin.CACHING_SHA2, True): ["greeting", "more", "err"],
}


@pytest.mark.parametrize("server_plugin", [rawlogin.NATIVE, rawlogin.CACHING_SHA2])
def test_an_unknown_user_gets_exactly_the_exchange_a_known_one_gets(
    same_proxies: dict[str, ProxyThread], server_plugin: str
) -> None:
    runner = same_proxies[server_plugin]
    assert runner.server is not None
    port = runner.server.port
    # cache1 logs in once with caching_sha2 over TLS (full authentication), which caches its
    # digest: the next login takes the fast path.
    for expected in ([b"\x01\x04"], [b"\x01\x03"]):
        done = rawlogin.login(port, "cache1", KNOWN_PASSWORD, rawlogin.CACHING_SHA2, tls=True)
        assert done.errno is None
        assert [p for _, p in done.packets if p[:1] == b"\x01"] == expected
    for plugin in (rawlogin.NATIVE, rawlogin.CACHING_SHA2):
        for tls in (False, True):
            for password in (WRONG_PASSWORD, ""):
                exchanges = {
                    "unknown user": rawlogin.login(port, "ghost1", password, plugin, tls=tls),
                    "wrong password": rawlogin.login(port, "known1", password, plugin, tls=tls),
                    "wrong password, digest cached": rawlogin.login(
                        port, "cache1", password, plugin, tls=tls
                    ),
                    # The right password, from an address the account does not match.
                    "no account for the address": rawlogin.login(
                        port, "nomat1", KNOWN_PASSWORD if password else "", plugin, tls=tls
                    ),
                }
                case = (server_plugin, plugin, tls, bool(password))
                reference = exchanges["unknown user"]
                kinds = EXPECTED_KINDS[server_plugin, plugin, tls]
                if not password and "more" in kinds:
                    kinds = ["greeting", "err"]  # an empty scramble is refused at once
                assert _kinds(reference) == kinds, case
                yes_no = "YES" if password else "NO"
                assert reference.outcome == (
                    b"\xff\x15\x04#28000Access denied for user '<user>'@'127.0.0.1' "
                    + f"(using password: {yes_no})".encode()
                ), case
                for name, exchange in exchanges.items():
                    # Every byte, every sequence number; then the connection is closed.
                    assert exchange.packets == reference.packets, (case, name)
                    assert exchange.closed, (case, name)
    # The wrong passwords did not disturb the cache: still the fast path.
    done = rawlogin.login(port, "cache1", KNOWN_PASSWORD, rawlogin.CACHING_SHA2, tls=True)
    assert done.errno is None and (3, b"\x01\x03") in done.packets


def _rank_z(first: list[float], second: list[float]) -> float:
    """The Mann-Whitney U statistic of two samples as a z-score (normal approximation, ties
    ranked by their average): near 0 when neither tends to be larger than the other."""
    pooled = sorted([(value, 0) for value in first] + [(value, 1) for value in second])
    ranks_first = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        average = (i + j) / 2 + 1
        ranks_first += average * sum(1 for k in range(i, j + 1) if pooled[k][1] == 0)
        i = j + 1
    n1, n2 = len(first), len(second)
    u = ranks_first - n1 * (n1 + 1) / 2
    return (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)


def test_no_timing_oracle_between_an_unknown_user_and_a_wrong_password(
    same_proxies: dict[str, ProxyThread],
) -> None:
    """1,000 logins of each, interleaved in random order: the time from the handshake response
    to the 1045 has the same distribution for both (medians within 10%, and a rank test that
    cannot tell them apart at the 0.1% level)."""
    runner = same_proxies[rawlogin.NATIVE]
    assert runner.server is not None
    port = runner.server.port
    for _ in range(50):  # warm up both paths
        rawlogin.login(port, "ghost1", WRONG_PASSWORD, rawlogin.NATIVE)
        rawlogin.login(port, "known1", WRONG_PASSWORD, rawlogin.NATIVE)
    times: dict[str, list[float]] = {"ghost1": [], "known1": []}
    order = random.Random(11)
    started = time.monotonic()
    for _ in range(1000):
        pair = ["ghost1", "known1"]
        order.shuffle(pair)
        for user in pair:
            exchange = rawlogin.login(port, user, WRONG_PASSWORD, rawlogin.NATIVE)
            assert exchange.errno == 1045
            times[user].append(exchange.auth_seconds)
    took = time.monotonic() - started
    unknown, known = times["ghost1"], times["known1"]
    median_unknown, median_known = statistics.median(unknown), statistics.median(known)
    z = _rank_z(unknown, known)
    print(
        f"\n2,000 logins in {took:.1f} s; medians: unknown {median_unknown * 1e6:.0f} us, "
        f"wrong password {median_known * 1e6:.0f} us; rank test z = {z:.2f}"
    )
    assert abs(median_unknown - median_known) <= 0.1 * min(median_unknown, median_known)
    assert abs(z) < 3.29  # two-sided p > 0.001


def test_a_login_right_after_users_create_succeeds(
    shards: list[ShardEndpoint],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI creates an account (or changes a password) and the client logs in at once: the
    failed attempt re-reads the catalog and is decided again from the same answers. The
    catalog poller is made to sleep for an hour, so nothing else could pick the change up."""
    from click.testing import CliRunner

    import proxy.server
    from proxy.manage.cli import main

    monkeypatch.setattr(proxy.server, "CATALOG_POLL_SECONDS", 3600.0)
    base = tmp_path_factory.mktemp("fresh")
    cert, key = self_signed_cert(base)
    extra = f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    runner = start_proxy(base, shards, extra, [("freshdb", "s0")], "Fresh#admin1", "FreshRO#1")
    try:
        assert runner.server is not None
        port = runner.server.port

        def cli(*args: str, password: str) -> None:
            result = CliRunner().invoke(
                main,
                ["--config", str(base / "shardgate.toml"), "users", *args, "--password-stdin"],
                input=password + "\n",
            )
            assert result.exit_code == 0, result.output

        for user, plugin, tls in (
            ("newnat1", rawlogin.NATIVE, False),
            ("newsha1", rawlogin.CACHING_SHA2, True),
            ("newrsa1", rawlogin.CACHING_SHA2, False),
        ):
            cli("create", "--database", "freshdb", user, password="Fresh#pass1")
            # A wrong password is still refused, and so is the right one of another account.
            assert rawlogin.login(port, user, "Wrong#pass1", plugin, tls=tls).errno == 1045
            done = rawlogin.login(port, user, "Fresh#pass1", plugin, tls=tls)
            assert done.errno is None, (user, done)
            cli("update-password", "--database", "freshdb", user, password="Fresh#pass2")
            assert rawlogin.login(port, user, "Fresh#pass2", plugin, tls=tls).errno is None
            assert rawlogin.login(port, user, "Fresh#pass1", plugin, tls=tls).errno == 1045
        # pymysql, as an application would: create, then connect straight away.
        cli("create", "--database", "freshdb", "--read-only", "appuser1", password="App#pass123")
        conn = pymysql.connect(
            host="127.0.0.1", port=port, user="appuser1", password="App#pass123", database="freshdb"
        )
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
        conn.close()
    finally:
        runner.stop()
