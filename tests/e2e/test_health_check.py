"""A load balancer's TCP health check against a real `shardgate serve`: connect, read the
greeting (or not), close (FIN or RST) -- counted in ``shardgate_connections_aborted_total
{stage="handshake"}``, never logged at INFO or above. A logged-in client that goes away without
COM_QUIT counts as ``stage="session"``."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import httpx

from proxy.dev.localshard import ShardEndpoint, free_port
from tests.e2e.conftest import ProxyEnv, write_config
from tests.e2e.served import serve, stop
from tests.metrics_text import parse_exposition

ROUNDS = 20
LIFECYCLE = ("shardgate.server", "shardgate.admin", "uvicorn.error")
ABORTED = ("shardgate_connections_aborted_total", (("stage", "handshake"),))


def _check(port: int, read: str, reset: bool) -> None:
    """One health check: connect, read the greeting (``"all"``), its first bytes
    (``"some"``: the unread rest makes the kernel reset the connection) or nothing
    (``"none"``), then close -- with RST if ``reset``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if read == "all":
            assert sock.recv(1024)[4] == 10  # protocol version 10: a greeting
        elif read == "some":
            assert len(sock.recv(5, socket.MSG_WAITALL)) == 5
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _aborted(admin_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).text
    return parse_exposition(text).get(ABORTED, 0.0)


def test_tcp_health_checks_are_counted_not_logged(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    port, admin_port = free_port(), free_port()
    config = tmp_path / "shardgate.toml"
    log_file = tmp_path / "shardgate.log"
    write_config(config, shards, port)
    config.write_text(
        config.read_text()
        + f'[admin]\nport = {admin_port}\n[metrics]\nenabled = true\n[log]\nfile = "{log_file}"\n'
    )
    proc = serve(config, port)  # its own readiness probe is one such check
    try:
        before = _aborted(admin_port)
        styles = [("all", False), ("all", True), ("some", False), ("none", False), ("none", True)]
        for _ in range(ROUNDS):
            for read, reset in styles:
                _check(port, read, reset)
        expected = before + ROUNDS * len(styles)
        deadline = time.monotonic() + 10
        while _aborted(admin_port) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _aborted(admin_port) == expected
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    lines = log_file.read_text().splitlines()
    # Only the two listeners starting and stopping: nothing about the checks, at any level.
    unexpected = [
        line
        for line in lines
        if " INFO " not in line or not any(f" {name}: " in line for name in LIFECYCLE)
    ]
    assert unexpected == [], "\n".join(lines)


def test_a_client_gone_without_quit_after_login_is_counted(proxy: ProxyEnv) -> None:
    aborted = proxy.server.ctx.metrics.aborted_session

    def settled(expected: float) -> bool:
        deadline = time.monotonic() + 5
        while aborted.value != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return aborted.value == expected

    before = aborted.value
    proxy.connect().close()  # COM_QUIT: a goodbye
    gone = proxy.connect()
    assert gone._sock is not None
    gone._sock.shutdown(socket.SHUT_RDWR)  # no goodbye
    assert settled(before + 1)
    time.sleep(0.3)
    assert aborted.value == before + 1  # the one that said goodbye is not counted
    gone.close()
