"""The connection to a MySQL catalog lost right at COMMIT: the client is told the outcome is
unknown (1180), the operator finds it in the audit log and the metric, and the catalog's own
audit table agrees with what was applied.

A TCP forwarder sits between the proxy and the real catalog server and cuts the connection at
the COMMIT of the next write transaction, once after passing it on (the catalog applies it)
and once before (it never arrives): a real network fault on a real server.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pymysql
import pytest

from auth.catalog import Catalog
from auth.privileges import Priv
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.manage.provision import create_database
from proxy.ops.config import load_config
from tests.e2e.conftest import ProxyThread, write_config
from tests.metrics_text import parse_exposition

ADMIN_PW = "Lost#admin1"
# The catalog timeout: generous, since on a loaded machine 2 s sometimes passed before the
# statement reached COMMIT (then the answer is, correctly, 1105: nothing was changed).
TIMEOUT = 5.0
UNKNOWN = ("shardgate_catalog_outcome_unknown_total", ())


class CommitCutter:
    """Forwards TCP connections to ``target``; when ``mode`` is set, cuts the connection at the
    COMMIT that ends a write transaction (one with ``SELECT ... FOR UPDATE``, as the catalog's
    writes all start): ``"after"`` passing the COMMIT on, ``"before"`` holding it back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.mode: str | None = None
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            muted = threading.Event()  # the catalog's answer must not reach the proxy
            threading.Thread(target=self._up, args=(client, upstream, muted), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, muted), daemon=True).start()

    @staticmethod
    def _down(upstream: socket.socket, client: socket.socket, muted: threading.Event) -> None:
        try:
            while data := upstream.recv(65536):
                if muted.is_set():
                    return
                client.sendall(data)
        except OSError:
            return
        finally:
            _cut(client, upstream)

    def _up(self, client: socket.socket, upstream: socket.socket, muted: threading.Event) -> None:
        buffer = b""
        writing = False
        try:
            while data := client.recv(65536):
                buffer += data
                while len(buffer) >= 4:
                    length = int.from_bytes(buffer[:3], "little")
                    if len(buffer) < 4 + length:
                        break
                    packet, buffer = buffer[: 4 + length], buffer[4 + length :]
                    sql = packet[5:].decode("utf-8", "replace").strip().upper()
                    if packet[4] == 0x03 and "FOR UPDATE" in sql:
                        writing = True
                    elif packet[4] == 0x03 and sql == "COMMIT" and writing and self.mode:
                        mode, self.mode = self.mode, None
                        self.cuts += 1
                        muted.set()
                        if mode == "after":
                            upstream.sendall(packet)
                            time.sleep(0.5)  # the catalog commits
                        return
                    upstream.sendall(packet)
        except OSError:
            return
        finally:
            _cut(client, upstream)


def _cut(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_commit_lost_on_the_way_is_unknown_not_failed(
    shards: list[ShardEndpoint],
    mysql_catalog_url: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    direct = mysql_catalog_url()
    parts = urlsplit(direct)
    assert parts.hostname is not None and parts.port is not None
    cutter = CommitCutter(parts.hostname, parts.port)
    config_path = tmp_path / "shardgate.toml"
    write_config(config_path, shards, free_port())
    base, _, query = direct.replace(f":{parts.port}/", f":{cutter.port}/").partition("?")
    password_env = query.removeprefix("password_env=")
    config_path.write_text(
        config_path.read_text().replace(
            'url = "sqlite:///catalog.db"',
            f'url = "{base}"\npassword_env = "{password_env}"\ntimeout = {TIMEOUT}',
        )
    )
    config = load_config(config_path)
    with Catalog.open(config.catalog.url, config.base_dir) as catalog:
        asyncio.run(create_database(config, catalog, "lostdb", "s0", ADMIN_PW, "LostRO#pw1"))
    runner = ProxyThread(config)
    server = runner.start()
    caplog.set_level(logging.INFO, logger="shardgate.audit")
    try:
        admin = pymysql.connect(
            host="127.0.0.1", port=server.port, user="lostdb", password=ADMIN_PW,
            database="lostdb", autocommit=True, connect_timeout=10, read_timeout=30,
        )  # fmt: skip
        with admin.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
            cur.execute("CREATE USER lostu@'%' IDENTIFIED BY 'Lost#pass1'")
        for mode, privilege, count in (("after", "SELECT", 1), ("before", "INSERT", 2)):
            cutter.mode = mode
            started = time.monotonic()
            with pytest.raises(pymysql.err.OperationalError) as info, admin.cursor() as cur:
                cur.execute(f"GRANT {privilege} ON lostdb.* TO lostu@'%'")
            # Bounded by the catalog timeout, not the cut connection's read timeout (30 s).
            assert time.monotonic() - started < TIMEOUT + 3
            assert info.value.args[0] == 1180, info.value
            assert "may or may not have been applied" in info.value.args[1]
            assert cutter.cuts == count
            with admin.cursor() as cur:  # the session goes on
                cur.execute("SELECT 1")
            samples = parse_exposition(server.ctx.metrics.render())
            assert samples[UNKNOWN] == count
        audit = [r for r in caplog.records if r.name == "shardgate.audit"]
        unknown = [r for r in audit if "outcome unknown" in r.message]
        assert [getattr(r, "result", None) for r in unknown] == ["unknown", "unknown"]
        assert "GRANT SELECT" in unknown[0].message and "GRANT INSERT" in unknown[1].message
        # The catalog has what it applied, with its audit row, and nothing else.
        with Catalog.open(direct, tmp_path) as catalog:
            snapshot = catalog.snapshot()
            account = snapshot.find_account("lostu", "%")
            assert account is not None
            assert snapshot.privileges(account.id, "lostdb") == Priv.SELECT
            actions = [record.action for record in catalog.audit()]
            assert sum("GRANT SELECT" in action for action in actions) == 1
            assert not any("GRANT INSERT" in action for action in actions)

        # The node catches up by itself: the applied grant works, through the shard too.
        def can_select() -> bool:
            try:
                with pymysql.connect(
                    host="127.0.0.1", port=server.port, user="lostu", password="Lost#pass1",
                    database="lostdb", connect_timeout=10,
                ) as conn, conn.cursor() as cur:  # fmt: skip
                    cur.execute("SELECT COUNT(*) FROM t")
            except pymysql.err.MySQLError:
                return False
            return True

        _until(can_select, 5, "the applied grant never took effect")
        admin.close()
    finally:
        runner.stop()
        cutter.close()
