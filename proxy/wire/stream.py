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
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from proxy.wire import scanner as _pure
from proxy.wire.packets import MAX_PAYLOAD, frame, frame_parts
from proxy.wire.scanner import (
    PacketTooLarge as PacketTooLarge,
)
from proxy.wire.scanner import (
    ProtocolViolation as ProtocolViolation,
)
from proxy.wire.scanner import (
    ResponseKind as ResponseKind,
)
from proxy.wire.tls import TlsLayer

# The compiled hot path (proxy/wire/_cscan.pyx, built by .ci/setup), else the pure reference.
# ``COMPILED_MISSING`` says why the compiled one is not used (the server logs it at start-up).
COMPILED_MISSING: str | None = None
if TYPE_CHECKING:
    from proxy.wire.scanner import ResponseScanner as ResponseScanner
    from proxy.wire.scanner import RowMerge as RowMerge
    from proxy.wire.scanner import binary_row_key as binary_row_key
    from proxy.wire.scanner import take_packet as take_packet
    from proxy.wire.scanner import text_row_key as text_row_key
    from proxy.wire.scanner import text_row_values as text_row_values
else:
    try:
        from proxy.wire._cscan import (
            ResponseScanner,
            RowMerge,
            binary_row_key,
            take_packet,
            text_row_key,
            text_row_values,
        )
    except ImportError as exc:
        COMPILED_MISSING = str(exc)
        ResponseScanner = _pure.ResponseScanner
        RowMerge = _pure.RowMerge
        binary_row_key = _pure.binary_row_key
        take_packet = _pure.take_packet
        text_row_values = _pure.text_row_values
        text_row_key = _pure.text_row_key

# Pause the peer that feeds a connection once this much is waiting to be sent on it.
WRITE_HIGH_WATER = 256 * 1024
# Stop reading a client once this much of what it sent waits unread behind a whole command
# (a client that pipelines statements and never reads the answers).
READ_HIGH_WATER = 1024 * 1024
# Payloads from this size on are written as pieces (frame headers and views), not copied whole.
LARGE_WRITE = 1024 * 1024


class ConnectionLost(Exception):
    """The peer closed the connection or sent a truncated packet."""


class PacketConnection:
    """One TCP connection carrying MySQL packets; ``read()`` joins multi-frame payloads.

    An asyncio Protocol by its methods, not by deriving from ``asyncio.Protocol``: compiled
    (stream.pxd) it is an extension type, which cannot derive from a Python class; hand it to
    asyncio through :func:`as_protocol` / :func:`open_connection`."""

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
        # How a shard's ERR packet relayed onto this connection is named for its peer (the
        # payload, no frame header; a session's: its account instead of the shard's mirror);
        # None: as it came.
        self.errors: Callable[[bytes], bytes] | None = None
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
        if self.feeder is not None:
            # What the feeder relays here is dropped now: paused, its response would never
            # end, and the session waiting for it would never see this connection go.
            self.feeder.resume_reading()
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

    @property
    def awaiting(self) -> bool:
        """A read waits for the peer's bytes, or reading is paused with bytes still to come
        (an answer held back): the peer owes this end something."""
        return self._waiter is not None or self.reading_paused

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
                raise ConnectionLost(str(self._lost or "connection closed"))
            if self._limit_paused:
                self._resume_for_limit()  # a packet larger than the limit: read it whole
            if self.reading_paused:
                # Paused for a relay's slow reader (a pooled connection now read by another
                # session, its own statement): whoever waits for a packet reads again.
                self.resume_reading()
            await self._wait()

    async def _wait(self) -> None:
        """Until more bytes arrive, or the connection ends."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take_nowait(self, max_size: int) -> tuple[int, bytes] | None:
        """:meth:`read` of a packet already received whole; None instead of waiting."""
        return self._take(max_size)

    def receive_buffer(self) -> bytearray:
        """The bytes received and not yet read as packets, for a reader that cuts whole
        packets off its front itself (the merge's ``RowMerge``); it calls :meth:`consumed`
        after."""
        return self._buf

    def consumed(self) -> None:
        """Packets were cut from :meth:`receive_buffer`: reading resumes if the read limit
        had paused it and half the limit is read (as :meth:`take_nowait` does)."""
        if self._limit_paused and len(self._buf) <= self.read_limit // 2:
            self._resume_for_limit()

    def _take(self, max_size: int) -> tuple[int, bytes] | None:
        packet = take_packet(self._buf, max_size)
        if packet is not None and self._limit_paused and len(self._buf) <= self.read_limit // 2:
            self._resume_for_limit()
        return packet

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
        """Queue several packets with one vectored write (one send() for a whole small result
        set, not one per packet); returns the next sequence id."""
        parts: list[bytes | memoryview] = []
        for payload in payloads:
            if len(payload) < LARGE_WRITE:
                parts.append(frame(seq, payload))
            else:
                parts += frame_parts(seq, payload)
            seq = (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF
        if parts:
            self.write_parts(parts)
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

C = TypeVar("C", bound=PacketConnection)


def as_protocol(factory: Callable[[], PacketConnection]) -> Callable[[], asyncio.Protocol]:
    """``factory`` as asyncio's calls type a protocol factory (PacketConnection has the
    Protocol's methods without deriving from it: see the class)."""
    return cast("Callable[[], asyncio.Protocol]", factory)


async def open_connection(factory: Callable[[], C], host: str, port: int) -> C:
    """``loop.create_connection`` for a PacketConnection: the one ``factory`` made."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(as_protocol(factory), host, port)
    return cast(C, protocol)


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
        # Reading paused because too much unread input is buffered (see READ_HIGH_WATER).
        self.input_paused = False
        # Bytes of the MySQL protocol from and to the client (TLS removed): Bytes_*.
        self.bytes_received = 0
        self.bytes_sent = 0
        # Told when the client's connection is gone (the session stops waiting for a backend
        # connection for a statement nobody will read the answer of).
        self.on_lost: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._on_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()

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
        if len(self._buf) > READ_HIGH_WATER and not self.input_paused and self._whole_command():
            # The session has a whole command to read and is busy (e.g. relaying an answer the
            # client does not read): stop reading until it catches up, so what a client sends
            # ahead waits in its own socket, never without bound in the proxy's memory.
            self.input_paused = True
            if self.transport is not None and not self.transport.is_closing():
                self.transport.pause_reading()
        if not self.hold:
            self._wake()

    def _whole_command(self) -> bool:
        """The buffer starts with a complete logical packet (all of its frames)."""
        buf = self._buf
        n = len(buf)
        pos = 0
        while n - pos >= 4:
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            pos += 4 + length
            if pos > n:
                return False
            if length < MAX_PAYLOAD:
                return True
        return False

    def take_nowait(self, max_size: int) -> tuple[int, bytes] | None:
        """:meth:`read` of a packet already received whole; None instead of waiting."""
        return self._take(max_size)

    def _take(self, max_size: int) -> tuple[int, bytes] | None:
        if self.hold:
            # A fast command's response is still being relayed: the next command waits for
            # release() (the reader is woken meanwhile only when the connection ends).
            return None
        packet = super()._take(max_size)
        if self.input_paused and (
            packet is None or len(self._buf) <= READ_HIGH_WATER or not self._whole_command()
        ):
            self.input_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return packet

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
            try:
                self.transport.writelines(parts)
            except RuntimeError:
                pass  # closed meanwhile (as in write_raw): the session sees it end

    def close(self) -> None:
        if self.tls is not None and not self.is_closing():
            self.tls.shutdown()
        super().close()
