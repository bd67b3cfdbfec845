"""What a statement means on a sharded database: DDL, the SHOW commands and routing, decided
purely from the statement's text and the database's :class:`~proxy.shard.route.Layout`.

``decide(text, layout, mode, flavor)`` returns

* ``None`` -- nothing of the sharded data path: the statement runs on physical database 0
  (single tables live there under their own names) exactly as an unsharded session relays it;
* a :class:`~proxy.shard.route.Route` or :class:`~proxy.shard.route.NeedsSequence` -- DML and
  queries on sharded or broadcast tables (``proxy.shard.route``);
* :class:`LocalRows` -- answered by the proxy: ``SHOW [FULL] TABLES [LIKE ...]`` (logical tables,
  and physical database 0's views, which read single tables only: ``_check_view``), ``SHOW
  CREATE TABLE t`` (the logical definition, DRDS clause included), ``SHOW TOPOLOGY FROM t``,
  ``SHOW RULE [FROM t]``, ``SHOW NODE``;
* :class:`CreateShardedTable` -- ``CREATE TABLE`` (single, broadcast or sharded): the physical
  CREATE TABLE for every physical table, then the catalog records the logical table;
* :class:`FanOut` -- ``DROP TABLE``, ``ALTER TABLE``, ``TRUNCATE``, ``CREATE / DROP INDEX``: the
  client's statement on every physical table (physical names at the table name's token);
  failures are reported per partition.

Raises SqlError for what is refused (1235 naming why, 1050, 1051, 1146).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from auth.errors import ErrorCode, SqlError, not_supported, sql_error
from auth.model import DEFAULT_SEQUENCE_START, LogicalTable, auto_sequence_name
from proxy.shard.ddl import (
    CreateTable,
    SequenceStatement,
    check_physical_names,
    nextval_references,
    parse_create_table,
    parse_sequence_statement,
)
from proxy.shard.metadata import (
    Statistics,
    logical_text,
    needs_statistics,
    physical_qualifiers,
    sequenced,
)
from proxy.shard.route import (  # the token helpers routing reads statements with
    BulkDeclined,
    Layout,
    NeedsSequence,
    Route,
    Target,
    TextShape,
    bulk_rows,
    check_broadcast_defaults,
    hint_comment,
    hinted,
    is_name_token,
    is_op_token,
    named_tables,
    quote_name,
    route,
    split_physical_names,
    text_shape,
    token_keyword,
)
from proxy.shard.transaction import TransactionControl
from proxy.shard.values import SqlValue
from proxy.sql.charsets import UTF8MB3, beyond_bmp
from proxy.sql.lexer import (
    DEFAULT_MODE,
    MAX_TOKENS,
    LexedStatement,
    LexError,
    LexMode,
    ServerFlavor,
    Token,
    TokenKind,
    lex,
)
from proxy.sql.like import LikePattern, equal_general_ci, shows_database

__all__ = [
    "BULK_MIN_CHARS",
    "VIEWS_PROBE",
    "CreateShardedTable",
    "Decision",
    "FanOut",
    "FieldListing",
    "LocalRows",
    "NeedsStatistics",
    "RenamedRows",
    "TableAccess",
    "TableLocks",
    "TableStatus",
    "bulk_insert",
    "decide",
    "field_listing",
    "shaped",
    "show_commands",
    "table_locks",
]


class TableAccess(Protocol):
    """What the caller may learn of the logical tables, for the SHOW commands the proxy
    answers from the catalog (as MariaDB answers them from its grant tables)."""

    def lists(self, table: str) -> bool:
        """Whether SHOW TABLES lists ``table``: the caller holds some privilege on it."""
        ...

    def denied(self, table: str) -> SqlError | None:
        """The error for a SHOW naming ``table`` (SELECT needed, as SHOW COLUMNS), or None."""
        ...


class _Everything:
    """Every table visible (the proxy's own uses: EXPLAIN, tests)."""

    def lists(self, table: str) -> bool:
        return True

    def denied(self, table: str) -> SqlError | None:
        return None


EVERYTHING: TableAccess = _Everything()


@dataclass(frozen=True, slots=True)
class LocalRows:
    """A result set the proxy answers with."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]
    numeric: frozenset[str] = frozenset()
    # A statement whose answer on physical database 0 has these columns' definitions (and no
    # rows): they are the answer's, under these names (SHOW TABLES: what MariaDB sends).
    probe: str | None = None
    # No columns: the OK's notes (level, code, message), which SHOW WARNINGS shows.
    notes: tuple[tuple[str, int, str], ...] = ()
    # SHOW [FULL] TABLES: physical database 0's views (the single tables' views, listed as
    # the shard shows them to the account's mirror) join the rows, those this accepts (name,
    # Table_type) -- VIEWS_PROBE reads them.
    views: Callable[[str, str], bool] | None = None
    # SHOW CREATE TABLE of a sharded or broadcast table with an AUTO_INCREMENT column: its
    # GROUP sequence, whose place (the catalog's) the definition's AUTO_INCREMENT option shows
    # (``with_counter``), as MariaDB shows a table's counter.
    sequence: str | None = None
    # SHOW CREATE TABLE of a single table with an AUTO_INCREMENT column: its name; its table
    # on physical database 0 has the counter the definition shows (``shown_counter``).
    counter_of: str | None = None


# Physical database 0's views: their names and Table_type, as the account's mirror sees them.
VIEWS_PROBE = "SHOW FULL TABLES WHERE Table_type = 'VIEW'"


@dataclass(frozen=True, slots=True)
class RenamedRows:
    """A SHOW about a table run on physical database 0, its rows made logical by the proxy:
    the values of column ``column`` that name a physical table of a split table become the
    logical table's name (``renames``)."""

    target: Target
    column: int
    renames: Mapping[str, str]
    # Columns holding a statement in which the backquoted names of ``renames`` are renamed.
    texts: tuple[int, ...] = ()
    # SHOW INDEX of a sharded table: the same SHOW of every other physical table, whose
    # Cardinality (column ``summed``) is added to the row of the same Key_name and
    # Seq_in_index (as one MariaDB holding all the rows would estimate them).
    others: tuple[Target, ...] = ()
    summed: int = 6


@dataclass(frozen=True, slots=True)
class TableStatus:
    """SHOW TABLE STATUS of a sharded database: run on every physical database (``targets``),
    the rows of each logical table's physical tables (``owners``: (physical database, physical
    table) -> logical table) made one, its sizes and row counts summed; rows of physical
    database 0 that are no logical table's pass as they are; ``like`` filters the logical
    names."""

    targets: tuple[Target, ...]
    owners: Mapping[tuple[int, str], str]
    like: str | None = None


@dataclass(frozen=True, slots=True)
class FieldListing:
    """COM_FIELD_LIST of a logical table: the same command for its physical table in
    physical database 0 (``target.sql``: that table's name), the definitions renamed."""

    target: Target


def field_listing(layout: Layout, name: str) -> FieldListing:
    """COM_FIELD_LIST of logical table ``name`` (1146 for a split table's physical table); a
    name the catalog does not know is physical database 0's own (a view)."""
    table = layout.tables.get(name.lower())
    if table is None and name.lower() in split_physical_names(layout):
        raise sql_error(ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{name}' doesn't exist")
    first = layout.partitions[0]
    physical = name if table is None else table.physical_names_in(0, layout.count)[0]
    return FieldListing(Target(0, first.shard, first.name, physical))


@dataclass(frozen=True, slots=True)
class CreateShardedTable:
    create: CreateTable
    table: LogicalTable
    targets: tuple[Target, ...]  # one CREATE TABLE per physical table
    auto_sequence_start: int | None  # the implicit sequence of an AUTO_INCREMENT column


@dataclass(frozen=True, slots=True)
class FanOut:
    """One DDL statement on every physical table of ``tables``."""

    verb: str
    tables: tuple[str, ...]
    targets: tuple[Target, ...]
    forgets: tuple[str, ...] = ()  # DROP TABLE: the catalog forgets them once dropped
    redefines: str | None = None  # ALTER TABLE: the definition is read back afterwards
    renames: tuple[tuple[str, str], ...] = ()  # RENAME TABLE: (old, new) once renamed
    # ALTER TABLE t ... AUTO_INCREMENT [=] n of a sharded or broadcast table: its GROUP
    # sequence (if it has one) is moved to n (``Catalog.move_sequence``) once altered.
    auto_increment: int | None = None


@dataclass(frozen=True, slots=True)
class Maintenance:
    """``ANALYZE | CHECK | CHECKSUM | OPTIMIZE | REPAIR TABLE t, ...`` of a sharded
    database's tables: ``targets``, the client's statement on each physical table (every copy
    of a broadcast table; CHECKSUM reads one), in the order of ``tables``, their rows combined
    per logical table by :func:`maintenance_rows`. CHECK also compares each table's physical
    definitions (``definitions``: a ``SHOW CREATE TABLE`` of each physical table). A name the
    catalog does not know is physical database 0's (a view, or no table: the shard says)."""

    verb: str
    # Each table named, in order: as the rows name it (the catalog's name, or as written),
    # and whether the catalog knows it.
    tables: tuple[str, ...]
    known: tuple[bool, ...]
    targets: tuple[tuple[int, Target], ...]  # (its index in tables, the statement on one)
    definitions: tuple[tuple[int, Target], ...] = ()  # CHECK: (index, SHOW CREATE TABLE)


@dataclass(frozen=True, slots=True)
class SequenceDdl:
    """DRDS's ``CREATE [GROUP] SEQUENCE``, ``ALTER SEQUENCE ... START WITH``, ``DROP SEQUENCE``:
    GROUP sequences in the catalog."""

    statement: SequenceStatement


@dataclass(frozen=True, slots=True)
class NeedsNextval:
    """``s.NEXTVAL`` in the statement: decide again with one value of each (in order)."""

    sequences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NeedsStatistics:
    """information_schema.TABLES or STATISTICS of a database with sharded tables: decide
    again with their statistics summed over the partitions (``proxy.shard.metadata``)."""


@dataclass(frozen=True, slots=True)
class TableLocks:
    """``LOCK TABLES`` (``targets``: one ``LOCK TABLES`` of its physical tables for every
    physical database, in the acquisition order; ``tables``: the lower-case logical names
    locked) or ``UNLOCK TABLES`` (``unlock``: no targets)."""

    unlock: bool
    tables: frozenset[str] = frozenset()
    targets: tuple[Target, ...] = ()


Decision = (
    Route
    | NeedsSequence
    | LocalRows
    | RenamedRows
    | TableStatus
    | FieldListing
    | CreateShardedTable
    | FanOut
    | Maintenance
    | SequenceDdl
    | NeedsNextval
    | TransactionControl
    | TableLocks
    | NeedsStatistics
)


def _splice(text: str, splices: Sequence[tuple[int, int, str]]) -> str:
    out = []
    at = 0
    for start, end, value in sorted(splices):
        out.append(text[at:start])
        out.append(value)
        at = end
    out.append(text[at:])
    return "".join(out)


def _ordered(found: list[tuple[int, str]], layout: Layout) -> tuple[Target, ...]:
    """Targets in the acquisition order (shard name, physical database index)."""
    indexed = sorted(
        enumerate(found),
        key=lambda item: (layout.partitions[item[1][0]].shard, item[1][0], item[0]),
    )
    out = []
    for _, (database, text) in indexed:
        physical = layout.partitions[database]
        out.append(Target(database, physical.shard, physical.name, text))
    return tuple(out)


def table_locks(
    text: str, layout: Layout, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> TableLocks | None:
    """``LOCK TABLE[S] t [[AS] a] READ [LOCAL] | [LOW_PRIORITY] WRITE [CONCURRENT], ...`` on a
    sharded database: the same lock of every physical table of each table named, one
    ``LOCK TABLES`` per physical database (physical database 0 also locks the single tables,
    which live there alone). None: not a LOCK TABLES. 1235 for a table of another database
    (the locks are the session's connections', which are this database's)."""
    try:
        statements = lex(text, mode, flavor)
    except Exception:
        return None
    if len(statements) != 1:
        return None
    tokens = statements[0].tokens
    if len(tokens) < 3 or token_keyword(tokens[0]) != "LOCK":
        return None
    if token_keyword(tokens[1]) not in ("TABLE", "TABLES"):
        return None
    items = list(tokens[2:])
    wait = ""  # WAIT n / NOWAIT: the whole statement's, after the last table
    if items and token_keyword(items[-1]) == "NOWAIT":
        wait, items = " NOWAIT", items[:-1]
    elif len(items) >= 2 and token_keyword(items[-2]) == "WAIT":
        wait, items = f" WAIT {items[-1].raw}", items[:-2]
    per_db: list[list[str]] = [[] for _ in range(layout.count)]
    locked: set[str] = set()
    split_names = {
        n.lower()
        for t in layout.tables.values()
        if t.rule.split_tables
        for _, n in t.physical_tables(layout.count)
    }
    for item in _split_commas(items):
        if not item:
            continue
        if len(item) >= 3 and is_op_token(item[1], "."):
            if item[0].value.lower() != layout.name.lower():
                raise not_supported(
                    f"LOCK TABLES of {item[0].value}.{item[2].value} on sharded database"
                    f" {layout.name} (the session's locks are this database's)"
                )
            name, rest = item[2], item[3:]
        else:
            name, rest = item[0], item[1:]
        lock = " ".join(t.raw for t in rest)
        table = layout.tables.get(name.value.lower())
        if table is None and name.value.lower() in split_names:
            # A split table's physical table: no table of the database (as routing says).
            raise sql_error(
                ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{name.value}' doesn't exist"
            )
        if table is None:
            # Not a table of the database: physical database 0 answers as MariaDB would.
            per_db[0].append(f"{quote_name(name.value)} {lock}")
            continue
        aliased = bool(rest) and token_keyword(rest[0]) not in ("READ", "WRITE", "LOW_PRIORITY")
        if aliased and table.rule.split_tables:
            # (a physical database's several physical tables cannot share the one alias)
            raise not_supported(f"LOCK TABLES of split table {table.name} under an alias")
        locked.add(table.key)
        for database, physical in table.physical_tables(layout.count):
            per_db[database].append(f"{quote_name(physical)} {lock}")
    found = [
        (index, "LOCK TABLES " + ", ".join(names) + wait)
        for index, names in enumerate(per_db)
        if names
    ]
    return TableLocks(False, frozenset(locked), _ordered(found, layout))


def show_commands(text: str, mode: LexMode = DEFAULT_MODE) -> bool:
    """Whether ``text`` is DRDS's ``SHOW TOPOLOGY``, ``SHOW RULE``, ``SHOW NODE`` or ``CREATE
    GROUP SEQUENCE`` (which the analysis refuses: only a sharded database has them)."""
    try:
        statements = lex(text, mode)
    except Exception:
        return False
    if len(statements) != 1 or len(statements[0].tokens) < 2:
        return False
    first, second = statements[0].tokens[:2]
    if token_keyword(first) == "CREATE" and token_keyword(second) == "GROUP":
        return True
    return token_keyword(first) == "SHOW" and token_keyword(second) in ("TOPOLOGY", "RULE", "NODE")


def decide(
    text: str,
    layout: Layout,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
    sequence_values: Sequence[int] | None = None,
    nextvals: Sequence[int] | None = None,
    params: Sequence[SqlValue] | None = None,
    access: TableAccess = EVERYTHING,
    codec: str | None = "utf-8",
    statistics: Statistics | None = None,
) -> Decision | None:
    """See the module docstring. ``text``: one statement (the analysis's executable text).
    ``nextvals``: a value for each ``s.NEXTVAL`` of the statement, put in its place.
    ``params``: a prepared statement's parameter values (``route``). ``access``: which
    tables the SHOW commands answered here may name (the caller's). ``codec``: the Python
    codec of the client's character set (string keys are read in it: ``route``).
    ``statistics``: the sharded tables' statistics summed (information_schema.TABLES and
    STATISTICS); a text statement reading those without them is :class:`NeedsStatistics`."""
    if (
        params is None
        and nextvals is None
        and len(text) >= BULK_MIN_CHARS
        # (its rows' strings read as UTF-8: in utf8mb3 the same while none is 4 bytes)
        and (codec == "utf-8" or (codec == UTF8MB3 and not beyond_bmp(text)))
    ):
        bulk = bulk_insert(text, layout, mode, flavor, sequence_values)
        if bulk is not None:
            return bulk
    # Lexed once for every step below and routing (a multi-row INSERT of many rows is mostly
    # lexing): again only when s.NEXTVAL values were spliced in.
    statements = lex(text, mode, flavor)
    if layout.sequences and len(statements) == 1:
        found = nextval_references(statements[0], lambda n: n.lower() in layout.sequences)
        if found:
            if nextvals is None or len(nextvals) != len(found):
                return NeedsNextval(tuple(r.sequence for r in found))
            text = _splice(
                text, [(r.start, r.end, str(v)) for r, v in zip(found, nextvals, strict=True)]
            )
            statements = lex(text, mode, flavor)
    hint = hinted(text, layout, mode, flavor)
    if hint is not None:
        return hint
    if len(statements) != 1:
        return route(text, layout, mode, flavor, sequence_values, params, codec=codec)
    logical = logical_text(text, layout, mode, flavor, statistics)
    if (
        logical is not None
        and statistics is None
        and params is None
        and needs_statistics(text, layout)
    ):
        return NeedsStatistics()  # (a text statement; a prepared one: database 0's)
    if logical is not None:
        text = logical
        statements = lex(text, mode, flavor)
    decided = _decide_one(
        text, statements[0], layout, mode, flavor, sequence_values, params, access, codec
    )
    if decided is not None:
        return decided
    # Run on physical database 0 as written -- unless made logical, or it names the logical
    # database as a qualifier (sales.settings), which physical database 0 does not know.
    qualified = physical_qualifiers(text, statements[0], layout)
    if qualified is None and logical is None:
        return None
    first = layout.partitions[0]
    sql = qualified or text
    if statements[0].tokens and token_keyword(statements[0].tokens[0]) == "CREATE":
        sql = _creator_definer(sql, mode, flavor)
    return Route("copy", "", False, True, (Target(0, first.shard, first.name, sql),))


# From this length on, a statement that may be a multi-row INSERT is first read by
# ``bulk_insert`` (below it, lexing it whole costs about as much).
BULK_MIN_CHARS = 512


def bulk_insert(
    text: str,
    layout: Layout,
    mode: LexMode,
    flavor: ServerFlavor | None,
    sequence_values: Sequence[int] | None,
) -> Route | None:
    """``decide`` for a multi-row INSERT into a sharded table whose rows are literal values,
    without lexing its rows (``proxy.shard.route.bulk_rows``: the rows' places and shard keys
    read in one pass, the rest of the statement lexed with the rows blanked out): the same
    Route ``decide`` gives, or None when this way does not decide it -- any other statement,
    one ``decide`` would refuse, an s.NEXTVAL, a DRDS hint, DATABASE() -- and ``decide``
    lexes it whole."""
    split = bulk_rows(text, mode, flavor, layout)
    if split is None or hint_comment(text):
        return None
    blanked = split.blanked(text)
    try:
        statements = lex(blanked, mode, flavor)
    except LexError:
        return None
    if len(statements) != 1 or len(statements[0].tokens) + split.tokens > MAX_TOKENS:
        return None
    if layout.sequences and nextval_references(
        statements[0], lambda n: n.lower() in layout.sequences
    ):
        return None
    if logical_text(blanked, layout, mode, flavor) is not None:
        return None
    try:
        found = route(text, layout, mode, flavor, sequence_values, lexed=statements[0], split=split)
    except (BulkDeclined, SqlError):
        return None
    return found if isinstance(found, Route) else None


def _decide_one(
    text: str,
    lexed: LexedStatement,
    layout: Layout,
    mode: LexMode,
    flavor: ServerFlavor | None,
    sequence_values: Sequence[int] | None,
    params: Sequence[SqlValue] | None,
    access: TableAccess = EVERYTHING,
    codec: str | None = "utf-8",
) -> Decision | None:
    tokens = lexed.tokens
    words = [token_keyword(t) for t in tokens[:4]]
    if not words:
        return None
    if words[0] in ("EXPLAIN", "DESCRIBE", "DESC") and len(tokens) > 1:
        inner = token_keyword(tokens[1])
        if inner in ("SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE", "WITH"):
            return _explain(text[tokens[1].pos :], layout, mode, flavor, codec)
    if words[0] in ("CREATE", "ALTER", "DROP") and "SEQUENCE" in words[1:3]:
        return SequenceDdl(parse_sequence_statement(text, lexed))
    if words[0] == "SHOW":
        return _show(text, tokens, layout, access)
    if words[0] == "CREATE":
        view = _view_name_at(tokens)
        if view is not None:
            _check_view(tokens, view, layout)
            return None  # made on physical database 0, with the single tables it reads
    if words[0] == "CREATE" and "TABLE" in words and "TEMPORARY" not in words:
        return _create(text, layout, mode, flavor)
    if words[0] == "DROP" and words[1:2] == ["TABLE"]:
        return _drop(tokens, layout)
    if words[0] in ("ALTER", "TRUNCATE") or (words[0] in ("CREATE", "DROP") and "INDEX" in words):
        return _fan_out(text, tokens, layout, words)
    if words[0] == "RENAME":
        return _rename(tokens, layout)
    if words[0] in _MAINTENANCE_VERBS:
        found = _maintenance(text, tokens, layout)
        if found is not None:
            return found
    return route(text, layout, mode, flavor, sequence_values, params, lexed=lexed, codec=codec)


def shaped(
    text: str,
    spans: Sequence[int],
    layout: Layout,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
) -> tuple[TextShape | None, bool]:
    """The :class:`~proxy.shard.route.TextShape` of the text statement ``text`` (``spans``: its
    literals' places), made only when :func:`decide` routes ``text`` itself to the one target
    the shape gives it; ``(shape, settled)``: ``settled`` False when ``text`` alone cannot tell
    (its key is not placeable: another statement of its shape may be)."""
    shape = text_shape(text, spans, layout, mode, flavor)
    if shape is None:
        return None, True
    target = shape.target(text, spans)
    if target is None:
        return None, False
    try:
        decision = decide(text, layout, mode, flavor)
    except SqlError:
        return None, True
    reads = shape.reads_rows
    if not (
        isinstance(decision, Route)
        and decision.kind == "routed"
        and decision.targets == (target,)
        and decision.table == shape.table.name
        and decision.reads_rows == reads
        and decision.write == (not reads)
        and decision.merge is None
        and not decision.sequence_values
        and not decision.params
    ):
        return None, True
    return shape, True


def _explain(
    text: str, layout: Layout, mode: LexMode, flavor: ServerFlavor | None, codec: str | None
) -> Decision | None:
    """EXPLAIN of a statement on sharded or broadcast tables: the statements the proxy would
    send to each physical database, as DRDS's EXPLAIN shows its plan (nothing runs)."""
    found = route(text, layout, mode, flavor, codec=codec)
    if found is None:
        return None  # the shard explains it
    if isinstance(found, NeedsSequence):
        return LocalRows(
            ("GROUP_NAME", "SQL"),
            (("", f"(the shard key from sequence {found.sequence}, then routed)"),),
        )
    return LocalRows(("GROUP_NAME", "SQL"), tuple((t.database, t.sql) for t in found.targets))


# ------------------------------------------------------------------------------------- SHOW


def _from_table(
    tokens: Sequence[Token], layout: Layout, at: int, access: TableAccess
) -> LogicalTable | None:
    """The logical table named after FROM/IN at ``at`` (None: none is named); 1142 if the
    caller may not see it, 1146 if it is not one of the database's."""
    if at >= len(tokens):
        return None
    if token_keyword(tokens[at]) not in ("FROM", "IN") or at + 1 >= len(tokens):
        raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
    name = tokens[at + 1]
    if at + 3 < len(tokens) and is_op_token(tokens[at + 2], "."):
        if name.value.lower() != layout.name.lower():
            raise not_supported("SHOW TOPOLOGY or SHOW RULE of another database's table")
        name = tokens[at + 3]
    denied = access.denied(name.value)
    if denied is not None:
        raise denied
    table = layout.tables.get(name.value.lower())
    if table is None:
        raise sql_error(
            ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{name.value}' doesn't exist"
        )
    return table


def _show(
    text: str, tokens: Sequence[Token], layout: Layout, access: TableAccess
) -> Decision | None:
    words = [token_keyword(t) for t in tokens]
    count = layout.count
    if words[1:2] == ["TOPOLOGY"]:
        table = _from_table(tokens, layout, 2, access)
        if table is None:
            raise sql_error(ErrorCode.PARSE, "SHOW TOPOLOGY needs FROM table")
        rows = tuple(
            (str(index), layout.partitions[db].name, name)
            for index, (db, name) in enumerate(table.physical_tables(count))
        )
        return LocalRows(("ID", "GROUP_NAME", "TABLE_NAME"), rows, frozenset({"ID"}))
    if words[1:2] == ["RULE"]:
        named = _from_table(tokens, layout, 2, access)
        tables = (
            [named]
            if named is not None
            else sorted((t for t in layout.tables.values() if access.lists(t.name)), key=_name)
        )
        rule_rows = []
        for index, table in enumerate(tables):
            rule = table.rule
            db, tb = rule.db_key, rule.tb_key
            rule_rows.append(
                (
                    str(index),
                    table.name,
                    "1" if rule.kind == "broadcast" else "0",
                    db.column if db else "",
                    db.function.lower() if db else "",
                    str(count if rule.kind == "sharded" else 1),
                    tb.column if tb else "",
                    tb.function.lower() if tb else "",
                    str(rule.tables_per_db),
                )
            )
        columns = (
            "ID",
            "TABLE_NAME",
            "BROADCAST",
            "DB_PARTITION_KEY",
            "DB_PARTITION_POLICY",
            "DB_PARTITION_COUNT",
            "TB_PARTITION_KEY",
            "TB_PARTITION_POLICY",
            "TB_PARTITION_COUNT",
        )
        numeric = frozenset({"ID", "BROADCAST", "DB_PARTITION_COUNT", "TB_PARTITION_COUNT"})
        return LocalRows(columns, tuple(rule_rows), numeric)
    if words[1:2] == ["NODE"]:
        rows = tuple((str(p.index), p.name, p.shard) for p in layout.partitions)
        return LocalRows(("ID", "NAME", "SHARD"), rows, frozenset({"ID"}))
    full = words[1:2] == ["FULL"]
    rest = 2 if full else 1
    if words[rest : rest + 1] == ["TABLES"]:
        after = rest + 1
        if after < len(tokens) and words[after] in ("FROM", "IN"):
            if after + 1 < len(tokens) and tokens[after + 1].value.lower() != layout.name.lower():
                return None  # another database's: the analysis decides (1235 / 1044)
            after += 2
        pattern = None
        where: Callable[[str, str], bool] | None = None
        if after < len(tokens):
            if words[after] == "WHERE":
                where = _tables_where(tokens, after + 1, f"Tables_in_{layout.name}", full)
            elif words[after] != "LIKE" or after + 2 != len(tokens):
                raise not_supported("SHOW TABLES ... WHERE on a sharded database")
            else:
                pattern = tokens[after + 1].value
        names = sorted(
            (t.name for t in layout.tables.values() if access.lists(t.name)), key=str.lower
        )
        shown = shows_database(pattern) if pattern is not None else None

        def listed(name: str, kind: str) -> bool:
            return (shown is None or shown(name)) and (where is None or where(name, kind))

        names = [n for n in names if listed(n, "BASE TABLE")]
        column = f"Tables_in_{layout.name}" + (f" ({pattern})" if pattern is not None else "")
        if full:
            return LocalRows(
                (column, "Table_type"),
                tuple((n, "BASE TABLE") for n in names),
                probe="SHOW FULL TABLES WHERE FALSE",
                views=listed,
            )
        return LocalRows(
            (column,), tuple((n,) for n in names), probe="SHOW TABLES WHERE FALSE", views=listed
        )
    if words[rest : rest + 1] in (["COLUMNS"], ["FIELDS"]) or (
        not full and words[1:2] in (["INDEX"], ["INDEXES"], ["KEYS"])
    ):
        return _show_table(
            text, tokens, words, layout, rest + 1, words[rest] not in ("COLUMNS", "FIELDS")
        )
    if not full and words[1:3] == ["TABLE", "STATUS"]:
        return _table_status(tokens, words, layout)
    if words[1:3] in (["CREATE", "DATABASE"], ["CREATE", "SCHEMA"]):
        return _create_database(tokens, words, layout)
    if words[1:3] == ["CREATE", "VIEW"] and len(tokens) > 3:
        # (a view is never a split table's physical table: 1146, as for any other name)
        qualified = len(tokens) > 5 and is_op_token(tokens[4], ".")
        view = tokens[5] if qualified else tokens[3]
        if (
            not qualified or tokens[3].value.lower() == layout.name.lower()
        ) and view.value.lower() in split_physical_names(layout):
            raise sql_error(
                ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{view.value}' doesn't exist"
            )
        return None
    if words[1:3] == ["CREATE", "TABLE"]:
        name = tokens[3] if len(tokens) > 3 else None
        if len(tokens) > 5 and is_op_token(tokens[4], "."):
            if tokens[3].value.lower() != layout.name.lower():
                return None  # another database's table: the analysis decides (1235 / 1044)
            name = tokens[5]
        if name is None:
            raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
        table = layout.tables.get(name.value.lower())
        if table is None:
            if name.value.lower() in split_physical_names(layout):
                # A split table's physical table, in physical database 0: no table of the
                # logical database (as in any other statement).
                raise sql_error(
                    ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{name.value}' doesn't exist"
                )
            return None
        definition = _definition(table)
        single = table.rule.kind == "single" and "AUTO_INCREMENT" in definition.upper()
        return LocalRows(
            ("Table", "Create Table"),
            ((table.name, definition),),
            sequence=auto_sequence_name(table.name) if sequenced(table, layout) else None,
            counter_of=table.name if single else None,
        )
    return None


# What may stand between CREATE and VIEW: [OR REPLACE] [ALGORITHM = a] [DEFINER = account]
# [SQL SECURITY s] (an account's own tokens aside).
_BEFORE_VIEW: Final = frozenset({"OR", "REPLACE", "ALGORITHM", "DEFINER", "SQL", "SECURITY"})


def _view_name_at(tokens: Sequence[Token]) -> int | None:
    """The index of the view's name (its database's, when qualified) in a ``CREATE [OR
    REPLACE] [ALGORITHM = ...] [DEFINER = ...] [SQL SECURITY ...] VIEW [IF NOT EXISTS] v``;
    None when the statement is no CREATE VIEW."""
    for index in range(1, min(len(tokens), 24)):
        word = token_keyword(tokens[index])
        if word == "VIEW":
            at = index + 1
            if [token_keyword(t) for t in tokens[at : at + 3]] == ["IF", "NOT", "EXISTS"]:
                at += 3
            return at if at < len(tokens) else None
        if word in ("AS", "SELECT", "TABLE", "INDEX", "SEQUENCE") or (
            index == 1 and word not in _BEFORE_VIEW
        ):
            return None
    return None


def _creator_definer(sql: str, mode: LexMode, flavor: ServerFlavor | None) -> str:
    """``sql`` -- a statement sent to physical database 0 in a text of the proxy's own (its
    qualifiers made physical) -- with a CREATE VIEW's DEFINER account as ``CURRENT_USER``,
    as the relay puts it in the client's text (a view's definer is its creator's mirror,
    which may make no view for another)."""
    tokens = lex(sql, mode, flavor)[0].tokens
    at = _view_name_at(tokens)
    if at is None:
        return sql
    words = [token_keyword(t) for t in tokens[:at]]
    if "DEFINER" not in words:
        return sql
    start = words.index("DEFINER") + 1
    if start < at and is_op_token(tokens[start], "="):
        start += 1
    end = next(i for i in range(start, at) if words[i] in ("SQL", "VIEW"))
    return f"{sql[: tokens[start].pos]}CURRENT_USER {sql[tokens[end].pos :]}"


def _check_view(tokens: Sequence[Token], at: int, layout: Layout) -> None:
    """A CREATE VIEW on a sharded database: made on physical database 0 as written, so it
    may read only what lives there whole -- single tables (and other such views). A view
    reading a sharded table would read physical database 0's partition alone, and one of a
    broadcast table would take writes through it to copy 0 alone: 1235. 1050 for a view named
    as a table split by TBPARTITION BY (physical database 0 has no table of its name), 1235
    for one named as such a table's physical table."""
    qualified = at + 2 < len(tokens) and is_op_token(tokens[at + 1], ".")
    if qualified and tokens[at].value.lower() != layout.name.lower():
        return  # another database's view: the analysis decides (1235 / 1044)
    name = tokens[at + 2] if qualified else tokens[at]
    key = name.value.lower()
    table = layout.tables.get(key)
    if table is not None and table.rule.split_tables:
        raise sql_error(ErrorCode.TABLE_EXISTS, f"Table '{table.name}' already exists")
    if key in split_physical_names(layout):
        raise not_supported(
            f"a view named as a physical table of a split table ({name.value}) on a sharded"
            " database"
        )
    for read in named_tables(tokens, layout):
        if read.rule.kind != "single":
            raise not_supported(
                f"a view reading {read.rule.kind} table {read.name}: on a sharded database a"
                " view may read single tables only (query the table itself)"
            )


def _tables_where(
    tokens: Sequence[Token], at: int, column: str, full: bool
) -> Callable[[str, str], bool]:
    """``SHOW [FULL] TABLES ... WHERE`` from ``at``, as tools write it (``WHERE Table_type =
    'BASE TABLE'``): comparisons of the listing's columns with a string (``=``, ``<>``, ``!=``,
    ``[NOT] LIKE``) joined by AND, compared as MariaDB compares them (general_ci); a predicate
    of (table name, table type). Other conditions: 1235."""
    unsupported = not_supported("this SHOW TABLES ... WHERE on a sharded database")
    # (the column's index in the row, a test of its value, whether the test is negated)
    conditions: list[tuple[int, Callable[[str], bool], bool]] = []
    count = len(tokens)
    while True:
        if at + 2 >= count or tokens[at].kind not in (TokenKind.WORD, TokenKind.IDENT):
            raise unsupported
        name = tokens[at].value
        if name.lower() == column.lower():
            which = 0
        elif name.lower() == "table_type" and full:
            which = 1
        else:
            raise sql_error(ErrorCode.BAD_FIELD, f"Unknown column '{name}' in 'where clause'")
        negated = token_keyword(tokens[at + 1]) == "NOT"
        op = tokens[at + 2] if negated else tokens[at + 1]
        at += 4 if negated else 3
        if at > count or tokens[at - 1].kind is not TokenKind.STRING:
            raise unsupported
        value = tokens[at - 1].value
        if token_keyword(op) == "LIKE":
            conditions.append((which, LikePattern.compile(value).matches, negated))
        elif negated:
            raise unsupported
        elif is_op_token(op, "="):
            conditions.append((which, functools.partial(equal_general_ci, value), False))
        elif is_op_token(op, "<>") or is_op_token(op, "!="):
            conditions.append((which, functools.partial(equal_general_ci, value), True))
        else:
            raise unsupported
        if at == count:
            break
        if token_keyword(tokens[at]) != "AND":
            raise unsupported
        at += 1

    def holds(name: str, kind: str) -> bool:
        row = (name, kind)
        return all(test(row[which]) != negated for which, test, negated in conditions)

    return holds


def _show_table(
    text: str,
    tokens: Sequence[Token],
    words: Sequence[str],
    layout: Layout,
    at: int,
    index: bool,
) -> Decision | None:
    """SHOW [FULL] COLUMNS|FIELDS / SHOW INDEX|INDEXES|KEYS {FROM|IN} t [{FROM|IN} db] [...]:
    the same SHOW of the table's physical table in physical database 0 (its first, for a table
    split by TBPARTITION BY); SHOW INDEX's rows name the logical table."""
    count = len(tokens)
    if at + 1 >= count or words[at] not in ("FROM", "IN"):
        return None  # (the shard's syntax error)
    name_at = at + 1
    qualifier: Token | None = None
    if name_at + 2 < count and is_op_token(tokens[name_at + 1], "."):
        qualifier = tokens[name_at]
        name_at += 2
    after = name_at + 1
    if after + 1 < count and words[after] in ("FROM", "IN"):
        qualifier = tokens[after + 1]
        after += 2
    if qualifier is not None and qualifier.value.lower() != layout.name.lower():
        return None  # another database's: the analysis decides
    name = tokens[name_at]
    table = layout.tables.get(name.value.lower())
    if table is None and name.value.lower() in split_physical_names(layout):
        raise sql_error(
            ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{name.value}' doesn't exist"
        )
    # A name the catalog does not know is physical database 0's own (a view: its columns,
    # or the shard's 1146 under the logical name).
    physical = name.value if table is None else table.physical_names_in(0, layout.count)[0]
    sql = f"{text[: tokens[at].pos]}FROM {quote_name(physical)}"
    if after < count:
        sql += " " + text[tokens[after].pos :]
    first = layout.partitions[0]
    target = Target(0, first.shard, first.name, sql)
    if table is None:
        return Route("copy", "", False, True, (target,))
    if index:
        others: list[tuple[int, str]] = []
        if table.rule.kind == "sharded":
            for database, other in table.physical_tables(layout.count)[1:]:
                shown = f"{text[: tokens[at].pos]}FROM {quote_name(other)}"
                if after < count:
                    shown += " " + text[tokens[after].pos :]
                others.append((database, shown))
        renames = {n: table.name for _, n in table.physical_tables(layout.count)}
        return RenamedRows(target, 0, renames, others=_ordered(others, layout))
    return Route("copy", table.name, False, True, (target,))


def _create_database(
    tokens: Sequence[Token], words: Sequence[str], layout: Layout
) -> Decision | None:
    """SHOW CREATE {DATABASE|SCHEMA} [IF NOT EXISTS] of the logical database: physical
    database 0's, under the logical name."""
    at = 6 if words[3:6] == ["IF", "NOT", "EXISTS"] else 3
    if at + 1 != len(tokens) or tokens[at].value.lower() != layout.name.lower():
        return None  # another database's: the analysis decided
    first = layout.partitions[0]
    sql = "SHOW CREATE DATABASE " + ("IF NOT EXISTS " if at == 6 else "") + quote_name(first.name)
    target = Target(0, first.shard, first.name, sql)
    return RenamedRows(target, 0, {first.name: layout.name}, texts=(1,))


def _table_status(tokens: Sequence[Token], words: Sequence[str], layout: Layout) -> Decision:
    """SHOW TABLE STATUS [{FROM|IN} db] [LIKE 'pattern']: every physical database's, one row
    per logical table (TableStatus); the pattern is matched against the logical names by the
    proxy."""
    count = len(tokens)
    after = 3
    if after < count and words[after] in ("FROM", "IN"):
        if after + 1 < count and tokens[after + 1].value.lower() != layout.name.lower():
            raise not_supported("SHOW TABLE STATUS of another database")
        after += 2
    like = None
    if after < count:
        if words[after] != "LIKE" or after + 2 != count:
            raise not_supported("SHOW TABLE STATUS ... WHERE on a sharded database")
        like = tokens[after + 1].value
    targets = tuple(
        Target(p.index, p.shard, p.name, "SHOW TABLE STATUS") for p in layout.partitions
    )
    owners: dict[tuple[int, str], str] = {}
    for table in layout.tables.values():
        for database, name in table.physical_tables(layout.count):
            if table.rule.kind != "broadcast" or database == 0:  # (a copy in each)
                owners[(database, name)] = table.name
    return TableStatus(_ordered([(t.partition, t.sql) for t in targets], layout), owners, like)


def _name(table: LogicalTable) -> str:
    return table.name.lower()


def _definition(table: LogicalTable) -> str:
    """The logical definition as stored (the shard's definition of the first physical table
    with the DRDS clause, made at CREATE and ALTER TABLE; a client's CREATE TABLE for tables
    made before), naming the table by its name now: RENAME TABLE keeps the stored text."""
    try:
        lexed = lex(table.definition)[0]
        create = parse_create_table(lexed.text, lexed)
    except (SqlError, IndexError):
        return table.definition
    text = lexed.text
    start = create.name_start
    tokens = lexed.tokens
    at = next(i for i, token in enumerate(tokens) if token.pos == start)
    if at >= 2 and is_op_token(tokens[at - 1], "."):
        start = tokens[at - 2].pos  # a qualifier: the table is in the database shown
    return f"{text[:start]}{quote_name(table.name)}{text[create.name_end :]}"


# MariaDB's SHOW CREATE TABLE writes the AUTO_INCREMENT table option after the closing
# parenthesis of the columns and the ENGINE option, before the others (never inside a
# column's or the table's COMMENT: a newline in a string is written \n).
_SHOWN_COUNTER: Final = re.compile(r"(\n\)(?: ENGINE=\w+)?)(?: AUTO_INCREMENT=\d+)?")


# The counter itself, where _SHOWN_COUNTER finds the option.
_COUNTER_VALUE: Final = re.compile(r"\n\)(?: ENGINE=\w+)? AUTO_INCREMENT=(\d+)")


def shown_counter(definition: str) -> int:
    """The AUTO_INCREMENT counter MariaDB's SHOW CREATE TABLE ``definition`` shows (1: none,
    as MariaDB shows none for a table whose next value is 1)."""
    found = _COUNTER_VALUE.search(definition)
    return 1 if found is None else int(found.group(1))


def with_counter(definition: str, position: int) -> str:
    """A stored definition (SHOW CREATE TABLE's) with ``AUTO_INCREMENT=position`` as its
    counter, where and as MariaDB writes it: only when past 1 (a table whose next value is 1
    shows none). A definition not in MariaDB's form is left as it is."""
    option = f" AUTO_INCREMENT={position}" if position > 1 else ""
    return _SHOWN_COUNTER.sub(lambda found: found.group(1) + option, definition, count=1)


# --------------------------------------------------------------------------------- CREATE


def _create(text: str, layout: Layout, mode: LexMode, flavor: ServerFlavor | None) -> Decision:
    lexed = lex(text, mode, flavor)[0]
    create = parse_create_table(text, lexed)
    if create.schema is not None and create.schema.lower() != layout.name.lower():
        raise not_supported("CREATE TABLE in another database")
    if create.table.lower() in layout.tables:
        if create.if_not_exists:  # nothing to do: OK with MariaDB's note
            note = ("Note", ErrorCode.TABLE_EXISTS.errno, f"Table '{create.table}' already exists")
            return LocalRows((), (), notes=(note,))
        raise sql_error(ErrorCode.TABLE_EXISTS, f"Table '{create.table}' already exists")
    if create.like is not None:
        source = layout.tables.get(create.like[1].lower())
        if source is not None and source.rule.kind != "single":
            raise not_supported(f"CREATE TABLE ... LIKE of a {source.rule.kind} table")
        if source is None and create.like[1].lower() in split_physical_names(layout):
            raise sql_error(  # (a split table's physical table: never a table of the database)
                ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{create.like[1]}' doesn't exist"
            )
    if create.has_query:
        raise not_supported("CREATE TABLE ... SELECT on a sharded database")
    table = create.logical_table()
    if table.rule.kind == "broadcast":
        check_broadcast_defaults(lexed.tokens, table.name)
    if table.rule.split_tables:
        check_physical_names(table, layout.count)
    # The physical statement: the clause cut out, the name (and a qualifier) renamed.
    physical_sql = create.physical_sql
    physical_tokens = lex(physical_sql, mode, flavor)[0].tokens
    name_index = next(i for i, t in enumerate(physical_tokens) if t.pos == create.name_start)
    found: list[tuple[int, str]] = []
    for database, name in table.physical_tables(layout.count):
        splices = [(create.name_start, create.name_end, quote_name(name))]
        if name_index >= 2 and is_op_token(physical_tokens[name_index - 1], "."):
            qualifier = physical_tokens[name_index - 2]
            splices.append(
                (
                    qualifier.pos,
                    qualifier.pos + len(qualifier.raw),
                    quote_name(layout.partitions[database].name),
                )
            )
        found.append((database, _splice(physical_sql, splices)))
    auto_start = None
    if table.rule.kind != "single" and create.auto_increment_column is not None:
        auto_start = create.auto_increment_start or DEFAULT_SEQUENCE_START
    return CreateShardedTable(create, table, _ordered(found, layout), auto_start)


def altered_sequence_start(table: LogicalTable, definition: str) -> int | None:
    """After an ALTER TABLE giving sharded or broadcast ``table`` the ``definition``: where
    the implicit sequence of its AUTO_INCREMENT column starts, if it has one (None: it has
    none, or is a single table). Past the first physical table's counter (``AUTO_INCREMENT =
    n``), the rows there already numbered by it."""
    if table.rule.kind == "single":
        return None
    try:
        lexed = lex(definition)[0]
        create = parse_create_table(lexed.text, lexed)
    except (SqlError, IndexError):
        return None
    if create.auto_increment_column is None:
        return None
    return max(create.auto_increment_start or 0, DEFAULT_SEQUENCE_START)


# ------------------------------------------------------------------------------ DROP / ALTER


def _drop(tokens: Sequence[Token], layout: Layout) -> Decision | None:
    words = [token_keyword(t) for t in tokens]
    at = 2
    if_exists = words[at : at + 2] == ["IF", "EXISTS"]
    if if_exists:
        at += 2
    names: list[str] = []
    for item in _split_commas(tokens[at:]):
        if item and token_keyword(item[-1]) in ("RESTRICT", "CASCADE"):
            item = item[:-1]
        if not item or not is_name_token(item[-1]):
            raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
        if len(item) == 3 and item[0].value.lower() != layout.name.lower():
            raise not_supported("DROP TABLE of another database's table")
        names.append(item[-1].value)
    tables = [layout.tables.get(n.lower()) for n in names]
    missing = [n for n, t in zip(names, tables, strict=True) if t is None]
    if len(missing) == len(names) and not any(
        n.lower() in split_physical_names(layout) for n in names
    ):
        # Physical database 0's own names (a view: MariaDB's 1965 'db.v' is a view), or none.
        return None
    if missing and not if_exists:
        shown = ",".join(f"{layout.name}.{n}" for n in missing)
        raise sql_error(ErrorCode.BAD_TABLE, f"Unknown table '{shown}'")
    known = [t for t in tables if t is not None]
    if not known:
        return None  # DROP TABLE IF EXISTS of tables the database does not have
    per_db: dict[int, list[str]] = {}
    for table in known:
        for database, name in table.physical_tables(layout.count):
            per_db.setdefault(database, []).append(quote_name(name))
    found = [
        (database, "DROP TABLE IF EXISTS " + ", ".join(physical))
        for database, physical in sorted(per_db.items())
    ]
    return FanOut(
        "DROP TABLE",
        tuple(t.name for t in known),
        _ordered(found, layout),
        forgets=tuple(t.name for t in known),
    )


def _rename(tokens: Sequence[Token], layout: Layout) -> Decision | None:
    """RENAME TABLE a TO b [, c TO d ...]: every physical table renamed in one RENAME per
    physical database (a table split by TBPARTITION BY: ``a_00`` to ``b_00`` ...)."""
    if len(tokens) < 2 or token_keyword(tokens[1]) != "TABLE":
        raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
    pairs: list[tuple[LogicalTable, str]] = []
    taken = set(layout.tables)
    items = _split_commas(tokens[2:])
    if _renames_views(items, layout):
        return None  # physical database 0's own names (views): run there as written
    for item in items:
        words = [token_keyword(t) for t in item]
        if "TO" not in words:
            raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
        at = words.index("TO")
        old, new = item[:at], item[at + 1 :]
        if not old or not new or not is_name_token(old[-1]) or not is_name_token(new[-1]):
            raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
        for part in (old, new):
            if len(part) == 3 and part[0].value.lower() != layout.name.lower():
                raise not_supported("RENAME TABLE across databases")
        table = layout.tables.get(old[-1].value.lower())
        if table is None:
            raise sql_error(
                ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{old[-1].value}' doesn't exist"
            )
        target = new[-1].value
        if target.lower() in taken - {table.key}:
            raise sql_error(ErrorCode.TABLE_EXISTS, f"Table '{target}' already exists")
        taken.discard(table.key)
        taken.add(target.lower())
        pairs.append((table, target))
    per_db: dict[int, list[str]] = {}
    for table, target in pairs:
        renamed = LogicalTable(target, table.rule, table.definition)
        if renamed.rule.split_tables:
            check_physical_names(renamed, layout.count)
        olds = table.physical_tables(layout.count)
        news = renamed.physical_tables(layout.count)
        for (database, old_name), (_, new_name) in zip(olds, news, strict=True):
            per_db.setdefault(database, []).append(
                f"{quote_name(old_name)} TO {quote_name(new_name)}"
            )
    found = [
        (database, "RENAME TABLE " + ", ".join(items)) for database, items in sorted(per_db.items())
    ]
    return FanOut(
        "RENAME TABLE",
        tuple(t.name for t, _ in pairs),
        _ordered(found, layout),
        renames=tuple((t.name, new) for t, new in pairs),
    )


def _renames_views(items: Sequence[Sequence[Token]], layout: Layout) -> bool:
    """Whether a RENAME TABLE renames only names the catalog does not know (physical database
    0's own: views), to names no table of the database has: it then runs there as written
    (the shard's 1146 for a name it has not either). 1050 for a new name a table has; such
    names with tables of the catalog in one RENAME: 1235."""
    physical_only = split_physical_names(layout)
    unknown = 0
    for item in items:
        words = [token_keyword(t) for t in item]
        if "TO" not in words or words.index("TO") == 0 or not is_name_token(item[-1]):
            return False  # (the syntax error below)
        if any(
            is_op_token(t, ".") and i > 0 and item[i - 1].value.lower() != layout.name.lower()
            for i, t in enumerate(item)
        ):
            return False  # (another database's: refused below)
        old = item[words.index("TO") - 1]
        known = old.value.lower() in layout.tables or old.value.lower() in physical_only
        if not known:
            unknown += 1
            new = item[-1].value.lower()
            if new in layout.tables or new in physical_only:
                raise sql_error(ErrorCode.TABLE_EXISTS, f"Table '{item[-1].value}' already exists")
    if 0 < unknown < len(items):
        raise not_supported("RENAME TABLE of views together with tables on a sharded database")
    return unknown > 0


_MAINTENANCE_VERBS: Final = frozenset({"ANALYZE", "CHECK", "CHECKSUM", "OPTIMIZE", "REPAIR"})


def _maintenance(text: str, tokens: Sequence[Token], layout: Layout) -> Maintenance | None:
    """ANALYZE / CHECK / CHECKSUM / OPTIMIZE / REPAIR [NO_WRITE_TO_BINLOG | LOCAL] TABLE[S]
    of the database's tables: :class:`Maintenance`, the statement as written (its options
    after the names: QUICK, EXTENDED, PERSISTENT FOR ...) on each physical table. None:
    another database's table is named (the analysis decides), or it is another statement
    (``ANALYZE SELECT``, ``CHECK VIEW``)."""
    verb = token_keyword(tokens[0])
    at = 1
    if at < len(tokens) and token_keyword(tokens[at]) in ("NO_WRITE_TO_BINLOG", "LOCAL"):
        at += 1
    if at >= len(tokens) or token_keyword(tokens[at]) not in ("TABLE", "TABLES"):
        return None
    at += 1
    prefix = text[tokens[0].pos : tokens[at].pos] if at < len(tokens) else ""
    named: list[Token] = []  # each table's name token
    while True:
        if at >= len(tokens) or not is_name_token(tokens[at]):
            raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
        if at + 2 < len(tokens) and is_op_token(tokens[at + 1], "."):
            if tokens[at].value.lower() != layout.name.lower():
                return None  # another database's table: the analysis decides (1235 / 1044)
            at += 2
            if not is_name_token(tokens[at]):
                raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
        named.append(tokens[at])
        at += 1
        if at < len(tokens) and is_op_token(tokens[at], ","):
            at += 1
            continue
        break
    suffix = text[tokens[at - 1].pos + len(tokens[at - 1].raw) :]
    hidden = split_physical_names(layout)
    tables: list[tuple[str, LogicalTable | None]] = []
    seen: set[str] = set()
    for token in named:
        if token.value.lower() in seen:
            raise sql_error(ErrorCode.NONUNIQ_TABLE, f"Not unique table/alias: '{token.value}'")
        seen.add(token.value.lower())
        table = layout.tables.get(token.value.lower())
        if table is None and token.value.lower() in hidden:
            raise sql_error(
                ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{token.value}' doesn't exist"
            )
        tables.append((token.value if table is None else table.name, table))
    targets: list[tuple[int, Target]] = []
    definitions: list[tuple[int, Target]] = []
    for index, (name, table) in enumerate(tables):
        physical = ((0, name),) if table is None else table.physical_tables(layout.count)
        if verb == "CHECKSUM" and table is not None and table.rule.kind == "broadcast":
            physical = physical[:1]  # (every copy holds the same rows)
        for database, physical_name in physical:
            where = layout.partitions[database]
            sql = f"{prefix}{quote_name(physical_name)}{suffix}"
            targets.append((index, Target(database, where.shard, where.name, sql)))
            if verb == "CHECK" and table is not None:
                show = f"SHOW CREATE TABLE {quote_name(physical_name)}"
                definitions.append((index, Target(database, where.shard, where.name, show)))
    return Maintenance(
        verb,
        tuple(name for name, _ in tables),
        tuple(table is not None for _, table in tables),
        tuple(targets),
        tuple(definitions),
    )


_CHECKSUM_MODULUS: Final = 1 << 32  # MariaDB sums its rows' checksums in 32 bits
_FAILED: Final = ("status", "Operation failed")


def maintenance_rows(
    decision: Maintenance,
    database: str,
    answers: Sequence[Sequence[Sequence[str | None]]],
    problems: Mapping[int, Sequence[str]],
) -> list[list[str | None]]:
    """The rows of a :class:`Maintenance` statement: ``answers``, each target's rows (texts
    already in logical names); ``problems``, CHECK's partitions whose definition differs or
    could not be read, by the table's index. Per table, in the order named: CHECKSUM's sum of
    its physical tables' checksums as MariaDB sums rows' (modulo 2**32; NULL if one is NULL);
    the others' rows as every physical table answered them when all answered alike, else each
    row once in the order met, without ``status OK`` beside a failure -- and instead of the
    status rows, an ``error`` row for each partition CHECK found differing."""
    found: list[list[list[tuple[str | None, ...]]]] = [[] for _ in decision.tables]
    first: list[Sequence[Sequence[str | None]]] = [() for _ in decision.tables]
    for (index, _), rows in zip(decision.targets, answers, strict=True):
        if not found[index]:
            first[index] = rows
        found[index].append([tuple(row[1:]) for row in rows])
    out: list[list[str | None]] = []
    for index, name in enumerate(decision.tables):
        answered = found[index]
        shown: str | None = f"{database}.{name}"
        if not decision.known[index] and first[index]:
            shown = first[index][0][0]  # (as the shard named it, in the logical database)
        if decision.verb == "CHECKSUM":
            sums = [rows[0][0] for rows in answered]
            total = None if None in sums else sum(int(v or 0) for v in sums) % _CHECKSUM_MODULUS
            out.append([shown, None if total is None else str(total)])
            continue
        rows = answered[0] if answered else []
        if any(each != rows for each in answered):
            rows = list(dict.fromkeys(row for each in answered for row in each))
            if any(row[1] in ("error", "Error") or row[1:] == _FAILED for row in rows):
                rows = [row for row in rows if row[1:] != ("status", "OK")]
        differing = problems.get(index, ())
        if differing:
            rows = [row for row in rows if row[1] != "status"]
            rows += [("check", "error", f"Partition {problem}") for problem in differing]
        out.extend([shown, *row] for row in rows)
    return out


def _split_commas(tokens: Sequence[Token]) -> list[list[Token]]:
    items: list[list[Token]] = [[]]
    for token in tokens:
        if is_op_token(token, ","):
            items.append([])
        else:
            items[-1].append(token)
    return items


def _fan_out(
    text: str, tokens: Sequence[Token], layout: Layout, words: list[str]
) -> Decision | None:
    """ALTER TABLE t ..., TRUNCATE [TABLE] t, CREATE [UNIQUE ...] INDEX i ON t, DROP INDEX i
    ON t: the statement on every physical table of ``t``."""
    if words[0] in ("ALTER", "TRUNCATE"):
        at = next((i for i, t in enumerate(tokens) if token_keyword(t) == "TABLE"), None)
        if at is None:
            if words[0] == "ALTER":
                return None  # ALTER DATABASE / SEQUENCE / ...: the analysis decided
            at = 0
        at += 1
        verb = "ALTER TABLE" if words[0] == "ALTER" else "TRUNCATE TABLE"
    else:
        at_on = next((i for i, t in enumerate(tokens) if token_keyword(t) == "ON"), None)
        if at_on is None:
            return None
        at = at_on + 1
        verb = f"{words[0]} INDEX"
    if at >= len(tokens):
        raise sql_error(ErrorCode.PARSE, "You have an error in your SQL syntax")
    splices_for_db: list[tuple[int, int]] = []
    if at + 2 < len(tokens) and is_op_token(tokens[at + 1], "."):
        qualifier = tokens[at]
        if qualifier.value.lower() != layout.name.lower():
            return None
        splices_for_db.append((qualifier.pos, qualifier.pos + len(qualifier.raw)))
        at += 2
    name = tokens[at]
    table = layout.tables.get(name.value.lower())
    if table is None:
        return None
    auto_increment = None
    if verb == "ALTER TABLE":
        rule = table.rule
        keys = {k.column.lower() for k in (rule.db_key, rule.tb_key) if k is not None}
        for token in tokens[at + 1 :]:
            if is_name_token(token) and token.value.lower() in keys:
                raise not_supported(f"ALTER TABLE of the shard key column of table {table.name}")
            if token_keyword(token) == "RENAME":
                raise not_supported(f"ALTER TABLE ... RENAME of table {table.name}")
            if token_keyword(token) in ("PARTITION", "PARTITIONS") and table.rule.kind != "single":
                raise not_supported(f"ALTER TABLE ... PARTITION of table {table.name}")
        if rule.kind == "broadcast":
            check_broadcast_defaults(tokens[at + 1 :], table.name)
        if rule.kind != "single":
            auto_increment = _counter_option(tokens[at + 1 :])
    found = []
    for database, physical_name in table.physical_tables(layout.count):
        splices = [(name.pos, name.pos + len(name.raw), quote_name(physical_name))]
        splices += [
            (start, end, quote_name(layout.partitions[database].name))
            for start, end in splices_for_db
        ]
        found.append((database, _splice(text, splices)))
    return FanOut(
        verb,
        (table.name,),
        _ordered(found, layout),
        redefines=table.name if verb != "TRUNCATE TABLE" else None,
        auto_increment=auto_increment,
    )


def _counter_option(tokens: Sequence[Token]) -> int | None:
    """The table option ``AUTO_INCREMENT [=] n`` of an ALTER TABLE's alterations (at depth 0;
    a column's AUTO_INCREMENT attribute has no number after it); the last one given wins, as
    in MariaDB."""
    found = None
    depth = 0
    for index, token in enumerate(tokens):
        if is_op_token(token, "("):
            depth += 1
        elif is_op_token(token, ")"):
            depth -= 1
        elif depth == 0 and token_keyword(token) == "AUTO_INCREMENT":
            after = index + 1
            if after < len(tokens) and is_op_token(tokens[after], "="):
                after += 1
            if after < len(tokens) and tokens[after].kind == TokenKind.NUMBER:
                try:
                    found = int(tokens[after].value)
                except ValueError:
                    raise sql_error(
                        ErrorCode.PARSE, "You have an error in your SQL syntax"
                    ) from None
    return found
