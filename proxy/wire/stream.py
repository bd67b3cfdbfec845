"""Packet framing over asyncio streams, and the response scanner used to relay backend answers.

The scanner is pure: it is fed packet payloads one at a time and says when a response is
complete. The relay uses it to forward whole chunks of backend bytes verbatim, decoding nothing
but the first bytes of each packet and the status flags of terminal OK/EOF packets.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Protocol

from proxy.wire.packets import (
    MAX_PAYLOAD,
    ServerStatus,
    frame,
    parse_eof,
    parse_ok_status,
    parse_stmt_prepare_ok,
)


class ByteReader(Protocol):
    """What PacketStream reads from: an asyncio.StreamReader or a TLS wrapper of one."""

    async def readexactly(self, n: int) -> bytes: ...

    async def read(self, n: int = -1) -> bytes: ...


class ByteWriter(Protocol):
    """What PacketStream and the relay write to: an asyncio.StreamWriter or a TLS wrapper."""

    @property
    def transport(self) -> asyncio.WriteTransport: ...

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    async def drain(self) -> None: ...

    def is_closing(self) -> bool: ...

    def close(self) -> None: ...


# Plain ints on the hot path: IntFlag arithmetic costs microseconds per packet.
_MORE_RESULTS_EXISTS = int(ServerStatus.MORE_RESULTS_EXISTS)
_CURSOR_EXISTS = int(ServerStatus.CURSOR_EXISTS)


class ConnectionLost(Exception):
    """The peer closed the connection or sent a truncated packet."""


class PacketTooLarge(Exception):
    """A packet larger than the configured limit arrived."""


class PacketStream:
    """Reads and writes MySQL packets (joining multi-frame payloads) on a stream pair."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: ByteReader, writer: ByteWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self, max_size: int) -> tuple[int, bytes]:
        """One logical packet: (sequence id of its last frame, payload)."""
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                header = await self.reader.readexactly(4)
                length = header[0] | header[1] << 8 | header[2] << 16
                total += length
                if total > max_size:
                    raise PacketTooLarge(total)
                payload = await self.reader.readexactly(length) if length else b""
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise ConnectionLost(str(exc)) from None
            if length < MAX_PAYLOAD and not parts:
                return header[3], payload
            parts.append(payload)
            if length < MAX_PAYLOAD:
                return header[3], b"".join(parts)

    def write(self, seq: int, payload: bytes) -> int:
        """Queue a packet; returns the next sequence id."""
        data = frame(seq, payload)
        self.writer.write(data)
        # frame() splits at 16 MiB; each frame consumed one sequence id.
        return (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF

    def write_many(self, seq: int, payloads: list[bytes]) -> int:
        for payload in payloads:
            seq = self.write(seq, payload)
        return seq

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise ConnectionLost(str(exc)) from None

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class ResponseKind(enum.Enum):
    """What a backend answers a command with."""

    QUERY = 1  # OK | ERR | result set(s), text or binary rows
    PREPARE = 2  # COM_STMT_PREPARE: ERR | PREPARE_OK [params EOF] [columns EOF]
    FETCH = 3  # COM_STMT_FETCH: ERR | rows EOF
    FIELD_LIST = 4  # COM_FIELD_LIST: ERR | column definitions EOF
    SINGLE = 5  # exactly one packet (OK, ERR, EOF, or COM_STATISTICS' string)


class _State(enum.Enum):
    FIRST = 1
    COLUMNS = 2
    COLUMNS_EOF = 3
    ROWS = 4
    PREPARE_PARAMS = 5
    PREPARE_COLUMNS = 6


class ProtocolViolation(Exception):
    """The backend sent something the proxy will not relay."""


class ResponseScanner:
    """Follows one command's response, packet by packet, to find where it ends.

    ``packet()`` returns True on the packet that completes the response. The scanner records
    the status flags of the final OK/EOF and, for COM_STMT_PREPARE, the statement id.
    """

    __slots__ = (
        "_capabilities",
        "_continuation",
        "_kind",
        "_remaining",
        "_state",
        "error",
        "prepared_columns",
        "prepared_params",
        "statement_id",
        "status",
    )

    def __init__(self, kind: ResponseKind, capabilities: int) -> None:
        self._kind = kind
        self._capabilities = capabilities
        self._state = _State.ROWS if kind is ResponseKind.FETCH else _State.FIRST
        if kind is ResponseKind.FIELD_LIST:
            self._state = _State.COLUMNS_EOF
        self._remaining = 0
        self._continuation = False
        self.status: int | None = None
        self.error = False
        self.statement_id: int | None = None
        self.prepared_params = 0
        self.prepared_columns = 0

    def frame(self, buf: bytes | bytearray, start: int, end: int) -> bool:
        """Feed one wire frame's payload (``buf[start:end]``). True when the response is done."""
        length = end - start
        if self._continuation:
            # The tail of a packet larger than 16 MiB: never a terminal packet.
            self._continuation = length == MAX_PAYLOAD
            return False
        self._continuation = length == MAX_PAYLOAD
        if length == 0:
            raise ProtocolViolation("empty packet")
        return self._packet(buf, start, end, buf[start])

    def _terminal_ok(self, payload: bytes) -> bool:
        self.status = parse_ok_status(payload, self._capabilities)
        return not self.status & _MORE_RESULTS_EXISTS

    def _terminal_eof(self, payload: bytes) -> bool:
        self.status = parse_eof(payload)[1]
        return not self.status & _MORE_RESULTS_EXISTS

    def _packet(self, buf: bytes | bytearray, start: int, end: int, first: int) -> bool:
        state = self._state
        length = end - start
        if state is _State.ROWS:
            if first == 0xFE and length < 9:
                done = self._terminal_eof(bytes(buf[start:end]))
                if not done:
                    self._state = _State.FIRST
                return done
            if first == 0xFF:
                self.error = True
                return True
            return False
        if state is _State.FIRST:
            if first == 0xFF:
                self.error = True
                return True
            if self._kind is ResponseKind.SINGLE:
                if first == 0xFE and length < 9:
                    self.status = parse_eof(bytes(buf[start:end]))[1]
                elif first == 0x00:
                    self.status = parse_ok_status(bytes(buf[start:end]), self._capabilities)
                return True
            if self._kind is ResponseKind.PREPARE:
                if first != 0x00:
                    raise ProtocolViolation("unexpected COM_STMT_PREPARE response")
                ok = parse_stmt_prepare_ok(bytes(buf[start:end]))
                self.statement_id = ok.statement_id
                self.prepared_params = ok.num_params
                self.prepared_columns = ok.num_columns
                if ok.num_params:
                    self._remaining = ok.num_params
                    self._state = _State.PREPARE_PARAMS
                    return False
                if ok.num_columns:
                    self._remaining = ok.num_columns
                    self._state = _State.PREPARE_COLUMNS
                    return False
                return True
            if first == 0x00:
                done = self._terminal_ok(bytes(buf[start:end]))
                return done
            if first == 0xFB:
                # LOCAL INFILE request: never advertised, never relayed.
                raise ProtocolViolation("backend asked for LOCAL INFILE")
            if first == 0xFE:
                raise ProtocolViolation("unexpected EOF at start of response")
            # A column count: that many column definitions follow, then EOF.
            self._remaining = _lenenc_at(buf, start)
            self._state = _State.COLUMNS
            return False
        if state is _State.COLUMNS:
            self._remaining -= 1
            if self._remaining == 0:
                self._state = _State.COLUMNS_EOF
            return False
        if state is _State.COLUMNS_EOF:
            if first == 0xFF:
                self.error = True
                return True
            if first == 0xFE and length < 9:
                status = parse_eof(bytes(buf[start:end]))[1]
                if self._kind is ResponseKind.FIELD_LIST:
                    self.status = status
                    return True
                if status & _CURSOR_EXISTS:
                    # COM_STMT_EXECUTE opened a cursor: rows come with COM_STMT_FETCH.
                    self.status = status
                    return True
                self._state = _State.ROWS
                return False
            if self._kind is ResponseKind.FIELD_LIST:
                return False
            raise ProtocolViolation("expected EOF after column definitions")
        if state is _State.PREPARE_PARAMS:
            if self._remaining == 0:
                # The EOF closing the parameter definitions.
                if self.prepared_columns:
                    self._remaining = self.prepared_columns
                    self._state = _State.PREPARE_COLUMNS
                    return False
                return True
            self._remaining -= 1
            return False
        if state is _State.PREPARE_COLUMNS:
            if self._remaining == 0:
                return True
            self._remaining -= 1
            return False
        raise AssertionError(state)


def _lenenc_at(buf: bytes | bytearray, pos: int) -> int:
    first = buf[pos]
    if first < 0xFB:
        return first
    if first == 0xFC:
        return buf[pos + 1] | buf[pos + 2] << 8
    if first == 0xFD:
        return buf[pos + 1] | buf[pos + 2] << 8 | buf[pos + 3] << 16
    if first == 0xFE:
        return int.from_bytes(buf[pos + 1 : pos + 9], "little")
    raise ProtocolViolation("bad length-encoded integer")
