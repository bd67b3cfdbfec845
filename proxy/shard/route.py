"""Where a statement on a sharded database goes: a pure decision over the lexer's tokens.

``route(sql, layout, mode, flavor)`` takes one statement of the client (its original text,
comments and hints included), the logical database's :class:`Layout` (physical databases and
logical tables from one catalog snapshot) and decides:

* ``None`` -- the statement names no sharded or broadcast table: it runs where single tables
  live (physical database 0), as the session relays it today;
* a :class:`Route` -- its :class:`Target` list, each a physical database and the statement text
  to run there, in the fixed (shard, physical database) order every scatter acquires in;
* a :class:`NeedsSequence` -- an INSERT that takes its shard key from the table's GROUP sequence:
  called again with that many values;
* an ``SqlError`` raised -- refused (1235 naming why, 1146 for a physical name).

Routing (``sharding.md``): a WHERE that fixes the shard key with ``=``, ``IN (...)`` or an
``OR`` of those (at the top level of the condition, ANDed with anything) goes only to the
partitions that can hold those values (``proxy.shard.placement``); anything else scatters to
every physical table. A multi-row INSERT is split per partition. Writes to a broadcast table
go to every copy, reads to copy 0. A statement with no WHERE restriction reads everything.

Physical statement text: each physical database is the backend connection's default database,
so a table sharded over databases only keeps its name; a table split by TBPARTITION BY gets its
physical name (``t_03``) at each token position the lexer found for it (table references and
qualifiers ``t.col``), and a qualifier naming the logical database gets the physical database's
name; in a SELECT the reference becomes ``t_03 AS t`` instead and the qualifiers stay as
written (an expression's column name is its text). Nothing else of the client's text changes.
Refused when a name is ambiguous (a column named like a split table it would be renamed with).

Joins and subqueries (SELECT): allowed when co-located (``proxy.shard.joins``: sharded tables
joined on their shard keys with equal partitioning, or with broadcast tables); then every
table gets its physical name for the partition and physical table index, and a WHERE fixing
the key of any of the sharded tables routes. A scatter SELECT needing a merge (ORDER BY, GROUP
BY, aggregates, LIMIT, DISTINCT, HAVING, ...) says why in ``Route.merge``: every physical
table is one merge input.

v1 limits (1235, naming the reason): joins and subqueries that are not co-located, a sharded
table with a single table, multi-table UPDATE / DELETE (a WHERE's co-located subquery on the
written table is served) and INSERT ... SELECT on sharded tables, UPDATE of the shard key,
multi-partition UPDATE / DELETE with ORDER BY or LIMIT, INSERT ... SET into a sharded table, an
INSERT whose shard key is not a literal, prepared-statement parameters on sharded tables without
their values, a write on a sharded or broadcast table reading a table the logical database does
not hold (information_schema's, another database's: each partition would read its own).

Prepared statements: ``route(..., params=values)`` routes an execution, each parameter marker
standing for its value as the literal it would be (``bind_params``); the targets' texts keep
the markers (an INSERT split per partition says which parameters each holds:
``Route.params``). ``key_slots`` finds, once per prepared statement, where its key values come
from, so an execution routed by its key alone needs no lexing (``placed_targets`` gives the
target of a placement); ``copy_target`` is what a PREPARE's metadata is read from.
"""

from __future__ import annotations

import contextlib
import functools
import re
from array import array
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final, Literal, TypeVar

from auth.errors import ErrorCode, SqlError, not_supported, sql_error
from auth.model import (
    INTEGER_BITS,
    KeyType,
    LogicalTable,
    PhysicalDatabase,
    ShardKey,
    TableRule,
    auto_sequence_name,
)
from proxy.shard.ddl import parse_create_table
from proxy.shard.joins import check_colocated
from proxy.shard.placement import (
    IntegerHash,
    KeyValue,
    Placement,
    PlacementError,
    integer_hash,
    place,
    tables_in,
)
from proxy.shard.rows import split_rows
from proxy.shard.values import (
    NotALiteral,
    NotPlaceable,
    SqlValue,
    Substituted,
    literal_value,
    shard_key,
)
from proxy.sql.charsets import UTF8MB3, decode_text, utf8mb3_stored
from proxy.sql.lexer import (
    DEFAULT_MODE,
    NOT_ALIAS,
    LexedStatement,
    LexError,
    LexMode,
    ServerFlavor,
    Token,
    TokenKind,
    lex,
)
from proxy.sql.mariadb_words import FUNCTIONS, KEYWORDS

__all__ = [
    "BulkDeclined",
    "BulkRows",
    "KeySlots",
    "Layout",
    "NeedsSequence",
    "Route",
    "RouteKind",
    "Target",
    "TextShape",
    "bind_params",
    "bulk_rows",
    "check_broadcast_defaults",
    "copy_target",
    "hint_comment",
    "hinted",
    "key_slots",
    "named_tables",
    "placed_targets",
    "recode_strings",
    "route",
    "table_columns",
    "text_shape",
]

# DRDS's hints, at the start of a statement: /*+TDDL:node('db_0001', ...)*/, /*+TDDL:scan()*/.
_HINT = re.compile(r"\A\s*/\*\+TDDL:\s*(node|scan)\s*\((.*?)\)\s*\*/", re.IGNORECASE | re.DOTALL)

RouteKind = Literal["routed", "scatter", "broadcast", "copy", "hint"]

# Words a table name follows.
_TABLE_AFTER: Final = frozenset(
    {
        "FROM", "JOIN", "STRAIGHT_JOIN", "INTO", "UPDATE", "TABLE", "DESCRIBE", "DESC", "EXPLAIN",
        "INSERT", "REPLACE", "IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "QUICK", "IN",
    }
)  # fmt: skip
# Words after which "(" opens a parenthesized table reference or list (``FROM (a, b)``), not
# a list of values (``IN (``) or columns (``INTO t (``); "(" itself for ``FROM ((a))``.
_TABLE_LIST_PAREN: Final = {
    "FROM": True, "JOIN": True, "STRAIGHT_JOIN": True, "UPDATE": True, "(": True
}  # fmt: skip
# Words that start and end a list of tables (its commas separate table references).
_LIST_START: Final = frozenset({"FROM", "UPDATE"})
_LIST_END: Final = frozenset(
    {"WHERE", "ON", "USING", "GROUP", "ORDER", "LIMIT", "HAVING", "SET", "SELECT", "UNION",
     "WINDOW", "VALUES", "VALUE", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "NATURAL",
     "STRAIGHT_JOIN", "FOR", "LOCK", "INTO", "PARTITION", "RETURNING"}
)  # fmt: skip
_AGGREGATES: Final = frozenset(
    {
        "COUNT", "SUM", "MIN", "MAX", "AVG", "GROUP_CONCAT", "STD", "STDDEV", "STDDEV_POP",
        "STDDEV_SAMP", "VARIANCE", "VAR_POP", "VAR_SAMP", "BIT_AND", "BIT_OR", "BIT_XOR",
        "JSON_ARRAYAGG", "JSON_OBJECTAGG",
    }
)  # fmt: skip
_BLIND_WHY = "a backslash in a string under NO_BACKSLASH_ESCAPES in {}"
# Depth-0 words that end a WHERE condition.
_WHERE_END: Final = frozenset(
    {"GROUP", "ORDER", "LIMIT", "HAVING", "WINDOW", "FOR", "LOCK", "INTO", "UNION", "EXCEPT",
     "INTERSECT", "RETURNING", "PROCEDURE"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Layout:
    """A sharded logical database as routing sees it (from one catalog snapshot)."""

    name: str
    partitions: tuple[PhysicalDatabase, ...]
    tables: Mapping[str, LogicalTable]  # by lower-case name
    sequences: frozenset[str] = frozenset()  # its GROUP sequences' lower-case names

    @property
    def count(self) -> int:
        return len(self.partitions)


@dataclass(frozen=True, slots=True)
class Target:
    """One statement for one physical database (its backend connection's default database)."""

    partition: int
    shard: str
    database: str
    sql: str


@dataclass(frozen=True, slots=True)
class Route:
    """Where a statement goes. ``kind``: ``routed`` (only the partitions its key values fix),
    ``scatter`` (every physical table), ``broadcast`` (a write to every copy of a broadcast
    table), ``copy`` (a read of one copy, or a statement about a table's definition)."""

    kind: RouteKind
    table: str  # the logical table (sharded, else broadcast) the decision is about
    write: bool
    reads_rows: bool  # a SELECT (its targets' result sets are concatenated)
    targets: tuple[Target, ...]
    # The GROUP sequence values an INSERT took (the first is the client's insert id).
    sequence_values: tuple[int, ...] = ()
    # A scatter SELECT whose results need merging (ORDER BY, aggregates, ...): why; the
    # session's merge engine (proxy/merge) rewrites it for the partitions. None: concatenated.
    merge: str | None = None
    # A prepared statement's INSERT split per partition: per target, the indexes of the
    # client's parameters its text holds (empty: every target holds them all, in order).
    params: tuple[tuple[int, ...], ...] = ()
    # The lower-case names of the logical tables routing found in the statement (None: not
    # known): a table the analysis found and routing did not is refused by the plan.
    tables: frozenset[str] | None = None
    # An INSERT ... RETURNING the proxy answers itself (the targets' texts are without it).
    returning: Returning | None = None
    # A write answering rows, relayed from its one target (DELETE ... RETURNING).
    rows_back: bool = False

    @property
    def single(self) -> bool:
        return len(self.targets) == 1


@dataclass(frozen=True, slots=True)
class Returning:
    """An INSERT ... RETURNING of a sharded or broadcast table's AUTO_INCREMENT column (what
    ORMs send to learn the ids: Django on MariaDB 10.5+): the partitions run the INSERT without
    the clause and the proxy answers the rows itself, one per row of the statement in its
    order, from the values it knows (the sequence's, or those the rows gave). Each
    partition's own RETURNING would answer its rows only, in partition order."""

    table: str  # the logical table
    column: str  # the AUTO_INCREMENT column, as defined
    labels: tuple[str, ...]  # each item's column name (the column as written, or its alias)
    key_type: KeyType
    values: tuple[int, ...]  # per row of the statement, in its order
    flags: int = 0  # the column definition's flags (NOT_NULL, keys, AUTO_INCREMENT)
    width: int | None = None  # its display width (int(5)), None: the type's
    zerofill: bool = False  # ZEROFILL: each value padded with zeros to the width


@dataclass(frozen=True, slots=True)
class NeedsSequence:
    """An INSERT takes its shard key from ``sequence``: route again with ``count`` values."""

    sequence: str
    count: int


# ------------------------------------------------------------------------------------ helpers


def token_keyword(token: Token) -> str:
    return token.value.upper() if token.kind is TokenKind.WORD else ""


def is_name_token(token: Token) -> bool:
    return token.kind in (TokenKind.WORD, TokenKind.IDENT)


def is_op_token(token: Token | None, op: str) -> bool:
    return token is not None and token.kind is TokenKind.OP and token.value == op


def quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _refused(what: str) -> SqlError:
    return not_supported(what)


@functools.lru_cache(maxsize=1024)
def table_columns(definition: str) -> tuple[str, ...]:
    """The column names of a logical table's definition (its CREATE TABLE), in order."""
    statements = lex(definition)
    if len(statements) != 1:
        return ()
    try:
        created = parse_create_table(statements[0].text, lex(statements[0].text)[0])
    except SqlError:
        return ()
    return tuple(column.name for column in created.columns)


@functools.lru_cache(maxsize=1024)
def string_key_lengths(definition: str) -> Mapping[str, int]:
    """The lengths of the CHAR / VARCHAR columns of a logical table's definition, by
    lower-case name (what MariaDB truncates a longer value to)."""
    statements = lex(definition)
    try:
        created = parse_create_table(statements[0].text, lex(statements[0].text)[0])
    except (SqlError, IndexError):
        return {}
    return {c.name.lower(): c.length for c in created.columns if c.length is not None}


@functools.lru_cache(maxsize=1024)
def string_key_charsets(definition: str) -> Mapping[str, str]:
    """The character sets of the CHAR / VARCHAR columns of a logical table's definition, by
    lower-case name: a column's own, else the table's default as the shard's definition
    (SHOW CREATE TABLE, stored at CREATE and ALTER) says it; a column missing: not known."""
    statements = lex(definition)
    try:
        created = parse_create_table(statements[0].text, lex(statements[0].text)[0])
    except (SqlError, IndexError):
        return {}
    options = definition[definition.rfind("\n) ENGINE=") :] if "\n) ENGINE=" in definition else ""
    found = re.search(r" DEFAULT CHARSET=(\w+)", options)
    default = found.group(1).lower() if found is not None else None
    out: dict[str, str] = {}
    for column in created.columns:
        charset = column.charset or default
        if column.length is not None and charset is not None:
            out[column.name.lower()] = charset
    return out


# Character sets holding every character; those holding the Basic Multilingual Plane's.
_UNICODE: Final = frozenset({"utf8mb4", "utf16", "utf16le", "utf32"})
_BMP: Final = frozenset({"utf8mb3", "utf8", "ucs2"})
# MariaDB's latin1 is cp1252 whose 5 undefined bytes stand for U+0081, U+008D...
_LATIN1_UNDEFINED: Final = frozenset("\x81\x8d\x8f\x90\x9d")


def _converted(value: str, charset: str) -> str:
    """``value`` as MariaDB stores it in a column of ``charset`` without strict mode: each
    character the set cannot hold becomes ``?`` (strict mode refuses the row, 1366).
    NotPlaceable when that is not known (a character set the proxy does not map)."""
    if value.isascii() or charset in _UNICODE:
        return value
    if charset in _BMP:
        return "".join(c if ord(c) <= 0xFFFF else "?" for c in value)
    if charset == "ascii":
        return "".join(c if c.isascii() else "?" for c in value)
    if charset == "latin1":
        out = []
        for c in value:
            try:
                c.encode("cp1252")
            except UnicodeEncodeError:
                c = c if c in _LATIN1_UNDEFINED else "?"
            out.append(c)
        return "".join(out)
    raise NotPlaceable(
        f"a non-ASCII string for a column in character set {charset}, which the proxy cannot"
        " convert to"
    )


def _stored_key(table: LogicalTable, key: ShardKey, value: KeyValue) -> KeyValue:
    """A string key: placed as MariaDB stores it -- converted to the column's character set
    (``_converted``: a 4-byte character in a utf8mb3 column is ``?``), truncated to the
    column's length (without strict mode, or when only spaces are cut: else the shard
    refuses the row with 1406) and, in a CHAR column, without trailing spaces -- so a read
    by the stored value finds the row's partition."""
    if not isinstance(value, str):
        return value
    charset = string_key_charsets(table.definition).get(key.column.lower())
    if charset is not None and not value.isascii():
        # (not known: a definition as a client wrote it, of a table made before the shard's
        # was stored -- placed as given)
        value = _converted(value, charset)
    length = string_key_lengths(table.definition).get(key.column.lower())
    if length is not None and len(value) > length:
        value = value[:length]
    if key.type.name == "char":
        # A CHAR column pads what it stores and reads it back without trailing spaces: 'k '
        # is the row 'k' (a read by it, or another INSERT of 'k' -- a duplicate key there --
        # goes to that one's partition).
        value = value.rstrip(" ")
    return value


def _auto_increment_column(definition: str) -> str | None:
    statements = lex(definition)
    try:
        created = parse_create_table(statements[0].text, lex(statements[0].text)[0])
    except (SqlError, IndexError):
        return None
    return created.auto_increment_column


@dataclass(slots=True)
class _Reference:
    """A logical table named in the statement: where, and as what."""

    table: LogicalTable
    positions: list[int]  # token indexes of every mention (references and qualifiers)
    references: list[int]  # token indexes of table references (not followed by '.')
    alias: str | None = None


def _groups(tokens: Sequence[Token]) -> Sequence[int]:
    """Each token's parenthesis depth."""
    return _remembered(_groups_of, tokens, _groups_made)


def _groups_made(tokens: Sequence[Token]) -> list[int]:
    depth = 0
    out = []
    for token in tokens:
        if is_op_token(token, ")"):
            depth -= 1
        out.append(depth)
        if is_op_token(token, "("):
            depth += 1
    return out


def _split(tokens: Sequence[Token], op: str = ",") -> list[list[Token]]:
    """``tokens`` split at depth-0 ``op``."""
    items: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if is_op_token(token, "("):
            depth += 1
        elif is_op_token(token, ")"):
            depth -= 1
        elif depth == 0 and is_op_token(token, op):
            items.append([])
            continue
        items[-1].append(token)
    return items


# ------------------------------------------------------------------------------------ route


def route(
    sql: str,
    layout: Layout,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
    sequence_values: Sequence[int] | None = None,
    params: Sequence[SqlValue] | None = None,
    *,
    lexed: LexedStatement | None = None,
    codec: str | None = "utf-8",
    split: BulkRows | None = None,
) -> Route | NeedsSequence | None:
    """Where the one statement ``sql`` goes (see the module docstring); raises SqlError.
    ``params``: a prepared statement's parameter values (missing ones NULL), routed as the
    literals they stand for; the targets' texts keep the parameter markers. ``lexed``: ``sql``
    already lexed (in ``mode``, for ``flavor``), as one statement. ``codec``: the Python codec
    of the client's character set (``recode_strings``). ``split``: a multi-row INSERT's rows
    read by ``bulk_rows``, ``lexed`` then being its blanked text's (``BulkRows``); raises
    BulkDeclined for what that way does not decide (the caller routes the whole lexing).
    (Without values and rows read -- the plan's routing of a statement, every session anew --
    a short text's route is remembered for the layout.)"""
    if sequence_values is None and not params and split is None:
        return _remembered_for(
            layout,
            ("route", sql, mode, flavor, params is None, codec),
            lambda: _route(sql, layout, mode, flavor, None, params, lexed=lexed, codec=codec),
        )
    return _route(
        sql, layout, mode, flavor, sequence_values, params, lexed=lexed, codec=codec, split=split
    )


def _route(
    sql: str,
    layout: Layout,
    mode: LexMode,
    flavor: ServerFlavor | None,
    sequence_values: Sequence[int] | None,
    params: Sequence[SqlValue] | None,
    *,
    lexed: LexedStatement | None,
    codec: str | None,
    split: BulkRows | None = None,
) -> Route | NeedsSequence | None:
    if lexed is None:
        statements = lex(sql, mode, flavor)
        if len(statements) != 1:
            raise _refused("several statements in one command on a sharded database")
        lexed = statements[0]
    tokens = lexed.tokens
    if not tokens:
        return None
    if codec != "utf-8" or _national(sql):
        tokens = recode_strings(tokens, codec)
    if params is not None:
        tokens = bind_params(tokens, params)
    references = _references(tokens, layout)
    placed = [r for r in references.values() if r.table.rule.kind != "single"]
    if not placed:
        if split is not None:
            raise BulkDeclined
        return None
    sharded = [r for r in placed if r.table.rule.kind == "sharded"]
    singles = [r for r in references.values() if r.table.rule.kind == "single"]
    verb = token_keyword(tokens[0])
    select = verb == "SELECT" or (verb == "" and is_op_token(tokens[0], "("))
    # sqlglot (the co-location check, the merge engine) reads a backslash in a string as an
    # escape: under NO_BACKSLASH_ESCAPES it would read the rest of the statement otherwise.
    sqlglot_blind = mode.no_backslash_escapes and any(
        t.kind is TokenKind.STRING and "\\" in t.raw for t in tokens
    )
    joined = False
    if select and sharded and _several_tables(tokens, references):
        # Joins and subqueries: each partition runs them on its own data when co-located.
        if sqlglot_blind:
            raise _refused(_BLIND_WHY.format("a join or subquery on sharded tables"))
        check_colocated(sql, layout.tables, layout.name, _columns(layout))
        joined = True
    elif verb in ("UPDATE", "DELETE") and len(sharded) == 1 and len(sharded[0].references) > 1:
        # A write whose WHERE reads the same sharded table in a subquery (Django on MariaDB
        # 10.3.2+ writes a filter through a relation as `UPDATE t ... WHERE t.id IN (SELECT
        # U0.id FROM t U0 JOIN ...)`): each partition runs it on its own rows when the reading
        # is co-located, judged as the SELECT of the same tables and WHERE.
        probe = _write_as_select(sql, tokens, verb)
        if probe is not None:
            if sqlglot_blind:
                raise _refused(_BLIND_WHY.format("a subquery on sharded tables"))
            check_colocated(probe, layout.tables, layout.name, _columns(layout))
            joined = True
    if len(sharded) > 1 and not joined:
        names = " and ".join(sorted(r.table.name for r in sharded))
        raise _refused(f"a statement on several sharded tables ({names})")
    if sharded and singles:
        raise _refused(
            f"a statement on sharded table {sharded[0].table.name} and single table "
            f"{singles[0].table.name}"
        )
    if verb in ("UPDATE", "DELETE", "INSERT", "REPLACE"):
        # A table the layout does not hold (another database's, information_schema's, a
        # name it does not know) read by a write -- in a join, a subquery of its WHERE, its
        # VALUES or its ON DUPLICATE KEY UPDATE: each partition (each copy of a broadcast
        # table) would read its own (as a SELECT's join or subquery on it is refused:
        # check_colocated).
        other = _other_table(tokens, references)
        if other is not None:
            main = sharded[0] if sharded else placed[0]
            raise _refused(
                f"a statement on {main.table.rule.kind} table {main.table.name} and table {other}"
            )
    found = _decided(
        sql, tokens, layout, references, verb, select, joined, sharded, singles, placed,
        sequence_values, params, sqlglot_blind, split,
    )  # fmt: skip
    if isinstance(found, Route):
        return replace(found, tables=frozenset(references))
    return found


def _decided(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    verb: str,
    select: bool,
    joined: bool,
    sharded: list[_Reference],
    singles: list[_Reference],
    placed: list[_Reference],
    sequence_values: Sequence[int] | None,
    params: Sequence[SqlValue] | None,
    sqlglot_blind: bool,
    split: BulkRows | None = None,
) -> Route | NeedsSequence:
    """``route``'s decision once the statement's tables are known (see there)."""
    if split is not None and (singles or verb not in ("INSERT", "REPLACE")):
        raise BulkDeclined
    if singles:
        # Broadcast tables with single tables: physical database 0 has both -- to read, not
        # to write a broadcast table (its other copies would not get the write).
        if token_keyword(tokens[0]) in ("INSERT", "REPLACE", "UPDATE", "DELETE"):
            written = _written_broadcast(tokens, references)
            if written is not None:
                raise _refused(
                    f"a write to broadcast table {written.table.name} reading single table "
                    f"{singles[0].table.name}"
                )
        return _copy(sql, tokens, layout, references, (0,), placed[0].table.name, "copy")
    for ref in placed:
        if len(ref.references) > 1 and not joined:
            raise _refused(f"table {ref.table.name} named more than once in a statement")
    if params is None and any(t.kind is TokenKind.PARAM for t in tokens):
        raise _refused("prepared statement parameters on a sharded database's tables")
    if any(t.kind is TokenKind.USER_VAR for t in tokens):
        # They live on the session's connection to physical database 0 only.
        raise _refused("user variables in statements on sharded or broadcast tables")
    main = sharded[0] if sharded else placed[0]
    if main.table.rule.kind == "broadcast" and verb in ("INSERT", "REPLACE", "UPDATE", "DELETE"):
        named_at = {i for r in references.values() for i in r.positions}
        _check_deterministic(tokens, main.table.name, named_at)
    if verb in ("INSERT", "REPLACE"):
        return _insert(sql, tokens, layout, references, main, sequence_values, split)
    if verb in ("UPDATE", "DELETE"):
        return _update_delete(sql, tokens, layout, references, main, verb, joined)
    if select:
        found = _select(sql, tokens, layout, references, main)
        if found.merge is not None and sqlglot_blind:
            raise _refused(_BLIND_WHY.format(f"merging {found.merge} across partitions"))
        return found
    if verb == "CHECKSUM" and sharded:
        # (physical database 0's checksum would be one partition's rows')
        raise _refused(f"CHECKSUM TABLE across the partitions of table {sharded[0].table.name}")
    if verb in ("SHOW", "DESCRIBE", "DESC", "EXPLAIN", "CHECKSUM"):
        # About the table's definition: its first physical table answers.
        return _copy(sql, tokens, layout, references, (0,), main.table.name, "copy")
    raise _refused(f"{verb or 'this statement'} on sharded or broadcast table {main.table.name}")


# What each copy of a broadcast table would compute for itself, differently: the statement
# goes to every copy as it is, so a write using one would leave the copies disagreeing.
_NON_DETERMINISTIC_CALLS: Final = frozenset(
    [
        "RAND",
        "UUID",
        "UUID_SHORT",
        "SYS_GUID",
        "RANDOM_BYTES",
        "SYSDATE",
        "NOW",
        "CURDATE",
        "CURTIME",
        "UNIX_TIMESTAMP",
        "UTC_DATE",
        "UTC_TIME",
        "UTC_TIMESTAMP",
        "CURRENT_DATE",
        "CURRENT_TIME",
        "CURRENT_TIMESTAMP",
        "LOCALTIME",
        "LOCALTIMESTAMP",
        "CONNECTION_ID",
        "LAST_INSERT_ID",
        "ROW_COUNT",
        "FOUND_ROWS",
        "USER",
        "CURRENT_USER",
        "SESSION_USER",
        "SYSTEM_USER",
        "CURRENT_ROLE",
        "SLEEP",
        "GET_LOCK",
        "RELEASE_LOCK",
        "RELEASE_ALL_LOCKS",
        "IS_FREE_LOCK",
        "IS_USED_LOCK",
        "LOAD_FILE",
        "MASTER_POS_WAIT",
        "MASTER_GTID_WAIT",
        "NEXTVAL",
        "LASTVAL",
        "SETVAL",
        "VERSION",  # (each server's own, as @@version)
        "BINLOG_GTID_POS",  # (each server's binary log)
    ]
)
# ... of which these compute the same value everywhere given an argument (not UNIX_TIMESTAMP(
# date): it reads the date in the shard's time zone, which may be its system's).
_SAME_WITH_AN_ARGUMENT: Final = frozenset(["LAST_INSERT_ID"])
# ... and those of them that are called without parentheses as well.
_NON_DETERMINISTIC_WORDS: Final = frozenset(
    [
        "CURRENT_DATE",
        "CURRENT_TIME",
        "CURRENT_TIMESTAMP",
        "LOCALTIME",
        "LOCALTIMESTAMP",
        "UTC_DATE",
        "UTC_TIME",
        "UTC_TIMESTAMP",
        "CURRENT_USER",
        "CURRENT_ROLE",
    ]
)


# System variables whose value is each server's (or each connection's) own.
_PER_SERVER_VARIABLES: Final = frozenset(
    [
        "hostname",
        "server_id",
        "server_uuid",
        "port",
        "socket",
        "pid_file",
        "datadir",
        "basedir",
        "tmpdir",
        "version",
        "version_comment",
        "timestamp",
        "rand_seed1",
        "rand_seed2",
        "identity",
        "last_insert_id",
        "insert_id",
        "pseudo_thread_id",
        "gtid_binlog_pos",
        "gtid_current_pos",
        "gtid_slave_pos",
        "gtid_binlog_state",
        "gtid_domain_id",
        "gtid_seq_no",
        "last_gtid",
        "error_count",
        "warning_count",
        "report_host",
        "report_port",
        "log_bin_basename",
        "general_log_file",
        "slow_query_log_file",
        "log_error",
    ]
)


def _check_deterministic(tokens: Sequence[Token], table: str, names: Container[int]) -> None:
    """1235 for a write to broadcast table ``table`` calling a function each copy would
    compute for itself (the time, a random number, the connection's own values, a server's
    own variables...). ``names``: the indexes of the statement's table names (a table named
    ``now`` followed by its column list is not a call)."""
    for index, token in enumerate(tokens):
        if token.kind is _SYS_VAR and token.value.rsplit(".", 1)[-1] in _PER_SERVER_VARIABLES:
            raise _refused(
                f"@@{token.value} in a write to broadcast table {table}: each copy would"
                " write its own server's value (read it first and write the value)"
            )
        if (token.kind is not _WORD and token.kind is not _IDENT) or index in names:
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        called = following is not None and is_op_token(following, "(")
        if called and _stored_function(tokens, index):
            name = token.value
            raise _refused(
                f"{name}() in a write to broadcast table {table}: a stored or loadable"
                " function may compute its own value on each copy (compute it first and"
                " write the value)"
            )
        if token.kind is not _WORD or (index > 0 and is_op_token(tokens[index - 1], ".")):
            continue  # (``t.now`` is a column)
        word = token.value.upper()
        if (
            called
            and word in _SAME_WITH_AN_ARGUMENT
            and index + 2 < len(tokens)
            and not is_op_token(tokens[index + 2], ")")
        ):
            continue  # (LAST_INSERT_ID(expr) is expr)
        if (called and word in _NON_DETERMINISTIC_CALLS) or word in _NON_DETERMINISTIC_WORDS:
            what = f"{word}()"
        elif (
            word in ("NEXT", "PREVIOUS")
            and following is not None
            and (token_keyword(following) == "VALUE")
        ):
            what = f"{word} VALUE FOR"
        else:
            continue
        raise _refused(
            f"{what} in a write to broadcast table {table}: each copy would compute its own"
            " value (compute it first and write the value)"
        )


def check_broadcast_defaults(tokens: Sequence[Token], table: str) -> None:
    """1235 for a column ``DEFAULT (expression)`` of broadcast table ``table`` (a CREATE or
    ALTER TABLE's ``tokens``) calling a function each copy computes for itself (UUID(),
    RAND(), a stored function...): a write leaving the column out would store a value of
    its own in each copy, as a write calling it would (``_check_deterministic``)."""
    for index, token in enumerate(tokens[:-1]):
        if token_keyword(token) != "DEFAULT" or not is_op_token(tokens[index + 1], "("):
            continue
        depth, end = 0, index + 1
        for end in range(index + 1, len(tokens)):
            if is_op_token(tokens[end], "("):
                depth += 1
            elif is_op_token(tokens[end], ")"):
                depth -= 1
                if depth == 0:
                    break
        try:
            _check_deterministic(tokens[index + 1 : end + 1], table, ())
        except SqlError as refused:
            called = refused.message.split(" in a write to ", 1)[0].rsplit("'", 1)[-1]
            raise _refused(
                f"a column DEFAULT calling {called} in broadcast table {table}: each copy"
                " would store a value of its own (give the column a constant default, or"
                " write its value)"
            ) from None


def _stored_function(tokens: Sequence[Token], index: int) -> bool:
    """Whether the name at ``index``, followed by ``(``, calls a stored function (or a
    loadable one): quoted, qualified (``db.f(``), or a word that is neither one of MariaDB's
    built-in functions nor a keyword (``IF(``, ``LEFT(``, ``VALUES(``, ``CHAR(10)``...) --
    except a CTE's name before its column list (``WITH c (a) AS``)."""
    token = tokens[index]
    before = tokens[index - 1] if index > 0 else None
    if before is not None and (
        token_keyword(before) in ("WITH", "RECURSIVE")
        or (is_op_token(before, ",") and _in_with(tokens, index))
    ):
        return False
    if token.kind is _IDENT or (before is not None and is_op_token(before, ".")):
        return True
    word = token.value.upper()
    return not (
        word in FUNCTIONS
        or word in KEYWORDS
        or word in _NATIVE_FUNCTIONS
        or word.startswith(("ST_", "MBR", "COLUMN_"))
    )


# MariaDB's built-in functions that are neither in information_schema.SQL_FUNCTIONS nor
# keywords (the spatial ones besides ST_* and MBR*).
_NATIVE_FUNCTIONS: Final = frozenset(
    """
    AREA ASBINARY ASTEXT ASWKB ASWKT BOUNDARY BUFFER CENTROID CONTAINS CONVEXHULL CROSSES
    DIMENSION DISJOINT ENDPOINT ENVELOPE EQUALS EXTERIORRING GEOMCOLLFROMTEXT GEOMCOLLFROMWKB
    GEOMETRYCOLLECTION GEOMETRYCOLLECTIONFROMTEXT GEOMETRYCOLLECTIONFROMWKB GEOMETRYFROMTEXT
    GEOMETRYFROMWKB GEOMETRYN GEOMETRYTYPE GEOMFROMTEXT GEOMFROMWKB GLENGTH INTERIORRINGN
    INTERSECTS ISCLOSED ISEMPTY ISRING ISSIMPLE LINEFROMTEXT LINEFROMWKB LINESTRING
    LINESTRINGFROMTEXT LINESTRINGFROMWKB MLINEFROMTEXT MLINEFROMWKB MPOINTFROMTEXT MPOINTFROMWKB
    MPOLYFROMTEXT MPOLYFROMWKB MULTILINESTRING MULTILINESTRINGFROMTEXT MULTILINESTRINGFROMWKB
    MULTIPOINT MULTIPOINTFROMTEXT MULTIPOINTFROMWKB MULTIPOLYGON MULTIPOLYGONFROMTEXT
    MULTIPOLYGONFROMWKB NUMGEOMETRIES NUMINTERIORRINGS NUMPOINTS OVERLAPS POINT POINTFROMTEXT
    POINTFROMWKB POINTN POINTONSURFACE POLYFROMTEXT POLYFROMWKB POLYGON POLYGONFROMTEXT
    POLYGONFROMWKB SRID STARTPOINT TOUCHES WITHIN X Y
    """.split()  # noqa: SIM905
)


def _in_with(tokens: Sequence[Token], index: int) -> bool:
    """Whether ``index`` is in a WITH clause's list of CTEs (before the main statement)."""
    depths = _groups(tokens)
    for at in range(index - 1, -1, -1):
        if depths[at] == 0 and token_keyword(tokens[at]) == "WITH":
            return True
        if depths[at] == 0 and token_keyword(tokens[at]) in ("SELECT", "INSERT", "REPLACE"):
            return False
    return False


def _written_broadcast(
    tokens: Sequence[Token], references: Mapping[str, _Reference]
) -> _Reference | None:
    """A broadcast table a write (INSERT, REPLACE, UPDATE, DELETE) changes, if any: the
    first table it names (INSERT INTO b, UPDATE b, DELETE FROM b), one whose column a
    multi-table UPDATE sets (``SET b.v = ...``, or a column only it has), or one in a
    multi-table DELETE's list."""
    first = min(references.values(), key=lambda r: min(r.references, default=len(tokens)))
    if first.table.rule.kind == "broadcast":
        return first
    named: dict[str, _Reference] = {}
    for ref in references.values():
        named[ref.table.key] = ref
        if ref.alias is not None:
            named[ref.alias.lower()] = ref
    depths = _groups(tokens)
    verb = token_keyword(tokens[0])
    found: list[str] = []  # the names of the tables written, lower case
    if verb == "UPDATE":
        at = next(
            (i for i, t in enumerate(tokens) if depths[i] == 0 and token_keyword(t) == "SET"),
            len(tokens),
        )
        end = next(
            (
                i
                for i in range(at, len(tokens))
                if depths[i] == 0 and token_keyword(tokens[i]) in ("WHERE", "ORDER", "LIMIT")
            ),
            len(tokens),
        )
        for item in _split(tokens[at + 1 : end]):
            equals = next((i for i, t in enumerate(item) if is_op_token(t, "=")), len(item))
            if equals >= 3 and is_op_token(item[equals - 2], "."):
                found.append(item[equals - 3].value.lower())
            elif equals == 1:  # an unqualified column: a broadcast table's alone
                column = item[0].value.lower()
                holders = [
                    r
                    for r in references.values()
                    if column in (c.lower() for c in table_columns(r.table.definition))
                ]
                if len(holders) == 1:
                    found.append(holders[0].table.key)
    elif verb == "DELETE":
        words = [token_keyword(t) for t in tokens]
        start = 1
        end = words.index("FROM") if "FROM" in words else len(tokens)
        if end == next((i for i, w in enumerate(words[1:], 1) if w not in _DELETE_OPTIONS), 0):
            # DELETE FROM t1, t2 USING ...: the list between FROM and USING
            start = end + 1
            end = words.index("USING") if "USING" in words else start
        for item in _split(tokens[start:end]):
            names = [t for t in item if t.kind is _WORD or t.kind is _IDENT]
            if names and token_keyword(names[0]) not in _DELETE_OPTIONS:
                dot = len(item) >= 2 and is_op_token(item[1], ".") and item[-1].raw != "*"
                found.append((item[2] if dot and len(item) > 2 else item[0]).value.lower())
    for name in found:
        written = named.get(name)
        if written is not None and written.table.rule.kind == "broadcast":
            return written
    return None


_DELETE_OPTIONS: Final = frozenset({"LOW_PRIORITY", "QUICK", "IGNORE"})


def _several_tables(tokens: Sequence[Token], references: Mapping[str, _Reference]) -> bool:
    """Whether a SELECT names more than one table (or one twice) or has a subquery."""
    if sum(len(r.references) for r in references.values()) > 1:
        return True
    depths = _groups(tokens)
    if any(depths[i] > 0 and token_keyword(t) == "SELECT" for i, t in enumerate(tokens)):
        return True
    return len(_table_positions(tokens)) > 1


_WRITE_CLAUSES: Final = frozenset({"SET", "FROM", "WHERE", "ORDER", "LIMIT", "USING"})


def _write_as_select(sql: str, tokens: Sequence[Token], verb: str) -> str | None:
    """A single-table ``UPDATE t SET c = e, ... WHERE w`` or ``DELETE FROM t WHERE w`` as
    ``SELECT e, ... FROM t WHERE w`` (``SELECT 1`` for a DELETE): the SELECT whose
    co-location (check_colocated) is the write's. None: another form (a multi-table write,
    ORDER BY or LIMIT, no WHERE)."""
    depths = _groups(tokens)
    at = {
        token_keyword(t): i
        for i, t in enumerate(tokens)
        if depths[i] == 0
        and token_keyword(t) in ("SET", "FROM", "WHERE", "ORDER", "LIMIT", "USING")
    }
    if "WHERE" not in at or "ORDER" in at or "LIMIT" in at or "USING" in at:
        return None
    where = sql[tokens[at["WHERE"]].pos :]
    if verb == "DELETE":
        if "FROM" not in at or at["FROM"] > at["WHERE"]:
            return None
        tables = sql[tokens[at["FROM"] + 1].pos : tokens[at["WHERE"]].pos]
        return f"SELECT 1 FROM {tables} {where}"
    if "SET" not in at or at["SET"] > at["WHERE"]:
        return None
    first = 1
    while first < at["SET"] and token_keyword(tokens[first]) in ("LOW_PRIORITY", "IGNORE"):
        first += 1  # (UPDATE LOW_PRIORITY IGNORE t ...)
    tables = sql[tokens[first].pos : tokens[at["SET"]].pos]
    values = []
    for item in _split(list(tokens[at["SET"] + 1 : at["WHERE"]])):
        equals = next((i for i, t in enumerate(item) if is_op_token(t, "=")), None)
        if equals is None or equals + 1 >= len(item):
            return None
        values.append(sql[item[equals + 1].pos : item[-1].pos + len(item[-1].raw)])
    return f"SELECT {', '.join(values)} FROM {tables} {where}"


def _other_table(tokens: Sequence[Token], references: Mapping[str, _Reference]) -> str | None:
    """A table name of the statement that is none of ``references`` (qualified as written);
    None: none."""
    known = {i for r in references.values() for i in r.positions}
    ctes: set[str] | None = None
    for index in _table_positions(tokens):
        if index in known:
            continue
        name = tokens[index].value
        qualified = index >= 2 and is_op_token(tokens[index - 1], ".")
        if not qualified and tokens[index].kind is TokenKind.WORD and name.upper() == "DUAL":
            continue  # FROM DUAL: no table
        if not qualified:
            if ctes is None:
                ctes = _cte_names(tokens)
            if name.lower() in ctes:
                continue  # a common table expression of the statement's WITH
        if qualified:
            name = f"{tokens[index - 2].value}.{name}"
        return name
    return None


def _cte_names(tokens: Sequence[Token]) -> set[str]:
    """The lower-case names the statement's ``WITH [RECURSIVE] name [(columns)] AS (...), ...``
    clauses define (a name of one is read as its table, not a stored one)."""
    names: set[str] = set()
    count = len(tokens)
    for index, token in enumerate(tokens):
        if token_keyword(token) != "WITH":
            continue
        at = index + 1
        if at < count and token_keyword(tokens[at]) == "RECURSIVE":
            at += 1
        while at < count and is_name_token(tokens[at]):
            name = tokens[at].value.lower()
            at += 1
            if at < count and is_op_token(tokens[at], "("):
                at = _matching(tokens, at) + 1
            if at + 1 >= count or token_keyword(tokens[at]) != "AS":
                break
            if not is_op_token(tokens[at + 1], "("):
                break
            names.add(name)
            at = _matching(tokens, at + 1) + 1
            if at < count and is_op_token(tokens[at], ","):
                at += 1
            else:
                break
    return names


def _columns(layout: Layout) -> dict[str, frozenset[str]]:
    """Each logical table's lower-case column names (left out when its definition does not
    parse: then they are unknown, and a column name is never resolved by them)."""
    out = {}
    for key, table in layout.tables.items():
        names = table_columns(table.definition)
        if names:
            out[key] = frozenset(c.lower() for c in names)
    return out


# What _table_positions and _groups found for a tuple of tokens (lex() remembers a short
# text's tokens: a statement a session prepares is routed several times, each session anew),
# by id() of the tuple (each entry holds its tuple: the id is not reused meanwhile).
_DERIVED_KEPT = 256
_DERIVED_LONGEST = 512  # tokens (an INSERT of many rows is not remembered)
_positions_of: dict[int, tuple[Sequence[Token], tuple[int, ...]]] = {}
_groups_of: dict[int, tuple[Sequence[Token], tuple[int, ...]]] = {}


def _remembered(
    memo: dict[int, tuple[Sequence[Token], tuple[int, ...]]],
    tokens: Sequence[Token],
    make: Callable[[Sequence[Token]], list[int]],
) -> Sequence[int]:
    """``make(tokens)``, remembered for a tuple of (immutable) tokens."""
    if type(tokens) is not tuple or len(tokens) > _DERIVED_LONGEST:
        return make(tokens)
    entry = memo.get(id(tokens))
    if entry is not None and entry[0] is tokens:
        return entry[1]
    found = tuple(make(tokens))
    if len(memo) >= _DERIVED_KEPT:
        memo.clear()
    memo[id(tokens)] = (tokens, found)
    return found


def _table_positions(tokens: Sequence[Token]) -> Sequence[int]:
    """The token indexes where the grammar has a table name: after FROM, JOIN, INTO, UPDATE,
    TABLE, DESCRIBE ..., and after the commas of a FROM list (for ``db.t``: the index of
    ``t``). One pass, each token looked at once (an INSERT of many rows is mostly tokens)."""
    return _remembered(_positions_of, tokens, _table_positions_made)


def _table_positions_made(tokens: Sequence[Token]) -> list[int]:
    found = []
    in_from = [False]  # per parenthesis depth: inside a FROM / UPDATE table list
    count = len(tokens)
    after_word = False  # the previous token is a word after which a table name comes
    after_comma = False  # the previous token is a comma
    index = 0
    while index < count:
        token = tokens[index]
        kind = token.kind
        word = ""
        if kind is _OP:
            value = token.value
            if value == "(":
                # ``FROM (a, b)``, ``JOIN (b)``, ``, (b)``: a parenthesized table reference
                # (or list) where a table name could stand, read as a FROM list; a derived
                # table's SELECT ends that list at once.
                where_table = (
                    after_word and _TABLE_LIST_PAREN.get(tokens[index - 1].value.upper(), False)
                ) or (after_comma and in_from[-1])
                in_from.append(where_table)
                if where_table:
                    index += 1
                    after_word = True  # the first name follows
                    after_comma = False
                    continue
            elif value == ")" and len(in_from) > 1:
                in_from.pop()
        elif kind is _WORD:
            word = token.value.upper()
            if word == "UPDATE" and index and token_keyword(tokens[index - 1]) == "KEY":
                # ON DUPLICATE KEY UPDATE: columns follow, no table
                word = ""
                in_from[-1] = False
            elif word in _LIST_START:
                in_from[-1] = True
            elif (
                word == "USING"
                and len(in_from) == 1
                and not is_op_token(tokens[index + 1] if index + 1 < count else None, "(")
            ):
                # DELETE FROM t USING a, b ... (a join's USING is followed by its columns;
                # CONVERT(x USING utf8mb4) and CHAR(65 USING latin1) are in parentheses)
                in_from[-1] = True
                after_word = True
                after_comma = False
                index += 1
                continue
            elif word in _LIST_END:
                in_from[-1] = False
        if (
            (after_word or (after_comma and in_from[-1]))
            and (kind is _WORD or kind is _IDENT)
            and word not in NOT_ALIAS
            and word not in _RESERVED_BEFORE_TABLE
            and not (word == "QUICK" and index and _modifies_delete(tokens, index))
        ):
            if index + 2 < count and is_op_token(tokens[index + 1], "."):
                found.append(index + 2)  # db.t
                index += 3
                after_word = token_keyword(tokens[index - 1]) in _TABLE_AFTER
                after_comma = is_op_token(tokens[index - 1], ",")
                continue
            found.append(index)
        after_word = word in _TABLE_AFTER
        after_comma = kind is _OP and token.value == ","
        index += 1
    return found


_OP, _WORD, _IDENT = TokenKind.OP, TokenKind.WORD, TokenKind.IDENT
# Reserved words of _TABLE_AFTER, never a table's name unquoted: a statement modifier
# (UPDATE LOW_PRIORITY t, DELETE IGNORE FROM t) or the word the table follows.
_RESERVED_BEFORE_TABLE: Final = frozenset(
    {"LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "FROM", "JOIN", "STRAIGHT_JOIN",
     "INTO", "UPDATE", "TABLE", "IN"}
)  # fmt: skip


def _modifies_delete(tokens: Sequence[Token], index: int) -> bool:
    """Whether the QUICK at ``index`` is a modifier of DELETE (``DELETE [LOW_PRIORITY]
    [QUICK] [IGNORE] FROM``), not a table named quick."""
    at = index - 1
    while at >= 0 and token_keyword(tokens[at]) in ("LOW_PRIORITY", "IGNORE", "QUICK"):
        at -= 1
    return at >= 0 and token_keyword(tokens[at]) == "DELETE"


_SYS_VAR = TokenKind.SYS_VAR


def _references(tokens: Sequence[Token], layout: Layout) -> dict[str, _Reference]:
    """Every logical table the statement names, with the positions of its names: its table
    references (``_table_positions``), the qualifiers ``t.col`` naming it, and an alias with
    its name. 1146 for a physical table's name (never accepted); 1235 when the name of a table
    split by TBPARTITION BY (which is renamed) is used for something else in the statement."""
    physical_only = split_physical_names(layout)
    found: dict[str, _Reference] = {}
    db_key = layout.name.lower()
    claimed: set[int] = set()
    for index in _table_positions(tokens):
        token = tokens[index]
        if (
            index >= 2
            and is_op_token(tokens[index - 1], ".")
            and tokens[index - 2].value.lower() != db_key
        ):
            continue  # another database's table (the analysis refuses those)
        key = token.value.lower()
        table = layout.tables.get(key)
        if table is None:
            if key in physical_only:
                raise sql_error(
                    ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{token.value}' doesn't exist"
                )
            continue
        ref = found.get(key)
        if ref is None:
            ref = found[key] = _Reference(table, [], [])
        ref.positions.append(index)
        ref.references.append(index)
        claimed.add(index)
        after = index + 1
        if after < len(tokens) and token_keyword(tokens[after]) == "AS":
            after += 1
        if after < len(tokens):
            word = tokens[after]
            if (
                is_name_token(word)
                and token_keyword(word) not in NOT_ALIAS
                and not is_op_token(tokens[after + 1] if after + 1 < len(tokens) else None, ".")
            ):
                if ref.alias is None:
                    ref.alias = word.value
                if word.value.lower() == key:
                    ref.positions.append(after)  # ``t AS t``: renamed alike
                claimed.add(after)
    # Qualifiers: ``t.col`` and ``db.t.col`` name the table (unless an alias has its name).
    aliases = {ref.alias.lower() for ref in found.values() if ref.alias is not None}
    for index, token in enumerate(tokens):
        if index in claimed or not is_name_token(token):
            continue
        key = token.value.lower()
        ref = found.get(key)
        if ref is None or not ref.table.rule.split_tables:
            continue
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        prev = tokens[index - 1] if index > 0 else None
        qualified_by_db = (
            is_op_token(prev, ".") and index >= 2 and tokens[index - 2].value.lower() == db_key
        )
        if is_op_token(nxt, ".") and (not is_op_token(prev, ".") or qualified_by_db):
            if key in aliases and ref.alias is not None and ref.alias.lower() != key:
                raise _refused(f"an alias named like table {ref.table.name} in a statement on it")
            ref.positions.append(index)
            continue
        raise _refused(
            f"the name {token.value} for something other than table {ref.table.name} in a"
            " statement on it"
        )
    return found


def named_tables(tokens: Sequence[Token], layout: Layout) -> list[LogicalTable]:
    """The logical tables the statement of ``tokens`` names where the grammar has a table
    name, in the order first named (1146 for a split table's physical name, as routing)."""
    return [ref.table for ref in _references(tokens, layout).values()]


def split_physical_names(layout: Layout) -> frozenset[str]:
    """The lower-case names of the physical tables of tables split by TBPARTITION BY (never
    a name a client may use: 1146)."""
    names: set[str] = set()
    for table in layout.tables.values():
        if table.rule.split_tables:
            names.update(n.lower() for _, n in table.physical_tables(layout.count))
    return frozenset(names)


def _text_for(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    names: Mapping[str, str],
    physical: PhysicalDatabase,
    extra: Sequence[tuple[int, int, str]] = (),
    aliased: bool = False,
) -> str:
    """``sql`` with each mention of a split table replaced by its physical name ``names[key]``
    and each qualifier naming the logical database by ``physical``'s name; ``extra``
    replacements (start, end, text) too.

    ``aliased`` (SELECTs): a split table's references become ``t_03 AS t`` where the client
    gave no alias, and its qualifiers stay as written, so an expression's column name (``MIN(
    t.id)``, the text as written) and the column definitions' table are what one server
    holding ``t`` sends (not where a qualifier names the database, or before PARTITION)."""
    splices = _splices(tokens, layout, references, names, physical, extra, aliased)
    out = []
    at = 0
    for start, end, text in splices:
        out.append(sql[at:start])
        out.append(text)
        at = end
    out.append(sql[at:])
    return "".join(out)


def _splices(
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    names: Mapping[str, str],
    physical: PhysicalDatabase,
    extra: Sequence[tuple[int, int, str]] = (),
    aliased: bool = False,
) -> list[tuple[int, int, str]]:
    """:func:`_text_for`'s replacements (start, end, text), in order."""
    splices: list[tuple[int, int, str]] = []
    for key, ref in references.items():
        name = names.get(key)
        if name is None:
            continue
        if aliased and _aliasable(tokens, ref):
            for index in ref.references:
                token = tokens[index]
                text = quote_name(name)
                if not _has_alias(tokens, index):
                    text += " AS " + quote_name(token.value)
                splices.append((token.pos, token.pos + len(token.raw), text))
            continue
        for index in ref.positions:
            token = tokens[index]
            splices.append((token.pos, token.pos + len(token.raw), quote_name(name)))
    db_key = layout.name.lower()
    for index, token in enumerate(tokens[:-1]):
        if (
            is_name_token(token)
            and token.value.lower() == db_key
            and is_op_token(tokens[index + 1], ".")
        ):
            if index > 0 and is_op_token(tokens[index - 1], "."):
                continue
            splices.append((token.pos, token.pos + len(token.raw), quote_name(physical.name)))
    # (a name inside a span an extra replacement rewrites is rewritten with it: an INSERT's
    # RETURNING clause, left out, may qualify its columns with the table's name)
    splices = [s for s in splices if not any(e[0] <= s[0] < e[1] for e in extra)]
    splices.extend(extra)
    splices.sort()
    return splices


def _has_alias(tokens: Sequence[Token], index: int) -> bool:
    """Whether the table reference at ``index`` is followed by an alias."""
    after = index + 1
    if after < len(tokens) and token_keyword(tokens[after]) == "AS":
        return True
    return (
        after < len(tokens)
        and is_name_token(tokens[after])
        and token_keyword(tokens[after]) not in NOT_ALIAS
        and not is_op_token(tokens[after + 1] if after + 1 < len(tokens) else None, ".")
    )


def _aliasable(tokens: Sequence[Token], ref: _Reference) -> bool:
    """Whether a split table can be given its logical name as an alias: no qualifier of it
    names the database (``db.t.col`` could not name the alias) and no reference is followed
    by PARTITION (which comes before an alias)."""
    references = set(ref.references)
    for index in ref.positions:
        if index in references:
            nxt = tokens[index + 1] if index + 1 < len(tokens) else None
            if nxt is not None and token_keyword(nxt) == "PARTITION":
                return False
        elif index > 0 and is_op_token(tokens[index - 1], "."):
            return False
    return True


def _physical_choices(
    layout: Layout, references: Mapping[str, _Reference], placements: Iterable[Placement]
) -> list[tuple[int, dict[str, str]]]:
    """For each placement of the main table: (physical database, physical names of the split
    tables named), broadcast split tables never happen (a broadcast table is not split)."""
    out = []
    for placement in placements:
        names = {}
        for key, ref in references.items():
            if ref.table.rule.split_tables:
                names[key] = ref.table.physical_tables(layout.count)[placement.table][1]
        out.append((placement.database, names))
    return out


def _targets(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    placements: Iterable[Placement],
    aliased: bool = False,
    extra: Sequence[tuple[int, int, str]] = (),
) -> tuple[Target, ...]:
    found = []
    for database, names in _physical_choices(layout, references, placements):
        physical = layout.partitions[database]
        text = _text_for(sql, tokens, layout, references, names, physical, extra, aliased)
        found.append((physical, text))
    return _ordered(found)


def _ordered(found: Iterable[tuple[PhysicalDatabase, str]]) -> tuple[Target, ...]:
    """Targets in the fixed acquisition order: shard name, then physical database index (the
    order of the statements within one physical database is kept)."""
    indexed = list(enumerate(found))
    indexed.sort(key=lambda item: (item[1][0].shard, item[1][0].index, item[0]))
    return tuple(Target(p.index, p.shard, p.name, text) for _, (p, text) in indexed)


def _all_placements(table: LogicalTable, count: int) -> list[Placement]:
    rule = table.rule
    if rule.kind == "broadcast":
        return [Placement(db, db) for db in range(count)]
    return [Placement(db, g) for db in range(count) for g in tables_in(rule, count, db)]


def _copy(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    databases: Sequence[int],
    table: str,
    kind: RouteKind,
) -> Route:
    placements = [Placement(db, _first_table(references, layout, db)) for db in databases]
    targets = _targets(sql, tokens, layout, references, placements)
    return Route(kind, table, kind == "broadcast", False, targets)


def _first_table(references: Mapping[str, _Reference], layout: Layout, db: int) -> int:
    for ref in references.values():
        if ref.table.rule.kind == "sharded":
            return tables_in(ref.table.rule, layout.count, db)[0]
    return db


# ------------------------------------------------------------------------------- conditions


def _where(tokens: Sequence[Token]) -> list[Token] | None:
    """The tokens of the statement's top-level WHERE condition (None: there is none)."""
    depths = _groups(tokens)
    start = None
    for index, token in enumerate(tokens):
        if depths[index] != 0:
            continue
        word = token_keyword(token)
        if start is None and word == "WHERE":
            start = index + 1
        elif start is not None and word in _WHERE_END:
            if word == "WINDOW" and not _window_clause(tokens, index):
                continue  # a column named ``window`` (MariaDB does not reserve the word)
            return list(tokens[start:index])
    return None if start is None else list(tokens[start:])


def _window_clause(tokens: Sequence[Token], at: int) -> bool:
    """The WINDOW at ``at`` opens a WINDOW clause (``WINDOW w AS (``), not a name."""
    return (
        at + 3 < len(tokens)
        and is_name_token(tokens[at + 1])
        and token_keyword(tokens[at + 2]) == "AS"
        and is_op_token(tokens[at + 3], "(")
    )


def _values_for(
    condition: Sequence[Token], column: str, qualifiers: set[str]
) -> list[tuple[Token, ...]] | None:
    """The literals ``condition`` restricts ``column`` to (None: not restricted)."""
    return _or(list(condition), column.lower(), qualifiers)


def _or(tokens: list[Token], column: str, qualifiers: set[str]) -> list[tuple[Token, ...]] | None:
    # Not at "||": OR by default, but a concatenation under PIPES_AS_CONCAT (and ANSI), where
    # ``id = 1 || 2 = id`` is ``(id = '12') = id``; a part holding one does not fix the key.
    # Nor is a condition holding one at its own level read as a conjunction: by default
    # ``||`` is OR, which binds less tightly than AND (``id = 1 AND x = 0 || 1`` is
    # ``(id = 1 AND x = 0) OR 1``, every row), and which it is depends on the sql_mode.
    if len(_split_words(tokens, ("||",))) > 1:
        return None
    parts = _split_words(tokens, ("OR",))
    if any(len(_split_words(part, ("XOR",))) > 1 for part in parts):
        return None  # XOR binds less tightly than AND: its operands are not conjunctions
    if len(parts) > 1:
        found: list[tuple[Token, ...]] = []
        for part in parts:
            values = _and(part, column, qualifiers)
            if values is None:
                return None
            found += values
        return found
    return _and(tokens, column, qualifiers)


def _and(tokens: list[Token], column: str, qualifiers: set[str]) -> list[tuple[Token, ...]] | None:
    best: list[tuple[Token, ...]] | None = None
    for part in _split_words(tokens, ("AND", "&&")):
        values = _atom(part, column, qualifiers)
        if values is not None and (best is None or len(values) < len(best)):
            best = values
    return best


def _split_words(tokens: list[Token], words: tuple[str, ...]) -> list[list[Token]]:
    """Split at depth-0 ``words`` (the AND of ``BETWEEN a AND b`` is not a conjunction, nor
    are the words between CASE and its END)."""
    parts: list[list[Token]] = [[]]
    depth = 0
    cases = 0
    between = False
    for token in tokens:
        if is_op_token(token, "("):
            depth += 1
        elif is_op_token(token, ")"):
            depth -= 1
        elif depth == 0 and token_keyword(token) == "CASE":
            cases += 1
        elif depth == 0 and cases and token_keyword(token) == "END":
            cases -= 1
        elif depth == 0 and not cases:
            word = token_keyword(token) or (token.value if token.kind is TokenKind.OP else "")
            if word == "BETWEEN":
                between = True
            elif word in words:
                if word in ("AND", "&&") and between:
                    between = False
                else:
                    parts.append([])
                    continue
        parts[-1].append(token)
    return parts


def _is_column(tokens: Sequence[Token], column: str, qualifiers: set[str]) -> bool:
    if len(tokens) == 1:
        return is_name_token(tokens[0]) and tokens[0].value.lower() == column
    if len(tokens) == 3 and is_op_token(tokens[1], "."):
        return (
            is_name_token(tokens[0])
            and is_name_token(tokens[2])
            and tokens[0].value.lower() in qualifiers
            and tokens[2].value.lower() == column
        )
    return False


def _atom(tokens: list[Token], column: str, qualifiers: set[str]) -> list[tuple[Token, ...]] | None:
    if not tokens:
        return None
    if is_op_token(tokens[0], "(") and is_op_token(tokens[-1], ")") and _closes_at_end(tokens):
        return _or(tokens[1:-1], column, qualifiers)
    equals = [i for i, t in enumerate(tokens) if is_op_token(t, "=")]
    if len(equals) == 1:
        at = equals[0]
        left, right = tokens[:at], tokens[at + 1 :]
        if _is_column(left, column, qualifiers) and _literal(right):
            return [tuple(right)]
        if _is_column(right, column, qualifiers) and _literal(left):
            return [tuple(left)]
        return None
    for at in range(1, len(tokens)):
        if token_keyword(tokens[at]) == "IN" and is_op_token(
            tokens[at + 1] if at + 1 < len(tokens) else None, "("
        ):
            if not _is_column(tokens[:at], column, qualifiers) or not is_op_token(tokens[-1], ")"):
                return None
            inner = tokens[at + 2 : -1]
            if not _closes_at_end(tokens[at + 1 :]):
                return None
            items = _split(inner)
            if not all(_literal(item) for item in items):
                return None
            return [tuple(item) for item in items]
    return None


def _closes_at_end(tokens: Sequence[Token]) -> bool:
    """``tokens`` starts with '(' whose matching ')' is the last token."""
    depth = 0
    for index, token in enumerate(tokens):
        if is_op_token(token, "("):
            depth += 1
        elif is_op_token(token, ")"):
            depth -= 1
            if depth == 0:
                return index == len(tokens) - 1
    return False


def _literal(tokens: Sequence[Token]) -> bool:
    try:
        literal_value(tokens)
    except NotALiteral:
        return False
    return True


def _key_placements(
    layout: Layout,
    rule: TableRule,
    db_values: Sequence[KeyValue] | None,
    tb_values: Sequence[KeyValue] | None,
) -> list[Placement] | None:
    """The placements rows with these key values can be in (None: every one)."""
    if db_values is None:
        return None
    count = layout.count
    assert rule.db_key is not None
    found: dict[Placement, None] = {}
    try:
        for value in db_values:
            if rule.tb_key is None or rule.tb_key.same_as(rule.db_key):
                found[place(rule, count, value, value)] = None
                continue
            if tb_values is None:
                db = place(rule, count, value).database
                for g in tables_in(rule, count, db):
                    found[Placement(db, g)] = None
                continue
            for other in tb_values:
                found[place(rule, count, value, other)] = None
    except PlacementError as exc:
        raise _refused(str(exc)) from None
    return sorted(found)


def _restricted(
    tokens: Sequence[Token], ref: _Reference, column: str, type_use: str = "compare"
) -> list[KeyValue] | None:
    """The key values the WHERE restricts ``column`` (of ``ref``'s table) to."""
    condition = _where(tokens)
    if condition is None:
        return None
    # A table with an alias is named only by its alias (its own name may be another's alias).
    qualifiers = {ref.alias.lower()} if ref.alias is not None else {ref.table.key}
    found = _values_for(condition, column, qualifiers)
    if found is None:
        return None
    rule = ref.table.rule
    key = rule.db_key if rule.db_key and rule.db_key.column.lower() == column else rule.tb_key
    assert key is not None
    values: list[KeyValue] = []
    try:
        for literal in found:
            values.append(shard_key(key.type, literal_value(literal), "compare"))
    except (NotPlaceable, NotALiteral):
        return None
    return values


def _placements_for(tokens: Sequence[Token], layout: Layout, ref: _Reference) -> list[Placement]:
    rule = ref.table.rule
    if rule.kind == "broadcast":
        return [Placement(0, 0)]
    assert rule.db_key is not None
    db_values = _restricted(tokens, ref, rule.db_key.column.lower())
    tb_values = None
    if rule.tb_key is not None and not rule.tb_key.same_as(rule.db_key):
        tb_values = _restricted(tokens, ref, rule.tb_key.column.lower())
    found = _key_placements(layout, rule, db_values, tb_values)
    return _all_placements(ref.table, layout.count) if found is None else found


def _by_key(tokens: Sequence[Token], ref: _Reference) -> bool:
    """Whether the WHERE restricts the table's database shard key to values."""
    rule = ref.table.rule
    return (
        rule.db_key is not None and _restricted(tokens, ref, rule.db_key.column.lower()) is not None
    )


# ---------------------------------------------------------------------------------- SELECT


def _merge_needed(tokens: Sequence[Token]) -> str | None:
    """Why a scatter SELECT's results cannot simply be concatenated (None: they can)."""
    depths = _groups(tokens)
    for index, token in enumerate(tokens):
        word = token_keyword(token)
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        if depths[index] == 0:
            if word in ("ORDER", "GROUP") and nxt is not None and token_keyword(nxt) == "BY":
                return f"{word} BY"
            if word in ("LIMIT", "HAVING", "DISTINCT", "DISTINCTROW", "UNION", "EXCEPT"):
                return word
            if word == "INTERSECT" or (word == "WINDOW" and _window_clause(tokens, index)):
                return word
        if word == "OVER":
            return "window functions"
        if word in _AGGREGATES and is_op_token(nxt, "("):
            return f"the aggregate {word}()"
    return None


def _select(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    main: _Reference,
) -> Route:
    if main.table.rule.kind == "broadcast":
        targets = _targets(sql, tokens, layout, references, [Placement(0, 0)], aliased=True)
        return Route("copy", main.table.name, False, True, targets)
    # Routed by a WHERE fixing the shard key of a sharded table of the SELECT's own FROM (a
    # table only named in a subquery is not what the outer WHERE's columns name); several
    # sharded tables are co-located (route() checked): a key of any of them fixes the
    # partition of every row.
    depths = _groups(tokens)
    keyed = next(
        (
            r
            for r in references.values()
            if r.table.rule.kind == "sharded"
            and all(depths[i] == 0 for i in r.references)
            and _by_key(tokens, r)
        ),
        None,
    )
    if keyed is not None:
        main = keyed
        placements = _placements_for(tokens, layout, keyed)
    else:
        placements = _all_placements(main.table, layout.count)
    targets = _targets(sql, tokens, layout, references, placements, aliased=True)
    kind: RouteKind = "routed" if keyed is not None else "scatter"
    if len(targets) > 1:
        why = _merge_needed(tokens)
        if why is not None:
            # Each physical table is one merge input (a table split by TBPARTITION BY gives
            # several statements on one physical database: the executor runs them at once).
            return Route(kind, main.table.name, False, True, targets, merge=why)
    return Route(kind, main.table.name, False, True, targets)


# --------------------------------------------------------------------------- UPDATE / DELETE


def _update_delete(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    main: _Reference,
    verb: str,
    subqueries: bool = False,
) -> Route:
    rule = main.table.rule
    depths = _groups(tokens)
    if len(references) > 1 and not (
        # (co-located subqueries of the WHERE reading broadcast tables, the written table the
        # one table named outside them)
        subqueries
        and all(
            depths[i] > 0
            for ref in references.values()
            for i in ref.references
            if i != main.references[0]
        )
    ):
        raise _refused(f"multi-table {verb} on sharded or broadcast table {main.table.name}")
    if verb == "UPDATE" and rule.kind == "sharded":
        keys = {rule.db_key.column.lower()} if rule.db_key else set()
        if rule.tb_key is not None:
            keys.add(rule.tb_key.column.lower())
        set_at = next(
            (i for i, t in enumerate(tokens) if depths[i] == 0 and token_keyword(t) == "SET"), None
        )
        if set_at is not None:
            end = next(
                (
                    i
                    for i in range(set_at + 1, len(tokens))
                    if depths[i] == 0 and token_keyword(tokens[i]) in ("WHERE", "ORDER", "LIMIT")
                ),
                len(tokens),
            )
            for item in _split(tokens[set_at + 1 : end]):
                equals = next((i for i, t in enumerate(item) if is_op_token(t, "=")), len(item))
                target = item[:equals]
                if target and is_name_token(target[-1]) and target[-1].value.lower() in keys:
                    # (a row cannot move to another partition; Django's save() sets every
                    # column, the key too, to the value it holds: leave it out of SET)
                    raise _refused(
                        f"UPDATE of the shard key of table {main.table.name}"
                        f" ({target[-1].value}, even to the value a row holds: leave it out of"
                        " SET)"
                    )
    # DELETE ... RETURNING answers rows: relayed from one physical table; from several (the
    # copies of a broadcast table, a DELETE's partitions) they were read as OKs.
    returning = any(
        depths[i] == 0 and token_keyword(t) == "RETURNING" for i, t in enumerate(tokens)
    )
    if rule.kind == "broadcast":
        if returning:
            raise _refused(f"{verb} ... RETURNING on broadcast table {main.table.name}")
        placements = _all_placements(main.table, layout.count)
        targets = _targets(sql, tokens, layout, references, placements)
        return Route("broadcast", main.table.name, True, False, targets)
    placements = _placements_for(tokens, layout, main)
    targets = _targets(sql, tokens, layout, references, placements)
    if len(targets) > 1 and returning:
        raise _refused(
            f"{verb} ... RETURNING across the partitions of table {main.table.name} (give its"
            " shard key's value)"
        )
    if len(targets) > 1:
        for index, token in enumerate(tokens):
            if depths[index] == 0 and token_keyword(token) in ("LIMIT", "ORDER"):
                raise _refused(
                    f"{verb} with {token_keyword(token)} across the partitions of table "
                    f"{main.table.name}"
                )
    return Route(
        "routed" if len(targets) == 1 else "scatter",
        main.table.name,
        True,
        False,
        targets,
        rows_back=returning,
    )


# ---------------------------------------------------------------------------------- INSERT


def _insert(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    main: _Reference,
    sequence_values: Sequence[int] | None,
    split: BulkRows | None = None,
) -> Route | NeedsSequence:
    table = main.table
    if len(references) > 1:
        raise _refused(f"INSERT into table {table.name} reading other tables")
    rule = table.rule
    if split is not None and rule.kind != "sharded":
        raise BulkDeclined
    auto = _auto_increment_column(table.definition)
    depths = _groups(tokens)
    returning_at = next(
        (
            i
            for i in range(main.references[0] + 1, len(tokens))
            if depths[i] == 0 and token_keyword(tokens[i]) == "RETURNING"
        ),
        None,
    )
    if rule.kind == "broadcast" and (
        auto is None or auto_sequence_name(table.name).lower() not in layout.sequences
    ):
        if returning_at is not None:
            raise _refused(
                f"INSERT ... RETURNING into broadcast table {table.name} without an"
                " AUTO_INCREMENT column"
            )
        # The same statement on every copy (a broadcast table made before they took their
        # AUTO_INCREMENT values from a sequence keeps its copies' own counters).
        placements = _all_placements(table, layout.count)
        targets = _targets(sql, tokens, layout, references, placements)
        return Route("broadcast", table.name, True, False, targets)
    kind = "sharded" if rule.kind == "sharded" else "broadcast"
    # INSERT [options] [INTO] t [(columns)] {VALUES | VALUE} (row), ... [ON DUPLICATE ...]
    index = main.references[0] + 1
    columns: list[str]
    column_list_end: int | None = None
    if index < len(tokens) and is_op_token(tokens[index], "("):
        close = _matching(tokens, index)
        columns = [item[-1].value for item in _split(tokens[index + 1 : close]) if item]
        column_list_end = close
        index = close + 1
    else:
        columns = list(table_columns(table.definition))
    if index >= len(tokens) or token_keyword(tokens[index]) not in ("VALUES", "VALUE"):
        what = token_keyword(tokens[index]) if index < len(tokens) else ""
        form = {"SET": "INSERT ... SET", "SELECT": "INSERT ... SELECT"}.get(what, "this INSERT")
        raise _refused(f"{form} into {kind} table {table.name}")
    rows: list[tuple[int, int, list[list[Token]]]] = []  # (open, close, items) per row
    at = index + 1
    while at < len(tokens) and is_op_token(tokens[at], "("):
        close = _matching(tokens, at)
        items = _split(tokens[at + 1 : close])
        rows.append((at, close, [] if items == [[]] else items))
        at = close + 1
        if at < len(tokens) and is_op_token(tokens[at], ","):
            at += 1
        else:
            break
    if not rows:
        raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
    suffix_at = at
    returned: _ReturningClause | None = None
    upsert = returning_at is not None and returning_at != suffix_at
    if returning_at is not None:
        if upsert and token_keyword(tokens[suffix_at]) != "ON":
            raise _refused(f"this INSERT into {kind} table {table.name}")
        if upsert and not _keyed_by_alone(table.definition, auto):
            # (a row updated through another unique key returns that row's id)
            raise _refused(
                f"INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING into {kind} table"
                f" {table.name}, which has a unique key other than its primary key"
                f" {auto or ''}".rstrip()
            )
        if upsert and _assigns(tokens[suffix_at:returning_at], auto):
            # (MariaDB's RETURNING answers the row as updated: the new value, which the
            # proxy cannot tell from the statement, e.g. id = id + 100)
            raise _refused(
                f"INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING into {kind} table"
                f" {table.name} assigning its {auto}"
            )
        if split is not None:
            raise BulkDeclined
        if any(token_keyword(t) == "IGNORE" for t in tokens[: main.references[0]]):
            # (a row ignored returns nothing: only the shard knows which)
            raise _refused(f"INSERT IGNORE ... RETURNING into {kind} table {table.name}")
        returned = _returning_clause(tokens, returning_at, table, layout, auto, kind)
    elif suffix_at < len(tokens) and token_keyword(tokens[suffix_at]) != "ON":
        raise _refused(f"this INSERT into {kind} table {table.name}")
    if split is not None:
        return _insert_split(
            sql, tokens, layout, references, main, columns, index, rows, suffix_at, auto, split
        )
    defaults = all(not items for _, _, items in rows) and not (column_list_end and columns)
    if defaults:
        columns = []  # VALUES (), ...: rows of defaults, without a column list or with ()
    if any(len(items) != len(columns) for _, _, items in rows):
        raise sql_error(
            ErrorCode.WRONG_VALUE_COUNT_ON_ROW, "Column count doesn't match value count at row 1"
        )
    lowered = [c.lower() for c in columns]
    keys = [k for k in (rule.db_key, rule.tb_key) if k is not None]
    if suffix_at < len(tokens) and (returned is None or upsert):
        for token in tokens[suffix_at : returning_at if upsert else len(tokens)]:
            if is_name_token(token) and token.value.lower() in {k.column.lower() for k in keys}:
                raise _refused(f"ON DUPLICATE KEY UPDATE of the shard key of table {table.name}")
    missing = [k for k in keys if k.column.lower() not in lowered]
    if any(k.column.lower() != (auto or "").lower() for k in missing):
        raise _refused(
            f"an INSERT into sharded table {table.name} without its shard key {missing[0].column}"
        )
    # The AUTO_INCREMENT column's values come from the table's GROUP sequence, unique across
    # the partitions and the same in every copy of a broadcast table (a physical table's own
    # counter would repeat its neighbours' values, or number concurrent INSERTs differently
    # in each copy): for every row when the column is not given, for the rows giving NULL.
    auto_at = lowered.index(auto.lower()) if auto is not None and auto.lower() in lowered else None
    taking: list[int] = []  # the rows that take a value, in order
    if auto is not None:
        for number, (_, _, items) in enumerate(rows):
            if auto_at is None or _takes_next_value(items[auto_at], auto, table.name, kind):
                taking.append(number)
    generated: dict[int, int] = {}
    if taking:
        if sequence_values is None or len(sequence_values) != len(taking):
            return NeedsSequence(auto_sequence_name(table.name), len(taking))
        generated = dict(zip(taking, sequence_values, strict=True))
    # Per row: its text, with the sequence's value put in when it takes one.
    texts: list[str] = []
    for number, (open_at, close, items) in enumerate(rows):
        start, end = tokens[open_at].pos, tokens[close].pos + 1
        taken = generated.get(number)
        if taken is None:
            texts.append(sql[start:end])
        elif auto_at is None:
            texts.append(sql[start : end - 1] + ("" if defaults else ", ") + f"{taken})")
        else:
            item = items[auto_at]
            item_start, item_end = item[0].pos, item[-1].pos + len(item[-1].raw)
            texts.append(sql[start:item_start] + str(taken) + sql[item_end:end])
    head_end = tokens[rows[0][0]].pos
    tail_start = tokens[rows[-1][1]].pos + 1
    named: list[tuple[int, int, str]] = []
    returning: Returning | None = None
    if returned is not None:
        values_returned: list[int] = []
        for number, (_, _, items) in enumerate(rows):
            taken = generated.get(number)
            if taken is not None and upsert:
                # (only a row giving its id is known to answer that id: updated or not)
                raise _refused(
                    f"INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING into {kind} table"
                    f" {table.name} of a row without its {auto} (give every row's or none)"
                )
            if taken is None:
                assert auto_at is not None  # (a row takes no value only when it gives one)
                given = literal_value(items[auto_at])
                if isinstance(given, bool) or not isinstance(given, int):
                    raise _refused(
                        f"INSERT ... RETURNING into {kind} table {table.name} of a row whose"
                        f" {auto} is not an integer literal"
                    )
                taken = _stored_integer(given, returned.returning.key_type)
                if taken is None:
                    raise _refused(
                        f"INSERT ... RETURNING into {kind} table {table.name} of a row whose"
                        f" {auto} is negative for an UNSIGNED column"
                    )
            values_returned.append(taken)
        returning = replace(returned.returning, values=tuple(values_returned))
        named.append(returned.cut)
    if generated and auto_at is None:
        # (no column list names every column: the AUTO_INCREMENT one is given then, but for
        # rows of defaults)
        assert auto is not None
        if column_list_end is None:
            after = tokens[main.references[0]]
            at_end = after.pos + len(after.raw)
            named.append((at_end, at_end, f" ({quote_name(auto)})"))
        else:
            close_token = tokens[column_list_end]
            comma = "" if defaults else ", "
            named.append((close_token.pos, close_token.pos, comma + quote_name(auto)))
    if kind == "broadcast":
        extra = [*named, (head_end, tail_start, ", ".join(texts))]
        placements = _all_placements(table, layout.count)
        copies = _targets(sql, tokens, layout, references, placements, extra=extra)
        return Route(
            "broadcast",
            table.name,
            True,
            False,
            copies,
            tuple(generated.values()),
            returning=returning,
        )
    assert rule.db_key is not None
    # Per row: its placement.
    by_place: dict[Placement, list[str]] = {}
    rows_at: dict[Placement, list[tuple[int, int]]] = {}
    for number, (open_at, close, items) in enumerate(rows):
        values: dict[str, KeyValue] = {}
        taken = generated.get(number)
        for key in keys:
            name = key.column.lower()
            if taken is not None and name == (auto or "").lower():
                values[name] = taken
                continue
            item = items[lowered.index(name)]
            try:
                values[name] = _stored_key(
                    table, key, shard_key(key.type, literal_value(item), "store")
                )
            except NotALiteral:
                raise _refused(
                    f"an INSERT into sharded table {table.name} whose shard key"
                    f" {key.column} is not a literal"
                ) from None
            except NotPlaceable as exc:
                raise _refused(f"shard key value of table {table.name}: {exc}") from None
        try:
            placement = place(
                rule,
                layout.count,
                values[rule.db_key.column.lower()],
                values[rule.tb_key.column.lower()] if rule.tb_key is not None else None,
            )
        except PlacementError as exc:
            raise _refused(str(exc)) from None
        by_place.setdefault(placement, []).append(texts[number])
        rows_at.setdefault(placement, []).append((tokens[open_at].pos, tokens[close].pos + 1))
    marks = [t.pos for t in tokens if t.raw == "?"]  # parameter markers, bound or not
    found = []
    used: list[tuple[int, ...]] = []
    for placement, row_texts in sorted(by_place.items()):
        used.append(
            tuple(
                i
                for i, pos in enumerate(marks)
                if pos < head_end
                or pos >= tail_start
                or any(start <= pos < end for start, end in rows_at[placement])
            )
        )
        physical = layout.partitions[placement.database]
        names = {}
        if rule.split_tables:
            names[table.key] = table.physical_tables(layout.count)[placement.table][1]
        extra = [*named, (head_end, tail_start, ", ".join(row_texts))]
        found.append(
            (physical, _text_for(sql, tokens, layout, references, names, physical, extra=extra))
        )
    order = sorted(range(len(found)), key=lambda i: (found[i][0].shard, found[i][0].index, i))
    return Route(
        "routed",
        table.name,
        True,
        False,
        _ordered(found),
        tuple(generated.values()),
        params=tuple(used[i] for i in order) if marks else (),
        returning=returning,
    )


@dataclass(frozen=True, slots=True)
class _ReturningClause:
    returning: Returning  # (its values not yet known)
    cut: tuple[int, int, str]  # the replacement leaving the clause out of the text


def _returning_clause(
    tokens: Sequence[Token],
    at: int,
    table: LogicalTable,
    layout: Layout,
    auto: str | None,
    kind: str,
) -> _ReturningClause:
    """An INSERT's ``RETURNING`` clause (at token ``at``) the proxy can answer: items naming
    the table's AUTO_INCREMENT column (``id``, ``t.id``, ``db.t.id``, each with an optional
    alias); anything else is 1235 (a partition's own RETURNING answers only its rows)."""

    def refused() -> SqlError:
        return _refused(
            f"INSERT ... RETURNING into {kind} table {table.name} of anything but its"
            f" AUTO_INCREMENT column{' ' + auto if auto else ''} (the proxy answers the ids"
            " itself)"
        )

    if auto is None:
        raise refused()
    key_type = _auto_type(table.definition, auto)
    if key_type is None:
        raise refused()
    labels: list[str] = []
    for item in _split(tokens[at + 1 :]):
        names: list[Token] = []
        rest = list(item)
        while rest and is_name_token(rest[0]) and token_keyword(rest[0]) != "AS":
            names.append(rest.pop(0))
            if rest and is_op_token(rest[0], "."):
                rest.pop(0)
                continue
            break
        if not names or names[-1].value.lower() != auto.lower():
            raise refused()
        qualifiers = [n.value.lower() for n in names[:-1]]
        if qualifiers not in ([], [table.name.lower()], [layout.name.lower(), table.name.lower()]):
            raise refused()
        label = names[-1].value
        if rest and token_keyword(rest[0]) == "AS":
            rest.pop(0)
            if not rest:
                raise refused()
        if rest:
            if len(rest) != 1 or not is_name_token(rest[0]):
                raise refused()
            label = rest[0].value
        labels.append(label)
    before = tokens[at - 1]
    last = tokens[-1]
    cut = (before.pos + len(before.raw), last.pos + len(last.raw), "")
    flags = _column_flags(table.definition, auto)
    width, zerofill = _display_width(table.definition, auto)
    returning = Returning(table.name, auto, tuple(labels), key_type, (), flags, width, zerofill)
    return _ReturningClause(returning, cut)


def _stored_integer(value: int, key_type: KeyType) -> int | None:
    """``value`` as an integer column of ``key_type`` stores it outside strict mode (the
    nearest end of its range; in strict mode the shard refuses it, and the proxy answers that
    error); None: a negative value for an UNSIGNED column (not answered)."""
    bits: int = INTEGER_BITS.get(key_type.name, 64)
    if key_type.unsigned:
        return None if value < 0 else min(value, (1 << bits) - 1)
    return max(-(1 << (bits - 1)), min(value, (1 << (bits - 1)) - 1))


def _display_width(definition: str, column: str) -> tuple[int | None, bool]:
    """The display width of integer ``column`` in a table's definition (as SHOW CREATE TABLE
    writes it: ``int(5) unsigned zerofill``), None when not written; and whether ZEROFILL."""
    quoted = "`" + column.lower().replace("`", "``") + "`"
    for line in definition.splitlines():
        text = line.strip().lower()
        if text.startswith(quoted + " "):
            found = re.match(r"[a-z]+\s*\((\d+)\)", text[len(quoted) :].strip())
            return (int(found.group(1)) if found else None), " zerofill" in text
    return None, False


def _assigns(clause: Sequence[Token], column: str | None) -> bool:
    """Whether ``ON DUPLICATE KEY UPDATE a = e, ...`` (``clause``, from ON) assigns
    ``column`` (plain, or qualified by a table name)."""
    if column is None:
        return False
    words = [token_keyword(t) for t in clause[:4]]
    if words != ["ON", "DUPLICATE", "KEY", "UPDATE"]:
        return True  # (not read: taken as assigning it)
    for item in _split(clause[4:]):
        equals = next((i for i, t in enumerate(item) if is_op_token(t, "=")), None)
        if equals is None or equals == 0:
            return True
        target = item[equals - 1]
        if not is_name_token(target) or target.value.lower() == column.lower():
            return True
    return False


def _keyed_by_alone(definition: str, column: str | None) -> bool:
    """Whether ``column`` is the table's primary key and the table has no other unique key
    (as SHOW CREATE TABLE writes its definition): a row can only conflict on that column."""
    if column is None:
        return False
    quoted = "`" + column.lower().replace("`", "``") + "`"
    primary = False
    for line in definition.splitlines():
        text = line.strip().lower().rstrip(",")
        if text.startswith("unique key"):
            return False
        if text.startswith("primary key"):
            primary = text.replace(" ", "") == f"primarykey({quoted})"
    return primary


def _column_flags(definition: str, column: str) -> int:
    """The flags MariaDB's column definition gives the AUTO_INCREMENT ``column`` of a
    table's definition (as SHOW CREATE TABLE writes it): NOT_NULL, PRI_KEY, UNIQUE_KEY,
    MULTIPLE_KEY, AUTO_INCREMENT, PART_KEY (and UNSIGNED, added by the caller)."""
    quoted = "`" + column.lower().replace("`", "``") + "`"
    flags = 0x0200  # AUTO_INCREMENT
    lines = [line.strip().lower() for line in definition.splitlines()]
    # (without a PRIMARY KEY, MariaDB takes the first UNIQUE key of NOT NULL columns for it:
    # the SERIAL column of a table that has none, for one)
    primary = any(text.startswith("primary key") for text in lines)
    first_unique = next((text for text in lines if text.startswith("unique key")), None)
    for text in lines:
        if text.startswith(quoted + " ") and " not null" in text:
            flags |= 0x0001
        keyed = re.match(r"(primary key|unique key [^(]*|key [^(]*)\s*\((.*)\)", text)
        if keyed is None:
            continue
        parts = [p.strip().split("(")[0] for p in keyed.group(2).split(",")]
        if quoted not in parts:
            continue
        flags |= 0x4000  # PART_KEY
        if keyed.group(1).strip() == "primary key":
            flags |= 0x0002 | 0x0001
        elif keyed.group(1).startswith("unique") and parts == [quoted]:
            if not primary and text == first_unique and flags & 0x0001:
                flags |= 0x0002  # (the column's line comes before its keys')
            else:
                flags |= 0x0004
        elif parts[0] == quoted:
            flags |= 0x0008
    return flags


def _auto_type(definition: str, column: str) -> KeyType | None:
    """The integer type of ``column`` in a logical table's definition."""
    statements = lex(definition)
    try:
        created = parse_create_table(statements[0].text, lex(statements[0].text)[0])
    except (SqlError, IndexError):
        return None
    for found in created.columns:
        if found.name.lower() == column.lower():
            key_type = found.key_type
            if key_type is not None and key_type.family == "integer":
                return key_type
    return None


def _takes_next_value(item: Sequence[Token], column: str, table: str, kind: str) -> bool:
    """Whether an INSERT's value ``item`` for the AUTO_INCREMENT ``column`` of a sharded
    table asks for the next value (NULL or DEFAULT written in the statement: the proxy puts in
    its sequence's); False for a value stored as given. Refused when the shard would make a
    value of its own, or might (0, an expression, a parameter bound to NULL): only the
    sequence's are unique across the partitions."""
    if len(item) == 1 and item[0].raw != "?" and token_keyword(item[0]) in ("NULL", "DEFAULT"):
        return True
    try:
        given = literal_value(item)
    except NotALiteral:
        given = None
    number: Decimal | None = None
    if isinstance(given, int | float | Decimal):  # (TRUE and FALSE are 1 and 0)
        number = Decimal(given)
    elif isinstance(given, str):
        with contextlib.suppress(ArithmeticError):
            number = Decimal(given.strip())
    if number is None or not number.is_finite() or abs(number) < 1:
        raise _refused(
            f"this value for the AUTO_INCREMENT column {column} of {kind} table {table} (a"
            " number, NULL or no value: NULL and no value take the next value of its sequence)"
        )
    return False


# ------------------------------------------------------------------------ bulk INSERT rows


class BulkDeclined(Exception):
    """``route(..., split=...)`` does not decide this statement from its rows as read by
    ``bulk_rows``: the caller routes it from the lexing of its whole text."""


# The VALUES (or VALUE) word of an INSERT, found in the text before the lexer confirms it.
_VALUES_WORD = re.compile(r"\bVALUES?\b", re.IGNORECASE | re.ASCII)
_BULK_PLACES = 8  # occurrences of the word looked at (the others in names, strings, comments)
_BULK_HEAD = 65536  # where the word is looked for (an INSERT's head is short)
_INSERT_START = re.compile(r"\s*(?:INSERT|REPLACE)\b", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True, slots=True)
class BulkRows:
    """The rows of a multi-row INSERT as ``proxy.shard.rows.split_rows`` read them (literal
    values only), so that routing lexes only the rest: ``blanked`` is the statement with
    every row but the first made spaces (the same length: every token keeps its place),
    which lexes into the same tokens for everything but those rows; ``route`` is called with
    its lexing and this, and places the rows from ``rows``."""

    values_end: int  # just after the VALUES word
    rows: array[int]  # split_rows' five integers per row
    columns: int  # items per row
    tokens: int  # tokens in the rows
    mode: LexMode
    flavor: ServerFlavor | None
    column: int = -1  # the column ``rows`` read (the shard key's, as guessed from the head)
    hashed: IntegerHash | None = None  # and the placement codes it gave

    @property
    def head_end(self) -> int:
        """Where the first row starts."""
        return self.rows[0]

    @property
    def tail_start(self) -> int:
        """Just after the last row."""
        return self.rows[-4]

    def blanked(self, sql: str) -> str:
        first_end = self.rows[1]
        return sql[:first_end] + " " * (self.tail_start - first_end) + sql[self.tail_start :]

    def read(self, sql: str, column: int, hashed: IntegerHash | None) -> array[int]:
        """``split_rows`` reading ``column`` (with ``hashed``'s placement codes): ``rows``
        when that is what they read, else read again."""
        if column == self.column and hashed == self.hashed:
            return self.rows
        low, high, modulus = (hashed.low, hashed.high, hashed.modulus) if hashed else (0, 0, 0)
        found = split_rows(
            sql, self.values_end, column, low, high, modulus,
            not self.mode.no_backslash_escapes, self.mode.ansi_quotes,
        )  # fmt: skip
        if found is None or len(found[2]) != len(self.rows):
            raise BulkDeclined
        return found[2]


def bulk_rows(
    sql: str, mode: LexMode, flavor: ServerFlavor | None, layout: Layout | None = None
) -> BulkRows | None:
    """The rows of ``sql`` when it is one INSERT or REPLACE of at least two rows of literal
    values that ``proxy.shard.rows`` reads (``BulkRows``), else None. Its VALUES word is the
    last token of the lexing of the text up to it (not one in a comment, string or name).
    With ``layout``, the shard key's column is read too, as the head suggests it (``_insert``
    reads the rows again if it finds another)."""
    if _INSERT_START.match(sql) is None:
        return None
    for number, match in enumerate(_VALUES_WORD.finditer(sql, 0, _BULK_HEAD)):
        if number == _BULK_PLACES:
            return None
        try:
            statements = lex(sql[: match.end()], mode, flavor)
        except LexError:
            continue
        if len(statements) != 1 or not statements[0].tokens:
            return None
        tokens = statements[0].tokens
        if token_keyword(tokens[0]) not in ("INSERT", "REPLACE"):
            return None
        last = tokens[-1]
        if last.kind is not TokenKind.WORD or last.pos != match.start():
            continue
        column, hashed = _guessed_key(tokens, layout) if layout is not None else (-1, None)
        low, high, modulus = (hashed.low, hashed.high, hashed.modulus) if hashed else (0, 0, 0)
        found = split_rows(
            sql, match.end(), column, low, high, modulus,
            not mode.no_backslash_escapes, mode.ansi_quotes,
        )  # fmt: skip
        if found is None or len(found[2]) < 10:
            return None  # (one row: nothing to gain)
        columns, count, rows = found
        return BulkRows(match.end(), rows, columns, count, mode, flavor, column, hashed)
    return None


def _guessed_key(tokens: Sequence[Token], layout: Layout) -> tuple[int, IntegerHash | None]:
    """Which item of an INSERT's rows is its table's shard key, and the table's IntegerHash,
    as its head up to VALUES (``tokens``) suggests them; (-1, None) when it does not. Only a
    guess: ``_insert_split`` uses the rows read with it when it finds the same."""
    table = None
    for token in tokens:
        if is_name_token(token):
            table = layout.tables.get(token.value.lower())
            if table is not None:
                break
    if table is None or table.rule.kind != "sharded" or table.rule.db_key is None:
        return -1, None
    if len(tokens) >= 2 and is_op_token(tokens[-2], ")"):
        opened = max((i for i, t in enumerate(tokens) if is_op_token(t, "(")), default=-1)
        if opened < 0:
            return -1, None
        names = [t.value.lower() for t in tokens[opened + 1 : -2] if is_name_token(t)]
    else:
        names = [c.lower() for c in table_columns(table.definition)]
    key = table.rule.db_key.column.lower()
    if key not in names:
        return -1, None
    return names.index(key), integer_hash(table.rule, layout.count)


def _insert_split(
    sql: str,
    tokens: Sequence[Token],
    layout: Layout,
    references: Mapping[str, _Reference],
    main: _Reference,
    columns: Sequence[str],
    index: int,
    rows: Sequence[tuple[int, int, list[list[Token]]]],
    suffix_at: int,
    auto: str | None,
    split: BulkRows,
) -> Route:
    """``_insert`` of a sharded table for the rows ``split`` read (``tokens``: the blanked
    text's, ``rows``: its one row). Only what the whole lexing would route exactly so: any
    other statement, and anything refused, is BulkDeclined (the whole lexing then decides or
    refuses it as always)."""
    table = main.table
    rule = table.rule
    assert rule.db_key is not None
    # The rows read are the statement's: after its VALUES word, the first one the lexer's.
    values = tokens[index]
    open_at, close, _ = rows[0]
    if (
        len(rows) != 1
        or values.pos + len(values.raw) != split.values_end
        or tokens[open_at].pos != split.rows[0]
        or tokens[close].pos + 1 != split.rows[1]
        or (suffix_at < len(tokens) and tokens[suffix_at].pos < split.tail_start)
        or split.columns != len(columns)
    ):
        raise BulkDeclined
    lowered = [c.lower() for c in columns]
    keys = {k.column.lower() for k in (rule.db_key, rule.tb_key) if k is not None}
    for token in tokens[suffix_at:]:
        if is_name_token(token) and token.value.lower() in keys:
            raise BulkDeclined  # (ON DUPLICATE KEY UPDATE of the key: refused)
    if (
        len(keys) != 1
        or rule.db_key.column.lower() not in lowered
        or (rule.tb_key is not None and rule.tb_key.type != rule.db_key.type)
    ):
        raise BulkDeclined  # (a table key in another column; no key: refused)
    if auto is not None:
        # Every row gives the AUTO_INCREMENT column a number stored as given (a row taking
        # a sequence value, or refused, is the whole lexing's).
        if auto.lower() not in lowered:
            raise BulkDeclined
        given = split.read(sql, lowered.index(auto.lower()), None)
        for r in range(0, len(given), 5):
            text = sql[given[r + 2] : given[r + 3]]
            if not (text.isascii() and text.isdigit()) or len(text) > 40 or int(text) == 0:
                raise BulkDeclined
    hashed = integer_hash(rule, layout.count)
    per_db = hashed.per_db if hashed is not None else 1
    read = split.read(sql, lowered.index(rule.db_key.column.lower()), hashed)
    by_place: dict[Placement, list[str]] = {}
    codes = read[4::5]
    if hashed is not None and min(codes) >= 0:
        # Every row placed by arithmetic (the common case): grouped by global table index.
        groups: list[list[str]] = [[] for _ in range(hashed.modulus)]
        for code, start, end in zip(codes, read[0::5], read[1::5], strict=True):
            groups[code].append(sql[start:end])
        for code, texts in enumerate(groups):
            if texts:
                by_place[Placement(code // per_db, code)] = texts
    else:
        by_code: dict[int, list[str]] = {}
        for r in range(0, len(read), 5):
            code = read[r + 4]
            if code >= 0:
                if code not in by_code:
                    by_code[code] = by_place.setdefault(Placement(code // per_db, code), [])
                texts = by_code[code]
            else:
                placement = _split_placement(sql, read[r + 2], read[r + 3], table, layout, split)
                texts = by_place.setdefault(placement, [])
            texts.append(sql[read[r] : read[r + 1]])
    head_end, tail_start = split.head_end, split.tail_start
    found = []
    for placement, row_texts in sorted(by_place.items()):
        physical = layout.partitions[placement.database]
        names = {}
        if rule.split_tables:
            names[table.key] = table.physical_tables(layout.count)[placement.table][1]
        extra = [(head_end, tail_start, ", ".join(row_texts))]
        found.append(
            (physical, _text_for(sql, tokens, layout, references, names, physical, extra=extra))
        )
    return Route("routed", table.name, True, False, _ordered(found), ())


def _split_placement(
    sql: str, start: int, end: int, table: LogicalTable, layout: Layout, split: BulkRows
) -> Placement:
    """The placement of a row whose shard key is ``sql[start:end]`` (one item of the row, as
    ``_insert`` places it: a string cut as the column stores it), or BulkDeclined when
    ``_insert`` would refuse it."""
    rule = table.rule
    assert rule.db_key is not None
    text = sql[start:end]
    if text[:1] in ("N", "n") and not text.isascii():
        raise BulkDeclined  # (read in utf8mb3 whatever the client's: recode_strings)
    value: SqlValue
    if text.isascii() and text.isdigit() and len(text) <= 40:  # (else read as a Decimal)
        value = int(text)
    elif (
        len(text) >= 2 and text[0] == text[-1] == "'" and "'" not in text[1:-1] and "\\" not in text
    ):
        value = text[1:-1]
    else:
        try:
            statements = lex(text, split.mode, split.flavor)
            if len(statements) != 1:
                raise BulkDeclined
            value = literal_value(statements[0].tokens)
        except (LexError, NotALiteral):
            raise BulkDeclined from None
    try:
        key = _stored_key(table, rule.db_key, shard_key(rule.db_key.type, value, "store"))
        return place(rule, layout.count, key, key if rule.tb_key is not None else None)
    except (NotPlaceable, PlacementError):
        raise BulkDeclined from None


def _matching(tokens: Sequence[Token], open_at: int) -> int:
    depth = 0
    for index in range(open_at, len(tokens)):
        if is_op_token(tokens[index], "("):
            depth += 1
        elif is_op_token(tokens[index], ")"):
            depth -= 1
            if depth == 0:
                return index
    raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")


# ------------------------------------------------------------------------------------ hints


def _hinted_databases(kind: str, arguments: str, layout: Layout) -> list[int]:
    if kind == "scan":
        if arguments.strip():
            raise _refused("TDDL:scan() with arguments")
        return list(range(layout.count))
    found: list[int] = []
    for item in arguments.split(","):
        word = item.strip().strip("'\"`")
        if word.isdigit() and int(word) < layout.count:
            index = int(word)
        else:
            index = next((p.index for p in layout.partitions if p.name.lower() == word.lower()), -1)
        if index < 0:
            raise sql_error(
                ErrorCode.UNKNOWN_ERROR,
                f"TDDL:node({item.strip()}): no such physical database of {layout.name}",
            )
        if index not in found:
            found.append(index)
    if not found:
        raise _refused("TDDL:node() without a physical database")
    return found


def hint_comment(sql: str) -> bool:
    """Whether ``sql`` starts with a DRDS hint (``/*+TDDL:node(...)*/``, ``/*+TDDL:scan()*/``)."""
    return _HINT.match(sql) is not None


def hinted(
    sql: str, layout: Layout, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> Route | None:
    """A statement under DRDS's ``/*+TDDL:node(...)*/`` (the physical databases named, by
    name or index) or ``/*+TDDL:scan()*/`` (every physical database) hint: the statement on
    each physical table of its table in those databases, results concatenated as they come
    (as DRDS, no merge). None without a hint. The statement names logical tables only (it was
    authorized against them); a table split by TBPARTITION BY gets its physical names."""
    match = _HINT.match(sql)
    if match is None:
        return None
    databases = _hinted_databases(match.group(1).lower(), match.group(2), layout)
    statements = lex(sql, mode, flavor)
    if len(statements) != 1 or not statements[0].tokens:
        raise _refused("a TDDL hint on several statements")
    tokens = statements[0].tokens
    verb = token_keyword(tokens[0])
    if verb in ("CREATE", "ALTER", "DROP", "RENAME"):
        # On some physical databases only: their definitions would leave the catalog's (an
        # INSERT without a column list then places rows by columns a partition does not have).
        raise _refused(f"{verb} under a TDDL hint")
    references = _references(tokens, layout)
    split = [r for r in references.values() if r.table.rule.split_tables]
    if len(split) > 1:
        names = " and ".join(sorted(r.table.name for r in split))
        raise _refused(f"a TDDL hint on several tables split by TBPARTITION BY ({names})")
    found: list[tuple[PhysicalDatabase, str]] = []
    for database in databases:
        physical = layout.partitions[database]
        if split:
            table = split[0].table
            for g in tables_in(table.rule, layout.count, database):
                renamed = {table.key: table.physical_tables(layout.count)[g][1]}
                found.append(
                    (physical, _text_for(sql, tokens, layout, references, renamed, physical))
                )
        else:
            found.append((physical, _text_for(sql, tokens, layout, references, {}, physical)))
    write = token_keyword(tokens[0]) in ("INSERT", "REPLACE", "UPDATE", "DELETE")
    named = next(iter(references.values()), None)
    return Route(
        "hint",
        named.table.name if named else "",
        write,
        not write,
        _ordered(found),
        tables=frozenset(references),
    )


# ---------------------------------------------------------------------- prepared statements


# A string value that fixes no partition (``proxy.shard.values`` refuses lone surrogates).
_UNREADABLE = "\udcff"


def _national(sql: str) -> bool:
    """Whether ``sql`` may hold an ``N'...'`` string (``recode_strings`` reads its value)."""
    return "N'" in sql or "n'" in sql


def recode_strings(tokens: Sequence[Token], codec: str | None) -> tuple[Token, ...]:
    """``tokens`` with each string literal's value read as MariaDB reads it: the proxy reads
    a statement's bytes as UTF-8, MariaDB a string's in ``character_set_client`` (a latin1
    client's bytes C3 A9 are 'Ã©', not 'é') -- and an ``N'...'`` string's in the national
    character set, utf8mb3, whatever the client's (``make_string_literal_nchar``: a latin1
    client's N'' bytes C3 A9 are 'é'). Bytes read as utf8mb3 that are no character of it
    (a 4-byte character, a latin1 byte) are stored as a ``?`` each: an N'' string's value is
    then that, a ``Substituted`` (placed as stored, not placed in a comparison). Another
    value that is not text in ``codec`` (None: a character set the proxy cannot read) fixes
    no partition."""
    out = []
    for token in tokens:
        if token.kind is TokenKind.STRING and not token.value.isascii():
            national = token.raw[:1] in ("N", "n")
            if national or codec != "utf-8":
                value = _read_string(token.value, UTF8MB3 if national else codec, national)
                token = Token(token.kind, token.raw, value, token.image, token.pos)
        out.append(token)
    return tuple(out)


def _read_string(value: str, codec: str | None, substitute: bool) -> str:
    """A string literal's value (read as UTF-8, ``surrogateescape``) read in ``codec``;
    ``substitute``: bytes that are no utf8mb3 character read as MariaDB stores them (else
    unreadable: a utf8mb3 client's '\U0001f600' is refused in an INSERT, as a parameter of
    it is)."""
    if codec is None:
        return _UNREADABLE
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return _UNREADABLE
    try:
        return decode_text(raw, codec)
    except UnicodeDecodeError:
        if not substitute:
            return _UNREADABLE
    stored = utf8mb3_stored(raw)
    return _UNREADABLE if stored is None else Substituted(stored)


def bind_params(tokens: Sequence[Token], params: Sequence[SqlValue]) -> tuple[Token, ...]:
    """``tokens`` with each parameter marker standing for its value (``params`` in marker
    order; missing ones NULL): a literal token at the marker's position whose ``raw`` stays
    ``?``, so routing reads the value as the literal it stands for while every text it builds
    keeps the marker. A value that is no literal of the statement's text (bytes: a date, a
    binary string) stays a marker, which fixes no partition."""
    out = []
    number = 0
    for token in tokens:
        if token.kind is TokenKind.PARAM:
            value = params[number] if number < len(params) else None
            number += 1
            token = _bound(token, value)
        out.append(token)
    return tuple(out)


def _bound(token: Token, value: SqlValue) -> Token:
    pos = token.pos
    if value is None:
        return Token(TokenKind.WORD, "?", "NULL", "?", pos)
    if isinstance(value, bool):
        return Token(TokenKind.WORD, "?", "TRUE" if value else "FALSE", "?", pos)
    if isinstance(value, int):
        return Token(TokenKind.NUMBER, "?", str(value), "?", pos)
    if isinstance(value, float):
        text = repr(value)
        if "e" not in text:
            text += "e0"  # a double, as a literal with an exponent is
        return Token(TokenKind.NUMBER, "?", text, "?", pos)
    if isinstance(value, Decimal):
        return Token(TokenKind.NUMBER, "?", format(value, "f"), "?", pos)
    if isinstance(value, str):
        return Token(TokenKind.STRING, "?", value, "?", pos)
    return token


@dataclass(frozen=True, slots=True)
class KeySlots:
    """A prepared SELECT, UPDATE or DELETE of one table sharded by one key (no TBPARTITION
    BY of another column or function) whose WHERE fixes the key: where each key value comes
    from (``(i, None)``: parameter i; ``(-1, value)``: a literal). Routing the statement with
    its parameters reaches exactly ``place(rule, D, v, v)`` of each value ``v`` after
    ``shard_key(type, value, "compare")`` (and scatters when one is not placeable)."""

    table: LogicalTable
    verb: str
    sources: tuple[tuple[int, SqlValue], ...]

    @property
    def wanted(self) -> int:
        """How many leading parameters hold the key's (up to the last one that does)."""
        return max((index for index, _ in self.sources), default=-1) + 1


_Made = TypeVar("_Made")
# What key_slots, placed_targets and copy_target made (pure functions of their arguments:
# every session that prepares a statement asks again), by (function, layout's name, id() of
# its tables and partitions -- one catalog snapshot's, held by the entry so the ids are not
# reused meanwhile --, its sequences, the other arguments).
_ROUTED_KEPT = 512
_ROUTED_LONGEST = 2048  # characters of the statement (a longer one is not remembered)
_routed: dict[tuple[object, ...], tuple[object, object, object]] = {}


def _remembered_for(layout: Layout, key: tuple[object, ...], make: Callable[[], _Made]) -> _Made:
    """``make()``, remembered for ``layout`` and ``key`` (the function's name, then the
    statement, then its other arguments)."""
    sql = key[1]
    if isinstance(sql, str) and len(sql) > _ROUTED_LONGEST:
        return make()
    full = (layout.name, id(layout.tables), id(layout.partitions), layout.sequences, *key)
    entry = _routed.get(full)
    if entry is not None and entry[0] is layout.tables and entry[1] is layout.partitions:
        return entry[2]  # type: ignore[return-value]
    made = make()
    if len(_routed) >= _ROUTED_KEPT:
        _routed.clear()
    _routed[full] = (layout.tables, layout.partitions, made)
    return made


def key_slots(
    sql: str,
    layout: Layout,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
    codec: str | None = "utf-8",
) -> KeySlots | None:
    """The :class:`KeySlots` of a prepared statement (None: it is routed by ``route`` with
    its parameters at each execution); ``codec`` as for ``route``."""
    return _remembered_for(
        layout,
        ("key_slots", sql, mode, flavor, codec),
        lambda: _key_slots(sql, layout, mode, flavor, codec),
    )


def _key_slots(
    sql: str, layout: Layout, mode: LexMode, flavor: ServerFlavor | None, codec: str | None
) -> KeySlots | None:
    if _HINT.match(sql):
        return None
    statements = lex(sql, mode, flavor)
    if len(statements) != 1 or not statements[0].tokens:
        return None
    original = statements[0].tokens
    if codec != "utf-8" or _national(sql):
        original = recode_strings(original, codec)
    verb = token_keyword(original[0])
    if verb not in ("SELECT", "UPDATE", "DELETE"):
        return None
    marks = {t.pos: i for i, t in enumerate(t for t in original if t.kind is TokenKind.PARAM)}
    tokens = bind_params(original, [0] * len(marks))
    references = _references(tokens, layout)
    if len(references) != 1:
        return None
    ref = next(iter(references.values()))
    rule = ref.table.rule
    if rule.kind != "sharded" or rule.db_key is None or len(ref.references) != 1:
        return None
    if rule.tb_key is not None and not rule.tb_key.same_as(rule.db_key):
        return None
    if _several_tables(tokens, references):
        return None  # a subquery or derived table: its columns may be the ones named
    condition = _where(tokens)
    if condition is None:
        return None
    # As routing reads it: a table with an alias is named only by its alias (its own name
    # may be another table's alias).
    qualifiers = {ref.alias.lower()} if ref.alias is not None else {ref.table.key}
    found = _values_for(condition, rule.db_key.column.lower(), qualifiers)
    if found is None:
        return None
    sources: list[tuple[int, SqlValue]] = []
    for literal in found:
        if len(literal) == 1 and literal[0].pos in marks:
            sources.append((marks[literal[0].pos], None))
        elif any(t.pos in marks for t in literal):
            return None  # a parameter with a sign: routed with its value
        else:
            sources.append((-1, literal_value(literal)))
    return KeySlots(ref.table, verb, tuple(sources))


def placed_targets(
    sql: str,
    layout: Layout,
    placements: Sequence[Placement],
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
) -> tuple[Target, ...]:
    """The statement's targets for these placements of its table (physical names put in)."""

    def make() -> tuple[Target, ...]:
        tokens = lex(sql, mode, flavor)[0].tokens
        return _targets(sql, tokens, layout, _references(tokens, layout), placements)

    return _remembered_for(layout, ("placed", sql, mode, flavor, tuple(placements)), make)


def copy_target(
    sql: str, layout: Layout, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> Target:
    """The statement as physical database 0 runs it (its first physical tables): what a
    prepared statement's metadata is read from."""

    def make() -> Target:
        tokens = lex(sql, mode, flavor)[0].tokens
        references = _references(tokens, layout)
        return _copy(sql, tokens, layout, references, (0,), "", "copy").targets[0]

    return _remembered_for(layout, ("copy", sql, mode, flavor), make)


# ---------------------------------------------------------------------- text statements' shapes


@dataclass(frozen=True, slots=True)
class TextShape:
    """A text SELECT, UPDATE or DELETE of one table sharded by one key (no TBPARTITION BY of
    another column or function) whose WHERE fixes the key with one literal: the statements
    that differ from it only in their literals' values (the same fast key before literal
    lists are collapsed: ``proxy.sql.analyze.fast_literals``) are routed by that literal
    alone. ``route`` reaches exactly ``place(rule, D, v, v)`` of the literal's value ``v``
    after ``shard_key(type, v, "compare")`` (and scatters when it is not placeable; a
    placement that does not exist is refused): the rest of the decision is the statement's
    words, which its shape fixes. The physical text is the statement's own with the physical
    names put in at the places the lexer found in the statement the shape was made from
    (``chunks``: the text between the literals, for one placement)."""

    table: LogicalTable
    verb: str
    key: int  # which literal (in order) is the key's
    string: bool  # a string literal (else a number)
    negative: bool  # after an odd number of minus signs
    literals: int  # how many literals the statement has
    count: int  # the layout's physical databases
    integer: IntegerHash | None  # place() as arithmetic, for an integer key's integers
    sql: str  # the statement the shape was made from
    # What building the text of a placement needs (that statement's).
    _spans: tuple[int, ...]
    _tokens: tuple[Token, ...]
    _references: Mapping[str, _Reference]
    _layout: Layout
    # The text between the literals for each placement seen so far (None: the client's own).
    _chunks: dict[Placement, tuple[str, ...] | None]
    # ... and with its physical database, by global table (``integer``'s, the fast path's).
    _by_table: dict[int, tuple[PhysicalDatabase, tuple[str, ...] | None]]

    @property
    def reads_rows(self) -> bool:
        return self.verb == "SELECT"

    def placement(self, sql: str, spans: Sequence[int]) -> Placement | None:
        """The placement of a statement of this shape (``spans``: its literals' places);
        None when its key is not placeable or its placement does not exist (``route``
        decides those: it scatters or refuses)."""
        at = 2 * self.key
        start, end = spans[at], spans[at + 1]
        value: SqlValue
        if self.string:
            value = sql[start + 1 : end - 1]
        else:
            text = sql[start:end]
            long = "." in text or len(text) > 40  # (values._MOST_DIGITS: no int of them)
            number: int | Decimal = Decimal(text) if long else int(text)
            value = -number if self.negative else number
        integer = self.integer
        if integer is not None and type(value) is int:
            found = integer.place(value)
            if found is not None:
                return found
        rule = self.table.rule
        assert rule.db_key is not None
        try:
            key = shard_key(rule.db_key.type, value, "compare")
            return place(rule, self.count, key, key)
        except (NotPlaceable, PlacementError):
            return None

    def text(self, sql: str, spans: Sequence[int], placement: Placement) -> str | None:
        """The physical statement of ``sql`` for ``placement`` (None: ``sql`` itself)."""
        chunks = self._chunks_of(placement)
        return None if chunks is None else self._joined(chunks, sql, spans)

    def _chunks_of(self, placement: Placement) -> tuple[str, ...] | None:
        chunks = self._chunks.get(placement, False)
        if chunks is False:
            chunks = self._chunks[placement] = self._chunks_for(placement)
        assert chunks is None or isinstance(chunks, tuple)
        return chunks

    def _joined(self, chunks: tuple[str, ...], sql: str, spans: Sequence[int]) -> str:
        out = [chunks[0]]
        for index in range(self.literals):
            out.append(sql[spans[2 * index] : spans[2 * index + 1]])
            out.append(chunks[index + 1])
        return "".join(out)

    def target(self, sql: str, spans: Sequence[int]) -> Target | None:
        """The one target of a statement of this shape (None: routed the long way)."""
        found = self.physical(sql, spans)
        if found is None:
            return None
        physical, text = found
        return Target(physical.index, physical.shard, physical.name, text)

    def physical(self, sql: str, spans: Sequence[int]) -> tuple[PhysicalDatabase, str] | None:
        """:meth:`target`'s physical database and text (``sql`` itself when the physical
        text is the client's), without a Target."""
        found = self.placement(sql, spans)
        if found is None:
            return None
        text = self.text(sql, spans, found)
        return self._layout.partitions[found.database], sql if text is None else text

    def on_table(self, g: int, sql: str, spans: Sequence[int]) -> tuple[PhysicalDatabase, str]:
        """:meth:`physical` for a statement of an ``integer`` shape whose key the fast path
        has placed on global table ``g`` (``TextRoute.table``, which reads the digits as
        :meth:`placement` does): its physical database and text, remembered per table."""
        known = self._by_table.get(g)
        if known is None:
            integer = self.integer
            assert integer is not None
            placement = Placement(g // integer.per_db, g)
            database = self._layout.partitions[placement.database]
            known = self._by_table[g] = (database, self._chunks_of(placement))
        database, chunks = known
        return database, sql if chunks is None else self._joined(chunks, sql, spans)

    def _chunks_for(self, placement: Placement) -> tuple[str, ...] | None:
        sql, spans, tokens, layout = self.sql, self._spans, self._tokens, self._layout
        ((database, names),) = _physical_choices(layout, self._references, [placement])
        splices = _splices(
            tokens, layout, self._references, names, layout.partitions[database],
            aliased=self.reads_rows,
        )  # fmt: skip
        if not splices:
            return None
        bounds = [0, *spans, len(sql)]
        chunks = []
        for index in range(0, len(bounds), 2):
            low, high = bounds[index], bounds[index + 1]
            at = low
            out = []
            for start, end, text in splices:
                if low <= start and end <= high:
                    out.append(sql[at:start])
                    out.append(text)
                    at = end
            out.append(sql[at:high])
            chunks.append("".join(out))
        return tuple(chunks)


def text_shape(
    sql: str,
    spans: Sequence[int],
    layout: Layout,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
) -> TextShape | None:
    """The :class:`TextShape` of ``sql`` (one text statement; ``spans``: its literals' places,
    as ``fast_literals`` gives them), or None: its statements are routed in full."""
    statements = lex(sql, mode, flavor)
    if len(statements) != 1 or not statements[0].tokens:
        return None
    tokens = statements[0].tokens
    # The lexer's literals are the fast key's, one for one (adjacent strings are one literal).
    places: list[int] = []
    for token in tokens:
        kind = token.kind
        if kind is TokenKind.NUMBER or kind is TokenKind.STRING:
            places += (token.pos, token.pos + len(token.raw))
        elif kind not in (TokenKind.WORD, TokenKind.IDENT, TokenKind.OP):
            return None  # parameters, variables, hexadecimal and bit literals
    if tuple(places) != tuple(spans):
        return None
    verb = token_keyword(tokens[0])
    if verb not in ("SELECT", "UPDATE", "DELETE"):
        return None
    try:
        references = _references(tokens, layout)
    except SqlError:
        return None
    if len(references) != 1:
        return None
    ref = next(iter(references.values()))
    rule = ref.table.rule
    if rule.kind != "sharded" or rule.db_key is None or len(ref.references) != 1:
        return None
    if rule.tb_key is not None and not rule.tb_key.same_as(rule.db_key):
        return None
    if verb == "SELECT" and (
        _several_tables(tokens, references) or _groups(tokens)[ref.references[0]] != 0
    ):
        return None
    condition = _where(tokens)
    if condition is None:
        return None
    # As _restricted reads the key's values.
    qualifiers = {ref.alias.lower()} if ref.alias is not None else {ref.table.key}
    found = _values_for(condition, rule.db_key.column.lower(), qualifiers)
    if found is None or len(found) != 1:
        return None
    *signs, literal = found[0]
    if literal.kind is TokenKind.STRING:
        if signs or literal.raw != "'" + literal.value + "'":
            return None
    elif literal.kind is not TokenKind.NUMBER or not literal.raw.replace(".", "").isdigit():
        return None
    if any(not (is_op_token(s, "-") or is_op_token(s, "+")) for s in signs):
        return None
    starts = spans[::2]
    if literal.pos not in starts:
        return None
    return TextShape(
        ref.table,
        verb,
        starts.index(literal.pos),
        literal.kind is TokenKind.STRING,
        sum(is_op_token(s, "-") for s in signs) % 2 == 1,
        len(starts),
        layout.count,
        integer_hash(rule, layout.count),
        sql,
        tuple(spans),
        tokens,
        references,
        layout,
        {},
        {},
    )
