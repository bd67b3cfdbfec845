"""Rewriting a relayed statement at token positions: the one place the relay is not byte for
byte.

A :class:`Splice` replaces ``data[start:end]`` -- the bytes of whole tokens, at offsets the lexer
found -- by other text. :func:`apply_splices` applies several to a packet. The proxy uses it to
answer identity functions and shard-internal variables itself (``identity_splices``: the call is
replaced by a literal, and a select item keeps the column name MySQL would show); sharding will
use it to put physical table names in place of logical ones.

Replacement text is kept a separate token whatever surrounds it: a space goes before it (unless
the byte before is ``-``, where a space could turn ``--`` into a comment, or already a space)
and after it (unless the byte after is a space or the end), so ``SELECT@@port`` or
``1-@@port`` still read as they did, with the value in place of the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from proxy.sql.analyze import GRANT_VIEWS, Identity, Statement

__all__ = [
    "IdentityValues",
    "Splice",
    "apply_splices",
    "identity_splices",
    "quote_identifier",
    "sql_string",
]


@dataclass(frozen=True, slots=True)
class Splice:
    """Replace ``data[start:end]`` (byte offsets into the statement text) by ``text``."""

    start: int
    end: int
    text: bytes


_SPACE = frozenset(b" \t\r\n\x0b\x0c")
_MINUS = ord("-")


def apply_splices(data: bytes, splices: tuple[Splice, ...], base: int = 0) -> bytes:
    """``data`` with each splice applied, its offsets counted from ``data[base]`` (1 for a
    command packet's payload, whose first byte is the command). Splices must be in order and
    not overlap (ValueError otherwise)."""
    parts: list[bytes] = []
    pos = 0
    for splice in splices:
        start, end = splice.start + base, splice.end + base
        if start < pos or end < start or end > len(data):
            raise ValueError("splices out of order, overlapping or out of range")
        parts.append(data[pos:start])
        if start > base and data[start - 1] != _MINUS and data[start - 1] not in _SPACE:
            parts.append(b" ")
        parts.append(splice.text)
        if end < len(data) and data[end] not in _SPACE:
            parts.append(b" ")
        pos = end
    parts.append(data[pos:])
    return b"".join(parts)


def sql_string(value: str) -> bytes:
    """A string literal that reads as ``value`` in every ``sql_mode`` and client character set
    the proxy serves: quoted when printable ASCII without a backslash, else a hexadecimal
    literal converted to utf8mb4."""
    if value.isascii() and value.isprintable() and "\\" not in value:
        return b"'" + value.replace("'", "''").encode("ascii") + b"'"
    return b"CONVERT(X'" + value.encode("utf-8").hex().encode("ascii") + b"' USING utf8mb4)"


def quote_identifier(text: bytes) -> bytes:
    """A backquoted identifier of the client's own bytes (its character set)."""
    return b"`" + text.replace(b"`", b"``") + b"`"


@dataclass(frozen=True, slots=True)
class IdentityValues:
    """What the proxy answers, for one session, for each
    :class:`~proxy.sql.analyze.Identity` (account-semantics.md, "Identity")."""

    current_user: str  # CURRENT_USER(): the matched account, u@pattern
    user: str  # USER(), SESSION_USER(), SYSTEM_USER(): u@<client ip>
    connection_id: int  # the proxy's (SHOW PROCESSLIST's, KILL's)
    hostname: str  # the proxy's host, port, data directory and socket, never the shard's
    port: int
    datadir: str
    socket: str
    # The session's last statement, when it ran on a backend connection another session has
    # since taken (None: the connection the statement goes to answers; proxy.session.link).
    found_rows: int | None = None
    row_count: int | None = None
    warning_count: int | None = None
    error_count: int | None = None

    def value(self, identity: Identity) -> str | int | None:
        """The answer for ``identity``: the field its value names (one per Identity)."""
        answer: str | int | None = getattr(self, identity.value)
        return answer


# Identities about the session's last statement: only the packet's first statement asks about
# the statement before the packet.
_LAST_STATEMENT = frozenset(
    {Identity.FOUND_ROWS, Identity.ROW_COUNT, Identity.WARNING_COUNT, Identity.ERROR_COUNT}
)


# The calls answered with an expression of their own type (a bare literal is an INT of its
# digits' length, which the column definitions of the answer would show): BIGINT NOT NULL
# for the functions, BIGINT UNSIGNED (nullable) for the variables. (before, after the value)
_TYPED = {
    Identity.FOUND_ROWS: (b"IF(0, FOUND_ROWS(), ", b")"),
    Identity.ROW_COUNT: (b"IF(0, ROW_COUNT(), ", b")"),
    Identity.WARNING_COUNT: (b"IF(0, @@session.warning_count, CAST(", b" AS UNSIGNED))"),
    Identity.ERROR_COUNT: (b"IF(0, @@session.error_count, CAST(", b" AS UNSIGNED))"),
}


def identity_splices(
    statements: tuple[Statement, ...],
    values: IdentityValues | None,
    grant_view: Callable[[str], str] | None = None,
) -> tuple[Splice, ...]:
    """The splices that answer the statements' identity calls with ``values``: each call becomes
    a literal, and each select item without an alias around it (the call itself, or an
    expression of it) gets ``AS `<the item as written>```, the column name MariaDB shows for
    it. A privilege table of
    information_schema becomes ``grant_view(its name)``, the derived table of the account's
    grants (``proxy.plan.grants``), under its alias or its name; ``information_schema.`` of
    a column of one goes (the column names the derived table)."""
    out: list[Splice] = []
    named: dict[int, bytes] = {}  # an alias to put at a select item's end, by its offset
    for index, statement in enumerate(statements):
        for call in statement.identity:
            if call.start < 0:
                raise ValueError("identity call without a position (an unresolved cached fact)")
            if call.identity in GRANT_VIEWS or call.identity is Identity.GRANTS_QUALIFIER:
                if grant_view is None:
                    raise ValueError("a privilege table without the account's grants")
                if call.identity is Identity.GRANTS_QUALIFIER:
                    out.append(Splice(call.start, call.end, b""))
                    continue
                text = grant_view(call.identity.value).encode("ascii")
                if call.select_item:
                    text += b" AS " + quote_identifier(
                        call.alias.encode("utf-8", "surrogateescape")
                    )
                out.append(Splice(call.start, call.end, text))
                continue
            if values is None:
                continue
            value = values.value(call.identity)
            if value is None or (index and call.identity in _LAST_STATEMENT):
                continue
            text = str(value).encode("ascii") if isinstance(value, int) else sql_string(value)
            typed = _TYPED.get(call.identity)
            if typed is not None:
                # (of the call's own type: the column MariaDB describes for it)
                text = typed[0] + text + typed[1]
            out.append(Splice(call.start, call.end, text))
            for end, item in call.items:
                # (the select item around it without an alias: MariaDB's column name is the
                # item's text as written, which the value in the call's place would change)
                named[end] = b"AS " + quote_identifier(item.encode("utf-8", "surrogateescape"))
    if named:
        # (an item ending with a call: its alias follows the call's value in one splice)
        out = [
            Splice(s.start, s.end, s.text + b" " + named.pop(s.end)) if s.end in named else s
            for s in out
        ]
        out += (Splice(end, end, alias) for end, alias in named.items())
        out.sort(key=lambda splice: (splice.start, splice.end))
    return tuple(out)
