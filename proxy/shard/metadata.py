"""What a sharded database's metadata looks like to its clients: the logical database and its
logical tables, as one MariaDB holding the logical database would show them.

Statements the session runs on physical database 0 (single tables live there, and every
logical table has a physical table there) would otherwise name that physical database and,
for a table split by TBPARTITION BY, its physical tables. ``logical_text`` rewrites the
client's text (at the lexer's token positions, nothing else changes) so that the shard itself
answers with logical names:

* ``DATABASE()`` / ``SCHEMA()`` become the logical database's name as a literal (a whole select
  item without an alias keeps the column name MariaDB shows: the call as written);
* each ``information_schema.T`` of the tables naming databases and tables (TABLES, COLUMNS,
  STATISTICS, KEY_COLUMN_USAGE, ...) becomes a derived table of the same columns in which the
  physical database's name reads as the logical one, a split table's first physical table as
  the logical table, and its other physical tables' rows are left out (one row per logical
  table). The client's WHERE, joins, aggregates and ORDER BY then work on logical names, and
  the shard still shows the account only what its mirror holds privileges on. (The privilege
  tables -- USER_, SCHEMA_, TABLE_ and COLUMN_PRIVILEGES -- are not among them: they are
  replaced before this by the account's own grants from the catalog, in logical names,
  ``proxy.plan.grants``.)

The statistics of a sharded table's row in TABLES (TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH,
DATA_FREE, AVG_ROW_LENGTH computed again) and STATISTICS (CARDINALITY) are sums over its
physical tables when the caller gathered them (:class:`Statistics`: the session reads every
partition's first, ``needs_statistics`` says when); a table whose AUTO_INCREMENT values come
from its GROUP sequence shows where that stands as its AUTO_INCREMENT (as SHOW TABLE STATUS and
SHOW CREATE TABLE do); the rest (times) and a broadcast table's (one copy) are physical
database 0's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from auth.model import LogicalTable, auto_sequence_name
from proxy.shard.route import Layout, is_name_token, is_op_token, token_keyword
from proxy.sql.charsets import COLLATIONS
from proxy.sql.lexer import LexedStatement, LexMode, ServerFlavor, Token, TokenKind, lex

__all__ = [
    "STATISTICS_QUERIES",
    "Statistics",
    "derived_column",
    "first_physical",
    "logical_text",
    "needs_statistics",
    "physical_qualifiers",
    "sequenced",
    "sequenced_tables",
    "sql_literal",
    "statistic_column",
    "text_column_length",
]


@dataclass(frozen=True, slots=True)
class Statistics:
    """Sums over the physical tables of a database's sharded tables, keyed by the name of the
    row physical database 0's information_schema keeps for it (its first physical table):
    ``tables``: (name, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE); ``indexes``: (name,
    INDEX_NAME, SEQ_IN_INDEX, CARDINALITY); ``counters``: (name, where the GROUP sequence of
    the table's AUTO_INCREMENT column stands)."""

    tables: tuple[tuple[str, int, int, int, int], ...] = ()
    indexes: tuple[tuple[str, str, int, int], ...] = ()
    counters: tuple[tuple[str, int], ...] = ()


# What each physical database answers for Statistics (its connection's default database).
STATISTICS_QUERIES: Final = (
    "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE"
    " FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, CARDINALITY"
    " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()",
)


def needs_statistics(text: str, layout: Layout) -> bool:
    """Whether ``text`` may read a statistic of information_schema.TABLES or STATISTICS (a
    summed column named, or ``*``) while the database has sharded tables (whose statistics
    are sums over the partitions), or TABLES' AUTO_INCREMENT while a table takes its values
    from a GROUP sequence."""
    lowered = text.lower()
    if "information_schema" not in lowered:
        return False
    statistic = ("tables" in lowered or "statistics" in lowered) and any(
        word in lowered for word in _STATISTIC_WORDS
    )
    if statistic and any(t.rule.kind == "sharded" for t in layout.tables.values()):
        return True
    return (
        "tables" in lowered
        and ("*" in lowered or "auto_increment" in lowered)
        and bool(sequenced_tables(layout))
    )


_STATISTIC_WORDS: Final = (
    "*", "table_rows", "avg_row_length", "data_length", "index_length", "data_free",
    "cardinality",
)  # fmt: skip


def sequenced(table: LogicalTable, layout: Layout) -> bool:
    """Whether ``table``'s AUTO_INCREMENT values come from its GROUP sequence (a sharded or
    broadcast table with an AUTO_INCREMENT column; a single table keeps MariaDB's counter):
    its physical tables' counters then mean nothing."""
    return (
        table.rule.kind != "single" and auto_sequence_name(table.name).lower() in layout.sequences
    )


def sequenced_tables(layout: Layout) -> tuple[LogicalTable, ...]:
    """The tables that are :func:`sequenced`."""
    return tuple(table for table in layout.tables.values() if sequenced(table, layout))


@dataclass(frozen=True, slots=True)
class _Spec:
    """An information_schema table: its columns (MariaDB 10.11, in order), those naming a
    database, and (table column, its database column) pairs; the first pair is the row's own
    table (rows of a split table's other physical tables are left out by it)."""

    columns: tuple[str, ...]
    schemas: tuple[str, ...]
    tables: tuple[tuple[str, str], ...] = ()
    # Columns holding SQL text whose names the shard qualified with physical database 0's
    # (a view's definition: `sales_0000`.`t`), which then qualify with the logical one's.
    texts: tuple[str, ...] = ()


def _cols(text: str) -> tuple[str, ...]:
    return tuple(text.split(","))


_SPECS: Final = {
    "TABLES": _Spec(
        _cols(
            "TABLE_CATALOG,TABLE_SCHEMA,TABLE_NAME,TABLE_TYPE,ENGINE,VERSION,ROW_FORMAT,"
            "TABLE_ROWS,AVG_ROW_LENGTH,DATA_LENGTH,MAX_DATA_LENGTH,INDEX_LENGTH,DATA_FREE,"
            "AUTO_INCREMENT,CREATE_TIME,UPDATE_TIME,CHECK_TIME,TABLE_COLLATION,CHECKSUM,"
            "CREATE_OPTIONS,TABLE_COMMENT,MAX_INDEX_LENGTH,TEMPORARY"
        ),
        ("TABLE_SCHEMA",),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
    ),
    "COLUMNS": _Spec(
        _cols(
            "TABLE_CATALOG,TABLE_SCHEMA,TABLE_NAME,COLUMN_NAME,ORDINAL_POSITION,COLUMN_DEFAULT,"
            "IS_NULLABLE,DATA_TYPE,CHARACTER_MAXIMUM_LENGTH,CHARACTER_OCTET_LENGTH,"
            "NUMERIC_PRECISION,NUMERIC_SCALE,DATETIME_PRECISION,CHARACTER_SET_NAME,"
            "COLLATION_NAME,COLUMN_TYPE,COLUMN_KEY,EXTRA,PRIVILEGES,COLUMN_COMMENT,"
            "IS_GENERATED,GENERATION_EXPRESSION"
        ),
        ("TABLE_SCHEMA",),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
    ),
    "STATISTICS": _Spec(
        _cols(
            "TABLE_CATALOG,TABLE_SCHEMA,TABLE_NAME,NON_UNIQUE,INDEX_SCHEMA,INDEX_NAME,"
            "SEQ_IN_INDEX,COLUMN_NAME,COLLATION,CARDINALITY,SUB_PART,PACKED,NULLABLE,"
            "INDEX_TYPE,COMMENT,INDEX_COMMENT,IGNORED"
        ),
        ("TABLE_SCHEMA", "INDEX_SCHEMA"),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
    ),
    "KEY_COLUMN_USAGE": _Spec(
        _cols(
            "CONSTRAINT_CATALOG,CONSTRAINT_SCHEMA,CONSTRAINT_NAME,TABLE_CATALOG,TABLE_SCHEMA,"
            "TABLE_NAME,COLUMN_NAME,ORDINAL_POSITION,POSITION_IN_UNIQUE_CONSTRAINT,"
            "REFERENCED_TABLE_SCHEMA,REFERENCED_TABLE_NAME,REFERENCED_COLUMN_NAME"
        ),
        ("CONSTRAINT_SCHEMA", "TABLE_SCHEMA", "REFERENCED_TABLE_SCHEMA"),
        (
            ("TABLE_NAME", "TABLE_SCHEMA"),
            ("REFERENCED_TABLE_NAME", "REFERENCED_TABLE_SCHEMA"),
        ),
    ),
    "TABLE_CONSTRAINTS": _Spec(
        _cols(
            "CONSTRAINT_CATALOG,CONSTRAINT_SCHEMA,CONSTRAINT_NAME,TABLE_SCHEMA,TABLE_NAME,"
            "CONSTRAINT_TYPE"
        ),
        ("CONSTRAINT_SCHEMA", "TABLE_SCHEMA"),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
    ),
    "REFERENTIAL_CONSTRAINTS": _Spec(
        _cols(
            "CONSTRAINT_CATALOG,CONSTRAINT_SCHEMA,CONSTRAINT_NAME,UNIQUE_CONSTRAINT_CATALOG,"
            "UNIQUE_CONSTRAINT_SCHEMA,UNIQUE_CONSTRAINT_NAME,MATCH_OPTION,UPDATE_RULE,"
            "DELETE_RULE,TABLE_NAME,REFERENCED_TABLE_NAME"
        ),
        ("CONSTRAINT_SCHEMA", "UNIQUE_CONSTRAINT_SCHEMA"),
        (
            ("TABLE_NAME", "CONSTRAINT_SCHEMA"),
            ("REFERENCED_TABLE_NAME", "UNIQUE_CONSTRAINT_SCHEMA"),
        ),
    ),
    "CHECK_CONSTRAINTS": _Spec(
        _cols("CONSTRAINT_CATALOG,CONSTRAINT_SCHEMA,TABLE_NAME,CONSTRAINT_NAME,LEVEL,CHECK_CLAUSE"),
        ("CONSTRAINT_SCHEMA",),
        (("TABLE_NAME", "CONSTRAINT_SCHEMA"),),
    ),
    "PARTITIONS": _Spec(
        _cols(
            "TABLE_CATALOG,TABLE_SCHEMA,TABLE_NAME,PARTITION_NAME,SUBPARTITION_NAME,"
            "PARTITION_ORDINAL_POSITION,SUBPARTITION_ORDINAL_POSITION,PARTITION_METHOD,"
            "SUBPARTITION_METHOD,PARTITION_EXPRESSION,SUBPARTITION_EXPRESSION,"
            "PARTITION_DESCRIPTION,TABLE_ROWS,AVG_ROW_LENGTH,DATA_LENGTH,MAX_DATA_LENGTH,"
            "INDEX_LENGTH,DATA_FREE,CREATE_TIME,UPDATE_TIME,CHECK_TIME,CHECKSUM,"
            "PARTITION_COMMENT,NODEGROUP,TABLESPACE_NAME"
        ),
        ("TABLE_SCHEMA",),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
    ),
    "TRIGGERS": _Spec(
        _cols(
            "TRIGGER_CATALOG,TRIGGER_SCHEMA,TRIGGER_NAME,EVENT_MANIPULATION,EVENT_OBJECT_CATALOG,"
            "EVENT_OBJECT_SCHEMA,EVENT_OBJECT_TABLE,ACTION_ORDER,ACTION_CONDITION,"
            "ACTION_STATEMENT,ACTION_ORIENTATION,ACTION_TIMING,ACTION_REFERENCE_OLD_TABLE,"
            "ACTION_REFERENCE_NEW_TABLE,ACTION_REFERENCE_OLD_ROW,ACTION_REFERENCE_NEW_ROW,"
            "CREATED,SQL_MODE,DEFINER,CHARACTER_SET_CLIENT,COLLATION_CONNECTION,"
            "DATABASE_COLLATION"
        ),
        ("TRIGGER_SCHEMA", "EVENT_OBJECT_SCHEMA"),
        (("EVENT_OBJECT_TABLE", "EVENT_OBJECT_SCHEMA"),),
    ),
    "VIEWS": _Spec(
        _cols(
            "TABLE_CATALOG,TABLE_SCHEMA,TABLE_NAME,VIEW_DEFINITION,CHECK_OPTION,IS_UPDATABLE,"
            "DEFINER,SECURITY_TYPE,CHARACTER_SET_CLIENT,COLLATION_CONNECTION,ALGORITHM"
        ),
        ("TABLE_SCHEMA",),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
        ("VIEW_DEFINITION",),
    ),
    "SCHEMATA": _Spec(
        _cols(
            "CATALOG_NAME,SCHEMA_NAME,DEFAULT_CHARACTER_SET_NAME,DEFAULT_COLLATION_NAME,"
            "SQL_PATH,SCHEMA_COMMENT"
        ),
        ("SCHEMA_NAME",),
    ),
    "ROUTINES": _Spec(
        _cols(
            "SPECIFIC_NAME,ROUTINE_CATALOG,ROUTINE_SCHEMA,ROUTINE_NAME,ROUTINE_TYPE,DATA_TYPE,"
            "CHARACTER_MAXIMUM_LENGTH,CHARACTER_OCTET_LENGTH,NUMERIC_PRECISION,NUMERIC_SCALE,"
            "DATETIME_PRECISION,CHARACTER_SET_NAME,COLLATION_NAME,DTD_IDENTIFIER,ROUTINE_BODY,"
            "ROUTINE_DEFINITION,EXTERNAL_NAME,EXTERNAL_LANGUAGE,PARAMETER_STYLE,"
            "IS_DETERMINISTIC,SQL_DATA_ACCESS,SQL_PATH,SECURITY_TYPE,CREATED,LAST_ALTERED,"
            "SQL_MODE,ROUTINE_COMMENT,DEFINER,CHARACTER_SET_CLIENT,COLLATION_CONNECTION,"
            "DATABASE_COLLATION"
        ),
        ("ROUTINE_SCHEMA",),
    ),
    "PARAMETERS": _Spec(
        _cols(
            "SPECIFIC_CATALOG,SPECIFIC_SCHEMA,SPECIFIC_NAME,ORDINAL_POSITION,PARAMETER_MODE,"
            "PARAMETER_NAME,DATA_TYPE,CHARACTER_MAXIMUM_LENGTH,CHARACTER_OCTET_LENGTH,"
            "NUMERIC_PRECISION,NUMERIC_SCALE,DATETIME_PRECISION,CHARACTER_SET_NAME,"
            "COLLATION_NAME,DTD_IDENTIFIER,ROUTINE_TYPE"
        ),
        ("SPECIFIC_SCHEMA",),
    ),
    "EVENTS": _Spec(
        _cols(
            "EVENT_CATALOG,EVENT_SCHEMA,EVENT_NAME,DEFINER,TIME_ZONE,EVENT_BODY,"
            "EVENT_DEFINITION,EVENT_TYPE,EXECUTE_AT,INTERVAL_VALUE,INTERVAL_FIELD,SQL_MODE,"
            "STARTS,ENDS,STATUS,ON_COMPLETION,CREATED,LAST_ALTERED,LAST_EXECUTED,"
            "EVENT_COMMENT,ORIGINATOR,CHARACTER_SET_CLIENT,COLLATION_CONNECTION,"
            "DATABASE_COLLATION"
        ),
        ("EVENT_SCHEMA",),
    ),
    "TABLE_STATISTICS": _Spec(
        _cols("TABLE_SCHEMA,TABLE_NAME,ROWS_READ,ROWS_CHANGED,ROWS_CHANGED_X_INDEXES"),
        ("TABLE_SCHEMA",),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
    ),
    "INDEX_STATISTICS": _Spec(
        _cols("TABLE_SCHEMA,TABLE_NAME,INDEX_NAME,ROWS_READ"),
        ("TABLE_SCHEMA",),
        (("TABLE_NAME", "TABLE_SCHEMA"),),
    ),
}

# Words after a table reference that are not its alias.
_NOT_ALIAS: Final = frozenset(
    {
        "WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "STRAIGHT_JOIN", "ON", "USING",
        "GROUP", "ORDER", "LIMIT", "HAVING", "UNION", "EXCEPT", "INTERSECT", "FOR", "LOCK",
        "SET", "NATURAL", "PARTITION", "USE", "IGNORE", "FORCE", "WINDOW", "INTO", "VALUES",
        "VALUE", "SELECT", "RETURNING", "FULL", "OUTER", "PROCEDURE", "WITH", "OFFSET",
    }
)  # fmt: skip
_SELECT_MODIFIERS: Final = frozenset(
    {
        "SELECT", "ALL", "DISTINCT", "DISTINCTROW", "HIGH_PRIORITY", "STRAIGHT_JOIN",
        "SQL_SMALL_RESULT", "SQL_BIG_RESULT", "SQL_BUFFER_RESULT", "SQL_CACHE", "SQL_NO_CACHE",
        "SQL_CALC_FOUND_ROWS",
    }
)  # fmt: skip
_SELECT_LIST_ENDS: Final = frozenset(
    {
        "FROM", "INTO", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION", "EXCEPT",
        "INTERSECT", "WINDOW", "FOR", "LOCK", "PROCEDURE",
    }
)  # fmt: skip


def sql_literal(value: str) -> str:
    """A string literal of ``value`` (names are printable; a backslash is doubled, which
    reads the same with and without NO_BACKSLASH_ESCAPES only when there is none)."""
    return "'" + value.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def first_physical(layout: Layout) -> tuple[dict[str, str], tuple[str, ...]]:
    """Physical database 0's physical tables of the tables split by TBPARTITION BY: (the
    first one's name -> the logical table's, the names of the others)."""
    first: dict[str, str] = {}
    rest: list[str] = []
    for table in layout.tables.values():
        if not table.rule.split_tables:
            continue
        names = table.physical_names_in(0, layout.count)
        if names:
            first[names[0]] = table.name
            rest += names[1:]
    return first, tuple(rest)


def logical_text(
    text: str,
    layout: Layout,
    mode: LexMode,
    flavor: ServerFlavor | None,
    statistics: Statistics | None = None,
) -> str | None:
    """``text`` with DATABASE() answered and information_schema's tables made logical (see the
    module docstring); None when it has neither, or when it names physical database 0 as a
    string (this function's own output: a prepared statement's text is kept made logical)."""
    lowered = text.lower()
    if "database" not in lowered and "schema" not in lowered:
        return None  # (information_schema has 'schema' in it too)
    if sql_literal(layout.partitions[0].name) in text:
        return None  # made logical already (its derived tables name physical database 0)
    statements = lex(text, mode, flavor)
    if len(statements) != 1:
        return None
    tokens = statements[0].tokens
    splices: list[tuple[int, int, str]] = []
    physical = layout.partitions[0].name
    in_list = [False]  # per parenthesis depth: inside a select list
    index = 0
    count = len(tokens)
    while index < count:
        token = tokens[index]
        word = token_keyword(token)
        if (
            _database_call(token, word)
            and not (index and is_op_token(tokens[index - 1], "."))  # db.database(): stored
            and index + 2 < count
            and is_op_token(tokens[index + 1], "(")
            and is_op_token(tokens[index + 2], ")")
        ):
            end = tokens[index + 2].pos + 1
            value = sql_literal(layout.name)
            before = token_keyword(tokens[index - 1]) if index else ""
            after_token = tokens[index + 3] if index + 3 < count else None
            after = "" if after_token is None else token_keyword(after_token)
            aliased = after_token is not None and (
                after == "AS" or (is_name_token(after_token) and after not in _NOT_ALIAS)
            )
            item = (
                in_list[-1]
                and (
                    before in _SELECT_MODIFIERS
                    or (index > 0 and is_op_token(tokens[index - 1], ","))
                )
                and (
                    aliased
                    or after_token is None
                    or is_op_token(after_token, ",")
                    or is_op_token(after_token, ")")
                    or is_op_token(after_token, ";")
                    or after in _SELECT_LIST_ENDS
                )
            )
            if item:
                # A whole select item: the column DATABASE() gives (VARCHAR(64) utf8mb3,
                # nullable), under the name MariaDB shows (the call as written).
                value = f"NULLIF(CONVERT(CAST({value} AS CHAR(64)) USING utf8mb3), NULL)"
                if not aliased:
                    value += " AS " + _quote(text[token.pos : end])
            splices.append((token.pos, end, value))
            index += 3
            continue
        if (
            is_name_token(token)
            and token.value.lower() == "information_schema"
            and index + 2 < count
            and is_op_token(tokens[index + 1], ".")
            and is_name_token(tokens[index + 2])
            and tokens[index + 2].value.upper() in _SPECS
        ):
            name = tokens[index + 2]
            after_name = tokens[index + 3] if index + 3 < count else None
            end = name.pos + len(name.raw)
            if is_op_token(after_name, "."):
                # information_schema.T.column: the derived table is named T
                splices.append((token.pos, name.pos, ""))
            else:
                derived = _derived(
                    name.value.upper(), layout.name, physical, _split_names(layout), statistics
                )
                aliased = after_name is not None and (
                    token_keyword(after_name) == "AS"
                    or (is_name_token(after_name) and token_keyword(after_name) not in _NOT_ALIAS)
                )
                if not aliased:
                    derived += " AS " + _quote(name.value)
                splices.append((token.pos, end, derived))
            index += 3
            continue
        if is_op_token(token, "("):
            in_list.append(False)
        elif is_op_token(token, ")"):
            if len(in_list) > 1:
                in_list.pop()
        elif word == "SELECT":
            in_list[-1] = True
        elif word in _SELECT_LIST_ENDS:
            in_list[-1] = False
        index += 1
    if not splices:
        return None
    return _splice(text, splices)


_QUOTED_DATABASE_CALLS: Final = frozenset({"DATABASE", "SCHEMA", "SCHEMAS"})


def _database_call(token: Token, word: str) -> bool:
    """Whether ``token`` names MariaDB's DATABASE() (when ``(`` and ``)`` follow): DATABASE or
    SCHEMA, or -- a native function, a built-in backquoted too -- `DATABASE`, `SCHEMA` or
    `SCHEMAS` (the shard answered those with its physical database's name)."""
    if word:
        return word in ("DATABASE", "SCHEMA")
    return token.kind is TokenKind.IDENT and token.value.upper() in (
        "DATABASE",
        "SCHEMA",
        "SCHEMAS",
    )


# Words a table name follows (a two-part name after them is database.table).
_TABLE_AFTER: Final = frozenset(
    {
        "FROM", "JOIN", "STRAIGHT_JOIN", "INTO", "UPDATE", "TABLE", "TABLES", "DESCRIBE",
        "DESC", "EXPLAIN", "REPLACE", "IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY",
        "QUICK",
    }
)  # fmt: skip


def physical_qualifiers(text: str, lexed: LexedStatement, layout: Layout) -> str | None:
    """``text`` (a statement that runs on physical database 0 as written) with each qualifier
    naming the logical database (``sales.settings``, ``sales.settings.name``) naming physical
    database 0 instead; None when it has none. A two-part name is read as database.table
    only where a table name goes, or anywhere when no table has the database's name (else
    ``t.col`` of a table named like the database would be taken for one)."""
    tokens = lexed.tokens
    key = layout.name.lower()
    if key not in text.lower():
        return None
    table_named_so = key in layout.tables
    physical = _quote(layout.partitions[0].name)
    splices: list[tuple[int, int, str]] = []
    count = len(tokens)
    for index, token in enumerate(tokens):
        if not (
            is_name_token(token)
            and token.value.lower() == key
            and index + 2 < count
            and is_op_token(tokens[index + 1], ".")
            and is_name_token(tokens[index + 2])
        ):
            continue
        if index > 0 and is_op_token(tokens[index - 1], "."):
            continue  # (x.sales.y: a column named like the database)
        three = index + 4 < count and is_op_token(tokens[index + 3], ".")
        after_table_word = index > 0 and token_keyword(tokens[index - 1]) in _TABLE_AFTER
        if three or after_table_word or not table_named_so:
            splices.append((token.pos, token.pos + len(token.raw), physical))
    if not splices:
        return None
    return _splice(text, splices)


def _summed(table: str, statistics: Statistics, p0: str) -> dict[str, str]:
    """The columns of information_schema.``table`` whose values for the sharded tables'
    rows in physical database 0 (``p0``) are the sums: column -> its expression."""
    schema, name = "`TABLE_SCHEMA`", "`TABLE_NAME`"
    out: dict[str, str] = {}
    if table == "TABLES" and statistics.tables:
        for at, column in enumerate(("TABLE_ROWS", "DATA_LENGTH", "INDEX_LENGTH", "DATA_FREE")):
            cases = " ".join(
                f"WHEN {sql_literal(row[0])} THEN {row[at + 1]}" for row in statistics.tables
            )
            out[column] = (
                f"CAST(IF({schema} = {p0}, CASE {name} {cases} ELSE `{column}` END, `{column}`)"
                " AS UNSIGNED)"
            )
        cases = " ".join(
            f"WHEN {sql_literal(row[0])} THEN {row[2] // row[1] if row[1] else 0}"
            for row in statistics.tables
        )
        out["AVG_ROW_LENGTH"] = (
            f"CAST(IF({schema} = {p0}, CASE {name} {cases} ELSE `AVG_ROW_LENGTH` END,"
            " `AVG_ROW_LENGTH`) AS UNSIGNED)"
        )
    if table == "TABLES" and statistics.counters:
        cases = " ".join(
            f"WHEN {sql_literal(name_)} THEN {position}" for name_, position in statistics.counters
        )
        out["AUTO_INCREMENT"] = (
            f"CAST(IF({schema} = {p0}, CASE {name} {cases} ELSE `AUTO_INCREMENT` END,"
            " `AUTO_INCREMENT`) AS UNSIGNED)"
        )
    if table == "STATISTICS" and statistics.indexes:
        cases = " ".join(
            f"WHEN {name} = {sql_literal(t)} AND `INDEX_NAME` = {sql_literal(i)}"
            f" AND `SEQ_IN_INDEX` = {seq} THEN {n}"
            for t, i, seq, n in statistics.indexes
        )
        out["CARDINALITY"] = (
            f"IF({schema} = {p0} AND `CARDINALITY` IS NOT NULL, CAST(CASE {cases}"
            " ELSE `CARDINALITY` END AS SIGNED), `CARDINALITY`)"
        )
    return out


def statistic_column(table: bytes, column: bytes) -> bool:
    """Whether ``column`` of information_schema ``table`` is a statistic the derived table
    sums (a BIGINT(21) there, without BINARY: the CAST's definition says 20 and BINARY)."""
    names = _STATISTIC_COLUMNS.get(table.decode("ascii", "replace").upper(), ())
    return column.decode("ascii", "replace").upper() in names


def derived_column(table: bytes, column: bytes) -> bool:
    """Whether ``column`` of information_schema ``table`` is one the derived table computes
    (its definition then says no schema, NOT NULL without NO_DEFAULT_VALUE and 39 decimals,
    where the table's own says information_schema, both flags and 0)."""
    spec = _SPECS.get(table.decode("ascii", "replace").upper())
    if spec is None:
        return False
    name = column.decode("ascii", "replace").upper()
    if name in _STATISTIC_COLUMNS.get(table.decode("ascii", "replace").upper(), ()):
        return True
    return name in spec.schemas or name in spec.texts or any(name == t for t, _ in spec.tables)


def text_column_length(table: bytes, column: bytes, collation: int) -> int | None:
    """For ``column`` of information_schema ``table`` holding SQL text the derived table
    rewrites (a view's definition, a REPLACE: LONGTEXT, nullable), the length MariaDB's own
    column has in an answer in ``collation`` (its TEXT of 196605 characters: NOT NULL, BLOB);
    None for other columns, or a character set the proxy does not know."""
    spec = _SPECS.get(table.decode("ascii", "replace").upper())
    if spec is None or column.decode("ascii", "replace").upper() not in spec.texts:
        return None
    widest = _MAX_CHARACTER_BYTES.get(COLLATIONS.get(collation, ""), 1)
    return 196605 * widest


# The longest character of the character sets answers may come in (others: one byte).
_MAX_CHARACTER_BYTES: Final = {
    "utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "ujis": 3, "eucjpms": 3, "euckr": 2, "ucs2": 2,
    "utf16": 4, "utf16le": 4, "utf32": 4,
}  # fmt: skip


_STATISTIC_COLUMNS: Final = {
    "TABLES": (
        "TABLE_ROWS",
        "AVG_ROW_LENGTH",
        "DATA_LENGTH",
        "INDEX_LENGTH",
        "DATA_FREE",
        "AUTO_INCREMENT",
    ),
    "STATISTICS": ("CARDINALITY",),
}


def _split_names(layout: Layout) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    first, rest = first_physical(layout)
    return tuple(sorted(first.items())), rest


def _splice(text: str, splices: Sequence[tuple[int, int, str]]) -> str:
    out = []
    at = 0
    for start, end, value in sorted(splices):
        out.append(text[at:start])
        if start > 0 and not text[start - 1].isspace() and value and text[start - 1] not in "(,":
            out.append(" ")
        out.append(value)
        at = end
    out.append(text[at:])
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _derived(
    table: str,
    logical: str,
    physical: str,
    split: tuple[tuple[tuple[str, str], ...], tuple[str, ...]],
    statistics: Statistics | None = None,
) -> str:
    """The derived table standing for information_schema.``table``."""
    spec = _SPECS[table]
    first, rest = split
    p0, db = sql_literal(physical), sql_literal(logical)
    table_columns = dict(spec.tables)
    summed = _summed(table, statistics, p0) if statistics is not None else {}
    items = []
    for name in spec.columns:
        column = _quote(name)
        if name in summed:
            items.append(f"{summed[name]} AS {column}")
        elif name in spec.schemas:
            items.append(f"IF({column} = {p0}, {db}, {column}) AS {column}")
        elif name in spec.texts:
            schema = _quote(spec.schemas[0])
            named, logical_named = (sql_literal(_quote(n) + ".") for n in (physical, logical))
            # (its column definition is the column's own again: text_column_length)
            replaced = f"REPLACE({column}, {named}, {logical_named})"
            items.append(f"IF({schema} = {p0}, {replaced}, {column}) AS {column}")
        elif name in table_columns and first:
            cases = " ".join(
                f"WHEN {sql_literal(name)} THEN {sql_literal(logical_name)}"
                for name, logical_name in first
            )
            schema = _quote(table_columns[name])
            items.append(
                f"IF({schema} = {p0}, CASE {column} {cases} ELSE {column} END, {column})"
                f" AS {column}"
            )
        else:
            items.append(column)
    out = f"(SELECT {', '.join(items)} FROM information_schema.{table}"
    if spec.tables and rest:
        name_column, schema = (_quote(n) for n in spec.tables[0])
        names = ", ".join(sql_literal(n) for n in rest)
        out += f" WHERE NOT ({schema} <=> {p0} AND {name_column} IN ({names}))"
    return out + ")"
