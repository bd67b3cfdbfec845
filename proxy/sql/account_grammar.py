"""Parser for the MySQL account statements shardgate answers itself (PolarDB-X 1.0 semantics).

``parse_account_statement(sql, mode, flavor)`` turns the text of one CREATE USER, DROP USER, SET
PASSWORD, GRANT, REVOKE or SHOW GRANTS statement into a frozen value. It is a hand-written
recursive-descent parser over the tokens of :mod:`proxy.sql.lexer` -- the one lexer, so names,
strings and passwords are read exactly as the analyser and MariaDB read them in the session's
``sql_mode`` (sqlglot only sees these statements as opaque commands). It is pure: no I/O, no
catalog access; names, hosts, passwords and privileges are returned as written and validated by
the caller.

Accepted syntax (MySQL 8, plus the MySQL 5.7 ``GRANT ... IDENTIFIED BY`` the PolarDB-X seed uses)::

    CREATE USER [IF NOT EXISTS] user_spec [, user_spec] ... [WITH MAX_USER_CONNECTIONS n]
    DROP USER [IF EXISTS] user [, user] ...
    SET PASSWORD [FOR user | FOR CURRENT_USER[()]] {= | :=} {PASSWORD('auth') | 'auth'}
        [RETAIN CURRENT PASSWORD]
    ALTER USER {user | CURRENT_USER[()]} DISCARD OLD PASSWORD
    ALTER USER {user | CURRENT_USER[()]} IDENTIFIED [WITH plugin] BY 'auth'
        [RETAIN CURRENT PASSWORD]                  (SET PASSWORD [FOR user] = 'auth' ...)
    ALTER USER user [, user] ... {[WITH MAX_USER_CONNECTIONS n] [ACCOUNT UNLOCK]}  (one or both)
    FLUSH [NO_WRITE_TO_BINLOG | LOCAL] PRIVILEGES  (privileges are always current: no effect)
    GRANT priv [, priv] ... ON [TABLE | PROCEDURE | FUNCTION] level
        TO user_spec [, user_spec] ... [WITH {GRANT OPTION | MAX_USER_CONNECTIONS n} ...]
    REVOKE priv [, priv] ... ON [TABLE | PROCEDURE | FUNCTION] level FROM user [, user] ...
    REVOKE ALL [PRIVILEGES], GRANT OPTION FROM user [, user] ...
    SHOW GRANTS [FOR user | FOR CURRENT_USER[()]]

    user:       name [@host]          (no host means '%')
    name:       bare identifier | `backquoted` | 'single' | "double"
    host:       'quoted' | "quoted" | `quoted` | unquoted run of [0-9A-Za-z._$]
    user_spec:  user [IDENTIFIED [WITH plugin] BY 'auth']
    plugin:     mysql_native_password | caching_sha2_password (bare, quoted or backquoted; every
                account can log in with both, so naming one changes nothing else)
    priv:       ALL [PRIVILEGES] (alone) | word [word] [(column [, column] ...)]
    level:      * | *.* | db.* | db.tbl | tbl
    n:          unsigned integer, 0 .. 4294967295 (0: the server's default limit, as in MySQL)

Lexical rules are the lexer's, in the given ``LexMode`` and for the given server flavor
(executable comments; ``None``: those whose reading depends on the server are refused): keywords
in any letter case; comments skipped; strings with doubled quotes and, unless
``NO_BACKSLASH_ESCAPES``, backslash escapes (a password is the string's value as MariaDB reads
it); ``"..."`` is a string, or a quoted name under ``ANSI_QUOTES``; ``N'...'`` is not a string
here (MariaDB's grammar wants a plain one). The host follows the ``@`` immediately (``u @h`` is
fine, ``u@ h`` is not: MariaDB reads the host name right after the ``@``). Bare names may not be
MySQL reserved words (nor numbers: ``123`` is a number). A bare name may start with a digit
(``1abcd``, an identifier to MySQL; the lexer refuses such tokens elsewhere, see
``lex_with_digit_names``), so that the name rules, not the syntax, judge it. A trailing ``;``
(and empty statements after it) is allowed; another statement after it is an error.

Errors (all ``auth.errors.SqlError``):

* 1064 (``parse_error``) for anything not recognised. Its ``near`` text is the raw input from the
  first character of the token where parsing stopped to the end of the input (``''`` at the end
  of input), cut to 80 characters by ``parse_error``; ``line`` is the 1-based line of that token.
  Text the lexer refuses is its 1064 (for an unterminated string, backquoted name or comment,
  near the opening quote or ``/*``).
* 1235 (``not_supported``) for recognised MySQL syntax this proxy does not implement:
  ``IDENTIFIED WITH`` another plugin, or without ``BY``, ``IDENTIFIED BY PASSWORD``,
  ``IDENTIFIED BY RANDOM PASSWORD``, CREATE USER options (``DEFAULT ROLE``, ``REQUIRE ...``,
  ``WITH MAX_...`` other than ``MAX_USER_CONNECTIONS``, ``PASSWORD EXPIRE``, ``ACCOUNT
  LOCK``, ...), GRANT's ``REQUIRE``/``WITH MAX_...`` (other than ``MAX_USER_CONNECTIONS``)/
  ``AS``, ALTER USER's other resource limits and ``ACCOUNT LOCK``, ``ALTER USER ... IDENTIFIED``
  of several accounts, ``SET PASSWORD ... TO RANDOM`` / ``REPLACE``, and
  ``CURRENT_USER()`` as the account of CREATE USER, DROP USER, GRANT or REVOKE. These are
  raised as soon as the construct is seen. Every other ALTER USER is
  ``UnsupportedAccountStatement('ALTER USER')``.

Statements recognised but not implemented come back as ``UnsupportedAccountStatement(verb)`` for
the caller to refuse: ``RENAME USER``, ``ALTER USER``, ``CREATE ROLE``, ``DROP ROLE``,
``SET DEFAULT ROLE``, ``SET ROLE``, ``SHOW CREATE USER`` (recognised by their leading keywords,
the rest is only tokenized), and ``GRANT ROLE`` / ``REVOKE ROLE`` (``GRANT r [, r] TO user ...
[WITH ADMIN OPTION]``, ``REVOKE r [, r] FROM user ...``) and ``GRANT PROXY`` / ``REVOKE PROXY``
(``GRANT PROXY ON user TO user ...``), which are parsed in full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NoReturn, TypeAlias

from auth.errors import SqlError, not_supported, parse_error
from proxy.sql.lexer import (
    DEFAULT_MODE,
    LexedStatement,
    LexError,
    LexMode,
    ServerFlavor,
    Token,
    TokenKind,
    lex,
)

__all__ = [
    "AccountStatement",
    "AlterUser",
    "CreateUser",
    "CurrentUser",
    "DiscardOldPassword",
    "DropUser",
    "FlushPrivileges",
    "Grant",
    "PrivItem",
    "PrivLevel",
    "Revoke",
    "RevokeAll",
    "SetPassword",
    "ShowGrants",
    "UnsupportedAccountStatement",
    "UserRef",
    "UserSpec",
    "lex_with_digit_names",
    "parse_account_statement",
]

# --------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class UserRef:
    """An account ``user@'host'``; a name without ``@host`` means host ``'%'``."""

    user: str
    host: str


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """``CURRENT_USER`` or ``CURRENT_USER()``."""


@dataclass(frozen=True, slots=True)
class UserSpec:
    """An account with an optional ``IDENTIFIED BY 'password'``."""

    user: UserRef
    password: str | None


@dataclass(frozen=True, slots=True)
class PrivLevel:
    """``db.*`` -> (db, None); ``db.t`` -> (db, t); ``t`` -> (None, t);
    ``*`` -> (None, None) meaning the current database; ``*.*`` -> (None, None, is_global=True).

    Names are as written (case preserved, quotes removed). For a routine level
    (``Grant.routine``), ``table`` is the routine name.
    """

    db: str | None
    table: str | None
    is_global: bool = False


@dataclass(frozen=True, slots=True)
class PrivItem:
    """A privilege: upper-cased words joined by one space (``SELECT``, ``CREATE VIEW``,
    ``GRANT OPTION``, ``ALL`` for ``ALL [PRIVILEGES]``, or any other single word, e.g. a MySQL
    dynamic privilege); ``columns`` as written for column-level ``SELECT (a, b)``."""

    name: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CreateUser:
    users: tuple[UserSpec, ...]
    if_not_exists: bool
    max_user_connections: int | None = None  # WITH MAX_USER_CONNECTIONS n


@dataclass(frozen=True, slots=True)
class DropUser:
    users: tuple[UserRef, ...]
    if_exists: bool


@dataclass(frozen=True, slots=True)
class SetPassword:
    """``user`` is None for one's own password (no ``FOR``, or ``FOR CURRENT_USER()``)."""

    user: UserRef | None
    password: str
    retain_current: bool = False  # RETAIN CURRENT PASSWORD


@dataclass(frozen=True, slots=True)
class DiscardOldPassword:
    """``ALTER USER u DISCARD OLD PASSWORD``; ``user`` None for ``CURRENT_USER()``."""

    user: UserRef | None


@dataclass(frozen=True, slots=True)
class AlterUser:
    """``ALTER USER u [, u] ... [WITH MAX_USER_CONNECTIONS n] [ACCOUNT UNLOCK]`` (at least one
    of the two)."""

    users: tuple[UserRef, ...]
    max_user_connections: int | None
    unlock: bool


@dataclass(frozen=True, slots=True)
class Grant:
    privileges: tuple[PrivItem, ...]
    level: PrivLevel
    users: tuple[UserSpec, ...]
    with_grant_option: bool
    routine: bool  # ON PROCEDURE x / ON FUNCTION x
    max_user_connections: int | None = None  # WITH MAX_USER_CONNECTIONS n


@dataclass(frozen=True, slots=True)
class Revoke:
    privileges: tuple[PrivItem, ...]
    level: PrivLevel
    users: tuple[UserRef, ...]
    routine: bool


@dataclass(frozen=True, slots=True)
class RevokeAll:
    """``REVOKE ALL [PRIVILEGES], GRANT OPTION FROM user [, user] ...``."""

    users: tuple[UserRef, ...]


@dataclass(frozen=True, slots=True)
class ShowGrants:
    """``user`` is None for a bare ``SHOW GRANTS``."""

    user: UserRef | CurrentUser | None


@dataclass(frozen=True, slots=True)
class FlushPrivileges:
    """``FLUSH [NO_WRITE_TO_BINLOG | LOCAL] PRIVILEGES``: nothing to do, the proxy's privileges
    are always the catalog's."""


@dataclass(frozen=True, slots=True)
class UnsupportedAccountStatement:
    """A recognised account statement the proxy refuses; ``verb`` such as ``'RENAME USER'``."""

    verb: str


AccountStatement: TypeAlias = (
    CreateUser
    | DropUser
    | SetPassword
    | DiscardOldPassword
    | AlterUser
    | Grant
    | Revoke
    | RevokeAll
    | ShowGrants
    | FlushPrivileges
    | UnsupportedAccountStatement
)


def parse_account_statement(
    sql: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> AccountStatement:
    """Parse one account statement as read in ``mode`` by a ``flavor`` server (see the lexer);
    raise ``SqlError`` (1064, or 1235) if it is not one."""
    return _Parser(sql, _tokens(sql, mode, flavor)).statement()


# --------------------------------------------------------------------------------------- tokens

_WORD: Final = "word"  # bare identifier or keyword
_QIDENT: Final = "qident"  # `backquoted` (or "double" under ANSI_QUOTES)
_STRING: Final = "string"  # 'single' or "double"
_NUMBER: Final = "number"  # digits and other numbers
_HOST: Final = "host"  # @host, @'host', @"host", @`host`: value is the host
_PUNCT: Final = "punct"  # an operator or punctuation ('(', ',', '*', ':=', ...)
_OTHER: Final = "other"  # anything else: never what the grammar wants
_EOF: Final = "eof"

_KINDS: Final = {
    TokenKind.WORD: _WORD,
    TokenKind.STRING: _STRING,
    TokenKind.NUMBER: _NUMBER,
    TokenKind.USER_VAR: _HOST,
    TokenKind.OP: _PUNCT,
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    value: str  # the lexer's value: decoded for strings, quoted names and hosts
    start: int  # offset of the token's first character in the input
    kw: str = ""  # upper-cased value for ASCII bare words, else ''


def _error_at(sql: str, pos: int) -> SqlError:
    return parse_error(sql[pos:], sql.count("\n", 0, pos) + 1)


def _token(token: Token) -> _Token:
    if token.kind is TokenKind.IDENT:
        kind = _QIDENT if token.raw[0] in '`"' else _WORD  # a word that must be a name
    elif token.kind is TokenKind.STRING and token.raw[0] in "nN":
        kind = _OTHER  # N'...': not TEXT_STRING in MariaDB's grammar
    else:
        kind = _KINDS.get(token.kind, _OTHER)
    value = token.value
    kw = value.upper() if kind == _WORD and value.isascii() else ""
    return _Token(kind, value, token.pos, kw)


# A bare name starting with a digit (MySQL's identifiers may, unless all digits).
_DIGIT_NAME: Final = re.compile(r"[0-9]+[A-Za-z_$][0-9A-Za-z_$]*")
_MAX_DIGIT_NAMES: Final = 64


def lex_with_digit_names(
    sql: str, mode: LexMode = DEFAULT_MODE, flavor: ServerFlavor | None = None
) -> tuple[list[LexedStatement], frozenset[int]]:
    """``lex``, except that a bare word starting with a digit (``1abcd``) is read as a word:
    the lexer refuses such tokens, whose reading elsewhere is subtle (``1e5x``, ``0x1g``), but
    an account statement only names accounts, databases and tables there, which MySQL reads as
    identifiers. Returns the statements -- such words lexed as if their leading digits were
    letters (same offsets) -- and the offsets where they start; raises the lexer's LexError
    for anything else it refuses."""
    text = sql
    starts: set[int] = set()
    for _ in range(_MAX_DIGIT_NAMES):
        try:
            return lex(text, mode, flavor), frozenset(starts)
        except LexError as err:
            pos = err.pos
            found = _DIGIT_NAME.match(sql, pos)
            after_word = pos > 0 and (sql[pos - 1].isalnum() or sql[pos - 1] in "_$")
            if found is None or pos in starts or after_word:
                raise
            digits = len(found.group()) - len(found.group().lstrip("0123456789"))
            text = text[:pos] + "x" * digits + text[pos + digits :]
            starts.add(pos)
    return lex(text, mode, flavor), frozenset(starts)


def _tokens(sql: str, mode: LexMode, flavor: ServerFlavor | None) -> list[_Token]:
    """The first statement's tokens; a token the grammar never accepts where a second
    statement starts; the end of the input."""
    try:
        statements, digit_names = lex_with_digit_names(sql, mode, flavor)
    except LexError as err:
        raise err.error from None
    tokens = [
        _Token(_WORD, sql[t.pos : t.pos + len(t.raw)], t.pos) if t.pos in digit_names else _token(t)
        for t in (statements[0].tokens if statements else ())
    ]
    if len(statements) > 1:
        tokens.append(_Token(_OTHER, "", statements[1].tokens[0].pos))
    tokens.append(_Token(_EOF, "", len(sql)))
    return tokens


# --------------------------------------------------------------------------------------- grammar


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# MySQL 8.0 reserved words: not accepted as bare (unquoted) names.
_RESERVED: Final = _words(
    """
    ACCESSIBLE ADD ALL ALTER ANALYZE AND AS ASC ASENSITIVE BEFORE BETWEEN BIGINT BINARY BLOB BOTH
    BY CALL CASCADE CASE CHANGE CHAR CHARACTER CHECK COLLATE COLUMN CONDITION CONSTRAINT CONTINUE
    CONVERT CREATE CROSS CUBE CUME_DIST CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER
    CURSOR DATABASE DATABASES DAY_HOUR DAY_MICROSECOND DAY_MINUTE DAY_SECOND DEC DECIMAL DECLARE
    DEFAULT DELAYED DELETE DENSE_RANK DESC DESCRIBE DETERMINISTIC DISTINCT DISTINCTROW DIV DOUBLE
    DROP DUAL EACH ELSE ELSEIF EMPTY ENCLOSED ESCAPED EXCEPT EXISTS EXIT EXPLAIN FALSE FETCH
    FIRST_VALUE FLOAT FLOAT4 FLOAT8 FOR FORCE FOREIGN FROM FULLTEXT FUNCTION GENERATED GET GRANT
    GROUP GROUPING GROUPS HAVING HIGH_PRIORITY HOUR_MICROSECOND HOUR_MINUTE HOUR_SECOND IF IGNORE
    IN INDEX INFILE INNER INOUT INSENSITIVE INSERT INT INT1 INT2 INT3 INT4 INT8 INTEGER INTERSECT
    INTERVAL INTO IO_AFTER_GTIDS IO_BEFORE_GTIDS IS ITERATE JOIN JSON_TABLE KEY KEYS KILL LAG
    LAST_VALUE LATERAL LEAD LEADING LEAVE LEFT LIKE LIMIT LINEAR LINES LOAD LOCALTIME
    LOCALTIMESTAMP LOCK LONG LONGBLOB LONGTEXT LOOP LOW_PRIORITY MASTER_BIND
    MASTER_SSL_VERIFY_SERVER_CERT MATCH MAXVALUE MEDIUMBLOB MEDIUMINT MEDIUMTEXT MIDDLEINT
    MINUTE_MICROSECOND MINUTE_SECOND MOD MODIFIES NATURAL NOT NO_WRITE_TO_BINLOG NTH_VALUE NTILE
    NULL NUMERIC OF ON OPTIMIZE OPTIMIZER_COSTS OPTION OPTIONALLY OR ORDER OUT OUTER OUTFILE OVER
    PARTITION PERCENT_RANK PRECISION PRIMARY PROCEDURE PURGE RANGE RANK READ READS READ_WRITE REAL
    RECURSIVE REFERENCES REGEXP RELEASE RENAME REPEAT REPLACE REQUIRE RESIGNAL RESTRICT RETURN
    REVOKE RIGHT RLIKE ROW ROWS ROW_NUMBER SCHEMA SCHEMAS SECOND_MICROSECOND SELECT SENSITIVE
    SEPARATOR SET SHOW SIGNAL SMALLINT SPATIAL SPECIFIC SQL SQLEXCEPTION SQLSTATE SQLWARNING
    SQL_BIG_RESULT SQL_CALC_FOUND_ROWS SQL_SMALL_RESULT SSL STARTING STORED STRAIGHT_JOIN SYSTEM
    TABLE TERMINATED THEN TINYBLOB TINYINT TINYTEXT TO TRAILING TRIGGER TRUE UNDO UNION UNIQUE
    UNLOCK UNSIGNED UPDATE USAGE USE USING UTC_DATE UTC_TIME UTC_TIMESTAMP VALUES VARBINARY VARCHAR
    VARCHARACTER VARYING VIRTUAL WHEN WHERE WHILE WINDOW WITH WRITE XOR YEAR_MONTH ZEROFILL
    """
)

# Privilege keywords (MySQL's fixed privilege names). Any other non-reserved word is accepted as a
# single-word privilege (MySQL's dynamic privileges) or, before TO/FROM, as a role name.
# head -> (allowed second words, second word required)
_MULTI_WORD: Final[dict[str, tuple[frozenset[str], bool]]] = {
    "CREATE": (frozenset({"VIEW", "ROUTINE", "TABLESPACE", "USER", "ROLE"}), False),
    "ALTER": (frozenset({"ROUTINE"}), False),
    "DROP": (frozenset({"ROLE"}), False),
    "GRANT": (frozenset({"OPTION"}), True),
    "SHOW": (frozenset({"DATABASES", "VIEW"}), True),
    "LOCK": (frozenset({"TABLES"}), True),
    "REPLICATION": (frozenset({"SLAVE", "CLIENT", "REPLICA"}), True),
}
_SINGLE_WORD_PRIVS: Final = _words(
    """SELECT INSERT UPDATE REFERENCES DELETE USAGE INDEX EXECUTE RELOAD SHUTDOWN PROCESS FILE
    SUPER EVENT TRIGGER PROXY"""
)
_COLUMN_PRIVS: Final = frozenset({"SELECT", "INSERT", "UPDATE", "REFERENCES"})

_CREATE_USER_OPTIONS: Final = _words(
    """DEFAULT REQUIRE WITH PASSWORD FAILED_LOGIN_ATTEMPTS PASSWORD_LOCK_TIME ACCOUNT COMMENT
    ATTRIBUTE"""
)
_OPTIONS_NAMED_WITH_NEXT_WORD: Final = frozenset(
    {"DEFAULT", "REQUIRE", "WITH", "PASSWORD", "ACCOUNT"}
)

# The authentication plugins ``IDENTIFIED WITH`` may name (every account has both).
_PLUGINS: Final = frozenset({"mysql_native_password", "caching_sha2_password"})

# The largest MAX_USER_CONNECTIONS (MySQL's column is an unsigned 32-bit integer).
_MAX_RESOURCE_LIMIT: Final = 4294967295

# Statements recognised by their leading keywords only.
_UNSUPPORTED_VERBS: Final[tuple[tuple[str, ...], ...]] = (
    ("RENAME", "USER"),
    ("ALTER", "USER"),
    ("CREATE", "ROLE"),
    ("DROP", "ROLE"),
    ("SET", "DEFAULT", "ROLE"),
    ("SET", "ROLE"),
    ("SHOW", "CREATE", "USER"),
)


@dataclass(frozen=True, slots=True)
class _Item:
    """One entry of a GRANT/REVOKE list before it is known to be privileges or roles."""

    token: _Token
    priv: PrivItem | None  # None: only a role can look like this ('quoted' or name@host)
    role: bool  # could be a role name


class _Parser:
    def __init__(self, sql: str, tokens: list[_Token]) -> None:
        self.sql = sql
        self.tokens = tokens
        self.i = 0

    # ------------------------------------------------------------------ token helpers

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        if token.kind != _EOF:
            self.i += 1
        return token

    def fail(self, token: _Token | None = None) -> NoReturn:
        raise _error_at(self.sql, (token or self.peek()).start)

    def is_kw(self, *words: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == _WORD and token.kw in words

    def accept_kw(self, word: str) -> bool:
        if self.is_kw(word):
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            self.fail()

    def is_punct(self, char: str) -> bool:
        token = self.peek()
        return token.kind == _PUNCT and token.value == char

    def accept_punct(self, char: str) -> bool:
        if self.is_punct(char):
            self.i += 1
            return True
        return False

    def expect_punct(self, char: str) -> None:
        if not self.accept_punct(char):
            self.fail()

    def string(self) -> str:
        token = self.peek()
        if token.kind != _STRING:
            self.fail(token)
        self.i += 1
        return token.value

    @staticmethod
    def bare_name_ok(token: _Token) -> bool:
        return token.kind == _WORD and token.kw not in _RESERVED

    def accept_host(self) -> str | None:
        """The host of ``@host`` if it is next."""
        token = self.peek()
        if token.kind != _HOST:
            return None
        self.i += 1
        return token.value

    # ------------------------------------------------------------------ statements

    def statement(self) -> AccountStatement:
        if self.is_kw("ALTER") and self.is_kw("USER", ahead=1):
            discard = self.discard_old_password()
            if discard is not None:
                if self.peek().kind != _EOF:
                    self.fail()
                return discard
            identified = self.alter_user_identified()
            if identified is not None:
                return identified
            altered = self.alter_user()
            if altered is not None:
                return altered
        if self.is_kw("FLUSH"):
            self.i += 1
            if not self.accept_kw("NO_WRITE_TO_BINLOG"):
                self.accept_kw("LOCAL")
            self.expect_kw("PRIVILEGES")
            if self.peek().kind != _EOF:
                self.fail()
            return FlushPrivileges()
        for verb in _UNSUPPORTED_VERBS:
            if all(self.is_kw(word, ahead=k) for k, word in enumerate(verb)):
                return UnsupportedAccountStatement(" ".join(verb))
        result: AccountStatement
        if self.is_kw("CREATE") and self.is_kw("USER", ahead=1):
            result = self.create_user()
        elif self.is_kw("DROP") and self.is_kw("USER", ahead=1):
            result = self.drop_user()
        elif self.is_kw("SET") and self.is_kw("PASSWORD", ahead=1):
            result = self.set_password()
        elif self.is_kw("GRANT"):
            result = self.grant()
        elif self.is_kw("REVOKE"):
            result = self.revoke()
        elif self.is_kw("SHOW") and self.is_kw("GRANTS", ahead=1):
            result = self.show_grants()
        elif self.is_kw("CREATE", "DROP", "SET", "SHOW"):
            self.fail(self.peek(1))
        else:
            self.fail()
        if self.peek().kind != _EOF:
            self.fail()
        return result

    def create_user(self) -> CreateUser:
        self.i += 2  # CREATE USER
        if_not_exists = False
        if self.accept_kw("IF"):
            self.expect_kw("NOT")
            self.expect_kw("EXISTS")
            if_not_exists = True
        users = self.user_specs()
        limit: int | None = None
        if self.is_kw("WITH"):
            self.i += 1
            limit = self.resource_options("CREATE USER")
        token = self.peek()
        if token.kind == _WORD and token.kw in _CREATE_USER_OPTIONS:
            name = token.kw
            following = self.peek(1)
            if name in _OPTIONS_NAMED_WITH_NEXT_WORD and following.kind == _WORD and following.kw:
                name = f"{name} {following.kw}"
            raise not_supported(f"CREATE USER ... {name}")
        return CreateUser(users, if_not_exists, limit)

    def drop_user(self) -> DropUser:
        self.i += 2  # DROP USER
        if_exists = False
        if self.accept_kw("IF"):
            self.expect_kw("EXISTS")
            if_exists = True
        return DropUser(self.user_refs(), if_exists)

    def set_password(self) -> SetPassword:
        self.i += 2  # SET PASSWORD
        user: UserRef | None = None
        if self.accept_kw("FOR") and self.current_user() is None:
            user = self.user_ref()
        if self.is_kw("TO") and self.is_kw("RANDOM", ahead=1):
            raise not_supported("SET PASSWORD ... TO RANDOM")
        if not self.accept_punct(":="):
            self.expect_punct("=")
        if self.accept_kw("PASSWORD"):
            self.expect_punct("(")
            password = self.string()
            self.expect_punct(")")
        else:
            password = self.string()
        if self.is_kw("REPLACE"):
            raise not_supported("SET PASSWORD ... REPLACE")
        retain = False
        if self.accept_kw("RETAIN"):
            self.expect_kw("CURRENT")
            self.expect_kw("PASSWORD")
            retain = True
        return SetPassword(user, password, retain)

    def discard_old_password(self) -> DiscardOldPassword | None:
        """``ALTER USER {u | CURRENT_USER[()]} DISCARD OLD PASSWORD`` if that is what follows
        (every other ALTER USER stays unsupported); the position is kept otherwise."""
        start = self.i
        self.i += 2  # ALTER USER
        if self.accept_kw("IF"):
            self.i = start
            return None
        token = self.peek()
        if token.kind == _WORD and token.kw == "USER" and self.peek(1).kind == _PUNCT:
            self.i = start  # USER(): unsupported as before
            return None
        user: UserRef | None
        if self.current_user() is not None:
            user = None
        elif token.kind in (_QIDENT, _STRING) or self.bare_name_ok(token):
            user = self.user_ref()
        else:
            self.i = start
            return None
        if not (
            self.is_kw("DISCARD") and self.is_kw("OLD", ahead=1) and self.is_kw("PASSWORD", ahead=2)
        ):
            self.i = start
            return None
        self.i += 3
        return DiscardOldPassword(user)

    def alter_user_identified(self) -> SetPassword | None:
        """``ALTER USER {u | CURRENT_USER[()]} IDENTIFIED [WITH plugin] BY 'auth' [RETAIN
        CURRENT PASSWORD]`` -- SET PASSWORD with its rules and errors -- if that is the whole
        statement; the position is kept otherwise (other ALTER USER forms)."""
        start = self.i
        self.i += 2  # ALTER USER
        token = self.peek()
        if self.is_kw("IF") or (
            token.kind == _WORD and token.kw == "USER" and self.peek(1).kind == _PUNCT
        ):
            pass  # IF EXISTS, USER(): not this form
        elif self.current_user() is not None:
            if self.is_kw("IDENTIFIED"):
                return self.identified_rest(start, None)
        elif token.kind in (_QIDENT, _STRING) or self.bare_name_ok(token):
            user = self.user_ref()
            if self.is_kw("IDENTIFIED"):
                return self.identified_rest(start, user)
        self.i = start
        return None

    def identified_rest(self, start: int, user: UserRef | None) -> SetPassword | None:
        password = self.identified()
        if password is None:
            self.i = start
            return None
        retain = False
        if self.is_kw("REPLACE"):
            raise not_supported("ALTER USER ... REPLACE")
        if self.accept_kw("RETAIN"):
            self.expect_kw("CURRENT")
            self.expect_kw("PASSWORD")
            retain = True
        if self.is_punct(","):
            raise not_supported("ALTER USER of several accounts with IDENTIFIED BY")
        if self.peek().kind != _EOF:
            self.i = start  # with other options: unsupported ALTER USER
            return None
        return SetPassword(user, password, retain)

    def identified(self) -> str | None:
        """After the account: ``IDENTIFIED [WITH plugin] BY 'auth'``, the password (None: no
        ``IDENTIFIED``). 1235 for what is recognised but not supported."""
        if not self.accept_kw("IDENTIFIED"):
            return None
        if self.accept_kw("WITH"):
            plugin = self.peek()
            if plugin.kind not in (_WORD, _STRING, _QIDENT):
                self.fail(plugin)
            self.i += 1
            if plugin.value.lower() not in _PLUGINS:
                raise not_supported(f"IDENTIFIED WITH {plugin.value}")
            if self.is_kw("AS"):
                raise not_supported("IDENTIFIED WITH ... AS")
            if not self.is_kw("BY"):
                raise not_supported("IDENTIFIED WITH a plugin alone")
        self.expect_kw("BY")
        if self.is_kw("PASSWORD"):
            raise not_supported("IDENTIFIED BY PASSWORD")
        if self.is_kw("RANDOM"):
            raise not_supported("IDENTIFIED BY RANDOM PASSWORD")
        return self.string()

    def grant(self) -> Grant | UnsupportedAccountStatement:
        self.i += 1  # GRANT
        items = self.priv_items()
        if self.is_kw("ON"):
            if self.is_proxy(items):
                self.i += 1  # ON
                self.user_ref()
                self.expect_kw("TO")
                self.user_refs()
                self.grant_tail()
                return UnsupportedAccountStatement("GRANT PROXY")
            privileges = self.privileges_of(items)
            self.i += 1  # ON
            routine, level = self.priv_level()
            self.expect_kw("TO")
            users = self.user_specs()
            with_grant_option, limit = self.grant_tail()
            return Grant(privileges, level, users, with_grant_option, routine, limit)
        if self.is_kw("TO"):
            self.roles_of(items)
            self.i += 1  # TO
            self.user_refs()
            if self.accept_kw("WITH"):
                self.expect_kw("ADMIN")
                self.expect_kw("OPTION")
            return UnsupportedAccountStatement("GRANT ROLE")
        self.fail()

    def grant_tail(self) -> tuple[bool, int | None]:
        """``[REQUIRE ...] [WITH {GRANT OPTION | MAX_...} ...] [AS ...]``: whether GRANT OPTION
        was named, and the MAX_USER_CONNECTIONS given (None if none)."""
        if self.is_kw("REQUIRE"):
            raise not_supported("GRANT ... REQUIRE")
        with_grant_option = False
        limit: int | None = None
        if self.accept_kw("WITH"):
            while True:
                token = self.peek()
                if token.kind == _WORD and token.kw.startswith("MAX_"):
                    limit = self.resource_option("GRANT")
                else:
                    self.expect_kw("GRANT")
                    self.expect_kw("OPTION")
                    with_grant_option = True
                if not self.is_kw("GRANT") and not self.peek().kw.startswith("MAX_"):
                    break
        if self.is_kw("AS"):
            raise not_supported("GRANT ... AS")
        return with_grant_option, limit

    def resource_options(self, verb: str) -> int:
        """After ``WITH``: one or more resource options; the MAX_USER_CONNECTIONS given."""
        limit = self.resource_option(verb)
        while self.peek().kind == _WORD and self.peek().kw.startswith("MAX_"):
            limit = self.resource_option(verb)
        return limit

    def resource_option(self, verb: str) -> int:
        """``MAX_USER_CONNECTIONS n`` (1235 for MySQL's other resource limits)."""
        token = self.peek()
        if token.kind != _WORD or not token.kw.startswith("MAX_"):
            self.fail(token)
        if token.kw != "MAX_USER_CONNECTIONS":
            raise not_supported(f"{verb} ... WITH {token.kw}")
        self.i += 1
        number = self.peek()
        if (
            number.kind != _NUMBER
            or not number.value.isdigit()
            or int(number.value) > _MAX_RESOURCE_LIMIT
        ):
            self.fail(number)
        self.i += 1
        return int(number.value)

    def alter_user(self) -> AlterUser | None:
        """``ALTER USER u [, u] ... [WITH MAX_USER_CONNECTIONS n] [ACCOUNT UNLOCK]`` if that
        is the whole statement; the position is kept otherwise (unsupported ALTER USER)."""
        start = self.i
        self.i += 2  # ALTER USER
        token = self.peek()
        if self.is_kw("IF") or not (token.kind in (_QIDENT, _STRING) or self.bare_name_ok(token)):
            self.i = start
            return None
        if token.kind == _WORD and token.kw == "USER" and self.peek(1).kind == _PUNCT:
            self.i = start  # USER(): unsupported as before
            return None
        users = self.user_refs()
        limit: int | None = None
        unlock = False
        if self.accept_kw("WITH"):
            limit = self.resource_options("ALTER USER")
        if self.is_kw("ACCOUNT") and self.is_kw("LOCK", ahead=1):
            raise not_supported("ALTER USER ... ACCOUNT LOCK")
        if self.is_kw("ACCOUNT") and self.is_kw("UNLOCK", ahead=1):
            self.i += 2
            unlock = True
        if (limit is None and not unlock) or self.peek().kind != _EOF:
            self.i = start
            return None
        return AlterUser(users, limit, unlock)

    def revoke(self) -> Revoke | RevokeAll | UnsupportedAccountStatement:
        self.i += 1  # REVOKE
        items = self.priv_items()
        if len(items) == 1 and items[0].priv == PrivItem("ALL") and self.accept_punct(","):
            self.expect_kw("GRANT")
            self.expect_kw("OPTION")
            self.expect_kw("FROM")
            return RevokeAll(self.user_refs())
        if self.is_kw("ON"):
            if self.is_proxy(items):
                self.i += 1  # ON
                self.user_ref()
                self.expect_kw("FROM")
                self.user_refs()
                return UnsupportedAccountStatement("REVOKE PROXY")
            privileges = self.privileges_of(items)
            self.i += 1  # ON
            routine, level = self.priv_level()
            self.expect_kw("FROM")
            return Revoke(privileges, level, self.user_refs(), routine)
        if self.is_kw("FROM"):
            self.roles_of(items)
            self.i += 1  # FROM
            self.user_refs()
            return UnsupportedAccountStatement("REVOKE ROLE")
        self.fail()

    def show_grants(self) -> ShowGrants:
        self.i += 2  # SHOW GRANTS
        if not self.accept_kw("FOR"):
            return ShowGrants(None)
        current = self.current_user()
        return ShowGrants(current if current is not None else self.user_ref())

    # ------------------------------------------------------------------ accounts

    def current_user(self) -> CurrentUser | None:
        """``CURRENT_USER`` or ``CURRENT_USER()`` if it is next."""
        if not self.accept_kw("CURRENT_USER"):
            return None
        if self.accept_punct("("):
            self.expect_punct(")")
        return CurrentUser()

    def user_ref(self) -> UserRef:
        token = self.peek()
        if token.kind in (_QIDENT, _STRING):
            user = token.value
        elif self.is_kw("CURRENT_USER"):
            raise not_supported("CURRENT_USER() as an account name here")
        elif self.bare_name_ok(token):
            user = token.value
        else:
            self.fail(token)
        self.i += 1
        host = self.accept_host()
        return UserRef(user, "%" if host is None else host)

    def user_refs(self) -> tuple[UserRef, ...]:
        users = [self.user_ref()]
        while self.accept_punct(","):
            users.append(self.user_ref())
        return tuple(users)

    def user_spec(self) -> UserSpec:
        user = self.user_ref()
        return UserSpec(user, self.identified())

    def user_specs(self) -> tuple[UserSpec, ...]:
        users = [self.user_spec()]
        while self.accept_punct(","):
            users.append(self.user_spec())
        return tuple(users)

    # ------------------------------------------------------------------ privileges

    def priv_items(self) -> list[_Item]:
        """``ALL [PRIVILEGES]`` alone, or a comma-separated list of privileges or roles."""
        if self.is_kw("ALL"):
            token = self.advance()
            self.accept_kw("PRIVILEGES")
            return [_Item(token, PrivItem("ALL"), role=False)]
        items = [self.priv_item()]
        while self.accept_punct(","):
            items.append(self.priv_item())
        return items

    def priv_item(self) -> _Item:
        token = self.peek()
        if token.kind in (_QIDENT, _STRING):
            self.i += 1
            self.accept_host()
            return _Item(token, None, role=True)
        if token.kind != _WORD:
            self.fail(token)
        head = token.kw
        if head in _MULTI_WORD or head in _SINGLE_WORD_PRIVS:
            self.i += 1
            name = head
            if head == "CREATE" and self.accept_kw("TEMPORARY"):
                self.expect_kw("TABLES")
                name = "CREATE TEMPORARY TABLES"
            elif head in _MULTI_WORD:
                seconds, required = _MULTI_WORD[head]
                following = self.peek()
                if following.kind == _WORD and following.kw in seconds:
                    self.i += 1
                    name = f"{head} {following.kw}"
                elif required:
                    self.fail(following)
            columns: tuple[str, ...] = ()
            if head in _COLUMN_PRIVS and self.is_punct("("):
                columns = self.column_list()
            return _Item(token, PrivItem(name, columns), role=False)
        # Any other word: a dynamic privilege, or a role name.
        if not self.bare_name_ok(token):
            self.fail(token)
        self.i += 1
        name = head or token.value
        if self.accept_host() is not None:
            return _Item(token, None, role=True)
        if self.is_punct("("):
            return _Item(token, PrivItem(name, self.column_list()), role=False)
        return _Item(token, PrivItem(name), role=True)

    def column_list(self) -> tuple[str, ...]:
        self.expect_punct("(")
        columns = [self.identifier()]
        while self.accept_punct(","):
            columns.append(self.identifier())
        self.expect_punct(")")
        return tuple(columns)

    def privileges_of(self, items: list[_Item]) -> tuple[PrivItem, ...]:
        privileges: list[PrivItem] = []
        for item in items:
            if item.priv is None or item.priv.name == "PROXY":
                self.fail(item.token)
            privileges.append(item.priv)
        return tuple(privileges)

    def roles_of(self, items: list[_Item]) -> None:
        """Before TO/FROM every item must be a role name; else fail at the TO/FROM (as MySQL)."""
        if not all(item.role for item in items):
            self.fail()

    @staticmethod
    def is_proxy(items: list[_Item]) -> bool:
        return len(items) == 1 and items[0].priv == PrivItem("PROXY")

    def identifier(self, *, after_dot: bool = False) -> str:
        """A database, table or column name: bare, or backquoted (not empty)."""
        token = self.peek()
        quoted_ok = token.kind == _QIDENT and token.value != ""
        bare_ok = token.kind == _WORD and (after_dot or self.bare_name_ok(token))
        if not (quoted_ok or bare_ok):
            self.fail(token)
        self.i += 1
        return token.value

    def priv_level(self) -> tuple[bool, PrivLevel]:
        """``[TABLE | PROCEDURE | FUNCTION] level`` -> (routine, level)."""
        routine = False
        if self.is_kw("PROCEDURE", "FUNCTION"):
            self.i += 1
            routine = True
        else:
            self.accept_kw("TABLE")
        if self.accept_punct("*"):
            if self.accept_punct("."):
                self.expect_punct("*")
                return routine, PrivLevel(None, None, is_global=True)
            return routine, PrivLevel(None, None)
        first = self.identifier()
        if not self.accept_punct("."):
            return routine, PrivLevel(None, first)
        if self.accept_punct("*"):
            return routine, PrivLevel(first, None)
        return routine, PrivLevel(first, self.identifier(after_dot=True))
