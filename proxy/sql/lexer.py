"""A MySQL/MariaDB-faithful lexer: statements as the server will read them.

The proxy must see exactly the tokens the shard will see, so this is a hand-written scanner that
follows MariaDB's ``Lex_input_stream::lex_one_token`` (``sql/sql_lex.cc``) for everything that
decides token boundaries:

* strings ``'...'`` and ``"..."`` with doubled-quote escapes and, unless ``NO_BACKSLASH_ESCAPES``,
  backslash escapes; ``N'...'``; ``X'hex'`` and ``B'bits'``; ``"..."`` is an identifier under
  ``ANSI_QUOTES``; backquoted identifiers with doubled backquotes;
* comments ``# ...``, ``-- ...`` (only when the second dash is followed by a space, a control
  character or the end of the input: ``--x`` is two minus signs) and ``/* ... */`` (not nested);
  the server drops whitespace and semicolons at the end of a query before it reads it
  (``alloc_query``), so ``--`` followed by nothing else (``SELECT 1--;``) is a comment too;
* executable comments, judged as the target server judges them (:class:`ServerFlavor`, see
  below): their content is either code or a comment, and the statement's tokens, shape key and
  executable text are what that server reads;
* a word immediately after ``.``, or immediately followed by ``.`` and an identifier character,
  is an identifier even if it is a reserved word (MariaDB's ``MY_LEX_IDENT_SEP``);
* a word of MariaDB's ``sql_functions[]`` (``COUNT``, ``SUM``, ``MAX``, ``NOW``, ``TRIM``,
  ``CAST``...: :data:`~proxy.sql.mariadb_words.SPACED_FUNCTIONS`) is the built-in only when
  ``(`` follows at once -- or, under ``IGNORE_SPACE``, after whitespace only (space, tab, line
  feed, carriage return, vertical tab, form feed; a comment, executable-comment markers
  included, still separates). Otherwise it is an identifier (``SELECT count (x)`` calls a
  stored function ``count``, ``SELECT count FROM t`` reads a column): the token is IDENT and
  the key quotes it, as MariaDB's ``scan_ident_middle`` and ``find_keyword(..., function)``
  read it. :func:`spaced_call` tells the texts whose reading depends on ``IGNORE_SPACE``.

Executable comments
-------------------
``/*!`` followed by 5 ASCII digits is *versioned*; on MariaDB a sixth digit, if there is one, is
part of the version (``/*!1000007`` is version 100000 followed by the code ``7``); on MySQL 8.1
and later the sixth digit counts only when a whitespace character follows it, before 8.1 never
(MySQL's ``lex_one_token``; "Are you ready for MySQL 10?", MySQL blog, 2023). On MariaDB a
versioned comment is code iff ``version <= server version`` and (``version < 50700`` or
``version > 99999`` or it was written ``/*M!``); on MySQL iff ``version <= server version``.
Otherwise the whole comment is skipped as a comment, where -- exactly as the servers'
``consume_comment(1)`` -- one level of ``/* ... */`` may be nested inside it. ``/*!`` with fewer
than 5 digits is not versioned: its content, digits included, is code. ``/*M!`` is MariaDB's: on
MySQL it is an ordinary comment. Without a flavor (``None``: the server is not known) every
comment whose reading depends on the server -- versioned, or ``/*M!`` -- is refused. MariaDB
built with Galera executes ``/*!99997 ...*/``; that version is refused on MariaDB.

What the lexer refuses
----------------------
It is deliberately stricter than the server where the server's rules are subtle, and refuses
(error 1064) rather than guess: a number running into identifier characters (``1abc``, ``0x1g``,
``1e5x``), a number right after ``.``, a ``.`` right after a number, an executable comment
inside the code of an executable comment (on MariaDB its ``*/`` ends both), any other comment
there unless the server is MariaDB before 12.0 (which skips it and reads on in the code: checked
against MariaDB 10.11), a ``;`` inside the code of an executable comment (what MariaDB does
depends on the client: with multi-statements it ends the statement there and fails on the rest,
without them it reads on to the comment's end), two minus signs that are no comment (``--``
followed by neither a space nor a control character) right before a comment, an executable
comment's marker or end, or the end of the statement (the executable text, where a space or its
end follows them then, would read a comment there), under ``IGNORE_SPACE`` a comment right after
a built-in's name of ``SPACED_FUNCTIONS`` (the text, a space there, could call the built-in),
``\\N`` and other backslashes outside strings, ``{ } [ ] :``, control characters outside strings
(NUL inside a string literal is data, as the server reads it; anywhere else -- comments, quoted
names -- it is refused), a lone ``@`` or one followed by a non-ASCII character, and Unicode
spaces or control characters in unquoted names.
Unterminated strings, quoted identifiers and comments are errors too (the server reads an
unterminated backquoted name to the end of the input; the proxy refuses it). On MySQL 9 and
later a word starting with ``$`` is refused (it may open a dollar-quoted string there).

Shape keys
----------
Every statement also gets a *shape key*: its tokens with every literal replaced by ``?``
(numbers, hexadecimal and bit literals, ``?`` parameter markers) or ``'?'`` (character strings),
reserved words upper-cased, quoted identifiers (and words that must be identifiers) in one
canonical backquoted form, user variables as ``@name``, system variables lower-cased, joined by
single spaces, without comments. ``images`` are those key tokens as a list.

Literal lists collapse, so a long ``IN`` list or a bulk ``INSERT`` has one shape whatever its
length: a list right after ``IN`` whose elements are all literals (a number, string, hexadecimal
or bit literal, ``?``, ``NULL``, ``TRUE``, ``FALSE``, or a sign and a numeric literal) keeps
only its first element (``IN (1, 2, 3)`` has the key ``IN ( ? )``), and after ``VALUES`` or
``VALUE`` a run of such all-literal rows keeps only its first row (``VALUES (1, 'a'), (2,
'b')`` has the key ``VALUES ( ? , '?' )``). A list with anything else in it -- a name, a
function, a subquery, a variable, an expression -- is kept whole. The key is itself valid SQL
for the analyser; two statements with the same key differ only in literal values and in how
many elements such lists have, which decides no privilege. Tokens are never collapsed.

Offsets
-------
Statements partition the input: a statement's ``start`` is where the previous one ended (0 for
the first), its ``end`` is just after its terminating ``;``, or the end of the input for the
last statement (which then includes any trailing comments, whitespace and empty statements), so
``sql[start:end]`` is the statement's original text. Offsets are in characters of ``sql``;
:func:`utf8_offsets` converts them into byte offsets of its UTF-8 (``surrogateescape``) encoding.

``lex()`` returns tokens, executable text, key and offsets per statement; ``shapes()`` is the
same scan without building tokens (the cache-hit path; it also skips over runs of literal rows
and list elements that the key drops with one regular expression). Both raise
:class:`LexError` (1064).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

from auth.errors import ErrorCode, SqlError, not_supported, parse_error
from proxy.sql.mariadb_words import SPACED_FUNCTIONS

__all__ = [
    "DEFAULT_MODE",
    "MAX_STATEMENTS",
    "MAX_TOKENS",
    "NOT_ALIAS",
    "RESERVED_WORDS",
    "TOO_MANY_STATEMENTS",
    "TOO_MANY_TOKENS",
    "LexError",
    "LexMode",
    "LexedStatement",
    "ServerFlavor",
    "Shape",
    "Token",
    "TokenKind",
    "lex",
    "server_name",
    "shapes",
    "sliced_lower",
    "sliced_undoubled",
    "sliced_upper",
    "spaced_call",
    "unescape_string",
    "utf8_offsets",
]


@dataclass(frozen=True, slots=True)
class LexMode:
    """The parts of ``sql_mode`` that change how text is cut into tokens (``ignore_space``:
    IGNORE_SPACE, set by ``sql_mode`` or by the client's CLIENT_IGNORE_SPACE at login)."""

    ansi_quotes: bool = False
    no_backslash_escapes: bool = False
    ignore_space: bool = False


DEFAULT_MODE: Final = LexMode()

_FLAVOR_VERSION = re.compile(r"([0-9]{1,3})\.([0-9]{1,2})\.([0-9]{1,2})(?![0-9])")


@dataclass(frozen=True, slots=True)
class ServerFlavor:
    """The server a text is meant for, as far as executable comments care.

    ``version`` is the server's ``MYSQL_VERSION_ID`` (major * 10000 + minor * 100 + patch:
    101119 for MariaDB 10.11.19, 80403 for MySQL 8.4.3); ``mariadb`` tells MariaDB's rules from
    MySQL's.
    """

    version: int
    mariadb: bool

    @classmethod
    def parse(cls, server_version: str) -> ServerFlavor:
        """The flavor of a handshake's server version string (``10.11.19-MariaDB-0+deb12u1``,
        ``5.5.5-10.11.19-MariaDB-log``, ``8.4.3``, ``8.0.36-log``); ``ValueError`` if it has
        no ``major.minor.patch`` version."""
        mariadb = "mariadb" in server_version.lower()
        text = server_version
        if mariadb and text.startswith("5.5.5-"):
            text = text[6:]  # MariaDB 10+ prefixes 5.5.5- for old replication clients
        match = _FLAVOR_VERSION.match(text)
        if match is None:
            raise ValueError(f"not a server version: {server_version!r}")
        major, minor, patch = (int(g) for g in match.groups())
        return cls(major * 10000 + minor * 100 + patch, mariadb)


class TokenKind(enum.Enum):
    WORD = "word"  # keyword or unquoted identifier
    IDENT = "ident"  # quoted identifier, or a word that can only be an identifier
    STRING = "string"  # '...', "..." (without ANSI_QUOTES), N'...'
    NUMBER = "number"  # 12, 1.5, .5e3
    HEX = "hex"  # X'4142', 0x4142
    BIT = "bit"  # B'101', 0b101
    PARAM = "param"  # ? (a prepared-statement parameter marker)
    USER_VAR = "user_var"  # @name, @'name', @"name", @`name`
    SYS_VAR = "sys_var"  # @@name, @@session.name
    OP = "op"  # operators and punctuation


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    raw: str  # the token exactly as written
    value: str  # WORD: as written; IDENT: the name; STRING: decoded; USER_VAR: the name;
    #             SYS_VAR: lower-cased without @@; others: as written
    image: str  # the token's form in the shape key
    pos: int  # offset of the token in the input


@dataclass(frozen=True, slots=True)
class LexedStatement:
    tokens: tuple[Token, ...]  # every token, literal lists not collapsed
    images: tuple[str, ...]  # the shape key's tokens (literal lists collapsed)
    text: str  # executable text: comments removed, executable comments resolved
    key: str  # shape key: " ".join(images)
    start: int  # where the statement's text starts in the input (see module doc)
    end: int  # just after its ';' (the end of the input for the last statement)


class Shape(NamedTuple):
    """One statement as :func:`shapes` gives it (a :class:`LexedStatement` without tokens)."""

    key: str
    images: list[str]
    text: str
    start: int
    end: int


class LexError(Exception):
    """The input cannot be cut into tokens; ``error`` is the 1064 to send."""

    def __init__(self, error: SqlError, pos: int, reason: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.error = error
        self.pos = pos
        self.reason = reason


# Reserved words of both MySQL and MariaDB: they cannot be unquoted identifiers (except right
# next to a dot), so the shape key may upper-case them. Any subset of the true list is correct;
# a word not listed here keeps its spelling in the key.
RESERVED_WORDS: frozenset[str] = frozenset(
    """
    ADD ALL ALTER ANALYZE AND AS ASC BEFORE BETWEEN BIGINT BINARY BLOB BOTH BY CALL CASCADE CASE
    CHANGE CHAR CHARACTER CHECK COLLATE COLUMN CONDITION CONSTRAINT CONTINUE CONVERT CREATE
    CROSS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATABASE DATABASES
    DAY_HOUR DAY_MICROSECOND DAY_MINUTE DAY_SECOND DEC DECIMAL DECLARE DEFAULT DELAYED DELETE
    DESC DESCRIBE DETERMINISTIC DISTINCT DISTINCTROW DIV DOUBLE DROP DUAL EACH ELSE ELSEIF
    ENCLOSED ESCAPED EXISTS EXIT EXPLAIN FALSE FETCH FLOAT FOR FORCE FOREIGN FROM FULLTEXT GRANT
    GROUP HAVING HIGH_PRIORITY HOUR_MICROSECOND HOUR_MINUTE HOUR_SECOND IF IGNORE IN INDEX
    INFILE INNER INOUT INSENSITIVE INSERT INT INTEGER INTERVAL INTO IS ITERATE JOIN KEY KEYS
    KILL LEADING LEAVE LEFT LIKE LIMIT LINEAR LINES LOAD LOCALTIME LOCALTIMESTAMP LOCK LONG
    LONGBLOB LONGTEXT LOOP LOW_PRIORITY MATCH MEDIUMBLOB MEDIUMINT MEDIUMTEXT MINUTE_MICROSECOND
    MINUTE_SECOND MOD MODIFIES NATURAL NOT NO_WRITE_TO_BINLOG NULL NUMERIC ON OPTIMIZE OPTION
    OPTIONALLY OR ORDER OUT OUTER OUTFILE PARTITION PRECISION PRIMARY PROCEDURE PURGE RANGE READ
    READS REAL RECURSIVE REFERENCES REGEXP RELEASE RENAME REPEAT REPLACE REQUIRE RESIGNAL
    RESTRICT RETURN REVOKE RIGHT RLIKE SCHEMA SCHEMAS SECOND_MICROSECOND SELECT SENSITIVE
    SEPARATOR SET SHOW SIGNAL SMALLINT SPATIAL SPECIFIC SQL SQLEXCEPTION SQLSTATE SQLWARNING
    SQL_BIG_RESULT SQL_CALC_FOUND_ROWS SQL_SMALL_RESULT SSL STARTING STRAIGHT_JOIN TABLE
    TERMINATED THEN TINYBLOB TINYINT TINYTEXT TO TRAILING TRIGGER TRUE UNDO UNION UNIQUE UNLOCK
    UNSIGNED UPDATE USAGE USE USING UTC_DATE UTC_TIME UTC_TIMESTAMP VALUES VARBINARY VARCHAR
    VARCHARACTER VARYING WHEN WHERE WHILE WITH WRITE XOR YEAR_MONTH ZEROFILL
    """.split()  # noqa: SIM905
)
# The longest word of RESERVED_WORDS and SPACED_FUNCTIONS (_scan upper-cases no longer word).
_LONGEST_KEYWORD: Final = max(map(len, RESERVED_WORDS | SPACED_FUNCTIONS))


def _is_keyword(word: str, keyword: str) -> bool:
    """``word.upper() == keyword`` for an ASCII ``word``, without upper-casing a long one."""
    return len(word) == len(keyword) and word.upper() == keyword


# Words after a table reference that are not its alias (the sharded routing's and the
# analysis' reading of ``FROM t x``: proxy.shard.route, proxy.sql.analyze).
NOT_ALIAS: Final = frozenset(
    {
        "WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "STRAIGHT_JOIN", "ON", "USING",
        "GROUP", "ORDER", "LIMIT", "HAVING", "UNION", "EXCEPT", "INTERSECT", "FOR", "LOCK",
        "SET", "NATURAL", "PARTITION", "USE", "IGNORE", "FORCE", "WINDOW", "INTO", "VALUES",
        "VALUE", "SELECT", "RETURNING", "AS", "FULL", "OUTER", "PROCEDURE", "WITH",
    }
)  # fmt: skip

_IDENT_CHARS = r"0-9A-Za-z_$\u0080-\U0010ffff"
_NOT_IDENT = rf"(?![{_IDENT_CHARS}])"
_ASCII_IDENT = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_PLAIN_RUN = re.compile(r"[A-Za-z0-9_]*+")
_SQ_BS = r"'(?:[^'\\]++|\\[\s\S]|'')*+'"
_SQ_NOBS = r"'(?:[^']++|'')*+'"
_DQ_BS = r'"(?:[^"\\]++|\\[\s\S]|"")*+"'
_DQ_NOBS = r'"(?:[^"]++|"")*+"'
_BQ = r"`(?:[^`]++|``)*+`"
_NUM = (
    r"(?>0x[0-9A-Fa-f]+|0b[01]+|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?"
    r"|\.[0-9]+(?:[eE][-+]?[0-9]+)?)" + _NOT_IDENT
)

# Group numbers of the master pattern (each alternative is one capturing group, nothing inside
# captures, so ``match.lastindex`` names the alternative that matched).
_G_HEXSTR = 1
_G_BITSTR = 2
_G_NSTR = 3
_G_WORD = 4
_G_NUM = 5
_G_SQ = 6
_G_DQ = 7
_G_BQ = 8
_G_SYSVAR = 9
_G_USERVAR = 10
_G_HASH = 11
_G_DASH = 12
_G_EXEC_OPEN = 13
_G_COMMENT = 14
_G_UNTERMINATED_COMMENT = 15
_G_EXEC_CLOSE = 16
_G_OP = 17
_G_PARAM = 18
_G_EOF = 19
_G_BAD = 20
# Alternatives a slice's end may have chosen (see _scan).
_UNSURE = frozenset({_G_BAD, _G_UNTERMINATED_COMMENT, _G_EOF})

_WS = "[ \t\n\r\x0b\x0c]*"


def _strings(mode: LexMode) -> tuple[str, str]:
    """The single-quoted and (if it is one) double-quoted string patterns of ``mode``."""
    sq = _SQ_NOBS if mode.no_backslash_escapes else _SQ_BS
    dq = _DQ_NOBS if mode.no_backslash_escapes else _DQ_BS
    return sq, dq


def _master(mode: LexMode, short: bool = False) -> re.Pattern[str]:
    sq, dq_string = _strings(mode)
    dq = _DQ_NOBS if mode.ansi_quotes else dq_string
    alternatives = [
        r"[xX]'[^']*'",  # 1 X'...'
        r"[bB]'[^']*'",  # 2 B'...'
        r"[nN]" + sq,  # 3 N'...'
        rf"[A-Za-z_$\u0080-\U0010ffff][{_IDENT_CHARS}]*",  # 4 word
        _NUM,  # 5 number
        sq,  # 6
        dq,  # 7
        _BQ,  # 8
        r"@@[0-9A-Za-z_$]++(?:\.[0-9A-Za-z_$]++)?+(?![" + _IDENT_CHARS + r".`'\"@])",  # 9
        r"@(?:[0-9A-Za-z_$.]++(?![\u0080-\U0010ffff])|" + sq + "|" + dq + "|" + _BQ + ")",  # 10
        r"\#[^\n]*",  # 11
        r"--(?=[\x00-\x20\x7f]|[; \t\n\r\x0b\x0c]*+\Z)[^\n]*",  # 12
        r"/\*M?!",  # 13 (the version digits, if any, are read by _scan)
        r"/\*[\s\S]*?\*/",  # 14
        r"/\*",  # 15
        r"\*/",  # 16
        r"<=>|<<|>>|<=|>=|<>|!=|:=|&&|\|\||[-+*/%=<>!~&|^(),.;]",  # 17
        r"\?" + _NOT_IDENT,  # 18
        r"\Z",  # 19
        r"[\s\S]",  # 20
    ]
    if short:
        kept = (_G_EXEC_CLOSE, _G_OP, _G_PARAM, _G_BAD)
        alternatives = [a if g in kept else "(?!)" for g, a in enumerate(alternatives, 1)]
        return re.compile("(?:" + "|".join(f"({a})" for a in alternatives) + ")")
    return re.compile(_WS + "(?:" + "|".join(f"({a})" for a in alternatives) + ")")


def _element(mode: LexMode) -> str:
    """One element of a collapsible literal list, exactly as the master pattern lexes it."""
    sq, dq = _strings(mode)
    numeric = rf"(?:{_NUM}|[xX]'(?:[0-9A-Fa-f]{{2}})*+'|[bB]'[01]*+'|\?{_NOT_IDENT})"
    strings = rf"[nN]?{sq}" if mode.ansi_quotes else rf"[nN]?{sq}|{dq}"
    return rf"(?:(?:[-+]{_WS})?{numeric}|{strings}|(?i:NULL|TRUE|FALSE){_NOT_IDENT})"


def _bulk(mode: LexMode) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """``shapes()``'s shortcuts: the further elements of an all-literal ``IN`` list, and a run
    of further all-literal ``VALUES`` rows -- what the key drops. Possessive throughout: linear
    time. Applied in slices (:func:`_skip`), so that no single regular-expression call, which
    holds the interpreter lock, runs long on a huge statement."""
    elem = _element(mode)
    more = rf"(?:{_WS},{_WS}{elem})"
    # Each unit must be followed by the delimiter of the next (or the list's end), which a
    # slice's end cuts off: a unit the slice cuts never matches short.
    in_rest = re.compile(rf"(?:{more}(?={_WS}[,)]))++")
    rows = re.compile(rf"(?:{_WS},{_WS}\({_WS}{elem}{more}*+{_WS}\)(?={_WS},))++")
    return in_rest, rows


# How much one call of a bulk pattern may scan (~3 ms of an IN list's numbers on a slow
# machine): another thread, the event loop's, gets the interpreter lock between calls -- and
# waits for it up to a call's time each time it needs it, several times per statement it serves
# (tests/e2e/test_stall.py: 256 KiB, ~21 ms a call there, made another tenant's p99 ~90 ms).
_SKIP_SLICE = 32 * 1024


def _skip(pattern: re.Pattern[str], sql: str, pos: int) -> int:
    """How far ``pattern``'s units repeat from ``pos`` (``pos`` if not at all), matched one
    slice of the text at a time: a unit cut by a slice's end is matched whole by the next."""
    n = len(sql)
    end = pos
    while end < n:
        more = pattern.match(sql, end, min(n, end + _SKIP_SLICE))
        if more is None or more.end() == end:
            break
        end = more.end()
    return end


# How much one call of the master pattern may scan (see _SKIP_SLICE): a token longer than this
# (a 16 MB string literal, number, name or comment, a run of whitespace) is read in slices of it
# by _resolve. A module constant so that tests can make it tiny.
_SLICE = 32 * 1024
# The bodies of quoted strings and names, unit by unit (no unit is longer than 2 characters:
# _run's windows are at least that long, so a unit cut by a window's end is read whole by the
# next window), and the runs of one kind of character that the other long tokens consist of.
_SQ_BS_BODY = re.compile(r"(?:[^'\\]++|\\[\s\S]|'')*+")
_SQ_NOBS_BODY = re.compile(r"(?:[^']++|'')*+")
_DQ_BS_BODY = re.compile(r'(?:[^"\\]++|\\[\s\S]|"")*+')
_DQ_NOBS_BODY = re.compile(r'(?:[^"]++|"")*+')
_BQ_BODY = re.compile(r"(?:[^`]++|``)*+")
_SPACE_RUN = re.compile(_WS + "+")
_IDENT_RUN = re.compile(rf"[{_IDENT_CHARS}]*+")
_DIGIT_RUN = re.compile(r"[0-9]*+")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]*+")
_BIT_RUN = re.compile(r"[01]*+")
_SYSVAR_RUN = re.compile(r"[0-9A-Za-z_$]*+")
_USERVAR_RUN = re.compile(r"[0-9A-Za-z_$.]*+")
_DASH_TAIL_RUN = re.compile(r"[; \t\n\r\x0b\x0c]*+")
_HEX_DIGITS = frozenset("0123456789ABCDEFabcdef")
_SYSVAR_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$")


def _run(pattern: re.Pattern[str], sql: str, pos: int) -> int:
    """Where ``pattern`` (a possessive repetition of units of at most 2 characters, matching
    the empty string) stops from ``pos``, matched one window of the text at a time."""
    n = len(sql)
    end = pos
    width = max(_SLICE, 2)
    while end < n:
        more = pattern.match(sql, end, min(n, end + width))
        assert more is not None  # (it matches the empty string)
        if more.end() == end:
            break
        end = more.end()
    return end


def _find(sql: str, sub: str, pos: int) -> int:
    """``sql.find(sub, pos)``, one window of the text at a time (windows overlap so that an
    occurrence across a window's end is found)."""
    n = len(sql)
    width = max(_SLICE, 1)
    while pos < n:
        found = sql.find(sub, pos, min(n, pos + width + len(sub) - 1))
        if found >= 0:
            return found
        pos += width
    return -1


def _search(pattern: re.Pattern[str], sql: str, pos: int) -> re.Match[str] | None:
    """``pattern.search(sql, pos)`` for a pattern whose matches are 2 characters long, one
    window of the text at a time."""
    n = len(sql)
    width = max(_SLICE, 1)
    while pos < n:
        found = pattern.search(sql, pos, min(n, pos + width + 1))
        if found is not None:
            return found
        pos += width
    return None


def _quoted(sql: str, pos: int, body: re.Pattern[str]) -> int:
    """The end of the quoted string or name whose opening quote is at ``pos``, or -1."""
    end = _run(body, sql, pos + 1)
    return end + 1 if end < len(sql) and sql[end] == sql[pos] else -1


def _exponent(sql: str, pos: int) -> int:
    """``[eE][-+]?[0-9]+`` at ``pos``: its end, or ``pos``."""
    n = len(sql)
    if pos < n and sql[pos] in "eE":
        at = pos + 1
        if at < n and sql[at] in "-+":
            at += 1
        if at < n and sql[at] in _DIGITS:
            return _run(_DIGIT_RUN, sql, at)
    return pos


def _number(sql: str, ts: int) -> int:
    """The end of ``_NUM`` at ``ts`` (its atomic group, then no identifier character), or -1."""
    n = len(sql)
    c = sql[ts]
    c2 = sql[ts + 2] if ts + 2 < n else ""
    if sql.startswith("0x", ts) and c2 in _HEX_DIGITS:
        end = _run(_HEX_RUN, sql, ts + 2)
    elif sql.startswith("0b", ts) and c2 in ("0", "1"):
        end = _run(_BIT_RUN, sql, ts + 2)
    elif c in _DIGITS:
        end = _run(_DIGIT_RUN, sql, ts)
        if end < n and sql[end] == ".":
            end = _run(_DIGIT_RUN, sql, end + 1)
        end = _exponent(sql, end)
    elif c == "." and sql[ts + 1 : ts + 2] in _DIGITS:
        end = _exponent(sql, _run(_DIGIT_RUN, sql, ts + 1))
    else:
        return -1
    return -1 if end < n and (sql[end] in _ASCII_IDENT or sql[end] >= "\x80") else end


def _resolve(sql: str, pos: int, mode: LexMode) -> tuple[int, int, int]:
    """The master pattern's match at ``pos`` (the alternative, the token's start and end), found
    without any one regular-expression call scanning more than ``_SLICE`` characters: the
    alternatives tried in the pattern's order, each read in slices (the short ones, of at most 4
    characters, by the pattern itself on a window of 8)."""
    n = len(sql)
    ts = _run(_SPACE_RUN, sql, pos)
    if ts == n:
        return _G_EOF, ts, ts
    c = sql[ts]
    c1 = sql[ts + 1 : ts + 2]
    sq = _SQ_NOBS_BODY if mode.no_backslash_escapes else _SQ_BS_BODY
    dq = _DQ_NOBS_BODY if mode.no_backslash_escapes or mode.ansi_quotes else _DQ_BS_BODY
    if c1 == "'" and c in "xXbB":
        end = _find(sql, "'", ts + 2)
        if end >= 0:
            return (_G_HEXSTR if c in "xX" else _G_BITSTR), ts, end + 1
    if c1 == "'" and c in "nN":
        end = _quoted(sql, ts + 1, sq)
        if end >= 0:
            return _G_NSTR, ts, end
    if (c in _ASCII_IDENT and c not in _DIGITS) or c >= "\x80":
        return _G_WORD, ts, _run(_IDENT_RUN, sql, ts + 1)
    end = _number(sql, ts)
    if end >= 0:
        return _G_NUM, ts, end
    if c in "'\"`":
        end = _quoted(sql, ts, sq if c == "'" else dq if c == '"' else _BQ_BODY)
        if end >= 0:
            return (_G_SQ if c == "'" else _G_DQ if c == '"' else _G_BQ), ts, end
    if c == "@" and c1 == "@":
        end = _run(_SYSVAR_RUN, sql, ts + 2)
        if end > ts + 2:
            if sql[end : end + 1] == "." and sql[end + 1 : end + 2] in _SYSVAR_CHARS:
                end = _run(_SYSVAR_RUN, sql, end + 1)
            if end == n or not (
                sql[end] in ".`'\"@" or sql[end] in _ASCII_IDENT or sql[end] >= "\x80"
            ):
                return _G_SYSVAR, ts, end
    if c == "@":
        end = _run(_USERVAR_RUN, sql, ts + 1)
        if end > ts + 1:
            if end == n or sql[end] < "\x80":
                return _G_USERVAR, ts, end
        elif c1 and c1 in "'\"`":
            end = _quoted(sql, ts + 1, sq if c1 == "'" else dq if c1 == '"' else _BQ_BODY)
            if end >= 0:
                return _G_USERVAR, ts, end
    if c == "#":
        end = _find(sql, "\n", ts + 1)
        return _G_HASH, ts, n if end < 0 else end
    if c == "-" and c1 == "-":
        c2 = sql[ts + 2 : ts + 3]
        if (c2 and (c2 <= "\x20" or c2 == "\x7f")) or _run(_DASH_TAIL_RUN, sql, ts + 2) == n:
            end = _find(sql, "\n", ts + 2)
            return _G_DASH, ts, n if end < 0 else end
    if sql.startswith("/*", ts):
        if sql.startswith("/*!", ts) or sql.startswith("/*M!", ts):
            return _G_EXEC_OPEN, ts, ts + (3 if sql.startswith("/*!", ts) else 4)
        end = _find(sql, "*/", ts + 2)
        if end >= 0:
            return _G_COMMENT, ts, end + 2
        return _G_UNTERMINATED_COMMENT, ts, ts + 2
    short = _SHORT[mode].match(sql, ts, min(n, ts + 8))
    assert short is not None and short.lastindex is not None  # ([\s\S] matches at ts < n)
    return short.lastindex, ts, short.end()


_MODES = [LexMode(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)]
_PATTERNS: dict[LexMode, re.Pattern[str]] = {m: _master(m) for m in _MODES}
# The master pattern's short alternatives only (EXEC_CLOSE, OP, PARAM, BAD), same group numbers.
_SHORT: dict[LexMode, re.Pattern[str]] = {m: _master(m, short=True) for m in _MODES}
_BULK: dict[LexMode, tuple[re.Pattern[str], re.Pattern[str]]] = {m: _bulk(m) for m in _MODES}
_NESTING = re.compile(r"/\*|\*/")
# MariaDB's spaces (MY_LEX_SKIP: the client character set's spaces, all ASCII for the
# character sets the proxy accepts): what ends a version comment's number, and what IGNORE_SPACE
# skips between a function name and its "(".
_SPACE_CHARS = " \t\n\r\x0b\x0c"
_MYSQL_SPACE = frozenset(_SPACE_CHARS)
# A name of SPACED_FUNCTIONS and the whitespace character after it: where a spaced call may
# start (the name ends at the whitespace, so at most one name matches at a place).
_SPACED_NAME = re.compile(
    r"(?<![0-9A-Za-z_$\u0080-\U0010ffff])(?i:"
    + "|".join(sorted(SPACED_FUNCTIONS, key=len, reverse=True))
    + rf")[{_SPACE_CHARS}]"
)
_SPACED_NAME_LONGEST = max(map(len, SPACED_FUNCTIONS)) + 1


def _called(sql: str, end: int, ignore_space: bool) -> bool:
    """Whether the word ending at ``end`` is a function name for MariaDB's lexer: ``(`` right
    after it, or after whitespace only under ``IGNORE_SPACE``."""
    if ignore_space:
        end = _run(_SPACE_RUN, sql, end)
    return sql.startswith("(", end)


def spaced_call(sql: str) -> bool:
    """Whether ``sql`` may hold a word of ``SPACED_FUNCTIONS`` followed by whitespace and
    ``(`` (outside strings and comments or not): a text ``IGNORE_SPACE`` may read otherwise
    (``count (x)``: the built-in under it, a stored function without it)."""
    n = len(sql)
    width = max(_SLICE, 1)
    start = 0
    while start < n:
        # one window at a time (a name starting in it is wholly in it), and the whitespace
        # after a name in slices: no regular-expression call scans a huge text whole
        window_end = min(n, start + width + _SPACED_NAME_LONGEST)
        at = start
        while (name := _SPACED_NAME.search(sql, at, window_end)) is not None:
            if sql.startswith("(", _run(_SPACE_RUN, sql, name.end())):
                return True
            at = name.start() + 1
        start += width
    return False


_DIGITS = frozenset("0123456789")

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "0": "\0", "Z": "\x1a"}


@functools.cache
def _string_units(quote: str, backslash_escapes: bool) -> re.Pattern[str]:
    """A string body's units as the lexer reads them (a run of plain characters, ``\\x``, a
    doubled quote), matched up to the first one that is none of these."""
    q = re.escape(quote)
    if backslash_escapes:
        return re.compile(rf"(?:[^{q}\\]++|\\[\s\S]|{q}{q})*+")
    return re.compile(rf"(?:[^{q}]++|{q}{q})*+")


def unescape_string(body: str, quote: str, backslash_escapes: bool) -> str:
    """The value of a string literal's body (between the quotes), as MariaDB's my_unescape:
    ``\\0 \\b \\n \\r \\t \\Z`` the control characters, ``\\%`` and ``\\_`` kept with their
    backslash, any other ``\\x`` the character ``x``, a doubled quote one quote (without
    ``backslash_escapes`` only the doubled quote). In slices of the body: whole units of it
    (``_string_units``), each unescaped by a few ``str.replace`` calls -- no regular-expression
    or string call runs over more than ``_SLICE`` characters, and none per character (a 16 MB
    literal of escapes took seconds of the interpreter lock character by character). A body
    the lexer never gives (a quote that is not doubled, a backslash at its end) is read as
    before: a quote takes the character after it, a final backslash is kept."""
    if len(body) <= _SLICE:
        if "\\" not in body and quote not in body:
            return body
    elif _find(body, "\\", 0) < 0 and _find(body, quote, 0) < 0:
        return body
    units = _string_units(quote, backslash_escapes)
    n = len(body)
    width = max(_SLICE, 2)
    out: list[str] = []
    pos = 0
    while pos < n:
        end = units.match(body, pos, min(n, pos + width)).end()  # type: ignore[union-attr]
        if end > pos:
            out.append(_unescape_units(body[pos:end], quote, backslash_escapes))
            pos = end
        else:  # not a unit: a lone quote (with the character after it) or a final backslash
            out.append(body[pos])
            pos += 2
    return "".join(out)


def _unescape_units(units: str, quote: str, backslash_escapes: bool) -> str:
    """:func:`unescape_string` of whole units: every doubled quote, and with
    ``backslash_escapes`` every backslash that is not escaped itself, starts one."""
    if not backslash_escapes or "\\" not in units:
        return units.replace(quote + quote, quote)
    # The escaped backslashes stand as a character the text does not hold while the other
    # escapes are replaced (then every backslash left starts an escape: none is doubled).
    held = _absent(units)
    text = units.replace("\\\\", held).replace(quote + quote, quote)
    text = text.replace("\\%", held + "%").replace("\\_", held + "_")
    for escape, value in _ESCAPES.items():
        text = text.replace("\\" + escape, value)
    return text.replace("\\", "").replace(held, "\\")


def _absent(text: str) -> str:
    """A character (of the private use areas) that ``text`` does not hold."""
    if "\ue000" not in text:
        return "\ue000"
    held = set(text)  # (a text of n characters lacks one of any n + 1)
    return next(c for c in map(chr, range(0xE001, 0x110000)) if c not in held)


def utf8_offsets(sql: str, offsets: Iterable[int]) -> list[int]:
    """Byte offsets, in ``sql.encode("utf-8", "surrogateescape")``, of ascending character
    offsets into ``sql`` (such as statements' ``start`` and ``end``); linear in ``len(sql)``."""
    if sql.isascii():
        return list(offsets)
    out: list[int] = []
    done_chars = 0
    done_bytes = 0
    for offset in offsets:
        done_bytes += len(sql[done_chars:offset].encode("utf-8", "surrogateescape"))
        done_chars = offset
        out.append(done_bytes)
    return out


def _quote_ident(name: str) -> str:
    if len(name) <= _SLICE:
        return "`" + name.replace("`", "``") + "`"
    return "".join(["`", *_slices(name, _backquotes_doubled), "`"])


def _backquotes_doubled(text: str) -> str:
    return text.replace("`", "``")


def _slices(text: str, method: Callable[[str], str]) -> list[str]:
    """``method`` applied to each slice of ``text`` (``_SLICE``): for a ``method`` that reads
    each character on its own, the pieces of ``method(text)`` -- without one call, which
    holds the interpreter lock, over a 16 MB name (tens of milliseconds)."""
    width = max(_SLICE, 1)
    return [method(text[at : at + width]) for at in range(0, len(text), width)]


def sliced_upper(text: str) -> str:
    """``text.upper()`` (which maps each character on its own), a slice at a time."""
    if len(text) <= _SLICE:
        return text.upper()
    return "".join(_slices(text, str.upper))


def sliced_lower(text: str) -> str:
    """``text.lower()``, a slice at a time when that maps each character on its own: when
    ``text`` holds no capital sigma (whose lower case depends on its neighbours)."""
    if len(text) <= _SLICE or _find(text, "\u03a3", 0) >= 0:
        return text.lower()
    return "".join(_slices(text, str.lower))


def sliced_undoubled(text: str, quote: str) -> str:
    """``text.replace(quote + quote, quote)``, a slice at a time: a slice that would end
    inside a doubled quote ends before it."""
    n = len(text)
    width = max(_SLICE, 2)
    if n <= width:
        return text.replace(quote + quote, quote)
    out: list[str] = []
    pos = 0
    while pos < n:
        end = min(n, pos + width)
        part = text[pos:end]
        if end < n and (len(part) - len(part.rstrip(quote))) % 2:
            end -= 1  # (the slice starts at a pair's start: so does its last run's tail)
            part = part[:-1]
        out.append(part.replace(quote + quote, quote))
        pos = end
    return "".join(out)


def _plain_name(name: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9_]*`` matches the whole name (read in slices)."""
    if len(name) <= _SLICE:
        return _PLAIN_NAME.fullmatch(name) is not None
    return name[:1] in _PLAIN_FIRST and _run(_PLAIN_RUN, name, 1) == len(name)


def _error(sql: str, pos: int, what: str = "syntax error", server: str = "MySQL") -> LexError:
    line = sql.count("\n", 0, pos) + 1
    return LexError(parse_error(sql[pos:], line, server), pos, what)


# The most statements one request (a multi-statement packet) may hold. Every statement costs
# its analysis and a few hundred bytes while the request is authorized whole: 64 MiB of
# "SELECT 1;" would be seven million of them, gigabytes and minutes.
MAX_STATEMENTS: Final = 16384
TOO_MANY_STATEMENTS: Final = f"more than {MAX_STATEMENTS} statements in one request"
# The most tokens of one statement's shape key (literal lists collapsed, so a bulk insert or a
# long IN list counts one row / one element): lexing and checking take microseconds a token,
# and no statement of that much structure is analysable anyway (sqlglot reads at most 256 KiB).
MAX_TOKENS: Final = 262144
TOO_MANY_TOKENS: Final = (
    f"statements of more than {MAX_TOKENS} tokens (lists of literals not counted)"
)


def server_name(flavor: ServerFlavor | None) -> str:
    """How 1064 names the server: "MariaDB" for a MariaDB shard, else "MySQL"."""
    return "MariaDB" if flavor is not None and flavor.mariadb else "MySQL"


def _scan_as(sql: str, mode: LexMode, flavor: ServerFlavor | None, with_tokens: bool) -> list[_Raw]:
    """:func:`_scan`, its 1064 worded as the ``flavor`` server words it."""
    try:
        return _scan(sql, mode, flavor, with_tokens)
    except LexError as err:
        if flavor is None or not flavor.mariadb or err.error.errno != ErrorCode.PARSE.errno:
            raise
        raise _error(sql, err.pos, err.reason, server_name(flavor)) from None


# ASCII's non-printable characters, deleted (str.translate) before a text's non-ASCII ones are
# judged by str.isprintable.
_ASCII_CONTROLS: Final = dict.fromkeys([*range(0x20), 0x7F])


def _bad_word(word: str) -> bool:
    """A non-ASCII space, control, format or unassigned character in an unquoted name (Unicode
    category Z* or C*: exactly the characters ``str.isprintable`` refuses, ASCII's aside --
    tests/unit/test_lexer_words.py checks every code point), one slice at a time (not one
    Python step a character: a 16 MB name took 1.6 s)."""
    width = max(_SLICE, 1)
    for at in range(0, len(word), width):
        part = word[at : at + width]
        if not part.isprintable() and not part.translate(_ASCII_CONTROLS).isprintable():
            return True
    return False


def _end_of_skipped(sql: str, pos: int) -> int:
    """Where a skipped versioned comment whose body starts at ``pos`` ends (just after its
    ``*/``): the servers' ``consume_comment(1)``, which lets ``/* ... */`` nest once inside."""
    while True:
        mark = _search(_NESTING, sql, pos)
        if mark is None:
            return -1
        if mark.group() == "*/":
            return mark.end()
        inner = _find(sql, "*/", mark.end())
        if inner < 0:
            return -1
        pos = inner + 2


def _executable(sql: str, ts: int, te: int, flavor: ServerFlavor | None) -> tuple[bool, int]:
    """An executable-comment marker ``sql[ts:te]`` (``/*!`` or ``/*M!``) as ``flavor`` reads
    it: ``(True, where the code starts)`` or ``(False, just after the skipped comment)``."""
    mariadb_marker = te - ts == 4
    if flavor is not None and mariadb_marker and not flavor.mariadb:
        end = sql.find("*/", ts + 2)  # MySQL: an ordinary comment
        if end < 0:
            raise _error(sql, ts, "unterminated comment")
        return False, end + 2
    digits = 0
    while digits < 6 and te + digits < len(sql) and sql[te + digits] in _DIGITS:
        digits += 1
    if digits < 5:
        if flavor is None and mariadb_marker:
            raise _error(sql, ts, "a MariaDB executable comment for an unknown server")
        return True, te
    if flavor is None:
        raise _error(sql, ts, "a versioned executable comment for an unknown server")
    if flavor.mariadb:
        length = 6 if digits >= 6 else 5
    else:
        six = flavor.version >= 80100 and digits == 6 and sql[te + 6 : te + 7] in _MYSQL_SPACE
        length = 6 if six else 5
    version = int(sql[te : te + length])
    if flavor.mariadb and not mariadb_marker and version == 99997:
        raise _error(sql, ts, "a Galera consistency-check comment")
    code = version <= flavor.version and (
        not flavor.mariadb or version < 50700 or version > 99999 or mariadb_marker
    )
    if code:
        return True, te + length
    end = _end_of_skipped(sql, te)
    if end < 0:
        raise _error(sql, ts, "unterminated comment")
    return False, end


# Two minus signs that are not a comment ("--" followed by neither a space nor a control
# character) must not end up followed by one in the executable text: a comment or an
# executable-comment marker cut from right after them becomes a space there, and the end of a
# statement's text is the end of the input to the server -- either makes "--" a comment in the
# text ("SELECT 0 --/**/ 1, 'x<LF> ...'": the text's comment ends at the string's line feed and
# the rest of the string is code). Refused.
_DASHES: Final = "a comment or the end of the statement right after '--' that is no comment"


def _dashes(sql: str, end: int, prev_image: str) -> bool:
    """Whether the statement's last token, ending at ``end``, is a ``-`` right after another."""
    return prev_image == "-" and end >= 2 and sql[end - 2] == "-"


# Under IGNORE_SPACE a built-in's name of sql_functions[] followed by a comment (executable-
# comment markers included) is a name for MariaDB even when "(" follows the comment, but the
# executable text, where the comment is a space, would call the built-in ("SELECT system_user
# /*!*/ ()": a stored function for MariaDB and the analysis, the shard's own SYSTEM_USER() in
# the text a sharded database's partitions run). Refused.
_SPACED: Final = "a comment after a built-in function's name under IGNORE_SPACE"


def _spaced_name(sql: str, end: int, kind: TokenKind | None, image: str) -> bool:
    """Whether the last token, ending at ``end``, is an unquoted built-in's name read as a
    name (:data:`~proxy.sql.mariadb_words.SPACED_FUNCTIONS` not followed at once by ``(``)."""
    return (
        kind is TokenKind.IDENT
        and image[:1] == "`"
        and sql[end - 1] not in '`"'
        and image[1:-1].upper() in SPACED_FUNCTIONS
    )


# The first MariaDB version whose reading of a comment in executable code is not checked (the
# reading was checked against 10.11; 12.0 added optimizer hints to the lexer's comments).
_NESTED_UNCHECKED: Final = 120000

_NUMERIC = (TokenKind.NUMBER, TokenKind.HEX, TokenKind.BIT)
_LITERAL_IMAGES: Final = frozenset({"?", "'?'", "NULL", "TRUE", "FALSE"})

# Where a collapsible list stands (``expect``): before an element, after its sign, after it.
_ELEMENT = 0
_SIGNED = 1
_AFTER = 2

# A statement as _scan gives it: images, executable text, start, end, tokens.
_Raw = tuple[list[str], str, int, int, list[Token] | None]


def _scan(sql: str, mode: LexMode, flavor: ServerFlavor | None, with_tokens: bool) -> list[_Raw]:
    nul = "\x00" in sql  # allowed in string literals only; checked where it may hide
    match = _PATTERNS[mode].match
    bulk_in: re.Pattern[str] | None = None
    bulk_rows: re.Pattern[str] | None = None
    if not with_tokens:
        bulk_in, bulk_rows = _BULK[mode]
    backslash = not mode.no_backslash_escapes
    dollar_quotes = flavor is not None and not flavor.mariadb and flavor.version >= 90000
    n = len(sql)
    whole_from = n - _SLICE  # from here on, one match call reads the rest of the text
    out: list[_Raw] = []
    pos = 0
    in_exec = False
    stmt_start = 0
    # per statement
    images: list[str] = []
    tokens: list[Token] | None = [] if with_tokens else None
    first = -1  # start of the first token
    last_end = 0  # end of the last token
    parts: list[str] = []  # text pieces before seg_start (only when there are cuts)
    seg_start = 0
    parts_at_last = 0
    seg_at_last = 0
    prev_kind: TokenKind | None = None
    prev_image = ""
    prev_end = -1
    # literal-list collapsing (module doc): the list being read, if any
    list_at = -1  # index in images of its "(", or -1
    list_in = False  # an IN list (else a VALUES row)
    expect = _ELEMENT
    keep_to = -1  # IN list: images from here on are dropped when it closes
    rows_anchor = -1  # after an all-literal VALUES row: len(images) just after it, or -1

    while True:
        if pos >= whole_from:
            m = match(sql, pos)
            assert m is not None  # the pattern always matches (EOF and BAD alternatives)
            g = m.lastindex
            ts = m.start(g)  # type: ignore[arg-type]
            te = m.end()
        else:
            # One slice only (_SLICE): the match stands if the slice's end cannot have changed
            # it -- the token ends inside the slice and no alternative tried before it failed
            # for want of the text beyond (a cut X'..' read as the word X, a cut '.5e7' read
            # as '.', a '--;' whose lookahead saw the slice's end as the text's).
            cut = pos + _SLICE
            m = match(sql, pos, cut)
            assert m is not None
            g = m.lastindex
            ts = m.start(g)  # type: ignore[arg-type]
            te = m.end()
            if (
                te == cut
                or g in _UNSURE
                or (g == _G_WORD and sql[te] == "'")
                or (g == _G_DASH and sql[ts + 2] == ";")
                or (g == _G_OP and sql[ts] == "." and sql[te] in _DIGITS)
            ):
                g, ts, te = _resolve(sql, pos, mode)
        kind: TokenKind
        image: str
        value: str
        if g == _G_WORD:
            raw = sql[ts:te]
            if (prev_image == "." and prev_end == ts) or (
                te + 1 < n
                and sql[te] == "."
                and (sql[te + 1] in _ASCII_IDENT or sql[te + 1] >= "\x80")
            ):
                kind = TokenKind.IDENT
                image = _quote_ident(raw)
            elif raw.isascii():
                if "$" in raw:
                    if dollar_quotes and raw[0] == "$":
                        raise _error(sql, ts, "a word starting with $ (dollar quoting)")
                    kind = TokenKind.IDENT
                    image = _quote_ident(raw)
                else:
                    kind = TokenKind.WORD
                    # (a word longer than every keyword is none: not upper-cased, which holds
                    # the interpreter lock for milliseconds a megabyte)
                    upper = raw.upper() if len(raw) <= _LONGEST_KEYWORD else ""
                    image = upper if upper in RESERVED_WORDS else raw
                    if upper in SPACED_FUNCTIONS and not _called(sql, te, mode.ignore_space):
                        # a built-in only when "(" follows (module doc): a name otherwise
                        kind = TokenKind.IDENT
                        image = _quote_ident(raw)
            else:
                if _bad_word(raw):
                    raise _error(sql, ts, "unsupported character in a name")
                kind = TokenKind.IDENT
                image = _quote_ident(raw)
            value = raw
        elif g == _G_OP:
            raw = sql[ts:te]
            if raw == ";":
                if in_exec:
                    raise _error(sql, ts, "a ';' inside an executable comment")
                if _dashes(sql, last_end, prev_image):
                    raise _error(sql, ts, _DASHES)
                if first >= 0:
                    if parts_at_last:
                        text = "".join(parts[:parts_at_last]) + sql[seg_at_last:last_end]
                    else:
                        text = sql[first:last_end]
                    out.append((images, text, stmt_start, te, tokens))
                    stmt_start = te
                    if len(out) > MAX_STATEMENTS:
                        raise LexError(not_supported(TOO_MANY_STATEMENTS), ts, "too many")
                images = []
                tokens = [] if with_tokens else None
                first = -1
                parts = []
                prev_kind = None
                prev_image = ""
                prev_end = -1
                list_at = rows_anchor = -1
                pos = te
                continue
            if raw == "." and prev_end == ts and prev_kind in _NUMERIC:
                raise _error(sql, ts, "a dot right after a number")
            kind = TokenKind.OP
            image = value = raw
        elif g == _G_NUM:
            raw = sql[ts:te]
            if prev_image == "." or (
                raw[0] == "." and prev_end == ts and prev_kind is not TokenKind.OP
            ):
                raise _error(sql, ts, "a number right after a dot")
            if raw[:2] == "0x":
                kind = TokenKind.HEX
            elif raw[:2] == "0b":
                kind = TokenKind.BIT
            else:
                kind = TokenKind.NUMBER
            image = "?"
            value = raw
        elif g in (_G_SQ, _G_NSTR) or (g == _G_DQ and not mode.ansi_quotes):
            raw = sql[ts:te]
            kind = TokenKind.STRING
            image = "'?'"
            if with_tokens:
                body = raw[2:-1] if g == _G_NSTR else raw[1:-1]
                value = unescape_string(body, raw[-1], backslash)
            else:
                value = raw
        elif g in (_G_BQ, _G_DQ):
            raw = sql[ts:te]
            if nul and "\x00" in raw:
                raise _error(sql, ts, "NUL character in a quoted name")
            q = raw[0]
            value = sliced_undoubled(raw[1:-1], q)
            kind = TokenKind.IDENT
            image = _quote_ident(value)
        elif g == _G_EOF:
            break
        elif g in (_G_HASH, _G_DASH, _G_COMMENT, _G_EXEC_OPEN):
            if in_exec:
                # In the code of an executable comment MariaDB skips a comment and reads on
                # in the code (its lexer's save/restore_in_comment_state): a "/* */" to its
                # first "*/", "#" and "-- " to the end of the line, a skipped versioned
                # comment as anywhere else (consume_comment(1)). An executable comment there
                # is code whose "*/" ends both (the outer one's "*/" is then "*" and "/"):
                # refused, as any comment in it for a server not known to be MariaDB, or one
                # of a MariaDB series this reading was not checked against (12.0 and later
                # changed the lexer's comment handling for optimizer hints).
                if flavor is None or not flavor.mariadb or flavor.version >= _NESTED_UNCHECKED:
                    raise _error(sql, ts, "comment inside an executable comment")
                if g == _G_EXEC_OPEN:
                    code, te = _executable(sql, ts, te, flavor)
                    if code:
                        raise _error(sql, ts, "executable comment inside an executable comment")
            elif g == _G_EXEC_OPEN:
                in_exec, te = _executable(sql, ts, te, flavor)
            # (code opened: sql[ts:te] is its marker, no NUL)
            if nul and "\x00" in sql[ts:te]:
                raise _error(sql, ts, "NUL character in a comment")
            if prev_end == ts and _dashes(sql, ts, prev_image):
                raise _error(sql, ts, _DASHES)
            if mode.ignore_space and _spaced_name(sql, prev_end, prev_kind, prev_image):
                raise _error(sql, ts, _SPACED)
            if first >= 0:
                parts.append(sql[seg_start:ts])
                parts.append(" ")
                seg_start = te
            pos = te
            continue
        elif g == _G_EXEC_CLOSE:
            if not in_exec:
                # '*' followed by '/': emit the '*', rescan from the '/'.
                te = ts + 1
                kind = TokenKind.OP
                image = value = raw = "*"
            else:
                in_exec = False
                if prev_end == ts and _dashes(sql, ts, prev_image):
                    raise _error(sql, ts, _DASHES)
                if mode.ignore_space and _spaced_name(sql, prev_end, prev_kind, prev_image):
                    raise _error(sql, ts, _SPACED)
                if first >= 0:
                    parts.append(sql[seg_start:ts])
                    parts.append(" ")
                    seg_start = te
                pos = te
                continue
        elif g in (_G_HEXSTR, _G_BITSTR):
            raw = sql[ts:te]
            body = raw[2:-1]
            if g == _G_HEXSTR:
                if len(body) % 2 or _run(_HEX_RUN, body, 0) != len(body):
                    raise _error(sql, ts, "invalid hexadecimal literal")
                kind = TokenKind.HEX
            else:
                if _run(_BIT_RUN, body, 0) != len(body):
                    raise _error(sql, ts, "invalid bit literal")
                kind = TokenKind.BIT
            image = "?"
            value = raw
        elif g == _G_SYSVAR:
            raw = sql[ts:te]
            kind = TokenKind.SYS_VAR
            value = sliced_lower(raw[2:])
            image = "@@" + value
        elif g == _G_USERVAR:
            raw = sql[ts:te]
            if nul and "\x00" in raw:
                raise _error(sql, ts, "NUL character in a variable name")
            kind = TokenKind.USER_VAR
            q = raw[1]
            if q == "'" or (q == '"' and not mode.ansi_quotes):
                value = unescape_string(raw[2:-1], q, backslash)
            elif q == '"' or q == "`":
                value = sliced_undoubled(raw[2:-1], q)
            else:
                value = raw[1:]
            image = "@" + value if _plain_name(value) else "@" + _quote_ident(value)
        elif g == _G_PARAM:
            raw = value = image = "?"
            kind = TokenKind.PARAM
        elif g == _G_UNTERMINATED_COMMENT:
            raise _error(sql, ts, "unterminated comment")
        else:  # _G_BAD
            c = sql[ts]
            if c in "'\"`":
                raise _error(sql, ts, "unterminated quoted string or name")
            raise _error(sql, ts)

        # a token of this statement
        if first < 0:
            first = ts
            seg_start = ts
            parts_at_last = 0
        if tokens is not None:
            tokens.append(Token(kind, raw, value, image, ts))
        if list_at < 0 and rows_anchor < 0 and image != "(":
            images.append(image)  # the common case: no literal list here
            if len(images) > MAX_TOKENS:
                raise LexError(not_supported(TOO_MANY_TOKENS), ts, "too many tokens")
        else:
            keep = True  # whether the image goes into the key
            if list_at >= 0:
                if expect == _ELEMENT:
                    if image in _LITERAL_IMAGES:
                        expect = _AFTER
                    elif image == "-" or image == "+":
                        expect = _SIGNED
                    else:
                        list_at = rows_anchor = -1
                elif expect == _SIGNED:
                    if image == "?":
                        expect = _AFTER
                    else:
                        list_at = rows_anchor = -1
                elif image == ",":
                    expect = _ELEMENT
                    if list_in and keep_to < 0:
                        keep_to = len(images)
                elif image == ")":
                    list_at = -1
                    if list_in:
                        if keep_to >= 0:
                            del images[keep_to:]
                    elif rows_anchor >= 0:
                        del images[rows_anchor:]  # a further row: dropped with its comma
                        keep = False
                    else:
                        rows_anchor = len(images) + 1  # the first row: kept
                else:
                    list_at = rows_anchor = -1
            elif image == "(":
                if prev_image == "IN" or prev_image == "VALUES":
                    list_at, list_in, expect, keep_to = (
                        len(images),
                        prev_image == "IN",
                        _ELEMENT,
                        -1,
                    )
                    rows_anchor = -1
                elif prev_kind is TokenKind.WORD and _is_keyword(prev_image, "VALUE"):
                    list_at, list_in, expect, keep_to = len(images), False, _ELEMENT, -1
                    rows_anchor = -1
                elif rows_anchor >= 0 and len(images) == rows_anchor + 1:
                    list_at, list_in, expect, keep_to = len(images), False, _ELEMENT, -1
                else:
                    rows_anchor = -1
            elif rows_anchor >= 0 and not (image == "," and len(images) == rows_anchor):
                rows_anchor = -1
            if keep:
                images.append(image)
            if bulk_in is not None and bulk_rows is not None:
                if list_at >= 0:
                    if list_in and expect == _AFTER and keep_to < 0:
                        # only when the list's literals run to its closing parenthesis
                        skipped = _skip(bulk_in, sql, te)
                        if skipped > te and sql.startswith(")", _run(_SPACE_RUN, sql, skipped)):
                            keep_to = len(images)
                            te = skipped
                elif rows_anchor == len(images):
                    skipped = _skip(bulk_rows, sql, te)
                    if skipped > te:
                        te = skipped
                        kind = TokenKind.OP
                        image = ")"
        last_end = te
        if parts:
            parts_at_last = len(parts)
            seg_at_last = seg_start
        prev_kind = kind
        prev_image = image
        prev_end = te
        pos = te

    if in_exec:
        raise _error(sql, n, "unterminated executable comment")
    if _dashes(sql, last_end, prev_image):
        raise _error(sql, last_end, _DASHES)
    if first >= 0:
        if parts_at_last:
            text = "".join(parts[:parts_at_last]) + sql[seg_at_last:last_end]
        else:
            text = sql[first:last_end]
        out.append((images, text, stmt_start, n, tokens))
        if len(out) > MAX_STATEMENTS:
            raise LexError(not_supported(TOO_MANY_STATEMENTS), first, "too many")
    elif out:
        # trailing comments, whitespace or empty statements belong to the last statement
        images, text, start, _end, tokens = out[-1]
        out[-1] = (images, text, start, n, tokens)
    return out


# lex()'s answers, remembered (a sharded session lexes each statement it prepares several
# times: its analysis, the copy its metadata comes from, its key slots, each partition's text;
# every session anew): texts up to _LEXED_LONGEST characters, up to _LEXED_CHARACTERS of
# them in all (which bounds the tokens' memory), forgotten together when full.
_LEXED_CHARACTERS = 65536
_LEXED_LONGEST = 2048
_lexed: dict[tuple[str, LexMode, ServerFlavor | None], tuple[LexedStatement, ...]] = {}
_lexed_characters = 0


def lex(
    sql: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> list[LexedStatement]:
    """Split ``sql`` into its non-empty statements as a ``flavor`` server reads them in
    ``mode``; raises :class:`LexError` (1064). (The same text, mode and flavor always lex the
    same: a short text's statements, immutable, are remembered; one that does not lex is
    lexed again each time.)"""
    global _lexed_characters
    key = (sql, mode, flavor)
    short = len(sql) <= _LEXED_LONGEST
    found = _lexed.get(key) if short else None
    if found is None:
        found = tuple(
            LexedStatement(tuple(tokens or ()), tuple(images), text, " ".join(images), start, end)
            for images, text, start, end, tokens in _scan_as(sql, mode, flavor, True)
        )
        if short:
            if _lexed_characters + len(sql) > _LEXED_CHARACTERS:
                _lexed.clear()
                _lexed_characters = 0
            _lexed[key] = found
            _lexed_characters += len(sql)
    return list(found)


def shapes(
    sql: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> list[Shape]:
    """:func:`lex` without tokens: one :class:`Shape` per statement."""
    return [
        Shape(" ".join(images), images, text, start, end)
        for images, text, start, end, _tokens in _scan_as(sql, mode, flavor, False)
    ]
