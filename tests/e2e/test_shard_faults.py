"""Faults and limits with real shards: a stalled shard, a shard killed and restarted under load,
idle clients, too many connections, statements over the time limit."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from auth.catalog import Catalog
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from proxy.manage.provision import create_sharded_database
from tests.e2e.conftest import ProxyThread, start_proxy

ADMIN = "Fault#admin1"
RO = "Fault#ro1234"


def _port(runner: ProxyThread) -> int:
    assert runner.server is not None
    return runner.server.port


def _connect(runner: ProxyThread, database: str, **kwargs: object) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1",
        port=_port(runner),
        user=database,
        password=ADMIN,
        database=database,
        autocommit=True,
        connect_timeout=10,
        read_timeout=60,
        **kwargs,
    )


@pytest.fixture
def fragile(tmp_path: Path) -> Iterator[LocalMariaDB]:
    server = LocalMariaDB(tmp_path / "fragile")
    server.start()
    try:
        yield server
    finally:
        server.thaw()
        server.stop()


def test_a_stalled_shard_fails_fast_and_recovers(
    shards: list[ShardEndpoint], fragile: LocalMariaDB, tmp_path: Path
) -> None:
    runner = start_proxy(
        tmp_path,
        [shards[0], fragile.endpoint],
        "backend_connect_timeout = 1.0\nshard_check_after = 1.0\n",
        [("steady", "s0"), ("stally", "s1")],
        ADMIN,
        RO,
    )
    try:
        stalled = _connect(runner, "stally")
        steady = _connect(runner, "steady")
        with stalled.cursor() as cur:
            cur.execute("SELECT 1")
        fragile.freeze()  # the process freezes; its sockets stay open
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as info, stalled.cursor() as cur:
            cur.execute("SELECT 2")
        waited = time.monotonic() - started
        assert info.value.args[0] == 2013
        assert "not answering" in info.value.args[1]
        # health check after 1 s, its connect timeout 1 s, the watchdog's 1 s tick
        assert waited < 5, waited
        with steady.cursor() as cur:  # the other shard's clients never noticed
            cur.execute("SELECT 3")
            assert cur.fetchone() == (3,)
        fragile.thaw()
        with stalled.cursor() as cur:  # the same session reconnects on its own
            cur.execute("SELECT 4")
            assert cur.fetchone() == (4,)
        stalled.close()
        steady.close()
    finally:
        runner.stop()


def test_shard_killed_and_restarted_under_load(
    shards: list[ShardEndpoint], fragile: LocalMariaDB, tmp_path: Path
) -> None:
    runner = start_proxy(
        tmp_path,
        [shards[0], fragile.endpoint],
        "backend_connect_timeout = 2.0\n",
        [("calm", "s0"), ("shaky", "s1")],
        ADMIN,
        RO,
    )
    stop = threading.Event()
    results: dict[str, list[tuple[float, int | None]]] = {"calm": [], "shaky": []}

    def load(database: str) -> None:
        conn: pymysql.Connection | None = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = _connect(runner, database)
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchall()
                results[database].append((time.monotonic(), None))
            except pymysql.err.MySQLError as exc:
                results[database].append((time.monotonic(), exc.args[0]))
                if conn is not None and not conn.open:
                    conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=load, args=(db,)) for db in ("calm", "shaky") * 2]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1)
        fragile.kill()
        killed = time.monotonic()
        time.sleep(2)
        fragile.start()
        restarted = time.monotonic()
        time.sleep(3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        runner.stop()
    calm_errors = [code for _, code in results["calm"] if code is not None]
    assert calm_errors == []  # clients of the healthy shard never saw the fault
    shaky_errors = [(at, code) for at, code in results["shaky"] if code is not None]
    assert shaky_errors, "the killed shard's clients must get errors"
    assert {code for _, code in shaky_errors} <= {2006, 2013}
    assert all(killed - 0.5 <= at <= restarted + 5 for at, _ in shaky_errors)
    recovered = [at for at, code in results["shaky"] if code is None and at > restarted]
    assert recovered, "the proxy reconnects once the shard is back"


def test_idle_clients_are_disconnected_with_4031(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    runner = start_proxy(tmp_path, shards, "idle_timeout = 1.0\n", [("idler", "s0")], ADMIN, RO)
    try:
        conn = _connect(runner, "idler")
        sock = conn._sock
        assert isinstance(sock, socket.socket)
        sock.settimeout(10)
        data = b""
        while True:  # the proxy speaks first, then closes: ERR 4031, then EOF
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data[4] == 0xFF
        assert int.from_bytes(data[5:7], "little") == 4031
        assert b"disconnected by the server because of inactivity" in data
        conn.close()
        busy = _connect(runner, "idler")  # activity keeps a connection alive
        for _ in range(4):
            with busy.cursor() as cur:
                cur.execute("SELECT 1")
            time.sleep(0.5)
        busy.close()
    finally:
        runner.stop()


def test_max_connections(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    runner = start_proxy(tmp_path, shards, "max_connections = 2\n", [("few", "s0")], ADMIN, RO)
    try:
        first, second = _connect(runner, "few"), _connect(runner, "few")
        with pytest.raises(pymysql.err.OperationalError) as info:
            _connect(runner, "few")
        assert info.value.args == (1040, "Too many connections")
        second.close()
        deadline = time.monotonic() + 5
        while True:
            try:
                third = _connect(runner, "few")
                break
            except pymysql.err.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        third.close()
        first.close()
    finally:
        runner.stop()


def test_query_timeout_interrupts_the_statement(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    runner = start_proxy(tmp_path, shards, "query_timeout = 1.0\n", [("slow", "s0")], ADMIN, RO)
    try:
        conn = _connect(runner, "slow")
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
            cur.execute("SELECT SLEEP(10)")
        assert info.value.args[0] == 1317  # Query execution was interrupted
        assert time.monotonic() - started < 5
        with conn.cursor() as cur:  # the session goes on
            cur.execute("SELECT 5")
            assert cur.fetchone() == (5,)
        conn.close()
    finally:
        runner.stop()


def test_a_shard_stalled_under_a_sharded_statement_fails_it_fast(
    shards: list[ShardEndpoint], fragile: LocalMariaDB, tmp_path: Path
) -> None:
    """A sharded database over a healthy shard and one that freezes: a scatter waiting on the
    frozen shard's partition is failed by the same watchdog as an unsharded statement (the
    health check), not left waiting for as long as the shard stays frozen."""
    runner = start_proxy(
        tmp_path,
        [shards[0], fragile.endpoint],
        "backend_connect_timeout = 1.0\nshard_check_after = 1.0\n",
        [],
        ADMIN,
        RO,
    )
    try:
        assert runner.server is not None
        config = runner.server.ctx.config
        with Catalog.open(config.catalog.url, config.base_dir) as catalog:
            asyncio.run(
                create_sharded_database(config, catalog, "split", ["s0", "s1"], 2, ADMIN, RO)
            )
        deadline = time.monotonic() + 10
        while runner.server.ctx.catalog.snapshot().database("split") is None:
            assert time.monotonic() < deadline, "the proxy never saw the new database"
            time.sleep(0.1)
        client = _connect(runner, "split")
        with client.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT PRIMARY KEY) DBPARTITION BY HASH(id)")
            cur.execute("INSERT INTO t VALUES (0), (1)")  # one row on each shard
            cur.execute("SELECT COUNT(*) FROM t")
            assert cur.fetchone() == (2,)
        fragile.freeze()
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as info, client.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM t")  # (merged: nothing sent before the error)
        waited = time.monotonic() - started
        assert info.value.args[0] == 2013
        assert "not answering" in info.value.args[1], info.value.args
        assert waited < 10, waited
        fragile.thaw()
        with client.cursor() as cur:  # the session goes on, the partition reconnected
            cur.execute("SELECT id FROM t ORDER BY id")
            assert cur.fetchall() == ((0,), (1,))
        client.close()
    finally:
        runner.stop()
