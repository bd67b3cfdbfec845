"""Column definitions and values of text-protocol rows, compared as MariaDB compares them.

A column's kind (numeric, string with a collation, temporal, binary) comes from its column
definition packet: the type code, the flags and the character set / collation id. Sort keys are
plain Python values ordered as the server orders the column: integers and decimals exactly,
strings by their collation's weights with PAD SPACE, temporals by their canonical text (TIME by
its signed value), NULL before everything.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from proxy.merge.general_ci import WEIGHTS
from proxy.wire.packets import lenenc_str, read_lenenc_int, read_lenenc_str

_COLDEF_TAIL = struct.Struct("<BHIBHB2x")

# MYSQL_TYPE_* codes.
T_DECIMAL = 0
T_TINY = 1
T_SHORT = 2
T_LONG = 3
T_FLOAT = 4
T_DOUBLE = 5
T_NULL = 6
T_TIMESTAMP = 7
T_LONGLONG = 8
T_INT24 = 9
T_DATE = 10
T_TIME = 11
T_DATETIME = 12
T_YEAR = 13
T_NEWDATE = 14
T_BIT = 16
T_TIMESTAMP2 = 17
T_DATETIME2 = 18
T_TIME2 = 19
T_NEWDECIMAL = 246

UNSIGNED_FLAG = 32
BINARY_FLAG = 128
ENUM_FLAG = 256
SET_FLAG = 2048

CHARSET_BINARY = 63

_INTEGER_TYPES = frozenset({T_TINY, T_SHORT, T_LONG, T_LONGLONG, T_INT24, T_YEAR})
_DECIMAL_TYPES = frozenset({T_DECIMAL, T_NEWDECIMAL})
_FLOAT_TYPES = frozenset({T_FLOAT, T_DOUBLE})
_DATETIME_TYPES = frozenset({T_TIMESTAMP, T_DATE, T_DATETIME, T_NEWDATE, T_TIMESTAMP2, T_DATETIME2})
_TIME_TYPES = frozenset({T_TIME, T_TIME2})

# Collation ids by how they compare.
GENERAL_CI = frozenset({33, 45})  # utf8mb3_general_ci, utf8mb4_general_ci
UNICODE_BIN = frozenset({83, 46})  # utf8mb3_bin, utf8mb4_bin
COLLATION_NAMES = {33: "utf8mb3_general_ci", 45: "utf8mb4_general_ci", 83: "utf8mb3_bin",
                   46: "utf8mb4_bin", 63: "binary"}  # fmt: skip


class Kind(Enum):
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    DATETIME = "datetime"  # DATE, DATETIME, TIMESTAMP: the canonical text orders them
    TIME = "time"
    BINARY = "binary"  # bytes as they are (binary strings, BIT)
    GENERAL_CI = "general_ci"
    UNICODE_BIN = "unicode_bin"
    NULL = "null"
    UNSUPPORTED = "unsupported"  # a collation the proxy does not know how to order


@dataclass(frozen=True)
class ColumnDefinition:
    """One ColumnDefinition41 packet, decoded (``extended`` keeps MariaDB's extended type
    information block as it came, or None when it was not negotiated)."""

    catalog: bytes
    schema: bytes
    table: bytes
    org_table: bytes
    name: bytes
    org_name: bytes
    extended: bytes | None
    charset: int
    length: int
    type_code: int
    flags: int
    decimals: int

    @classmethod
    def parse(cls, payload: bytes) -> ColumnDefinition:
        pos = 0
        fields: list[bytes] = []
        for _ in range(6):
            value, pos = read_lenenc_str(payload, pos)
            fields.append(value or b"")
        tail_at = len(payload) - _COLDEF_TAIL.size
        extended: bytes | None = None
        if pos < tail_at:
            extended, pos = read_lenenc_str(payload, pos)
            extended = extended or b""
        if pos != tail_at or payload[tail_at] != 0x0C:
            raise ValueError("malformed column definition")
        _, charset, length, type_code, flags, decimals = _COLDEF_TAIL.unpack_from(payload, tail_at)
        catalog, schema, table, org_table, name, org_name = fields
        return cls(
            catalog, schema, table, org_table, name, org_name,
            extended, charset, length, type_code, flags, decimals,
        )  # fmt: skip

    def build(self) -> bytes:
        head = b"".join(
            lenenc_str(f)
            for f in (
                self.catalog,
                self.schema,
                self.table,
                self.org_table,
                self.name,
                self.org_name,
            )
        )
        ext = b"" if self.extended is None else lenenc_str(self.extended)
        tail = _COLDEF_TAIL.pack(
            0x0C, self.charset, self.length, self.type_code, self.flags, self.decimals
        )
        return head + ext + tail

    def renamed(self, schema: bytes | None, tables: dict[bytes, bytes]) -> ColumnDefinition:
        """With the physical schema and table names replaced by the logical ones."""
        return replace(
            self,
            schema=self.schema if schema is None or not self.schema else schema,
            table=tables.get(self.table, self.table),
            org_table=tables.get(self.org_table, self.org_table),
        )

    @property
    def kind(self) -> Kind:
        t = self.type_code
        if t in _INTEGER_TYPES:
            return Kind.INTEGER
        if t in _DECIMAL_TYPES:
            return Kind.DECIMAL
        if t in _FLOAT_TYPES:
            return Kind.FLOAT
        if t in _DATETIME_TYPES:
            return Kind.DATETIME
        if t in _TIME_TYPES:
            return Kind.TIME
        if t == T_NULL:
            return Kind.NULL
        if t == T_BIT or self.charset == CHARSET_BINARY:
            return Kind.BINARY
        # The id is the results' character set's default collation, not the column's: MariaDB
        # marks a _bin collation with BINARY_FLAG only. Any other collation of a utf8 column is
        # taken to be the shards' utf8mb4_general_ci (see the README).
        if self.charset in UNICODE_BIN or (self.charset in GENERAL_CI and self.flags & BINARY_FLAG):
            return Kind.UNICODE_BIN
        if self.charset in GENERAL_CI:
            return Kind.GENERAL_CI
        return Kind.UNSUPPORTED

    @property
    def sortable(self) -> bool:
        """Whether rows can be ordered on this column exactly (ENUM and SET order by their
        members' positions, which the text does not carry)."""
        return self.kind is not Kind.UNSUPPORTED and not self.flags & (ENUM_FLAG | SET_FLAG)

    def describe(self) -> str:
        name = self.name.decode("utf-8", "replace")
        return f"column '{name}' (collation id {self.charset}, type {self.type_code})"


# ----------------------------------------------------------------------------- sort keys

# A key orders as the column does; NULL's key is smaller than any other.
NULL_KEY: tuple[int] = (0,)


# String keys: str values whose plain comparison is the collation's PAD SPACE comparison (as
# if the shorter string were padded with spaces). Each character becomes its weight; trailing
# spaces are dropped and one space closes every key (the padding). Characters below the space
# (controls) sort before the padding, so they become two characters, 0x1F and themselves, and a
# space followed (after more spaces) by one becomes 0x1F 0x20: between the controls and the
# space, as the padding against a control demands. str.translate does the work in C.
_CONTROLS = {c: "\x1f" + chr(c) for c in range(0x20)}
_GENERAL_CI_TABLE = {cp: chr(w) for cp, w in WEIGHTS.items()} | _CONTROLS
_SUPPLEMENTARY = re.compile("[\U00010000-\U0010ffff]")
_SPACES_BEFORE_CONTROL = re.compile(" +(?=\x1f)")


def _spaces_before_control(match: re.Match[str]) -> str:
    return "\x1f " * len(match.group())


def _pad_space_key(weights: str) -> str:
    weights = weights.rstrip(" ")
    if "\x1f" in weights:
        weights = _SPACES_BEFORE_CONTROL.sub(_spaces_before_control, weights)
    return weights + " "


def general_ci_key(text: str) -> str:
    """utf8mb4_general_ci: the server's weight of each character (characters above the BMP
    all weigh U+FFFD), PAD SPACE."""
    if text.isascii():
        if text.isprintable():  # the weights of printable ASCII are its upper case
            return text.upper().rstrip(" ") + " "
    else:
        text = _SUPPLEMENTARY.sub("\ufffd", text)
    return _pad_space_key(text.translate(_GENERAL_CI_TABLE))


def unicode_bin_key(text: str) -> str:
    """utf8mb4_bin: code points, PAD SPACE."""
    return _pad_space_key(text.translate(_CONTROLS))


def time_value(raw: bytes) -> int:
    """A TIME's text ([-]H+:MM:SS[.ffffff]) as signed microseconds."""
    text = raw.decode("ascii")
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    hms, _, frac = text.partition(".")
    h, m, s = (int(x) for x in hms.split(":"))
    micro = ((h * 60 + m) * 60 + s) * 1_000_000 + int((frac + "000000")[:6])
    return -micro if negative else micro


def decode_decimal(raw: bytes) -> Decimal:
    try:
        return Decimal(raw.decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        return Decimal(0)


def _float_key(raw: bytes) -> float:
    try:
        return float(raw)
    except ValueError:
        return 0.0


def sort_key(column: ColumnDefinition) -> Callable[[bytes | None], Any]:
    """The sort key of a text value of ``column``: NULL's (first in ascending order) or
    ``(1, value)``. One function per kind, each a single call (it runs for every row)."""
    kind = column.kind
    null = NULL_KEY
    if kind is Kind.INTEGER:
        return lambda raw: null if raw is None else (1, int(raw))
    if kind is Kind.DECIMAL:
        return lambda raw: null if raw is None else (1, decode_decimal(raw))
    if kind is Kind.FLOAT:
        return lambda raw: null if raw is None else (1, _float_key(raw))
    if kind is Kind.TIME:
        return lambda raw: null if raw is None else (1, time_value(raw))
    if kind is Kind.GENERAL_CI:
        return lambda raw: (
            null if raw is None else (1, general_ci_key(raw.decode("utf-8", "surrogateescape")))
        )
    if kind is Kind.UNICODE_BIN:
        return lambda raw: (
            null if raw is None else (1, unicode_bin_key(raw.decode("utf-8", "surrogateescape")))
        )
    return lambda raw: null if raw is None else (1, raw)  # DATETIME's text, binary strings


class Descending:
    """Reverses the order of a key (for DESC sort keys in a mixed-direction heap)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: Descending) -> bool:
        return bool(other.key < self.key)

    def __gt__(self, other: Descending) -> bool:
        return bool(other.key > self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and bool(self.key == other.key)

    def __hash__(self) -> int:
        return hash(self.key)


def row_prefix_end(payload: bytes, count: int) -> int:
    """The offset where a text row's ``count``-th value ends (its first ``count`` columns are
    ``payload[:offset]``, themselves a valid row)."""
    pos = 0
    for _ in range(count):
        first = payload[pos]
        if first == 0xFB:
            pos += 1
        elif first < 0xFB:
            pos += 1 + first
        else:
            n, pos = read_lenenc_int(payload, pos)
            pos += n or 0
    return pos
