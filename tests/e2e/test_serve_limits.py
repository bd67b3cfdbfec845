"""`shardgate serve` and `database create` as subprocesses, SIGTERM draining, and the
pre-authentication limits (packet size, handshake timeout)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.wire.packets import Capability, parse_err
from tests.e2e.conftest import write_config


def _bin() -> str:
    return str(Path(sys.executable).with_name("shardgate"))


@pytest.fixture
def served(shards: list[ShardEndpoint], tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    config = tmp_path / "shardgate.toml"
    write_config(config, shards, port, "handshake_timeout = 1.0\nmax_handshake_packet = 4096\n")
    created = subprocess.run(
        [
            _bin(),
            "--config",
            str(config),
            "database",
            "create",
            "servedb",
            "--shard",
            "s1",
            "--admin-password-stdin",
            "--ro-password-stdin",
        ],
        input="Served#pass1\nServedRO#1\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert "Served#pass1" not in created.stdout + created.stderr
    again = subprocess.run(
        [_bin(), "--config", str(config), "database", "create", "servedb", "--shard", "s1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0
    assert again.stderr.strip().endswith("database 'servedb' already exists")
    proc = subprocess.Popen(
        [_bin(), "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port


def test_database_create_generates_passwords_once(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    config = tmp_path / "shardgate.toml"
    write_config(config, shards, free_port())
    out = subprocess.run(
        [_bin(), "--config", str(config), "database", "create", "gendb", "--shard", "s0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Database 'gendb' created on shard 's0'."
    assert lines[1].startswith('Account "gendb" created with password "')
    assert lines[2].startswith('Account "gendb_RO" created with password "')
    unknown = subprocess.run(
        [_bin(), "--config", str(config), "database", "create", "x1db", "--shard", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode != 0
    assert "unknown shard 'nope'" in unknown.stderr


def test_sigterm_drains_and_exits_zero(served: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = served
    conn = pymysql.connect(
        host="127.0.0.1", port=port, user="servedb", password="Served#pass1", database="servedb"
    )
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Served#pass1" not in out
    # New connections are refused once the proxy has gone.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _greeting(sock: socket.socket) -> None:
    header = sock.recv(4, socket.MSG_WAITALL)
    sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)


def test_pre_auth_packet_limit_and_timeout(served: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = served
    try:
        # A handshake response larger than the pre-authentication limit: 1153, then closed.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            _greeting(sock)
            sock.sendall((1 << 20).to_bytes(3, "little") + b"\x01")
            header = sock.recv(4, socket.MSG_WAITALL)
            body = sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
            assert parse_err(body, Capability.PROTOCOL_41).errno == 1153
            assert sock.recv(10) == b""
        # A client that never answers the greeting is cut off after handshake_timeout.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            _greeting(sock)
            started = time.monotonic()
            assert sock.recv(10) == b""
            assert time.monotonic() - started < 4
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
