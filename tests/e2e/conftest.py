"""A real shardgate proxy in front of the two throwaway MariaDB shards.

The proxy runs in a background thread with its own event loop, so both blocking clients
(PyMySQL, mysql-connector, the mariadb CLI) and asyncio clients (aiomysql, asyncmy) can talk
to it from tests. Tests change the catalog the way the CLI does: through their own Catalog
object on the same SQLite file; the proxy picks the change up by polling.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
import uvloop

from auth.catalog import Catalog
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.manage.admin.listener import admin_listener
from proxy.manage.provision import create_database, create_sharded_database
from proxy.ops.config import Config, load_config
from proxy.server import ProxyServer

PASSWORDS = {
    "easydb": "Admin#pass1",
    "easydb_RO": "ReadOnly#1",
    "otherdb": "Other#pass1",
    "otherdb_RO": "OtherRO#1",
}


@dataclass
class ProxyEnv:
    host: str
    port: int
    config: Config
    config_path: Path
    shards: list[ShardEndpoint]
    server: ProxyServer
    loop: asyncio.AbstractEventLoop

    def catalog(self) -> Catalog:
        """A separate catalog handle, as the CLI or another process would have."""
        return Catalog.open(self.config.catalog.url, self.config.base_dir)

    def connector(
        self,
        user: str = "easydb",
        password: str | None = None,
        database: str | None = "easydb",
        **kwargs: Any,
    ) -> Any:
        """A mysql-connector-python connection (pure Python unless use_pure=False)."""
        import mysql.connector

        kwargs.setdefault("use_pure", True)
        return mysql.connector.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=PASSWORDS.get(user, "") if password is None else password,
            database=database,
            **kwargs,
        )

    def backend_thread(self, conn: pymysql.connections.Connection) -> tuple[str, int]:
        """The shard and thread id of the backend connection the proxy session of ``conn`` is
        on (``CONNECTION_ID()`` is the proxy's id, not the shard's)."""
        session = self.server.ctx.sessions[conn.thread_id()]
        # Leased, or given back to the pool after the last command and still the session's.
        backend = session.link.conn or session.link.affine
        assert backend is not None, "the session has no backend connection"
        return backend.target.shard, backend.thread_id

    def connect(
        self,
        user: str = "easydb",
        password: str | None = None,
        database: str | None = "easydb",
        **kwargs: Any,
    ) -> pymysql.connections.Connection:
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 10)
        kwargs.setdefault("read_timeout", 60)
        return pymysql.connect(
            host=kwargs.pop("host", self.host),
            port=self.port,
            user=user,
            password=PASSWORDS.get(user, "") if password is None else password,
            database=database,
            **kwargs,
        )


# mysql-connector, pure Python and C extension (the latter through run_isolated).
CONNECTOR_IMPLEMENTATIONS = [pytest.param(True, id="pure"), pytest.param(False, id="c-ext")]


def run_isolated(scenario: Callable[..., None], *args: Any, crashes_allowed: int = 2) -> None:
    """Run ``scenario(*args)`` in a forked child and fail here if it failed there.

    For mysql-connector's C extension (9.7.0, with its own OpenSSL), which corrupts the heap of
    the process that uses it now and then — with MariaDB directly as well as through the proxy
    (40 runs of the scenario against a bare MariaDB end in ``free(): invalid pointer``). The
    child reports and leaves with os._exit, so the corruption cannot take the test run down. A
    child that dies without reporting (the library's crash) is run again, up to
    ``crashes_allowed`` times; a failed assertion fails at once.
    """
    import multiprocessing
    import os
    import traceback

    exits = []
    for _ in range(crashes_allowed + 1):
        reader, writer = multiprocessing.Pipe(duplex=False)

        def child(writer: Any = writer) -> None:
            try:
                scenario(*args)
                writer.send("ok")
            except BaseException:
                writer.send(traceback.format_exc())
            finally:
                os._exit(0)

        process = multiprocessing.get_context("fork").Process(target=child)
        process.start()
        writer.close()
        try:
            outcome = reader.recv() if reader.poll(300) else None
        except EOFError:  # the child died before it could report
            outcome = None
        process.join(30)
        if outcome == "ok":
            return
        if outcome is not None:
            pytest.fail(f"isolated scenario failed:\n{outcome}")
        exits.append(process.exitcode)
    pytest.fail(f"the isolated scenario's process crashed every time (exit codes {exits})")


def self_signed_cert(directory: Path, stem: str = "server") -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1: (cert path, key path)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def write_config(path: Path, shards: list[ShardEndpoint], port: int, extra: str = "") -> None:
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "" if "handshake_timeout" in extra else "handshake_timeout = 5.0",
        # Every test logs in from 127.0.0.1, many of them with wrong passwords on purpose: the
        # per-address throttle would slow everything after; its own tests turn it on.
        "" if "login_throttle_failures" in extra else "login_throttle_failures = 0",
        extra,
        "[catalog]",
        'url = "sqlite:///catalog.db"',
    ]
    for index, shard in enumerate(shards):
        lines += [
            "[[shards]]",
            f'name = "s{index}"',
            f'host = "{shard.host}"',
            f"port = {shard.port}",
            f'user = "{shard.user}"',
            f'password = "{shard.password}"',
        ]
    path.write_text("\n".join(lines) + "\n")


class ProxyThread:
    """Runs a ProxyServer on its own loop in a daemon thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        # uvloop, as `shardgate serve` runs (its transports are not asyncio's classes).
        self.loop = uvloop.new_event_loop()
        self.started = threading.Event()
        self.server: ProxyServer | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            config = self.config
            catalog = Catalog.open(
                config.catalog.url, config.base_dir, timeout=config.catalog.timeout
            )
            self.server = ProxyServer(self.config, catalog, admin=admin_listener)
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self.error = exc
            self.started.set()
            return
        self.started.set()
        self.loop.run_forever()

    def start(self) -> ProxyServer:
        self.thread.start()
        self.started.wait(30)
        if self.error is not None:
            raise self.error
        assert self.server is not None
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            fut = asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop)
            fut.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_proxy(
    base: Path,
    shards: list[ShardEndpoint],
    extra: str,
    databases: list[tuple[str, str]],
    admin_password: str,
    ro_password: str,
) -> ProxyThread:
    """A proxy of its own (``extra``: lines for [server]) with these databases on these
    shards (``"s0,s1"``: a sharded database over both, 4 physical databases per shard), their
    built-in accounts having these passwords. Stop it with ``.stop()``."""
    config_path = base / "shardgate.toml"
    write_config(config_path, shards, free_port(), extra)
    config = load_config(config_path)
    catalog = Catalog.open(config.catalog.url, config.base_dir)
    for name, shard in databases:
        if catalog.snapshot().database(name) is not None:
            continue
        if "," in shard:
            asyncio.run(
                create_sharded_database(
                    config, catalog, name, shard.split(","), None, admin_password, ro_password
                )
            )
        else:
            asyncio.run(create_database(config, catalog, name, shard, admin_password, ro_password))
    catalog.close()
    runner = ProxyThread(config)
    runner.start()
    return runner


@pytest.fixture(scope="session")
def proxy(
    shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyEnv]:
    base = tmp_path_factory.mktemp("proxy")
    config_path = base / "shardgate.toml"
    write_config(config_path, shards, free_port())
    config = load_config(config_path)
    catalog = Catalog.open(config.catalog.url, config.base_dir)
    for name, shard in (("easydb", "s0"), ("otherdb", "s1")):
        asyncio.run(
            create_database(config, catalog, name, shard, PASSWORDS[name], PASSWORDS[f"{name}_RO"])
        )
    runner = ProxyThread(config)
    server = runner.start()
    env = ProxyEnv(
        host="127.0.0.1",
        port=server.port,
        config=config,
        config_path=config_path,
        shards=shards,
        server=server,
        loop=runner.loop,
    )
    try:
        yield env
    finally:
        runner.stop()


@pytest.fixture
def admin(proxy: ProxyEnv) -> Iterator[pymysql.connections.Connection]:
    """The easydb administrator, connected through the proxy."""
    conn = proxy.connect()
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def fresh_table(admin: pymysql.connections.Connection) -> Callable[[str, str], str]:
    """Create (or recreate) a table in easydb through the proxy; returns its name."""

    def make(name: str, columns: str) -> str:
        with admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{name}`")
            cur.execute(f"CREATE TABLE `{name}` ({columns})")
        return name

    return make
