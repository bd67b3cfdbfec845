"""The pure parts of the packet stream, the reference for their compiled twin.

``take_packet`` cuts the next logical packet out of a connection's receive buffer; the
``ResponseScanner`` follows a command's response through the backend's byte stream and says
where it ends; ``text_row_values`` reads a text-protocol row's first values (the merge's sort
keys, for every row of a scatter ORDER BY). ``proxy.wire.stream`` uses the compiled versions
(``proxy/wire/_cscan.pyx``, Cython) when the extension is built, these otherwise;
tests/unit/test_compiled.py checks that both agree on random and malformed input.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Callable, Sequence
from typing import Any

from proxy.wire.packets import (
    MAX_PAYLOAD,
    Capability,
    ProtocolError,
    ServerStatus,
    parse_eof,
    parse_ok_status,
    parse_stmt_prepare_ok,
    read_lenenc_int,
)

_MORE_RESULTS_EXISTS = int(ServerStatus.MORE_RESULTS_EXISTS)
_CURSOR_EXISTS = int(ServerStatus.CURSOR_EXISTS)
_CACHE_METADATA = int(Capability.MARIADB_CLIENT_CACHE_METADATA)


class PacketTooLarge(Exception):
    """A packet larger than the configured limit arrived. ``next_seq``: the sequence number an
    answer to it carries (after the frame whose length crossed the limit, as MariaDB counts)."""

    def __init__(self, total: int, next_seq: int) -> None:
        super().__init__(f"packet of at least {total} bytes")
        self.total = total
        self.next_seq = next_seq


def take_packet(buf: bytearray, max_size: int) -> tuple[int, bytes] | None:
    """The first whole logical packet in ``buf`` (frames of 16 MiB - 1 joined), removed from
    it, as (sequence id of its last frame, payload); None while it is incomplete. Raises
    PacketTooLarge as soon as the frames' lengths add up past ``max_size``."""
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
            return seq, payload


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

    For a relay that rewrites the ERR that ends a response (``BackendConnection``): once
    ``feed`` returned an end and ``error`` is set, ``error_at`` is where that ERR's frame
    starts in the chunk (negative: it began in earlier chunks, by as many bytes); while
    ``feed`` returns -1, ``unsure`` is how many bytes at the end of the chunk (and of those
    before it still pending) may be the start of an ERR, not yet whole (else 0).
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
        "error_at",
        "prepared_columns",
        "prepared_params",
        "rows",
        "statement_id",
        "status",
        "unsure",
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
        self.error_at = 0
        self.unsure = 0
        self.rows = 0
        self.statement_id: int | None = None
        self.prepared_params = 0
        self.prepared_columns = 0

    def feed(self, data: bytes) -> int:
        """Consume the next chunk of the response; -1, or the offset just past its end."""
        n = len(data)
        pos = 0
        base = 0
        self.unsure = 0
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
                self.unsure = avail
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
                self.unsure = avail
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
                self.unsure = n - pos if first == 0xFF else 0
                return -1
            self._continuation = length == MAX_PAYLOAD
            done = self._packet(data, pos + 4, end, first)
            if done:
                self.error_at = pos - base
                return end - base
            pos = end

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
            self._remaining, width = _lenenc_at(buf, start, end)
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


def _lenenc_at(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """The length-encoded integer at ``pos`` (in a packet ending at ``end``) and how many
    bytes it takes."""
    first = buf[pos]
    if first < 0xFB:
        return first, 1
    width = {0xFC: 3, 0xFD: 4, 0xFE: 9}.get(first, 0)
    if not width:
        raise ProtocolViolation("bad length-encoded integer")
    if pos + width > end:
        raise ProtocolViolation("truncated length-encoded integer")
    return int.from_bytes(buf[pos + 1 : pos + width], "little"), width


def text_row_values(payload: bytes, count: int) -> list[bytes | None]:
    """A text-protocol row's first ``count`` values (None for NULL); ProtocolError when the
    row ends before them."""
    values: list[bytes | None] = []
    append = values.append
    size = len(payload)
    pos = 0
    for _ in range(count):
        if pos >= size:
            raise ProtocolError("truncated text row")
        n = payload[pos]
        if n < 0xFB:
            pos += 1
            end = pos + n
        elif n == 0xFB:
            append(None)
            pos += 1
            continue
        else:
            length, pos = read_lenenc_int(payload, pos)
            end = pos + (length or 0)
        if end > size:
            raise ProtocolError("truncated text row")
        append(payload[pos:end])
        pos = end
    return values


# How ``text_row_key`` may reach a column's sort key without calling its key function (the
# compiled twin's shortcuts; each gives exactly the key function's value, which the merge's
# tests check): none; ``(1, int(raw))``; ``(1, raw)``; and for printable ASCII, the
# utf8mb4_general_ci weights (upper case) or the code points, both PAD SPACE.
KEY_CALL, KEY_INTEGER, KEY_BYTES, KEY_GENERAL_CI, KEY_BIN = range(5)

KeyPart = tuple[int, int, Callable[[bytes | None], Any], Callable[[Any], Any] | None]


def text_row_key(payload: bytes, upto: int, parts: Sequence[KeyPart]) -> tuple[Any, ...]:
    """The sort key of a text row (its first ``upto`` values read): per part ``(column,
    shortcut, key, wrap)``, ``key`` of the column's raw value (None for NULL), passed through
    ``wrap`` (e.g. descending) unless it is None. This reference always calls ``key``; the
    compiled twin takes the ``shortcut`` (``KEY_*``) where the value allows."""
    row = text_row_values(payload, upto)
    return tuple([k(row[c]) if w is None else w(k(row[c])) for c, _, k, w in parts])


# A binary row's column widths (``binary_row_values``): a fixed size, or one of these.
WIDTH_TEMPORAL = -1  # a length byte, then the packed parts (DATE, DATETIME, TIMESTAMP, TIME)
WIDTH_LENENC = -2  # length-encoded bytes (strings, DECIMAL's text, BIT, ...)

# ``binary_row_key``'s shortcuts besides the text ones (KEY_CALL, KEY_BYTES, KEY_GENERAL_CI,
# KEY_BIN): the value of a little-endian integer, a FLOAT, a DOUBLE, a DATETIME's parts, a
# TIME's microseconds -- each exactly what the column's key function gives.
KEY_SIGNED, KEY_UNSIGNED, KEY_FLOAT, KEY_DOUBLE, KEY_DATETIME, KEY_TIME = range(5, 11)


def binary_row_values(
    payload: bytes, bitmap_len: int, widths: Sequence[int], count: int
) -> list[bytes | None]:
    """A binary-protocol row's first ``count`` values (None for NULL; a temporal's packed
    parts without their length byte; length-encoded bytes without their length).
    ``bitmap_len``: the NULL bitmap's length (for all the row's columns); ``widths``: per
    column a fixed size, ``WIDTH_TEMPORAL`` or ``WIDTH_LENENC``. ProtocolError when the row
    ends before them."""
    size = len(payload)
    if size < 1 + bitmap_len:
        raise ProtocolError("truncated binary row")
    pos = 1 + bitmap_len
    values: list[bytes | None] = []
    for i in range(count):
        bit = i + 2
        if payload[1 + (bit >> 3)] & (1 << (bit & 7)):
            values.append(None)
            continue
        width = widths[i]
        if width == WIDTH_TEMPORAL:
            if pos >= size:
                raise ProtocolError("truncated binary row")
            start = pos + 1
            end = start + payload[pos]
        elif width == WIDTH_LENENC:
            if pos >= size:
                raise ProtocolError("truncated binary row")
            length, start = read_lenenc_int(payload, pos)
            end = start + (length or 0)
        else:
            start = pos
            end = pos + width
        if end > size:
            raise ProtocolError("truncated binary row")
        values.append(payload[start:end])
        pos = end
    return values


def binary_row_key(
    bitmap_len: int, widths: Sequence[int], upto: int, parts: Sequence[KeyPart], payload: bytes
) -> tuple[Any, ...]:
    """The sort key of a binary row (its first ``upto`` values read, ``binary_row_values``):
    as ``text_row_key``, per part ``(column, shortcut, key, wrap)``. This reference always
    calls ``key``; the compiled twin takes the shortcut (``KEY_*``) where the value allows.
    The payload comes last: ``functools.partial`` binds the rest."""
    row = binary_row_values(payload, bitmap_len, widths, upto)
    return tuple([k(row[c]) if w is None else w(k(row[c])) for c, _, k, w in parts])


class RowMerge:
    """The k-way merge of sorted row streams whose next rows wait, as packets, in their
    connections' receive buffers: the merge's inner loop without a Python call per row.

    ``buffers``: per stream, the bytearray its rows arrive in (None: a stream whose rows come
    only through :meth:`set_head`). A stream enters the merge with its first row
    (:meth:`set_head`); :meth:`run` then moves rows in order (``(key, stream index)``: ties
    keep the streams' order) into a list: each time a stream's row is taken, its next row is
    cut from its buffer when that buffer holds it whole as a plain row packet (one frame, no
    larger than ``max_packet``, not an EOF, OK or ERR). When one does not, :meth:`run` returns
    that stream's index and the stream is out of the merge until :meth:`set_head` gives its
    next row (or None: the stream has ended). A row's key is ``key(payload)``, or when ``key``
    is None ``text_row_key(payload, upto, parts)``. What :meth:`run` cuts from a buffer is
    removed from it before it returns (also when a key raises)."""

    def __init__(
        self,
        buffers: Sequence[bytearray | None],
        max_packet: int,
        upto: int,
        parts: Sequence[KeyPart],
        key: Callable[[bytes], Any] | None = None,
    ) -> None:
        self._buffers = list(buffers)
        self._max = max_packet
        self._upto = upto
        self._parts = tuple(parts)
        self._key = key
        self._heap: list[tuple[Any, int, bytes]] = []

    def _key_of(self, payload: bytes) -> Any:
        if self._key is None:
            return text_row_key(payload, self._upto, self._parts)
        return self._key(payload)

    def set_head(self, index: int, payload: bytes | None) -> None:
        """Stream ``index``'s next row enters the merge (None: the stream has ended)."""
        if payload is not None:
            heapq.heappush(self._heap, (self._key_of(payload), index, payload))

    @property
    def streams(self) -> int:
        """How many streams are in the merge."""
        return len(self._heap)

    def _cut(self, buf: bytearray, pos: int) -> bytes | None:
        """The plain row packet whole at ``buf[pos:]``, or None."""
        if len(buf) - pos < 5:
            return None
        length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        first = buf[pos + 4]
        if length >= MAX_PAYLOAD or length > self._max or first in (0xFE, 0xFF):
            return None
        if pos + 4 + length > len(buf):
            return None
        return bytes(buf[pos + 4 : pos + 4 + length])

    def run(self, out: list[bytes], count: int) -> int:
        """Append up to ``count`` rows to ``out``, in order. Returns -2 when ``count`` rows
        were appended, -1 when no stream is left, else the index of the stream whose next
        row is not whole in its buffer (its last row taken: it awaits :meth:`set_head`)."""
        heap = self._heap
        taken = [0] * len(self._buffers)
        try:
            while True:
                if count <= 0:
                    return -2
                if not heap:
                    return -1
                _, index, payload = heap[0]
                out.append(payload)
                count -= 1
                buf = self._buffers[index]
                row = None if buf is None else self._cut(buf, taken[index])
                if row is None:
                    heapq.heappop(heap)
                    return index
                taken[index] += 4 + len(row)
                heapq.heapreplace(heap, (self._key_of(row), index, row))
        finally:
            for index, n in enumerate(taken):
                if n:
                    buf = self._buffers[index]
                    assert buf is not None
                    del buf[:n]
