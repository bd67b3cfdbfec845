"""Reading one partition's answer for the merge, at the pace the merge takes its rows."""

from __future__ import annotations

from proxy.wire.packets import Capability, read_lenenc_int
from proxy.wire.stream import PacketConnection

# Bytes a partition's connection may hold unread while the merge takes rows from the others.
BUFFER_LIMIT = 1 << 20


class ResultPayloads:
    """The payloads of the answer to the command just sent on a connection (one result set,
    text or binary, or an OK or ERR), up to and including its last packet, as an async
    iterator -- and, for the merge's inner loop, :meth:`next_nowait`: the next payload when it
    is already buffered, without a coroutine per row.

    Send the statement to every partition first, then hand these to ``merge_results``: the
    partitions work in parallel. While the answer is read, the connection stops reading its
    socket whenever ``buffer_limit`` bytes wait unread, so a partition whose rows the merge
    does not need yet is held back by TCP rather than buffered in the proxy (the limit is lifted
    at the answer's end, or by :meth:`aclose`). If the merge stops early it reads the rest
    (``merge_results`` drains every partition)."""

    __slots__ = ("_conn", "_definitions", "_deprecate_eof", "_max", "_phase")

    def __init__(
        self,
        conn: PacketConnection,
        *,
        capabilities: int,
        max_packet: int,
        buffer_limit: int = BUFFER_LIMIT,
    ) -> None:
        self._conn = conn
        self._max = max_packet
        self._deprecate_eof = bool(capabilities & Capability.DEPRECATE_EOF)
        self._phase = _FIRST
        self._definitions = 0
        conn.limit_reading(buffer_limit)

    def __aiter__(self) -> ResultPayloads:
        return self

    async def __anext__(self) -> bytes:
        if self._phase == _DONE:
            raise StopAsyncIteration
        packet = self._conn.take_nowait(self._max)
        if packet is None:
            packet = await self._conn.read(self._max)
        return self._advance(packet[1])

    def next_nowait(self) -> bytes | None:
        """The next payload if it is already received whole; None if it is not (or the
        answer has ended)."""
        if self._phase == _DONE:
            return None
        packet = self._conn.take_nowait(self._max)
        return None if packet is None else self._advance(packet[1])

    @property
    def max_packet(self) -> int:
        return self._max

    def rows_buffer(self) -> bytearray | None:
        """While rows are read: the connection's receive buffer, whose whole row packets a
        ``RowMerge`` may cut itself (plain rows only: it leaves the answer's last packet, and
        anything else, to this reader); then call :meth:`consumed`. None otherwise."""
        return self._conn.receive_buffer() if self._phase == _ROWS else None

    def consumed(self) -> None:
        """Rows were cut from :meth:`rows_buffer` (the connection may read again)."""
        self._conn.consumed()

    async def aclose(self) -> None:
        """Stop reading this answer (what is left of it stays unread): the limit is lifted."""
        self._finish()

    def _finish(self) -> None:
        if self._phase != _DONE:
            self._phase = _DONE
            self._conn.limit_reading(0)

    def _advance(self, payload: bytes) -> bytes:
        phase = self._phase
        head = payload[:1]
        if phase == _ROWS:
            if head == b"\xff" or (head == b"\xfe" and len(payload) < 0xFFFFFF):
                self._finish()
        elif phase == _DEFINITIONS:
            self._definitions -= 1
            if not self._definitions:
                self._phase = _ROWS
        elif head in (b"\xff", b"\x00"):
            self._finish()
        else:
            count, _ = read_lenenc_int(payload, 0)
            self._definitions = (count or 0) + (0 if self._deprecate_eof else 1)
            self._phase = _DEFINITIONS if self._definitions else _ROWS
        return payload


_FIRST, _DEFINITIONS, _ROWS, _DONE = range(4)


def result_payloads(
    conn: PacketConnection,
    *,
    capabilities: int,
    max_packet: int,
    buffer_limit: int = BUFFER_LIMIT,
) -> ResultPayloads:
    """:class:`ResultPayloads` of the answer to the command just sent on ``conn``.
    ``capabilities``: the connection's (DEPRECATE_EOF decides where the column definitions
    end)."""
    return ResultPayloads(
        conn, capabilities=capabilities, max_packet=max_packet, buffer_limit=buffer_limit
    )
