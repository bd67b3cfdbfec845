"""A shard key value as SQL gives it, turned into the key DRDS hashes (``proxy.shard.placement``).

A statement names the key as a literal (``id = 15``, ``VALUES ('abc')``) or a prepared
statement's parameter; MariaDB converts that value to the column's type before it stores or
compares it, so placement must hash the value MariaDB ends up with. ``shard_key`` does that
conversion where it is exact and otherwise says :class:`NotPlaceable` -- the caller then
scatters (a WHERE comparison: every partition is asked, which is always correct) or refuses
(an INSERT: the row's partition must be known). Two uses, because MariaDB converts differently:

``store`` (INSERT / UPDATE ... SET: the value becomes the column's)
    integer column: an integer, a decimal or double with no fractional part, or a string
    holding such a number (``'12'``, ``' 12'``, ``'1e3'``), within the column type's range;
    anything MariaDB would round, truncate, clip or refuse is not placeable. String column:
    a string as given, or an integer (stored as its decimal digits).

``compare`` (WHERE ``col = value``)
    integer column: ``'12'`` and ``1.2e1`` match the row 12. MariaDB 10.11 turns a constant
    compared with an integer column into an integer when it can, MySQL compares a string or a
    double with an integer as doubles (above 2^53 several integers compare equal to one
    double): such a value is placed only where both readings give the same one integer
    (magnitude below 2^53), and is otherwise not placeable. A decimal compares exactly. String
    column: a string as given (DRDS hashes it case-sensitively: with a case-insensitive or PAD
    SPACE collation, rows MariaDB would call equal may live in other partitions, as on DRDS),
    but a CHAR column's without its trailing spaces (the column has none: ``'k '`` is ``'k'``);
    a number compared with a string column is compared as a double (``'015'`` = 15), so it is
    not placeable.

Hexadecimal and bit literals (``bytes``) are not placeable: whether MariaDB reads them as a
number or a binary string depends on the context. NULL is ``None`` (partition 0); ``TRUE`` and
``FALSE`` are 1 and 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal

from auth.model import KeyType
from proxy.shard.placement import KeyValue
from proxy.sql.lexer import Token, TokenKind

__all__ = [
    "NotALiteral",
    "NotPlaceable",
    "SqlValue",
    "Substituted",
    "Use",
    "literal_value",
    "shard_key",
]

SqlValue = int | float | Decimal | str | bytes | bool | None
Use = Literal["store", "compare"]

# Integers below this magnitude are exact doubles, and no other integer converts to them.
_EXACT_DOUBLE = 1 << 53
# A number in a string, as MariaDB reads it to the end (leading whitespace allowed).
_NUMERIC_STRING = re.compile(
    r"[ \t\n\r]*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
)


class NotPlaceable(ValueError):
    """The value does not fix one partition exactly (the message says why)."""


class NotALiteral(ValueError):
    """The tokens are not one literal value."""


class Substituted(str):
    """A string literal whose bytes are not all characters of the character set MariaDB
    reads it in (``N'\U0001f600'``: utf8mb3), as MariaDB stores it -- a ``?`` for each
    such byte (``proxy.sql.charsets.utf8mb3_stored``), which is where a row is placed -- while
    a comparison reads the bytes as they are (1267 against a column of another character
    set, equal to no stored value in one of utf8mb3): not placeable there."""

    __slots__ = ()


# Digits beyond any integer key's range (20 are BIGINT UNSIGNED's): a value with more is out
# of range without being written out ('1e9999999' would take Python minutes to turn into an
# int, blocking the proxy's event loop while it did).
_MOST_DIGITS = 40


def _integral(value: Decimal, what: object) -> int:
    if not value.is_finite() or value != value.to_integral_value():
        raise NotPlaceable(f"{what!r} is not an integer")
    if value and value.adjusted() >= _MOST_DIGITS:
        raise NotPlaceable(f"{what!r} is out of range")
    return int(value)


def _in_range(key_type: KeyType, value: int) -> int:
    low, high = key_type.bounds
    if not low <= value <= high:
        raise NotPlaceable(f"{value} is out of range for {key_type}")
    return value


def _to_integer(key_type: KeyType, value: SqlValue, use: Use) -> int:
    if isinstance(value, bool):
        return _in_range(key_type, int(value))
    if isinstance(value, int):
        return _in_range(key_type, value)
    if isinstance(value, Decimal):
        return _in_range(key_type, _integral(value, value))
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise NotPlaceable(f"{value!r} is not an integer")
        number = int(value)
        if use == "compare" and abs(number) >= _EXACT_DOUBLE:
            raise NotPlaceable(f"{value!r} compares equal to several integers")
        return _in_range(key_type, number)
    if isinstance(value, str):
        match = _NUMERIC_STRING.fullmatch(value)
        if match is None:
            raise NotPlaceable(f"{value!r} is not a number")
        try:
            number = _integral(Decimal(match.group(1)), value)
        except InvalidOperation:
            raise NotPlaceable(f"{value!r} is not a number") from None
        if use == "compare" and abs(number) >= _EXACT_DOUBLE:
            raise NotPlaceable(f"{value!r} compares equal to several integers")
        return _in_range(key_type, number)
    raise NotPlaceable("a hexadecimal or bit literal")


def _to_string(value: SqlValue, use: Use) -> str:
    if isinstance(value, str):
        if use == "compare" and isinstance(value, Substituted):
            raise NotPlaceable("a string that is not valid in its character set")
        if any("\ud800" <= c <= "\udfff" for c in value):
            raise NotPlaceable("a string that is not valid in the column's character set")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and use == "store":
        return str(value)
    raise NotPlaceable(f"{value!r} against a string column")


def shard_key(key_type: KeyType, value: SqlValue, use: Use) -> KeyValue:
    """The key DRDS hashes for ``value`` given for a column of ``key_type`` (see the module
    docstring); NotPlaceable when that is not one exact value."""
    if value is None:
        return None
    if key_type.family == "integer":
        return _to_integer(key_type, value, use)
    if key_type.name == "char":
        # A CHAR column stores its values padded and reads and compares them without their
        # trailing spaces: 'k ' is the row 'k' (placed so, route._stored_key).
        return _to_string(value, use).rstrip(" ")
    return _to_string(value, use)


def literal_value(tokens: Sequence[Token]) -> SqlValue:
    """The value of one literal written as ``tokens`` (of ``proxy.sql.lexer``): a number,
    string, hexadecimal or bit literal, NULL, TRUE or FALSE, numbers with any signs before
    them. NotALiteral otherwise (an expression, a string with a character set introducer, a
    parameter marker: the caller binds parameters itself)."""
    negative = False
    index = 0
    while index < len(tokens) - 1 and tokens[index].kind is TokenKind.OP:
        if tokens[index].value == "-":
            negative = not negative
        elif tokens[index].value != "+":
            raise NotALiteral("not a literal")
        index += 1
    if index != len(tokens) - 1:
        raise NotALiteral("not one literal")
    token = tokens[index]
    signed = index > 0
    if token.kind is TokenKind.NUMBER:
        text = token.value
        if "e" in text or "E" in text:
            number: int | float | Decimal = float(text)
        elif "." in text or len(text) > _MOST_DIGITS:
            number = Decimal(text)  # (Python reads no int of over 4300 digits: ValueError)
        else:
            number = int(text)
        return -number if negative else number
    if signed:
        raise NotALiteral("a sign before a non-numeric literal")
    if token.kind is TokenKind.STRING:
        return token.value
    if token.kind is TokenKind.HEX:
        digits = token.raw[2:] if token.raw[:2].lower() == "0x" else token.raw[2:-1]
        return bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    if token.kind is TokenKind.BIT:
        bits = token.raw[2:] if token.raw[:2].lower() == "0b" else token.raw[2:-1]
        number_of_bytes = max(1, (len(bits) + 7) // 8)
        return int(bits or "0", 2).to_bytes(number_of_bytes, "big")
    if token.kind is TokenKind.WORD:
        word = token.value.upper()
        if word == "NULL":
            return None
        if word in ("TRUE", "FALSE"):
            return word == "TRUE"
    raise NotALiteral("not a literal")
