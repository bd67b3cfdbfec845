"""Rows of the text and the binary protocol, as the merge reads and writes them.

A codec is bound to the result's column definitions. ``parse`` gives each column's raw value
(the text protocol's string; the binary protocol's field bytes without their length prefix),
None for NULL; ``build`` makes a row payload of such values; ``cut`` keeps a row's first
columns; ``key`` orders a column's raw values as the server does; ``number`` and
``encode_number`` / ``encode_count`` carry aggregates; ``text`` is a value's text form.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from proxy.merge.values import (
    NULL_KEY,
    T_DATE,
    T_DATETIME,
    T_DATETIME2,
    T_DOUBLE,
    T_FLOAT,
    T_INT24,
    T_LONG,
    T_LONGLONG,
    T_NEWDATE,
    T_NULL,
    T_SHORT,
    T_TIME,
    T_TIME2,
    T_TIMESTAMP,
    T_TIMESTAMP2,
    T_TINY,
    T_YEAR,
    UNSIGNED_FLAG,
    ColumnDefinition,
    Descending,
    Kind,
    decode_decimal,
    row_prefix_end,
    sort_key,
)
from proxy.wire.packets import Capability, build_text_row, lenenc_int, read_lenenc_int
from proxy.wire.scanner import (
    KEY_BIN,
    KEY_BYTES,
    KEY_CALL,
    KEY_DATETIME,
    KEY_DOUBLE,
    KEY_FLOAT,
    KEY_GENERAL_CI,
    KEY_INTEGER,
    KEY_SIGNED,
    KEY_TIME,
    KEY_UNSIGNED,
    WIDTH_LENENC,
    WIDTH_TEMPORAL,
    KeyPart,
)
from proxy.wire.stream import binary_row_key, text_row_key, text_row_values

Value = bytes | None
_DEPRECATE_EOF = int(Capability.DEPRECATE_EOF)
_CACHE_METADATA = int(Capability.MARIADB_CLIENT_CACHE_METADATA)


def format_number(value: Decimal | float | int, column: ColumnDefinition) -> str:
    """A number as the server writes a value of ``column`` (its scale, half-up rounding)."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if column.decimals < 31:
            return f"{value:.{column.decimals}f}"
        return format_double(value)
    with localcontext() as ctx:
        ctx.prec = 200
        q = value.quantize(Decimal(1).scaleb(-column.decimals), rounding=ROUND_HALF_UP)
    text = f"{q:f}"
    if text.startswith("-") and not q:
        text = text[1:]
    return text


def format_double(value: float) -> str:
    """A DOUBLE as the server writes it without a fixed scale: the shortest digits that read
    back as the same double, positional unless the exponent is large (``1e15``,
    ``9.007199254740992e15``, ``0.00001``)."""
    if value == 0 or value != value or value in (float("inf"), float("-inf")):
        return "0" if value == 0 else repr(value)
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits before the decimal point
    if point < -14 or (point > 15 and point >= len(text)):
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{point - 1}"
    elif point <= 0:
        out = "0." + "0" * -point + text
    elif point >= len(text):
        out = text + "0" * (point - len(text))
    else:
        out = text[:point] + "." + text[point:]
    return ("-" if sign else "") + out


# Each kind's shortcut to its text sort key (``text_row_key``): what ``sort_key`` computes.
_SHORTCUTS = {
    Kind.INTEGER: KEY_INTEGER,
    Kind.DECIMAL: KEY_CALL,
    Kind.FLOAT: KEY_CALL,
    Kind.DATETIME: KEY_BYTES,
    Kind.TIME: KEY_CALL,
    Kind.BINARY: KEY_BYTES,
    Kind.GENERAL_CI: KEY_GENERAL_CI,
    Kind.UNICODE_BIN: KEY_BIN,
    Kind.NULL: KEY_CALL,
    Kind.UNSUPPORTED: KEY_CALL,
}


class TextRows:
    binary = False

    def __init__(self, columns: Sequence[ColumnDefinition]) -> None:
        self.columns = columns

    # The first ``count`` values of a row (called for every row of an ORDER BY: no wrapper).
    parse: Callable[[bytes, int], list[Value]] = staticmethod(text_row_values)

    def build(self, values: Sequence[Value]) -> bytes:
        return build_text_row(values)

    def cut(self, payload: bytes, visible: int) -> bytes:
        return payload[: row_prefix_end(payload, visible)]

    def key(self, index: int) -> Callable[[bytes | None], Any]:
        return sort_key(self.columns[index])

    def key_parts(self, order: Sequence[tuple[int, bool]]) -> tuple[int, tuple[KeyPart, ...]]:
        """``text_row_key``'s arguments for ORDER BY ``order`` ((column, descending) pairs):
        how many columns to read, and per key its column, shortcut, key function and wrap."""
        parts = tuple(
            (
                column,
                _SHORTCUTS[self.columns[column].kind],
                sort_key(self.columns[column]),
                Descending if descending else None,
            )
            for column, descending in order
        )
        return max(column for column, _ in order) + 1, parts

    def payload_key(self, order: Sequence[tuple[int, bool]]) -> Callable[[bytes], tuple[Any, ...]]:
        """The sort key of a raw row for ORDER BY ``order``: the columns' :meth:`key`
        (``Descending`` where descending), in one compiled call per row."""
        upto, parts = self.key_parts(order)
        return lambda payload: text_row_key(payload, upto, parts)

    def number(self, index: int, raw: bytes) -> Decimal | float:
        if self.columns[index].kind is Kind.FLOAT:
            return float(raw)
        return decode_decimal(raw)

    def encode_number(self, index: int, value: Decimal | float) -> bytes:
        return format_number(value, self.columns[index]).encode()

    def encode_count(self, index: int, value: int) -> bytes:
        return str(value).encode()

    def text(self, index: int, raw: bytes) -> bytes:
        return raw


_FIXED = {T_TINY: 1, T_SHORT: 2, T_YEAR: 2, T_LONG: 4, T_INT24: 4, T_FLOAT: 4,
          T_LONGLONG: 8, T_DOUBLE: 8, T_NULL: 0}  # fmt: skip
_TEMPORAL = frozenset(
    {T_DATE, T_DATETIME, T_NEWDATE, T_TIMESTAMP, T_TIMESTAMP2, T_DATETIME2, T_TIME, T_TIME2}
)
_TIMES = frozenset({T_TIME, T_TIME2})
_INTS = frozenset({T_TINY, T_SHORT, T_YEAR, T_LONG, T_INT24, T_LONGLONG})
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


def _datetime_parts(raw: bytes) -> tuple[int, int, int, int, int, int, int]:
    raw = raw + bytes(11 - len(raw))
    year, month, day, hour, minute, second, micro = struct.unpack("<HBBBBBI", raw)
    return year, month, day, hour, minute, second, micro


def _time_micro(raw: bytes) -> int:
    raw = raw + bytes(12 - len(raw))
    negative, days, hour, minute, second, micro = struct.unpack("<BIBBBI", raw)
    value: int = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000 + micro
    return -value if negative else value


class BinaryRows:
    """Rows of COM_STMT_EXECUTE's result sets: a 0x00 header, a NULL bitmap (offset 2), then
    each non-NULL value: fixed-size integers and floats, a length byte and the packed parts of
    temporals, length-encoded bytes for everything else (DECIMAL as its text)."""

    binary = True

    def __init__(self, columns: Sequence[ColumnDefinition]) -> None:
        self.columns = columns
        self.total = len(columns)
        self.bitmap_len = (self.total + 7 + 2) // 8
        self.types = [c.type_code for c in columns]
        self.widths = tuple(
            _FIXED.get(t, WIDTH_TEMPORAL if t in _TEMPORAL else WIDTH_LENENC) for t in self.types
        )

    def parse(self, payload: bytes, count: int) -> list[Value]:
        bitmap = payload[1 : 1 + self.bitmap_len]
        pos = 1 + self.bitmap_len
        values: list[Value] = []
        for i in range(count):
            bit = i + 2
            if bitmap[bit >> 3] & (1 << (bit & 7)):
                values.append(None)
                continue
            t = self.types[i]
            size = _FIXED.get(t)
            if size is not None:
                values.append(payload[pos : pos + size])
                pos += size
            elif t in _TEMPORAL:
                n = payload[pos]
                values.append(payload[pos + 1 : pos + 1 + n])
                pos += 1 + n
            else:
                length, pos = read_lenenc_int(payload, pos)
                values.append(payload[pos : pos + (length or 0)])
                pos += length or 0
        return values

    def build(self, values: Sequence[Value]) -> bytes:
        bitmap = bytearray((len(values) + 7 + 2) // 8)
        parts: list[bytes] = []
        for i, v in enumerate(values):
            if v is None:
                bit = i + 2
                bitmap[bit >> 3] |= 1 << (bit & 7)
                continue
            t = self.types[i]
            if t in _FIXED:
                parts.append(v)
            elif t in _TEMPORAL:
                parts.append(bytes((len(v),)) + v)
            else:
                parts.append(lenenc_int(len(v)) + v)
        return b"\x00" + bytes(bitmap) + b"".join(parts)

    def cut(self, payload: bytes, visible: int) -> bytes:
        return self.build(self.parse(payload, visible))

    def key(self, index: int) -> Callable[[bytes | None], Any]:
        column = self.columns[index]
        t = column.type_code
        null = NULL_KEY
        if t in _INTS:
            signed = not column.flags & UNSIGNED_FLAG
            return lambda raw: (
                null if raw is None else (1, int.from_bytes(raw, "little", signed=signed))
            )
        if t == T_FLOAT:
            return lambda raw: null if raw is None else (1, _FLOAT.unpack(raw)[0])
        if t == T_DOUBLE:
            return lambda raw: null if raw is None else (1, _DOUBLE.unpack(raw)[0])
        if t in _TIMES:
            return lambda raw: null if raw is None else (1, _time_micro(raw))
        if t in _TEMPORAL:
            return lambda raw: null if raw is None else (1, _datetime_parts(raw))
        return sort_key(column)  # DECIMAL's text, strings

    def shortcut(self, index: int) -> int:
        """``binary_row_key``'s shortcut to column ``index``'s :meth:`key`."""
        column = self.columns[index]
        t = column.type_code
        if t in _INTS:
            return KEY_UNSIGNED if column.flags & UNSIGNED_FLAG else KEY_SIGNED
        if t == T_FLOAT:
            return KEY_FLOAT
        if t == T_DOUBLE:
            return KEY_DOUBLE
        if t in _TIMES:
            return KEY_TIME
        if t in _TEMPORAL:
            return KEY_DATETIME
        shortcut = _SHORTCUTS[column.kind]
        return shortcut if shortcut in (KEY_BYTES, KEY_GENERAL_CI, KEY_BIN) else KEY_CALL

    def key_parts(self, order: Sequence[tuple[int, bool]]) -> tuple[int, tuple[KeyPart, ...]]:
        """``binary_row_key``'s arguments for ORDER BY ``order`` ((column, descending) pairs),
        as :meth:`TextRows.key_parts`."""
        parts = tuple(
            (column, self.shortcut(column), self.key(column), Descending if descending else None)
            for column, descending in order
        )
        return max(column for column, _ in order) + 1, parts

    def payload_key(self, order: Sequence[tuple[int, bool]]) -> Callable[[bytes], tuple[Any, ...]]:
        """The sort key of a raw row for ORDER BY ``order`` in one compiled call per row."""
        upto, parts = self.key_parts(order)
        return functools.partial(binary_row_key, self.bitmap_len, self.widths, upto, parts)

    def number(self, index: int, raw: bytes) -> Decimal | float:
        column = self.columns[index]
        t = column.type_code
        if t in _INTS:
            signed = not column.flags & UNSIGNED_FLAG
            return Decimal(int.from_bytes(raw, "little", signed=signed))
        if t == T_FLOAT:
            return float(_FLOAT.unpack(raw)[0])
        if t == T_DOUBLE:
            return float(_DOUBLE.unpack(raw)[0])
        return decode_decimal(raw)

    def encode_number(self, index: int, value: Decimal | float) -> bytes:
        column = self.columns[index]
        t = column.type_code
        if t == T_DOUBLE:
            return _DOUBLE.pack(float(value))
        if t == T_FLOAT:
            return _FLOAT.pack(float(value))
        if t in _INTS:
            size = _FIXED[t]
            return int(value).to_bytes(size, "little", signed=not column.flags & UNSIGNED_FLAG)
        return format_number(value, column).encode()

    def encode_count(self, index: int, value: int) -> bytes:
        return value.to_bytes(8, "little", signed=True)

    def text(self, index: int, raw: bytes) -> bytes:
        """The text protocol's form of a value (for HAVING's comparisons)."""
        column = self.columns[index]
        t = column.type_code
        if t in _INTS or t in (T_FLOAT, T_DOUBLE):
            return str(self.number(index, raw)).encode()
        if t in _TIMES:
            micro = _time_micro(raw)
            sign = "-" if micro < 0 else ""
            micro = abs(micro)
            seconds, frac = divmod(micro, 1_000_000)
            text = f"{sign}{seconds // 3600:02}:{seconds // 60 % 60:02}:{seconds % 60:02}"
            return (text + (f".{frac:06}" if frac else "")).encode()
        if t in _TEMPORAL:
            y, mo, d, h, mi, s, us = _datetime_parts(raw)
            text = f"{y:04}-{mo:02}-{d:02}"
            if t not in (T_DATE, T_NEWDATE):
                text += f" {h:02}:{mi:02}:{s:02}" + (f".{us:06}" if us else "")
            return text.encode()
        return raw

    def value(self, index: int, text: bytes) -> bytes:
        """The binary protocol's field bytes of a text-protocol value of column ``index``
        (:meth:`text`'s inverse): integers and floats in their fixed width, temporals packed
        (a zero date or time in no bytes, as the server packs them), the rest as it is."""
        column = self.columns[index]
        t = column.type_code
        if t in _INTS:
            size = _FIXED[t]
            signed = not column.flags & UNSIGNED_FLAG
            return int(text).to_bytes(size, "little", signed=signed)
        if t == T_FLOAT:
            return _FLOAT.pack(float(text))
        if t == T_DOUBLE:
            return _DOUBLE.pack(float(text))
        if t in _TIMES:
            return _packed_time(text.decode("ascii"))
        if t in _TEMPORAL:
            return _packed_datetime(text.decode("ascii"))
        return text


def _micro(fraction: str) -> int:
    return int((fraction + "000000")[:6]) if fraction else 0


def _packed_datetime(text: str) -> bytes:
    """``YYYY-MM-DD[ HH:MM:SS[.ffffff]]`` packed: 0, 4, 7 or 11 bytes, the shortest that
    holds it."""
    date, _, clock = text.partition(" ")
    year, month, day = (int(part) for part in date.split("-"))
    hour = minute = second = micro = 0
    if clock:
        whole, _, fraction = clock.partition(".")
        hour, minute, second = (int(part) for part in whole.split(":"))
        micro = _micro(fraction)
    if micro:
        return struct.pack("<HBBBBBI", year, month, day, hour, minute, second, micro)
    if hour or minute or second:
        return struct.pack("<HBBBBB", year, month, day, hour, minute, second)
    if year or month or day:
        return struct.pack("<HBB", year, month, day)
    return b""


def _packed_time(text: str) -> bytes:
    """``[-]H...H:MM:SS[.ffffff]`` packed: 0, 8 or 12 bytes (days apart from the hours)."""
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    hours, minute, second = (int(part) for part in whole.split(":"))
    micro = _micro(fraction)
    days, hour = divmod(hours, 24)
    if micro:
        return struct.pack("<BIBBBI", negative, days, hour, minute, second, micro)
    if days or hour or minute or second:
        return struct.pack("<BIBBB", negative, days, hour, minute, second)
    return b""


class BinaryResults:
    """The packets of text-protocol answers (result sets, OKs, ERRs), one after the other, as
    the binary protocol's: the column definitions as they are, each text row as the binary
    row of the same values (:meth:`BinaryRows.value`, :meth:`BinaryRows.build`) -- what a
    COM_STMT_EXECUTE of a statement the proxy answers itself sends, from the answer its text
    gets. ``convert`` takes each packet in order."""

    def __init__(self, capabilities: int) -> None:
        self._deprecate_eof = bool(capabilities & _DEPRECATE_EOF)
        self._metadata_flag = bool(capabilities & _CACHE_METADATA)
        self._columns = -1  # the result's column count (-1: between results)
        self._definitions: list[ColumnDefinition] = []
        self._rows: BinaryRows | None = None  # set once the definitions are read (and the EOF)

    def convert(self, payload: bytes) -> bytes:
        rows = self._rows
        if rows is not None:
            if payload[:1] == b"\xff" or (payload[:1] == b"\xfe" and len(payload) < 0xFFFFFF):
                self._columns = -1
                self._rows = None  # (its end: another result may follow)
                return payload
            values = text_row_values(payload, rows.total)
            return rows.build(
                [None if value is None else rows.value(i, value) for i, value in enumerate(values)]
            )
        if self._columns < 0:
            if payload[:1] in (b"\x00", b"\xff", b"\xfe"):
                return payload  # an OK or an error: the same in both protocols
            count, _ = read_lenenc_int(payload, 0)
            self._columns = count or 0
            self._definitions = []
            if self._metadata_flag:
                # (definitions always follow: a text answer's always do)
                return lenenc_int(self._columns) + b"\x01"
            return payload
        if len(self._definitions) < self._columns:
            self._definitions.append(ColumnDefinition.parse(payload))
            if len(self._definitions) == self._columns and self._deprecate_eof:
                self._rows = BinaryRows(self._definitions)
            return payload
        self._rows = BinaryRows(self._definitions)  # (the EOF after the definitions)
        return payload


RowCodec = TextRows | BinaryRows


def sort_key_with(codec: RowCodec, index: int) -> Callable[[bytes | None], Any]:
    """The sort key of column ``index``'s raw values (None: NULL)."""
    return codec.key(index)
