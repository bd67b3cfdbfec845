"""The admin HTTP server: uvicorn serving ``proxy.manage.admin.app`` inside the proxy's event loop.

``ProxyServer.start()`` starts it when ``[admin] enabled = true`` and ``stop()`` stops it (through
``proxy.manage.admin.listener``, the factory the entry points hand to ``ProxyServer``). It
binds its own socket first (so a busy port fails the proxy's start at once, and ``port`` is
known even for port 0), never installs signal handlers (the proxy owns SIGTERM / SIGINT), never
reconfigures logging, ignores ``X-Forwarded-*`` headers (client addresses feed the sign-in rate
limit) and writes no uvicorn access log (``proxy.manage.admin.app`` logs method, path and status).

The same listener serves Prometheus ``GET /metrics`` (``proxy.manage.admin.metrics``) when
``[metrics] enabled = true``; with ``dashboard=False`` (``[admin] enabled = false``) it serves
/metrics only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import socket
from collections.abc import Callable, Iterator

import uvicorn

from auth.accounts import AccountManager
from auth.bookkeeping import LoginBookkeeping
from auth.catalog import Catalog
from proxy.backend.mirror import MirrorManager
from proxy.manage.admin.app import AdminApp, create_app
from proxy.manage.admin.metrics import MetricsEndpoint
from proxy.ops.config import AdminConfig, ConfigError, ServerConfig
from proxy.ops.metrics import Metrics

__all__ = ["AdminServer", "session_secret"]

log = logging.getLogger("shardgate.admin")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def session_secret(config: AdminConfig, catalog_secret: bytes) -> str:
    """The key signing session cookies: ``session_secret_env``'s value if configured, else
    derived from the catalog secret (so it survives restarts and is the same on every node)."""
    if config.session_secret_env:
        value = os.environ.get(config.session_secret_env)
        if not value:
            raise ConfigError(
                f"admin.session_secret_env: environment variable {config.session_secret_env} "
                "is not set"
            )
        return value
    return hmac.new(catalog_secret, b"shardgate admin session v1", hashlib.sha256).hexdigest()


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without signal handling: the proxy stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class AdminServer:
    def __init__(
        self,
        config: AdminConfig,
        accounts: AccountManager,
        catalog: Catalog,
        catalog_secret: bytes,
        mirrors: MirrorManager,
        server_config: Callable[[], ServerConfig],
        bookkeeping: LoginBookkeeping,
        *,
        dashboard: bool = True,
        metrics: Metrics | None = None,
        metrics_token: str | None = None,
    ) -> None:
        """``dashboard``: serve the dashboard and its API; ``metrics``: serve /metrics (with
        ``metrics_token``: only to ``Authorization: Bearer <token>``)."""
        self.config = config
        self.app: AdminApp | None = (
            create_app(
                accounts,
                catalog,
                mirrors,
                config,
                session_secret(config, catalog_secret),
                server_config,
                bookkeeping,
            )
            if dashboard
            else None
        )
        self.endpoint = MetricsEndpoint(
            self.app.app if self.app is not None else None, metrics, metrics_token
        )
        self._server: _EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls_cert is not None else "http"
        host = self.config.host
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{self._port}"

    def set_metrics_token(self, token: str | None) -> None:
        """The bearer token ``GET /metrics`` requires from now on (None: none)."""
        self.endpoint.set_token(token)

    async def start(self) -> None:
        sock = _listen(self.config.host, self.config.port)
        self._port = int(sock.getsockname()[1])
        uv_config = uvicorn.Config(
            self.endpoint,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            lifespan="off",
            http="h11",
            ws="none",
            ssl_certfile=self.config.tls_cert,
            ssl_keyfile=self.config.tls_key,
            timeout_graceful_shutdown=5,
        )
        server = _EmbeddedUvicorn(uv_config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="shardgate-admin")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not server.started:
            if task.done() or loop.time() > deadline:
                server.should_exit = True
                sock.close()
                with contextlib.suppress(BaseException):
                    await task
                raise RuntimeError(f"the admin server did not start on port {self._port}")
            await asyncio.sleep(0.01)
        self._server, self._task = server, task
        served = [
            name
            for name, on in (
                ("dashboard", self.app is not None),
                ("metrics", self.endpoint.metrics is not None),
            )
            if on
        ]
        log.info("admin HTTP listening on %s (%s)", self.url, ", ".join(served))

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._server = self._task = None
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except Exception:
            log.exception("admin server stopped with an error")
        log.info("admin HTTP stopped")
