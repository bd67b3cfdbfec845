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

**No silent loss.** A backend connection lost while the session had anything on it that a new
connection would not have -- an open transaction (the shard's status flags), temporary tables, table
or named locks, user variables, one-shot settings, prepared statements -- ends the session with
2013, as MySQL would; only a session with nothing but replayable settings is reconnected silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from auth.errors import ErrorCode, SqlError, sql_error
from proxy.backend.connection import BackendConnection, BackendError, BackendQueryError
from proxy.sql.analyze import LEXING_VARIABLES, lexing_state
from proxy.sql.lexer import DEFAULT_MODE, LexMode, ServerFlavor
from proxy.wire.packets import ServerStatus

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

    def add_replay(self, fragments: tuple[str, ...]) -> None:
        for fragment in fragments:
            self.replay.pop(fragment, None)
            self.replay[fragment] = None


# Makes a new backend connection for the session (the host's, with the session's account,
# database, capabilities and character set).
Connect = Callable[[], Awaitable[BackendConnection]]


class BackendLink:
    """The session's backend connection and everything that ties the session to it."""

    def __init__(self) -> None:
        self.conn: BackendConnection | None = None
        self.state = SessionState()
        self.binds: set[str] = set()
        self.max_allowed_packet = 0  # the shard's, read with the state (0: not known)

    # -- what is on the connection --------------------------------------------------------------

    def bound_reasons(self, prepared_statements: int) -> list[str]:
        """Why losing the current connection would lose something (empty: nothing would)."""
        reasons = sorted(self.binds)
        conn = self.conn
        if conn is not None and conn.status & _IN_TRANSACTION:
            reasons.insert(0, "an open transaction")
        if prepared_statements:
            reasons.append("prepared statements")
        return reasons

    def bound(self, prepared_statements: int) -> bool:
        return bool(self.bound_reasons(prepared_statements))

    def live(self) -> BackendConnection | None:
        conn = self.conn
        return conn if conn is not None and not conn.broken else None

    # -- getting a connection -------------------------------------------------------------------

    async def connection(self, connect: Connect, prepared_statements: int) -> BackendConnection:
        """The live backend connection, making a new one (with the session state) if needed.

        Raises SessionLost if the old one died with session state on it, BackendUnavailable if
        no new one can be made ready."""
        conn = self.conn
        if conn is not None and not conn.broken:
            return conn
        if conn is not None:
            self.lost_idle(prepared_statements)
        try:
            conn = await connect()
        except BackendError as exc:
            raise BackendUnavailable(
                sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}")
            ) from None
        try:
            await self._prepare(conn)
        except BackendError as exc:
            raise BackendUnavailable(
                sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}")
            ) from None
        except (BackendQueryError, SqlError) as exc:
            await conn.quit()
            error = exc if isinstance(exc, SqlError) else _state_error(exc)
            raise BackendUnavailable(error) from None
        self.conn = conn
        return conn

    async def _prepare(self, conn: BackendConnection) -> None:
        """Apply the session state to a new connection, then read the lexing state back."""
        try:
            self.state.flavor = ServerFlavor.parse(conn.server_version)
        except ValueError:
            raise sql_error(
                ErrorCode.SERVER_GONE,
                f"Backend unavailable: unknown server version {conn.server_version!r}",
            ) from None
        for statement in self.state.statements():
            await conn.query(statement)
        expected = self.state.variables if self.state.known else None
        result = await conn.query(
            _select_variables(LEXING_VARIABLES) + ", @@global.max_allowed_packet"
        )
        *values, limit = result.rows[0]
        del result.types[-1]
        # A command over the shard's limit is answered by the proxy, as the shard would (1153)
        # but at the client's own sequence number, and never sent.
        self.max_allowed_packet = int(limit or 0)
        self.state.lex_mode = lexing_state(_text(values[0]), _text(values[1]))
        if expected is None:
            # The session's first connection: the shard's defaults become the explicit state.
            self.state.remember(LEXING_VARIABLES, values, result.types)
            self.state.known = True
            return
        for name, value, type_code in zip(LEXING_VARIABLES, values, result.types, strict=True):
            if expected.get(name, sql_literal(value, type_code)) != sql_literal(value, type_code):
                raise sql_error(
                    ErrorCode.SERVER_GONE,
                    f"Backend unavailable: the shard did not take the session's {name}",
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

    def reset(self) -> None:
        """COM_RESET_CONNECTION / COM_CHANGE_USER: the shard forgot the session's state."""
        self.state = SessionState(flavor=self.state.flavor)
        self.binds.clear()

    # -- losing the connection ------------------------------------------------------------------

    def lost_idle(self, prepared_statements: int) -> None:
        """The connection died between statements: fine unless state was on it."""
        reasons = self.bound_reasons(prepared_statements)
        self.drop()
        if reasons:
            raise SessionLost(lost_error(reasons, "the connection closed while idle"))

    def drop(self) -> None:
        conn, self.conn = self.conn, None
        self.binds.clear()
        if conn is not None:
            conn.broken = True
            conn.close()

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await conn.quit()


def lost_error(reasons: list[str], cause: object = None) -> SqlError:
    """MySQL's 2013, saying why and what went with the connection."""
    message = "Lost connection to backend"
    if cause is not None:
        message += f": {cause}"
    if reasons:
        message += f" ({', '.join(reasons)} lost with it)"
    return sql_error(ErrorCode.SERVER_LOST, message)


def _state_error(exc: BackendQueryError) -> SqlError:
    return sql_error(
        ErrorCode.SERVER_GONE,
        f"Backend unavailable: the session's settings could not be applied: {exc.message}",
    )


# Marks the proxy's own statements on a session's backend connection (the shard's general log
# and processlist show who sent what).
OWN_STATEMENT = "/* shardgate */ "


def _select_variables(names: tuple[str, ...]) -> str:
    return OWN_STATEMENT + "SELECT " + ", ".join(f"@@session.{name}" for name in names)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "surrogateescape")
