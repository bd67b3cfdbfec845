"""Statement classification: what each client statement is and which privileges it needs.

``analyze(sql, current_db, mode, flavor)`` lexes ``sql`` as a ``flavor`` server in ``mode`` reads
it (see :mod:`proxy.sql.lexer`; executable comments are judged by the server's version, and with
no flavor the ones that depend on it are refused) and returns one :class:`Statement` per
statement. It FAILS CLOSED: whatever it cannot classify with certainty is
``Kind.REFUSED`` with the MySQL error to send, never forwarded.

How a statement is analysed
---------------------------
* The leading keywords (executable comments resolved, in any letter case) pick the
  statement type. Session statements (``SET``, transactions), ``USE``, ``KILL``, ``SHOW
  DATABASES``/``PROCESSLIST`` and the account statements are read from the tokens with their
  values; they are never cached.
* Everything else is analysed from the statement's **shape key alone** (the tokens with every
  literal replaced by ``?``/``'?'`` and all-literal ``IN`` lists and ``VALUES`` rows collapsed to
  their first element; see the lexer): queries and DML are parsed by sqlglot
  (dialect ``mysql``) from the key text itself -- so sqlglot sees exactly the tokens the lexer
  saw, quoting and comments already resolved -- and DDL by a small token grammar (sqlglot falls
  back to an opaque ``Command`` for much MariaDB DDL, e.g. ``CREATE UNIQUE INDEX``). Because the
  result is a function of (shape key, current database), it is cached by that key
  (:func:`analyze`) and provably equal to the uncached analysis (:func:`analyze_uncached`).
* The cache (bounded LRU, ``CACHE_SIZE`` entries, statements with shape keys up to 4 KiB) is
  keyed by (shape key, current database, lexer mode) and stores only cacheable results (QUERY,
  and REFUSED from the shape analysis). A second LRU in front of it is keyed by the text itself
  with integer, decimal and simple string literals replaced, for single statements in a small
  alphabet (words, backquoted plain names, numbers, strings without quotes or backslashes
  inside, operators; no comments, ``@``, ``"``, ``;``) on which one regular expression
  tokenizes exactly like the lexer: equal fast keys imply equal shape keys, so a fast hit skips
  the lexer; it collapses literal lists where the lexer does. Both return the cached decision
  with the new statement's own text and offsets.
* sqlglot runs as pure Python: its compiled build (``sqlglotc``, mypyc) corrupted the heap
  when the garbage collector cleared cyclic parse trees (``Identifier`` tp_clear, seen under
  gdb as crashes far from the cause). Parsing happens only on a shape-cache miss, so the
  slower parse (~130 µs against ~40 µs for a point select) is paid once per shape.
* sqlglot trees are checked against an allow-list of node types, and, for the nodes that make
  up the statement's structure (queries, joins, tables, DML), of the arguments each may carry
  and of the values of its keyword arguments (join kinds, index hints): what MariaDB 10.11's
  grammar has. Anything else (``Command``, ``Into``, ``LATERAL``, ``SEMI``/``ASOF`` joins,
  ``FROM ONLY``, ``DISTINCT ON``, table samples, unknown table functions, ...) is refused.
  Every ``Table`` node is a table read unless it is a CTE name in scope (exact, case-sensitive
  match, so an unsure case costs a privilege rather than skipping one), ``DUAL``,
  ``JSON_TABLE`` or a write target. Unquoted table names or aliases that are reserved words
  mean sqlglot misread the statement: refused.
* **The structural check** (:mod:`proxy.sql.names`), part of the shape analysis and so cached with
  it: every token MariaDB can only read as a name -- a quoted identifier, or an unquoted word that
  is neither a MariaDB 10.11 keyword nor a built-in function name (:mod:`proxy.sql.mariadb_words`,
  generated from the server's ``information_schema.KEYWORDS`` and ``SQL_FUNCTIONS``) -- must be a
  name in sqlglot's tree, spelt and quoted alike (an identifier, a function name, a character set
  introducer or a bare word such as a collation), each name in the tree standing for one token; a
  name followed by ``(`` that sqlglot knows as a function is a function call for both -- unless
  it is quoted (the lexer quotes ``count (x)`` too) and not one of MariaDB's
  ``NATIVE_FUNCTIONS``: a stored function's call for MariaDB, which sqlglot must then keep as
  a name (``now``), not read as its built-in (``count``, ``trim``). Otherwise the statement is
  refused (1235, naming the word: a name sqlglot reads as a keyword can be
  backquoted). *What it guarantees*: sqlglot consumed no word as syntax that MariaDB does not know
  as a keyword or function (``SELECT * FROM lateral x``: a ``LATERAL`` clause for sqlglot, the
  table ``lateral`` for MariaDB), and dropped no quoted name. *What it does not*: (a) a MariaDB
  keyword is not checked, reserved or not -- MariaDB reads many keywords as names in some
  positions, so a keyword sqlglot takes as syntax where MariaDB takes a name goes unnoticed by
  this check (``t1 full JOIN t2``, ``t1`` aliased ``full`` for MariaDB, is caught by the argument
  allow-list: no FULL joins); (b) it counts names, not their roles: a table read as an alias or a
  column (or the reverse) passes; (c) it covers what sqlglot parses (queries, DML, the query of
  ``CREATE TABLE ... SELECT``, ``EXPLAIN``'s statement, conditions of ``SHOW ... WHERE`` and
  expressions of ``SET @v = ...``); the token grammars (DDL, SHOW, DESCRIBE) consume their names
  at fixed places, but the column definitions and options of ``CREATE``/``ALTER TABLE`` are
  scanned for the keywords that bring in other tables (``REFERENCES``, ``SELECT``, ``TABLE``,
  ``UNION``, ...), not name by name. ``tests/parse_differential.py`` covers (a) and (b) for the
  positions it tries, by running every keyword in every position on MariaDB with exactly the
  privileges the proxy asks for.

Decisions where the specification is silent
-------------------------------------------
* Table qualifiers compare with the current database case-insensitively; ``information_schema``
  needs no privilege (``reads_information_schema`` is set), every other database -- ``mysql``,
  ``performance_schema``, ``sys`` included -- is 1235. A qualified name with no database
  selected is 1235 too (``USE <db> first``). Exception: ``information_schema.PROCESSLIST`` is
  refused (1227, PROCESS): every session of a database shares one backend account on the shard,
  so its rows would show other accounts' statements (``SHOW PROCESSLIST`` is answered by the
  proxy, which shows only what the account may see).
* ``Requirement.db`` is the current database for unqualified names and the qualifier as written
  otherwise; ``Requirement.table`` is the name as written.
* Multi-table UPDATE: a table is written when a SET target's qualifier names it or its alias
  (case-insensitively); an unqualified SET target in a multi-table UPDATE, or a qualifier that
  names nothing, counts as writing every table of the UPDATE (over-asking, never under-asking).
  Multi-table DELETE likewise. ``RETURNING`` adds SELECT on the target.
* Reading a column needs SELECT, whatever the statement: an UPDATE or DELETE needs SELECT on
  each of its tables whose column it reads anywhere but in a SET target (WHERE, ORDER BY, the
  values, join conditions, subqueries). A qualified column reads the table its qualifier names;
  an unqualified one may read any table of the statement, also from inside a subquery (which may
  be correlated), so ``UPDATE t SET a = (SELECT MAX(b) FROM s)`` needs SELECT on ``t``
  (over-asking). Unquoted reserved words sqlglot takes for columns (``DEFAULT``, ``UTC_DATE``)
  and CTE bodies do not count. As MariaDB checks it: ``ON DUPLICATE KEY UPDATE`` and the
  targets of a multi-table DELETE always need SELECT; an INSERT's own VALUES do not.
* Sequences: ``NEXTVAL(s)`` / ``NEXT VALUE FOR s`` and ``SETVAL(s, ...)`` need INSERT + SELECT on
  ``s`` (they write the sequence table); ``LASTVAL(s)`` / ``PREVIOUS VALUE FOR s`` need SELECT.
* ``CREATE OR REPLACE TABLE|SEQUENCE`` adds DROP. ``CREATE TABLE ... [AS] SELECT`` needs CREATE +
  INSERT on the new table (+ DELETE with ``REPLACE``) and SELECT on the sources; ``CREATE TABLE
  ... LIKE s`` needs SELECT on ``s``; a ``FOREIGN KEY ... REFERENCES p`` needs SELECT on ``p``
  (it lets the new table probe ``p``'s keys). Storage engines other than InnoDB, MyISAM, Aria,
  MEMORY, CSV, ARCHIVE and BLACKHOLE (CONNECT, FEDERATED, SPIDER, MERGE, ...), ``DATA|INDEX
  DIRECTORY``, ``CONNECTION``, ``UNION`` and ``TABLESPACE`` options are refused.
* ``ALTER TABLE`` needs ALTER; ``DROP|TRUNCATE PARTITION`` adds DROP; ``RENAME TO`` is treated
  like ``RENAME TABLE``; ``EXCHANGE PARTITION``, ``CONVERT PARTITION|TABLE`` and ``DISCARD|IMPORT
  TABLESPACE`` are refused.
* ``ANALYZE|OPTIMIZE|REPAIR TABLE``: SELECT + INSERT on each table (MySQL's rule); ``CHECK |
  CHECKSUM TABLE``: SELECT. ``ANALYZE <statement>`` (MariaDB, it executes the statement) and
  ``EXPLAIN <statement>`` need what the statement needs.
* ``SHOW TABLES``, ``SHOW TABLE STATUS``, ``SHOW CREATE DATABASE`` (of the current database),
  ``SHOW WARNINGS|ERRORS|VARIABLES|COLLATION|CHARACTER SET|ENGINES|PRIVILEGES``,
  ``SHOW TRIGGERS`` (of the current database), ``SHOW PROCEDURE|FUNCTION|PACKAGE [BODY] STATUS``
  and ``SHOW PLUGINS`` (not ``SONAME``: the shard's plugin directory) are QUERY without
  requirements -- the mirror holds no routine, trigger or event privilege, so the shard shows
  it only what it may see; ``SHOW COLUMNS|INDEX|CREATE TABLE|VIEW|SEQUENCE`` need SELECT.
  ``SHOW EVENTS`` (of the current database) is SHOW_EVENTS, answered by the proxy with no rows
  (the shard would refuse the mirror, which holds no EVENT privilege). ``SHOW [GLOBAL|SESSION]
  STATUS [LIKE ...]`` is SHOW_STATUS (the proxy's own counters, never the shard's); ``SHOW
  ENGINE ...`` needs PROCESS (1227: the shard's internals). A ``WHERE`` in a SHOW is analysed
  like a query condition. ``SHOW DATABASES|STATUS ... WHERE`` and all other SHOW forms (``SHOW
  CREATE PROCEDURE|TRIGGER|EVENT`` among them) are refused. ``FLUSH PRIVILEGES`` is an account
  statement (OK, no effect).
* ``SELECT ... INTO @var`` is a query; any other ``INTO`` in a SELECT is refused, ``INTO
  OUTFILE|DUMPFILE`` and ``LOAD_FILE()`` with 1227 (FILE). Known-dangerous functions
  (``sys_exec``-like UDFs, replication waits) are refused wherever they appear, quoted or not.
* ``LOCK TABLES``: SELECT on each table; a WRITE lock also INSERT, UPDATE or DELETE (a
  ``Requirement`` with ``one_of``): it blocks everyone else's reads. It binds the session to its
  backend connection (``BIND_TABLE_LOCK``); ``UNLOCK TABLES`` (SESSION) releases that bind when
  it succeeds -- the only table locks are LOCK TABLES' (FLUSH ... WITH READ LOCK and BACKUP
  STAGE are refused) and it ends all of them; named locks are a bind of their own.
  ``COMMIT|ROLLBACK ... RELEASE`` (it closes the backend connection) and ``BEGIN NOT ATOMIC``
  are refused.
* ``CREATE [OR REPLACE] DATABASE|SCHEMA``, ``ALTER DATABASE`` (character set, collation,
  comment) and ``DROP DATABASE`` are DATABASE with a :class:`DatabaseStatement`: whether they
  are allowed depends on whose database the session is in, which the plan decides.
* Views: ``CREATE [OR REPLACE] [ALGORITHM = a] [DEFINER = account] [SQL SECURITY s] VIEW v
  [(columns)] AS query [WITH ... CHECK OPTION]`` needs CREATE on ``v`` (DROP too with OR
  REPLACE) and what the query needs; ``DROP VIEW`` needs DROP; ``ALTER VIEW`` is refused. The
  view is made on the shard by the session's mirror, whose grants are the caller's: the
  DEFINER clause's account, whatever it names (mariadb-dump writes the source's definer), is
  replaced by ``CURRENT_USER`` in what is relayed (``Statement.definer`` gives its offsets), so
  a view's definer is always its creator's mirror and a view never runs with more than its
  creator's current grants. (The mirror, holding no SUPER or SET USER, could not make a view
  for another definer anyway; without the replacement a dump would not load elsewhere.) Other
  objects with a DEFINER or SQL SECURITY clause (routines, triggers, events) stay refused.
  Where the shard shows a view's definer (``SHOW CREATE TABLE|VIEW``, a query naming
  ``information_schema.VIEWS``: ``Statement.shows_definers``), the relay shows the creator's
  account instead of its mirror (``proxy.session.definers``).
* ``SET``: only session scope; system variables from an allow-list, with literal values only;
  ``sql_mode`` returns the new :class:`LexMode` (``ANSI`` implies ``ANSI_QUOTES`` and
  ``IGNORE_SPACE``; ``ORACLE``, ``MSSQL``, ``DB2``, ``POSTGRESQL``, ``MAXDB`` are refused;
  ``DEFAULT`` means the server default, a new mode known once read back). Character sets:
  only those whose multi-byte characters never contain ASCII bytes; ``Statement.charset``
  carries the new client character set.
* In a multi-statement text, statements after one that changes ``sql_mode`` or the character set
  are refused (the server would read them under the new rules).
* ``Statement.text`` is the executable text: executable comments resolved (the code kept, the
  markers and skipped comments replaced by a space), ordinary comments replaced by a space, no
  surrounding whitespace or ``;`` -- for the digest, the processlist and the account grammar.
  What is relayed is the client's own text: ``Statement.start`` / ``end`` are the statement's
  offsets in ``sql`` (the statements partition it; :func:`proxy.sql.lexer.utf8_offsets` gives
  byte offsets). An empty request gives ``[]``; text the lexer rejects gives one REFUSED
  statement (1064) for the whole request, spanning it.
* Identity functions (``CURRENT_USER[()]``, ``USER()``, ``SESSION_USER()``, ``SYSTEM_USER()``,
  ``CONNECTION_ID()``) and shard-internal variables (``@@[global.]hostname|datadir|port|socket``)
  in a statement the shard runs (not DDL, whose defaults must stay calls) are listed in
  ``Statement.identity``: a fact of the shape (cached, without positions), resolved into byte
  offsets of the request for every statement returned; ``proxy.plan.rewrite`` answers them.
* A 1064 names the server as the shard's flavor does ("MySQL" or "MariaDB").
* ``SHOW DATABASES LIKE 'pattern'``: ``Statement.like_pattern`` is the pattern's value as the
  server reads it in the session's mode (``\\%`` and ``\\_`` keep their backslash); filter the
  names with :func:`proxy.sql.like.shows_database`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from auth.errors import (
    ErrorCode,
    SqlError,
    cross_database,
    no_database_selected,
    not_supported,
    parse_error,
    sql_error,
)
from auth.privileges import Priv, Requirement
from proxy.sql.account_grammar import lex_with_digit_names
from proxy.sql.charsets import SAFE_CHARSETS, unsupported_charset
from proxy.sql.lexer import (
    DEFAULT_MODE,
    NOT_ALIAS,
    RESERVED_WORDS,
    LexedStatement,
    LexError,
    LexMode,
    ServerFlavor,
    Token,
    TokenKind,
    lex,
    server_name,
    shapes,
    sliced_lower,
    sliced_undoubled,
    sliced_upper,
    spaced_call,
    utf8_offsets,
)
from proxy.sql.mariadb_words import NATIVE_FUNCTIONS
from proxy.sql.names import unaccounted

__all__ = [
    "BIND_NAMED_LOCK",
    "BIND_ONE_SHOT_SETTING",
    "BIND_TABLE_LOCK",
    "BIND_TEMPORARY_TABLE",
    "BIND_USER_VARIABLE",
    "CACHE_SIZE",
    "LEXING_VARIABLES",
    "DatabaseStatement",
    "Identity",
    "IdentityCall",
    "Kind",
    "LexMode",
    "NeedsParse",
    "ServerFlavor",
    "Statement",
    "analyze",
    "analyze_uncached",
    "analyze_with_digest",
    "cache_clear",
    "cache_info",
    "cached_shape",
    "fast_literals",
    "lexing_state",
]


class Kind(enum.Enum):
    QUERY = "query"  # relay after checking requirements
    USE = "use"
    SHOW_DATABASES = "show_databases"
    SHOW_PROCESSLIST = "show_processlist"
    SHOW_DIGEST = "show_digest"  # SHOW QUERY_DIGEST, answered by the proxy
    SHOW_STATUS = "show_status"  # SHOW [GLOBAL|SESSION] STATUS: the proxy's own counters
    KILL = "kill"
    ACCOUNT = "account"  # answered by the proxy's account grammar
    SESSION = "session"  # relay (after checking requirements); may change the lexer mode
    DATABASE = "database"  # CREATE / ALTER / DROP DATABASE: decided by the plan
    SHOW_EVENTS = "show_events"  # answered by the proxy (empty: tenants have no events)
    REFUSED = "refused"


class Identity(enum.Enum):
    """What an identity function or shard-internal variable asks for; the proxy answers it."""

    CURRENT_USER = "current_user"  # CURRENT_USER(), CURRENT_USER: the matched account
    USER = "user"  # USER(), SESSION_USER(), SYSTEM_USER(): the user at the client's address
    CONNECTION_ID = "connection_id"  # the proxy's connection id
    HOSTNAME = "hostname"  # @@hostname, @@global.hostname: the proxy's
    DATADIR = "datadir"
    PORT = "port"
    SOCKET = "socket"
    # About the session's last statement: answered by the proxy only when that statement ran
    # on a backend connection another session has since taken (proxy.session.link.Carried).
    FOUND_ROWS = "found_rows"  # FOUND_ROWS()
    ROW_COUNT = "row_count"  # ROW_COUNT()
    WARNING_COUNT = "warning_count"  # @@[session.]warning_count
    ERROR_COUNT = "error_count"  # @@[session.]error_count
    # information_schema's privilege tables (``information_schema.USER_PRIVILEGES`` ...): the
    # account's own grants, from the catalog (the shard's would be its mirror's;
    # ``proxy.plan.grants``). ``GRANTS_QUALIFIER``: the ``information_schema.`` of a column
    # named ``information_schema.TABLE_PRIVILEGES.GRANTEE``, which then names the derived table.
    USER_PRIVILEGES = "USER_PRIVILEGES"
    SCHEMA_PRIVILEGES = "SCHEMA_PRIVILEGES"
    TABLE_PRIVILEGES = "TABLE_PRIVILEGES"
    COLUMN_PRIVILEGES = "COLUMN_PRIVILEGES"
    GRANTS_QUALIFIER = "grants_qualifier"


GRANT_VIEWS: Final = frozenset(
    {
        Identity.USER_PRIVILEGES,
        Identity.SCHEMA_PRIVILEGES,
        Identity.TABLE_PRIVILEGES,
        Identity.COLUMN_PRIVILEGES,
    }
)


@dataclass(frozen=True, slots=True)
class IdentityCall:
    """One identity function call or shard-internal variable in a statement: the proxy replaces
    it, before relaying, by the value it stands for (see ``proxy.plan.rewrite``).

    In a cached analysis (a shape's fact) ``start`` and ``end`` are -1; the statements
    :func:`analyze` returns carry the call's byte offsets in the request's UTF-8
    (``surrogateescape``) encoding, and ``text``, the call as written."""

    identity: Identity
    select_item: bool  # a select item of its own without an alias: its column gets ``text``
    start: int = -1
    end: int = -1
    text: str = ""
    # A privilege table (GRANT_VIEWS): the name the statement knows it by (its alias, or its
    # name as written); ``select_item`` then says it has no alias (the derived table gets one).
    alias: str = ""
    # The select items without an alias the call is inside (itself, or an expression around
    # it; in a subquery's list and the lists around it): (byte offset of the item's end, its
    # text as written), innermost first. MariaDB names such an item's column by its text,
    # which the proxy's answer in the call's place would change: it gets that text as alias.
    items: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DatabaseStatement:
    """CREATE / ALTER / DROP DATABASE (or SCHEMA). Whether it is allowed depends on whose
    database the session is in, which the plan knows (``proxy.plan.plan``)."""

    verb: str  # "CREATE", "CREATE OR REPLACE", "ALTER" or "DROP"
    name: str | None  # as written; None: ALTER DATABASE of the current database
    if_not_exists: bool = False  # CREATE ... IF NOT EXISTS: an existing database is a note


@dataclass(frozen=True, slots=True)
class Statement:
    kind: Kind
    text: str  # executable text (comments removed, executable comments resolved): for the
    #            digest, the processlist and the account grammar (ACCOUNT)
    requirements: tuple[Requirement, ...] = ()
    error: SqlError | None = None  # set iff kind is REFUSED
    target_db: str | None = None  # USE
    kill_id: int | None = None  # KILL [QUERY|CONNECTION] n
    kill_query: bool = False
    full: bool = False  # SHOW FULL PROCESSLIST
    lex_mode: LexMode | None = None  # SESSION: the new lexer mode when sql_mode changes
    reads_information_schema: bool = False
    charset: str | None = None  # SESSION: the new client character set (SET NAMES etc.)
    # Session state the statement leaves on the backend connection that a new connection would
    # not have (BIND_* reasons): a lost connection then cannot be replaced silently.
    binds: frozenset[str] = frozenset()
    # System variables the statement sets: the session reads their values back from the shard
    # afterwards and replays them on any new backend connection.
    readback: tuple[str, ...] = ()
    # SET [SESSION] TRANSACTION characteristics, replayed as written (words only, so the text
    # means the same under every sql_mode).
    replay: tuple[str, ...] = ()
    # A variable that decides how statements are lexed (LEXING_VARIABLES) is set from an
    # expression: the proxy learns its value only by reading it back.
    lexing_unknown: bool = False
    # SHOW WARNINGS|ERRORS [LIMIT ...] / SHOW COUNT(*) WARNINGS|ERRORS
    shows_warnings: bool = False
    like_pattern: str | None = None  # SHOW DATABASES|STATUS LIKE: the pattern's value
    database: DatabaseStatement | None = None  # set iff kind is DATABASE
    # BIND_* reasons the statement ends on the backend connection when it succeeds.
    releases: frozenset[str] = frozenset()
    # CREATE VIEW ... DEFINER = account: the account's offsets in the request's text, which the
    # session replaces with CURRENT_USER before relaying (a view's definer is its creator): byte
    # offsets into the request's text, as the session encodes it (utf8, surrogateescape).
    definer: tuple[int, int] | None = None
    start: int = 0  # the statement's original text is sql[start:end] (proxy.sql.lexer)
    end: int = 0
    # QUERY / SESSION: identity function calls and shard-internal variables the proxy answers
    # (replaced in the relayed text at these positions).
    identity: tuple[IdentityCall, ...] = ()
    # QUERY: its answer may show a view's definer (SHOW CREATE TABLE|VIEW, information_schema's
    # VIEWS named): the relay names the client's accounts there, not their mirrors
    # (proxy.session.definers).
    shows_definers: bool = False
    # QUERY / SESSION: running it sets FOUND_ROWS() (MariaDB's rules, ``_counts_found_rows``);
    # else the value stays the statement before's.
    counts_found_rows: bool = False


CACHE_SIZE: Final = 10_000

# Why a statement ties the session to its backend connection (Statement.binds).
BIND_USER_VARIABLE: Final = "user variable"
BIND_TEMPORARY_TABLE: Final = "temporary table"
BIND_NAMED_LOCK: Final = "named lock"
BIND_TABLE_LOCK: Final = "table lock"
BIND_ONE_SHOT_SETTING: Final = "one-shot setting"
# NEXTVAL(s) / NEXT VALUE FOR s / SETVAL(s, ...): the connection remembers the value for
# LASTVAL(s) / PREVIOUS VALUE FOR s, per sequence; no statement can put it on another one.
BIND_SEQUENCE_VALUE: Final = "sequence value"
# Variables that shape how the proxy must lex the session's next statements.
LEXING_VARIABLES: Final = (
    "sql_mode",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
)

# --------------------------------------------------------------------------------------------
# Errors


class _Refuse(Exception):
    def __init__(self, error: SqlError) -> None:
        super().__init__(error.message)
        self.error = error


# Stands for "1064 near the statement's own text"; replaced by the caller, which knows the text.
_PARSE: Final = SqlError(ErrorCode.PARSE.errno, ErrorCode.PARSE.sqlstate, "<parse error>")


def _parse_error() -> _Refuse:
    return _Refuse(_PARSE)


def _need(priv: str) -> _Refuse:
    return _Refuse(
        sql_error(
            ErrorCode.SPECIFIC_ACCESS_DENIED,
            f"Access denied; you need (at least one of) the {priv} privilege(s) for this operation",
        )
    )


def _unsupported(what: str) -> _Refuse:
    return _Refuse(not_supported(what))


# --------------------------------------------------------------------------------------------
# Vocabulary

_DANGEROUS_FUNCTIONS: Final = frozenset(
    {
        "SYS_EXEC",
        "SYS_EVAL",
        "SYS_GET",
        "SYS_SET",
        "SYS_BINEVAL",
        "LIB_MYSQLUDF_SYS_INFO",
        "MASTER_POS_WAIT",
        "MASTER_GTID_WAIT",
        "SOURCE_POS_WAIT",
        "WAIT_FOR_EXECUTED_GTID_SET",
        "WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS",
    }
)
_FILE_FUNCTIONS: Final = frozenset({"LOAD_FILE"})
_SEQUENCE_FUNCTIONS: Final = {
    "NEXTVAL": (Priv.INSERT, Priv.SELECT),
    "SETVAL": (Priv.INSERT, Priv.SELECT),
    "LASTVAL": (Priv.SELECT,),
}
_ENGINES_OK: Final = frozenset(
    {"INNODB", "XTRADB", "MYISAM", "ARIA", "MEMORY", "HEAP", "CSV", "ARCHIVE", "BLACKHOLE"}
)
# Words that may follow an unquoted column named ENGINE or TYPE (so it is not the table option).
_DATA_TYPES: Final = frozenset(
    """
    BIT TINYINT SMALLINT MEDIUMINT INT INTEGER BIGINT INT1 INT2 INT3 INT4 INT8 DECIMAL DEC
    NUMERIC FIXED FLOAT DOUBLE REAL BOOL BOOLEAN SERIAL DATE DATETIME TIMESTAMP TIME YEAR CHAR
    VARCHAR NCHAR NVARCHAR NATIONAL BINARY VARBINARY TINYBLOB BLOB MEDIUMBLOB LONGBLOB TINYTEXT
    TEXT MEDIUMTEXT LONGTEXT LONG ENUM SET JSON GEOMETRY POINT LINESTRING POLYGON MULTIPOINT
    MULTILINESTRING MULTIPOLYGON GEOMETRYCOLLECTION INET4 INET6 UUID VECTOR
    """.split()  # noqa: SIM905
)
_INFORMATION_SCHEMA: Final = "information_schema"
# information_schema tables whose rows show other sessions of the (shared) backend account.
# information_schema tables that show other accounts' statements or the shard's own counters
# (every tenant's): 1227 (PROCESS). SHOW PROCESSLIST and SHOW STATUS are the proxy's own.
_IS_OTHER_SESSIONS: Final = frozenset({"PROCESSLIST", "GLOBAL_STATUS", "SESSION_STATUS"})

# Character sets whose multi-byte characters never contain a byte below 0x80 (proxy.sql.charsets).
_SAFE_CHARSETS: Final = SAFE_CHARSETS
_LONGEST_CHARSET: Final = max(map(len, SAFE_CHARSETS))

# Session variables a client may set (literal values only).
_SESSION_VARIABLES: Final = frozenset(
    """
    autocommit time_zone sql_select_limit max_statement_time max_execution_time
    group_concat_max_len transaction_isolation tx_isolation transaction_read_only tx_read_only
    sql_safe_updates sql_auto_is_null foreign_key_checks unique_checks wait_timeout
    interactive_timeout net_read_timeout net_write_timeout lc_time_names lc_messages
    div_precision_increment sql_big_selects max_join_size sql_quote_show_create sql_notes
    sql_warnings big_tables sql_buffer_result last_insert_id insert_id identity timestamp
    auto_increment_increment auto_increment_offset innodb_lock_wait_timeout lock_wait_timeout
    profiling profiling_history_size optimizer_search_depth optimizer_prune_level
    optimizer_switch join_cache_level max_sort_length eq_range_index_dive_limit sort_buffer_size
    join_buffer_size tmp_table_size max_heap_table_size read_buffer_size read_rnd_buffer_size
    max_error_count explicit_defaults_for_timestamp default_week_format
    updatable_views_with_limit query_cache_type max_recursive_iterations
    in_predicate_conversion_threshold check_constraint_checks sql_if_exists
    cte_max_recursion_depth session_track_system_variables
    """.split()  # noqa: SIM905
)
_CHARSET_VARIABLES: Final = frozenset(
    {"character_set_client", "character_set_connection", "character_set_results"}
)
_SQL_MODES_REFUSED: Final = frozenset({"ORACLE", "MSSQL", "DB2", "POSTGRESQL", "MAXDB"})

# Statement openers, for REFUSED errors of statements the proxy recognises but does not relay.
_UNSUPPORTED_OPENERS: Final = {
    "HANDLER": "HANDLER",
    "CALL": "CALL",
    "DO": "DO",
    "PREPARE": "PREPARE",
    "EXECUTE": "EXECUTE",
    "DEALLOCATE": "DEALLOCATE PREPARE",
    "XA": "XA transactions",
    "CACHE": "CACHE INDEX",
    "SIGNAL": "SIGNAL",
    "RESIGNAL": "RESIGNAL",
    "GET": "GET DIAGNOSTICS",
    "DECLARE": "DECLARE",
    "VALUES": "VALUES as a statement",
    "TABLE": "TABLE as a statement",
    "BACKUP": "BACKUP",
    "IMPORT": "IMPORT TABLE",
}
_GLOBAL_PRIVILEGE_OPENERS: Final = {
    "FLUSH": "RELOAD",
    "RESET": "RELOAD",
    "PURGE": "SUPER",
    "CHANGE": "SUPER",
    "STOP": "SUPER",
    "BINLOG": "SUPER",
    "SHUTDOWN": "SHUTDOWN",
    "RESTART": "SHUTDOWN",
    "INSTALL": "SUPER",
    "UNINSTALL": "SUPER",
}
_ACCOUNT_OBJECTS: Final = frozenset({"USER", "ROLE"})
# FLUSH [NO_WRITE_TO_BINLOG | LOCAL] PRIVILEGES, after FLUSH (other FLUSH forms need RELOAD).
_FLUSH_PRIVILEGES: Final = (
    ["PRIVILEGES"],
    ["NO_WRITE_TO_BINLOG", "PRIVILEGES"],
    ["LOCAL", "PRIVILEGES"],
)


# --------------------------------------------------------------------------------------------
# Images (the shape-key tokens): their kind is known from their first character.


def _is_word(image: str) -> bool:
    c = image[0]
    return c.isalpha() or c == "_"


# (Images and values of 16 MB names: upper-cased and undoubled a slice at a time -- one call
# over the whole name holds the interpreter lock for 10-100 ms -- and compared with a shorter
# word without changing its case: case mappings never shorten a text.)
_LONGEST_RESERVED: Final = max(map(len, RESERVED_WORDS))


def _lower_is(text: str, target: str) -> bool:
    """``text.lower() == target`` (lower-case), a longer ``text`` not lower-cased."""
    return len(text) <= len(target) and text.lower() == target


def _upper_is(text: str, target: str) -> bool:
    """``text.upper() == target`` (upper-case), a longer ``text`` not upper-cased."""
    return len(text) <= len(target) and text.upper() == target


def _kw(image: str) -> str:
    return sliced_upper(image) if _is_word(image) else image


def _ident(image: str) -> str | None:
    """The name an image stands for, if it can be an identifier."""
    if image[0] == "`":
        return sliced_undoubled(image[1:-1], "`")
    if _is_word(image) and (len(image) > _LONGEST_RESERVED or image.upper() not in RESERVED_WORDS):
        return image
    return None


def _fn_name(image: str) -> str | None:
    """The upper-cased name if the image is a word or quoted name (a possible function name)."""
    if image[0] == "`":
        return sliced_upper(sliced_undoubled(image[1:-1], "`"))
    if _is_word(image):
        return sliced_upper(image)
    return None


class _Cursor:
    """A cursor over a statement's images, with keyword helpers."""

    __slots__ = ("i", "imgs", "kws")

    def __init__(self, imgs: Sequence[str], start: int = 0) -> None:
        self.imgs = imgs
        self.kws = [_kw(i) for i in imgs]
        self.i = start

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.kws[j] if j < len(self.kws) else ""

    def at_end(self) -> bool:
        return self.i >= len(self.imgs)

    def accept(self, *words: str) -> bool:
        """Consume the keyword sequence ``words`` if it comes next."""
        n = len(words)
        if self.kws[self.i : self.i + n] == list(words):
            self.i += n
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise _parse_error()

    def name(self) -> str:
        if self.at_end():
            raise _parse_error()
        name = _ident(self.imgs[self.i])
        if name is None or name == "":
            raise _parse_error()
        self.i += 1
        return name

    def table_ref(self) -> tuple[str | None, str]:
        """``name`` or ``db.name``."""
        first = self.name()
        if self.peek() == ".":
            self.i += 1
            return first, self.name()
        return None, first

    def skip_wait(self) -> None:
        """``WAIT n`` / ``NOWAIT``."""
        if self.accept("NOWAIT"):
            return
        if self.peek() == "WAIT" and self.peek(1) == "?":
            self.i += 2

    def rest(self) -> list[str]:
        return list(self.imgs[self.i :])


# --------------------------------------------------------------------------------------------
# Requirements


class _Reqs:
    """Requirements collected for one statement, in first-seen order."""

    __slots__ = ("db", "items", "reads_is")

    def __init__(self, current_db: str | None) -> None:
        self.db = current_db
        self.items: dict[Requirement, None] = {}
        self.reads_is = False

    def resolve(self, db: str | None, name: str) -> str | None:
        """The database a table name lives in, or None for information_schema; refuses others."""
        if name == "":
            raise _parse_error()
        if db is None:
            if self.db is None:
                raise _Refuse(no_database_selected())
            if self.db.lower() == _INFORMATION_SCHEMA:
                self.reads_is = True
                return None
            return self.db
        if _lower_is(db, _INFORMATION_SCHEMA):
            self.reads_is = True
            return None
        if self.db is None or not _lower_is(db, self.db.lower()):
            raise _Refuse(cross_database(db))
        return db

    def table(self, db: str | None, name: str, *privs: Priv, column: str | None = None) -> None:
        resolved = self.resolve(db, name)
        if resolved is None:
            if not name.isascii():
                # Every information_schema table is named in ASCII; MariaDB folds the case of
                # others its own way (PROCESSL\u0130ST is PROCESSLIST, USER_PR\u0130V\u0130LEGES
                # USER_PRIVILEGES), which the checks here by name would not follow.
                raise _Refuse(not_supported("an information_schema table named beyond ASCII"))
            if name.upper() in _IS_OTHER_SESSIONS:
                raise _need("PROCESS")
            if any(p is not Priv.SELECT for p in privs):
                raise _Refuse(not_supported("writing to information_schema"))
            return
        for p in privs:
            self.items[Requirement(p, resolved, name, column=column)] = None

    def database(self, db: str | None, priv: Priv) -> None:
        """A database-level requirement (sequences) on ``db`` or the current database."""
        resolved = self.resolve(db, "?")
        if resolved is None:
            raise _Refuse(not_supported("sequences in information_schema"))
        self.items[Requirement(priv, resolved, None)] = None

    def merge(self, other: _Reqs) -> None:
        self.items.update(other.items)
        self.reads_is = self.reads_is or other.reads_is

    def result(self) -> tuple[Requirement, ...]:
        return tuple(self.items)


# --------------------------------------------------------------------------------------------
# sqlglot


class _QuietSqlglot(logging.Filter):
    """Silence sqlglot's warnings (Command fallbacks, JSON paths) while the analyser parses."""

    active = 0

    def filter(self, record: logging.LogRecord) -> bool:
        return _QuietSqlglot.active == 0


logging.getLogger("sqlglot").addFilter(_QuietSqlglot())
log = logging.getLogger(__name__)
_DIALECT: Final = sqlglot.Dialect.get_or_raise("mysql")


class NeedsParse(Exception):
    """:func:`analyze_with_digest` with ``parse=False`` met a statement that needs sqlglot."""


_parsing = threading.local()  # .forbidden: set while an analysis must not parse

# The most text sqlglot is given for one statement (its shape: literals replaced, literal
# lists collapsed, comments gone). sqlglot takes seconds over a few hundred kB of structure
# (a 1 MB CASE: ~9 s), time one tenant's statement would hold an analysis thread and the
# interpreter that every tenant shares; the bound also caps the tokens (each is at least one
# character and a space).
MAX_PARSED_TEXT: Final = 256 * 1024
TOO_LONG_TO_PARSE: Final = (
    f"statements whose structure is longer than {MAX_PARSED_TEXT} bytes (literals and lists "
    "of literals not counted)"
)


def _parse_one(text: str) -> exp.Expression:
    if getattr(_parsing, "forbidden", False):
        raise NeedsParse
    if len(text) > MAX_PARSED_TEXT:
        raise _unsupported(TOO_LONG_TO_PARSE)
    _QuietSqlglot.active += 1
    try:
        trees = _DIALECT.parse(text)
    except SqlglotError:
        raise _parse_error() from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        # sqlglot is not expected to raise these, but never let them escape as a crash.
        raise _parse_error() from None
    finally:
        _QuietSqlglot.active -= 1
    if len(trees) != 1 or trees[0] is None:
        raise _parse_error()
    tree = trees[0]
    assert isinstance(tree, exp.Expression)
    return tree


_ALLOWED_NODES: Final[frozenset[type[Any]]] = frozenset(
    {
        exp.Select,
        exp.Union,
        exp.Except,
        exp.Intersect,
        exp.Subquery,
        exp.From,
        exp.Join,
        exp.Where,
        exp.Group,
        exp.Having,
        exp.Order,
        exp.Ordered,
        exp.Limit,
        exp.Offset,
        exp.Distinct,
        exp.With,
        exp.CTE,
        exp.TableAlias,
        exp.Table,
        exp.Alias,
        exp.Aliases,
        exp.Column,
        exp.Identifier,
        exp.Star,
        exp.Literal,
        exp.Null,
        exp.Boolean,
        exp.Placeholder,
        exp.Parameter,
        exp.SessionParameter,
        exp.Var,
        exp.Tuple,
        exp.Values,
        exp.Introducer,
        exp.National,
        exp.HexString,
        exp.BitString,
        exp.Interval,
        exp.IntervalSpan,
        exp.DataType,
        exp.DataTypeParam,
        exp.CharacterSet,
        exp.Window,
        exp.WindowSpec,
        exp.Lock,
        exp.IndexTableHint,
        exp.Insert,
        exp.Update,
        exp.Delete,
        exp.Schema,
        exp.OnConflict,
        exp.Returning,
        exp.Rollup,
        exp.Partition,
        exp.JSONSchema,
        exp.JSONColumnDef,
        exp.JSONPath,
        exp.JSONPathRoot,
        exp.JSONPathKey,
        exp.JSONPathSubscript,
        exp.JSONPathWildcard,
        exp.JSONPathSlice,
        exp.JSONPathRecursive,
        exp.JSONPathSelector,
        exp.JSONPathUnion,
        exp.JSONPathFilter,
        exp.JSONPathScript,
        exp.JSONPathPart,
        exp.JSONKeyValue,
        exp.JSONValue,
        exp.FormatJson,
        exp.IgnoreNulls,
        exp.RespectNulls,
        exp.When,
        exp.Whens,
    }
)
_ALLOWED_BASES: Final = (exp.Func, exp.Binary, exp.Unary, exp.Predicate)
_QUERY_ROOTS: Final = (exp.Select, exp.Union, exp.Except, exp.Intersect, exp.Subquery)
_BARE_QUERIES: Final = (exp.Select, exp.Union, exp.Except, exp.Intersect)
# What MariaDB has after FROM and JOIN: a table (or JSON_TABLE, DUAL), a parenthesised query
# or join, a table value constructor.
_TABLE_SOURCES: Final = (exp.Table, exp.Subquery, exp.Values)

# The arguments each node type may have set, and the values of its keyword arguments: what
# MariaDB's grammar has. sqlglot reads clauses of other dialects into further arguments of
# the same node types (``t1 SEMI JOIN t2``, ``FROM ONLY t``, ``DISTINCT ON``, ``GROUP BY
# CUBE``, ...): a statement with one is refused like an unknown node type.
_SET_OPERATION_ARGS: Final = frozenset(
    {"with_", "this", "expression", "distinct", "order", "limit", "offset"}
)
_ALLOWED_ARGS: Final[dict[type[Any], frozenset[str]]] = {
    exp.Select: frozenset(
        {
            "with_",
            "expressions",
            "distinct",
            "operation_modifiers",
            "from_",
            "joins",
            "where",
            "group",
            "having",
            "windows",
            "order",
            "limit",
            "offset",
            "locks",
        }
    ),
    exp.Union: _SET_OPERATION_ARGS,
    exp.Except: _SET_OPERATION_ARGS,
    exp.Intersect: _SET_OPERATION_ARGS,
    exp.Subquery: frozenset({"this", "alias", "with_", "joins", "order", "limit", "offset"}),
    exp.From: frozenset({"this"}),
    exp.Join: frozenset({"this", "on", "using", "side", "kind", "method"}),
    exp.Table: frozenset({"this", "alias", "db", "catalog", "joins", "hints", "partition"}),
    exp.TableAlias: frozenset({"this", "columns"}),
    exp.Column: frozenset({"this", "table", "db", "catalog"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Insert: frozenset(
        {"this", "expression", "conflict", "returning", "ignore", "partition", "with_"}
    ),
    exp.Update: frozenset({"with_", "this", "expressions", "where", "order", "limit", "returning"}),
    exp.Delete: frozenset(
        {"with_", "this", "using", "where", "returning", "order", "limit", "tables"}
    ),
    exp.With: frozenset({"expressions", "recursive"}),
    exp.CTE: frozenset({"this", "alias"}),
    exp.Lock: frozenset({"update", "wait"}),
    exp.Limit: frozenset({"this", "expression", "offset"}),
    exp.Offset: frozenset({"this", "expression"}),
    exp.Order: frozenset({"this", "expressions"}),
    exp.Ordered: frozenset({"this", "desc", "nulls_first"}),
    exp.Group: frozenset({"expressions", "rollup"}),
    exp.Window: frozenset({"this", "partition_by", "order", "spec", "alias", "over"}),
    exp.Values: frozenset({"expressions", "alias"}),
    exp.Alias: frozenset({"this", "alias"}),
    exp.Star: frozenset(),
    exp.Distinct: frozenset({"expressions"}),
    exp.Partition: frozenset({"expressions"}),
    exp.IndexTableHint: frozenset({"this", "expressions", "target"}),
    exp.OnConflict: frozenset({"duplicate", "expressions", "action"}),
    exp.Returning: frozenset({"expressions"}),
}
_ARG_VALUES: Final[dict[tuple[type[Any], str], frozenset[str]]] = {
    (exp.Join, "side"): frozenset({"LEFT", "RIGHT"}),
    (exp.Join, "kind"): frozenset({"INNER", "CROSS", "OUTER", "STRAIGHT_JOIN"}),
    (exp.Join, "method"): frozenset({"NATURAL"}),
    (exp.IndexTableHint, "this"): frozenset({"USE", "FORCE", "IGNORE"}),
}


def _check_args(node: exp.Expression, allowed: frozenset[str]) -> None:
    t = type(node)
    for key, value in node.args.items():
        if value is None or value is False or (isinstance(value, list | str) and not value):
            continue
        if key not in allowed:
            raise _unsupported(f"SQL construct {t.__name__} {key}")
        values = _ARG_VALUES.get((t, key))
        if values is not None and (not isinstance(value, str) or value.upper() not in values):
            raise _unsupported(f"SQL construct {t.__name__} {key} {value}")


def _check_names(imgs: Sequence[str], tree: exp.Expression) -> None:
    """The structural check (:mod:`proxy.sql.names`): every token that can only be a name for
    MariaDB is a name in sqlglot's tree, else the two parsers read different statements."""
    at = unaccounted(imgs, tree)
    if at is None:
        return
    image = imgs[at]
    if image[0] == "`" and at + 1 < len(imgs) and imgs[at + 1] == "(":
        raise _unsupported(
            f"{image}(...) where MariaDB calls a stored function {image} (a quoted or qualified"
            " name, or a built-in name not followed at once by '(' without IGNORE_SPACE) and the"
            " proxy's parser the built-in"
        )
    if image[0] == "`":
        raise _unsupported(f"the name {image} in this position")
    raise _unsupported(
        f"the unquoted word {image} in this position (the proxy's parser reads it as a keyword;"
        " a name needs backticks here)"
    )


def _children(node: exp.Expression) -> Iterator[exp.Expression]:
    for value in node.args.values():
        if isinstance(value, exp.Expression):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, exp.Expression):
                    yield item


def _ident_name(node: Any) -> str | None:
    if node is None:
        return None
    if isinstance(node, exp.Identifier):
        name = node.this
        return name if isinstance(name, str) else None
    raise _parse_error()


def _table_parts(node: exp.Table) -> tuple[str | None, str] | None:
    """``(db, name)`` of a table reference; None for DUAL and JSON_TABLE."""
    this = node.this
    if not isinstance(this, exp.Identifier):
        if isinstance(this, exp.JSONTable):
            return None
        raise _unsupported("table functions")
    if node.args.get("catalog") is not None:
        raise _parse_error()
    name = this.this
    if not isinstance(name, str):
        raise _parse_error()
    db = _ident_name(node.args.get("db"))
    if name == "?" or db == "?":
        # sqlglot accepts a string as a table name where MySQL does not (the shape key writes
        # every string as '?'); no real table is named "?"
        raise _parse_error()
    if not this.quoted:
        if db is None and name.upper() == "DUAL":
            return None
        if name.upper() in RESERVED_WORDS:
            raise _parse_error()  # sqlglot took a keyword for a name
    return db, name


def _alias_of(node: exp.Expression) -> str | None:
    alias = node.args.get("alias")
    if alias is None:
        return None
    if not isinstance(alias, exp.TableAlias):
        raise _parse_error()
    ident = alias.this
    if not isinstance(ident, exp.Identifier):
        raise _parse_error()
    name = str(ident.this)
    if name == "?" or (not ident.quoted and name.upper() in RESERVED_WORDS):
        raise _parse_error()
    return name


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).upper()
    return ""


class _TreeWalker:
    """Validates a sqlglot tree and collects its table reads into ``reqs``."""

    def __init__(self, reqs: _Reqs, skip: set[int]) -> None:
        self.reqs = reqs
        self.skip = skip  # ids of Table nodes already accounted for (write targets)

    def walk(self, node: exp.Expression, ctes: frozenset[str]) -> None:
        t = type(node)
        if t not in _ALLOWED_NODES and not isinstance(node, _ALLOWED_BASES):
            raise _unsupported(f"SQL construct {t.__name__}")
        if t is exp.Table:
            assert isinstance(node, exp.Table)
            self._table(node, ctes)
        elif t is exp.Anonymous:
            self._function(node)
        elif t is exp.Dot:
            self._dot(node)
        elif t is exp.Select and not node.expressions:
            raise _parse_error()  # "SELECT" alone, or "SELECT FROM t": MariaDB wants an item
        elif (t is exp.From or t is exp.Join) and not isinstance(node.this, _TABLE_SOURCES):
            if isinstance(node.this, _BARE_QUERIES):
                raise _parse_error()  # sqlglot read "FROM SELECT ..." that MySQL rejects
            raise _unsupported("table functions")  # FROM UNNEST(...) and the like
        allowed = _ALLOWED_ARGS.get(t)
        if allowed is not None:
            _check_args(node, allowed)
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            ctes = self._with(with_, ctes)
        for child in _children(node):
            if child is not with_:
                self.walk(child, ctes)

    def _with(self, with_: exp.With, ctes: frozenset[str]) -> frozenset[str]:
        recursive = bool(with_.args.get("recursive"))
        names = set(ctes)
        for cte in with_.expressions:
            if not isinstance(cte, exp.CTE):
                raise _parse_error()
            name = _alias_of(cte)
            if name is None:
                raise _parse_error()
            alias = cte.args.get("alias")
            assert isinstance(alias, exp.TableAlias)
            for col in alias.args.get("columns") or ():
                self.walk(col, frozenset(names))
            body_scope = (names | {name}) if recursive else set(names)
            self.walk(cte.this, frozenset(body_scope))
            names.add(name)
        return frozenset(names)

    def _table(self, node: exp.Table, ctes: frozenset[str]) -> None:
        parts = _table_parts(node)
        _alias_of(node)
        if parts is None or id(node) in self.skip:
            return
        db, name = parts
        if db is None and name in ctes:
            return  # a CTE in scope
        self.reqs.table(db, name, Priv.SELECT)

    def _function(self, node: exp.Expression) -> None:
        name = _function_name(node)
        if name in _FILE_FUNCTIONS:
            raise _need("FILE")
        if name in _DANGEROUS_FUNCTIONS or name.startswith("INTERNAL_"):
            raise _unsupported(f"function {name}")
        privs = _SEQUENCE_FUNCTIONS.get(name)
        if privs is not None:
            args = node.expressions
            if not args or not isinstance(args[0], exp.Column):
                raise _parse_error()
            col = args[0]
            if col.args.get("db") is not None or col.args.get("catalog") is not None:
                raise _parse_error()
            seq = _ident_name(col.args.get("this"))
            if seq is None:
                raise _parse_error()
            self.reqs.table(_ident_name(col.args.get("table")), seq, *privs)

    def _dot(self, node: exp.Expression) -> None:
        """``db.function(...)``: a stored function; only in the current database."""
        left = node.this
        right = node.args.get("expression")
        if not isinstance(left, exp.Identifier) or not isinstance(right, exp.Func):
            raise _unsupported("qualified names of this form")
        db = str(left.this)
        if self.reqs.db is None or db.lower() != self.reqs.db.lower():
            raise _Refuse(cross_database(db))


def _flatten_table_refs(node: exp.Expression | None, out: list[exp.Table]) -> None:
    """Every Table of a table-reference tree (joins, parenthesised joins), not derived tables."""
    if node is None:
        return
    if isinstance(node, exp.Table):
        out.append(node)
        for join in node.args.get("joins") or ():
            _flatten_table_refs(join.this, out)
    elif isinstance(node, exp.Subquery) and isinstance(node.this, exp.Table | exp.Subquery):
        _flatten_table_refs(node.this, out)
        for join in node.args.get("joins") or ():
            _flatten_table_refs(join.this, out)


def _matching(entries: list[exp.Table], qualifier: str, qdb: str | None) -> list[exp.Table]:
    """Entries a ``qualifier`` (alias or table name) may denote, case-insensitively."""
    q = qualifier.lower()
    found: list[exp.Table] = []
    for entry in entries:
        parts = _table_parts(entry)
        if parts is None:
            continue
        db, name = parts
        alias = _alias_of(entry)
        if (qdb is None and alias is not None and alias.lower() == q) or (
            name.lower() == q and (qdb is None or db is None or db.lower() == qdb.lower())
        ):
            found.append(entry)
    return found


def _write(reqs: _Reqs, table: exp.Table, *privs: Priv, column: str | None = None) -> None:
    parts = _table_parts(table)
    if parts is None:
        raise _parse_error()
    reqs.table(parts[0], parts[1], *privs, column=column)


def _first_column(node: exp.Expression | None) -> str | None:
    """The first column ``node`` reads, in the statement's order and not inside a subquery:
    its name as written (MariaDB's 1143 names it so), ``*`` for a star."""
    stack: list[exp.Expression] = [] if node is None else [node]
    while stack:
        item = stack.pop()
        if isinstance(item, exp.Select | exp.Subquery) and item is not node:
            continue
        if isinstance(item, exp.Star):
            return "*"
        if isinstance(item, exp.Column):
            ident = item.this
            if isinstance(ident, exp.Star):
                return "*"
            if isinstance(ident, exp.Identifier) and not (
                item.args.get("table") is None
                and not ident.quoted
                and str(ident.this).upper() in RESERVED_WORDS
            ):
                return str(ident.this)
            continue
        stack.extend(reversed(list(_children(item))))
    return None


def _returning_column(tree: exp.Insert) -> str | None:
    """The column MariaDB names (1143) when an INSERT ... RETURNING's account lacks SELECT on
    its table: the first RETURNING reads (``*``: the table's first), else the first its VALUES
    read, else the first of its column list (SET's too), else the first ON DUPLICATE KEY
    UPDATE assigns. None: it reads none, and MariaDB needs no SELECT (``INSERT INTO t VALUES
    (...) RETURNING 1`` runs)."""
    found = _first_column(tree.args.get("returning"))
    source = tree.args.get("expression")
    if found is None and isinstance(source, exp.Values):
        found = _first_column(source)
    if found is None and isinstance(tree.this, exp.Schema) and tree.this.expressions:
        first = tree.this.expressions[0]
        ident = first.this if isinstance(first, exp.Column) else first
        if isinstance(ident, exp.Identifier):
            found = str(ident.this)
    conflict = tree.args.get("conflict")
    if found is None and isinstance(conflict, exp.OnConflict) and conflict.expressions:
        assigned = conflict.expressions[0]
        found = _first_column(assigned.this if isinstance(assigned, exp.EQ) else assigned)
    return found


def _read_columns(tree: exp.Expression, targets: set[int]) -> Iterator[exp.Column]:
    """The Column nodes of a DML tree that read a column: not the SET targets (ids in
    ``targets``), not inside a WITH clause (a CTE cannot see the statement's own tables), not an
    unquoted reserved word sqlglot took for a column (``SET a = DEFAULT``, ``UTC_DATE``)."""
    stack: list[exp.Expression] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.With):
            continue
        if isinstance(node, exp.Column):
            ident = node.this
            if id(node) in targets or (
                node.args.get("table") is None
                and isinstance(ident, exp.Identifier)
                and not ident.quoted
                and str(ident.this).upper() in RESERVED_WORDS
            ):
                continue
            yield node
            continue
        stack.extend(_children(node))


def _column_reads(
    tree: exp.Expression, entries: list[exp.Table], targets: set[int]
) -> list[exp.Table]:
    """The tables of an UPDATE or DELETE (``entries``) whose columns it reads, which needs
    SELECT on them (MariaDB checks it per column). A column qualified with an entry's name or
    alias reads that entry; an unqualified one may read any entry -- also inside a subquery,
    which may be correlated (over-asking, never under-asking). CTE names are not tables."""
    ctes: set[str] = set()
    with_ = tree.args.get("with_")
    if isinstance(with_, exp.With):
        ctes = {name for cte in with_.expressions if (name := _alias_of(cte)) is not None}
    tables = []
    for entry in entries:
        parts = _table_parts(entry)
        if parts is not None and not (parts[0] is None and parts[1] in ctes):
            tables.append(entry)
    read: dict[int, exp.Table] = {}
    for col in _read_columns(tree, targets):
        qualifier = _ident_name(col.args.get("table"))
        cands = (
            tables
            if qualifier is None
            else _matching(tables, qualifier, _ident_name(col.args.get("db")))
        )
        for entry in cands:
            read[id(entry)] = entry
    return list(read.values())


def _dml_requirements(tree: exp.Expression, reqs: _Reqs, replace: bool) -> None:
    """What an INSERT, REPLACE, UPDATE, DELETE or query needs. Besides the write privileges
    (and SELECT on every table read): reading a column of a written table needs SELECT on it
    (UPDATE and DELETE, see ``_column_reads``); ``ON DUPLICATE KEY UPDATE`` and the targets of
    a multi-table DELETE always need SELECT too (MariaDB checks it even when no column is
    read: it reads the duplicate row and the joined rows)."""
    skip: set[int] = set()
    if isinstance(tree, exp.Insert):
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        if not isinstance(target, exp.Table):
            raise _parse_error()
        if tree.args.get("alternative") or tree.args.get("overwrite"):
            raise _parse_error()
        privs = [Priv.INSERT]
        if replace:
            privs.append(Priv.DELETE)
        conflict = tree.args.get("conflict")
        if conflict is not None:
            if not isinstance(conflict, exp.OnConflict) or not conflict.args.get("duplicate"):
                raise _parse_error()
            privs.append(Priv.UPDATE)
        _write(reqs, target, *privs)
        if tree.args.get("returning") is not None:
            # (MariaDB checks SELECT per column there: 1143 naming the first it reads)
            column = _returning_column(tree)
            if column is not None:
                _write(reqs, target, Priv.SELECT, column=column)
            elif conflict is not None:
                _write(reqs, target, Priv.SELECT)
        elif conflict is not None:
            _write(reqs, target, Priv.SELECT)
        skip.add(id(target))
    elif isinstance(tree, exp.Update):
        if tree.args.get("from_") is not None:
            raise _parse_error()
        entries: list[exp.Table] = []
        _flatten_table_refs(tree.this, entries)
        if not entries:
            raise _parse_error()
        written: dict[int, exp.Table] = {}
        set_targets: set[int] = set()
        for assignment in tree.expressions:
            if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
                raise _parse_error()
            col = assignment.this
            set_targets.add(id(col))
            if col.args.get("catalog") is not None:
                raise _parse_error()
            qualifier = _ident_name(col.args.get("table"))
            qdb = _ident_name(col.args.get("db"))
            cands = entries
            if qualifier is not None:
                if qdb is not None:
                    reqs.resolve(qdb, qualifier)  # another database: refused
                cands = _matching(entries, qualifier, qdb) or entries
            for entry in cands:
                written[id(entry)] = entry
        privs = [Priv.UPDATE]
        if tree.args.get("returning") is not None:
            privs.append(Priv.SELECT)
        for entry in written.values():
            _write(reqs, entry, *privs)
            skip.add(id(entry))
        for entry in _column_reads(tree, entries, set_targets):
            _write(reqs, entry, Priv.SELECT)
    elif isinstance(tree, exp.Delete):
        targets: list[exp.Table]
        listed = tree.args.get("tables")
        using = tree.args.get("using")
        privs = [Priv.DELETE]
        if tree.args.get("returning") is not None:
            privs.append(Priv.SELECT)
        if listed or using:
            privs.append(Priv.SELECT)
            entries = list(listed) if listed else []
            sources: list[exp.Table] = []
            if listed:
                _flatten_table_refs(tree.this, sources)
            else:
                _flatten_table_refs(tree.this, entries)
                for u in using or ():
                    _flatten_table_refs(u, sources)
            for entry in entries:
                if not isinstance(entry, exp.Table):
                    raise _parse_error()
                parts = _table_parts(entry)
                if parts is None:
                    raise _parse_error()
                if parts[0] is not None:
                    reqs.resolve(parts[0], parts[1])  # another database: refused
                skip.add(id(entry))
                targets = _matching(sources, parts[1], parts[0])
                if not targets:
                    _write(reqs, entry, *privs)
                for target in targets:
                    _write(reqs, target, *privs)
                    skip.add(id(target))
        else:
            if not isinstance(tree.this, exp.Table):
                raise _parse_error()
            _write(reqs, tree.this, *privs)
            skip.add(id(tree.this))
            if _column_reads(tree, [tree.this], set()):
                _write(reqs, tree.this, Priv.SELECT)
    elif not isinstance(tree, _QUERY_ROOTS):
        raise _unsupported(f"statement {type(tree).__name__}")
    _TreeWalker(reqs, skip).walk(tree, frozenset())


# --------------------------------------------------------------------------------------------
# Token-level checks and rewrites of the shape images before sqlglot sees them


def _check_images(imgs: Sequence[str]) -> None:
    """Refusals that hold wherever the words appear."""
    n = len(imgs)
    for i, img in enumerate(imgs):
        c = img[0]
        if c == "`" or c.isalpha() or c == "_":
            up = _fn_name(img) or ""
            if c != "`" and up in ("OUTFILE", "DUMPFILE"):
                raise _need("FILE")
            if i + 1 < n and imgs[i + 1] == "(":
                if up in _FILE_FUNCTIONS:
                    raise _need("FILE")
                if up in _DANGEROUS_FUNCTIONS or up.startswith("INTERNAL_"):
                    raise _unsupported(f"function {up}")


_VERB_MODIFIERS: Final = {
    "INSERT": ("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY"),
    "REPLACE": ("LOW_PRIORITY", "DELAYED"),
    "UPDATE": ("LOW_PRIORITY", "IGNORE"),
    "DELETE": ("LOW_PRIORITY", "QUICK", "IGNORE"),
    "SELECT": (),
}


def _sqlglot_text(imgs: Sequence[str], verb: str, verb_at: int) -> str:
    """Rewrite the images into text sqlglot parses like the server does (same tables).

    REPLACE becomes INSERT (the caller adds DELETE); modifiers sqlglot does not know are
    dropped; ``NEXT VALUE FOR s`` / ``PREVIOUS VALUE FOR s`` become ``NEXTVAL(s)`` /
    ``LASTVAL(s)``; ``SELECT ... INTO @a, @b`` loses its INTO clause; ``DELETE t.* FROM``
    becomes ``DELETE t FROM``; MariaDB's ``ROWS EXAMINED n`` and ``WAIT n`` after ``FOR
    UPDATE`` are dropped.
    """
    kws = [_kw(i) for i in imgs]
    n = len(imgs)
    out: list[str] = []
    into_at = -1  # where INSERT/REPLACE's own INTO may be
    depth = 0
    i = 0
    while i < n:
        k = kws[i]
        if i == verb_at:
            out.append("INSERT" if verb == "REPLACE" else k)
            i += 1
            while i < n and kws[i] in _VERB_MODIFIERS[verb]:
                i += 1
            if verb in ("INSERT", "REPLACE"):
                into_at = i + 1 if i < n and kws[i] == "IGNORE" else i
            continue
        if k == "(":
            depth += 1
        elif k == ")":
            depth -= 1
        elif k in ("NEXT", "PREVIOUS") and kws[i + 1 : i + 3] == ["VALUE", "FOR"]:
            j = i + 3
            parts = [imgs[j]] if j < n else []
            if j + 2 < n and kws[j + 1] == ".":
                parts += [".", imgs[j + 2]]
            if not parts or any(_ident(p) is None for p in parts[::2]):
                raise _parse_error()
            out += ["NEXTVAL" if k == "NEXT" else "LASTVAL", "(", *parts, ")"]
            i = j + len(parts)
            continue
        elif k == "INTO":
            if i == into_at:
                out.append(k)
                i += 1
                continue
            if verb != "SELECT":
                raise _unsupported(f"INTO in this {verb} statement")
            j = i + 1
            while j < n and imgs[j][0] == "@" and imgs[j][:2] != "@@":
                j += 1
                if j < n and kws[j] == ",":
                    j += 1
                    continue
                break
            if j == i + 1 or kws[j - 1] == ",":
                raise _unsupported("SELECT ... INTO other than user variables")
            i = j
            continue
        elif verb == "DELETE" and depth == 0 and k == "." and i + 1 < n and kws[i + 1] == "*":
            i += 2  # DELETE t.* FROM ...: the entry is the table t
            continue
        elif k == "ROWS" and kws[i + 1 : i + 3] == ["EXAMINED", "?"]:
            i += 3
            continue
        elif (
            k == "WAIT"
            and kws[i + 1 : i + 2] == ["?"]
            and i > 0
            and kws[i - 1] in ("UPDATE", "MODE")
        ):
            i += 2
            continue
        out.append(imgs[i])
        i += 1
    return " ".join(out)


_DML_VERBS: Final = ("SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE")


def _query_requirements(imgs: Sequence[str], reqs: _Reqs) -> None:
    """A SELECT/WITH/(/INSERT/REPLACE/UPDATE/DELETE statement given as images."""
    tree, verb = _query_tree(imgs)
    _dml_requirements(tree, reqs, replace=verb == "REPLACE")


def _query_tree(imgs: Sequence[str]) -> tuple[exp.Expression, str]:
    """sqlglot's tree of a query or DML statement given as images, and its verb."""
    kws = [_kw(i) for i in imgs]
    k0 = kws[0]
    verb = "SELECT"
    verb_at = -1
    if k0 in _DML_VERBS:
        verb, verb_at = k0, 0
    elif k0 == "WITH":
        # WITH ... {SELECT | UPDATE | DELETE}: the first verb at depth 0 after the CTEs
        depth = 0
        for j, k in enumerate(kws):
            if k == "(":
                depth += 1
            elif k == ")":
                depth -= 1
            elif depth == 0 and k in _DML_VERBS:
                verb, verb_at = k, j
                break
        if verb in ("INSERT", "REPLACE"):
            raise _unsupported("WITH ... INSERT")
    elif k0 != "(":
        raise _parse_error()
    if sum(map(len, imgs)) + len(imgs) > MAX_PARSED_TEXT:  # sure to be too long: not rewritten
        raise _unsupported(TOO_LONG_TO_PARSE)
    tree = _parse_one(_sqlglot_text(imgs, verb, verb_at))
    _check_names(imgs, tree)
    expected: tuple[type[exp.Expression], ...]
    if verb in ("INSERT", "REPLACE"):
        expected = (exp.Insert,)
    elif verb == "UPDATE":
        expected = (exp.Update,)
    elif verb == "DELETE":
        expected = (exp.Delete,)
    else:
        expected = _QUERY_ROOTS
    if not isinstance(tree, expected):
        raise _parse_error()
    return tree, verb


def _condition_requirements(imgs: Sequence[str], reqs: _Reqs) -> None:
    """A WHERE condition of a SHOW statement: its subqueries read tables."""
    tree = _parse_one("SELECT 1 WHERE " + " ".join(imgs))
    if not isinstance(tree, exp.Select):
        raise _parse_error()
    _check_names(imgs, tree)
    _TreeWalker(reqs, set()).walk(tree, frozenset())


def _expression_requirements(imgs: Sequence[str], reqs: _Reqs) -> None:
    """An expression (SET @x = expr): its subqueries read tables."""
    _check_images(imgs)
    tree = _parse_one("SELECT " + " ".join(imgs))
    if not isinstance(tree, exp.Select) or len(tree.expressions) != 1:
        raise _parse_error()
    _check_names(imgs, tree)
    _TreeWalker(reqs, set()).walk(tree, frozenset())


# --------------------------------------------------------------------------------------------
# DDL (token grammar over the images)


def _scan_ddl_body(imgs: Sequence[str], reqs: _Reqs) -> None:
    """Column/index definitions and table or partition options: refuse the dangerous ones,
    account for referenced tables and sequences."""
    kws = [_kw(i) for i in imgs]
    n = len(kws)
    depth = 0
    i = 0
    while i < n:
        k = kws[i]
        if k == "(":
            depth += 1
        elif k == ")":
            depth -= 1
        if k in ("SELECT", "TABLE") or (k == "VALUES" and depth == 0):
            # a query or another table where only definitions and options belong
            raise _unsupported(f"{k} in a table definition")
        if k == "REFERENCES":
            cur = _Cursor(imgs, i + 1)
            db, name = cur.table_ref()
            reqs.table(db, name, Priv.SELECT)
            i = cur.i
            continue
        if k in ("ENGINE", "TYPE", "STORAGE") and i + 1 < n:
            j = i + 1
            if k == "STORAGE" and kws[j] != "ENGINE":
                i += 1
                continue
            if k == "STORAGE":
                j += 1
            if j < n and kws[j] == "=":
                j += 1
                engine = _ident(imgs[j]) if j < n else None
                if engine is None or engine.upper() not in _ENGINES_OK:
                    raise _unsupported(f"storage engine {engine or ''}".strip())
            elif j < n and (_is_word(imgs[j]) or imgs[j][0] in "`'"):
                # ENGINE name / TYPE {BTREE|HASH|RTREE}; or a column named engine or type
                # followed by its data type
                engine = _ident(imgs[j]) or kws[j]
                if (
                    engine.upper() not in _ENGINES_OK
                    and kws[j] not in _DATA_TYPES
                    and not (k == "TYPE" and kws[j] in ("BTREE", "HASH", "RTREE"))
                ):
                    raise _unsupported(f"storage engine {engine}")
            i = j + 1
            continue
        if k == "DIRECTORY":
            raise _need("FILE")
        if k in ("CONNECTION", "UNION", "TABLESPACE"):
            raise _unsupported(f"table option {k}")
        if k in _SEQUENCE_FUNCTIONS and i + 1 < n and kws[i + 1] == "(":
            cur = _Cursor(imgs, i + 2)
            db, name = cur.table_ref()
            reqs.table(db, name, *_SEQUENCE_FUNCTIONS[k])
            i = cur.i
            continue
        if k in ("NEXT", "PREVIOUS") and kws[i + 1 : i + 3] == ["VALUE", "FOR"]:
            cur = _Cursor(imgs, i + 3)
            db, name = cur.table_ref()
            reqs.table(db, name, *_SEQUENCE_FUNCTIONS["NEXTVAL" if k == "NEXT" else "LASTVAL"])
            i = cur.i
            continue
        i += 1


def _query_start(kws: Sequence[str], start: int) -> int:
    """Index where the query of CREATE TABLE ... [AS] SELECT begins (or len)."""
    depth = 0
    for j in range(start, len(kws)):
        k = kws[j]
        if k == "(":
            if depth == 0 and j + 1 < len(kws) and kws[j + 1] in ("SELECT", "WITH", "("):
                # "(SELECT" at depth 0 after the definitions, or a parenthesised query
                return j
            depth += 1
        elif k == ")":
            depth -= 1
        elif (depth == 0 and k in ("SELECT", "AS", "IGNORE", "REPLACE")) or (
            depth == 0 and k == "WITH" and j + 1 < len(kws) and kws[j + 1] != "SYSTEM"
        ):
            return j
    return len(kws)


def _create_table(cur: _Cursor, reqs: _Reqs, or_replace: bool) -> None:
    cur.accept("IF", "NOT", "EXISTS")
    db, name = cur.table_ref()
    reqs.table(db, name, Priv.CREATE)
    if or_replace:
        reqs.table(db, name, Priv.DROP)
    like = cur.accept("LIKE")
    paren = not like and cur.accept("(", "LIKE")
    if like or paren:
        sdb, sname = cur.table_ref()
        if paren:
            cur.expect(")")
        if not cur.at_end():
            raise _parse_error()
        reqs.table(sdb, sname, Priv.SELECT)
        return
    rest = cur.rest()
    kws = [_kw(i) for i in rest]
    q = _query_start(kws, 0)
    _scan_ddl_body(rest[:q], reqs)
    if q == len(rest):
        return
    query = rest[q:]
    qk = kws[q:]
    privs = [Priv.INSERT]
    j = 0
    if qk[j] in ("IGNORE", "REPLACE"):
        if qk[j] == "REPLACE":
            privs.append(Priv.DELETE)
        j += 1
    if j < len(qk) and qk[j] == "AS":
        j += 1
    if j >= len(qk) or qk[j] not in ("SELECT", "WITH", "("):
        raise _unsupported("CREATE TABLE ... AS with this query")
    reqs.table(db, name, *privs)
    _check_images(query[j:])
    _query_requirements(query[j:], reqs)


def _create(cur: _Cursor, reqs: _Reqs) -> None:
    or_replace = cur.accept("OR", "REPLACE")
    temporary = cur.accept("TEMPORARY")
    k = cur.peek()
    if k == "TABLE":
        cur.i += 1
        _create_table(cur, reqs, or_replace)
        return
    if k == "SEQUENCE":
        cur.i += 1
        cur.accept("IF", "NOT", "EXISTS")
        db, _name = cur.table_ref()
        reqs.database(db, Priv.CREATE)
        if or_replace:
            reqs.database(db, Priv.DROP)
        _scan_ddl_body(cur.rest(), reqs)
        return
    if temporary:
        raise _parse_error()
    if not cur.accept("ONLINE"):
        cur.accept("OFFLINE")
    if not (cur.accept("UNIQUE") or cur.accept("FULLTEXT")):
        cur.accept("SPATIAL")
    if cur.accept("INDEX") or cur.accept("KEY"):
        cur.accept("IF", "NOT", "EXISTS")
        cur.name()
        while not cur.at_end() and cur.peek() != "ON":
            if cur.peek() not in ("USING", "TYPE", "BTREE", "HASH", "RTREE"):
                raise _parse_error()
            cur.i += 1
        cur.expect("ON")
        db, name = cur.table_ref()
        reqs.table(db, name, Priv.INDEX)
        _scan_ddl_body(cur.rest(), reqs)
        return
    obj = cur.peek()
    if obj in ("AGGREGATE", "FUNCTION") and "SONAME" in cur.kws:
        raise _need("SUPER")
    if obj in ("SERVER", "TABLESPACE", "LOGFILE"):
        raise _need("SUPER")
    raise _unsupported(f"CREATE {obj}".strip() if obj.isalpha() else "CREATE of this object")


def _drop(cur: _Cursor, reqs: _Reqs) -> None:
    temporary = cur.accept("TEMPORARY")
    k = cur.peek()
    if k in ("TABLE", "TABLES"):
        cur.i += 1
        cur.accept("IF", "EXISTS")
        while True:
            db, name = cur.table_ref()
            reqs.table(db, name, Priv.DROP)
            if not cur.accept(","):
                break
        cur.skip_wait()
        if not cur.accept("RESTRICT"):
            cur.accept("CASCADE")
        if not cur.at_end():
            raise _parse_error()
        return
    if k == "SEQUENCE":
        cur.i += 1
        cur.accept("IF", "EXISTS")
        while True:
            db, _name = cur.table_ref()
            reqs.database(db, Priv.DROP)
            if not cur.accept(","):
                break
        if not cur.at_end():
            raise _parse_error()
        return
    if temporary:
        raise _parse_error()
    if cur.accept("VIEW"):
        cur.accept("IF", "EXISTS")
        while True:
            db, name = cur.table_ref()
            reqs.table(db, name, Priv.DROP)
            if not cur.accept(","):
                break
        if not cur.accept("RESTRICT"):
            cur.accept("CASCADE")
        if not cur.at_end():
            raise _parse_error()
        return
    if cur.accept("INDEX") or cur.accept("KEY"):
        cur.accept("IF", "EXISTS")
        cur.name()
        cur.expect("ON")
        db, name = cur.table_ref()
        reqs.table(db, name, Priv.INDEX)
        while not cur.at_end():
            if cur.peek() not in ("ALGORITHM", "LOCK", "=", "WAIT", "NOWAIT", "?") and not _is_word(
                cur.imgs[cur.i]
            ):
                raise _parse_error()
            cur.i += 1
        return
    raise _unsupported(f"DROP {k}".strip() if k.isalpha() else "DROP of this object")


def _rename_pair(reqs: _Reqs, old: tuple[str | None, str], new: tuple[str | None, str]) -> None:
    reqs.table(old[0], old[1], Priv.ALTER, Priv.DROP)
    reqs.table(new[0], new[1], Priv.CREATE, Priv.INSERT)


def _alter(cur: _Cursor, reqs: _Reqs) -> None:
    cur.accept("ONLINE")
    cur.accept("IGNORE")
    k = cur.peek()
    if k == "TABLE":
        cur.i += 1
        cur.accept("IF", "EXISTS")
        db, name = cur.table_ref()
        reqs.table(db, name, Priv.ALTER)
        cur.skip_wait()
        rest = cur.rest()
        kws = [_kw(i) for i in rest]
        depth = 0
        spec_start = True
        j = 0
        while j < len(kws):
            k = kws[j]
            if k == "(":
                depth += 1
            elif k == ")":
                depth -= 1
            elif depth == 0 and k == ",":
                spec_start = True
                j += 1
                continue
            elif depth == 0 and spec_start:
                spec_start = False
                if k == "RENAME":
                    nxt = kws[j + 1] if j + 1 < len(kws) else ""
                    if nxt not in ("COLUMN", "INDEX", "KEY", "CONSTRAINT"):
                        c2 = _Cursor(rest, j + 1)
                        if not (c2.accept("TO") or c2.accept("AS")):
                            c2.accept("=")
                        new = c2.table_ref()
                        _rename_pair(reqs, (db, name), new)
                        j = c2.i
                        continue
                elif k in ("DISCARD", "IMPORT"):
                    raise _unsupported(f"ALTER TABLE ... {k} TABLESPACE")
                elif k == "EXCHANGE":
                    raise _unsupported("ALTER TABLE ... EXCHANGE PARTITION")
                elif k == "CONVERT" and j + 1 < len(kws) and kws[j + 1] in ("PARTITION", "TABLE"):
                    raise _unsupported(f"ALTER TABLE ... CONVERT {kws[j + 1]}")
                elif k in ("DROP", "TRUNCATE") and j + 1 < len(kws) and kws[j + 1] == "PARTITION":
                    reqs.table(db, name, Priv.DROP)
            j += 1
        _scan_ddl_body(rest, reqs)
        return
    if k == "SEQUENCE":
        cur.i += 1
        cur.accept("IF", "EXISTS")
        db, _name = cur.table_ref()
        reqs.database(db, Priv.ALTER)
        _scan_ddl_body(cur.rest(), reqs)
        return
    raise _unsupported(f"ALTER {k}".strip() if k.isalpha() else "ALTER of this object")


def _rename(cur: _Cursor, reqs: _Reqs) -> None:
    if not (cur.accept("TABLE") or cur.accept("TABLES")):
        raise _unsupported(f"RENAME {cur.peek()}".strip())
    cur.accept("IF", "EXISTS")
    while True:
        old = cur.table_ref()
        cur.skip_wait()
        cur.expect("TO")
        new = cur.table_ref()
        _rename_pair(reqs, old, new)
        if not cur.accept(","):
            break
    if not cur.at_end():
        raise _parse_error()


def _truncate(cur: _Cursor, reqs: _Reqs) -> None:
    cur.accept("TABLE")
    db, name = cur.table_ref()
    reqs.table(db, name, Priv.DROP)
    cur.skip_wait()
    if not cur.at_end():
        raise _parse_error()


def _maintenance(cur: _Cursor, reqs: _Reqs, verb: str) -> None:
    """ANALYZE|OPTIMIZE|REPAIR|CHECK|CHECKSUM TABLE t[, t2] [options]."""
    if not cur.accept("NO_WRITE_TO_BINLOG"):
        cur.accept("LOCAL")
    if not (cur.accept("TABLE") or cur.accept("TABLES")):
        raise _parse_error()
    privs = (Priv.SELECT,) if verb in ("CHECK", "CHECKSUM") else (Priv.SELECT, Priv.INSERT)
    while True:
        db, name = cur.table_ref()
        reqs.table(db, name, *privs)
        if not cur.accept(","):
            break
    # options: words, names and parenthesised name lists (ANALYZE ... PERSISTENT FOR ...)
    for img in cur.rest():
        if not (_is_word(img) or img[0] == "`" or img in ("(", ")", ",", "?")):
            raise _parse_error()
        if _kw(img) in ("SELECT", "FROM", "TABLE"):
            raise _parse_error()


_EXPLAINABLE: Final = frozenset({"SELECT", "WITH", "(", "INSERT", "REPLACE", "UPDATE", "DELETE"})


def _explain(cur: _Cursor, reqs: _Reqs, verb: str) -> None:
    """DESCRIBE|DESC|EXPLAIN [options] {table [column] | statement}; ANALYZE statement.

    The options only introduce a statement: MariaDB reads ``DESCRIBE extended t`` and ``DESC
    partitions c`` as the table ``extended`` (or ``partitions``) and a column pattern."""
    start = cur.i
    while True:
        if cur.accept("EXTENDED") or cur.accept("PARTITIONS") or cur.accept("ANALYZE"):
            continue
        if cur.peek() == "FORMAT" and cur.peek(1) == "=":
            cur.i += 3
            continue
        break
    if cur.peek() == "FOR":
        raise _unsupported("EXPLAIN FOR CONNECTION")
    if cur.peek() in _EXPLAINABLE:
        inner = cur.rest()
        _check_images(inner)
        _query_requirements(inner, reqs)
        return
    if verb == "ANALYZE":
        raise _parse_error()
    cur.i = start
    db, name = cur.table_ref()
    reqs.table(db, name, Priv.SELECT)
    if not cur.at_end():
        nxt = cur.imgs[cur.i]
        if not (_ident(nxt) is not None or nxt == "'?'"):
            raise _parse_error()
        cur.i += 1
    if not cur.at_end():
        raise _parse_error()


def _show_filter(cur: _Cursor, reqs: _Reqs, where_ok: bool = True) -> None:
    """[LIKE 'pattern' | WHERE condition] at the end of a SHOW."""
    if cur.at_end():
        return
    if cur.accept("LIKE"):
        if cur.peek() != "'?'":
            raise _parse_error()
        cur.i += 1
        if not cur.at_end():
            raise _parse_error()
        return
    if where_ok and cur.accept("WHERE"):
        if cur.at_end():
            raise _parse_error()
        _condition_requirements(cur.rest(), reqs)
        return
    raise _parse_error()


def _show_from_db(cur: _Cursor, reqs: _Reqs) -> None:
    if cur.accept("FROM") or cur.accept("IN"):
        db = cur.name()
        reqs.resolve(db, "?")
    else:
        reqs.resolve(None, "?")


def _show(cur: _Cursor, reqs: _Reqs) -> None:
    """The SHOW forms analysed from the shape (SHOW DATABASES etc. are handled elsewhere)."""
    full = cur.accept("FULL")
    k = cur.peek()
    if k == "TABLES":
        cur.i += 1
        _show_from_db(cur, reqs)
        _show_filter(cur, reqs)
        return
    if k in ("COLUMNS", "FIELDS", "INDEX", "INDEXES", "KEYS"):
        cur.i += 1
        if not (cur.accept("FROM") or cur.accept("IN")):
            raise _parse_error()
        db, name = cur.table_ref()
        if cur.accept("FROM") or cur.accept("IN"):
            if db is not None:
                raise _parse_error()
            db = cur.name()
        reqs.table(db, name, Priv.SELECT)
        _show_filter(cur, reqs, where_ok=True)
        return
    if full:
        raise _unsupported("SHOW FULL of this kind")
    if cur.accept("TABLE", "STATUS") or cur.accept("TRIGGERS"):
        _show_from_db(cur, reqs)
        _show_filter(cur, reqs)
        return
    if (
        cur.accept("PROCEDURE", "STATUS")
        or cur.accept("FUNCTION", "STATUS")
        or cur.accept("PACKAGE", "STATUS")
        or cur.accept("PACKAGE", "BODY", "STATUS")
    ):
        # The routines the session's mirror may see (it holds no routine privilege: none,
        # unless the shard's operator gave it some).
        _show_filter(cur, reqs)
        return
    if cur.accept("PLUGINS"):
        # SHOW PLUGINS SONAME lists the shard's plugin directory: not for tenants.
        if not cur.at_end():
            raise _unsupported("SHOW PLUGINS SONAME")
        return
    if cur.accept("CREATE"):
        obj = cur.peek()
        if obj in ("TABLE", "VIEW", "SEQUENCE"):
            cur.i += 1
            db, name = cur.table_ref()
            reqs.table(db, name, Priv.SELECT)
            if not cur.at_end():
                raise _parse_error()
            return
        if obj in ("DATABASE", "SCHEMA"):
            cur.i += 1
            cur.accept("IF", "NOT", "EXISTS")
            reqs.resolve(cur.name(), "?")
            if not cur.at_end():
                raise _parse_error()
            return
        raise _unsupported(f"SHOW CREATE {obj}".strip() if obj.isalpha() else "SHOW CREATE")
    if k in ("WARNINGS", "ERRORS"):
        cur.i += 1
        if cur.accept("LIMIT"):
            for img in cur.rest():
                if img not in ("?", ","):
                    raise _parse_error()
            return
        if not cur.at_end():
            raise _parse_error()
        return
    if k == "COUNT" and cur.kws[cur.i : cur.i + 5] in (
        ["COUNT", "(", "*", ")", "WARNINGS"],
        ["COUNT", "(", "*", ")", "ERRORS"],
    ):
        cur.i += 5
        if not cur.at_end():
            raise _parse_error()
        return
    scope = ""
    if k in ("GLOBAL", "SESSION", "LOCAL"):
        scope = k
        cur.i += 1
        k = cur.peek()
    if k == "VARIABLES":
        cur.i += 1
        _show_filter(cur, reqs)
        return
    if scope:
        raise _parse_error()
    if cur.accept("COLLATION") or cur.accept("CHARSET") or cur.accept("CHARACTER", "SET"):
        _show_filter(cur, reqs)
        return
    if k == "ENGINE":
        # SHOW ENGINE INNODB STATUS|MUTEX: the shard's internals (every tenant's transactions
        # and statements); MySQL asks PROCESS, a global privilege no account holds.
        raise _need("PROCESS")
    if cur.accept("ENGINES") or cur.accept("STORAGE", "ENGINES") or cur.accept("PRIVILEGES"):
        if not cur.at_end():
            raise _parse_error()
        return
    raise _unsupported(f"SHOW {k}".strip() if k.isalpha() else "SHOW of this kind")


_WRITES: Final = Priv.INSERT | Priv.UPDATE | Priv.DELETE


def _lock_tables(cur: _Cursor, reqs: _Reqs) -> None:
    """``LOCK {TABLE|TABLES} t [[AS] alias] lock_type [, ...] [WAIT n | NOWAIT]``: SELECT on
    each table; a WRITE lock also needs INSERT, UPDATE or DELETE on it (any one)."""
    if not (cur.accept("TABLES") or cur.accept("TABLE")):
        raise _parse_error()
    while True:
        db, name = cur.table_ref()
        if cur.accept("AS"):
            cur.name()
        elif cur.peek() not in ("READ", "WRITE", "LOW_PRIORITY"):
            cur.name()  # an alias
        reqs.table(db, name, Priv.SELECT)
        if cur.accept("READ"):
            cur.accept("LOCAL")
        else:
            cur.accept("LOW_PRIORITY")
            cur.expect("WRITE")
            cur.accept("CONCURRENT")
            resolved = reqs.resolve(db, name)
            if resolved is None:
                raise _unsupported("writing to information_schema")
            reqs.items[Requirement(_WRITES, resolved, name, one_of="LOCK TABLES")] = None
        if not cur.accept(","):
            break
    cur.skip_wait()
    if not cur.at_end():
        raise _parse_error()


def _load(cur: _Cursor) -> None:
    k = cur.peek()
    if k in ("DATA", "XML"):
        if "LOCAL" in cur.kws[cur.i : cur.i + 4]:
            raise _unsupported("LOAD DATA LOCAL")
        raise _need("FILE")
    if k == "INDEX":
        raise _unsupported("LOAD INDEX INTO CACHE")
    raise _parse_error()


def _shape_binds(imgs: Sequence[str]) -> frozenset[str]:
    """What a statement leaves on its backend connection, from its images: user variables
    assigned (``@x := ...``, ``INTO @x``), named locks (``GET_LOCK(...)``), temporary tables,
    the last value of a sequence (``NEXTVAL(s)``, ``NEXT VALUE FOR s``, ``SETVAL(s, ...)``)."""
    binds: set[str] = set()
    n = len(imgs)
    for i, img in enumerate(imgs):
        nxt = imgs[i + 1] if i + 1 < n else ""
        assigns = img[0] == "@" and img[:2] != "@@" and nxt == ":="
        if assigns or (nxt[:1] == "@" and nxt[:2] != "@@" and _kw(img) == "INTO"):
            binds.add(BIND_USER_VARIABLE)
        elif nxt == "(" and _fn_name(img) == "GET_LOCK":
            binds.add(BIND_NAMED_LOCK)
        elif (nxt == "(" and _fn_name(img) in ("NEXTVAL", "SETVAL")) or (
            _kw(img) == "NEXT" and _kw(nxt) == "VALUE" and i + 2 < n and _kw(imgs[i + 2]) == "FOR"
        ):
            binds.add(BIND_SEQUENCE_VALUE)
    # A column's DEFAULT NEXTVAL(s) is evaluated by later INSERTs, not by the DDL.
    ddl = _kw(imgs[0]) in ("CREATE", "ALTER") and "SELECT" not in (_kw(img) for img in imgs)
    if ddl:
        binds.discard(BIND_SEQUENCE_VALUE)
    if _kw(imgs[0]) == "CREATE" and "TEMPORARY" in (_kw(i) for i in imgs[1:4]):
        binds.add(BIND_TEMPORARY_TABLE)
    if _kw(imgs[0]) == "LOCK":
        binds.add(BIND_TABLE_LOCK)
    return frozenset(binds)


def _analyze_shape(imgs: Sequence[str], current_db: str | None) -> Statement:
    """Everything whose decision depends on the shape key alone (cacheable)."""
    reqs = _Reqs(current_db)
    try:
        _check_images(imgs)
        cur = _Cursor(imgs)
        k = cur.peek()
        if k in ("SELECT", "WITH", "(", "INSERT", "REPLACE", "UPDATE", "DELETE"):
            _query_requirements(imgs, reqs)
        else:
            cur.i = 1
            if k == "CREATE":
                _create(cur, reqs)
            elif k == "DROP":
                _drop(cur, reqs)
            elif k == "ALTER":
                _alter(cur, reqs)
            elif k == "RENAME":
                _rename(cur, reqs)
            elif k == "TRUNCATE":
                _truncate(cur, reqs)
            elif k in ("DESCRIBE", "DESC", "EXPLAIN"):
                _explain(cur, reqs, k)
            elif k == "ANALYZE":
                if cur.peek() in ("TABLE", "TABLES", "NO_WRITE_TO_BINLOG", "LOCAL"):
                    _maintenance(cur, reqs, k)
                else:
                    _explain(cur, reqs, k)
            elif k in ("OPTIMIZE", "REPAIR", "CHECK", "CHECKSUM"):
                _maintenance(cur, reqs, k)
            elif k == "SHOW":
                _show(cur, reqs)
            elif k == "LOAD":
                _load(cur)
            elif k == "LOCK":
                _lock_tables(cur, reqs)
            elif k == "HELP":
                # HELP 'topic': the server's help tables, which every account may read.
                if cur.i + 1 != len(cur.imgs) or cur.imgs[cur.i] != "'?'":
                    raise _parse_error()
            elif k in _UNSUPPORTED_OPENERS:
                raise _unsupported(_UNSUPPORTED_OPENERS[k])
            elif k in _GLOBAL_PRIVILEGE_OPENERS:
                raise _need(_GLOBAL_PRIVILEGE_OPENERS[k])
            else:
                raise _parse_error()
    except _Refuse as refusal:
        return Statement(Kind.REFUSED, "", error=refusal.error)
    return Statement(
        Kind.QUERY,
        "",
        requirements=reqs.result(),
        reads_information_schema=reqs.reads_is,
        binds=_shape_binds(imgs),
        shows_warnings=_kw(imgs[0]) == "SHOW" and _kw(imgs[1]) in ("WARNINGS", "ERRORS", "COUNT"),
    )


# --------------------------------------------------------------------------------------------
# Statements read with their values (never cached)


def _value_name(tok: Token) -> str | None:
    """A name given as a word, quoted name or string (SET NAMES 'utf8', SET NAMES binary)."""
    if tok.kind in (TokenKind.WORD, TokenKind.IDENT, TokenKind.STRING):
        return tok.value
    return None


def _charset_ok(name: str) -> str:
    # (lower-casing never shortens a text: a name longer than every safe one is none)
    cs = name.lower() if len(name) <= _LONGEST_CHARSET else ""
    if cs not in _SAFE_CHARSETS:
        raise _Refuse(unsupported_charset(name))
    return cs


def _split_commas(tokens: Sequence[Token]) -> list[list[Token]]:
    items: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.kind is TokenKind.OP:
            if tok.value == "(":
                depth += 1
            elif tok.value == ")":
                depth -= 1
            elif tok.value == "," and depth == 0:
                items.append([])
                continue
        items[-1].append(tok)
    return items


# How much of a text one call of _comma_items splits.
_ITEMS_SLICE = 32 * 1024


def _comma_items(value: str) -> Iterator[str]:
    """``value.split(",")``, one slice of ``value`` at a time (one split of a 16 MB value holds
    the interpreter lock for tens of milliseconds)."""
    held: list[str] = []
    for at in range(0, len(value), _ITEMS_SLICE):
        pieces = value[at : at + _ITEMS_SLICE].split(",")
        if len(pieces) > 1:
            held.append(pieces[0])
            yield "".join(held)
            yield from pieces[1:-1]
            held = []
        held.append(pieces[-1])
    yield "".join(held)


# The longest sql_mode name _sql_mode looks for.
_LONGEST_SQL_MODE: Final = max(
    map(len, {*_SQL_MODES_REFUSED, "ANSI_QUOTES", "ANSI", "NO_BACKSLASH_ESCAPES", "IGNORE_SPACE"})
)


def _sql_mode(value: str) -> LexMode:
    modes = {
        word.upper()
        for m in _comma_items(value)
        if (word := m.strip()) and len(word) <= _LONGEST_SQL_MODE  # (see _upper_is)
    }
    refused = modes & _SQL_MODES_REFUSED
    if refused:
        raise _unsupported(f"sql_mode {sorted(refused)[0]}")
    return LexMode(
        ansi_quotes="ANSI_QUOTES" in modes or "ANSI" in modes,
        no_backslash_escapes="NO_BACKSLASH_ESCAPES" in modes,
        ignore_space="IGNORE_SPACE" in modes or "ANSI" in modes,
    )


def _literal_value(value: list[Token]) -> Token:
    """The one literal (or bare word) a system variable is set to."""
    if (
        len(value) == 2
        and value[0].kind is TokenKind.OP
        and value[0].value in ("-", "+")
        and value[1].kind is TokenKind.NUMBER
    ):
        return value[1]
    if len(value) == 1:
        tok = value[0]
        if tok.kind in (
            TokenKind.STRING,
            TokenKind.NUMBER,
            TokenKind.HEX,
            TokenKind.BIT,
            TokenKind.WORD,
            TokenKind.IDENT,
        ):
            return tok
    raise _unsupported("SET of a system variable to anything but a literal value")


# Setting these changes what a later statement (an INSERT, LAST_INSERT_ID()) sees once, so a
# replay on a new connection could be wrong (and a read-back of ``timestamp`` cannot tell a
# fixed value from the running clock): they bind the session to its connection instead.
_ONE_SHOT_VARIABLES: Final = frozenset({"insert_id", "last_insert_id", "identity", "timestamp"})


def lexing_state(sql_mode: str, character_set_client: str) -> LexMode:
    """The lexer mode for a session whose shard reports these values (read back from it).

    Raises :class:`SqlError` when the proxy cannot lex the session's statements the way the
    shard will: an ``sql_mode`` with a parser mode of another database (ORACLE, MSSQL, ...) or a
    client character set whose multi-byte characters can contain ASCII quotes or backslashes.
    """
    try:
        mode = _sql_mode(sql_mode)
        _charset_ok(character_set_client)
    except _Refuse as refusal:
        raise refusal.error from None
    return mode


class _SetResult:
    __slots__ = ("binds", "charset", "lex_mode", "lexing_unknown", "readback")

    def __init__(self) -> None:
        self.lex_mode: LexMode | None = None
        self.charset: str | None = None
        self.binds: set[str] = set()
        self.readback: dict[str, None] = {}
        self.lexing_unknown = False


def _expression_value(value: list[Token]) -> bool:
    """Whether a system variable's value is an expression rather than one literal."""
    try:
        _literal_value(value)
    except _Refuse:
        return True
    return False


def _set_item(item: list[Token], reqs: _Reqs, out: _SetResult) -> None:
    if not item:
        raise _parse_error()
    first = item[0]
    up = sliced_upper(first.value) if first.kind is TokenKind.WORD else ""
    # scope keywords
    if up in ("GLOBAL", "PERSIST", "PERSIST_ONLY"):
        raise _need("SUPER")
    if up in ("SESSION", "LOCAL"):
        item = item[1:]
        if not item:
            raise _parse_error()
        first = item[0]
        up = sliced_upper(first.value) if first.kind is TokenKind.WORD else ""
    if up == "NAMES":
        if len(item) < 2:
            raise _parse_error()
        cs_tok = item[1]
        if cs_tok.kind is TokenKind.WORD and _upper_is(cs_tok.value, "DEFAULT"):
            cs = None
        else:
            name = _value_name(cs_tok)
            if name is None:
                raise _parse_error()
            cs = _charset_ok(name)
        rest = item[2:]
        if rest:
            if len(rest) != 2 or rest[0].value.upper() != "COLLATE":
                raise _parse_error()
            coll = _value_name(rest[1])
            if coll is None and rest[1].value.upper() != "DEFAULT":
                raise _parse_error()
            if coll is not None:
                _charset_ok(coll.partition("_")[0])
        out.charset = cs or "default"
        out.readback.update(dict.fromkeys(LEXING_VARIABLES[1:]))
        return
    if up in ("CHARACTER", "CHARSET"):
        rest = item[1:]
        if up == "CHARACTER":
            if not rest or rest[0].value.upper() != "SET":
                raise _parse_error()
            rest = rest[1:]
        if len(rest) != 1:
            raise _parse_error()
        out.readback.update(dict.fromkeys(LEXING_VARIABLES[1:]))
        if rest[0].kind is TokenKind.WORD and rest[0].value.upper() == "DEFAULT":
            out.charset = "default"
            return
        name = _value_name(rest[0])
        if name is None:
            raise _parse_error()
        out.charset = _charset_ok(name)
        return
    if first.kind is TokenKind.USER_VAR:
        if len(item) < 3 or item[1].value not in ("=", ":="):
            raise _parse_error()
        _expression_requirements([t.image for t in item[2:]], reqs)
        out.binds.add(BIND_USER_VARIABLE)
        return
    # a system variable
    if first.kind is TokenKind.SYS_VAR:
        var = first.value
        scope, dot, rest_name = var.partition(".")
        if dot:
            if scope in ("global", "persist", "persist_only"):
                raise _need("SUPER")
            if scope not in ("session", "local"):
                raise _unsupported(f"SET of variable {var}")
            var = rest_name
        value = item[1:]
    elif first.kind in (TokenKind.WORD, TokenKind.IDENT):
        var = sliced_lower(first.value)
        value = item[1:]
    else:
        raise _parse_error()
    if not value or value[0].kind is not TokenKind.OP or value[0].value not in ("=", ":="):
        raise _parse_error()
    if (
        var != "sql_mode"
        and var not in _CHARSET_VARIABLES
        and var != "collation_connection"
        and var not in _SESSION_VARIABLES
    ):
        raise _unsupported(f"SET of variable {var}")
    if _expression_value(value[1:]):
        # From an expression (SET sql_mode = @old, SET x = (SELECT ...)): tables it reads need
        # SELECT, and the shard's resulting value is read back after the statement.
        _expression_requirements([t.image for t in value[1:]], reqs)
        if var in _ONE_SHOT_VARIABLES:
            out.binds.add(BIND_ONE_SHOT_SETTING)
        else:
            out.readback[var] = None
            if var in LEXING_VARIABLES:
                out.lexing_unknown = True
        return
    if var in _ONE_SHOT_VARIABLES:
        out.binds.add(BIND_ONE_SHOT_SETTING)
    else:
        out.readback[var] = None
    tok = _literal_value(value[1:])
    is_word = tok.kind in (TokenKind.WORD, TokenKind.IDENT)
    if var == "sql_mode":
        if tok.kind is TokenKind.STRING or (
            is_word and sliced_upper(tok.value) not in ("NULL", "ON", "OFF", "DEFAULT")
        ):
            out.lex_mode = _sql_mode(tok.value)
        else:
            # DEFAULT (the server's global value) or a bit mask: known once read back.
            out.lexing_unknown = True
        return
    if var in _CHARSET_VARIABLES or var == "collation_connection":
        word = tok.value.upper() if is_word else ""
        if word == "DEFAULT" or (word == "NULL" and var == "character_set_results"):
            if var == "character_set_client":
                out.charset = "default"
            return
        if tok.kind not in (TokenKind.STRING, TokenKind.WORD, TokenKind.IDENT):
            raise _parse_error()
        name = tok.value
        cs = _charset_ok(name.partition("_")[0] if var == "collation_connection" else name)
        if var == "character_set_client":
            out.charset = cs
        return


def _set(tokens: Sequence[Token], reqs: _Reqs) -> Statement:
    kws = [sliced_upper(t.value) if t.kind is TokenKind.WORD else t.value for t in tokens]
    i = 1
    if kws[i : i + 1] == ["PASSWORD"]:
        return Statement(Kind.ACCOUNT, "")
    if kws[i : i + 1] == ["ROLE"] or kws[i : i + 2] == ["DEFAULT", "ROLE"]:
        raise _unsupported("SET ROLE")
    if kws[i : i + 1] == ["STATEMENT"]:
        return _set_statement(tokens, reqs)
    scope = kws[i] if i < len(kws) and kws[i] in ("GLOBAL", "SESSION", "LOCAL") else ""
    if kws[i + (1 if scope else 0) : i + (2 if scope else 1)] == ["TRANSACTION"]:
        if scope == "GLOBAL":
            raise _need("SUPER")
        _transaction_characteristics(kws[i + (2 if scope else 1) :])
        if scope:  # the session's characteristics: replayed as written
            return Statement(Kind.SESSION, "", replay=(" ".join(kws[1:]),))
        # The next transaction's only: consumed by it, so not replayable.
        return Statement(Kind.SESSION, "", binds=frozenset({BIND_ONE_SHOT_SETTING}))
    out = _SetResult()
    for item in _split_commas(tokens[1:]):
        _set_item(item, reqs, out)
    return Statement(
        Kind.SESSION,
        "",
        requirements=reqs.result(),
        lex_mode=out.lex_mode,
        reads_information_schema=reqs.reads_is,
        charset=out.charset,
        binds=frozenset(out.binds),
        readback=tuple(out.readback),
        lexing_unknown=out.lexing_unknown,
    )


def _set_statement(tokens: Sequence[Token], reqs: _Reqs) -> Statement:
    """``SET STATEMENT var = value [, ...] FOR statement``: each variable follows the rules of
    SET, the statement needs what it needs. The variables last for the statement only, and the
    statement is lexed under the session's current sql_mode (MariaDB parses it before setting
    them), so nothing about the session's state changes."""
    depth = 0
    for_at = -1
    for j in range(2, len(tokens)):
        tok = tokens[j]
        if tok.kind is TokenKind.OP and tok.value in ("(", ")"):
            depth += 1 if tok.value == "(" else -1
        elif depth == 0 and tok.kind is TokenKind.WORD and tok.value.upper() == "FOR":
            for_at = j
            break
    if for_at in (-1, 2, len(tokens) - 1):
        raise _parse_error()
    scratch = _SetResult()
    for item in _split_commas(tokens[2:for_at]):
        if item and item[0].kind is TokenKind.USER_VAR:
            raise _parse_error()  # system variables only
        _set_item(item, reqs, scratch)
    imgs = [t.image for t in tokens[for_at + 1 :]]
    if _opener(imgs) != "shape":
        raise _unsupported("SET STATEMENT ... FOR this statement")
    inner = _analyze_shape(imgs, reqs.db)
    if inner.kind is Kind.REFUSED:
        assert inner.error is not None
        raise _Refuse(inner.error)
    reqs.items.update(dict.fromkeys(inner.requirements))
    reqs.reads_is = reqs.reads_is or inner.reads_information_schema
    return Statement(
        Kind.QUERY,
        "",
        requirements=reqs.result(),
        reads_information_schema=reqs.reads_is,
        binds=inner.binds,
    )


_ISOLATION_LEVELS: Final = (
    ["READ", "UNCOMMITTED"],
    ["READ", "COMMITTED"],
    ["REPEATABLE", "READ"],
    ["SERIALIZABLE"],
)


def _transaction_characteristics(kws: list[str]) -> None:
    if not kws:
        raise _parse_error()
    for part in " ".join(kws).split(" , "):
        words = part.split()
        if words in (["READ", "ONLY"], ["READ", "WRITE"]):
            continue
        if words[:2] == ["ISOLATION", "LEVEL"] and words[2:] in _ISOLATION_LEVELS:
            continue
        raise _parse_error()


def _transaction(kws: list[str]) -> Statement:
    """BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, RELEASE SAVEPOINT."""
    k = kws[0]
    rest = kws[1:]
    if k == "BEGIN":
        if rest not in ([], ["WORK"]):
            raise _unsupported("BEGIN NOT ATOMIC (compound statements)")
    elif k == "START":
        if rest[:1] != ["TRANSACTION"]:
            if rest[:1] in (["SLAVE"], ["REPLICA"], ["ALL"], ["SLAVES"], ["REPLICAS"]):
                raise _need("SUPER")
            raise _parse_error()
        modes = rest[1:]
        if modes:
            for part in " ".join(modes).split(" , "):
                if part.split() not in (
                    ["READ", "ONLY"],
                    ["READ", "WRITE"],
                    ["WITH", "CONSISTENT", "SNAPSHOT"],
                ):
                    raise _parse_error()
    elif k in ("COMMIT", "ROLLBACK"):
        if rest[:1] == ["WORK"]:
            rest = rest[1:]
        if k == "ROLLBACK" and rest[:1] == ["TO"]:
            rest = rest[1:]
            if rest[:1] == ["SAVEPOINT"]:
                rest = rest[1:]
            if len(rest) != 1:
                raise _parse_error()
            return Statement(Kind.SESSION, "")
        if rest[:3] == ["AND", "NO", "CHAIN"]:
            rest = rest[3:]
        elif rest[:2] == ["AND", "CHAIN"]:
            rest = rest[2:]
        if rest == ["RELEASE"]:
            raise _unsupported(f"{k} ... RELEASE")
        if rest not in ([], ["NO", "RELEASE"]):
            raise _parse_error()
    elif k == "SAVEPOINT":
        if len(rest) != 1:
            raise _parse_error()
    elif k == "RELEASE":
        if rest[:1] != ["SAVEPOINT"] or len(rest) != 2:
            raise _parse_error()
    elif k == "UNLOCK":
        if rest not in (["TABLES"], ["TABLE"]):
            raise _parse_error()
        # Table locks are the only locks UNLOCK TABLES ends, and it ends all of them (FLUSH
        # TABLES ... WITH READ LOCK and BACKUP STAGE are refused; named locks are separate).
        return Statement(Kind.SESSION, "", releases=frozenset({BIND_TABLE_LOCK}))
    return Statement(Kind.SESSION, "")


def _kill(tokens: Sequence[Token]) -> Statement:
    kws = [sliced_upper(t.value) if t.kind is TokenKind.WORD else t.value for t in tokens]
    i = 1
    if i < len(kws) and kws[i] in ("HARD", "SOFT"):
        i += 1
    query = False
    if i < len(kws) and kws[i] == "CONNECTION":
        i += 1
    elif i < len(kws) and kws[i] == "QUERY":
        query = True
        i += 1
        if i < len(kws) and kws[i] == "ID":
            raise _unsupported("KILL QUERY ID")
    elif i < len(kws) and kws[i] == "USER":
        raise _unsupported("KILL USER")
    if i != len(tokens) - 1:
        raise _parse_error()
    tok = tokens[i]
    if tok.kind is not TokenKind.NUMBER or not tok.raw.isdigit():
        raise _parse_error()
    return Statement(Kind.KILL, "", kill_id=int(tok.raw), kill_query=query)


def _words(tokens: Sequence[Token]) -> list[str]:
    return [sliced_upper(t.value) if t.kind is TokenKind.WORD else t.value for t in tokens]


_NAME_TOKENS: Final = (TokenKind.WORD, TokenKind.IDENT, TokenKind.STRING)


def _database_options(tokens: Sequence[Token], i: int) -> int:
    """``[DEFAULT] {CHARACTER SET | CHARSET | COLLATE} [=] name | COMMENT [=] 'text'`` ...
    from ``tokens[i]``; returns how many were read."""
    kws = _words(tokens)
    n = len(kws)
    count = 0
    while i < n:
        if kws[i] == "DEFAULT":
            i += 1
        if kws[i : i + 2] == ["CHARACTER", "SET"]:
            i += 2
            kind: tuple[TokenKind, ...] = _NAME_TOKENS
        elif i < n and kws[i] in ("CHARSET", "COLLATE"):
            i += 1
            kind = _NAME_TOKENS
        elif i < n and kws[i] == "COMMENT":
            i += 1
            kind = (TokenKind.STRING,)
        else:
            raise _parse_error()
        if i < n and kws[i] == "=":
            i += 1
        if i >= n or tokens[i].kind not in kind:
            raise _parse_error()
        i += 1
        count += 1
    return count


def _database(tokens: Sequence[Token]) -> Statement:
    """``CREATE [OR REPLACE] {DATABASE|SCHEMA} [IF NOT EXISTS] name [options]``, ``ALTER
    {DATABASE|SCHEMA} [name] options`` and ``DROP {DATABASE|SCHEMA} [IF EXISTS] name``."""
    kws = _words(tokens)
    verb = kws[0]
    i = 1
    if kws[1:3] == ["OR", "REPLACE"]:
        verb, i = "CREATE OR REPLACE", 3
    i += 1  # DATABASE | SCHEMA
    if_not_exists = False
    if verb.startswith("CREATE") and kws[i : i + 3] == ["IF", "NOT", "EXISTS"]:
        if_not_exists, i = True, i + 3
    elif verb == "DROP" and kws[i : i + 2] == ["IF", "EXISTS"]:
        i += 2
    name: str | None = None
    if i < len(tokens) and not (
        verb == "ALTER" and kws[i] in ("DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT")
    ):
        name = _ident(tokens[i].image) if tokens[i].kind is not TokenKind.STRING else None
        if not name:
            raise _parse_error()
        i += 1
    if name is None and verb != "ALTER":
        raise _parse_error()
    if verb == "DROP":
        if i != len(tokens):
            raise _parse_error()
    elif verb == "ALTER" and kws[i : i + 1] == ["UPGRADE"]:
        raise _unsupported("ALTER DATABASE ... UPGRADE DATA DIRECTORY NAME")
    elif _database_options(tokens, i) == 0 and verb == "ALTER":
        raise _parse_error()
    return Statement(Kind.DATABASE, "", database=DatabaseStatement(verb, name, if_not_exists))


# CREATE [OR REPLACE] then one of these: a view (or another object with a DEFINER clause).
_VIEW_OPENERS: Final = frozenset({"VIEW", "ALGORITHM", "DEFINER", "SQL"})


def _definer(tokens: Sequence[Token], i: int) -> tuple[int, tuple[int, int] | None]:
    """``DEFINER = account`` from ``tokens[i]`` (just after ``=``): the index after it and,
    unless the account is CURRENT_USER, its offsets in the request's text."""
    kws = _words(tokens)
    if kws[i : i + 1] == ["CURRENT_USER"]:
        return (i + 3 if kws[i + 1 : i + 3] == ["(", ")"] else i + 1), None
    if i >= len(tokens):
        raise _parse_error()
    first = tokens[i]
    if kws[i] != "CURRENT_ROLE" and not (
        first.kind in (TokenKind.IDENT, TokenKind.STRING)
        or (first.kind is TokenKind.WORD and _ident(first.image) is not None)
    ):
        raise _parse_error()
    last = first
    if i + 1 < len(tokens) and tokens[i + 1].kind is TokenKind.USER_VAR:
        last = tokens[i + 1]
        i += 1
    return i + 1, (first.pos, last.pos + len(last.raw))


def _create_view(tokens: Sequence[Token], reqs: _Reqs) -> Statement:
    """``CREATE [OR REPLACE] [ALGORITHM = a] [DEFINER = account] [SQL SECURITY {DEFINER |
    INVOKER}] VIEW [IF NOT EXISTS] v [(columns)] AS query [WITH [CASCADED | LOCAL] CHECK
    OPTION]``: CREATE on ``v`` (and DROP with OR REPLACE), and what the query needs. The
    session's mirror becomes the view's definer whatever the DEFINER clause names
    (``Statement.definer``): a view never runs with more than its creator's grants."""
    kws = _words(tokens)
    or_replace = kws[1:3] == ["OR", "REPLACE"]
    i = 3 if or_replace else 1
    if kws[i : i + 2] == ["ALGORITHM", "="]:
        if kws[i + 2 : i + 3] not in (["UNDEFINED"], ["MERGE"], ["TEMPTABLE"]):
            raise _parse_error()
        i += 3
    definer = None
    if kws[i : i + 2] == ["DEFINER", "="]:
        i, definer = _definer(tokens, i + 2)
    if kws[i : i + 2] == ["SQL", "SECURITY"]:
        if kws[i + 2 : i + 3] not in (["DEFINER"], ["INVOKER"]):
            raise _parse_error()
        i += 3
    if kws[i : i + 1] != ["VIEW"]:
        obj = kws[i] if i < len(kws) and kws[i].isalpha() else ""
        raise _unsupported(f"CREATE {obj}".strip() if obj else "CREATE of this object")
    cur = _Cursor([t.image for t in tokens], i + 1)
    if not or_replace:
        cur.accept("IF", "NOT", "EXISTS")
    db, name = cur.table_ref()
    reqs.table(db, name, Priv.CREATE)
    if or_replace:
        reqs.table(db, name, Priv.DROP)
    if cur.accept("("):
        while True:
            cur.name()
            if not cur.accept(","):
                break
        cur.expect(")")
    cur.expect("AS")
    query = cur.rest()
    qk = [_kw(img) for img in query]
    if qk[-2:] == ["CHECK", "OPTION"]:
        if qk[-3:-2] == ["WITH"]:
            query = query[:-3]
        elif qk[-4:-2] in (["WITH", "CASCADED"], ["WITH", "LOCAL"]):
            query = query[:-4]
        else:
            raise _parse_error()
    if not query or _kw(query[0]) not in ("SELECT", "WITH", "("):
        raise _parse_error()
    _check_images(query)
    if _shape_binds(query) & {BIND_NAMED_LOCK, BIND_SEQUENCE_VALUE}:
        # Selecting from it would leave a named lock or a sequence value on the backend
        # connection without the statement saying so: the session would not be pinned, and
        # the connection's next user (another client) would hold the lock or see the value.
        raise _unsupported("a view that calls GET_LOCK, NEXTVAL or SETVAL")
    _query_requirements(query, reqs)
    return Statement(
        Kind.QUERY,
        "",
        requirements=reqs.result(),
        reads_information_schema=reqs.reads_is,
        definer=definer,
    )


def _use(tokens: Sequence[Token]) -> Statement:
    if len(tokens) != 2:
        raise _parse_error()
    tok = tokens[1]
    if (
        tok.kind is TokenKind.WORD and tok.value.upper() not in RESERVED_WORDS
    ) or tok.kind is TokenKind.IDENT:
        name = tok.value
    else:
        raise _parse_error()
    if name == "":
        raise _parse_error()
    return Statement(Kind.USE, "", target_db=name)


def _like_only(tokens: Sequence[Token], kws: Sequence[str], what: str) -> str | None:
    """``[LIKE 'pattern']`` ending a SHOW the proxy answers: the pattern's value (None: none).
    One plain string literal (MariaDB's TEXT_STRING_sys: not N'...', no concatenation, no
    ESCAPE clause); ``WHERE`` is not supported."""
    if not tokens:
        return None
    if kws[0] == "WHERE":
        raise _unsupported(f"{what} ... WHERE")
    if (
        len(tokens) != 2
        or kws[0] != "LIKE"
        or tokens[1].kind is not TokenKind.STRING
        or tokens[1].raw[0] in "nN"
    ):
        raise _parse_error()
    return tokens[1].value


def _show_values(tokens: Sequence[Token], reqs: _Reqs) -> Statement:
    kws = [sliced_upper(t.value) if t.kind is TokenKind.WORD else t.value for t in tokens]
    if kws[1] == "EVENTS":
        # SHOW EVENTS [FROM db] [LIKE | WHERE]: the proxy answers (tenants cannot make events,
        # and the shard would refuse the mirror, which holds no EVENT privilege).
        cur = _Cursor([t.image for t in tokens], 2)
        _show_from_db(cur, reqs)
        _show_filter(cur, reqs)
        return Statement(
            Kind.SHOW_EVENTS,
            "",
            requirements=reqs.result(),
            reads_information_schema=reqs.reads_is,
        )
    if kws[1] in ("DATABASES", "SCHEMAS"):
        pattern = _like_only(tokens[2:], kws[2:], "SHOW DATABASES")
        return Statement(Kind.SHOW_DATABASES, "", like_pattern=pattern)
    if "STATUS" in kws[1:3]:  # SHOW [GLOBAL | SESSION | LOCAL] STATUS (as the opener saw)
        rest = kws.index("STATUS") + 1
        pattern = _like_only(tokens[rest:], kws[rest:], "SHOW STATUS")
        return Statement(Kind.SHOW_STATUS, "", like_pattern=pattern)
    if kws[1] == "QUERY_DIGEST":
        if len(kws) != 2:
            raise _parse_error()
        return Statement(Kind.SHOW_DIGEST, "")
    full = kws[1] == "FULL"
    if kws[1 + full :] != ["PROCESSLIST"]:
        raise _parse_error()
    return Statement(Kind.SHOW_PROCESSLIST, "", full=full)


# --------------------------------------------------------------------------------------------
# Identity functions and shard-internal variables (answered by the proxy: proxy.plan.rewrite)

_IDENTITY_FUNCTIONS: Final = {
    "CURRENT_USER": Identity.CURRENT_USER,
    "USER": Identity.USER,
    "SESSION_USER": Identity.USER,
    "SYSTEM_USER": Identity.USER,
    "CONNECTION_ID": Identity.CONNECTION_ID,
    "FOUND_ROWS": Identity.FOUND_ROWS,
    "ROW_COUNT": Identity.ROW_COUNT,
}
# The identity functions MariaDB calls as its own built-in when backquoted too (the native
# ones; `CURRENT_USER`() and the other grammar keywords are stored functions' calls).
_QUOTED_IDENTITY: Final = {
    name: identity for name, identity in _IDENTITY_FUNCTIONS.items() if name in NATIVE_FUNCTIONS
}
_IDENTITY_VARIABLES: Final = {
    **{
        f"@@{scope}{name}": identity
        for name, identity in (
            ("hostname", Identity.HOSTNAME),
            ("datadir", Identity.DATADIR),
            ("port", Identity.PORT),
            ("socket", Identity.SOCKET),
        )
        for scope in ("", "global.")
    },
    **{
        f"@@{scope}{name}": identity
        for name, identity in (
            ("warning_count", Identity.WARNING_COUNT),
            ("error_count", Identity.ERROR_COUNT),
        )
        for scope in ("", "session.", "local.")
    },
}
_SELECT_MODIFIERS: Final = frozenset(
    """
    SELECT ALL DISTINCT DISTINCTROW HIGH_PRIORITY STRAIGHT_JOIN SQL_SMALL_RESULT SQL_BIG_RESULT
    SQL_BUFFER_RESULT SQL_CACHE SQL_NO_CACHE SQL_CALC_FOUND_ROWS
    """.split()  # noqa: SIM905
)
# What ends a select list (at its own parenthesis depth).
_SELECT_LIST_ENDS: Final = frozenset(
    """
    FROM INTO WHERE GROUP HAVING ORDER LIMIT UNION EXCEPT INTERSECT WINDOW FOR LOCK PROCEDURE
    """.split()  # noqa: SIM905
)
# Statements whose identity calls are left alone: DDL stores expressions (DEFAULT CURRENT_USER()),
# which must stay calls.
_IDENTITY_UNTOUCHED: Final = frozenset({"CREATE", "ALTER"})


# What a DDL statement's stored query starts with, and the identity calls the shard would
# answer there as the mirror (see _stored_identity).
_QUERY_OPENERS: Final = frozenset({"SELECT", "VALUES"})
_STORED_IDENTITY: Final = frozenset(
    {
        Identity.CURRENT_USER,
        Identity.USER,
        Identity.CONNECTION_ID,
        Identity.HOSTNAME,
        Identity.DATADIR,
        Identity.PORT,
        Identity.SOCKET,
    }
)
_GRANT_VIEW_NAMES: Final = {identity.value: identity for identity in GRANT_VIEWS}

# Words a table named for its structure alone follows.
_STRUCTURE_ONLY: Final = frozenset({"TABLE", "DESCRIBE", "DESC", "EXPLAIN"})
# (first, end, identity, select_item, alias): see _identity_spans
_Span = tuple[int, int, Identity, bool, str]


def _name_image(image: str) -> str | None:
    """The name a word or quoted-identifier image stands for (None: neither)."""
    if image[0] == "`":
        return sliced_undoubled(image[1:-1], "`")
    return image if _is_word(image) else None


def _grant_view(images: Sequence[str], i: int) -> _Span | None:
    """``information_schema . X_PRIVILEGES`` at ``images[i]`` (with its alias, if any), or
    ``information_schema .`` of a column ``information_schema.X_PRIVILEGES.c``; not where a
    statement names it for its structure alone (DESCRIBE, SHOW COLUMNS FROM, SHOW CREATE
    TABLE, CHECK TABLE, ...: no rows)."""
    n = len(images)
    name = _name_image(images[i])
    if name is None or not _lower_is(name, "information_schema") or i + 2 >= n:
        return None
    if images[i + 1] != "." or (i and images[i - 1] == "."):
        return None
    before = _kw(images[i - 1]) if i else ""
    if before in _STRUCTURE_ONLY or (
        before in ("FROM", "IN") and _kw(images[0]) == "SHOW" and "SELECT" not in images[:i]
    ):
        return None
    view_name = _name_image(images[i + 2])
    if view_name is None:
        return None
    view = _GRANT_VIEW_NAMES.get(sliced_upper(view_name))
    if view is None:
        return None
    after = images[i + 3] if i + 3 < n else ""
    if after == ".":
        return (i, i + 2, Identity.GRANTS_QUALIFIER, False, view_name)
    alias = None
    if after and _kw(after) == "AS" and i + 4 < n:
        alias = _name_image(images[i + 4])
    elif after and _kw(after) not in NOT_ALIAS:
        alias = _name_image(after)
    if alias is None:
        return (i, i + 3, view, True, view_name)
    return (i, i + 3, view, False, alias)


def _identity_spans(images: Sequence[str]) -> list[_Span]:
    """``(first, end, identity, select_item, alias)`` of each identity call in ``images`` (the
    call is ``images[first:end]``): an unquoted ``CURRENT_USER`` with or without ``()``,
    ``USER()``, ``SESSION_USER()``, ``SYSTEM_USER()``, ``CONNECTION_ID()``, ``@@[global.]hostname
    | datadir | port | socket``, and information_schema's privilege tables (GRANT_VIEWS; their
    ``alias``). ``select_item``: the call is a whole item of a select list, without an alias
    (a privilege table: it has no alias). The same function reads a shape key's images (the
    cached fact) and a statement's tokens' images (the positions): literal-list collapsing
    never touches a call nor its neighbours, so both find the same calls."""
    out: list[_Span] = []
    in_list = [False]  # per parenthesis depth: inside a select list
    n = len(images)
    i = 0
    while i < n:
        img = images[i]
        identity: Identity | None = None
        end = i + 1
        if img[0] == "@":
            identity = _IDENTITY_VARIABLES.get(img)
        elif _is_word(img) or img[0] == "`":
            grant = _grant_view(images, i)
            if grant is not None:
                out.append(grant)
                i = grant[1]
                continue
            if img[0] == "`":
                # A native function stays the built-in backquoted (`CONNECTION_ID`()).
                identity = _QUOTED_IDENTITY.get(sliced_upper(sliced_undoubled(img[1:-1], "`")))
            else:
                identity = _IDENTITY_FUNCTIONS.get(sliced_upper(img))
            if identity is not None:
                call = i + 2 < n and images[i + 1] == "(" and images[i + 2] == ")"
                if i and (images[i - 1] == "." or _kw(images[i - 1]) == "INTO"):
                    # db.connection_id(): a stored function; INSERT INTO found_rows () VALUES
                    # (): a table
                    identity = None
                elif call:
                    end = i + 3
                elif (
                    identity is not Identity.CURRENT_USER
                    or img[0] == "`"
                    or (i + 1 < n and images[i + 1] == "(")
                ):
                    identity = None
        if identity is not None:
            before = _kw(images[i - 1]) if i else ""
            after = _kw(images[end]) if end < n else ""
            item = (
                in_list[-1]
                and (before in _SELECT_MODIFIERS or before == ",")
                and (after in ("", ",", ")") or after in _SELECT_LIST_ENDS)
            )
            out.append((i, end, identity, item, ""))
            i = end
            continue
        if img == "(":
            in_list.append(False)
        elif img == ")":
            if len(in_list) > 1:
                in_list.pop()
        else:
            kw = _kw(img)
            if kw == "SELECT":
                in_list[-1] = True
            elif kw in _SELECT_LIST_ENDS:
                in_list[-1] = False
        i += 1
    return out


# The calls the proxy answers by a value (not the privilege tables' names).
_ANSWERED: Final = frozenset(Identity) - GRANT_VIEWS - {Identity.GRANTS_QUALIFIER}
# What a name ending a select item follows when it is an operand, not the item's alias.
_OPERATORS: Final = frozenset(
    """
    + - * / % = < > <= >= <> != <=> & | ^ ~ ! << >> || && := . AND OR XOR NOT IS LIKE DIV MOD
    REGEXP RLIKE BINARY COLLATE ESCAPE SOUNDS CASE WHEN THEN ELSE INTERVAL
    """.split()  # noqa: SIM905
)


def _unaliased(images: Sequence[str], first: int, end: int) -> bool:
    """Whether the select item ``images[first:end]`` certainly has no alias: it ends with
    ``)``, a number, a parameter or a variable, a reserved word, a CASE's END, or a name or
    string after an operator. Anything else (``expr name``, ``expr 'name'``, ``AS name``, or
    ``INTERVAL 1 DAY``) is taken for an alias: never given a second one."""
    if end - first < 1 or (end - first >= 2 and _kw(images[end - 2]) == "AS"):
        return False
    last = images[end - 1]
    if last in (")", "?") or last[0] == "@":
        return True
    if _is_word(last) and last.upper() in RESERVED_WORDS:
        return True
    if _kw(last) == "END":  # (a CASE's, when each CASE has its END)
        words = [_kw(image) for image in images[first:end]]
        return words.count("CASE") == words.count("END")
    return end - first >= 2 and _kw(images[end - 2]) in _OPERATORS


def _unaliased_items(images: Sequence[str]) -> list[tuple[int, int]]:
    """``(first, end)`` of each select item without an alias (``images[first:end]``), in
    every select list of the statement (subqueries' too)."""
    out: list[tuple[int, int]] = []
    frames: list[list[Any]] = [[False, -1]]  # per parenthesis depth: [in a list, item's first]

    def close(frame: list[Any], end: int) -> None:
        if frame[0] and frame[1] >= 0 and _unaliased(images, frame[1], end):
            out.append((frame[1], end))
        frame[1] = -1

    for i, img in enumerate(images):
        frame = frames[-1]
        kw = _kw(img)
        if img == ")" and len(frames) > 1:
            close(frame, i)
            frames.pop()
            continue
        if kw == "SELECT":
            close(frame, i)
            frame[0] = True
            continue
        if frame[0] and (img == "," or kw in _SELECT_LIST_ENDS):
            close(frame, i)
            frame[0] = img == ","
            continue
        if frame[0] and frame[1] < 0 and kw not in _SELECT_MODIFIERS:
            frame[1] = i
        if img == "(":
            frames.append([False, -1])
    for frame in frames:
        close(frame, len(images))
    return out


def _with_identity_fact(st: Statement, images: Sequence[str]) -> Statement:
    """``st`` with the identity calls its images hold (positions not resolved), for a statement
    the shard runs; the cached fact of its shape. A DDL statement (whose calls stay calls)
    naming a privilege table is refused: a view, trigger or routine would read the mirror's."""
    if st.kind not in (Kind.QUERY, Kind.SESSION):
        return st
    untouched = _kw(images[0]) in _IDENTITY_UNTOUCHED
    if untouched:
        return _stored_identity(st, images)
    spans = _identity_spans(images)
    if not spans:
        return st
    facts = tuple(
        IdentityCall(identity, item, alias=alias) for _, _, identity, item, alias in spans
    )
    return dataclasses.replace(st, identity=facts)


def _stored_identity(st: Statement, images: Sequence[str]) -> Statement:
    """A DDL statement (CREATE, ALTER), whose identity calls stay calls: refused when a view,
    trigger or routine would read a privilege table (the mirror's grants), or when a stored
    query -- a view's body, a CREATE TABLE ... SELECT's (or VALUES') query, everything from
    its first SELECT or VALUES on -- calls what only the proxy answers: the shard would store
    or show the mirror's name, its own connection id or host. (A column's DEFAULT
    CURRENT_USER() comes before, and stays the shard's: a known gap.)"""
    query = next((i for i, image in enumerate(images) if _kw(image) in _QUERY_OPENERS), None)
    if query is None and "information_schema" not in " ".join(images).lower():
        return st
    spans = _identity_spans(images)
    if any(s[2] in GRANT_VIEWS or s[2] is Identity.GRANTS_QUALIFIER for s in spans):
        return Statement(
            Kind.REFUSED,
            st.text,
            error=not_supported(
                "information_schema's USER_, SCHEMA_, TABLE_ and COLUMN_PRIVILEGES in a "
                "stored definition (a view, trigger or routine)"
            ),
        )
    if query is not None and any(s[0] > query and s[2] in _STORED_IDENTITY for s in spans):
        return Statement(
            Kind.REFUSED,
            st.text,
            error=not_supported(
                "CURRENT_USER(), USER(), CONNECTION_ID(), @@hostname, @@port, @@datadir or "
                "@@socket in a stored query (a view, CREATE TABLE ... SELECT)"
            ),
        )
    return st


# SHOW commands MariaDB answers without running a query (FOUND_ROWS() stays): the others
# (TABLES, DATABASES, COLUMNS, INDEX, STATUS, VARIABLES, COUNT(*) WARNINGS, ...) read
# information_schema, and set it.
_SHOW_LEAVING: Final = frozenset(
    """
    WARNINGS ERRORS CREATE GRANTS PROCESSLIST MASTER SLAVE BINLOG RELAYLOG REPLICA PROFILE
    PROFILES EXPLAIN ANALYZE
    """.split()  # noqa: SIM905
)


def _reads_a_table(images: Sequence[str]) -> bool:
    """Whether ``images`` hold a SELECT with a FROM clause reading something (not DUAL): a
    query that runs, and sets FOUND_ROWS(), wherever it is (a subquery, INSERT ... SELECT)."""
    depth = 0
    selects: list[int] = []  # the depths of the SELECTs open
    for i, img in enumerate(images):
        if img == "(":
            depth += 1
            continue
        if img == ")":
            depth -= 1
            while selects and selects[-1] > depth:
                selects.pop()
            continue
        kw = _kw(img)
        if kw == "SELECT":
            selects.append(depth)
        elif (
            kw == "FROM"
            and selects
            and selects[-1] == depth
            and i + 1 < len(images)
            and _kw(images[i + 1]) != "DUAL"
        ):
            return True
    return False


def _several_tables(words: Sequence[str]) -> bool:
    """A multi-table UPDATE or DELETE (its tables joined: a query that sets FOUND_ROWS())."""
    depth = 0
    verb = words[0]
    seen_from = False
    for i, word in enumerate(words[1:], 1):
        if word == "(":
            depth += 1
        elif word == ")":
            depth -= 1
        elif depth:
            continue
        elif word in ("JOIN", "STRAIGHT_JOIN", "USING"):
            return True
        elif word == ",":
            # (UPDATE a, b SET ...; DELETE a, b FROM ...; DELETE FROM a, b USING ...)
            return verb == "DELETE" or not seen_from
        elif verb == "UPDATE" and word == "SET":
            return False
        elif verb == "DELETE" and word == "FROM":
            if i > 1 and words[i - 1] not in ("LOW_PRIORITY", "QUICK", "IGNORE", "DELETE"):
                return True  # (DELETE t FROM t JOIN ...)
            seen_from = True
        elif verb == "DELETE" and word in ("WHERE", "ORDER", "LIMIT", "RETURNING"):
            return False
    return False


def _counts_found_rows(images: Sequence[str]) -> bool:
    """Whether running the statement sets FOUND_ROWS(), as MariaDB does (10.11, measured): a
    query (SELECT, WITH, ``(SELECT``, SELECT ... INTO, SET STATEMENT ... FOR one), a SHOW
    that reads information_schema (not SHOW WARNINGS, ERRORS, CREATE, GRANTS, PROCESSLIST,
    ...), DESCRIBE of a table, CALL (its body may), a multi-table UPDATE or DELETE, and any
    statement running a SELECT that reads a table (INSERT ... SELECT, ``SET @a = (SELECT
    ... FROM t)``, a subquery of DO, UPDATE or DELETE: MariaDB sets it when the subquery runs,
    which a write with no rows to look at never does). Not: SET, DO, INSERT ... VALUES
    without such a subquery, single-table UPDATE and DELETE, DDL, transactions, TABLE,
    VALUES, EXPLAIN, HELP, CHECK and ANALYZE TABLE, HANDLER."""
    words = [_kw(image) for image in images[:8]]
    first = next((w for w in words if w != "("), "")
    if first in ("SELECT", "WITH", "CALL"):
        return True
    if first == "SHOW":
        second = words[1] if len(words) > 1 else ""
        if second == "FULL":
            second = words[2] if len(words) > 2 else ""
        return second not in _SHOW_LEAVING
    if first in ("DESCRIBE", "DESC", "EXPLAIN"):
        second = words[1] if len(words) > 1 else ""
        return first != "EXPLAIN" and second not in ("SELECT", "WITH", "(", "EXTENDED")
    if first == "SET" and len(words) > 1 and words[1] == "STATEMENT":
        at = next((i for i, image in enumerate(images) if _kw(image) == "FOR"), None)
        return at is not None and _counts_found_rows(images[at + 1 :])
    if first in ("UPDATE", "DELETE") and _several_tables([_kw(image) for image in images]):
        return True
    if first in ("TABLE", "VALUES", "HELP", "CHECK", "ANALYZE", "HANDLER", "EXPLAIN"):
        return False
    return _reads_a_table(images)


def _with_found_rows_fact(st: Statement, images: Sequence[str]) -> Statement:
    """``st`` with ``counts_found_rows`` (a fact of the shape, cached with it)."""
    if st.kind not in (Kind.QUERY, Kind.SESSION) or not images:
        return st
    if not _counts_found_rows(images):
        return st
    return dataclasses.replace(st, counts_found_rows=True)


def _with_definers_fact(st: Statement, images: Sequence[str]) -> Statement:
    """``st`` with ``shows_definers`` set when its answer may show a view's definer: ``SHOW
    CREATE TABLE|VIEW``, or a query naming ``information_schema.VIEWS`` anywhere (a fact of
    the shape, cached with it)."""
    if st.kind is not Kind.QUERY:
        return st
    opening = [_kw(image) for image in images[:3]]
    if opening in (["SHOW", "CREATE", "TABLE"], ["SHOW", "CREATE", "VIEW"]):
        return dataclasses.replace(st, shows_definers=True)
    n = len(images)
    for i, image in enumerate(images):
        if (
            i + 2 < n
            and images[i + 1] == "."
            and _lower_is(_name_image(image) or "", "information_schema")
            and _upper_is(_name_image(images[i + 2]) or "", "VIEWS")
        ):
            return dataclasses.replace(st, shows_definers=True)
    return st


def _resolve_positions(st: Statement, lexed: Callable[[], LexedStatement], sql: str) -> Statement:
    """``st`` with byte offsets in ``sql`` for what the relay rewrites: its identity calls and
    a CREATE VIEW's DEFINER account (whose ``definer`` holds character offsets until then).
    ``lexed()`` gives the statement's tokens, lexed only when there is something to place."""
    if st.identity:
        st = _resolve_identity(st, lexed(), sql)
    if st.definer is not None:
        if _comment_cut(sql[st.definer[0] : st.definer[1]]):
            return Statement(
                Kind.REFUSED,
                st.text,
                error=not_supported("a DEFINER account across a comment's end"),
            )
        start, end = utf8_offsets(sql, list(st.definer))
        st = dataclasses.replace(st, definer=(start, end))
    return st


def _comment_cut(text: str) -> bool:
    """Whether ``text`` (the bytes a splice replaces: names, punctuation, comments) holds one
    end of a ``/* ... */`` comment without the other: its first or last token is inside an
    executable comment (``information_schema/*!.TABLE_PRIVILEGES*/``) and the other outside.
    Replaced, the comment's other end would stay in the text the shard reads, opening or
    closing a comment where the proxy read none (a ``*/*`` then hides from the shard what the
    proxy read, and shows it what the proxy read as a string)."""
    i = 0
    while True:
        opened = text.find("/*", i)
        closed = text.find("*/", i)
        if opened < 0:
            return closed >= 0
        if 0 <= closed < opened:
            return True
        end = text.find("*/", opened + 2)
        if end < 0:
            return True
        i = end + 2


def _resolve_identity(st: Statement, lexed: LexedStatement, sql: str) -> Statement:
    """``st`` (with an identity fact) with each call's byte offsets in ``sql`` and its text,
    found in the statement's tokens. A call cut by a comment's end is refused (1235): its
    splice would change where the shard's comments are."""
    tokens = lexed.tokens
    spans = _identity_spans([t.image for t in tokens])
    chars: list[int] = []
    for first, end, _, _, _ in spans:
        last = tokens[end - 1]
        chars += (tokens[first].pos, last.pos + len(last.raw))
        if _comment_cut(sql[chars[-2] : chars[-1]]):
            return Statement(
                Kind.REFUSED,
                st.text,
                error=not_supported(
                    f"{sql[chars[-2] : chars[-1]]} across a comment's end (what the proxy"
                    " answers in its place must not move the comment)"
                ),
            )
    offsets = utf8_offsets(sql, chars)
    items = _unaliased_items([t.image for t in tokens])
    bounds = sorted({tokens[e - 1].pos + len(tokens[e - 1].raw) for _, e in items})
    item_ends = dict(zip(bounds, utf8_offsets(sql, bounds), strict=True))
    calls = []
    for k, ((first, end, identity, item, alias), a, b) in enumerate(
        zip(spans, chars[::2], chars[1::2], strict=True)
    ):
        around = []
        for f, e in reversed(items):  # (innermost first: an item ends before its list's)
            if f <= first and end <= e and identity in _ANSWERED:
                start, stop = tokens[f].pos, tokens[e - 1].pos + len(tokens[e - 1].raw)
                if not _comment_cut(sql[start:stop]):  # (else left as it is)
                    around.append((item_ends[stop], sql[start:stop]))
        around.sort(key=lambda pair: pair[0])
        calls.append(
            IdentityCall(
                identity, item, offsets[2 * k], offsets[2 * k + 1], sql[a:b], alias, tuple(around)
            )
        )
    return dataclasses.replace(st, identity=tuple(calls))


# --------------------------------------------------------------------------------------------
# Dispatch


def _opener(imgs: Sequence[str]) -> str:
    """Which analysis a statement takes, from its images only.

    ``"shape"`` (cacheable) or one of ``"set"``, ``"use"``, ``"kill"``, ``"show"``,
    ``"account"``, ``"transaction"``.
    """
    k0 = _kw(imgs[0])
    k1 = _kw(imgs[1]) if len(imgs) > 1 else ""
    k2 = _kw(imgs[2]) if len(imgs) > 2 else ""
    if k0 == "SET":
        return "set"
    if k0 == "USE":
        return "use"
    if k0 == "KILL":
        return "kill"
    if k0 in ("GRANT", "REVOKE"):
        return "account"
    if k0 == "SHOW":
        if k1 == "GRANTS":
            return "account"
        if k1 in ("DATABASES", "SCHEMAS", "PROCESSLIST", "QUERY_DIGEST", "STATUS", "EVENTS") or (
            k1,
            k2,
        ) in (
            ("FULL", "PROCESSLIST"),
            ("GLOBAL", "STATUS"),
            ("SESSION", "STATUS"),
            ("LOCAL", "STATUS"),
        ):
            return "show"
        return "shape"
    if k0 == "FLUSH" and [_kw(i) for i in imgs[1:]] in _FLUSH_PRIVILEGES:
        return "account"  # privileges are always current: the account grammar answers OK
    if k0 in ("CREATE", "DROP", "ALTER", "RENAME"):
        obj = k1
        if (k0, k1, k2) == ("CREATE", "OR", "REPLACE"):
            obj = _kw(imgs[3]) if len(imgs) > 3 else ""
        if obj in _ACCOUNT_OBJECTS:
            return "account"
        if obj in ("DATABASE", "SCHEMA") and k0 != "RENAME":
            return "database"
        if k0 == "CREATE" and obj in _VIEW_OPENERS:
            return "view"
    if k0 in ("BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
        return "transaction"
    if k0 == "UNLOCK":
        return "transaction"
    return "shape"


def _analyze_values(lexed: LexedStatement, opener: str, current_db: str | None) -> Statement:
    tokens = lexed.tokens
    reqs = _Reqs(current_db)
    try:
        if opener == "account":
            return Statement(Kind.ACCOUNT, lexed.text)
        if opener == "set":
            return _set(tokens, reqs)
        if opener == "use":
            return _use(tokens)
        if opener == "kill":
            return _kill(tokens)
        if opener == "show":
            return _show_values(tokens, reqs)
        if opener == "database":
            return _database(tokens)
        if opener == "view":
            return _create_view(tokens, reqs)
        return _transaction([_kw(t.image) for t in tokens])
    except _Refuse as refusal:
        return Statement(Kind.REFUSED, "", error=refusal.error)


_object_new = object.__new__
_object_setattr = object.__setattr__


def _placed(st: Statement, text: str, start: int, end: int, server: str = "MySQL") -> Statement:
    """``st`` with this statement's own text and offsets (and a 1064 naming its text, worded
    as ``server`` words it: :func:`proxy.sql.lexer.server_name`)."""
    error = st.error
    if error is None:
        if st.text == text and st.start == start and st.end == end:
            return st
        # The frozen dataclass __init__ costs a few microseconds; this is the cache-hit path.
        clone: Statement = _object_new(Statement)
        _object_setattr(clone, "kind", st.kind)
        _object_setattr(clone, "text", text)
        _object_setattr(clone, "requirements", st.requirements)
        _object_setattr(clone, "error", None)
        _object_setattr(clone, "target_db", st.target_db)
        _object_setattr(clone, "kill_id", st.kill_id)
        _object_setattr(clone, "kill_query", st.kill_query)
        _object_setattr(clone, "full", st.full)
        _object_setattr(clone, "lex_mode", st.lex_mode)
        _object_setattr(clone, "reads_information_schema", st.reads_information_schema)
        _object_setattr(clone, "charset", st.charset)
        _object_setattr(clone, "binds", st.binds)
        _object_setattr(clone, "readback", st.readback)
        _object_setattr(clone, "replay", st.replay)
        _object_setattr(clone, "lexing_unknown", st.lexing_unknown)
        _object_setattr(clone, "shows_warnings", st.shows_warnings)
        _object_setattr(clone, "like_pattern", st.like_pattern)
        _object_setattr(clone, "database", st.database)
        _object_setattr(clone, "releases", st.releases)
        _object_setattr(clone, "definer", st.definer)
        _object_setattr(clone, "start", start)
        _object_setattr(clone, "end", end)
        _object_setattr(clone, "identity", st.identity)
        _object_setattr(clone, "shows_definers", st.shows_definers)
        _object_setattr(clone, "counts_found_rows", st.counts_found_rows)
        return clone
    if error is _PARSE or error.errno == ErrorCode.PARSE.errno:
        error = parse_error(text, 1, server)
    return Statement(
        st.kind,
        text,
        st.requirements,
        error,
        st.target_db,
        st.kill_id,
        st.kill_query,
        st.full,
        st.lex_mode,
        st.reads_information_schema,
        st.charset,
        st.binds,
        st.readback,
        st.replay,
        st.lexing_unknown,
        st.shows_warnings,
        st.like_pattern,
        st.database,
        st.releases,
        st.definer,
        start,
        end,
        st.identity,
        st.shows_definers,
        st.counts_found_rows,
    )


def _analyze_one(
    images: Sequence[str],
    text: str,
    start: int,
    end: int,
    lexed: Callable[[], LexedStatement],
    current_db: str | None,
    server: str = "MySQL",
) -> tuple[Statement, bool]:
    """One statement: ``(statement, cacheable)``. Statements analysed from their shape need
    only its ``images``; the others read their tokens, which ``lexed()`` gives."""
    opener = _opener(images)
    try:
        if opener == "shape":
            st = _with_found_rows_fact(
                _with_definers_fact(
                    _with_identity_fact(_analyze_shape(images, current_db), images), images
                ),
                images,
            )
            return _placed(st, text, start, end, server), True
        st = _with_found_rows_fact(
            _with_definers_fact(
                _with_identity_fact(_analyze_values(lexed(), opener, current_db), images), images
            ),
            images,
        )
        return _placed(st, text, start, end, server), False
    except NeedsParse:
        raise
    except RecursionError:
        error = not_supported("statements nested this deeply")
    except Exception:  # fail closed: a bug here must refuse the statement, not crash the session
        # the shape key, never the text: it has no literals (passwords) in it
        log.exception("statement analysis failed for shape %.300r", " ".join(images))
        error = not_supported("this statement (the proxy could not analyse it)")
    return Statement(Kind.REFUSED, text, error=error, start=start, end=end), False


def _changes_lexing(st: Statement) -> bool:
    return st.kind is Kind.SESSION and (
        st.lex_mode is not None or st.charset is not None or st.lexing_unknown
    )


def _after_change(text: str, start: int, end: int) -> Statement:
    return Statement(
        Kind.REFUSED,
        text,
        error=not_supported(
            "statements after a change of sql_mode or character set in the same request"
        ),
        start=start,
        end=end,
    )


def _lex_refusal(
    err: LexError, sql: str, mode: LexMode, flavor: ServerFlavor | None
) -> list[Statement]:
    """The lexer refused ``sql``: one REFUSED statement spanning it -- unless it is one account
    statement naming an account (or database) with a bare name that starts with a digit
    (``CREATE USER 1abcd``), which the account grammar reads as MySQL does, so that the name
    rules judge it."""
    if err.error.errno != ErrorCode.PARSE.errno:  # a bound (too many statements, tokens)
        return [Statement(Kind.REFUSED, sql, error=err.error, start=0, end=len(sql))]
    try:
        lexed, _ = lex_with_digit_names(sql, mode, flavor)
    except LexError:
        lexed = []
    if len(lexed) == 1 and _opener(lexed[0].images) == "account":
        one = lexed[0]
        return [Statement(Kind.ACCOUNT, sql[one.start : one.end], start=0, end=len(sql))]
    return [Statement(Kind.REFUSED, sql, error=err.error, start=0, end=len(sql))]


def _same(lexed: LexedStatement) -> LexedStatement:
    return lexed


def analyze_uncached(
    sql: str,
    current_db: str | None,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
) -> list[Statement]:
    """Analyse every statement of ``sql`` from scratch ([] for an empty request), read as a
    ``flavor`` server reads it (``None``: unknown, see :mod:`proxy.sql.lexer`)."""
    try:
        statements = lex(sql, mode, flavor)
    except LexError as err:
        return _lex_refusal(err, sql, mode, flavor)
    out: list[Statement] = []
    changed = False
    for lexed in statements:
        if changed:
            out.append(_after_change(lexed.text, lexed.start, lexed.end))
            continue
        st, _cacheable = _analyze_one(
            lexed.images,
            lexed.text,
            lexed.start,
            lexed.end,
            partial(_same, lexed),
            current_db,
            server_name(flavor),
        )
        out.append(_resolve_positions(st, partial(_same, lexed), sql))
        changed = _changes_lexing(st)
    return out


# --------------------------------------------------------------------------------------------
# The shape cache

_CacheKey = tuple[str, str | None, LexMode]
_CACHE: OrderedDict[_CacheKey, Statement] = OrderedDict()
# A second, cheaper key for the commonest requests: the text itself with integer and simple
# string literals replaced, usable when the text is in a small alphabet on which a regular
# expression tokenizes exactly like the lexer (so equal fast keys imply equal shape keys).
_FAST: OrderedDict[tuple[str, str | None], Statement] = OrderedDict()
_stats = {"hits": 0, "fast_hits": 0, "misses": 0}

_FAST_WORD = r"[A-Za-z_][A-Za-z0-9_]*+(?![$'`\"\u0080-\U0010ffff])"
_FAST_NUM = r"(?<![.])[0-9]++(?:\.[0-9]++)?+(?![A-Za-z0-9_$.'`\"\u0080-\U0010ffff])"
_FAST_STR = r"'[^'\\\x00]*+'(?!')"
_FAST_BQ = r"`[A-Za-z0-9_$]++`"
_FAST_OP = (
    r"<=>|<=|>=|<>|!=|:=|[=<>!,()*+%.|&^~]|/(?!\*)|-(?!-)"
    r"|\?(?![A-Za-z0-9_$\u0080-\U0010ffff])"
)
_FAST_TOKEN = "|".join((_FAST_WORD, _FAST_NUM, _FAST_STR, _FAST_BQ, _FAST_OP))
# atomic tokens, possessive repetition: linear time, no backtracking
_fast_ok = re.compile(r"[ \t\r\n]*+(?:(?>" + _FAST_TOKEN + r")[ \t\r\n]*+)++").fullmatch
_sub_strings = re.compile(r"'[^']*'").sub
_sub_numbers = re.compile(r"(?<![A-Za-z0-9_$`.])[0-9]+(?:\.[0-9]+)?").sub
# The lexer's literal-list collapsing (proxy.sql.lexer) on the fast key, where the literals are
# already ? and '?': an IN list keeps its first element, a run of VALUES rows its first row.
# Only where the lexer collapses too (the keyword is a whole word, not right after a dot or a
# backquote), so equal fast keys still imply equal shape keys. Possessive: linear time.
_FW = r"[ \t\r\n]*+"
_FAST_ELEM = rf"(?:[-+]{_FW}\?|\?|'\?'|(?i:NULL|TRUE|FALSE)(?![A-Za-z0-9_$]))"
_FAST_MORE = rf"(?:{_FW},{_FW}{_FAST_ELEM})"
_FAST_ROW = rf"\({_FW}{_FAST_ELEM}{_FAST_MORE}*+{_FW}\)"
_IN_LIST = re.compile(
    rf"([iI](?<![A-Za-z0-9_$`.][iI])[nN]{_FW}\({_FW}{_FAST_ELEM}){_FAST_MORE}++(?={_FW}\))"
)
_VALUES_ROWS = re.compile(
    rf"([vV](?<![A-Za-z0-9_$`.][vV])(?i:ALUES?){_FW}{_FAST_ROW})(?:{_FW},{_FW}{_FAST_ROW})++"
)
_first_group = operator.methodcaller("group", 1)
# What the lists need, as literal-prefixed patterns (quick to search for) on the upper-cased
# text: most statements have no such list and pay next to nothing.
_NEEDS: Final = (
    (re.compile(r"IN[ \t\r\n]*\(").search, _IN_LIST),
    (re.compile(r"\)[ \t\r\n]*,[ \t\r\n]*\(").search, _VALUES_ROWS),
)
_FAST_MAX = 4096


def _fast_base_pure(sql: str) -> str | None:
    """The fast key before literal lists are collapsed (the reference for the compiled
    ``proxy.sql._cfastkey.fast_base``), or None when ``sql`` is not in the fast language --
    which also leaves out the texts that IGNORE_SPACE reads otherwise (``count (x)``:
    :func:`proxy.sql.lexer.spaced_call`), so that the fast key needs no lexer mode."""
    if len(sql) > _FAST_MAX or _fast_ok(sql) is None or spaced_call(sql):
        return None
    if "'" in sql:
        sql = _sub_strings("'?'", sql)
    return _sub_numbers("?", sql)


# The literals the fast key replaces, in the text as written: on the fast language a string
# holds no quote, so strings and numbers never overlap (the number pattern is _sub_numbers').
_fast_literal_spans = re.compile(r"'[^']*'|(?<![A-Za-z0-9_$`.])[0-9]+(?:\.[0-9]+)?").finditer


def _fast_literals_pure(sql: str) -> tuple[str, tuple[int, ...]] | None:
    """``(fast base key, spans)``: the key :func:`_fast_base_pure` gives (None: not in the fast
    language) and where each literal it replaced is in ``sql``, flat (start, end, start, end,
    ...), in order (the reference for the compiled ``proxy.sql._cfastkey.fast_literals``)."""
    base = _fast_base_pure(sql)
    if base is None:
        return None
    spans: list[int] = []
    for found in _fast_literal_spans(sql):
        spans += found.span()
    return base, tuple(spans)


# The compiled twins (proxy/sql/_cfastkey.pyx, built by .ci/setup), else the pure references.
FAST_BASE_MISSING: str | None = None
_fast_base: Callable[[str], str | None]
fast_literals: Callable[[str], tuple[str, tuple[int, ...]] | None]
try:
    from proxy.sql._cfastkey import fast_base as _fast_base
    from proxy.sql._cfastkey import fast_literals
except ImportError as _exc:
    FAST_BASE_MISSING = str(_exc)
    _fast_base = _fast_base_pure
    fast_literals = _fast_literals_pure


def _fast_key(sql: str) -> str | None:
    """The fast key of a single simple statement, or None."""
    found = _fast_base(sql)
    if found is None:
        return None
    sql = found
    if "," in sql and "(" in sql:
        upper = sql.upper()
        for needs, lists in _NEEDS:
            if needs(upper) is not None and lists.search(sql) is not None:
                sql = lists.sub(_first_group, sql)
    return sql


_CACHE_MAX_KEY = 4096  # longer statements are analysed every time (bounds the cache's memory)


def _remember(cache: OrderedDict[Any, Statement], key: Any, st: Statement) -> None:
    """Store ``st`` without its text and offsets (a hit gets the new statement's own)."""
    if len(key[0]) > _CACHE_MAX_KEY:
        return
    cache[key] = Statement(
        st.kind,
        "",
        st.requirements,
        st.error,
        reads_information_schema=st.reads_information_schema,
        binds=st.binds,
        shows_warnings=st.shows_warnings,
        identity=st.identity,
        shows_definers=st.shows_definers,
        counts_found_rows=st.counts_found_rows,
    )
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def cached_shape(sql: str, current_db: str | None) -> tuple[str, Statement] | None:
    """``(digest text, cached analysis)`` of ``sql`` if its fast key is cached, else None.

    The hot path's shortcut into :func:`analyze` (valid in any lexer mode and for any server
    flavor: the fast key's alphabet has no comments): the statement returned is the cache
    entry itself, whose ``text`` is empty and whose offsets are 0; everything else is what
    ``analyze`` would return for the single statement of ``sql`` (whose text is ``sql``
    without surrounding whitespace, and whose offsets are 0 and ``len(sql)``). The digest
    text is the fast key.
    """
    fast = _fast_key(sql)
    if fast is None:
        return None
    hit = _FAST.get((fast, current_db))
    if hit is None:
        return None
    _stats["fast_hits"] += 1
    return fast.strip(" \t\r\n"), hit


def analyze(
    sql: str,
    current_db: str | None,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
) -> list[Statement]:
    """Like :func:`analyze_uncached`, with decisions cached by shape key (see module doc)."""
    return analyze_with_digest(sql, current_db, mode, flavor)[0]


def analyze_with_digest(
    sql: str,
    current_db: str | None,
    mode: LexMode = DEFAULT_MODE,
    flavor: ServerFlavor | None = None,
    *,
    parse: bool = True,
) -> tuple[list[Statement], str]:
    """:func:`analyze`, and the request's *digest text*: its literals replaced by ``?`` /
    ``'?'`` and its literal lists collapsed, how the query digest groups statements -- the
    fast key where there is one (as :func:`cached_shape` gives it), else the shape keys the
    analysis lexed anyway.

    With ``parse=False`` it raises :class:`NeedsParse` instead of running sqlglot (a shape not
    cached yet, a SET from an expression): the caller then runs it again off its event loop.
    """
    if not parse:
        _parsing.forbidden = True
        try:
            return analyze_with_digest(sql, current_db, mode, flavor)
        finally:
            _parsing.forbidden = False
    fast = _fast_key(sql)
    digest = "" if fast is None else fast.strip(" \t\r\n")
    if fast is not None:
        # The fast language lexes identically in every mode, so the mode is not part of the key.
        fkey = (fast, current_db)
        hit = _FAST.get(fkey)
        if hit is not None:
            try:
                _FAST.move_to_end(fkey)
            except KeyError:  # evicted meanwhile (only if called from several threads)
                pass
            _stats["fast_hits"] += 1
            st = _placed(hit, sql.strip(" \t\r\n"), 0, len(sql), server_name(flavor))
            if st.identity:
                st = _resolve_identity(st, lex(sql, mode, flavor)[0], sql)
            return [st], digest
    try:
        raw = shapes(sql, mode, flavor)
    except LexError as err:
        return _lex_refusal(err, sql, mode, flavor), digest or sql.strip()
    if fast is None:
        digest = ";".join(shape.key for shape in raw)
    out: list[Statement] = []
    lexed: list[LexedStatement] = []

    def tokens(index: int) -> LexedStatement:
        """The statement's tokens (the request is lexed with tokens once, when first needed)."""
        if not lexed:
            lexed.extend(lex(sql, mode, flavor))
        return lexed[index]

    changed = False
    for index, (key, images, text, start, end) in enumerate(raw):
        if changed:
            out.append(_after_change(text, start, end))
            continue
        ckey = (key, current_db, mode)
        hit = _CACHE.get(ckey)
        if hit is not None:
            try:
                _CACHE.move_to_end(ckey)
            except KeyError:
                pass
            _stats["hits"] += 1
            st = _placed(hit, text, start, end, server_name(flavor))
            out.append(_resolve_positions(st, partial(tokens, index), sql))
            continue
        _stats["misses"] += 1

        st, cacheable = _analyze_one(
            images, text, start, end, partial(tokens, index), current_db, server_name(flavor)
        )
        if cacheable:
            _remember(_CACHE, ckey, st)
            if fast is not None and len(raw) == 1:
                _remember(_FAST, (fast, current_db), st)
        out.append(_resolve_positions(st, partial(tokens, index), sql))
        changed = _changes_lexing(st)
    return out, digest


def cache_clear() -> None:
    _CACHE.clear()
    _FAST.clear()
    for k in _stats:
        _stats[k] = 0


def cache_info() -> dict[str, int]:
    return {**_stats, "size": len(_CACHE), "fast_size": len(_FAST)}
