"""What a client command means, decided in one pure function: ``plan(command, view, snapshot)``.

The session turns each packet into a :data:`Command` value (after the classifier has analysed any
SQL in it), asks :func:`plan` what to do, and carries the returned :data:`Plan` out in one place
(``proxy.session.executor``). ``plan`` never performs I/O and reads nothing but its arguments:
the command, the session as the decision sees it (:class:`SessionView`) and one catalog snapshot.
It is tested from a table of cases (``tests/unit/plan_cases.txt``) and the fast path memoizes it,
so both paths make the same decision by construction.

Plans:

* :class:`Relay` -- forward the client's packet verbatim to the session's backend connection and
  relay the answer; :class:`Effects` says what the command leaves on that connection. Its
  ``rewrite`` (:mod:`proxy.plan.rewrite`) is the one exception to "verbatim": identity functions
  and shard-internal variables, answered by the proxy, replaced at their token positions, and a
  ``CREATE VIEW``'s DEFINER account, which becomes ``CURRENT_USER`` (a view's definer is always
  its creator).
* :class:`Forward` -- forward a packet that has no answer (COM_STMT_CLOSE, SEND_LONG_DATA).
* :class:`Deny` -- answer with this error; nothing reaches a shard.
* :class:`Sharded` -- a statement on a sharded database's sharded or broadcast tables, or its
  DDL and SHOW commands: its decision (``proxy.shard.statements``) carries the targets (physical
  database and physical statement each) or the local answer; ``proxy.session.sharded`` carries
  it out. Statements naming only single tables are relayed to physical database 0 as today.
* :class:`PrepareAnswered` / :class:`AnsweredExecution` -- a statement the proxy answers itself
  (a local answer below, a sharded database's SHOW or DDL) prepared with COM_STMT_PREPARE: the
  proxy answers the PREPARE; each EXECUTE is the text's plan made again, answered in binary rows.
* Local answers: :class:`UseDatabase`, :class:`ShowDatabases`, :class:`ShowProcesslist`,
  :class:`ShowDigest`, :class:`ShowNotes`, :class:`ShowEvents`, :class:`ShowStatus`,
  :class:`Statistics`, :class:`Kill`, :class:`RunAccountStatement`, :class:`Ok` (with notes:
  ``CREATE DATABASE IF NOT EXISTS`` of the current database), :class:`NoReply`,
  :class:`Reauthenticate`, :class:`Quit`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from auth.catalog import CatalogSnapshot
from auth.errors import (
    ErrorCode,
    SqlError,
    database_exists,
    db_access_denied,
    no_database_selected,
    not_supported,
    sql_error,
    worded_for,
)
from auth.model import Account
from auth.privileges import Priv, Requirement
from proxy.plan.authorize import Caller, check_requirements, refusal_for, resolve_database
from proxy.plan.grants import grant_view_table
from proxy.plan.rewrite import IdentityValues, Splice, apply_splices, identity_splices
from proxy.shard.route import (
    Layout,
    NeedsSequence,
    Route,
    Target,
    hint_comment,
    quote_name,
    split_physical_names,
    table_columns,
)
from proxy.shard.statements import (
    Decision,
    LocalRows,
    NeedsNextval,
    TableLocks,
    decide,
    field_listing,
    show_commands,
    table_locks,
)
from proxy.shard.transaction import TransactionControl, transaction_control
from proxy.sql.account_grammar import ShowGrants, UserRef, parse_account_statement
from proxy.sql.analyze import BIND_TABLE_LOCK, GRANT_VIEWS, DatabaseStatement, Kind, Statement
from proxy.sql.charsets import UTF8MB3, beyond_bmp
from proxy.sql.lexer import (
    DEFAULT_MODE,
    LexError,
    LexMode,
    ServerFlavor,
    TokenKind,
    lex,
    server_name,
    spaced_call,
)
from proxy.sql.like import shows_database
from proxy.wire.stream import ResponseKind

# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True)
class SessionView:
    """The session as decisions see it."""

    account: Account
    client_ip: str
    current_db: str | None
    has_notes: bool = False  # notes of the proxy's own last statement wait for SHOW WARNINGS
    # Something ties the session to its backend connection or its database (a transaction,
    # temporary tables, locks, user variables, prepared statements).
    bound: bool = False
    # What identity functions and shard-internal variables answer (None: left to the shard).
    identity: IdentityValues | None = None
    # How the session's statements are lexed (a sharded database's routing lexes them again).
    lex_mode: LexMode = DEFAULT_MODE
    flavor: ServerFlavor | None = None
    # The Python codec of the client's character set (None: one the proxy cannot read): a
    # sharded database's string keys are read in it.
    codec: str | None = "utf-8"


# How the shard reads a text: the lexing part of its sql_mode, the server flavor (executable
# comments) and the Python codec of the client's character set (SessionView's three).
Lexing = tuple[LexMode, ServerFlavor | None, str | None]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement prepared on the session's backend connection."""

    statement: Statement
    digest: str  # how the query digest shows it
    # How the shard read its text at COM_STMT_PREPARE, when another sql_mode, character set or
    # server could read it otherwise (``prepared_lexing``; None: read alike by all). The shard
    # prepares the text again under the session's state then -- on another backend
    # connection, on a sharded database's other partitions the first time an execution goes
    # there, and after a table it names changed -- and the proxy's analysis is of this reading.
    lexing: Lexing | None = None
    # A statement the proxy answers itself (``PrepareAnswered``): nothing is prepared on a
    # shard; each execution is decided again as its text would be, and answered in the binary
    # protocol (``AnsweredExecution``).
    answered: bool = False


def view_lexing(view: SessionView) -> Lexing:
    return (view.lex_mode, view.flavor, view.codec)


def prepared_lexing(sql: bytes, lexing: Lexing) -> Lexing | None:
    """What ``Prepared.lexing`` holds for the statement text ``sql`` prepared under
    ``lexing``: None when every sql_mode, character set and server the proxy serves reads it
    alike -- ASCII (every client character set it accepts is ASCII's superset, its multi-byte
    characters holding no ASCII byte), without a double quote (ANSI_QUOTES), a backslash
    (NO_BACKSLASH_ESCAPES), a comment that can be executable (the server's version) or a
    built-in name before whitespace and ``(`` (IGNORE_SPACE: ``spaced_call``)."""
    if (
        sql.isascii()
        and b'"' not in sql
        and b"\\" not in sql
        and b"/*" not in sql
        and not spaced_call(sql.decode("ascii"))
    ):
        return None
    return lexing


def _read_otherwise() -> Deny:
    return Deny(
        not_supported(
            "executing a prepared statement under another sql_mode or character set than the "
            "one it was prepared under (the server would read its text otherwise): prepare it "
            "again"
        )
    )


@dataclass(frozen=True, slots=True)
class Query:
    """COM_QUERY: one statement or several (a multi-statement packet)."""

    statements: tuple[Statement, ...]
    digest: str
    # The packet's SQL (a statement's original text is ``sql[start:end]``, comments and hints
    # included: a sharded database's routing rewrites it; '' when not given).
    sql: str = ""


@dataclass(frozen=True, slots=True)
class InitDb:
    name: str


@dataclass(frozen=True, slots=True)
class Prepare:
    statements: tuple[Statement, ...]
    digest: str
    sql: str = ""  # the packet's SQL (as Query.sql: a sharded database routes it)


@dataclass(frozen=True, slots=True)
class StatementCommand:
    """COM_STMT_EXECUTE / FETCH / RESET / CLOSE / SEND_LONG_DATA on a prepared statement."""

    code: int
    statement_id: int
    prepared: Prepared | None


@dataclass(frozen=True, slots=True)
class FieldList:
    table: str


@dataclass(frozen=True, slots=True)
class ProcessKill:
    connection_id: int


@dataclass(frozen=True, slots=True)
class Simple:
    """A command with no argument the decision needs (PING, STATISTICS, QUIT, ...)."""

    code: int


Command = Query | InitDb | Prepare | StatementCommand | FieldList | ProcessKill | Simple

# Command codes (the wire's Command enum, as plain ints).
COM_QUIT = 0x01
COM_FIELD_LIST = 0x04
COM_STATISTICS = 0x09
COM_PING = 0x0E
COM_CHANGE_USER = 0x11
COM_STMT_EXECUTE = 0x17
COM_STMT_SEND_LONG_DATA = 0x18
COM_STMT_CLOSE = 0x19
COM_STMT_RESET = 0x1A
COM_SET_OPTION = 0x1B
COM_STMT_FETCH = 0x1C
COM_RESET_CONNECTION = 0x1F

# --------------------------------------------------------------------------------------------
# Plans


@dataclass(frozen=True, slots=True)
class Effects:
    """What a relayed command leaves on the session's backend connection."""

    binds: frozenset[str] = frozenset()  # state a new connection would not have
    releases: frozenset[str] = frozenset()  # binds that end if the command succeeds
    readback: tuple[str, ...] = ()  # system variables to read back (and replay) afterwards
    replay: tuple[str, ...] = ()  # SET fragments replayed as written on a new connection
    # Hold the answer until the read-back is done: the client's next command never races the
    # proxy's reading of the new state, and a state the proxy cannot lex in (known only once
    # read back) is undone and refused instead of acknowledged. (Multi-statement packets stream
    # and are read back after; the statements whose new state is unknown cannot be in one.)
    hold: bool = False
    prepares: Statement | None = None  # COM_STMT_PREPARE: what a PREPARE_OK registers
    resets: bool = False  # COM_RESET_CONNECTION: the connection's session state is cleared
    # information_schema's privilege tables the statement reads, put in place by derived
    # tables (proxy.plan.grants): (the name the statement knows each by, the table's), whose
    # columns' definitions the relay gives back (not a fast-path relay, which relays them
    # as they come).
    grant_views: tuple[tuple[str, str], ...] = ()
    # The answer may show a view's definer (``Statement.shows_definers``): relayed by
    # proxy.session.definers, which names the client's accounts where the shard names their
    # mirrors (not a fast-path relay).
    definers: bool = False


NO_EFFECTS = Effects()
_DEFINERS_ONLY = Effects(definers=True)  # (a sharded packet's copies: may_show_definers)


@dataclass(frozen=True, slots=True)
class PacketKill:
    """A ``KILL [QUERY] id`` inside a multi-statement packet; ``start``/``end``: its statement's
    character offsets in the packet's text (``Statement.start`` / ``end``)."""

    connection_id: int
    query_only: bool
    start: int
    end: int
    last: bool  # the packet's last statement (its text has no ';' to keep)


@dataclass(frozen=True, slots=True)
class Relay:
    """Forward the client's packet verbatim; relay the shard's answer verbatim."""

    response: ResponseKind
    digest: str | None  # the query digest text to record it under (None: not recorded)
    effects: Effects = NO_EFFECTS
    # Replacements in the packet's statement text, in order (proxy.plan.rewrite).
    rewrite: tuple[Splice, ...] = ()
    # KILL statements of a multi-statement packet: the proxy carries them out (they name its
    # connection ids) before relaying, and the shard runs a stand-in for each at its place.
    kills: tuple[PacketKill, ...] = ()
    # An execution of a statement prepared with the privilege tables' derived tables: the
    # replacements in its prepared text (the COM_STMT_PREPARE's) that the grants now give;
    # the shard prepares it again when they are not the ones it was prepared with.
    respliced: tuple[Splice, ...] | None = None


@dataclass(frozen=True, slots=True)
class Sharded:
    """A statement of a sharded database that the sharded data path carries out: routed to its
    targets, fanned out (DDL), or answered from the catalog (``decision``)."""

    decision: Decision
    text: str  # the statement (routed again once an INSERT's sequence values are taken)
    layout: Layout
    digest: str | None


@dataclass(frozen=True, slots=True)
class ShardedPacket:
    """A multi-statement packet naming a sharded database's sharded or broadcast tables: each
    statement decided on its own (those on single tables as a copy on physical database 0),
    run in order; every answer but the last says more results follow, and an error ends the
    packet (as MariaDB runs one)."""

    statements: tuple[Sharded, ...]
    digest: str


@dataclass(frozen=True, slots=True)
class Forward:
    """Forward the packet; the shard sends no answer (COM_STMT_CLOSE, SEND_LONG_DATA)."""

    closes: int | None  # the statement id COM_STMT_CLOSE forgets


@dataclass(frozen=True, slots=True)
class Deny:
    error: SqlError


@dataclass(frozen=True, slots=True)
class PrepareAnswered:
    """COM_STMT_PREPARE of a statement the proxy answers itself (SHOW DATABASES, SHOW STATUS,
    account statements, KILL, a sharded database's SHOW and DDL, ...), as MariaDB prepares
    them: the proxy answers the PREPARE with an id of the session's own, no parameters and the
    ``columns`` the answer will have where they are known before it runs (``numeric``: BIGINT
    ones; none where only the execution tells, as MariaDB sends none for SHOW PROCESSLIST).
    Nothing reaches a shard."""

    prepared: Prepared
    columns: tuple[str, ...] = ()
    numeric: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AnsweredExecution:
    """COM_STMT_EXECUTE of a statement the proxy answers itself: ``plan``, its text's decision
    made again now (grants, the catalog, the layout of the moment), carried out as for the text
    protocol, its result set in the binary protocol's rows."""

    plan: Plan


@dataclass(frozen=True, slots=True)
class UseDatabase:
    name: str  # the catalog's spelling


@dataclass(frozen=True, slots=True)
class ShowDatabases:
    names: tuple[str, ...]  # already filtered by the LIKE pattern
    column: str = "Database"  # ``Database (pattern)`` with LIKE, as MariaDB names it


@dataclass(frozen=True, slots=True)
class ShowProcesslist:
    full: bool


@dataclass(frozen=True, slots=True)
class ShowDigest:
    database: str


@dataclass(frozen=True, slots=True)
class ShowNotes:
    """SHOW WARNINGS|ERRORS [LIMIT ...] / SHOW COUNT(*) WARNINGS|ERRORS after one of the proxy's
    own statements left notes, or after the last statement's connection went to another
    session (its warnings were saved): ``text`` is the statement's."""

    text: str = ""
    count: bool = False  # SHOW COUNT(*) WARNINGS|ERRORS
    errors: bool = False  # ERRORS: the notes of level Error only


@dataclass(frozen=True, slots=True)
class ShowEvents:
    """SHOW EVENTS: none (tenants cannot make events; the mirror may not list them)."""


STATUS_COLUMNS = ("Variable_name", "Value")
# SHOW EVENTS, as MariaDB names its columns (the proxy's answer has no rows).
EVENTS_COLUMNS = (
    "Db",
    "Name",
    "Definer",
    "Time zone",
    "Type",
    "Execute at",
    "Interval value",
    "Interval field",
    "Starts",
    "Ends",
    "Status",
    "Originator",
    "character_set_client",
    "collation_connection",
    "Database Collation",
)


@dataclass(frozen=True, slots=True)
class ShowStatus:
    """SHOW [GLOBAL|SESSION] STATUS [LIKE 'pattern']: the proxy's own counters, never a
    shard's (whose counters are every tenant's)."""

    pattern: str | None


@dataclass(frozen=True, slots=True)
class Statistics:
    """COM_STATISTICS (``mariadb-admin status``): the proxy's one-line summary."""


@dataclass(frozen=True, slots=True)
class Kill:
    connection_id: int
    query_only: bool


@dataclass(frozen=True, slots=True)
class RunAccountStatement:
    text: str


@dataclass(frozen=True, slots=True)
class Ok:
    """Answer OK, do nothing (COM_PING); ``notes`` (code, message) wait for SHOW WARNINGS."""

    notes: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class NoReply:
    """Do nothing and answer nothing (COM_STMT_CLOSE of an unknown statement)."""


@dataclass(frozen=True, slots=True)
class Reauthenticate:
    """COM_CHANGE_USER: the login path runs again."""


@dataclass(frozen=True, slots=True)
class Quit:
    """COM_QUIT: close the connection."""


Plan = (
    Relay
    | Sharded
    | ShardedPacket
    | Forward
    | Deny
    | PrepareAnswered
    | AnsweredExecution
    | UseDatabase
    | ShowDatabases
    | ShowProcesslist
    | ShowDigest
    | ShowNotes
    | ShowEvents
    | ShowStatus
    | Statistics
    | Kill
    | RunAccountStatement
    | Ok
    | NoReply
    | Reauthenticate
    | Quit
)

# --------------------------------------------------------------------------------------------
# Errors


def _empty_query() -> SqlError:
    return sql_error(ErrorCode.EMPTY_QUERY, "Query was empty")


def _not_combinable(statement: Statement) -> SqlError:
    return sql_error(
        ErrorCode.NOT_SUPPORTED_YET,
        f"This statement cannot be combined with others in one packet: {statement.text[:60]}",
    )


def _not_relayable() -> SqlError:
    return sql_error(ErrorCode.NOT_SUPPORTED_YET, "Statement not supported by the proxy")


def _no_cursor(statement_id: int) -> SqlError:
    return SqlError(1421, "HY000", f"The statement ({statement_id}) has no open cursor.")


def _unknown_statement(statement_id: int, name: str) -> SqlError:
    return sql_error(
        ErrorCode.UNKNOWN_STMT_HANDLER,
        f"Unknown prepared statement handler ({statement_id}) given to {name}",
    )


_STATEMENT_COMMAND_NAMES = {
    COM_STMT_EXECUTE: "mysqld_stmt_execute",
    COM_STMT_FETCH: "mysqld_stmt_fetch",
    COM_STMT_RESET: "mysqld_stmt_reset",
}

# --------------------------------------------------------------------------------------------
# The decision


def plan(command: Command, view: SessionView, snapshot: CatalogSnapshot) -> Plan:
    """What ``command`` means for this session, against this catalog snapshot."""
    if (
        isinstance(command, Query | Prepare)
        and view.codec != "utf-8"
        and command.sql
        and _misread(command.sql, view)
    ):
        # Before anything the proxy read in the text: it may not be what the shard reads.
        foreign = _foreign_text(command.sql, view)
        if foreign is not None:
            return foreign
    if isinstance(command, Query):
        return _query(command, view, snapshot)
    if isinstance(command, StatementCommand):
        return _statement_command(command, view, snapshot)
    if isinstance(command, Prepare):
        return _prepare(command, view, snapshot)
    if isinstance(command, InitDb):
        return _use(command.name, view, snapshot)
    if isinstance(command, FieldList):
        if view.current_db is None:
            return Deny(no_database_selected())
        if view.codec != "utf-8" and _misread(command.table, view):
            return _foreign_names(view)
        # COM_FIELD_LIST is SHOW COLUMNS: it needs SELECT on the table.
        requirement = Requirement(Priv.SELECT, view.current_db, command.table)
        error = check_requirements((requirement,), snapshot, _caller(view))
        if error is not None:
            return Deny(error)
        layout = sharded_layout(snapshot, view.current_db)
        if layout is not None:
            # A logical table: its physical table in physical database 0 answers.
            try:
                listing = field_listing(layout, command.table)
            except SqlError as refused:
                return Deny(refused)
            return Sharded(listing, "", layout, None)
        return Relay(ResponseKind.FIELD_LIST, None)
    if isinstance(command, ProcessKill):
        return Kill(command.connection_id, query_only=False)
    return _simple(command.code)


def _caller(view: SessionView) -> Caller:
    return Caller(view.account, view.client_ip, view.current_db)


def _simple(code: int) -> Plan:
    if code == COM_PING:
        return Ok()
    if code == COM_QUIT:
        return Quit()
    if code == COM_CHANGE_USER:
        return Reauthenticate()
    if code == COM_RESET_CONNECTION:
        return Relay(ResponseKind.SINGLE, None, Effects(resets=True))
    if code == COM_STATISTICS:
        return Statistics()
    if code == COM_SET_OPTION:
        return Relay(ResponseKind.SINGLE, None)
    return Deny(sql_error(ErrorCode.UNKNOWN_COM, "Unknown command"))


def statement_effects(statement: Statement) -> Effects:
    """The effects of relaying one analysed statement."""
    views = grant_views((statement,))
    if (
        not statement.binds
        and not statement.readback
        and not statement.replay
        and not statement.releases
        and not views
        and not statement.shows_definers
    ):
        return NO_EFFECTS
    return Effects(
        binds=statement.binds,
        releases=statement.releases,
        readback=statement.readback,
        replay=statement.replay,
        hold=bool(statement.readback),
        grant_views=views,
        definers=statement.shows_definers,
    )


def grant_views(statements: Sequence[Statement]) -> tuple[tuple[str, str], ...]:
    """(name known by, table) of each information_schema privilege table the statements read."""
    return tuple(
        (call.alias, call.identity.value)
        for statement in statements
        for call in statement.identity
        if call.identity in GRANT_VIEWS
    )


def relayed_statement(
    statement: Statement,
    view: SessionView,
    snapshot: CatalogSnapshot,
    original: str = "",
    prepared: bool = False,
    answered: str | None = None,
) -> Plan:
    """A statement the shard runs (QUERY or SESSION): relayed if the caller holds what it
    needs; any other kind is denied here (the statements the proxy answers itself never come
    this way). This is the decision the fast path memoizes per statement and grant view.
    On a sharded database, ``original`` (the client's text of the statement, when known) is
    what routing rewrites for the partitions; a ``prepared`` statement's parameters are
    routed as NULLs here (each execution is routed with its values). ``answered``: the
    client's text with the identity calls answered (``identity_answered``), what a sharded
    database's statement runs as."""
    if statement.kind is Kind.REFUSED:
        assert statement.error is not None
        return Deny(refusal_for(statement.error, snapshot, _caller(view)))
    if statement.kind is not Kind.QUERY and statement.kind is not Kind.SESSION:
        return Deny(_not_relayable())
    if view.codec != "utf-8" and _names_not_ascii(statement.text, view):
        return _foreign_names(view)
    requirements = _first_columns(statement.requirements, snapshot)
    error = check_requirements(requirements, snapshot, _caller(view))
    if error is not None:
        return Deny(error)
    if BIND_TABLE_LOCK in statement.binds or BIND_TABLE_LOCK in statement.releases:
        layout = sharded_layout(snapshot, view.current_db)
        if layout is not None:
            # LOCK / UNLOCK TABLES on a sharded database: on every partition's connection.
            try:
                locks = (
                    TableLocks(True)
                    if BIND_TABLE_LOCK in statement.releases
                    else table_locks(statement.text, layout, view.lex_mode, view.flavor)
                )
            except SqlError as refused:
                return Deny(refused)
            if locks is not None and prepared:
                return Deny(not_supported("LOCK / UNLOCK TABLES prepared on a sharded database"))
            if locks is not None:
                return Sharded(locks, statement.text, layout, None)
    if statement.kind is Kind.QUERY:
        layout = sharded_layout(snapshot, view.current_db)
        decided = (
            None
            if layout is None
            else _sharded(
                statement,
                layout,
                view,
                snapshot,
                answered or original,
                prepared,
                answered is not None,
            )
        )
        if decided is not None:
            return decided
    else:
        layout = sharded_layout(snapshot, view.current_db)
        if layout is not None:
            # A sharded database's transaction statements: the proxy runs its transactions.
            text = original or statement.text
            try:
                control = transaction_control(text, view.lex_mode, view.flavor)
            except SqlError as refused:
                return Deny(refused)
            if control is not None:
                return Sharded(control, text, layout, None)
            unrouted = _unrouted(statement, layout)
            if unrouted is not None:
                return Deny(unrouted)
    return Relay(ResponseKind.QUERY, "", statement_effects(statement))


def _misread(text: str, view: SessionView) -> bool:
    """Whether ``text`` has a character the proxy, reading the client's bytes as UTF-8, may
    read otherwise than the shard reading them in the client's character set (``view.codec``,
    not UTF-8's): any that is not ASCII, or in utf8mb3 one beyond the Basic Multilingual Plane
    (4 bytes: no character there)."""
    if view.codec == UTF8MB3:
        return beyond_bmp(text)
    return not text.isascii()


def _names_not_ascii(text: str, view: SessionView) -> bool:
    """Whether the executable ``text`` has a character that is not ASCII outside its string
    literals (``_misread``). The proxy reads a statement's bytes as UTF-8; a client of
    another character set (``SET NAMES latin1``) has the shard read them in that one: the
    bytes C3 A9 are the table ``é`` for the proxy, ``Ã©`` for the shard."""
    if not _misread(text, view):
        return False
    try:
        statements = lex(text, view.lex_mode, view.flavor)
    except LexError:
        return True
    return any(
        token.kind is not TokenKind.STRING and _misread(token.raw, view)
        for lexed in statements
        for token in lexed.tokens
    )


# MariaDB's spaces beyond ASCII's in the character sets a client may use (SAFE_CHARSETS):
# 0xA0 in latin1, latin2, latin5, latin7, cp1250, greek, hebrew, dec8, armscii8, geostd8; 0xFF
# in cp852, cp866, keybcs2. None is a space for the proxy, which reads the text as UTF-8:
# ``SELECT<A0>1`` is one word to it, ``SELECT 1`` to MariaDB; ``--<A0>`` starts a comment,
# ``COUNT<A0>(`` is no call and ``/*!100000<A0>`` a six-digit version there only.
_FOREIGN_SPACES = (0xA0, 0xFF)


def _foreign_text(text: str, view: SessionView) -> Deny | None:
    """A text from a client whose character set is not UTF-8 with a character that is not
    ASCII outside its string literals, which the proxy may read otherwise than the shard:
    refused before anything is decided from the proxy's reading of it (a syntax error the
    proxy finds in it is not the shard's); None: none."""
    if not _names_not_ascii(text, view):
        return None
    raw = text.encode("utf-8", "surrogateescape")  # (the client's bytes)
    spaces = [f"0x{byte:02X}" for byte in _FOREIGN_SPACES if byte in raw]
    if spaces:
        return Deny(
            not_supported(
                "characters that are not ASCII outside string literals from a client whose"
                " character set is not utf8 or utf8mb4, such as the byte "
                + " or ".join(spaces)
                + " (a space for MariaDB in some character sets, 0xA0 in latin1, not for the"
                " proxy: write an ASCII space)"
            )
        )
    return _foreign_names(view)


def _foreign_names(view: SessionView) -> Deny:
    if view.codec == UTF8MB3:
        return Deny(
            not_supported(
                "names with a character beyond the Basic Multilingual Plane from a client whose"
                " character set is utf8mb3 (4 bytes that are no character in it)"
            )
        )
    return Deny(
        not_supported(
            "names that are not ASCII from a client whose character set is not utf8 or "
            "utf8mb4 (the proxy would read them otherwise than the shard)"
        )
    )


def _unrouted(statement: Statement, layout: Layout) -> SqlError | None:
    """The refusal of a statement the sharded data path leaves to physical database 0 (a
    session statement, or one routing found no sharded or broadcast table in) that names one
    all the same, as the analysis found its tables: relayed, it would run on one partition
    alone (a SET's subquery reading one partition's rows, LOCK TABLES locking one partition's
    table). SHOW commands about one table are answered by its copy there."""
    words = statement.text.split(None, 2)
    verb = words[0].upper() if words else ""
    if verb == "SHOW":
        return None
    physical = split_physical_names(layout)
    database = layout.name.lower()
    for requirement in statement.requirements:
        table = requirement.table
        if table is not None and requirement.db.lower() == database and table.lower() in physical:
            # A split table's physical table, which physical database 0 holds (CREATE TABLE
            # ... LIKE sp_00 copied it): no table of the logical database, as in any statement.
            return sql_error(
                ErrorCode.NO_SUCH_TABLE, f"Table '{layout.name}.{table}' doesn't exist"
            )
    placed = _placed_table(statement, layout)
    if placed is None:
        return None
    if verb == "LOCK":
        verb = "LOCK TABLES"
    return not_supported(f"{verb} naming sharded or broadcast table {placed}")


def _missed_table(statement: Statement, layout: Layout, seen: frozenset[str]) -> str | None:
    """A table of ``layout`` the analysis found in the statement that routing did not."""
    database = layout.name.lower()
    for requirement in statement.requirements:
        if requirement.table is None or requirement.db.lower() != database:
            continue
        key = requirement.table.lower()
        if key in layout.tables and key not in seen:
            return layout.tables[key].name
    return None


def _placed_table(statement: Statement, layout: Layout) -> str | None:
    """A sharded or broadcast table of ``layout`` the statement needs a privilege on (the
    analysis lists every table it reads, writes or locks), if any."""
    database = layout.name.lower()
    for requirement in statement.requirements:
        if requirement.table is None or requirement.db.lower() != database:
            continue
        table = layout.tables.get(requirement.table.lower())
        if table is not None and table.rule.kind != "single":
            return table.name
    return None


def _first_columns(
    requirements: tuple[Requirement, ...], snapshot: CatalogSnapshot
) -> tuple[Requirement, ...]:
    """``requirements`` with a column ``*`` (``RETURNING *``: MariaDB's 1143 names the table's
    first column) named where the catalog holds the table's definition (a sharded database's
    tables); elsewhere it stays ``*``, the table's 1142."""
    if all(req.column != "*" for req in requirements):
        return requirements
    out = []
    for req in requirements:
        found = snapshot.database(req.db) if req.column == "*" and req.table else None
        table = snapshot.tables(found.key).get(req.table.lower()) if found and req.table else None
        columns = table_columns(table.definition) if table is not None else ()
        out.append(replace(req, column=columns[0]) if columns else req)
    return tuple(out)


def sharded_layout(snapshot: CatalogSnapshot, database: str | None) -> Layout | None:
    """The layout of ``database`` if it is a sharded database (None otherwise)."""
    if database is None:
        return None
    found = snapshot.database(database)
    if found is None or not found.sharded:
        return None
    return Layout(
        found.name,
        found.partitions,
        snapshot.tables(found.key),
        frozenset(snapshot.sequences(found.key)),
    )


@dataclass(frozen=True, slots=True)
class _CallerAccess:
    """The caller's view of a sharded database's tables, for the SHOW commands the proxy
    answers from the catalog (``proxy.shard.statements.TableAccess``)."""

    snapshot: CatalogSnapshot
    caller: Caller
    database: str

    def lists(self, table: str) -> bool:
        return bool(self.snapshot.privileges(self.caller.account.id, self.database, table))

    def denied(self, table: str) -> SqlError | None:
        requirement = Requirement(Priv.SELECT, self.database, table)
        return check_requirements((requirement,), self.snapshot, self.caller)


def _sharded(
    statement: Statement,
    layout: Layout,
    view: SessionView,
    snapshot: CatalogSnapshot,
    original: str = "",
    prepared: bool = False,
    answered: bool = False,
) -> Plan | None:
    """What the sharded data path decides for an authorized statement (None: relayed to
    physical database 0 as on an unsharded database). The client's ``original`` text is
    routed when known (its comments and hints reach the shards), else the executable text --
    also when the original has executable comments (``/*!50000 ...*/``, ``/*M!...*/``): the
    co-location check and the merge engine read statements with sqlglot, for which they are
    comments, while the shard runs their code (the executable text is what the shard reads,
    as the analysis judged it for the shard's version). A DRDS hint keeps the original (its
    path reads only the lexer's tokens)."""
    text = original or statement.text
    if original and _has_executable_comment(original) and not hint_comment(original):
        if answered:
            # Its identity calls were answered in the client's text, not the executable one.
            return _not_on_sharded("CURRENT_USER() and the like with executable comments")
        text = statement.text
    if view.lex_mode.ansi_quotes and '"' in text:
        text = _backquoted(text, view.lex_mode, view.flavor)
    caller = _caller(view)
    access = _CallerAccess(snapshot, caller, layout.name)
    try:
        decision = decide(
            text,
            layout,
            view.lex_mode,
            view.flavor,
            params=() if prepared else None,
            access=access,
            codec=view.codec,
        )
    except SqlError as error:
        return Deny(error)
    if decision is None:
        unrouted = _unrouted(statement, layout)
        return None if unrouted is None else Deny(unrouted)
    if isinstance(decision, Route) and decision.tables is not None:
        missed = _missed_table(statement, layout, decision.tables)
        if missed is not None:
            # Routing would send the statement with that table unrouted (not renamed, not
            # placed, not checked for co-location): refused rather than guessed.
            return _not_on_sharded(f"table {missed} where the proxy does not route it")
    if isinstance(decision, NeedsNextval):
        # s.NEXTVAL takes a value of the sequence (a write): as MariaDB's NEXTVAL(s), INSERT
        # and SELECT on it.
        needed = tuple(
            Requirement(Priv.INSERT | Priv.SELECT, layout.name, name) for name in decision.sequences
        )
        missing = check_requirements(needed, snapshot, caller)
        if missing is not None:
            return Deny(missing)
    if prepared and isinstance(decision, NeedsNextval):
        # s.NEXTVAL: text protocol only (a value taken at each execution).
        return Deny(_unsupported_ps())
    if statement.identity and not answered:
        # The proxy answers these (the shard would name its mirror account and thread):
        # not yet put in place in routed statements.
        return _not_on_sharded("CURRENT_USER(), CONNECTION_ID() and the like in statements")
    return Sharded(decision, text, layout, None)


def _backquoted(text: str, mode: LexMode, flavor: ServerFlavor | None) -> str:
    """``text`` (read under ANSI_QUOTES) with each double-quoted identifier backquoted: the
    co-location check and the merge engine parse with sqlglot's MySQL dialect, for which a
    double-quoted name is a string; backquoted, it names the same thing for the shard."""
    try:
        statements = lex(text, mode, flavor)
    except LexError:
        return text
    splices = [
        (token.pos, token.pos + len(token.raw), quote_name(token.value))
        for statement in statements
        for token in statement.tokens
        if token.kind is TokenKind.IDENT and token.raw[:1] == '"'
    ]
    out = []
    at = 0
    for start, end, value in splices:
        out.append(text[at:start])
        out.append(value)
        at = end
    out.append(text[at:])
    return "".join(out)


def _has_executable_comment(text: str) -> bool:
    """Whether ``text`` may hold an executable comment (also when the marker is in a string or
    a comment: then routing the executable text changes nothing the shard reads)."""
    return "/*!" in text or "/*M!" in text


def _not_on_sharded(what: str) -> Deny:
    return Deny(not_supported(f"{what} on a sharded database's sharded or broadcast tables"))


def _query(command: Query, view: SessionView, snapshot: CatalogSnapshot) -> Plan:
    statements = command.statements
    if not statements:
        return Deny(_empty_query())
    if len(statements) == 1:
        statement = statements[0]
        original = command.sql[statement.start : statement.end] if command.sql else ""
        answered = None
        if (
            statement.identity
            and original
            and sharded_layout(snapshot, view.current_db) is not None
            and (view.identity is not None or grant_views((statement,)))
        ):
            answered = identity_answered(
                command.sql, statement, view.identity, _grant_view(view, snapshot)
            )
        return _one_statement(statement, command.digest, view, snapshot, original, answered)
    # A multi-statement packet is authorized whole, or refused whole: every statement is one the
    # shard runs, whose new session state (if any) is known without asking the shard, relayed
    # as written. (No bind is released: a statement after a failed one does not run.)
    binds: set[str] = set()
    readback: dict[str, None] = {}
    replay: list[str] = []
    kills: list[PacketKill] = []
    decisions: list[Plan] = []
    for statement in statements:
        if statement.kind is Kind.REFUSED:
            assert statement.error is not None
            return Deny(refusal_for(statement.error, snapshot, _caller(view)))
        if statement.kind is Kind.KILL:
            # MariaDB runs a KILL in a multi-statement packet (mysql2's tests do this).
            assert statement.kill_id is not None
            last = statement is statements[-1]
            kills.append(
                PacketKill(
                    statement.kill_id, statement.kill_query, statement.start, statement.end, last
                )
            )
            continue
        if statement.kind not in (Kind.QUERY, Kind.SESSION) or statement.lexing_unknown:
            return Deny(_not_combinable(statement))
        original = command.sql[statement.start : statement.end] if command.sql else ""
        decided = relayed_statement(statement, view, snapshot, original)
        if isinstance(decided, Deny):
            return decided
        decisions.append(decided)
        binds |= statement.binds
        readback.update(dict.fromkeys(statement.readback))
        replay += statement.replay
    if any(isinstance(d, Sharded) for d in decisions):
        return _sharded_packet(command, decisions, view, snapshot, bool(kills))
    effects = Effects(
        binds=frozenset(binds),
        readback=tuple(readback),
        replay=tuple(replay),
        grant_views=grant_views(statements),
        definers=any(statement.shows_definers for statement in statements),
    )
    return Relay(
        ResponseKind.QUERY,
        command.digest,
        NO_EFFECTS if effects == NO_EFFECTS else effects,
        _rewrite(statements, view, snapshot),
        tuple(kills),
    )


def _sharded_packet(
    command: Query,
    decisions: list[Plan],
    view: SessionView,
    snapshot: CatalogSnapshot,
    kills: bool,
) -> Plan:
    """A multi-statement packet on a sharded database's sharded or broadcast tables: each
    statement on its own. Statements that leave anything on the session's connection (a SET,
    a transaction, temporary tables, ...) or that the proxy rewrites are refused with it: run
    apart, their effects would not be followed."""
    layout = sharded_layout(snapshot, view.current_db)
    assert layout is not None
    first = layout.partitions[0]
    items: list[Sharded] = []
    for statement, decided in zip(command.statements, decisions, strict=True):
        original = command.sql[statement.start : statement.end] if command.sql else ""
        if isinstance(decided, Sharded):
            if isinstance(decided.decision, TransactionControl):
                return Deny(
                    not_supported(
                        "BEGIN, COMMIT, ROLLBACK and SET TRANSACTION in a multi-statement"
                        " packet on a sharded database"
                    )
                )
            if isinstance(decided.decision, TableLocks):
                return Deny(
                    not_supported(
                        "LOCK and UNLOCK TABLES in a multi-statement packet on a sharded database"
                    )
                )
            if not isinstance(decided.decision, Route | NeedsSequence):
                return _not_on_sharded("DDL and SHOW commands in a multi-statement packet")
            items.append(decided)
            continue
        if (
            kills
            or not isinstance(decided, Relay)
            or decided.effects not in (NO_EFFECTS, _DEFINERS_ONLY)
            or statement.identity
            or statement.definer is not None
        ):
            return _not_on_sharded(
                "a multi-statement packet with statements that change the session"
            )
        text = (original or statement.text).strip().rstrip(";")
        if text[:4].upper() == "CALL":
            # (its several result sets could not be told apart from the next statement's)
            return _not_on_sharded("CALL in a multi-statement packet")
        target = Target(0, first.shard, first.name, text)
        copy = Route("copy", "", False, True, (target,))
        items.append(Sharded(copy, text, layout, None))
    return ShardedPacket(tuple(items), command.digest)


def _one_statement(
    statement: Statement,
    digest: str,
    view: SessionView,
    snapshot: CatalogSnapshot,
    original: str = "",
    answered: str | None = None,
) -> Plan:
    kind = statement.kind
    if kind is Kind.QUERY or kind is Kind.SESSION:
        if statement.shows_warnings and view.has_notes:
            words = digest.upper().replace("(", " ").split()
            return ShowNotes(statement.text, count="COUNT" in words[1:2], errors="ERRORS" in words)
        decided = relayed_statement(statement, view, snapshot, original, answered=answered)
        if isinstance(decided, Relay):
            return Relay(
                decided.response, digest, decided.effects, _rewrite((statement,), view, snapshot)
            )
        if isinstance(decided, Sharded):
            return Sharded(decided.decision, decided.text, decided.layout, digest)
        return decided
    if kind is Kind.DATABASE:
        assert statement.database is not None
        return _database(statement.database, digest, view)
    if kind is Kind.SHOW_EVENTS:
        error = check_requirements(statement.requirements, snapshot, _caller(view))
        return Deny(error) if error is not None else ShowEvents()
    if kind is Kind.REFUSED:
        assert statement.error is not None
        layout = sharded_layout(snapshot, view.current_db)
        if layout is not None and show_commands(statement.text, view.lex_mode):
            # DRDS's SHOW TOPOLOGY / RULE / NODE: the layout, no data (anyone in the database);
            # CREATE GROUP SEQUENCE: CREATE on the database, as CREATE SEQUENCE.
            if statement.text.lstrip()[:6].upper() == "CREATE":
                requirement = Requirement(Priv.CREATE, layout.name)
                error = check_requirements((requirement,), snapshot, _caller(view))
                if error is not None:
                    return Deny(error)
            return _sharded(statement, layout, view, snapshot, original) or Deny(_not_relayable())
        return Deny(refusal_for(statement.error, snapshot, _caller(view)))
    if kind is Kind.USE:
        assert statement.target_db is not None
        return _use(statement.target_db, view, snapshot)
    if kind is Kind.SHOW_DATABASES:
        # The databases the account may use, sorted as MariaDB lists them.
        names = sorted(
            ("information_schema", *snapshot.usable_databases(view.account.id)), key=str.lower
        )
        if statement.like_pattern is not None:
            shown = shows_database(statement.like_pattern)
            names = [n for n in names if shown(n)]
        return ShowDatabases(tuple(names), _databases_column(statement))
    if kind is Kind.SHOW_PROCESSLIST:
        return ShowProcesslist(statement.full)
    if kind is Kind.SHOW_DIGEST:
        return _show_digest(view)
    if kind is Kind.SHOW_STATUS:
        return ShowStatus(statement.like_pattern)
    if kind is Kind.KILL:
        assert statement.kill_id is not None
        return Kill(statement.kill_id, statement.kill_query)
    if kind is Kind.ACCOUNT:
        return RunAccountStatement(statement.text)
    return Deny(_not_relayable())


def identity_answered(
    sql: str,
    statement: Statement,
    values: IdentityValues | None,
    grant_view: Callable[[str], str] | None = None,
) -> str:
    """The one statement of the packet ``sql`` with its identity calls answered (as the relay
    would answer them): the text a sharded database's statement is decided and run as."""
    splices = identity_splices((statement,), values, grant_view)
    data = apply_splices(sql.encode("utf-8", "surrogateescape"), splices)
    text = data.decode("utf-8", "surrogateescape")
    return text[statement.start : len(text) - (len(sql) - statement.end)]


def _grant_view(view: SessionView, snapshot: CatalogSnapshot) -> Callable[[str], str]:
    """The derived table of an information_schema privilege table for the session's account."""
    return functools.partial(grant_view_table, snapshot=snapshot, account=view.account)


def _rewrite(
    statements: tuple[Statement, ...], view: SessionView, snapshot: CatalogSnapshot
) -> tuple[Splice, ...]:
    """What the relay changes in the client's bytes: the identity calls of relayed statements,
    answered with the session's values (information_schema's privilege tables: the account's
    grants), and a CREATE VIEW's DEFINER account, which becomes CURRENT_USER (its creator's
    mirror)."""
    splices = (
        list(identity_splices(statements, view.identity, _grant_view(view, snapshot)))
        if any(st.identity for st in statements)
        else []
    )
    splices += [
        Splice(st.definer[0], st.definer[1], b"CURRENT_USER")
        for st in statements
        if st.definer is not None
    ]
    return tuple(sorted(splices, key=lambda splice: splice.start))


def _use(name: str, view: SessionView, snapshot: CatalogSnapshot) -> Plan:
    """USE / COM_INIT_DB: 1044 before 1049 (no other tenant's name leaks). Each database is
    reached through its own backend login, so switching needs a new backend connection: refused
    while the session has state on the current one, which the switch would silently lose."""
    resolved = resolve_database(snapshot, _caller(view), name)
    if isinstance(resolved, SqlError):
        return Deny(resolved)
    if view.bound and resolved != view.current_db:
        return Deny(
            not_supported(
                "Switching databases while the session holds a transaction, temporary tables, "
                "locks, user variables or prepared statements on the current one"
            )
        )
    return UseDatabase(resolved)


def _database(statement: DatabaseStatement, digest: str, view: SessionView) -> Plan:
    """CREATE / ALTER / DROP DATABASE. Databases are made and dropped by the operator
    (``shardgate database create``): CREATE of the current database by its administrator is
    MySQL's 1007 (a note with IF NOT EXISTS), ALTER of it (character set, collation, comment)
    is relayed for its administrator; everything else is 1044, whether the database exists or
    not (no other tenant's name leaks)."""
    account = view.account
    name = statement.name if statement.name is not None else view.current_db
    if name is None:
        return Deny(no_database_selected())
    current = view.current_db
    own = current is not None and name.lower() == current.lower() and account.is_admin_of(current)
    if own and statement.verb == "CREATE":
        exists = database_exists(name)
        if statement.if_not_exists:
            return Ok(notes=((exists.errno, exists.message),))
        return Deny(exists)
    if own and statement.verb == "ALTER":
        return Relay(ResponseKind.QUERY, digest)
    return Deny(db_access_denied(account.user, view.client_ip, name))


def _show_digest(view: SessionView) -> Plan:
    """The digest shows every account's statements in the database: its administrator's."""
    if view.current_db is None:
        return Deny(no_database_selected())
    account = view.account
    if not account.is_admin_of(view.current_db):
        return Deny(
            sql_error(
                ErrorCode.SPECIFIC_ACCESS_DENIED,
                "Access denied; you need to be the database's administrator for this operation",
            )
        )
    return ShowDigest(view.current_db)


def _prepare(command: Prepare, view: SessionView, snapshot: CatalogSnapshot) -> Plan:
    if len(command.statements) != 1:
        if not command.statements:
            return Deny(_empty_query())
        return Deny(sql_error(ErrorCode.PARSE, "Prepared statements take exactly one statement"))
    statement = command.statements[0]
    if statement.kind is Kind.REFUSED:
        assert statement.error is not None
        if _DYNAMIC_SQL.match(statement.text):
            return Deny(_unsupported_ps())  # (MariaDB's answer to preparing these)
        decided = _one_statement(statement, command.digest, view, snapshot)
        if isinstance(decided, Sharded) and _answered_decision(decided.decision):
            # DRDS's SHOW TOPOLOGY / RULE / NODE, CREATE GROUP SEQUENCE: the proxy's own.
            prepared = Prepared(statement, command.digest, answered=True)
            return PrepareAnswered(prepared, *_known_columns(decided.decision))
        return Deny(refusal_for(statement.error, snapshot, _caller(view)))
    if statement.kind not in (Kind.QUERY, Kind.SESSION):
        return _prepare_answered(statement, command, view)
    if statement.definer is not None:
        # The DEFINER account is replaced in a COM_QUERY's text only.
        return Deny(not_supported("CREATE VIEW ... DEFINER = account as a prepared statement"))
    original = command.sql[statement.start : statement.end] if command.sql else ""
    decided = relayed_statement(statement, view, snapshot, original, prepared=True)
    if isinstance(decided, Deny):
        return decided
    if isinstance(decided, Sharded):
        if isinstance(decided.decision, TransactionControl):
            # (its executions would run on physical database 0 alone: a ROLLBACK TO
            # SAVEPOINT undoing one branch's work, a START TRANSACTION the proxy never saw)
            return Deny(
                not_supported("transaction statements as prepared statements on a sharded database")
            )
        if _answered_decision(decided.decision):
            # A sharded database's SHOW and DDL: answered as their text is, at each execution.
            if _has_parameters(statement, view):
                return _not_on_sharded("parameters in SHOW and DDL statements")
            prepared = Prepared(statement, command.digest, answered=True)
            columns = _known_columns(decided.decision)
            return PrepareAnswered(prepared, *columns)
        # Prepared on one partition for its metadata, on others as executions need it.
        return Sharded(decided.decision, decided.text, decided.layout, command.digest)
    return Relay(
        ResponseKind.PREPARE,
        None,
        Effects(prepares=statement, grant_views=grant_views((statement,))),
        _rewrite((statement,), view, snapshot),
    )


# Dynamic SQL, which MariaDB does not prepare (ER_UNSUPPORTED_PS).
_DYNAMIC_SQL = re.compile(r"\s*(PREPARE|EXECUTE|DEALLOCATE|DROP\s+PREPARE)\b", re.IGNORECASE)


def _unsupported_ps() -> SqlError:
    return sql_error(
        ErrorCode.UNSUPPORTED_PS,
        "This command is not supported in the prepared statement protocol yet",
    )


def _need_reprepare() -> SqlError:
    return sql_error(ErrorCode.NEED_REPREPARE, "Prepared statement needs to be re-prepared")


def _has_parameters(statement: Statement, view: SessionView) -> bool:
    """Whether the statement has a ``?`` parameter marker."""
    if "?" not in statement.text:
        return False
    try:
        lexed = lex(statement.text, view.lex_mode, view.flavor)
    except LexError:
        return True
    return any(token.kind is TokenKind.PARAM for one in lexed for token in one.tokens)


def _answered_decision(decision: Decision) -> bool:
    """Whether a sharded database's decision is one the proxy carries out itself, writing
    every packet of its answer (a SHOW it answers or rewrites, DDL fanned out): what a
    prepared statement's execution can answer in the binary protocol. Routed statements are
    prepared on the partitions; transactions, LOCK TABLES and ``s.NEXTVAL`` stay refused."""
    return not isinstance(
        decision, Route | NeedsSequence | TransactionControl | TableLocks | NeedsNextval
    )


def _known_columns(decision: Decision) -> tuple[tuple[str, ...], frozenset[str]]:
    """The columns of a sharded database's answer known before it runs: the proxy's own rows
    (SHOW TOPOLOGY, RULE, NODE, CREATE TABLE) but those whose column definitions physical
    database 0 gives (SHOW TABLES); none for the rest."""
    if isinstance(decision, LocalRows) and decision.probe is None:
        return decision.columns, decision.numeric
    return (), frozenset()


def _prepare_answered(statement: Statement, command: Prepare, view: SessionView) -> Plan:
    """COM_STMT_PREPARE of a statement the proxy answers itself (USE, SHOW DATABASES, SHOW
    STATUS, SHOW PROCESSLIST, SHOW EVENTS, KILL, CREATE / DROP DATABASE, account statements):
    prepared as MariaDB prepares them, decided at each execution (its grants then). Their
    grammar has no place for a parameter but KILL's and a WHERE clause's, which the proxy
    does not read (1235); an account statement's syntax is checked now, as MariaDB's is (a
    password as a parameter is MariaDB's 1064 too)."""
    if statement.kind is Kind.DATABASE:
        assert statement.database is not None
        if statement.database.verb == "ALTER":
            # (relayed to the shard for the database's administrator: by the text protocol)
            return Deny(_unsupported_ps())
    grants: str | None = None
    if statement.kind is Kind.ACCOUNT:
        try:
            parsed = parse_account_statement(statement.text, view.lex_mode, view.flavor)
        except SqlError as error:
            return Deny(worded_for(error, server_name(view.flavor)))
        if isinstance(parsed, ShowGrants):
            # (its one column, as MariaDB names it at PREPARE: the account as written)
            named = view.account if not isinstance(parsed.user, UserRef) else parsed.user
            grants = f"Grants for {named.user}@{named.host}"
    if _has_parameters(statement, view):
        return Deny(not_supported("parameters in statements the proxy answers itself"))
    prepared = Prepared(statement, command.digest, answered=True)
    if grants is not None:
        return PrepareAnswered(prepared, (grants,))
    kind = statement.kind
    if kind is Kind.SHOW_DATABASES:
        return PrepareAnswered(prepared, (_databases_column(statement),))
    if kind is Kind.SHOW_STATUS:
        return PrepareAnswered(prepared, STATUS_COLUMNS)
    if kind is Kind.SHOW_EVENTS:
        return PrepareAnswered(prepared, EVENTS_COLUMNS)
    return PrepareAnswered(prepared)


def _databases_column(statement: Statement) -> str:
    """SHOW DATABASES's column, as MariaDB names it: ``Database (pattern)`` with LIKE."""
    if statement.like_pattern is None:
        return "Database"
    return f"Database ({statement.like_pattern})"


def _answered_execution(prepared: Prepared, view: SessionView, snapshot: CatalogSnapshot) -> Plan:
    """An execution of a statement the proxy answers itself: decided again as its text (the
    grants, the catalog and the database's layout of now). A statement whose text would now
    be relayed to a shard (its table is no longer the proxy's to answer for) is MariaDB's
    1615: prepare it again."""
    statement = prepared.statement
    if statement.kind is Kind.QUERY or statement.kind is Kind.SESSION:
        decided = relayed_statement(statement, view, snapshot)
        if isinstance(decided, Sharded) and _answered_decision(decided.decision):
            return AnsweredExecution(
                Sharded(decided.decision, decided.text, decided.layout, prepared.digest)
            )
        return decided if isinstance(decided, Deny) else Deny(_need_reprepare())
    decided = _one_statement(statement, prepared.digest, view, snapshot)
    if isinstance(decided, Deny):
        return decided
    if isinstance(decided, Sharded) and _answered_decision(decided.decision):
        return AnsweredExecution(decided)
    if isinstance(decided, Relay | Sharded | ShardedPacket):
        return Deny(_unsupported_ps())
    return AnsweredExecution(decided)


def _statement_command(
    command: StatementCommand, view: SessionView, snapshot: CatalogSnapshot
) -> Plan:
    code = command.code
    prepared = command.prepared
    if prepared is not None and prepared.answered:
        if code == COM_STMT_EXECUTE:
            if prepared.lexing is not None and prepared.lexing != view_lexing(view):
                return _read_otherwise()  # (its text, a password's literal, read otherwise)
            return _answered_execution(prepared, view, snapshot)
        if code == COM_STMT_CLOSE:
            return Forward(command.statement_id)  # (forgotten; nothing was on a shard)
        if code == COM_STMT_RESET:
            return Ok()
        if code == COM_STMT_FETCH:
            return Deny(_no_cursor(command.statement_id))
        return NoReply()  # (SEND_LONG_DATA: it has no parameter)
    if code in (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA):
        if prepared is None:
            return NoReply()
        return Forward(command.statement_id if code == COM_STMT_CLOSE else None)
    if prepared is None:
        name = _STATEMENT_COMMAND_NAMES.get(code, "mysqld_stmt_execute")
        return Deny(_unknown_statement(command.statement_id, name))
    if code == COM_STMT_RESET:
        return Relay(ResponseKind.SINGLE, None)
    if (
        code == COM_STMT_EXECUTE
        and prepared.lexing is not None
        and prepared.lexing != view_lexing(view)
    ):
        return _read_otherwise()
    # Grants may have changed since PREPARE: authorized again at every execution and fetch.
    decided = relayed_statement(prepared.statement, view, snapshot, prepared=True)
    if isinstance(decided, Sharded):
        return Sharded(decided.decision, decided.text, decided.layout, prepared.digest)
    if not isinstance(decided, Relay):
        return decided
    if code == COM_STMT_FETCH:
        # (a cursor's rows may show a view's definer: proxy.session.definers)
        return Relay(
            ResponseKind.FETCH, None, _DEFINERS_ONLY if decided.effects.definers else NO_EFFECTS
        )
    if decided.effects.grant_views:
        # (MariaDB reads information_schema at each execution: the grants of this one)
        respliced = _rewrite((prepared.statement,), view, snapshot)
        return Relay(ResponseKind.QUERY, prepared.digest, decided.effects, respliced=respliced)
    return Relay(ResponseKind.QUERY, prepared.digest, decided.effects)
