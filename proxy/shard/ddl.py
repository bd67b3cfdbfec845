"""DRDS's DDL for sharded databases, read over the lexer's tokens (``proxy.sql.lexer``).

``parse_create_table(sql, statement)`` reads a CREATE TABLE of a sharded database::

    CREATE [OR REPLACE] [TEMPORARY] TABLE [IF NOT EXISTS] [db.]t
        {(create_definition, ...) [table_options] | LIKE s | (LIKE s) | ... [AS] SELECT ...}
        [DBPARTITION BY {HASH | UNI_HASH}(col)
            [TBPARTITION BY {HASH | UNI_HASH}(col) [TBPARTITIONS T]]
         | BROADCAST]

and returns a :class:`CreateTable`: the table's rule (single when there is no clause), the
physical CREATE TABLE (the client's text with the DRDS clause cut out, byte for byte the same
otherwise, so MariaDB sees what the client wrote), the definition SHOW CREATE TABLE shows, and
what the data path needs besides (the name's position for rewriting it into a physical name,
the AUTO_INCREMENT column whose values become a GROUP sequence's, a LIKE source).

Refused, as DRDS refuses them (``auth.errors.SqlError``):

* 1235 naming the function: DBPARTITION / TBPARTITION BY RIGHT_SHIFT, RANGE_HASH, STR_HASH, MM,
  DD, WEEK, MMDD, YYYYMM, YYYYWEEK, YYYYDD (and their ``_OPT`` forms) -- v1 places rows with
  HASH and UNI_HASH only; a shard key column that is not an integer or character string type
  (or is generated); TBPARTITION BY without DBPARTITION BY; LOCALITY; GLOBAL INDEX; foreign
  keys (``FOREIGN KEY``, a column's ``REFERENCES``) on a sharded or broadcast table; a sharded
  or broadcast table made by ``LIKE`` or ``AS SELECT``, or TEMPORARY, or OR REPLACE; a
  ``LIKE`` of a sharded table (``refuse_sharded_source``: the caller checks an ``AS SELECT``'s
  sources the same way).
* 1054: the shard key column is not in the definition.
* 1064: anything else that is not this grammar (the DRDS clause must end the statement).

Lexical rules are the lexer's (the session's ``sql_mode`` and server flavor were applied when
the statement was lexed); keywords in any letter case; column names compare
case-insensitively. ``parse_sequence_statement`` reads DRDS's sequence DDL (GROUP sequences):
``CREATE [GROUP] SEQUENCE s [START WITH n]``, ``ALTER SEQUENCE s START WITH n``, ``DROP
SEQUENCE s``; ``nextval_references`` finds ``s.NEXTVAL`` in a statement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NoReturn

from auth.errors import ErrorCode, not_supported, parse_error, sql_error
from auth.model import (
    DEFAULT_SEQUENCE_START,
    INTEGER_BITS,
    MAX_NAME_LENGTH,
    SEQUENCE_MAX,
    HashFunction,
    KeyType,
    LogicalTable,
    ShardKey,
    TableRule,
)
from proxy.sql.lexer import LexedStatement, Token, TokenKind

__all__ = [
    "AlterSequence",
    "ColumnDefinition",
    "CreateSequence",
    "CreateTable",
    "DropSequence",
    "NextvalReference",
    "SequenceStatement",
    "check_physical_names",
    "nextval_references",
    "parse_create_table",
    "parse_sequence_statement",
    "refuse_sharded_source",
]

# The most tables per physical database shardgate creates for one logical table.
MAX_TABLES_PER_DB: Final = 256

_HASH_FUNCTIONS: Final[dict[str, HashFunction]] = {"HASH": "HASH", "UNI_HASH": "UNI_HASH"}
# DRDS's other sharding functions: recognised and refused with 1235 naming them.
_OTHER_FUNCTIONS: Final = frozenset(
    [
        "RIGHT_SHIFT",
        "RANGE_HASH",
        "STR_HASH",
        "MM",
        "DD",
        "WEEK",
        "MMDD",
        "YYYYMM",
        "YYYYWEEK",
        "YYYYDD",
        "YYYYMM_OPT",
        "YYYYWEEK_OPT",
        "YYYYDD_OPT",
    ]
)
# Column type words and their canonical shard key type (None: a type no shard key may have).
_INTEGER_WORDS: Final[dict[str, str]] = {
    **{name.upper(): name for name in INTEGER_BITS},
    "INTEGER": "int",
    "INT1": "tinyint",
    "INT2": "smallint",
    "INT3": "mediumint",
    "INT4": "int",
    "INT8": "bigint",
    "MIDDLEINT": "mediumint",
    "BOOL": "tinyint",
    "BOOLEAN": "tinyint",
    "SERIAL": "bigint",
}
_CHAR_WORDS: Final = frozenset({"CHAR", "CHARACTER", "NCHAR"})
_VARCHAR_WORDS: Final = frozenset({"VARCHAR", "NVARCHAR", "VARCHARACTER"})
# Words that start a create_definition that is not a column.
_NOT_COLUMNS: Final = frozenset(
    {"PRIMARY", "KEY", "INDEX", "UNIQUE", "CONSTRAINT", "FOREIGN", "FULLTEXT", "SPATIAL", "CHECK"}
)


# --------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ColumnDefinition:
    """A column of the definition, as far as sharding cares."""

    name: str
    type_word: str  # the type as written, upper-case (``VARCHAR``, ``INT``)
    key_type: KeyType | None  # None: not an integer or character string type
    generated: bool
    auto_increment: bool
    # A CHAR / VARCHAR column's length in characters (CHAR alone: 1); None otherwise.
    length: int | None = None


@dataclass(frozen=True, slots=True)
class CreateTable:
    """A CREATE TABLE of a sharded database, read (see the module docstring)."""

    schema: str | None  # ``db`` of ``db.t``
    table: str
    name_start: int  # offsets of the table name's token in ``sql``
    name_end: int
    rule: TableRule
    # ``sql`` with the DRDS clause (and the blanks before it) cut out; everything before the
    # clause, the table name's offsets included, is where it was.
    physical_sql: str
    # The statement as the client wrote it (comments removed, executable comments read as the
    # shard reads them: the lexer's text), for SHOW CREATE TABLE.
    definition: str
    columns: tuple[ColumnDefinition, ...]
    like: tuple[str | None, str] | None  # (db, table) of CREATE TABLE ... LIKE
    has_query: bool  # CREATE TABLE ... [AS] SELECT
    if_not_exists: bool
    temporary: bool
    auto_increment_column: str | None
    auto_increment_start: int | None  # the table option AUTO_INCREMENT = n

    def logical_table(self) -> LogicalTable:
        return LogicalTable(self.table, self.rule, self.definition)


@dataclass(frozen=True, slots=True)
class CreateSequence:
    name: str
    start_with: int


@dataclass(frozen=True, slots=True)
class AlterSequence:
    name: str
    start_with: int


@dataclass(frozen=True, slots=True)
class DropSequence:
    name: str


SequenceStatement = CreateSequence | AlterSequence | DropSequence


@dataclass(frozen=True, slots=True)
class NextvalReference:
    """``s.NEXTVAL`` at ``start`` .. ``end`` of the text (the sequence's name to the end of
    ``NEXTVAL``)."""

    sequence: str
    start: int
    end: int


# --------------------------------------------------------------------------------------- cursor


def _kw(token: Token) -> str:
    """An unquoted word's upper-case spelling ('' for anything else)."""
    return token.value.upper() if token.kind is TokenKind.WORD else ""


def _is_name(token: Token) -> bool:
    return token.kind in (TokenKind.WORD, TokenKind.IDENT)


class _Cursor:
    def __init__(self, sql: str, tokens: tuple[Token, ...]) -> None:
        self.sql = sql
        self.tokens = tokens
        self.i = 0

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.i + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def fail(self, token: Token | None = None) -> NoReturn:
        where = token or self.peek()
        pos = len(self.sql) if where is None else where.pos
        raise parse_error(self.sql[pos:], self.sql.count("\n", 0, pos) + 1)

    def is_kw(self, *words: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and _kw(token) in words

    def accept_kw(self, *words: str) -> bool:
        if self.is_kw(*words):
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> Token:
        token = self.peek()
        if token is None or _kw(token) != word:
            self.fail()
        self.i += 1
        return token

    def is_op(self, op: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and token.kind is TokenKind.OP and token.value == op

    def expect_op(self, op: str) -> Token:
        token = self.peek()
        if token is None or token.kind is not TokenKind.OP or token.value != op:
            self.fail()
        self.i += 1
        return token

    def name(self) -> Token:
        token = self.peek()
        if token is None or not _is_name(token):
            self.fail()
        self.i += 1
        return token

    def qualified(self) -> tuple[str | None, Token]:
        first = self.name()
        if self.is_op("."):
            self.i += 1
            return first.value, self.name()
        return None, first

    def number(self, low: int, high: int, what: str) -> int:
        token = self.peek()
        if token is None or token.kind is not TokenKind.NUMBER or not token.value.isdigit():
            self.fail()
        value = int(token.value)
        if not low <= value <= high:
            raise not_supported(f"{what} {value} (from {low} to {high})")
        self.i += 1
        return value

    def skip_group(self) -> int:
        """At a '(': past its matching ')'; returns the index of that ')'."""
        depth = 0
        while not self.at_end():
            token = self.tokens[self.i]
            self.i += 1
            if token.kind is TokenKind.OP:
                if token.value == "(":
                    depth += 1
                elif token.value == ")":
                    depth -= 1
                    if depth == 0:
                        return self.i - 1
        self.fail()


def _end(token: Token) -> int:
    return token.pos + len(token.raw)


# ---------------------------------------------------------------------------- CREATE TABLE


def parse_create_table(sql: str, statement: LexedStatement) -> CreateTable:
    """Read ``statement`` (lexed from ``sql``), a CREATE TABLE; see the module docstring."""
    tokens = statement.tokens
    cur = _Cursor(sql, tokens)
    cur.expect_kw("CREATE")
    or_replace = False
    if cur.accept_kw("OR"):
        cur.expect_kw("REPLACE")
        or_replace = True
    temporary = cur.accept_kw("TEMPORARY")
    if cur.is_kw("SHADOW"):
        raise not_supported("CREATE SHADOW TABLE")
    cur.expect_kw("TABLE")
    if_not_exists = False
    if cur.accept_kw("IF"):
        cur.expect_kw("NOT")
        cur.expect_kw("EXISTS")
        if_not_exists = True
    schema, name = cur.qualified()

    like: tuple[str | None, str] | None = None
    columns: tuple[ColumnDefinition, ...] = ()
    foreign_key: Token | None = None
    if cur.accept_kw("LIKE"):
        like_db, like_name = cur.qualified()
        like = (like_db, like_name.value)
    elif cur.is_op("(") and cur.is_kw("LIKE", ahead=1):
        cur.i += 2
        like_db, like_name = cur.qualified()
        like = (like_db, like_name.value)
        cur.expect_op(")")
    elif cur.is_op("(") and not cur.is_kw("SELECT", "WITH", "VALUES", "TABLE", ahead=1):
        open_at = cur.i
        close_at = cur.skip_group()
        columns, foreign_key = _definitions(cur, tokens[open_at + 1 : close_at])

    # Table options, a query, the DRDS clause: scanned at depth 0 up to the clause.
    has_query = False
    auto_increment_start: int | None = None
    clause_at: int | None = None
    while not cur.at_end():
        token = cur.peek()
        assert token is not None
        word = _kw(token)
        if word in ("DBPARTITION", "TBPARTITION") and cur.is_kw("BY", ahead=1):
            clause_at = cur.i
            break
        if word == "BROADCAST" and cur.i == len(tokens) - 1 and not cur.is_op("=", ahead=-1):
            clause_at = cur.i
            break
        if word in ("SELECT", "WITH") or (cur.is_op("(") and cur.is_kw("SELECT", "WITH", ahead=1)):
            has_query = True
            break
        if word == "AUTO_INCREMENT" and auto_increment_start is None:
            cur.i += 1
            if cur.is_op("="):
                cur.i += 1
            auto_increment_start = cur.number(0, (1 << 64) - 1, "AUTO_INCREMENT")
            continue
        if cur.is_op("("):
            cur.skip_group()
            continue
        cur.i += 1

    rule = TableRule("single")
    physical_sql = sql
    if clause_at is not None:
        broadcast = _kw(tokens[clause_at]) == "BROADCAST"
        what = "a broadcast table" if broadcast else "a sharded table"
        if like is not None or not columns:
            raise not_supported(f"CREATE TABLE ... LIKE or ... SELECT of {what}")
        rule, physical_sql = _clause(cur, columns, clause_at)
        if temporary:
            raise not_supported(f"CREATE TEMPORARY TABLE of {what}")
        if or_replace:
            raise not_supported(f"CREATE OR REPLACE TABLE of {what}")
        if foreign_key is not None:
            raise not_supported(f"FOREIGN KEY on {what}")

    auto_column = next((c.name for c in columns if c.auto_increment), None)
    return CreateTable(
        schema=schema,
        table=name.value,
        name_start=name.pos,
        name_end=_end(name),
        rule=rule,
        physical_sql=physical_sql,
        definition=statement.text,
        columns=columns,
        like=like,
        has_query=has_query,
        if_not_exists=if_not_exists,
        temporary=temporary,
        auto_increment_column=auto_column,
        auto_increment_start=auto_increment_start,
    )


def _items(tokens: tuple[Token, ...]) -> list[tuple[Token, ...]]:
    """The create_definitions between the parentheses, split at depth-0 commas."""
    items: list[tuple[Token, ...]] = []
    depth = 0
    start = 0
    for index, token in enumerate(tokens):
        if token.kind is TokenKind.OP:
            if token.value == "(":
                depth += 1
            elif token.value == ")":
                depth -= 1
            elif token.value == "," and depth == 0:
                items.append(tokens[start:index])
                start = index + 1
    items.append(tokens[start:])
    return items


def _definitions(
    cur: _Cursor, inner: tuple[Token, ...]
) -> tuple[tuple[ColumnDefinition, ...], Token | None]:
    """The columns of a definition list, and its first foreign key (None: none)."""
    columns: list[ColumnDefinition] = []
    foreign_key: Token | None = None
    for item in _items(inner):
        if not item:
            cur.fail(inner[-1] if inner else None)
        head = _kw(item[0])
        if head == "GLOBAL":
            raise not_supported("GLOBAL INDEX")
        if head in _NOT_COLUMNS or (head == "PERIOD" and len(item) > 1 and _kw(item[1]) == "FOR"):
            if foreign_key is None:
                foreign_key = next((t for t in item if _kw(t) == "FOREIGN"), None)
            continue
        column = _column(cur, item)
        columns.append(column)
        if foreign_key is None:
            foreign_key = next((t for t in _depth0(item) if _kw(t) == "REFERENCES"), None)
    return tuple(columns), foreign_key


def _depth0(item: tuple[Token, ...]) -> list[Token]:
    """The tokens of a definition that are not inside parentheses."""
    found = []
    depth = 0
    for token in item:
        if token.kind is TokenKind.OP and token.value in "()":
            depth += 1 if token.value == "(" else -1
        elif depth == 0:
            found.append(token)
    return found


def _column(cur: _Cursor, item: tuple[Token, ...]) -> ColumnDefinition:
    if not _is_name(item[0]) or len(item) < 2 or item[1].kind is not TokenKind.WORD:
        cur.fail(item[0] if not _is_name(item[0]) or len(item) < 2 else item[1])
    name = item[0].value
    words = [_kw(t) for t in _depth0(item)[1:]]
    type_word = words[0]
    key_name: str | None = None
    if type_word in _INTEGER_WORDS:
        key_name = _INTEGER_WORDS[type_word]
    elif type_word in _VARCHAR_WORDS or (
        type_word in _CHAR_WORDS | {"NATIONAL"} and "VARYING" in words[1:3]
    ):
        key_name = "varchar"
    elif type_word in _CHAR_WORDS:
        key_name = "char"
    elif type_word == "NATIONAL" and len(words) > 1 and words[1] in _VARCHAR_WORDS:
        key_name = "varchar"
    elif type_word == "NATIONAL" and len(words) > 1 and words[1] in _CHAR_WORDS:
        key_name = "char"
    if key_name in ("char", "varchar") and _binary_charset(words):
        key_name = None
    unsigned = type_word == "SERIAL" or "UNSIGNED" in words or "ZEROFILL" in words
    key_type = None
    if key_name is not None:
        key_type = KeyType(key_name, unsigned and key_name in INTEGER_BITS)
    generated = "GENERATED" in words or ("AS" in words and words.index("AS") > 0)
    auto_increment = "AUTO_INCREMENT" in words
    if auto_increment:
        after = words.index("AUTO_INCREMENT") + 1
        if after < len(words) and words[after] in ("BY", "UNIT"):
            raise not_supported(f"AUTO_INCREMENT {words[after]} ... (DRDS 2.0)")
    length = None
    if key_type is not None and key_type.family == "string":
        length = _char_length(item)
    return ColumnDefinition(name, type_word, key_type, generated, auto_increment, length)


def _char_length(item: tuple[Token, ...]) -> int | None:
    """The length of a CHAR / VARCHAR column definition: the first ``(n)`` after its name
    (CHAR without one: 1); None when it cannot be read."""
    for index in range(1, len(item) - 2):
        token = item[index]
        if token.kind is TokenKind.OP and token.value == "(":
            number = item[index + 1]
            if number.kind is TokenKind.NUMBER and number.value.isdigit():
                return int(number.value)
            return None
    return 1 if _kw(item[1]) in _CHAR_WORDS else None


def _binary_charset(words: list[str]) -> bool:
    """``CHARACTER SET binary`` / ``CHARSET binary`` / ``BYTE``: a binary string type."""
    for index, word in enumerate(words):
        if word == "BYTE":
            return True
        if word in ("CHARSET", "SET") and index + 1 < len(words) and words[index + 1] == "BINARY":
            return True
    return False


def _clause(
    cur: _Cursor, columns: tuple[ColumnDefinition, ...], clause_at: int
) -> tuple[TableRule, str]:
    """The DRDS clause from token ``clause_at`` to the end: the rule, and ``sql`` without it."""
    cur.i = clause_at
    tokens = cur.tokens
    if cur.accept_kw("BROADCAST"):
        rule = TableRule("broadcast")
    else:
        if cur.is_kw("TBPARTITION"):
            raise not_supported("TBPARTITION BY without DBPARTITION BY")
        cur.expect_kw("DBPARTITION")
        cur.expect_kw("BY")
        db_key = _shard_key(cur, columns, "DBPARTITION BY")
        tb_key: ShardKey | None = None
        per_db = 1
        if cur.accept_kw("TBPARTITION"):
            cur.expect_kw("BY")
            tb_key = _shard_key(cur, columns, "TBPARTITION BY")
            if cur.accept_kw("TBPARTITIONS"):
                per_db = cur.number(1, MAX_TABLES_PER_DB, "TBPARTITIONS")
        rule = TableRule("sharded", db_key, tb_key, per_db)
    if not cur.at_end():
        extra = cur.peek()
        assert extra is not None
        if _kw(extra) in ("AS", "SELECT", "WITH", "IGNORE", "REPLACE") or cur.is_op("("):
            raise not_supported(f"CREATE TABLE ... SELECT of a {rule.kind} table")
        if _kw(extra) in ("LOCALITY", "PARTITION", "DBPARTITIONS"):
            raise not_supported(f"{_kw(extra)} after a DRDS partition clause")
        cur.fail()
    # Cut from the blanks before the clause to its last token; the clause itself must be
    # whole tokens with blanks between them (a comment inside it is refused).
    first, last = tokens[clause_at], tokens[-1]
    for before, after in zip(tokens[clause_at:], tokens[clause_at + 1 :], strict=False):
        if cur.sql[_end(before) : after.pos].strip(" \t\r\n"):
            raise not_supported("a comment inside a DRDS partition clause")
    start = first.pos
    while start > 0 and cur.sql[start - 1] in " \t\r\n":
        start -= 1
    return rule, cur.sql[:start] + cur.sql[_end(last) :]


def _shard_key(cur: _Cursor, columns: tuple[ColumnDefinition, ...], level: str) -> ShardKey:
    token = cur.peek()
    if token is None or token.kind is not TokenKind.WORD:
        cur.fail()
    function = _HASH_FUNCTIONS.get(_kw(token))
    if function is None:
        if _kw(token) in _OTHER_FUNCTIONS:
            raise not_supported(f"{level} {_kw(token)}")
        cur.fail()
    cur.i += 1
    cur.expect_op("(")
    if cur.is_op(")"):
        raise not_supported(f"{level} {function}() without a column")
    column_token = cur.name()
    if not cur.is_op(")"):
        raise not_supported(f"{level} {function} of more than one column")
    cur.i += 1
    wanted = column_token.value.lower()
    column = next((c for c in columns if c.name.lower() == wanted), None)
    if column is None:
        raise sql_error(
            ErrorCode.BAD_FIELD, f"Unknown column '{column_token.value}' in '{level.lower()}'"
        )
    if column.key_type is None:
        raise not_supported(f"{level} {function} on a {column.type_word} column")
    if column.generated:
        raise not_supported(f"{level} {function} on a generated column")
    return ShardKey(function, column.name, column.key_type)


def refuse_sharded_source(source: LogicalTable | None, what: str) -> None:
    """1235 if ``source`` (a table a CREATE TABLE ... LIKE or ... SELECT reads; None: not a
    table of the catalog) is a sharded table. ``what``: ``"CREATE TABLE ... LIKE"``."""
    if source is not None and source.rule.kind == "sharded":
        raise not_supported(f"{what} of a sharded table")


def check_physical_names(table: LogicalTable, databases: int) -> None:
    """1059 when a physical table name of ``table`` (``t_00`` ...) would be longer than
    MariaDB allows."""
    for _, name in table.physical_tables(databases):
        if len(name) > MAX_NAME_LENGTH:
            raise sql_error(ErrorCode.TOO_LONG_IDENT, f"Identifier name '{name}' is too long")


# ------------------------------------------------------------------------------ sequences


def parse_sequence_statement(sql: str, statement: LexedStatement) -> SequenceStatement:
    """Read DRDS's ``CREATE [GROUP] SEQUENCE s [START WITH n]``, ``ALTER SEQUENCE s START WITH
    n`` or ``DROP SEQUENCE s``. 1235 for the other sequence types (SIMPLE, TIME, NEW) and
    options (INCREMENT BY, MAXVALUE, CYCLE, UNIT COUNT ... INDEX, CHANGE TO); 1064 otherwise."""
    cur = _Cursor(sql, statement.tokens)
    if cur.accept_kw("DROP"):
        cur.expect_kw("SEQUENCE")
        name = _sequence_name(cur)
        _finish(cur)
        return DropSequence(name)
    if cur.accept_kw("ALTER"):
        cur.expect_kw("SEQUENCE")
        name = _sequence_name(cur)
        if not cur.is_kw("START"):
            _refuse_sequence_option(cur)
        start = _start_with(cur)
        _finish(cur)
        return AlterSequence(name, start)
    cur.expect_kw("CREATE")
    if cur.is_kw("SIMPLE", "TIME", "NEW"):
        token = cur.peek()
        assert token is not None
        raise not_supported(f"CREATE {_kw(token)} SEQUENCE (shardgate has GROUP sequences)")
    cur.accept_kw("GROUP")
    cur.expect_kw("SEQUENCE")
    name = _sequence_name(cur)
    start = _start_with(cur) if cur.is_kw("START") else DEFAULT_SEQUENCE_START
    _finish(cur)
    return CreateSequence(name, start)


def _sequence_name(cur: _Cursor) -> str:
    schema, name = cur.qualified()
    if schema is not None:
        raise not_supported("a sequence of another database")
    return name.value


def _start_with(cur: _Cursor) -> int:
    cur.expect_kw("START")
    cur.expect_kw("WITH")
    return cur.number(1, SEQUENCE_MAX - 1, "START WITH")


def _refuse_sequence_option(cur: _Cursor) -> None:
    token = cur.peek()
    if token is not None and _kw(token) in (
        "INCREMENT",
        "MAXVALUE",
        "CYCLE",
        "NOCYCLE",
        "UNIT",
        "CHANGE",
        "CACHE",
        "NOCACHE",
        "MINVALUE",
    ):
        raise not_supported(f"{_kw(token)} of a GROUP sequence")
    cur.fail()


def _finish(cur: _Cursor) -> None:
    if not cur.at_end():
        _refuse_sequence_option(cur)


def nextval_references(
    statement: LexedStatement, is_sequence: Callable[[str], bool] | None = None
) -> list[NextvalReference]:
    """Every ``s.NEXTVAL`` of ``statement`` (in text order), where ``s`` is a bare or quoted
    name not itself qualified (``a.s.NEXTVAL`` is a column); with ``is_sequence``, only those
    whose ``s`` it accepts (the database's sequences)."""
    found = []
    tokens = statement.tokens
    for index in range(len(tokens) - 2):
        name, dot, word = tokens[index], tokens[index + 1], tokens[index + 2]
        if not (
            _is_name(name)
            and dot.kind is TokenKind.OP
            and dot.value == "."
            and word.kind in (TokenKind.WORD, TokenKind.IDENT)
            and word.raw.upper() == "NEXTVAL"
        ):
            continue
        if index > 0 and tokens[index - 1].kind is TokenKind.OP and tokens[index - 1].value == ".":
            continue
        after = tokens[index + 3] if index + 3 < len(tokens) else None
        if after is not None and after.kind is TokenKind.OP and after.value in (".", "("):
            continue
        if is_sequence is None or is_sequence(name.value):
            found.append(NextvalReference(name.value, name.pos, _end(word)))
    return found
