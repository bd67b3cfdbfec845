"""The session's link to its shard: one backend connection, the explicit session state applied to
every new one, and what ties the session to the one it has.

**One source of truth for lexing state.** The proxy must lex each statement exactly as the shard
will, so it must know the shard's ``sql_mode`` and client character set for the session at all
times. It never guesses them:

* the first backend connection of a session reads them back (``SELECT @@session.sql_mode, ...``)
  before any client statement is analysed;
* every system variable a client statement sets (``SET NAMES``, ``SET sql_mode = @old``, a prepared
  ``SET x = ?``) is read back from the shard right after the statement, and its value joins the
  session's :class:`SessionState`, which is never evicted and holds at most one value per
  variable;
* every later backend connection (a reconnect, another database's shard) gets the complete state
  in one ``SET`` of mode-independent literals before any client statement, and the lexing
  variables are read back again to confirm it.

**Pooled connections.** A session leases a backend connection from its shard's pool
(``proxy.backend.pool``) for a command and gives it back once nothing session-bound is on it.
It takes the same one back if nobody took it meanwhile; a connection another session had gets
the session's state in one ``SET`` of the differences (variables nobody set go back to the
connection's own values), which also sets LAST_INSERT_ID() to the session's and clears the
previous user's warnings. When a session's idle connection is taken, what its next statement
could still ask about -- LAST_INSERT_ID(), FOUND_ROWS(), ROW_COUNT(), the warning and error
counts and the warnings -- is saved first (:class:`Carried`): the proxy answers those from it
in the session's next statement.

**No silent loss.** A backend connection lost while the session had anything on it that a new
connection would not have -- an open transaction (the shard's status flags), temporary tables, table
or named locks, user variables, one-shot settings, a prepared statement's cursor or long data --
ends the session with 2013, as MySQL would; a session with nothing but replayable settings and
prepared statements (prepared again where needed) goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from auth.errors import ErrorCode, SqlError, sql_error
from proxy.backend.connection import BackendConnection, BackendError, BackendQueryError
from proxy.backend.pool import PoolExhausted, ShardPool
from proxy.session.statements import WireStatement, WireStatements
from proxy.sql.analyze import LEXING_VARIABLES, lexing_state
from proxy.sql.charsets import COLLATIONS, python_codec
from proxy.sql.lexer import DEFAULT_MODE, LexMode, ServerFlavor
from proxy.wire.packets import ServerStatus, parse_stmt_prepare_ok
from proxy.wire.stream import ResponseKind

log = logging.getLogger("shardgate.session")

_IN_TRANSACTION = int(ServerStatus.IN_TRANS)
# MYSQL_TYPE_* codes whose text form is a number literal.
_NUMERIC_TYPES = frozenset({0, 1, 2, 3, 4, 5, 8, 9, 13, 246})


class SessionLost(Exception):
    """The backend connection is gone with session state on it: the session must end."""

    def __init__(self, error: SqlError) -> None:
        super().__init__(error.message)
        self.error = error


class BackendUnavailable(Exception):
    """No backend connection could be made (or prepared) for the next statement."""

    def __init__(self, error: SqlError) -> None:
        super().__init__(error.message)
        self.error = error


def sql_literal(value: bytes | None, type_code: int) -> str:
    """A value read back from the shard as an SQL literal that reads the same in every
    ``sql_mode`` (no backslash escapes, no double quotes): a number, NULL, a quoted string, or
    for a string with a backslash a hexadecimal literal converted to utf8mb4."""
    if value is None:
        return "NULL"
    text = value.decode("utf-8", "surrogateescape")
    if type_code in _NUMERIC_TYPES:
        return text
    if "\\" in text or not text.isprintable():
        return f"CONVERT(X'{value.hex()}' USING utf8mb4)"
    return "'" + text.replace("'", "''") + "'"


@dataclass
class SessionState:
    """The session state the proxy applies to every new backend connection of the session."""

    # variable -> SQL literal of its value as last read back, in the order they were set
    variables: dict[str, str] = field(default_factory=dict)
    # SET [SESSION] TRANSACTION characteristics, as written (words only)
    replay: dict[str, None] = field(default_factory=dict)
    lex_mode: LexMode = DEFAULT_MODE
    known: bool = False  # the lexing variables have been read back from a shard
    # The server the session's statements are meant for (how executable comments read).
    flavor: ServerFlavor | None = None
    version: int = 0  # bumped by every change of ``variables`` or ``replay``

    def statements(self) -> list[str]:
        """What a new backend connection runs before any client statement."""
        out = []
        if self.variables:
            assignments = ", ".join(f"@@session.{k} = {v}" for k, v in self.variables.items())
            out.append(f"{OWN_STATEMENT}SET {assignments}")
        out += [f"{OWN_STATEMENT}SET {fragment}" for fragment in self.replay]
        return out

    def remember(
        self, names: tuple[str, ...], values: list[bytes | None], types: list[int]
    ) -> None:
        for name, value, type_code in zip(names, values, types, strict=True):
            self.variables.pop(name, None)  # re-inserted last: replayed in the order set
            self.variables[name] = sql_literal(value, type_code)
            # The variable now says what an earlier SET SESSION TRANSACTION said (replayed
            # after the variables, it would win): that characteristic is no longer replayed.
            characteristic = _TRANSACTION_VARIABLES.get(name)
            if characteristic is not None:
                for fragment in [f for f in self.replay if _characteristic(f) == characteristic]:
                    del self.replay[fragment]
        self.version += 1

    def add_replay(self, fragments: tuple[str, ...]) -> None:
        for fragment in fragments:
            for one in _split_characteristics(fragment):
                # One fragment per characteristic, the latest: an earlier one of the same
                # characteristic, or a variable that sets it, no longer holds.
                characteristic = _characteristic(one)
                for old in [f for f in self.replay if _characteristic(f) == characteristic]:
                    del self.replay[old]
                for name, which in _TRANSACTION_VARIABLES.items():
                    if which == characteristic:
                        self.variables.pop(name, None)
                self.replay[one] = None
        if fragments:
            self.version += 1


# The system variables that hold a SET SESSION TRANSACTION characteristic.
_TRANSACTION_VARIABLES: dict[str, str] = {
    "tx_isolation": "isolation",
    "transaction_isolation": "isolation",
    "tx_read_only": "access",
    "transaction_read_only": "access",
}


def _split_characteristics(fragment: str) -> list[str]:
    """``SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED , READ ONLY`` (words as the
    analyzer writes them) as one fragment per characteristic."""
    head, found, rest = fragment.partition("TRANSACTION ")
    if not found:
        return [fragment]
    return [f"{head}TRANSACTION {part.strip()}" for part in rest.split(",") if part.strip()]


def _characteristic(fragment: str) -> str:
    return "isolation" if "ISOLATION" in fragment else "access"


@dataclass(frozen=True, slots=True)
class Carried:
    """What a session's next statement may ask about its last one, saved from the connection
    another session took (MySQL keeps it on the session's own connection)."""

    last_insert_id: int
    found_rows: int
    row_count: int
    warning_count: int
    error_count: int
    warnings: tuple[tuple[str, int, str], ...]  # (level, code, message), as SHOW WARNINGS


# How long saving a session's last-statement values from its connection may take.
SURRENDER_SECONDS = 10.0

# What a new connection answers about the statement before the first.
FRESH = Carried(0, 0, 0, 0, 0, ())


# Leases a backend connection for the session (the host's: the session's account, database,
# capabilities and character set) for ``owner``: the connection, whether it is new, its pool.
Lease = Callable[["BackendLink"], Awaitable[tuple[BackendConnection, bool, ShardPool]]]


class BackendLink:
    """The session's backend connection and everything that ties the session to it."""

    def __init__(self) -> None:
        self.conn: BackendConnection | None = None  # leased
        self.pool: ShardPool | None = None  # where ``conn`` or ``affine`` came from
        # The connection last given back, which still has this session's state (until another
        # session takes it: ``surrender``).
        self.affine: BackendConnection | None = None
        # What the next statement may ask about the last one, when that is not on the
        # connection the session gets next (a new session: a new connection's values).
        self.carried: Carried | None = FRESH
        self._capture: asyncio.Future[None] | None = None  # a surrender under way
        self._retire = False  # close the connection instead of giving it back
        self.last_status = 2  # the status flags the last connection left (autocommit)
        self.closed = False
        self.killing = 0  # KILL QUERYs on their way to the connection's thread (``release``)
        self.state = SessionState()
        self.binds: set[str] = set()
        self.statements = WireStatements()  # the client's server-side prepared statements
        self.max_allowed_packet = 0  # the shard's, read with the state (0: not known)
        # The lease under way (waiting in the pool, connecting, a surrender), which a KILL
        # stops: the statement waiting for it must never run after the client was told.
        self._leasing: asyncio.Future[BackendConnection] | None = None
        self._interrupted = False

    # -- what is on the connection --------------------------------------------------------------

    def bound_reasons(self) -> list[str]:
        """Why losing the current connection would lose something (empty: nothing would)."""
        reasons = sorted(self.binds)
        conn = self.conn
        if conn is not None and conn.status & _IN_TRANSACTION:
            reasons.insert(0, "an open transaction")
        if self.statements.pinning():
            reasons.append("a prepared statement's cursor or long data")
        return reasons

    def bound(self) -> bool:
        """Whether ``bound_reasons`` is not empty (the hot path's test, without the list)."""
        if self.binds:
            return True
        conn = self.conn
        if conn is not None and conn.status & _IN_TRANSACTION:
            return True
        return self.statements.pinning()

    def live(self) -> BackendConnection | None:
        conn = self.conn
        return conn if conn is not None and not conn.broken else None

    # -- leasing --------------------------------------------------------------------------------

    def reclaim(self) -> BackendConnection | None:
        """The leased connection, or the one given back if it is still idle (taken back
        synchronously: the fast path's way); None otherwise."""
        conn = self.conn
        if conn is not None:
            return conn
        affine, pool = self.affine, self.pool
        if affine is not None and pool is not None and pool.reclaim(affine, self):
            self.conn = affine
            if affine.pending_closes:
                _flush_closes(affine)
            return affine
        return None

    async def settle(self) -> Carried | None:
        """Before a command: take the connection back if it is idle; else wait for what was
        saved from it (the values the command's identity calls and SHOW WARNINGS answer)."""
        if self.reclaim() is not None:
            return None
        capture = self._capture
        if capture is not None:
            await asyncio.shield(capture)
        return self.carried

    def release(self) -> None:
        """After a command: give the connection back if nothing session-bound is on it."""
        conn, pool = self.conn, self.pool
        if conn is None or pool is None or conn.broken or conn.relaying or self.killing:
            # (a response still on its way: the session ending closes the connection; a KILL
            # QUERY on its way: given back once it has arrived, ``Session._kill_query``)
            return
        # bound(), inline (once per statement)
        if self.binds or conn.status & _IN_TRANSACTION:
            return
        statements = self.statements
        if statements.may_pin and statements.pinning():
            return
        if self._retire:
            self._retire = False
            self.last_status = conn.status
            self.drop()
            return
        self.last_status = conn.status
        state = self.state
        if conn.applied_from is not state or conn.applied_version != state.version:
            conn.applied = dict(state.variables)
            conn.applied_replay = tuple(state.replay)
            conn.applied_from, conn.applied_version = state, state.version
        self.conn = None
        self.affine = conn
        pool.release(conn, self)

    # The pool's Owner interface: another session takes the connection this one gave back.

    def taken(self) -> None:
        self.affine = None
        if self._capture is None and not self.closed:
            self._capture = asyncio.get_running_loop().create_future()

    def kept(self, conn: BackendConnection) -> None:
        self.affine = conn
        self._captured()

    async def surrender(self, conn: BackendConnection) -> None:
        if self.closed:
            self._captured()
            return
        try:
            self.carried = await asyncio.wait_for(_diagnostics(conn), SURRENDER_SECONDS)
        except BackendQueryError:
            self.carried = None
        except TimeoutError:
            # A shard that does not answer: the connection is of no use to anyone.
            self.carried = None
            conn.broken = True
            conn.abort()
            raise BackendError(f"shard '{conn.target.shard}' did not answer in time") from None
        finally:
            self._captured()

    async def keep_diagnostics(self) -> None:
        """The session moves to another backend login (USE): save what its next statement
        may ask about its last one from the connection it leaves, as for a hand-off.
        Raises BackendError if the connection fails."""
        conn = self.reclaim()
        if conn is None or conn.broken:
            return
        try:
            self.carried = await _diagnostics(conn)
        except BackendQueryError:
            self.carried = None

    def _captured(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None and not capture.done():
            capture.set_result(None)

    # -- getting a connection -------------------------------------------------------------------

    async def connection(self, lease: Lease) -> BackendConnection:
        """The live backend connection: the leased one, the one given back if still idle, or
        one leased from the pool (made ready with the session state).

        Raises SessionLost if the old one died with session state on it, BackendUnavailable if
        no connection can be had or made ready, or the statement was interrupted (KILL)
        meanwhile."""
        conn = self.conn
        if conn is not None and not conn.broken:
            return conn
        if conn is not None:
            self.lost_idle()
        conn = self.reclaim()
        if conn is not None:
            return conn
        self._interrupted = False
        leasing = self._leasing = asyncio.ensure_future(self._ready(lease))
        try:
            conn = await leasing
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._interrupted and (current is None or not current.cancelling()):
                raise BackendUnavailable(_interrupted()) from None
            raise
        finally:
            self._leasing = None
        if self._interrupted:  # KILL just as the connection was ready: not run either
            self.release()
            raise BackendUnavailable(_interrupted())
        return conn

    async def _ready(self, lease: Lease) -> BackendConnection:
        """A connection leased from the pool with the session state on it."""
        capture = self._capture
        if capture is not None:
            await asyncio.shield(capture)
        try:
            conn, fresh, pool = await lease(self)
        except PoolExhausted as exc:
            raise BackendUnavailable(exc.error) from None
        except BackendError as exc:
            raise BackendUnavailable(
                sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}")
            ) from None
        self.pool = pool
        try:
            if fresh:
                await self._prepare(conn)
            elif conn is not self.affine:
                await self._adopt(conn)
        except BackendError as exc:
            pool.discard(conn)
            raise BackendUnavailable(
                sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}")
            ) from None
        except (BackendQueryError, SqlError) as exc:
            pool.discard(conn)
            error = exc if isinstance(exc, SqlError) else _state_error(exc)
            raise BackendUnavailable(error) from None
        except BaseException:
            pool.discard(conn)  # interrupted half way: its state is unknown
            raise
        self.carried = None
        self.affine = None
        self.conn = conn
        if conn.pending_closes:
            _flush_closes(conn)
        return conn

    def interrupt(self) -> bool:
        """KILL [QUERY] of a session getting a connection for its statement (waiting in the
        pool, connecting, making it ready): the statement fails with 1317 instead of running
        later. Whether the session was getting one."""
        leasing = self._leasing
        if leasing is None:
            return False
        self._interrupted = True
        leasing.cancel()  # a grant already made is given back by the pool (or used: below)
        return True

    def send_close(self, conn: BackendConnection, statement_id: int) -> None:
        """COM_STMT_CLOSE on ``conn``: now when it is this session's or idle in the pool (no
        command in flight), else before its next command."""
        pool = self.pool
        if conn is self.conn or (pool is not None and pool.is_idle(conn)):
            conn.send(b"\x19" + statement_id.to_bytes(4, "little"))
        else:
            conn.pending_closes.append(statement_id)

    async def reprepare(self, conn: BackendConnection, statement: WireStatement) -> bytes | None:
        """Prepare ``statement`` on ``conn`` (which does not have it) for the command about to
        run there. Returns None when done, or the shard's error packet (the command's answer).
        Raises BackendError if the connection fails."""
        conn.send(b"\x16" + statement.text)
        payloads = await conn.collect(ResponseKind.PREPARE, _REPREPARE_LIMIT)
        first = payloads[0]
        if first[:1] == b"\xff":
            return first
        ok = parse_stmt_prepare_ok(first)
        statement.on[conn] = ok.statement_id
        statement.forget()
        return None

    async def _prepare(self, conn: BackendConnection) -> None:
        """Apply the session state to a new connection, then read the lexing state back."""
        self.state.flavor = _flavor_of(conn)
        query = _select_variables(LEXING_VARIABLES) + ", @@global.max_allowed_packet"
        result = await conn.query(query)
        *values, limit = result.rows[0]
        del result.types[-1]
        conn.born = {
            name: sql_literal(value, type_code)
            for name, value, type_code in zip(LEXING_VARIABLES, values, result.types, strict=True)
        }
        # A command over the shard's limit is answered by the proxy, as the shard would (1153)
        # but at the client's own sequence number, and never sent.
        self.max_allowed_packet = int(limit or 0)
        if not self.state.known:
            # The session's first connection: the shard's defaults become the explicit state.
            self.state.lex_mode = lexing_state(_text(values[0]), _text(values[1]))
            self.state.remember(LEXING_VARIABLES, values, result.types)
            self.state.known = True
            return
        statements = self.state.statements()
        carried = self.carried
        if carried is not None and carried.last_insert_id:
            statements.append(
                f"{OWN_STATEMENT}SET @@session.last_insert_id = {carried.last_insert_id}"
            )
        for statement in statements:
            await conn.query(statement)
        expected = self.state.variables
        result = await conn.query(_select_variables(LEXING_VARIABLES))
        values = result.rows[0]
        self.state.lex_mode = lexing_state(_text(values[0]), _text(values[1]))
        for name, value, type_code in zip(LEXING_VARIABLES, values, result.types, strict=True):
            if expected.get(name, sql_literal(value, type_code)) != sql_literal(value, type_code):
                raise sql_error(
                    ErrorCode.SERVER_GONE,
                    f"Backend unavailable: the shard did not take the session's {name}",
                )

    async def _adopt(self, conn: BackendConnection) -> None:
        """Make a pooled connection another session used hold this session's state: one SET
        of what differs, which also sets LAST_INSERT_ID() and clears the diagnostics (a
        statement that reads a table, even a derived one, starts a new diagnostics area)."""
        self.state.flavor = _flavor_of(conn)
        state = self.state
        if not state.known:
            state.variables = dict(conn.born)
            state.version += 1
            state.known = True
        desired = state.variables
        applied = conn.applied
        replay = tuple(state.replay)
        # Undo first what the last user set and this session did not: the variables, then
        # its SET SESSION TRANSACTION (assignments take effect from left to right, and this
        # session's own values, set after, must win).
        assignments = [
            f"@@session.{name} = {conn.born.get(name, 'DEFAULT')}"
            for name in applied
            if name not in desired
        ]
        undo_replay = bool(conn.applied_replay) and conn.applied_replay != replay
        if undo_replay:
            assignments += [f"@@session.{name} = DEFAULT" for name in _transaction_names(conn)]
        assignments += [
            f"@@session.{name} = {value}"
            for name, value in desired.items()
            if applied.get(name) != value or (undo_replay and name in _TRANSACTION_VARIABLES)
        ]
        carried = self.carried or FRESH
        assignments.append(
            f"@@session.last_insert_id = {carried.last_insert_id} + {_NEW_DIAGNOSTICS}"
        )
        await conn.query(f"{OWN_STATEMENT}SET {', '.join(assignments)}")
        if conn.applied_replay != replay:
            for fragment in replay:
                await conn.query(f"{OWN_STATEMENT}SET {fragment}")
        state.lex_mode = lexing_state(
            _literal_text(desired["sql_mode"]), _literal_text(desired["character_set_client"])
        )

    # -- after a statement ----------------------------------------------------------------------

    async def read_back(self, conn: BackendConnection, names: tuple[str, ...]) -> LexMode:
        """Read ``names`` back from the shard into the session state; returns the lexer mode
        the shard's values imply, without adopting it (raises SqlError when the proxy cannot
        lex in that state, BackendError if the connection fails)."""
        wanted = tuple(dict.fromkeys((*LEXING_VARIABLES, *names)))
        try:
            result = await conn.query(_select_variables(wanted))
        except BackendQueryError as exc:
            raise _state_error(exc) from None
        values = result.rows[0]
        mode = lexing_state(_text(values[0]), _text(values[1]))
        self.state.remember(wanted, values, result.types)
        return mode

    async def restore(self, conn: BackendConnection, previous: dict[str, str]) -> None:
        """Put the lexing variables back to ``previous`` (a refused change is undone)."""
        assignments = ", ".join(
            f"@@session.{name} = {previous[name]}" for name in LEXING_VARIABLES if name in previous
        )
        await conn.query(f"{OWN_STATEMENT}SET {assignments}")
        for name in LEXING_VARIABLES:
            if name in previous:
                self.state.variables[name] = previous[name]
        self.state.version += 1

    def reset(self) -> None:
        """COM_RESET_CONNECTION / COM_CHANGE_USER: the shard forgot the session's state."""
        self.state = SessionState(flavor=self.state.flavor)
        self.binds.clear()
        self.statements.clear(self.send_close, dropped_on=self.live())
        self.carried = FRESH
        # The connection given back holds the old state: no longer this session's to reclaim.
        affine, self.affine = self.affine, None
        if affine is not None and self.pool is not None:
            self.pool.disown(affine, self)

    # -- losing the connection ------------------------------------------------------------------

    def lost_idle(self) -> None:
        """The connection died between statements: fine unless state was on it."""
        reasons = self.bound_reasons()
        self.drop()
        if reasons:
            raise SessionLost(lost_error(reasons, "the connection closed while idle"))

    def drop(self) -> None:
        conn, self.conn = self.conn, None
        self.binds.clear()
        if conn is not None:
            self.statements.forget_connection(conn)
            conn.broken = True
            if self.pool is not None:
                self.pool.discard(conn)
            else:
                conn.close()

    def retire(self) -> None:
        """Close the leased connection when the command is over instead of giving it back
        (unless something session-bound is on it)."""
        self._retire = True

    async def leave(self) -> None:
        """The session no longer needs its connection (another database, COM_CHANGE_USER):
        back to the pool when nothing is on it, else closed (and with it what was)."""
        self.release()
        affine, self.affine = self.affine, None  # for another login: not to be taken back
        if affine is not None and self.pool is not None:
            self.pool.disown(affine, self)
        conn, self.conn = self.conn, None
        self.binds.clear()
        if conn is None:
            return
        self.statements.forget_connection(conn)
        if self.pool is not None:
            self.pool.discard(conn)
        else:
            await conn.quit()

    async def close(self) -> None:
        """The session ends: its prepared statements are closed wherever they are."""
        self.statements.clear(self.send_close)
        await self.leave()
        self.closed = True
        self._captured()


def lost_error(reasons: list[str], cause: object = None) -> SqlError:
    """MySQL's 2013, saying why and what went with the connection."""
    message = "Lost connection to backend"
    if cause is not None:
        message += f": {cause}"
    if reasons:
        message += f" ({', '.join(reasons)} lost with it)"
    return sql_error(ErrorCode.SERVER_LOST, message)


async def _diagnostics(conn: BackendConnection) -> Carried:
    """What the connection's last statement left that the next may ask about."""
    result = await conn.query(_SAVE_DIAGNOSTICS)
    lid, found, count, warning_count, error_count = (int(value or 0) for value in result.rows[0])
    warnings: tuple[tuple[str, int, str], ...] = ()
    if warning_count:
        shown = await conn.query(OWN_STATEMENT + "SHOW WARNINGS")
        warnings = tuple((_text(r[0]), int(r[1] or 0), _text(r[2])) for r in shown.rows)
    return Carried(lid, found, count, warning_count, error_count, warnings)


def _flavor_of(conn: BackendConnection) -> ServerFlavor:
    """How the shard reads executable comments (SqlError: a version the proxy cannot read)."""
    try:
        return ServerFlavor.parse(conn.server_version)
    except ValueError:
        raise sql_error(
            ErrorCode.SERVER_GONE,
            f"Backend unavailable: unknown server version {conn.server_version!r}",
        ) from None


def _interrupted() -> SqlError:
    return sql_error(ErrorCode.QUERY_INTERRUPTED, "Query execution was interrupted")


def _state_error(exc: BackendQueryError) -> SqlError:
    return sql_error(
        ErrorCode.SERVER_GONE,
        f"Backend unavailable: the session's settings could not be applied: {exc.message}",
    )


# Marks the proxy's own statements on a session's backend connection (the shard's general log
# and processlist show who sent what).
OWN_STATEMENT = "/* shardgate */ "


# What a session's next statement may ask about its last one (a statement without tables keeps
# the diagnostics area: SHOW WARNINGS after it still shows the last statement's).
_SAVE_DIAGNOSTICS = (
    OWN_STATEMENT + "SELECT LAST_INSERT_ID(), FOUND_ROWS(), ROW_COUNT(), @@session.warning_count,"
    " @@session.error_count"
)
# An expression worth 0 that reads a (derived) table: its statement clears the diagnostics area.
_NEW_DIAGNOSTICS = "(SELECT 0 FROM (SELECT 1) AS shardgate_x)"

# A re-prepared statement's answer (its parameter and column definitions) is read whole.
_REPREPARE_LIMIT = 16 * 1024 * 1024


def _flush_closes(conn: BackendConnection) -> None:
    """Close statements of sessions gone from ``conn`` (COM_STMT_CLOSE has no answer)."""
    closes, conn.pending_closes = conn.pending_closes, []
    for statement_id in closes:
        conn.send(b"\x19" + statement_id.to_bytes(4, "little"))


def _transaction_names(conn: BackendConnection) -> tuple[str, str]:
    """The server's names of the session's isolation level and access mode variables."""
    try:
        flavor = ServerFlavor.parse(conn.server_version)
    except ValueError:
        return ("tx_isolation", "tx_read_only")
    if flavor.mariadb and flavor.version < 110100:
        return ("tx_isolation", "tx_read_only")
    return ("transaction_isolation", "transaction_read_only")


def _literal_text(literal: str) -> str:
    """The text of a simple quoted literal from ``sql_literal`` (lexing variables' values)."""
    if literal.startswith("'") and literal.endswith("'"):
        return literal[1:-1].replace("''", "'")
    return literal


def client_codec(state: SessionState, collation: int) -> str | None:
    """The Python codec of the session's ``character_set_client`` (as last read back from the
    shard; before that, the character set of the handshake's ``collation``); None for one the
    proxy cannot read."""
    value = state.variables.get("character_set_client")
    if value is None:
        return python_codec(COLLATIONS.get(collation, ""))
    if len(value) < 2 or value[0] != "'" or value[-1] != "'":
        return None
    return python_codec(_literal_text(value))


def results_charset(state: SessionState, collation: int) -> str | None:
    """The session's ``character_set_results`` (as last read back from the shard; before
    that, the character set of the handshake's ``collation``), lower case; None for NULL (no
    conversion: each value in its own character set) or a value the proxy cannot read."""
    value = state.variables.get("character_set_results")
    if value is None:
        return COLLATIONS.get(collation)
    if len(value) < 2 or value[0] != "'" or value[-1] != "'":
        return None
    return _literal_text(value).lower()


def results_codec(state: SessionState, collation: int) -> str | None:
    """The Python codec of the session's ``character_set_results``, which the shard's answers
    are in (None: one the proxy cannot read; NULL -- no conversion -- is UTF-8: what the proxy
    reads of such answers, names and definitions, is utf8mb3/utf8mb4)."""
    charset = results_charset(state, collation)
    if charset is None:
        value = state.variables.get("character_set_results", "")
        return "utf-8" if value.upper() == "NULL" else None
    return python_codec(charset)


def _select_variables(names: tuple[str, ...]) -> str:
    return OWN_STATEMENT + "SELECT " + ", ".join(f"@@session.{name}" for name in names)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "surrogateescape")
