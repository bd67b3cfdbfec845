"""``GET /metrics`` on the admin HTTP listener: the Prometheus exposition of ``proxy.ops.metrics``.

A small ASGI wrapper in front of the dashboard application (or of nothing, when ``[admin]
enabled = false`` and only ``[metrics] enabled = true``): requests for ``/metrics`` are answered
here, everything else goes to the dashboard, or is 404 without one.

Authentication: none by default, because the exposition holds counts, shard names and error
numbers, never an account name, statement text or password, and the listener binds 127.0.0.1
unless configured otherwise. With ``[metrics] token_env = "VAR"`` every scrape must send
``Authorization: Bearer <value of VAR>`` (compared in constant time; 401 otherwise), which is
what to do whenever the listener is reachable from other machines (Prometheus:
``authorization: {credentials_file: ...}``). The token never appears in a log or a response.
Scrapes are logged at DEBUG only (one every few seconds would drown the access log).
"""

from __future__ import annotations

import hmac
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.ops.metrics import CONTENT_TYPE, Metrics

__all__ = ["MetricsEndpoint"]

log = logging.getLogger("shardgate.admin")

PATH = "/metrics"


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await _send(send, 404, b"Not Found\n", b"text/plain; charset=utf-8")


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class MetricsEndpoint:
    """ASGI: ``/metrics`` from ``metrics`` (when set), everything else to ``app`` (or 404)."""

    def __init__(
        self, app: ASGIApp | None, metrics: Metrics | None, token: str | None = None
    ) -> None:
        self.app: ASGIApp = app if app is not None else _not_found
        self.metrics = metrics
        # Replaced as a whole on a configuration reload (a new token_env value).
        self.token: bytes | None = token.encode() if token else None

    def set_token(self, token: str | None) -> None:
        self.token = token.encode() if token else None

    def _authorized(self, scope: Scope) -> bool:
        token = self.token
        if token is None:
            return True
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credentials = bytes(value).partition(b" ")
                if scheme.lower() == b"bearer":
                    return hmac.compare_digest(credentials.strip(), token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != PATH or self.metrics is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        method = scope.get("method", "")
        if method != "GET":
            status = 405
            await _send(send, 405, b"Method Not Allowed\n", b"text/plain", ((b"allow", b"GET"),))
        elif not self._authorized(scope):
            status = 401
            await _send(
                send,
                401,
                b"Unauthorized\n",
                b"text/plain",
                ((b"www-authenticate", b'Bearer realm="shardgate metrics"'),),
            )
        else:
            status = 200
            body = self.metrics.render().encode()
            await _send(send, 200, body, CONTENT_TYPE.encode())
        level = logging.DEBUG if status == 200 else logging.WARNING
        log.log(level, "%s %s %s %d", client[0] if client else "-", method, PATH, status)
