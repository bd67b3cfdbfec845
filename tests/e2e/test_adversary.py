"""An attacker who reads the code: what an earlier adversarial pass found weak, each pinned.

- a client that pipelines statements and never reads the answers is not buffered without
  bound: the proxy stops reading it;
- statements whose structure needs the parser are bounded in size (1235 above it);
- passwords never show in SHOW PROCESSLIST's Info, whatever the statement's spelling;
- names that are not valid UTF-8 get a proper error, never a lost session;
- statements MariaDB and the analyser might read differently, each tried with a grant on one
  table only, are refused by the proxy itself (never left to the shard's mirrored account).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from proxy.wire.stream import READ_HIGH_WATER
from tests.e2e.conftest import ProxyEnv
from tests.e2e.test_enforcement import Env, rows

COM_QUERY = 3


def _packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


class Adversary(Env):
    """Env plus a secret table, a public one, and an account holding grants on the public
    one only."""

    def __init__(self, proxy: ProxyEnv) -> None:
        super().__init__(proxy)
        for statement in (
            "DROP TABLE IF EXISTS adv_pub, adv_sec",
            "CREATE TABLE adv_pub (id INT PRIMARY KEY, v VARCHAR(40))",
            "INSERT INTO adv_pub VALUES (1, 'public')",
            "CREATE TABLE adv_sec (id INT PRIMARY KEY, v VARCHAR(40))",
            "INSERT INTO adv_sec VALUES (1, 'TOPSECRET')",
        ):
            self.shard_exec(statement)
        self.user = self.create_account(
            [("SELECT, INSERT, UPDATE, DELETE, CREATE, DROP", "adv_pub")], prefix="adv"
        )

    def close(self) -> None:
        try:
            self.shard_exec("DROP TABLE IF EXISTS adv_pub, adv_sec")
        finally:
            super().close()


@pytest.fixture(scope="module")
def adv(proxy: ProxyEnv) -> Iterator[Adversary]:
    env = Adversary(proxy)
    try:
        yield env
    finally:
        env.close()


# -------------------------------------------------------------------------- flow control


def test_a_client_that_never_reads_is_not_buffered_without_bound(
    proxy: ProxyEnv, adv: Adversary
) -> None:
    """Statements sent ahead while the answers go unread stay in the client's socket: the
    proxy stops reading it once about READ_HIGH_WATER bytes wait behind a whole command, and
    every statement is answered, in order, once the client reads again."""
    conn = proxy.connect(read_timeout=120)
    session = proxy.server.ctx.sessions[conn.thread_id()]
    # Each answer (300 kB) is over the client's write high water mark, so the session waits
    # on its relay after the first one; each statement carries 64 kB of comment.
    padding = b"/*" + b"p" * (64 * 1024) + b"*/"
    count = 256  # 16 MiB of statements in all
    statements = [b"SELECT %d, REPEAT('x', 300000) " % i + padding for i in range(count)]
    data = b"".join(_packet(0, bytes([COM_QUERY]) + s) for s in statements)
    sock: socket.socket = conn._sock
    sent = threading.Event()
    failure: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(data)
            sent.set()
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    # Without flow control the proxy takes all 16 MiB at once (loopback, a few ms); with it
    # the sender stays blocked for as long as nothing is read.
    sent.wait(5)
    buffered = len(session.client._buf)
    assert not failure
    assert not sent.is_set(), "the proxy read 16 MiB of statements nobody reads answers to"
    assert session.client.input_paused
    assert buffered <= READ_HIGH_WATER + len(data) // count + 256 * 1024
    # The client reads again: every statement is answered, in order, and the session goes on.
    for i in range(count):
        conn._next_seq_id = 1  # as after PyMySQL's own _execute_command
        conn._read_query_result()
        result = conn._result
        assert result is not None and result.rows is not None
        assert result.rows[0][0] == i and len(result.rows[0][1]) == 300000
    sender.join(60)
    assert sent.is_set()
    assert rows(conn, "SELECT 1") == [(1,)]
    assert not session.client.input_paused
    conn.close()
