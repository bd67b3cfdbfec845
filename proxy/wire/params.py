"""The parameters of a COM_STMT_EXECUTE: read, decoded, and written again for another statement.

A sharded database routes a prepared statement by the values bound to its parameters and may
run it on a partition as a statement with fewer of them (a multi-row INSERT split per
partition). ``parse_execute`` reads the packet's parameters (each one's type and its encoded
value, untouched); ``decode_param`` turns one into a Python value as the shard reads it (integers
of every width, signed or unsigned, doubles, decimals, strings); ``build_execute`` writes a
COM_STMT_EXECUTE of some of them, with their types, for another statement id.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from proxy.wire.packets import ProtocolError, read_lenenc_int

__all__ = [
    "UTF8MB3",
    "ExecuteParams",
    "ParamValue",
    "beyond_bmp",
    "build_execute",
    "decode_param",
    "decode_text",
    "parse_execute",
    "peek_integer",
    "peek_params",
]

ParamValue = int | float | Decimal | str | bytes | None

# The codec name of MariaDB's utf8mb3 (and utf8), which no Python codec reads as MariaDB does:
# UTF-8 of the Basic Multilingual Plane's characters only. A 4-byte sequence is no character
# there (MariaDB stores each of its bytes as '?', or refuses it in strict mode: 1366), but
# Python's utf-8 reads it as one character beyond the plane.
UTF8MB3 = "utf8mb3"
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")


def beyond_bmp(text: str) -> bool:
    """Whether ``text`` holds a character beyond the Basic Multilingual Plane (one utf8mb3
    cannot hold: its UTF-8 bytes are 4)."""
    return not text.isascii() and _BEYOND_BMP.search(text) is not None


def decode_text(data: bytes, encoding: str) -> str:
    """``data`` read in ``encoding``: a Python codec's name, or ``UTF8MB3``; raises
    UnicodeDecodeError for bytes that are no text in it (in utf8mb3: a 4-byte sequence)."""
    if encoding != UTF8MB3:
        return data.decode(encoding)
    text = data.decode("utf-8")
    if beyond_bmp(text):
        raise UnicodeDecodeError(UTF8MB3, data, 0, len(data), "a 4-byte sequence")
    return text


COM_STMT_EXECUTE = 0x17
_UNSIGNED = 0x80
_NULL_TYPE = 0x06
_FIXED = {0x01: 1, 0x02: 2, 0x03: 4, 0x04: 4, 0x08: 8, 0x05: 8, _NULL_TYPE: 0}
_TEMPORAL = frozenset({0x07, 0x0A, 0x0B, 0x0C})  # TIMESTAMP, DATE, TIME, DATETIME
_INTEGERS = {0x01: (1, "b", "B"), 0x02: (2, "h", "H")}
_INTEGERS |= {0x03: (4, "i", "I"), 0x08: (8, "q", "Q")}
# The types whose values MariaDB reads, each a fixed size (_FIXED) or, as MariaDB's
# get_param_length reads it, a length-encoded size first: temporals (and NEWDATE), decimals,
# strings, ENUM, SET and blobs. It reads any other type's value as NULL without taking its
# bytes (INT24, YEAR, BIT, GEOMETRY: the next parameter is then read from them) or refuses
# the execution (1210): an execution sending one is not read here (ProtocolError).
_READ = frozenset(_FIXED) | _TEMPORAL | {0x0E, 0x00, 0xF6, 0x0F} | frozenset(range(0xF7, 0xFF))
_DECIMALS = frozenset({0x00, 0xF6})
# A DECIMAL parameter's text that MariaDB reads whole, as Python's Decimal reads it (Decimal
# also takes "1_0", surrounding spaces, "Infinity"..., which MariaDB reads otherwise).
_DECIMAL_TEXT = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Character strings (the client's character set); BLOB, BIT, GEOMETRY and JSON are left as bytes.
_STRINGS = frozenset({0x0F, 0xFD, 0xFE, 0xF7, 0xF8})


@dataclass(frozen=True, slots=True)
class ExecuteParams:
    """A COM_STMT_EXECUTE taken apart."""

    statement_id: int
    flags: int  # cursor flags
    iteration: bytes  # the 4-byte iteration count
    types: tuple[bytes, ...]  # each parameter's 2-byte type (as sent, or as last time)
    values: tuple[bytes | None, ...]  # each one's encoded value (None: NULL)
    sent_types: bool  # the packet carried the types (new_params_bound_flag 1)


def parse_execute(payload: bytes, params: int, last_types: bytes | None) -> ExecuteParams:
    """Read a COM_STMT_EXECUTE (command byte first) of a statement with ``params``
    parameters; ``last_types``: the types an earlier execution sent (the packet may say "as
    last time"). ProtocolError for a packet that does not hold them."""
    if len(payload) < 10 or payload[0] != COM_STMT_EXECUTE:
        raise ProtocolError("not a COM_STMT_EXECUTE")
    statement_id = int.from_bytes(payload[1:5], "little")
    if params == 0:
        return ExecuteParams(statement_id, payload[5], payload[6:10], (), (), False)
    at = 10
    bitmap = payload[at : at + (params + 7) // 8]
    at += (params + 7) // 8
    if len(payload) <= at:
        raise ProtocolError("COM_STMT_EXECUTE without its parameters")
    if payload[at] > 1:
        raise ProtocolError("new_params_bound_flag neither 0 nor 1")  # (MariaDB: 1835)
    sent = payload[at] == 1
    at += 1
    if sent:
        raw_types = payload[at : at + 2 * params]
        at += 2 * params
    elif last_types is not None:
        raw_types = last_types
    else:
        raise ProtocolError("COM_STMT_EXECUTE without parameter types")
    if len(raw_types) != 2 * params or len(bitmap) != (params + 7) // 8:
        raise ProtocolError("COM_STMT_EXECUTE cut short")
    types = tuple(raw_types[2 * i : 2 * i + 2] for i in range(params))
    values: list[bytes | None] = []
    for index, kind in enumerate(types):
        if bitmap[index >> 3] & (1 << (index & 7)):
            values.append(None)
            continue
        code = kind[0]
        if code not in _READ:
            raise ProtocolError(f"a parameter of type {code:#04x}")
        size = _FIXED.get(code)
        if size is not None:
            start = at
        else:
            length, after = read_lenenc_int(payload, at)
            if length is None:
                raise ProtocolError("a NULL length in COM_STMT_EXECUTE")
            start, size = at, after - at + length
        end = start + size
        if end > len(payload):
            raise ProtocolError("COM_STMT_EXECUTE cut short")
        values.append(payload[start:end])
        at = end
    return ExecuteParams(statement_id, payload[5], payload[6:10], types, tuple(values), sent)


def peek_integer(payload: bytes, last_types: bytes | None) -> tuple[int, bytes | None] | None:
    """The one parameter of a COM_STMT_EXECUTE when it is an integer (and the types the
    packet sent), as ``peek_params`` reads it; None otherwise."""
    if len(payload) < 12 or payload[5] & 0x07 or payload[10] & 1 or payload[11] > 1:
        return None
    if payload[11] == 1:
        kind: bytes | None = payload[12:14]
        sent: bytes | None = kind
        at = 14
    else:
        kind, sent, at = last_types, None, 12
    if kind is None or len(kind) != 2:
        return None
    integer = _INTEGERS.get(kind[0])
    if integer is None or len(payload) != at + integer[0]:
        return None
    value = int.from_bytes(payload[at:], "little", signed=not kind[1] & _UNSIGNED)
    return value, sent


def integer_layout(types: bytes) -> tuple[int, int] | None:
    """For the types of one parameter (2 bytes): when :func:`peek_integer` reads it as an
    integer, its width in bytes and, for a signed one, ``2 ** (bits - 1)`` (0: unsigned);
    None otherwise."""
    integer = _INTEGERS.get(types[0]) if len(types) == 2 else None
    if integer is None:
        return None
    width = integer[0]
    return width, 0 if types[1] & _UNSIGNED else 1 << (8 * width - 1)


def peek_params(
    payload: bytes,
    params: int,
    last_types: bytes | None,
    wanted: int,
    encoding: str | None,
) -> tuple[list[ParamValue], bytes | None] | None:
    """The decoded values of parameters ``0 .. wanted - 1`` of a COM_STMT_EXECUTE (command
    byte first; the rest are not read), and the types the packet sent (None: "as last time");
    None for a packet ``parse_execute`` would refuse or one asking for a cursor. The fast
    path's reading: what ``parse_execute`` and ``decode_param`` give, without the rest."""
    if len(payload) < 10 or payload[5] & 0x07 or not 0 <= wanted <= params:
        return None
    if params == 0:
        return [], None
    at = 10 + (params + 7) // 8
    if len(payload) <= at:
        return None
    bitmap_at = 10
    if payload[at] > 1:
        return None
    if payload[at] == 1:
        sent: bytes | None = payload[at + 1 : at + 1 + 2 * params]
        types = sent
        at += 1 + 2 * params
    else:
        sent = None
        types = last_types
        at += 1
    if types is None or len(types) != 2 * params:
        return None
    values: list[ParamValue] = []
    for index in range(wanted):
        if payload[bitmap_at + (index >> 3)] & (1 << (index & 7)):
            values.append(None)
            continue
        code = types[2 * index]
        if code not in _READ:
            return None
        size = _FIXED.get(code)
        if size is None:
            try:
                length, after = read_lenenc_int(payload, at)
            except ProtocolError:
                return None  # (parse_execute's 1210)
            if length is None:
                return None
            size = after - at + length
        end = at + size
        if end > len(payload):
            return None
        values.append(decode_param(types[2 * index : 2 * index + 2], payload[at:end], encoding))
        at = end
    return values, sent


def decode_param(kind: bytes, raw: bytes | None, encoding: str | None) -> ParamValue:
    """One parameter's value as the shard reads it: None (NULL), an int, a float, a Decimal,
    a str (a character string in ``encoding``, the client's character set; None: left as
    bytes), or bytes for anything else (dates, binary strings, a string not valid in the
    character set): a value no shard key is computed from."""
    if raw is None:
        return None
    code = kind[0]
    unsigned = bool(kind[1] & _UNSIGNED)
    integer = _INTEGERS.get(code)
    if integer is not None:
        _, signed_format, unsigned_format = integer
        value: int = struct.unpack("<" + (unsigned_format if unsigned else signed_format), raw)[0]
        return value
    if code == 0x05:
        number: float = struct.unpack("<d", raw)[0]
        return number if math.isfinite(number) else raw
    if code == 0x04:
        single: float = struct.unpack("<f", raw)[0]
        return single if math.isfinite(single) else raw
    if code == _NULL_TYPE:
        return None
    if code in _TEMPORAL:
        return raw
    _, start = read_lenenc_int(raw, 0)
    body = raw[start:]
    if code in _DECIMALS:
        if _DECIMAL_TEXT.fullmatch(body) is None:
            return raw  # not read here as MariaDB reads it: no key is computed from it
        try:
            return Decimal(body.decode("ascii"))
        except (InvalidOperation, UnicodeDecodeError):
            return raw
    if code in _STRINGS and encoding is not None:
        try:
            return decode_text(body, encoding)
        except UnicodeDecodeError:
            return raw
    return raw


def build_execute(
    statement_id: int,
    flags: int,
    iteration: bytes,
    types: Sequence[bytes],
    values: Sequence[bytes | None],
) -> bytes:
    """A COM_STMT_EXECUTE of ``statement_id`` sending these parameters (and their types)."""
    head = bytes([COM_STMT_EXECUTE]) + statement_id.to_bytes(4, "little") + bytes([flags])
    head += iteration
    if not types:
        return head
    bitmap = bytearray((len(values) + 7) // 8)
    for index, value in enumerate(values):
        if value is None:
            bitmap[index >> 3] |= 1 << (index & 7)
    body = b"".join(v for v in values if v is not None)
    return head + bytes(bitmap) + b"\x01" + b"".join(types) + body
