"""A view's definer as the client knows it: its creator's account, not its creator's mirror.

A view made through the proxy is made by the session's mirror (``proxy.backend.mirror``), so
the shard names that mirror (``sgm_<id>_<8 hex>@%``) as its definer wherever it shows one:
``SHOW CREATE VIEW`` and ``SHOW CREATE TABLE`` of a view (the ``DEFINER=`...`@`...``` clause of
their ``Create View`` column) and information_schema's ``VIEWS.DEFINER`` (``user@host``), from
which ``mariadb-dump`` writes its ``DEFINER=`` clause. The answers to the statements that can
show one (``Statement.shows_definers``: ``SHOW CREATE TABLE|VIEW``, a query naming
``information_schema.VIEWS``; ``may_show_definers`` for a sharded database's routed text) are
relayed by :func:`relay_definers` instead of the compiled relay: packet by packet (one packet
in memory at a time, whatever the answer's size), every result set's column definitions read
to find those values, each row holding one written again with new length prefixes.

What is renamed, and how it is checked (``Definers.account``): a definer ``user@host`` whose
host is ``%`` and whose user is a mirror's name of one of the session's physical databases --
the account id in the name, and its 8 hex digits equal to the keyed hash of that physical
database (``mirror_suffix``, computed once per physical database) -- belonging to an account
of the catalog: the account's ``user``@``host``. O(1) per name; the catalog is not scanned.
Anything else (an account of the shard's operator, a name that looks like a mirror's but is
not one of this catalog's, a dropped account's mirror) is shown as the shard shows it.

Not renamed: a definer the query transforms (``CONCAT(DEFINER, '')``, a comparison in WHERE:
``WHERE DEFINER = 'app@%'`` compares with the mirror's name), only the DEFINER column itself
(the column definition names ``information_schema``'s ``VIEWS`` and its ``DEFINER``).
Routines, triggers and events never have a mirror as definer: the proxy refuses creating them
and mirrors hold no privilege on them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from auth.catalog import CatalogSnapshot
from proxy.backend.connection import MAX_BACKEND_PACKET, BackendConnection, BackendError
from proxy.backend.mirror import mirror_account_id, mirror_suffix
from proxy.merge.rows import BinaryRows, TextRows
from proxy.merge.values import ColumnDefinition
from proxy.sql.mariadb_words import KEYWORDS
from proxy.wire.packets import Capability, frame, read_lenenc_int
from proxy.wire.scanner import ProtocolViolation, ResponseKind, ResponseScanner
from proxy.wire.stream import ConnectionLost, PacketConnection, PacketTooLarge

__all__ = [
    "Definers",
    "RowRenamer",
    "may_show_definers",
    "relay_definers",
    "renamed_create_view",
    "row_renamer",
]

_DEPRECATE_EOF: Final = int(Capability.DEPRECATE_EOF)
_CACHE_METADATA: Final = int(Capability.MARIADB_CLIENT_CACHE_METADATA)
_MIRROR_HOST: Final = "%"


@dataclass
class Definers:
    """The renaming of one session's definers: the catalog ``snapshot``, the catalog secret
    and the physical databases (names) its mirrors are on."""

    snapshot: CatalogSnapshot
    secret: bytes
    physical: Sequence[str]
    _suffixes: frozenset[str] = field(default=frozenset(), init=False)

    def __post_init__(self) -> None:
        self._suffixes = frozenset(mirror_suffix(self.secret, name) for name in self.physical)

    def account(self, user: str, host: str) -> tuple[str, str] | None:
        """The client's ``(user, host)`` of the mirror ``user@host``; None: not a mirror of
        this catalog on these physical databases (shown unchanged)."""
        if host != _MIRROR_HOST:
            return None
        account_id = mirror_account_id(user)
        if account_id is None:
            return None
        if user[-9:] not in self._suffixes:
            return None
        account = self.snapshot.account(account_id)
        if account is None:
            return None
        return account.user, account.host


def may_show_definers(text: str) -> bool:
    """Whether a sharded database's routed statement ``text`` may show a view's definer: a
    superset (a text that only mentions the words costs the slower relay, nothing else)."""
    lowered = text.lower()
    return ("information_schema" in lowered and "views" in lowered) or (
        lowered.lstrip()[:4] == "show" and "create" in lowered
    )


# --- the values --------------------------------------------------------------------------------

# ``CREATE [ALGORITHM=x] DEFINER=user@host SQL SECURITY``, as MariaDB writes a view's definition
# (append_definer): each name backquoted, double-quoted (ANSI_QUOTES) or, with
# sql_quote_show_create off, bare when it needs no quotes.
_IDENT = rb'(`(?:[^`]|``)*`|"(?:[^"]|"")*"|[^\s`"@]+)'
_CREATE_VIEW: Final = re.compile(
    rb"\ACREATE (?:ALGORITHM=[A-Z]+ )?DEFINER=" + _IDENT + rb"@" + _IDENT + rb" SQL SECURITY "
)
# MariaDB's identifier characters (system_charset_info's ident_map): ASCII letters, digits,
# '_' and '$', and any byte of a multi-byte character.
_BARE: Final = re.compile(r"[0-9A-Za-z_$\u0080-\U0010ffff]+")


def _unquote(image: str) -> tuple[str, str]:
    """(the name, its quote character or '')."""
    if image[:1] in ("`", '"'):
        quote = image[0]
        return image[1:-1].replace(quote * 2, quote), quote
    return image, ""


def _quoted(name: str, quote: str, fallback: str) -> str:
    """``name`` as MariaDB's append_identifier writes it with ``quote`` (``''``: with
    sql_quote_show_create off, quoted with ``fallback`` only when it must be)."""
    if not quote:
        if _BARE.fullmatch(name) and not name.isdigit() and name.upper() not in KEYWORDS:
            return name
        quote = fallback
    return quote + name.replace(quote, quote * 2) + quote


def renamed_create_view(text: bytes, definers: Definers) -> bytes:
    """A view's ``Create View`` text with its DEFINER clause naming the client's account
    where it names a mirror (else ``text``), each name quoted as the shard quoted the
    mirror's (the mode's quote character; none where sql_quote_show_create is off and the
    name needs none)."""
    found = _CREATE_VIEW.match(text)
    if found is None:
        return text
    try:
        user, user_quote = _unquote(found.group(1).decode("utf-8"))
        host, host_quote = _unquote(found.group(2).decode("utf-8"))
    except UnicodeDecodeError:
        return text
    account = definers.account(user, host)
    if account is None:
        return text
    # A mirror's name never needs quotes: written bare, sql_quote_show_create is off, and
    # each name is quoted only where it must be, with the mode's character ('%' needs it).
    quote = user_quote
    fallback = host_quote or "`"
    named = _quoted(account[0], quote, fallback) + "@" + _quoted(account[1], quote, fallback)
    start, end = found.start(1), found.end(2)
    return text[:start] + named.encode("utf-8") + text[end:]


def renamed_definer(value: bytes, definers: Definers) -> bytes:
    """information_schema's DEFINER value (``user@host``) naming the client's account where
    it names a mirror (else ``value``)."""
    user, at, host = value.partition(b"@")
    if not at:
        return value
    try:
        account = definers.account(user.decode("utf-8"), host.decode("utf-8"))
    except UnicodeDecodeError:
        return value
    if account is None:
        return value
    return f"{account[0]}@{account[1]}".encode()


def _is_definer(column: ColumnDefinition) -> bool:
    return (
        column.org_name.upper() == b"DEFINER"
        and column.org_table.upper() == b"VIEWS"
        and column.schema.lower() in (b"information_schema", b"")
    )


def _renamings(
    columns: Sequence[ColumnDefinition],
) -> dict[int, Callable[[bytes, Definers], bytes]]:
    """Which columns of a result set are renamed, and how (by column index)."""
    names = [c.name for c in columns]
    if len(names) == 4 and names[:2] == [b"View", b"Create View"]:
        return {1: renamed_create_view}
    return {i: renamed_definer for i, c in enumerate(columns) if _is_definer(c)}


class RowRenamer:
    """The rows of one result set (``columns``; ``binary``: COM_STMT_EXECUTE's rows) with
    their definers renamed."""

    def __init__(
        self,
        columns: Sequence[ColumnDefinition],
        renamings: dict[int, Callable[[bytes, Definers], bytes]],
        binary: bool,
        definers: Definers,
    ) -> None:
        self._count = len(columns)
        self._renamings = renamings
        self._rows = BinaryRows(columns) if binary else TextRows(columns)
        self._definers = definers

    def row(self, payload: bytes) -> bytes:
        values = self._rows.parse(payload, self._count)
        changed = False
        for index, rename in self._renamings.items():
            value = values[index]
            if value is None:
                continue
            renamed = rename(value, self._definers)
            if renamed != value:
                values[index] = renamed
                changed = True
        return self._rows.build(values) if changed else payload


def row_renamer(
    columns: Sequence[ColumnDefinition], binary: bool, definers: Definers
) -> RowRenamer | None:
    """The renaming of a result set's rows; None when none of its columns shows a definer."""
    renamings = _renamings(columns)
    return RowRenamer(columns, renamings, binary, definers) if renamings else None


# --- the relay -------------------------------------------------------------------------------

_FIRST, _DEFS, _EOF, _ROWS = range(4)


@dataclass
class _Result:
    """The result set being relayed."""

    expected: int = 0
    columns: list[ColumnDefinition] = field(default_factory=list)
    renamer: RowRenamer | None = None


async def relay_definers(
    conn: BackendConnection,
    client: PacketConnection,
    seq: int,
    binary: bool,
    definers: Definers,
    columns: Callable[[bytes], bytes] | None,
    errors: Callable[[bytes], bytes] | None,
    known: list[ColumnDefinition] | None = None,
    fetch: bool = False,
) -> tuple[ResponseScanner, int, list[ColumnDefinition] | None]:
    """Relay the answer to the query (or, ``binary``, the execution) just sent on ``conn`` to
    ``client`` from sequence id ``seq``, each value showing a definer renamed (see the module
    docstring); column definitions (and an error at the head) pass through ``columns`` (a
    sharded database's logical names) once read, an error ending it through ``errors``.
    ``known``: the statement's column definitions when an execution's answer may leave them
    out (MARIADB_CLIENT_CACHE_METADATA). Returns the answer's scanner, the next sequence id
    and the last result's column definitions. Raises BackendError (``conn`` is then closed)
    when the shard's answer breaks off, and ConnectionLost when the client's does."""
    capabilities = conn.capabilities
    scanner = ResponseScanner(ResponseKind.FETCH if fetch else ResponseKind.QUERY, capabilities)
    result = _Result()
    phase = _FIRST
    if fetch:
        phase = _ROWS
        if known is not None:
            result = _Result(len(known), renamer=row_renamer(known, binary, definers))
    last: list[ColumnDefinition] | None = known
    try:
        while True:
            conn.waiting_since = time.monotonic()
            _, payload = await conn.read(MAX_BACKEND_PACKET)
            out = payload
            first = payload[:1]
            if phase == _FIRST:
                if first == b"\xff":
                    out = columns(out) if columns is not None else out
                    out = errors(out) if errors is not None else out
                elif first not in (b"\x00", b"\xfb", b"\xfe", b""):
                    count, width = read_lenenc_int(payload, 0)
                    result = _Result(count or 0)
                    cached = (
                        capabilities & _CACHE_METADATA
                        and len(payload) > width
                        and payload[width] == 0
                    )
                    if cached:
                        if known is not None and len(known) == result.expected:
                            result.renamer = row_renamer(known, binary, definers)
                        phase = _ROWS if capabilities & _DEPRECATE_EOF else _EOF
                    elif result.expected:
                        phase = _DEFS
                    else:
                        phase = _ROWS if capabilities & _DEPRECATE_EOF else _EOF
            elif phase == _DEFS:
                result.columns.append(ColumnDefinition.parse(payload))
                if columns is not None:
                    out = columns(out)
                if len(result.columns) == result.expected:
                    result.renamer = row_renamer(result.columns, binary, definers)
                    last = result.columns
                    phase = _ROWS if capabilities & _DEPRECATE_EOF else _EOF
            elif phase == _EOF:
                phase = _ROWS
            elif first in (b"\xfe", b"\xff") and len(payload) < 0xFFFFFF:
                if first == b"\xff" and errors is not None:
                    out = errors(out)
                phase = _FIRST
            elif result.renamer is not None:
                out = result.renamer.row(payload)
            seq = client.write(seq, out)
            if scanner.feed(frame(0, payload)) >= 0:
                if scanner.status is not None:
                    conn.status = scanner.status
                return scanner, seq, last
            if client.write_paused:
                try:
                    await client.drain()
                except ConnectionLost:
                    conn.broken = True  # the client went away in the middle of the answer
                    conn.close()
                    raise
    except (ConnectionLost, ProtocolViolation, PacketTooLarge, ValueError, IndexError) as exc:
        if not conn.broken:
            raise _lost(conn, exc) from None
        raise
    finally:
        conn.waiting_since = 0.0


def _lost(conn: BackendConnection, cause: Exception) -> BackendError:
    conn.broken = True
    conn.close()
    return BackendError(f"lost connection to shard '{conn.target.shard}': {cause}")
