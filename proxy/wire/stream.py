"""MySQL packet connections as asyncio Protocols, and the scanner that relays responses.

``PacketConnection`` is an ``asyncio.Protocol``: bytes land in one buffer and ``read()`` awaits
only when no whole packet is buffered, so there is no StreamReader and no per-packet await on
the way. ``ClientConnection`` adds server-side TLS (memory BIOs) and the *fast hook*: while a
session is idle, a command that arrives as one whole packet is offered to a synchronous
callback first, which may authorize and forward it without waking the session's task.

The scanner is pure: fed the backend's bytes as they come, it says where a response ends, so
the relay forwards whole chunks verbatim, decoding only the packets that end a response.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections.abc import Callable
from typing import cast

from proxy.wire.packets import (
    MAX_PAYLOAD,
    Capability,
    ProtocolError,
    ServerStatus,
    frame,
    frame_parts,
    parse_eof,
    parse_ok_status,
    parse_stmt_prepare_ok,
)
from proxy.wire.tls import TlsLayer

# Plain ints on the hot path: IntFlag arithmetic costs microseconds per packet.
_MORE_RESULTS_EXISTS = int(ServerStatus.MORE_RESULTS_EXISTS)
_CURSOR_EXISTS = int(ServerStatus.CURSOR_EXISTS)
_CACHE_METADATA = int(Capability.MARIADB_CLIENT_CACHE_METADATA)
# Pause the peer that feeds a connection once this much is waiting to be sent on it.
WRITE_HIGH_WATER = 256 * 1024
# Payloads from this size on are written as pieces (frame headers and views), not copied whole.
LARGE_WRITE = 1024 * 1024


class ConnectionLost(Exception):
    """The peer closed the connection or sent a truncated packet."""


class PacketTooLarge(Exception):
    """A packet larger than the configured limit arrived. ``next_seq``: the sequence number an
    answer to it carries (after the frame whose length crossed the limit, as MariaDB counts)."""

    def __init__(self, total: int, next_seq: int) -> None:
        super().__init__(f"packet of at least {total} bytes")
        self.total = total
        self.next_seq = next_seq


class PacketConnection(asyncio.Protocol):
    """One TCP connection carrying MySQL packets; ``read()`` joins multi-frame payloads."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._lost: BaseException | None = None
        self.write_paused = False
        self.reading_paused = False
        # The connection whose bytes are being relayed onto this one: paused with our writes.
        self.feeder: PacketConnection | None = None
        # > 0: stop reading the socket while this many bytes wait unread, until half of them
        # are read (a merge reading several partitions at the pace the client takes rows: the
        # kernel's buffers and TCP hold the rest, so memory stays flat).
        self.read_limit = 0
        self._limit_paused = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self.read_limit and len(self._buf) > self.read_limit and not self._limit_paused:
            self._pause_for_limit()
        self._wake()

    @property
    def unread(self) -> int:
        """Bytes received and not yet read as packets."""
        return len(self._buf)

    def limit_reading(self, limit: int) -> None:
        """Set ``read_limit`` (0: none, and reading resumes if the limit had paused it)."""
        self.read_limit = limit
        if not limit and self._limit_paused:
            self._resume_for_limit()

    def _pause_for_limit(self) -> None:
        if self.transport is not None and not self.is_closing():
            self._limit_paused = True
            if not self.reading_paused:
                self.transport.pause_reading()

    def _resume_for_limit(self) -> None:
        self._limit_paused = False
        if not self.reading_paused and self.transport is not None and not self.is_closing():
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._lost = exc if exc is not None else ConnectionLost("connection closed")
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.feeder is not None:
            self.feeder.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.feeder is not None:
            self.feeder.resume_reading()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reading -----------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self.is_closing():
            self.reading_paused = True
            if not self._limit_paused:
                self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.is_closing():
            self.reading_paused = False
            if not self._limit_paused:
                self.transport.resume_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, max_size: int) -> tuple[int, bytes]:
        """One logical packet: (sequence id of its last frame, payload)."""
        while True:
            packet = self._take(max_size)
            if packet is not None:
                return packet
            if self._eof:
                raise ConnectionLost("connection closed")
            if self._limit_paused:
                self._resume_for_limit()  # a packet larger than the limit: read it whole
            await self._wait()

    async def _wait(self) -> None:
        """Until more bytes arrive, or the connection ends."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _take(self, max_size: int) -> tuple[int, bytes] | None:
        buf = self._buf
        n = len(buf)
        pos = 0
        total = 0
        spans: list[tuple[int, int]] = []
        while True:
            if n - pos < 4:
                return None
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            total += length
            if total > max_size:
                raise PacketTooLarge(total, (buf[pos + 3] + 1) & 0xFF)
            end = pos + 4 + length
            if end > n:
                return None
            seq = buf[pos + 3]
            spans.append((pos + 4, end))
            pos = end
            if length < MAX_PAYLOAD:
                if len(spans) == 1:
                    payload = bytes(buf[spans[0][0] : end])
                else:
                    # one copy of a large packet: views of the buffer, joined
                    with memoryview(buf) as view:
                        payload = b"".join([view[a:b] for a, b in spans])
                del buf[:pos]
                if self._limit_paused and len(buf) <= self.read_limit // 2:
                    self._resume_for_limit()
                return seq, payload

    # -- writing -----------------------------------------------------------------------------

    def write_raw(self, data: bytes | bytearray) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def write(self, seq: int, payload: bytes) -> int:
        """Queue a packet; returns the next sequence id."""
        if len(payload) < LARGE_WRITE:
            self.write_raw(frame(seq, payload))
        else:
            self.write_parts(frame_parts(seq, payload))
        # frame() splits at 16 MiB; each frame consumed one sequence id.
        return (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF

    def write_parts(self, parts: list[bytes | memoryview]) -> None:
        """A vectored write: a large payload is not copied into one buffer first."""
        if self.transport is not None:
            self.transport.writelines(parts)

    def write_many(self, seq: int, payloads: list[bytes]) -> int:
        for payload in payloads:
            seq = self.write(seq, payload)
        return seq

    async def drain(self) -> None:
        if self._lost is not None:
            raise ConnectionLost(str(self._lost))
        if not self.write_paused:
            return
        self._drain_waiter = asyncio.get_running_loop().create_future()
        await self._drain_waiter
        if self._lost is not None:
            raise ConnectionLost(str(self._lost))

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def get_extra_info(self, name: str, default: object = None) -> object:
        if self.transport is None:
            return default
        return self.transport.get_extra_info(name, default)


FastHook = Callable[[bytes], bool]


class ClientConnection(PacketConnection):
    """A client's connection to the proxy: optional TLS, and the fast hook.

    ``fast`` (set by the session while it waits for a command) is offered each command that
    arrives as exactly one whole packet; if it returns True the packet is consumed. While
    ``hold`` is set (a fast command's response is still being relayed), arriving bytes are
    buffered without waking the reader.
    """

    def __init__(self, on_made: Callable[[ClientConnection], None]) -> None:
        super().__init__()
        self._on_made = on_made
        self.tls: TlsLayer | None = None
        self.fast: FastHook | None = None
        self.hold = False
        # Bytes of the MySQL protocol from and to the client (TLS removed): Bytes_*.
        self.bytes_received = 0
        self.bytes_sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.tls is not None:
            try:
                data = self.tls.receive(data)
            except ssl.SSLError as exc:
                self._lost = exc
                self.abort()
                return
            if not data:
                if self.tls.closed:
                    self.eof_received()
                else:
                    self._wake()  # the handshake may have completed
                return
        self.bytes_received += len(data)
        fast = self.fast
        if fast is not None and not self._buf:
            n = len(data)
            if n > 4:
                length = data[0] | data[1] << 8 | data[2] << 16
                if length + 4 == n and length < MAX_PAYLOAD and fast(data):
                    return
        self._buf += data
        if not self.hold:
            self._wake()

    def release(self) -> None:
        """A fast command is complete: commands that arrived meanwhile go to the reader."""
        self.hold = False
        if self._buf or self._eof:
            self._wake()

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Switch to TLS; bytes already buffered past the SSLRequest are the ClientHello."""
        assert self.transport is not None
        leftover = bytes(self._buf)
        self._buf.clear()
        self.tls = TlsLayer(context, self.transport)
        plain = self.tls.receive(leftover)
        if plain:  # pragma: no cover - nothing can follow a ClientHello before our answer
            self._buf += plain
        while not self.tls.handshake_done:
            if self._lost is not None or self._eof:
                raise ConnectionLost("connection closed during the TLS handshake")
            await self._wait()

    def write_raw(self, data: bytes | bytearray) -> None:
        self.bytes_sent += len(data)
        if self.tls is not None:
            self.tls.send(data)
        elif self.transport is not None:
            try:
                self.transport.write(data)
            except RuntimeError:
                # uvloop: the client's connection was closed (a KILL, the client went away)
                # while a response was being relayed to it; the session sees it end.
                pass

    def write_parts(self, parts: list[bytes | memoryview]) -> None:
        self.bytes_sent += sum(map(len, parts))
        if self.tls is not None:
            self.tls.send(b"".join(parts))
        elif self.transport is not None:
            self.transport.writelines(parts)

    def close(self) -> None:
        if self.tls is not None and not self.is_closing():
            self.tls.shutdown()
        super().close()


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
    """Follows one command's response through the byte stream to find where it ends.

    ``feed(chunk)`` takes the backend's bytes exactly as they arrive (packets may straddle
    chunks) and returns -1 while the response goes on, or the offset in ``chunk`` just past
    its last packet. Row and column-definition packets are skipped by their length without
    being copied; only the packets that can end or shape a response (OK, ERR, EOF, the column
    count, PREPARE_OK) are looked at whole, and those are small. ``frame()`` is the same
    machine fed one wire frame at a time. The scanner records the status flags of the final
    OK/EOF, the error number of an ERR that ends it, the number of rows, and for
    COM_STMT_PREPARE the statement id.
    """

    __slots__ = (
        "_capabilities",
        "_continuation",
        "_kind",
        "_pending",
        "_remaining",
        "_skip",
        "_state",
        "errno",
        "error",
        "prepared_columns",
        "prepared_params",
        "rows",
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
        # Bytes of a packet that must be seen whole but has not fully arrived yet.
        self._pending = b""
        # Bytes still to come of a packet that is skipped unread.
        self._skip = 0
        self.status: int | None = None
        self.error = False
        self.errno = 0  # of the ERR that ended the response
        self.rows = 0
        self.statement_id: int | None = None
        self.prepared_params = 0
        self.prepared_columns = 0

    def feed(self, data: bytes) -> int:
        """Consume the next chunk of the response; -1, or the offset just past its end."""
        n = len(data)
        pos = 0
        base = 0
        skip = self._skip
        if skip:
            if skip >= n:
                self._skip = skip - n
                return -1
            pos = skip
            self._skip = 0
        elif self._pending:
            base = len(self._pending)
            data = self._pending + data
            n += base
            self._pending = b""
        rows_state = _State.ROWS
        columns_state = _State.COLUMNS
        while True:
            avail = n - pos
            if avail < 4:
                if avail:
                    self._pending = data[pos:]
                return -1
            length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            end = pos + 4 + length
            if self._continuation:
                # The tail of a packet larger than 16 MiB: never looked at.
                self._continuation = length == MAX_PAYLOAD
                if end > n:
                    self._skip = end - n
                    return -1
                pos = end
                continue
            if length == 0:
                raise ProtocolViolation("empty packet")
            if avail < 5:
                self._pending = data[pos:]
                return -1
            first = data[pos + 4]
            state = self._state
            if state is rows_state and first != 0xFF and (first != 0xFE or length >= 9):
                # Rows: walk the packet headers in a tight loop (the hot loop of a relay).
                rows = 1
                while end + 5 <= n and length < MAX_PAYLOAD:
                    length = data[end] | data[end + 1] << 8 | data[end + 2] << 16
                    first = data[end + 4]
                    if first == 0xFF or (first == 0xFE and length < 9):
                        break
                    end += 4 + length
                    rows += 1
                else:
                    self._continuation = length == MAX_PAYLOAD
                    self.rows += rows
                    if end > n:
                        self._skip = end - n
                        return -1
                    pos = end
                    continue
                # A terminal candidate follows at ``end``: the outer loop looks at it whole.
                self.rows += rows
                pos = end
                continue
            if state is columns_state:
                self._remaining -= 1
                if self._remaining == 0:
                    self._state = _State.COLUMNS_EOF
                self._continuation = length == MAX_PAYLOAD
                if end > n:
                    self._skip = end - n
                    return -1
                pos = end
                continue
            if end > n:
                self._pending = data[pos:]
                return -1
            self._continuation = length == MAX_PAYLOAD
            done = self._packet(data, pos + 4, end, first)
            pos = end
            if done:
                return pos - base

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
        first = buf[start]
        if self._state is _State.ROWS and first != 0xFF and (first != 0xFE or length >= 9):
            self.rows += 1
            return False
        return self._packet(buf, start, end, first)

    def _error(self, buf: bytes | bytearray, start: int, length: int) -> bool:
        self.error = True
        if length >= 3:
            self.errno = buf[start + 1] | buf[start + 2] << 8
        return True

    def _terminal_ok(self, payload: bytes) -> bool:
        self.status = _ok_status(payload, self._capabilities)
        return not self.status & _MORE_RESULTS_EXISTS

    def _terminal_eof(self, payload: bytes) -> bool:
        self.status = _eof_status(payload)
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
                return self._error(buf, start, length)
            self.rows += 1
            return False
        if state is _State.FIRST:
            if first == 0xFF:
                return self._error(buf, start, length)
            if self._kind is ResponseKind.SINGLE:
                if first == 0xFE and length < 9:
                    self.status = _eof_status(bytes(buf[start:end]))
                elif first == 0x00:
                    self.status = _ok_status(bytes(buf[start:end]), self._capabilities)
                return True
            if self._kind is ResponseKind.PREPARE:
                if first != 0x00:
                    raise ProtocolViolation("unexpected COM_STMT_PREPARE response")
                try:
                    ok = parse_stmt_prepare_ok(bytes(buf[start:end]))
                except ProtocolError as exc:
                    raise ProtocolViolation(str(exc)) from None
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
                return self._terminal_ok(bytes(buf[start:end]))
            if first == 0xFB:
                # LOCAL INFILE request: never advertised, never relayed.
                raise ProtocolViolation("backend asked for LOCAL INFILE")
            if first == 0xFE:
                raise ProtocolViolation("unexpected EOF at start of response")
            # A column count: that many column definitions follow, then EOF -- unless, with
            # MARIADB_CLIENT_CACHE_METADATA, its metadata-follows byte is 0 (a re-executed
            # prepared statement whose columns the client has cached): then the EOF at once.
            self._remaining, width = _lenenc_at(buf, start)
            if (
                self._capabilities & _CACHE_METADATA
                and start + width < end
                and buf[start + width] == 0
            ):
                self._state = _State.COLUMNS_EOF
            else:
                self._state = _State.COLUMNS
            return False
        if state is _State.COLUMNS:
            self._remaining -= 1
            if self._remaining == 0:
                self._state = _State.COLUMNS_EOF
            return False
        if state is _State.COLUMNS_EOF:
            if first == 0xFF:
                return self._error(buf, start, length)
            if first == 0xFE and length < 9:
                status = _eof_status(bytes(buf[start:end]))
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


def _ok_status(payload: bytes, capabilities: int) -> int:
    try:
        return parse_ok_status(payload, capabilities)
    except ProtocolError as exc:
        raise ProtocolViolation(str(exc)) from None


def _eof_status(payload: bytes) -> int:
    try:
        return parse_eof(payload)[1]
    except ProtocolError as exc:
        raise ProtocolViolation(str(exc)) from None


def _lenenc_at(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    """The length-encoded integer at ``pos`` and how many bytes it takes."""
    first = buf[pos]
    if first < 0xFB:
        return first, 1
    if first == 0xFC:
        return buf[pos + 1] | buf[pos + 2] << 8, 3
    if first == 0xFD:
        return buf[pos + 1] | buf[pos + 2] << 8 | buf[pos + 3] << 16, 4
    if first == 0xFE:
        return int.from_bytes(buf[pos + 1 : pos + 9], "little"), 9
    raise ProtocolViolation("bad length-encoded integer")
