"""A MySQL/MariaDB-faithful lexer: statements as the server will read them.

The proxy must see exactly the tokens the shard will see, so this is a hand-written scanner that
follows MariaDB's ``Lex_input_stream::lex_one_token`` (``sql/sql_lex.cc``) for everything that
decides token boundaries:

* strings ``'...'`` and ``"..."`` with doubled-quote escapes and, unless ``NO_BACKSLASH_ESCAPES``,
  backslash escapes; ``N'...'``; ``X'hex'`` and ``B'bits'``; ``"..."`` is an identifier under
  ``ANSI_QUOTES``; backquoted identifiers with doubled backquotes;
* comments ``# ...``, ``-- ...`` (only when the second dash is followed by a space, a control
  character or the end of the input: ``--x`` is two minus signs) and ``/* ... */`` (not nested);
* executable comments ``/*! ... */``, ``/*!NNNNN ... */``, ``/*M! ... */`` and
  ``/*M!NNNNNN ... */`` (5 or 6 version digits): their content is code. The lexer *unwraps* them
  -- the opening marker with its digits and the closing ``*/`` are dropped -- and the executable
  text of a statement is this unwrapped form with every ordinary comment replaced by one space.
  That text is what the proxy forwards, so the server executes exactly what was analysed,
  whatever its version (a versioned comment the server would have skipped is executed too);
* a word immediately after ``.``, or immediately followed by ``.`` and an identifier character,
  is an identifier even if it is a reserved word (MariaDB's ``MY_LEX_IDENT_SEP``).

It is deliberately stricter than the server where the server's rules are subtle, and refuses
(error 1064) rather than guess: a number running into identifier characters (``1abc``, ``0x1g``,
``1e5x``), a number right after ``.``, a ``.`` right after a number, comments nested in an
executable comment, a version number of other than 5 or 6 digits, ``\\N`` and other backslashes
outside strings, ``{ } [ ] :``, control characters outside strings (NUL inside a string literal
is data, as the server reads it; anywhere else -- comments, quoted names -- it is refused), a
lone ``@``, and Unicode spaces or control characters in unquoted names. Unterminated strings, quoted
identifiers and comments are errors too (the server reads an unterminated backquoted name to
the end of the input; the proxy refuses it).

Every statement also gets a *shape key*: its tokens with every literal replaced by ``?``
(numbers, hexadecimal and bit literals, ``?`` parameter markers) or ``'?'`` (character strings),
reserved words upper-cased, quoted identifiers (and words that must be identifiers) in one
canonical backquoted form, user variables as ``@name``, system variables lower-cased, joined by
single spaces, without comments. The key is itself valid SQL for the analyser; two statements
with the same key differ only in literal values. ``?`` (a prepared-statement parameter marker) is
a literal too.

``lex()`` returns tokens, executable text, key and offsets per statement; ``shapes()`` is the
same scan without building tokens (the cache-hit path). Both raise :class:`LexError` (1064).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from auth.errors import SqlError, parse_error

__all__ = [
    "DEFAULT_MODE",
    "RESERVED_WORDS",
    "LexError",
    "LexMode",
    "LexedStatement",
    "Token",
    "TokenKind",
    "lex",
    "shapes",
]


@dataclass(frozen=True, slots=True)
class LexMode:
    """The parts of ``sql_mode`` that change how text is cut into tokens."""

    ansi_quotes: bool = False
    no_backslash_escapes: bool = False


DEFAULT_MODE: Final = LexMode()


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
    tokens: tuple[Token, ...]
    text: str  # executable text: comments removed, executable comments unwrapped
    key: str  # shape key
    start: int  # offset of the first token in the input
    end: int  # offset just after the statement's terminating ';' (or the end of the input)


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

_IDENT_CHARS = r"0-9A-Za-z_$\u0080-\U0010ffff"
_NOT_IDENT = rf"(?![{_IDENT_CHARS}])"
_ASCII_IDENT = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SQ_BS = r"'(?:[^'\\]++|\\[\s\S]|'')*+'"
_SQ_NOBS = r"'(?:[^']++|'')*+'"
_DQ_BS = r'"(?:[^"\\]++|\\[\s\S]|"")*+"'
_DQ_NOBS = r'"(?:[^"]++|"")*+"'
_BQ = r"`(?:[^`]++|``)*+`"

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

_WS = "[ \t\n\r\x0b\x0c]*"


def _master(mode: LexMode) -> re.Pattern[str]:
    sq = _SQ_NOBS if mode.no_backslash_escapes else _SQ_BS
    dq_string = _DQ_NOBS if mode.no_backslash_escapes else _DQ_BS
    dq = _DQ_NOBS if mode.ansi_quotes else dq_string
    alternatives = [
        r"[xX]'[^']*'",  # 1 X'...'
        r"[bB]'[^']*'",  # 2 B'...'
        r"[nN]" + sq,  # 3 N'...'
        rf"[A-Za-z_$\u0080-\U0010ffff][{_IDENT_CHARS}]*",  # 4 word
        r"(?>0x[0-9A-Fa-f]+|0b[01]+|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?"
        r"|\.[0-9]+(?:[eE][-+]?[0-9]+)?)" + _NOT_IDENT,  # 5 number
        sq,  # 6
        dq,  # 7
        _BQ,  # 8
        r"@@[0-9A-Za-z_$]+(?:\.[0-9A-Za-z_$]+)?(?![" + _IDENT_CHARS + r".`'\"@])",  # 9
        r"@(?:[0-9A-Za-z_$.]+(?![\u0080-\U0010ffff])|" + sq + "|" + dq + "|" + _BQ + ")",  # 10
        r"\#[^\n]*",  # 11
        r"--(?=[\x00-\x20\x7f]|\Z)[^\n]*",  # 12
        r"/\*M?![0-9]*",  # 13
        r"/\*[\s\S]*?\*/",  # 14
        r"/\*",  # 15
        r"\*/",  # 16
        r"<=>|<<|>>|<=|>=|<>|!=|:=|&&|\|\||[-+*/%=<>!~&|^(),.;]",  # 17
        r"\?" + _NOT_IDENT,  # 18
        r"\Z",  # 19
        r"[\s\S]",  # 20
    ]
    return re.compile(_WS + "(?:" + "|".join(f"({a})" for a in alternatives) + ")")


_PATTERNS: dict[LexMode, re.Pattern[str]] = {
    LexMode(a, b): _master(LexMode(a, b)) for a in (False, True) for b in (False, True)
}

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "0": "\0", "Z": "\x1a"}


def unescape_string(body: str, quote: str, backslash_escapes: bool) -> str:
    """The value of a string literal's body (between the quotes), as MariaDB's my_unescape."""
    if "\\" not in body and quote not in body:
        return body
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if backslash_escapes and c == "\\" and i + 1 < n:
            i += 1
            c = body[i]
            if c in ("%", "_"):
                out.append("\\" + c)
            else:
                out.append(_ESCAPES.get(c, c))
        elif c == quote:
            out.append(c)
            i += 1  # the doubled quote
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _error(sql: str, pos: int, what: str = "syntax error") -> LexError:
    line = sql.count("\n", 0, pos) + 1
    return LexError(parse_error(sql[pos:], line), pos, what)


def _bad_word(word: str) -> bool:
    """A non-ASCII space, control, format or unassigned character in an unquoted name."""
    return any(ord(c) >= 0x80 and unicodedata.category(c)[0] in "ZC" for c in word)


# Statement under construction: a mutable record kept as local variables in ``_scan`` for speed.
_Raw = tuple[str, str, int, int, list[Token] | None]  # key, text, start, end, tokens


def _scan(sql: str, mode: LexMode, with_tokens: bool) -> list[_Raw]:
    nul = "\x00" in sql  # allowed in string literals only; checked where it may hide
    match = _PATTERNS[mode].match
    backslash = not mode.no_backslash_escapes
    n = len(sql)
    out: list[_Raw] = []
    pos = 0
    in_exec = False
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

    while True:
        m = match(sql, pos)
        assert m is not None  # the pattern always matches (EOF and BAD alternatives)
        g = m.lastindex
        ts = m.start(g)  # type: ignore[arg-type]
        te = m.end()
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
                    kind = TokenKind.IDENT
                    image = _quote_ident(raw)
                else:
                    kind = TokenKind.WORD
                    upper = raw.upper()
                    image = upper if upper in RESERVED_WORDS else raw
            else:
                if _bad_word(raw):
                    raise _error(sql, ts, "unsupported character in a name")
                kind = TokenKind.IDENT
                image = _quote_ident(raw)
            value = raw
        elif g == _G_OP:
            raw = sql[ts:te]
            if raw == ";":
                if first >= 0:
                    if parts_at_last:
                        text = "".join(parts[:parts_at_last]) + sql[seg_at_last:last_end]
                    else:
                        text = sql[first:last_end]
                    out.append((" ".join(images), text, first, te, tokens))
                images = []
                tokens = [] if with_tokens else None
                first = -1
                parts = []
                prev_kind = None
                prev_image = ""
                prev_end = -1
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
            value = raw[1:-1].replace(q + q, q)
            kind = TokenKind.IDENT
            image = _quote_ident(value)
        elif g == _G_EOF:
            break
        elif g in (_G_HASH, _G_DASH, _G_COMMENT, _G_EXEC_OPEN):
            if nul and "\x00" in sql[ts:te]:
                raise _error(sql, ts, "NUL character in a comment")
            if in_exec:
                raise _error(sql, ts, "comment inside an executable comment")
            if g == _G_EXEC_OPEN:
                digits = te - ts - (4 if sql[ts + 2] == "M" else 3)
                if digits not in (0, 5, 6):
                    raise _error(sql, ts, "executable comment version must have 5 or 6 digits")
                in_exec = True
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
                if len(body) % 2 or any(c not in "0123456789abcdefABCDEF" for c in body):
                    raise _error(sql, ts, "invalid hexadecimal literal")
                kind = TokenKind.HEX
            else:
                if any(c not in "01" for c in body):
                    raise _error(sql, ts, "invalid bit literal")
                kind = TokenKind.BIT
            image = "?"
            value = raw
        elif g == _G_SYSVAR:
            raw = sql[ts:te]
            kind = TokenKind.SYS_VAR
            value = raw[2:].lower()
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
                value = raw[2:-1].replace(q + q, q)
            else:
                value = raw[1:]
            image = "@" + value if _PLAIN_NAME.fullmatch(value) else "@" + _quote_ident(value)
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
        images.append(image)
        if tokens is not None:
            tokens.append(Token(kind, raw, value, image, ts))
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
    if first >= 0:
        if parts_at_last:
            text = "".join(parts[:parts_at_last]) + sql[seg_at_last:last_end]
        else:
            text = sql[first:last_end]
        out.append((" ".join(images), text, first, n, tokens))
    return out


_NUMERIC = (TokenKind.NUMBER, TokenKind.HEX, TokenKind.BIT)


def lex(sql: str, mode: LexMode = DEFAULT_MODE) -> list[LexedStatement]:
    """Split ``sql`` into its non-empty statements; raises :class:`LexError` (1064)."""
    return [
        LexedStatement(tuple(tokens or ()), text, key, start, end)
        for key, text, start, end, tokens in _scan(sql, mode, True)
    ]


def shapes(sql: str, mode: LexMode = DEFAULT_MODE) -> list[tuple[str, str, int]]:
    """``(shape key, executable text, end offset)`` per statement, without building tokens."""
    return [(key, text, end) for key, text, _start, end, _tokens in _scan(sql, mode, False)]
