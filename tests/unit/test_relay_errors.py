"""A shard's ERR packet relayed to a client passes through the client connection's ``errors``
(a session's: its account named instead of the shard's mirror), wherever it is in the answer
(its first packet, after an OK of a multi-statement answer, after rows) and wherever the
chunks the shard's bytes arrive in fall; every other byte is relayed as it came, and an
answer without an ERR is relayed as it came, chunk by chunk (no byte held back but those
that may begin an ERR)."""

from __future__ import annotations

import pytest

from proxy.backend.connection import BackendConnection, BackendTarget
from proxy.backend.mirror import client_account_named
from proxy.wire.packets import Capability, build_err, frame
from proxy.wire.stream import PacketConnection, ResponseKind, ResponseScanner

CAPS = int(Capability.PROTOCOL_41 | Capability.TRANSACTIONS | Capability.MULTI_RESULTS)
MIRROR = b"'sgm_1_6e1abf3a'@'%'"
DENIED = b"execute command denied to user " + MIRROR + b" for routine 'easydb.f3'"
NAMED = b"execute command denied to user 'alice'@'10.1.2.3' for routine 'easydb.f3'"


class _Client(PacketConnection):
    """The client end of a relay: what reaches it, and in how many writes."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.writes: list[bytes] = []
        self.errors = _rename

    def write_raw(self, data: bytes | bytearray) -> None:
        self.out += data
        self.writes.append(bytes(data))


def _rename(payload: bytes) -> bytes:
    return payload[:9] + client_account_named(payload[9:], "alice", "10.1.2.3")


def _err(message: bytes) -> bytes:
    return build_err(errno=1370, sqlstate="42000", message=message.decode(), capabilities=CAPS)


_OK_MORE = b"\x00\x00\x00\x0a\x00\x00\x00"  # SERVER_MORE_RESULTS_EXISTS | autocommit
_OK = b"\x00\x00\x00\x02\x00\x00\x00"
_EOF = b"\xfe\x00\x00\x02\x00"
_RESULT = [
    b"\x01",
    b"\x03def\x00\x00\x00\x01a\x01a\x0c\x21\x00\x0b\x00\x00\x00\x08\x00\x00\x00\x00\x00",
]
_ROWS = [b"\x011", b"\x0222", b"\x03333"]

# (kind, the answer's packets before its ERR)
ANSWERS = [
    (ResponseKind.QUERY, []),  # SELECT f3(1): the first packet
    (ResponseKind.PREPARE, []),
    (ResponseKind.SINGLE, []),  # COM_INIT_DB
    (ResponseKind.QUERY, [_OK_MORE]),  # SELECT 1; SELECT f3(1)
    (ResponseKind.QUERY, [*_RESULT, _EOF, *_ROWS]),  # killed after some rows
    (ResponseKind.FETCH, _ROWS),
]


def _wire(payloads: list[bytes]) -> bytes:
    return b"".join(frame(seq + 1, p) for seq, p in enumerate(payloads))


def _relay(
    kind: ResponseKind, data: bytes, chunk: int, every: bool = False
) -> tuple[_Client, BackendConnection]:
    conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "easydb"))
    conn.capabilities = CAPS
    client = _Client()
    ended: list[ResponseScanner] = []
    columns = (lambda payload: payload) if every else None
    conn.start_relay(client, kind, lambda s, e: ended.append(s), columns, every)
    for at in range(0, len(data), chunk):
        conn.data_received(data[at : at + chunk])
    assert len(ended) == 1
    return client, conn


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5, 6, 9, 13, 64, 4096])
@pytest.mark.parametrize(("kind", "before"), ANSWERS)
def test_an_err_names_the_clients_account_wherever_the_chunks_fall(
    kind: ResponseKind, before: list[bytes], chunk: int
) -> None:
    client, conn = _relay(kind, _wire([*before, _err(DENIED)]), chunk)
    assert bytes(client.out) == _wire([*before, _err(NAMED)])
    assert b"sgm_" not in client.out and not conn.broken


_EOF_MORE = b"\xfe\x00\x00\x0a\x00"


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5, 6, 9, 13, 64, 4096])
@pytest.mark.parametrize(
    "before",
    [
        [*_RESULT, _EOF, *_ROWS],  # after rows of the first result set
        [*_RESULT, _EOF, *_ROWS, _EOF_MORE, *_RESULT, _EOF, _ROWS[0]],  # of the second
        [*_RESULT, _EOF, _EOF_MORE, *_RESULT, _EOF],  # after the second's definitions
    ],
)
def test_an_err_after_rows_of_an_answer_whose_every_head_is_rewritten_is_named(
    before: list[bytes], chunk: int
) -> None:
    """The relay that takes each result set's head as packets (``every``: a multi-statement
    answer, a CALL) passes rows as whole frames; the ERR ending them passes through the
    client's ``errors`` too."""
    client, conn = _relay(ResponseKind.QUERY, _wire([*before, _err(DENIED)]), chunk, True)
    assert bytes(client.out) == _wire([*before, _err(NAMED)])
    assert b"sgm_" not in client.out and not conn.broken


@pytest.mark.parametrize("chunk", [1, 4, 5, 7, 4096])
def test_other_errors_and_answers_pass_as_they_came(chunk: int) -> None:
    other = _err(b"Table 'easydb.t' doesn't exist")
    for kind, payloads in (
        (ResponseKind.QUERY, [other]),
        (ResponseKind.QUERY, [*_RESULT, _EOF, *_ROWS, _EOF]),
        (ResponseKind.QUERY, [_OK_MORE, _OK]),
        (ResponseKind.SINGLE, [_OK]),
    ):
        data = _wire(payloads)
        client, conn = _relay(kind, data, chunk)
        assert bytes(client.out) == data and not conn.broken


def test_a_whole_answer_is_one_write_and_rows_are_not_held() -> None:
    data = _wire([*_RESULT, _EOF, *_ROWS, _EOF])
    client, _ = _relay(ResponseKind.QUERY, data, 4096)
    assert client.writes == [data]
    # Chunks cut inside rows' payloads go out as they come.
    cut = len(_wire([*_RESULT, _EOF])) + 6
    conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "easydb"))
    conn.capabilities = CAPS
    client = _Client()
    conn.start_relay(client, ResponseKind.QUERY, lambda s, e: None)
    conn.data_received(data[:cut])
    assert client.writes == [data[:cut]]


def test_no_errors_hook_relays_the_err_as_it_came() -> None:
    data = _wire([_OK_MORE, _err(DENIED)])
    conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "p", "easydb"))
    conn.capabilities = CAPS
    client = _Client()
    client.errors = None
    conn.start_relay(client, ResponseKind.QUERY, lambda s, e: None)
    for at in range(0, len(data), 3):
        conn.data_received(data[at : at + 3])
    assert bytes(client.out) == data


def test_bytes_after_the_answer_break_the_connection_after_the_renamed_err() -> None:
    data = _wire([_err(DENIED)]) + frame(9, _OK)
    client, conn = _relay(ResponseKind.QUERY, data, 4096)
    assert bytes(client.out) == _wire([_err(NAMED)]) and conn.broken


def test_the_mirror_is_renamed_at_any_host_and_nothing_else_is() -> None:
    """1370 names the mirror at its account's host, 1142 at the host the proxy connects
    from; a name that only looks like a backend account's stays."""
    for host in (b"%", b"localhost", b"10.0.0.7"):
        text = b"SELECT command denied to user 'sgm_12_0a1b2c3d'@'" + host + b"' for table `t`"
        assert client_account_named(text, "bob", "::1") == (
            b"SELECT command denied to user 'bob'@'::1' for table `t`"
        )
    for text in (
        b"Table 'sgm_12_0a1b2c3d' doesn't exist",
        b"denied to user 'sgm_12_xyz'@'%'",
        b"denied to user 'sgmx_1_0a1b2c3d'@'%'",
    ):
        assert client_account_named(text, "bob", "::1") == text
