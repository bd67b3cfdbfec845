"""The asyncio server: accepts connections, owns shared state, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from auth.accounts import AccountManager
from auth.catalog import Catalog, CatalogSnapshot
from auth.passwords import generate_rsa_keypair
from auth.policy import profile_by_name
from proxy.authn import Sha2Cache
from proxy.config import Config
from proxy.logs import bind_connection
from proxy.metrics import Metrics
from proxy.wire.packets import ProtocolError, parse_handshake_v10
from proxy.wire.stream import ConnectionLost, PacketStream, PacketTooLarge

if TYPE_CHECKING:  # admin HTTP server hook
    from proxy.admin.server import AdminServer

log = logging.getLogger("shardgate.server")

CATALOG_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class RsaKeys:
    private_pem: bytes
    public_pem: bytes


class ServerContext:
    """Everything sessions share: configuration, the catalog, keys and the session table."""

    def __init__(self, config: Config, catalog: Catalog) -> None:
        from proxy.session import Session

        self.config = config
        self.catalog = catalog
        self.accounts = AccountManager(catalog, profile_by_name(config.server.policy))
        self.secret = config.catalog_secret()
        self.sessions: dict[int, Session] = {}
        self.sha2_cache = Sha2Cache()
        private_pem, public_pem = generate_rsa_keypair()
        self.rsa_keys = RsaKeys(private_pem, public_pem)
        self.ssl_context = _ssl_context(config)
        self._ids = itertools.count(1)
        self.draining = False
        self.server_version = config.server.server_version or FALLBACK_SERVER_VERSION
        # Prometheus metrics (proxy/metrics.py lists the calls sessions make).
        self.metrics = Metrics(catalog_version=lambda: self.catalog.snapshot().version)

    def next_connection_id(self) -> int:
        return next(self._ids)

    def snapshot(self) -> CatalogSnapshot:
        return self.catalog.snapshot()


FALLBACK_SERVER_VERSION = "5.5.5-10.11.0-MariaDB-shardgate"


async def _backend_version(config: Config) -> str:
    """The first reachable shard's greeting version, which the proxy presents as its own."""
    for shard in config.shards:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(shard.host, shard.port), 3
            )
        except (OSError, TimeoutError):
            continue
        try:
            _, greeting = await asyncio.wait_for(PacketStream(reader, writer).read(1 << 16), 3)
            return f"{parse_handshake_v10(greeting).server_version}-shardgate"
        except (ConnectionLost, ProtocolError, TimeoutError, PacketTooLarge):
            continue
        finally:
            writer.close()
    return FALLBACK_SERVER_VERSION


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    server = config.server
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.tls_cert, server.tls_key)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ProxyServer:
    def __init__(self, config: Config, catalog: Catalog) -> None:
        self.ctx = ServerContext(config, catalog)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        # --- admin HTTP server hook (proxy/admin): started/stopped with the proxy ---
        self.admin: AdminServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        server = self.ctx.config.server
        self.ctx.server_version = server.server_version or await _backend_version(self.ctx.config)
        # --- admin HTTP server hook: [admin] enabled = true (see proxy/admin/server.py) ---
        # [metrics] enabled = true also serves GET /metrics there (alone if [admin] is off).
        config = self.ctx.config
        if config.admin.enabled or config.metrics.enabled:
            from proxy.admin.server import AdminServer

            self.admin = AdminServer(
                config.admin,
                self.ctx.accounts,
                self.ctx.catalog,
                self.ctx.secret,
                dashboard=config.admin.enabled,
                metrics=self.ctx.metrics if config.metrics.enabled else None,
                metrics_token=config.metrics.token(),
            )
            await self.admin.start()
        # --- end of admin hook ---
        self._server = await asyncio.start_server(
            self._accept, server.host, server.port, limit=256 * 1024, backlog=1024
        )
        self._poller = asyncio.create_task(self._poll_catalog())
        log.info("shardgate listening on %s:%d", server.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from proxy.session import Session

        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection_id = self.ctx.next_connection_id()
        peer = writer.get_extra_info("peername")
        bind_connection(connection_id, str(peer[0]) if peer else "?")  # log context (proxy/logs)
        session = Session(self.ctx, reader, writer, connection_id)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.ctx.metrics.connection_opened()
        try:
            await session.run()
        finally:
            self.ctx.metrics.connection_closed()
            self._tasks.discard(task)

    async def _poll_catalog(self) -> None:
        """Changes made by another process (the CLI, another node) reach open sessions."""
        while True:
            await asyncio.sleep(CATALOG_POLL_SECONDS)
            try:
                await asyncio.to_thread(self.ctx.catalog.refresh)
            except Exception:  # keep serving on the last good snapshot
                self.ctx.metrics.catalog_refresh_failures.inc()
                log.exception("catalog refresh failed")

    async def serve_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stopping.set)
        await self._stopping.wait()
        await self.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        """Drain: stop accepting, let sessions finish (bounded), then close the rest."""
        if self.admin is not None:  # admin HTTP server hook
            await self.admin.stop()
        if self._server is not None:
            self._server.close()
        self._poller.cancel()
        self.ctx.draining = True
        # Idle sessions go now; busy ones finish their statement (bounded by drain_timeout).
        for session in list(self.ctx.sessions.values()):
            if session.activity.command == "Sleep":
                session.kill()
        if self._tasks:
            log.info("draining %d connections", len(self._tasks))
            _, pending = await asyncio.wait(
                list(self._tasks), timeout=self.ctx.config.server.drain_timeout
            )
            for session in list(self.ctx.sessions.values()):
                session.kill()
            for task in pending:
                task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        log.info("shardgate stopped")


def run_server(config: Config) -> None:
    """Run the proxy in the foreground until SIGTERM/SIGINT; used by ``shardgate serve``."""
    catalog = Catalog.open(config.catalog.url, config.base_dir)

    async def main() -> None:
        server = ProxyServer(config, catalog)
        await server.start()
        await server.serve_until_stopped()

    _run(main())


def _run(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(coro)  # type: ignore[arg-type]
