"""SIGTERM drains a real `shardgate serve` under load: open transactions may finish, nothing
else waits, and every client learns what happened to its work.

Two databases on the two shards; idle sessions, sessions in a transaction (PyMySQL and
mysql-connector), a statement still running at ``drain_timeout``, and autocommit writers.
Every transaction committed within ``drain_timeout`` is acknowledged and on its shard; every
other one gets 1053 ``Server shutdown in progress`` and is absent; idle sessions get 1053 at
once; the process exits 0. With ``[server] workers`` each worker drains the same way.
"""

from __future__ import annotations

import itertools
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mysql.connector
import pymysql

from auth.catalog import Catalog
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.ops.config import load_config
from tests.conftest import connect_admin
from tests.e2e.conftest import write_config
from tests.e2e.served import create_database, serve, stop

ADMIN = "Drain#admin1"
RO = "Drain#ro1234"
DRAIN_TIMEOUT = 3.0
SHUTDOWN = 1053


def _py(port: int, db: str) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=port, user=db, password=ADMIN, database=db,
        autocommit=True, connect_timeout=10, read_timeout=30,
    )  # fmt: skip


def _connector(port: int, db: str) -> Any:
    return mysql.connector.connect(
        host="127.0.0.1", port=port, user=db, password=ADMIN, database=db,
        autocommit=True, use_pure=True, connection_timeout=10,
    )  # fmt: skip


def _run(conn: Any, sql: str) -> None:
    """Run ``sql``, reading any rows. mysql-connector through ``cmd_query``: its ``cursor()``
    pings the server first and, when that fails, reports -1 "MySQL Connection not available"
    instead of the server's error (1053 here: the ping is the command it answers)."""
    if isinstance(conn, pymysql.Connection):
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    elif "columns" in conn.cmd_query(sql):
        conn.get_rows()


def _errno(conn: Any, sql: str) -> int | None:
    """The error number ``sql`` fails with on ``conn`` (None: it succeeded)."""
    try:
        _run(conn, sql)
    except (pymysql.err.MySQLError, mysql.connector.Error) as error:
        return int(error.args[0]) if isinstance(error, pymysql.err.MySQLError) else error.errno
    return None


def _setup(
    tmp_path: Path, shards: list[ShardEndpoint], extra: str, databases: dict[str, str]
) -> tuple[Path, int, dict[str, str]]:
    """A configuration with ``databases`` (name -> shard); their physical names."""
    port = free_port()
    config = tmp_path / "shardgate.toml"
    write_config(config, shards, port, f"drain_timeout = {DRAIN_TIMEOUT}\n{extra}")
    for name, shard in databases.items():
        create_database(config, name, shard, ADMIN, RO)
    loaded = load_config(config)
    physical = {}
    with Catalog.open(loaded.catalog.url, loaded.base_dir) as catalog:
        for name in databases:
            found = catalog.snapshot().database(name)
            assert found is not None
            physical[name] = found.physical_name
    return config, port, physical


def _rows(endpoint: ShardEndpoint, physical: str) -> dict[int, str]:
    conn = connect_admin(endpoint, physical)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, who FROM t")
            return {int(row[0]): str(row[1]) for row in cur.fetchall()}
    finally:
        conn.close()


@dataclass
class Writer:
    """Autocommit INSERTs in a loop until one fails: what was acknowledged, what failed."""

    conn: pymysql.Connection
    ids: Callable[[], int]
    acknowledged: list[int] = field(default_factory=list)
    failed: tuple[int, int] | None = None  # (id, errno)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n = self.ids()
            errno = _errno(self.conn, f"INSERT INTO t (id, who) VALUES ({n}, 'load')")
            if errno is not None:
                self.failed = (n, errno)
                return
            self.acknowledged.append(n)
            time.sleep(0.005)


def _shutdown_error_waiting(conn: pymysql.Connection, within: float) -> bytes:
    """The bytes the proxy sent an idle PyMySQL connection unasked, once it closed it."""
    sock = conn._sock
    assert sock is not None
    with selectors.DefaultSelector() as selector:  # (select.select fails past fd 1023)
        selector.register(sock, selectors.EVENT_READ)
        readable = selector.select(within)
    assert readable, "the idle session was not closed at once"
    pending: bytes = sock.recv(256, socket.MSG_PEEK)
    return pending


def test_sigterm_drains_open_transactions_and_nothing_else(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    config, port, physical = _setup(tmp_path, shards, "", {"drain0": "s0", "drain1": "s1"})
    proc = serve(config, port)
    try:
        for db in ("drain0", "drain1"):
            with _py(port, db) as conn:
                _run(conn, "CREATE TABLE t (id INT PRIMARY KEY, who VARCHAR(20))")
        idle_py, idle_connector = _py(port, "drain0"), _connector(port, "drain1")
        for conn in (idle_py, idle_connector):
            assert _errno(conn, "SELECT 1") is None
        commit_py, late_py = _py(port, "drain0"), _py(port, "drain0")
        commit_connector, late_connector = _connector(port, "drain1"), _connector(port, "drain1")
        opened = [
            (commit_py, 1, "commit_py"),
            (late_py, 2, "late_py"),
            (commit_connector, 1, "commit_connector"),
            (late_connector, 2, "late_connector"),
        ]
        for conn, n, who in opened:
            _run(conn, "BEGIN")
            _run(conn, f"INSERT INTO t (id, who) VALUES ({n}, '{who}')")
        # A transaction whose statement is still running when drain_timeout passes.
        running = _py(port, "drain1")
        _run(running, "BEGIN")
        _run(running, "INSERT INTO t (id, who) VALUES (3, 'running')")
        outcome: list[int | None] = []
        sleeper = threading.Thread(
            target=lambda: outcome.append(_errno(running, "SELECT SLEEP(20)")), daemon=True
        )
        sleeper.start()
        counter = itertools.count(1000)
        writers = [Writer(_py(port, f"drain{i % 2}"), counter.__next__) for i in range(4)]
        for writer in writers:
            writer.start()
        time.sleep(0.5)

        proc.send_signal(signal.SIGTERM)
        terminated = time.monotonic()
        # Idle sessions: closed at once, with 1053 waiting as the answer to their next command
        # (sequence id 1), which both drivers then report.
        pending = _shutdown_error_waiting(idle_py, within=1.0)
        assert time.monotonic() - terminated < 1.0
        assert pending[3] == 1 and pending[4] == 0xFF, pending
        assert int.from_bytes(pending[5:7], "little") == SHUTDOWN
        assert b"Server shutdown in progress" in pending
        assert _errno(idle_py, "SELECT 1") == SHUTDOWN
        assert _errno(idle_connector, "SELECT 1") == SHUTDOWN
        # No new connections.
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            raise AssertionError("the listener still accepts connections while draining")
        except OSError:
            pass
        # Open transactions finish within drain_timeout: acknowledged, then 1053.
        time.sleep(max(0.0, terminated + 1.0 - time.monotonic()))
        for conn in (commit_py, commit_connector):
            assert _errno(conn, "COMMIT") is None
            assert _errno(conn, "SELECT 1") == SHUTDOWN
        # The autocommit writers: each ended with 1053, nothing lost, nothing half-done.
        for writer in writers:
            assert writer.thread is not None
            writer.thread.join(10)
            assert writer.failed is not None and writer.failed[1] == SHUTDOWN, writer.failed
        # After drain_timeout: the rest was cut -- the idle transactions with 1053, the running
        # statement interrupted on its shard (1317), then 1053.
        time.sleep(max(0.0, terminated + DRAIN_TIMEOUT + 1.5 - time.monotonic()))
        for conn in (late_py, late_connector):
            assert _errno(conn, "COMMIT") == SHUTDOWN
        sleeper.join(10)
        assert outcome == [1317]
        assert _errno(running, "COMMIT") == SHUTDOWN
        proc.wait(timeout=30)
        assert time.monotonic() - terminated < DRAIN_TIMEOUT + 8
    finally:
        output = stop(proc)
    assert proc.returncode == 0, output
    assert "Traceback" not in output and " ERROR " not in output, output
    assert "drain_timeout passed: cutting" in output, output

    drain0 = _rows(shards[0], physical["drain0"])
    drain1 = _rows(shards[1], physical["drain1"])
    assert drain0.get(1) == "commit_py" and 2 not in drain0
    assert drain1.get(1) == "commit_connector" and 2 not in drain1 and 3 not in drain1
    for writer, rows in zip(writers, [drain0, drain1, drain0, drain1], strict=True):
        assert writer.acknowledged, "the writer never got going"
        assert all(rows.get(n) == "load" for n in writer.acknowledged)
        assert writer.failed is not None and writer.failed[0] not in rows


def test_workers_drain_the_same_way(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    config, port, physical = _setup(tmp_path, shards, "workers = 2\n", {"drainw": "s0"})
    proc = serve(config, port)
    try:
        with _py(port, "drainw") as conn:
            _run(conn, "CREATE TABLE t (id INT PRIMARY KEY, who VARCHAR(20))")
        # Enough connections that the kernel hands some to each worker.
        idle = [_py(port, "drainw") for _ in range(4)]
        open_ = [_py(port, "drainw") for _ in range(4)]
        for n, conn in enumerate(open_, start=1):
            _run(conn, "BEGIN")
            _run(conn, f"INSERT INTO t (id, who) VALUES ({n}, 'worker')")
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        for conn in idle:
            assert _errno(conn, "SELECT 1") == SHUTDOWN
        for conn in open_:
            assert _errno(conn, "COMMIT") is None
            assert _errno(conn, "SELECT 1") == SHUTDOWN
        proc.wait(timeout=30)
    finally:
        output = stop(proc)
    assert proc.returncode == 0, output
    assert "Traceback" not in output, output
    assert sorted(_rows(shards[0], physical["drainw"])) == [1, 2, 3, 4]
