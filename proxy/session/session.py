"""One client connection: login, then the command loop.

Each command goes through the same three steps, whichever way it arrives:

1. **read** -- the packet becomes a :data:`~proxy.plan.plan.Command` value (SQL is analysed by
   the classifier, off the event loop when it is long or not cached yet);
2. **decide** -- :func:`proxy.plan.plan.plan` says what it means, against one catalog snapshot;
3. **carry out** -- :meth:`Session._execute` does what the plan says: relay the client's bytes to
   the shard through the session's :class:`~proxy.session.link.BackendLink`, answer locally, or
   refuse.

The *fast path* (:class:`~proxy.session.fast.FastPath`, compiled) serves a command that arrives as
one packet straight from the connection's ``data_received`` when the memoized plan for its
statement shape is a plain relay; it is the same decision, cached, not a second decision
procedure.

Errors: per-command refusals are ERR replies and the session goes on. Anything that ends the
session -- a failed login, a protocol violation, a backend lost with session state on it, and
any unexpected exception -- is turned into one ERR packet plus close in exactly one place,
:meth:`Session.run`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

from auth.accounts import Actor
from auth.catalog import CatalogSnapshot
from auth.errors import (
    ErrorCode,
    SqlError,
    database_dropped,
    not_supported,
    packet_too_large,
    sql_error,
    worded_for,
)
from auth.model import Account
from proxy.backend.connection import (
    BackendConnection,
    BackendError,
    BackendQueryError,
    quote_string,
)
from proxy.backend.pool import ShardPool
from proxy.merge.rows import BinaryResults
from proxy.merge.values import ColumnDefinition
from proxy.ops.digest import DIGEST_COLUMNS, digest_table
from proxy.plan.authorize import Caller
from proxy.plan.plan import (
    COM_STMT_CLOSE,
    COM_STMT_EXECUTE,
    COM_STMT_FETCH,
    COM_STMT_RESET,
    COM_STMT_SEND_LONG_DATA,
    NO_EFFECTS,
    AnsweredExecution,
    Command,
    Deny,
    FieldList,
    Forward,
    InitDb,
    Kill,
    Lexing,
    NoReply,
    Ok,
    Plan,
    Prepare,
    PrepareAnswered,
    Prepared,
    ProcessKill,
    Query,
    Quit,
    Reauthenticate,
    Relay,
    RunAccountStatement,
    SessionView,
    Sharded,
    ShardedPacket,
    ShowDatabases,
    ShowDigest,
    ShowEvents,
    ShowNotes,
    ShowProcesslist,
    ShowStatus,
    Simple,
    StatementCommand,
    Statistics,
    UseDatabase,
    plan,
    prepared_lexing,
)
from proxy.plan.rewrite import IdentityValues, Splice, apply_splices, sql_string
from proxy.session.account_statements import ResultReply, execute_account_statement
from proxy.session.definers import Definers, relay_definers
from proxy.session.fair import INLINE_ANALYSIS_LIMIT
from proxy.session.fast import Activity, FastPath, calls, execute_types, opens_cursor
from proxy.session.grants import grant_columns
from proxy.session.host import SessionHost
from proxy.session.link import (
    OWN_STATEMENT,
    BackendLink,
    BackendUnavailable,
    Carried,
    SessionLost,
    client_codec,
    lost_error,
    results_charset,
)
from proxy.session.local import (
    EVENTS_COLUMNS,
    NOTE_COLUMNS,
    PROCESSLIST_COLUMNS,
    PROCESSLIST_NUMERIC,
    STATUS_COLUMNS,
    OpenSession,
    ProxyStatus,
    Row,
    SessionInfo,
    diagnostics_answer,
    processlist_rows,
    proxy_status,
    result_set,
    statistics_text,
    status_rows,
    tls_status,
    visible,
)
from proxy.session.login import (
    LoginRefused,
    LoginResult,
    change_user,
    handshake,
)
from proxy.session.sharded import Replies, ShardedExecutor, in_background
from proxy.session.statements import with_id, with_types
from proxy.shard.transaction import TransactionControl
from proxy.sql.analyze import Identity, Kind, NeedsParse, Statement, analyze_with_digest
from proxy.sql.charsets import DEFAULT_COLLATIONS, UTF8MB4_GENERAL_CI, in_charset, python_codec
from proxy.sql.lexer import LexMode, ServerFlavor, server_name, utf8_offsets
from proxy.wire.packets import (
    Capability,
    ProtocolError,
    ServerStatus,
    build_err,
    build_ok,
    build_stmt_prepare_ok,
    parse_err,
    parse_stmt_prepare_ok,
    read_lenenc_int,
    session_track_schema,
)
from proxy.wire.stream import (
    ClientConnection,
    ConnectionLost,
    PacketTooLarge,
    ResponseKind,
    ResponseScanner,
)

log = logging.getLogger("shardgate.session")
_HOSTNAME = socket.gethostname()

_STATUS_AUTOCOMMIT = int(ServerStatus.AUTOCOMMIT)
_SESSION_STATUS = int(
    ServerStatus.IN_TRANS
    | ServerStatus.AUTOCOMMIT
    | ServerStatus.NO_BACKSLASH_ESCAPES
    | ServerStatus.IN_TRANS_READONLY
)
_COM_QUERY = 0x03
# What a packet's first statement may ask about the session's last one (ShardedExecutor).
_ASKS_LAST = frozenset({Identity.ROW_COUNT, Identity.FOUND_ROWS})
# What a packet's first statement may ask about the proxy's notes (Session._plan).
_COUNTS_NOTES = frozenset({Identity.WARNING_COUNT, Identity.ERROR_COUNT})
_COM_INIT_DB = 0x02
_COM_STMT_PREPARE = 0x16
_LAST_STMT_ID = b"\xff\xff\xff\xff"
_COM_FIELD_LIST = 0x04
_COM_PROCESS_KILL = 0x0C
_COM_QUIT = 0x01
_STATEMENT_COMMANDS = frozenset(
    {COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_RESET, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA}
)
# A response held back until the session state it leaves is checked (a SET from an expression).
HOLD_LIMIT = 1024 * 1024
_DEFINER_STATEMENTS_KEPT = 1024  # prepared statements' column definitions kept (definers)
# A COM_STMT_PREPARE answer read whole (parameter and column definitions).
PREPARE_LIMIT = 16 * 1024 * 1024
# (see proxy/session/fast.py: an enum member read from a module constant)
_QUERY = ResponseKind.QUERY
# The server is draining (proxy/server.py): sent as the answer to the client's next command.
SHUTDOWN = sql_error(ErrorCode.SERVER_SHUTDOWN, "Server shutdown in progress")
# The most characters MariaDB keeps of a condition's text (MESSAGE_TEXT; ERRMSGSIZE).
_CONDITION_TEXT = 512


class FatalError(Exception):
    """Ends the session: the error (if any) is sent, then the connection is closed."""

    def __init__(self, error: SqlError | None, log_message: str = "") -> None:
        super().__init__(log_message or (error.message if error else "connection closed"))
        self.error = error


class _Quit(Exception):
    """COM_QUIT: the client is done."""


class _ShuttingDown(Exception):
    """The server is draining and the session has nothing open (or was cut off): it ends."""


class Diagnostics:
    """What a session knows of the shard's diagnostics area (``Session._settle_diagnostics``),
    held in one attribute of the session: a Session has 30 attributes, as many as CPython 3.11
    keeps in a class's shared-key instance dict -- one more and every attribute read of the
    session (the fast path's included) takes the slower, unspecialized way."""

    __slots__ = ("columns", "diagnosed", "held_notes", "refused", "showing")

    def __init__(self) -> None:
        # A refusal of the proxy's raised in the shard's diagnostics area (_diagnose) may be
        # there still (_undiagnose).
        self.diagnosed = False
        self.refused: SqlError | None = None  # the error just answered (_settle_diagnostics)
        self.showing = False  # the command is SHOW WARNINGS / ERRORS (_settle_diagnostics)
        self.held_notes: list[tuple[str, int, str]] = []  # the notes before it (_keep_notes)
        # MariaDB's column definitions of SHOW WARNINGS / COUNT(*) for the session
        # (_notes_columns), by (statement, session state version, handshake collation).
        self.columns: dict[tuple[str, int, int], tuple[object, list[bytes]]] = {}


class Session:
    def __init__(
        self, ctx: SessionHost[Session], client: ClientConnection, connection_id: int
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.connection_id = connection_id
        peer = client.get_extra_info("peername") or ("0.0.0.0", 0)
        assert isinstance(peer, tuple)
        ip = str(peer[0])
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        self.client_ip = ip
        self.client_port = int(peer[1])
        self.account: Account | None = None
        self.user = ""
        self.current_db: str | None = None
        self.capabilities = 0
        self.charset = UTF8MB4_GENERAL_CI
        self.tls = False
        # What identity functions and shard-internal variables answer (set at login).
        self.identity: IdentityValues | None = None
        self.link = BackendLink()
        # A client gone while its statement waits for a backend connection: not run later.
        client.on_lost = self._client_gone
        # A sharded database's statements on its partitions (proxy/session/sharded.py).
        self.sharded = ShardedExecutor(
            self,
            Replies(
                self._reply_shard_error,
                self._reply_ok,
                self._write_shard,
                self._write_resultset,
                self._status,
                self._lease,
                self._write_many,
            ),
        )
        self.prepared: dict[int, Prepared] = {}
        # While an execution of a statement the proxy answers itself is answered: its packets
        # as the binary protocol's (_execute_answered).
        self._binary: BinaryResults | None = None
        # The statement the last COM_STMT_PREPARE made (None if it failed): MariaDB's
        # statement id -1 (0xFFFFFFFF, ``LAST_STMT_ID``) names it in the statement commands,
        # which lets a client send PREPARE and EXECUTE together (Connector/J 3, Connector/C's
        # mariadb_stmt_execute_direct, node's mariadb).
        self.last_prepared: int | None = None
        self.notes: list[tuple[str, int, str]] = []  # (level, code, message)
        # What the proxy knows of the shard's diagnostics area (one attribute: see Diagnostics).
        self.diag = Diagnostics()
        self.activity = Activity(since=time.monotonic())
        self.killed = False
        self.started = time.time()
        self._next_seq = 0
        # The snapshot the account was last checked against (see command_loop and FastPath.hook).
        self.checked_snapshot: CatalogSnapshot | None = None
        self.cancelled_at = 0.0  # activity.since of the statement query_timeout interrupted
        self.cut = False  # drain_timeout passed: end before the next command, whatever is open
        self.relayed: ResponseScanner | None = None  # the last relayed statement's answer
        # Views' definers as the client knows them (proxy.session.definers): the renaming for
        # the current snapshot and database, and the column definitions of the last answer to
        # each prepared statement that may show one (an execution's answer may leave them out).
        self._definers: Definers | None = None
        self._definer_columns: dict[int, list[ColumnDefinition]] = {}
        # The fast path (proxy/session/fast.py): its memoized plans, the fast command in
        # flight; its hook, bound once (set on the client while the command loop waits).
        self.fast = FastPath(self)
        self._fast_hook: Callable[[bytes], bool] = self.fast.hook

    def waited_on(self, now: float, after: float) -> list[BackendConnection]:
        """The backend connections this session has waited on for more than ``after``
        seconds (the server's watchdog checks their shards): the link's connection awaiting
        an answer, and -- a statement running that long -- the connections of a sharded
        statement's partitions."""
        conns = []
        conn = self.link.conn
        if conn is not None and conn.waiting_since and now - conn.waiting_since > after:
            conns.append(conn)
        activity = self.activity
        if activity.command != "Sleep" and now - activity.since > after:
            # (those the statement waits on: an idle transaction branch is not given up)
            conns += [c for c in self.sharded.source.running() if c.awaiting]
        return conns

    # -- the one place that ends a session ----------------------------------------------------

    async def run(self) -> None:
        try:
            await handshake(self.ctx, self)
            await self.command_loop()
        except LoginRefused as exc:
            log.info("connection %d closed: %s", self.connection_id, exc)
        except FatalError as exc:
            if exc.error is not None:
                self._send_error_quietly(exc.error)
            log.info("connection %d closed: %s", self.connection_id, exc)
        except SessionLost as exc:
            self._send_error_quietly(exc.error)
            log.warning("connection %d closed: %s", self.connection_id, exc)
        except _Quit:
            pass
        except _ShuttingDown:
            self.shut_down()
        except TimeoutError:
            log.info("connection %d: handshake timeout", self.connection_id)
        except (ConnectionLost, ConnectionError):
            # Gone without a goodbye: before login, typically a TCP health check (connect,
            # read the greeting, close) -- counted, never logged above DEBUG.
            if not self.killed:
                metrics = self.ctx.metrics
                if self.account is None:
                    metrics.aborted_handshake.inc()
                else:
                    metrics.aborted_session.inc()
                log.debug("connection %d: the client went away", self.connection_id)
        except PacketTooLarge as exc:
            self._send_error_quietly(packet_too_large(), seq=exc.next_seq)
        except ProtocolError:
            self._send_error_quietly(sql_error(ErrorCode.HANDSHAKE, "Bad handshake"))
        except Exception:
            # A bug must not leave the client hanging or see a traceback: one error, then close.
            log.exception("connection %d: unexpected error", self.connection_id)
            self._send_error_quietly(
                sql_error(ErrorCode.UNKNOWN_ERROR, "Internal error in the proxy; see its log")
            )
        finally:
            await self.close()

    def admit(self, login: LoginResult) -> None:
        """Take on an accepted login (first or COM_CHANGE_USER) and enter the session table;
        login.py calls it right after the connection-limit check, before the OK."""
        self.account = login.account
        self.user = login.user
        self.current_db = login.database
        self.capabilities = login.capabilities
        self.charset = login.charset
        self.tls = login.tls
        sockname = self.client.get_extra_info("sockname")
        self.identity = IdentityValues(
            current_user=f"{login.account.user}@{login.account.host}",
            user=f"{login.user}@{self.client_ip}",
            connection_id=self.connection_id,
            hostname=_HOSTNAME,
            port=int(sockname[1]) if isinstance(sockname, tuple) else self.ctx.config.server.port,
            datadir=f"{self.ctx.config.base_dir}{os.sep}",
            socket="",
        )
        self.ctx.sessions[self.connection_id] = self
        # The shard's errors the relay writes name the client's account, not its mirror.
        self.client.errors = self._named_error

    def _named_error(self, payload: bytes) -> bytes:
        """A shard's ERR packet (the payload) as the client sees it: a backend account it
        names (``'sgm_5_6e1abf3a'@'%'``: the session's mirror) is the client's account,
        ``'user'@'ip'`` as MariaDB and the proxy's own errors name it, and a physical
        database of the current (sharded) database the logical one (an error after rows of
        a single table's answer, relayed from physical database 0 or a routed statement's
        partition); else unchanged."""
        return self.sharded.client_err_packet(payload)

    def _named_errors(self, payloads: list[bytes]) -> list[bytes]:
        """A whole answer read before it is relayed, its closing ERR (if any) named as
        :meth:`_named_error` names it."""
        last = payloads[-1] if payloads else b""
        if last[:1] == b"\xff":
            payloads[-1] = self._named_error(last)
        return payloads

    def _send_error_quietly(self, error: SqlError, seq: int | None = None) -> None:
        try:
            self.client.write(self._next_seq if seq is None else seq, self._err(error))
        except Exception:  # the client may already be gone
            pass

    async def close(self) -> None:
        # The session stops counting (max_user_connections, the processlist) at once.
        self.ctx.sessions.pop(self.connection_id, None)
        await self.sharded.close()
        await self.link.close()
        try:
            if not self.client.is_closing():
                await asyncio.wait_for(self.client.drain(), 1)
        except (ConnectionLost, TimeoutError):
            pass
        self.client.close()

    def _err(self, error: SqlError) -> bytes:
        return build_err(
            errno=error.errno,
            sqlstate=error.sqlstate,
            message=error.message,
            capabilities=self.capabilities or Capability.PROTOCOL_41,
        )

    def _write(self, payload: bytes) -> None:
        if self._binary is not None:
            payload = self._binary.convert(payload)
        self._next_seq = self.client.write(self._next_seq, payload)

    def _write_shard(self, payload: bytes) -> None:
        """A packet of the sharded executor's answer: a shard's ERR packet named as the
        client may see it (no row or column definition starts with 0xFF), and left for
        :meth:`_settle_diagnostics` as every error the proxy answers is (:meth:`_answered`)."""
        if payload and payload[0] == 0xFF:
            payload = self.sharded.client_err_packet(payload)
            self._answered(payload)
        if self._binary is not None:
            payload = self._binary.convert(payload)
        self._next_seq = self.client.write(self._next_seq, payload)

    def _write_many(self, payloads: list[bytes]) -> None:
        """Packets of the sharded executor's answer at once (a merge's batch): one ending
        with an ERR packet (a shard's error after rows) as :meth:`_write_shard` writes it."""
        if payloads and _terminates(payloads[-1]) and payloads[-1][:1] == b"\xff":
            self._answered(payloads[-1])
        if self._binary is not None:
            payloads = [self._binary.convert(payload) for payload in payloads]
        self._next_seq = self.client.write_many(self._next_seq, payloads)

    def _caller(self) -> Caller:
        assert self.account is not None
        return Caller(self.account, self.client_ip, self.current_db)

    # -- the command loop ---------------------------------------------------------------------

    async def command_loop(self) -> None:
        client = self.client
        while True:
            if self.ctx.draining and (self.cut or not self._holds_anything()):
                raise _ShuttingDown
            self.activity = Activity("Sleep", time.monotonic())
            # While the task waits, simple commands are served from the fast hook.
            client.fast = self._fast_hook
            try:
                seq, payload = await client.read(self.ctx.config.server.max_packet)
            finally:
                client.fast = None
            if self.killed:
                raise FatalError(None, "killed")
            self._next_seq = (seq + 1) & 0xFF
            if not payload:
                raise FatalError(sql_error(ErrorCode.NET_READ_ERROR, "Empty packet"))
            # One catalog snapshot for the whole command: the account may have been dropped,
            # or its grants changed, since the last one.
            snapshot = self.ctx.snapshot()
            assert self.account is not None
            if self.current_db is not None and snapshot.database(self.current_db) is None:
                raise FatalError(database_dropped(self.current_db), "database dropped")
            current = snapshot.account(self.account.id)
            if current is None:
                raise FatalError(
                    sql_error(ErrorCode.ACCESS_DENIED, "Your account has been dropped"),
                    "account dropped",
                )
            self.account = current
            if self.diag.refused is not None:
                # An error the fast path answered (a partition's connection lost): raised in
                # the diagnostics area before this command starts its own.
                await self._settle_diagnostics()
            # The backend connection the session gave back after its last command, if nobody
            # took it meanwhile; else what its next statement may ask about its last.
            carried = await self.link.settle()
            if snapshot is not self.checked_snapshot:
                conn = self.link.live()
                if conn is not None:
                    # MariaDB keeps a connection's database privileges from when it selected
                    # the database: the connection follows the new grants first.
                    await self.ctx.follow_grants(conn, current, self.current_db)
            self.checked_snapshot = snapshot
            code = payload[0]
            if code in _STATEMENT_COMMANDS and payload[1:5] == _LAST_STMT_ID:
                payload = self._last_statement(payload)
            before = set(self.prepared) if code == _COM_STMT_PREPARE else None
            command = await self._read_command(payload, carried)
            if command is not None:
                # What was saved of the last statement answers this one only: never a PREPARE's
                # text (kept and executed later) nor an execution.
                view = self.view(carried if isinstance(command, Query) else None)
                await self._execute(await self._plan(command, view, snapshot), command, payload)
                await self._settle_diagnostics()
            if before is not None:
                made = [client_id for client_id in self.prepared if client_id not in before]
                self.last_prepared = made[-1] if made else None
            self.link.release()
            await client.drain()

    def _last_statement(self, payload: bytes) -> bytes:
        """A statement command naming statement -1 as naming the session's last prepared
        statement, as MariaDB reads it; unchanged (unknown, answered 1243 as MariaDB does) when
        the last PREPARE failed or its statement was closed."""
        last = self.last_prepared
        if last is None or last not in self.prepared:
            return payload
        return payload[:1] + last.to_bytes(4, "little") + payload[5:]

    async def _plan(self, command: Command, view: SessionView, snapshot: CatalogSnapshot) -> Plan:
        """``plan(command, view, snapshot)``; a text asking ROW_COUNT() or FOUND_ROWS() after
        a statement that ran on another connection than the session's own (a sharded
        database's partition: the session's own would answer about its own last statement)
        gets them from that one (``ShardedExecutor.last_statement``)."""
        ran = self.sharded.begin_command()
        if (
            isinstance(command, Query)
            and view.identity is not None
            and command.statements
            and any(call.identity in _ASKS_LAST for call in command.statements[0].identity)
            and (ran != 0 or self.sharded.found_elsewhere())
        ):
            asked = {call.identity for call in command.statements[0].identity}
            identity = await self.sharded.last_statement(
                ran, view.identity, Identity.FOUND_ROWS in asked
            )
            if isinstance(identity, SqlError):
                return Deny(identity)
            view = replace(view, identity=identity)
        held = self.diag.held_notes
        if (
            held
            and isinstance(command, Query)
            and view.identity is not None
            and view.identity.warning_count is None  # (carried from a hand-off: its own)
            and command.statements
            and any(call.identity in _COUNTS_NOTES for call in command.statements[0].identity)
        ):
            # The area is the proxy's notes (a scatter SELECT's partitions' conditions, a
            # note of its own): the counts of what SHOW WARNINGS shows, not physical database
            # 0's own area (emptied for them).
            errors = sum(1 for level, _, _ in held if level == "Error")
            view = replace(
                view, identity=replace(view.identity, warning_count=len(held), error_count=errors)
            )
        if isinstance(command, Query | Prepare) and len(command.sql) > INLINE_ANALYSIS_LIMIT:
            # A long text's decision reads it whole (a sharded database's routing lexes it
            # with its values: a second for 16 MB of string escapes, tens of seconds for a
            # million-row INSERT): in the session's turn of the analysis threads, as its
            # analysis was -- ``plan`` is a pure function of its arguments.
            return await self.ctx.analysis_pool.run(self.tenant(), plan, command, view, snapshot)
        return plan(command, view, snapshot)

    def view(self, carried: Carried | None = None) -> SessionView:
        assert self.account is not None
        identity = self.identity
        if carried is not None and identity is not None:
            identity = replace(
                identity,
                found_rows=carried.found_rows,
                row_count=carried.row_count,
                warning_count=carried.warning_count,
                error_count=carried.error_count,
            )
        return SessionView(
            self.account,
            self.client_ip,
            self.current_db,
            has_notes=bool(self.notes),
            # (prepared statements name the current database's tables: they hold it too)
            bound=self.link.bound() or self._holds_statements(),
            identity=identity,
            lex_mode=self.link.state.lex_mode,
            flavor=self.link.state.flavor,
            codec=client_codec(self.link.state, self.charset),
        )

    def _holds_statements(self) -> bool:
        """Whether a prepared statement is on the shard (those the proxy answers are not)."""
        return any(not prepared.answered for prepared in self.prepared.values())

    def lexing(self) -> Lexing:
        """How the shard reads the session's texts now (``SessionView``'s lexing)."""
        state = self.link.state
        return (state.lex_mode, state.flavor, client_codec(state, self.charset))

    async def _read_command(self, payload: bytes, carried: Carried | None) -> Command | None:
        """The packet as a Command (None: an error was already sent). ``carried``: the last
        statement's warnings, when its connection went to another session (SHOW WARNINGS
        shows them)."""
        code = payload[0]
        if code in (_COM_QUERY, _COM_STMT_PREPARE):
            sql = _decode(payload[1:]) if len(payload) <= INLINE_ANALYSIS_LIMIT else None
            prepare = code == _COM_STMT_PREPARE
            self.activity = Activity("Prepare" if prepare else "Query", time.monotonic(), sql)
            analysed = await self._analyze(payload, sql)
            if analysed is None:
                return None
            statements, digest, sql = analysed
            self.activity.info = sql
            # Notes of the proxy's own statements (3162 / 3163) last until the next query
            # that starts a new diagnostics area (_keep_notes).
            notes, self.notes = self.notes, []
            if carried is not None and carried.warnings:
                notes = list(carried.warnings)
            self.diag.held_notes = [] if prepare else notes
            if prepare:
                self.ctx.metrics.statement("prepare")
                return Prepare(tuple(statements), digest, sql)
            for statement in statements:
                self.ctx.metrics.statement(statement.kind.value)
            if len(statements) == 1 and statements[0].shows_warnings:
                counting = "COUNT" in digest.upper().replace("(", " ").split()[1:2]
                if (not counting or self.fast.area is not None) and self.sharded.database_sharded():
                    notes = await self._sharded_notes(notes)
                self.notes = notes  # SHOW WARNINGS shows them
                self.diag.showing = True  # (shown, not the proxy's own notes: _settle_diagnostics)
            elif self.fast.area is not None and not notes and await self._reads_diagnostics(sql):
                await self._area_moved()
            return Query(tuple(statements), digest, sql)
        if code in _STATEMENT_COMMANDS:
            statement_id = int.from_bytes(payload[1:5], "little")
            if code == COM_STMT_EXECUTE:
                self.activity = Activity("Execute", time.monotonic(), self.activity.info)
                self.ctx.metrics.statement("execute")
            return StatementCommand(code, statement_id, self.prepared.get(statement_id))
        if code == _COM_INIT_DB:
            return InitDb(_decode(payload[1:]))
        if code == _COM_FIELD_LIST:
            return FieldList(_decode(payload[1:].split(b"\x00", 1)[0]))
        if code == _COM_PROCESS_KILL:
            return ProcessKill(int.from_bytes(payload[1:5], "little"))
        return Simple(code)

    async def _sharded_notes(self, notes: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
        """SHOW WARNINGS / ERRORS in a sharded database: the notes of the last statement on
        physical database 0 (its connection's, or saved from it) with their texts named as
        the client may see them -- the logical database, the client's account -- as that
        statement's error was (``Unknown table 'sales_0000.t'``: ``sales.t``). Answered by
        the proxy from them (an empty list: relayed as before, nothing to rename)."""
        if not notes:
            area = self.fast.area
            notes = await self._notes_on(area if area is not None else self.link.reclaim())
            if area is not None and not notes:
                await self._area_moved()  # (relayed: MariaDB's own empty answer)
        return [(level, code, self.sharded.client_message(text)) for level, code, text in notes]

    @staticmethod
    async def _notes_on(conn: BackendConnection | None) -> list[tuple[str, int, str]]:
        """The conditions in ``conn``'s diagnostics area (none: it cannot be asked)."""
        if conn is None or conn.broken or conn.relaying or conn.is_closing():
            return []
        try:
            shown = await conn.query(OWN_STATEMENT + "SHOW WARNINGS")
        except (BackendError, BackendQueryError):
            return []
        return [
            (
                (level or b"").decode("utf-8", "replace"),
                int(code or 0),
                (message or b"").decode("utf-8", "surrogateescape"),
            )
            for level, code, message in (row[:3] for row in shown.rows)
        ]

    async def _area_moved(self) -> None:
        """The session's diagnostics area is another partition's connection's
        (``FastPath.area``) and a statement relayed to physical database 0 is about to read
        it (SHOW WARNINGS, @@warning_count, GET DIAGNOSTICS, ...): when that area is empty --
        the last statement there succeeded without a condition, as most do -- physical
        database 0's is emptied first, which then answers as MariaDB would (whatever an
        earlier statement left there is not shown again), and is the session's again. An
        area with conditions becomes the notes the proxy holds (physical database 0's emptied
        all the same): @@warning_count / @@error_count are answered from them (``_plan``; not
        physical database 0's own, an earlier statement's), and they stay through statements
        that keep the area (``_keep_notes``), as SHOW WARNINGS shows them."""
        area = self.fast.area
        if area is None:
            return
        notes = await self._notes_on(area)
        self.fast.area = None
        await self._clear_area()
        if notes:
            self.diag.held_notes = notes

    async def _analyze(
        self, payload: bytes, sql: str | None
    ) -> tuple[list[Statement], str, str] | None:
        """Classify the packet's SQL: on the event loop only when short and cached."""
        # The shard's sql_mode and character set are read back before the first statement is
        # lexed: the proxy never assumes them.
        if not self.link.state.known and await self._connection() is None:
            return None
        state = self.link.state
        db, mode, flavor = self.current_db, state.lex_mode, state.flavor
        if sql is not None:
            try:
                statements, digest = analyze_with_digest(sql, db, mode, flavor, parse=False)
                return statements, digest, sql
            except NeedsParse:
                pass
        return await self.ctx.analysis_pool.run(
            self.tenant(), _analyze_payload, payload, db, mode, flavor
        )

    def tenant(self) -> str:
        """Whose turn in the analysis threads (FairPool) the session's work takes."""
        account = self.account
        if account is None:
            return f"connection {self.connection_id}"
        return account.owner_db or f"account {account.id}"

    async def _reads_diagnostics(self, sql: str) -> bool:
        """:func:`reads_diagnostics`: in the session's turn of the analysis threads when
        ``sql`` is long (not on the event loop)."""
        if len(sql) <= INLINE_ANALYSIS_LIMIT:
            return reads_diagnostics(sql)
        return await self.ctx.analysis_pool.run(self.tenant(), reads_diagnostics, sql)

    # -- carrying a plan out --------------------------------------------------------------------

    async def _execute(self, decided: Plan, command: Command, payload: bytes) -> None:
        if isinstance(command, StatementCommand) and self.sharded.owns(command.statement_id):
            # A statement on sharded or broadcast tables (proxy/session/sharded.py).
            await self.sharded.statement_command(decided, command, payload)
            return
        if isinstance(command, Prepare) and isinstance(decided, Sharded):
            await self.sharded.prepare(decided, command.statements[0], payload)
            return
        if isinstance(decided, PrepareAnswered):
            self._prepare_answered(decided, payload)
            return
        if isinstance(decided, AnsweredExecution):
            await self._execute_answered(decided, command)
            return
        if isinstance(decided, Relay):
            if self.sharded.in_charge():
                await self._relay_in_transaction(decided, command, payload)
            else:
                await self._relay(decided, command, payload)
            self._keep_found_rows(command, self.relayed)
            starts = _starts_area(command, self.relayed)
            if self.fast.area is not None and starts:
                self.fast.area = None
            if self.diag.held_notes and not starts and self.diag.refused is None:
                await self._keep_notes()
        elif isinstance(decided, Sharded):
            await self.sharded.execute(decided)
            self._keep_found_rows(command, None)
            if (
                self.diag.held_notes
                and isinstance(decided.decision, TransactionControl)
                and self.diag.refused is None
                and not self.notes
            ):
                # (COMMIT, ROLLBACK, BEGIN name no table: MariaDB keeps the area through them)
                self.notes = self.diag.held_notes
        elif isinstance(decided, ShardedPacket):
            await self.sharded.execute_packet(decided)
        elif isinstance(decided, Deny):
            self._reply_error(decided.error)
            self.sharded.refused_here()  # (it ran nowhere)
        elif isinstance(decided, Forward):
            if decided.closes is not None:
                self.prepared.pop(decided.closes, None)
                self._definer_columns.pop(decided.closes, None)
                self.link.statements.close(decided.closes, self.link.send_close)
            else:
                assert isinstance(command, StatementCommand)
                await self._send_long_data(command, payload)
        elif isinstance(decided, UseDatabase):
            await self._use(decided.name)
        elif isinstance(decided, ShowDatabases):
            self._write_resultset([decided.column], [[n] for n in decided.names])
        elif isinstance(decided, ShowProcesslist):
            self._show_processlist(decided.full)
        elif isinstance(decided, ShowDigest):
            sources = [self.ctx.digest.entries, *self.ctx.peer_digests()]
            self._write_resultset(list(DIGEST_COLUMNS), digest_table(decided.database, sources))
        elif isinstance(decided, ShowNotes):
            await self._show_notes(decided.text)
        elif isinstance(decided, ShowEvents):
            self._write_resultset(list(EVENTS_COLUMNS), [])
        elif isinstance(decided, ShowStatus):
            self._write_resultset(
                list(STATUS_COLUMNS),
                status_rows(self._proxy_status(), decided.pattern, self._tls_status()),
            )
        elif isinstance(decided, Statistics):
            # COM_STATISTICS is answered with the bare text, in one packet.
            self._write(statistics_text(self._proxy_status()).encode())
        elif isinstance(decided, Kill):
            await self._kill(decided.connection_id, decided.query_only)
        elif isinstance(decided, RunAccountStatement):
            await self._account_statement(decided.text)
        elif isinstance(decided, Ok):
            if decided.notes:  # (a COM_PING leaves the notes there are)
                self.notes = [("Note", code, text) for code, text in decided.notes]
            self._reply_ok(warnings=len(decided.notes))
        elif isinstance(decided, Reauthenticate):
            await self._change_user(payload)
        elif isinstance(decided, Quit):
            raise _Quit
        else:
            assert isinstance(decided, NoReply)

    async def _keep_notes(self) -> None:
        """The proxy's notes (or those carried from a connection handed off) were the area
        before a statement relayed to the shard that names no table and did not fail: MariaDB
        keeps the area through such a statement (``SELECT 1``, ``SET @a = 1``) unless it
        raised a condition of its own -- which the shard's area, emptied when the proxy
        answered with its notes (_settle_diagnostics), then holds (its @@warning_count, asked
        without starting an area). Kept: SHOW WARNINGS goes on showing them."""
        held, self.diag.held_notes = self.diag.held_notes, []
        conn = self.link.live()
        if conn is None or conn.relaying:
            return
        try:
            counted = await conn.query(OWN_STATEMENT + "SELECT @@session.warning_count")
        except (BackendError, BackendQueryError) as exc:
            log.warning("connection %d: %s", self.connection_id, exc)
            return
        if counted.rows and counted.rows[0][0] in (b"0", None):
            self.notes = held

    async def _show_notes(self, text: str) -> None:
        """SHOW WARNINGS / ERRORS [LIMIT] / COUNT(*) answered from the notes the proxy holds,
        with the column definitions MariaDB gives the session for them (:meth:`_notes_columns`:
        Level and Message in the client's character set, of its lengths) and the texts in
        that character set."""
        columns, rows = diagnostics_answer(text, self.notes)
        counting = columns != list(NOTE_COLUMNS)
        numeric = frozenset(columns if counting else {"Code"})
        codec = client_codec(self.link.state, self.charset)
        encoded = [[_note_bytes(value, codec) for value in row] for row in rows]
        payloads = result_set(columns, encoded, self.capabilities, self._status(), numeric)
        definitions = await self._notes_columns(columns[0] if counting else "")
        if definitions is not None and len(definitions) == len(columns):
            payloads[1 : 1 + len(columns)] = definitions
        self._next_seq = self.client.write_many(self._next_seq, payloads)

    async def _notes_columns(self, counted: str) -> list[bytes] | None:
        """The column definitions of the shard's own answer to SHOW WARNINGS (``counted``
        empty) or SHOW COUNT(*) WARNINGS / ERRORS (``counted``: its column's name) on the
        session's connection (the client's character set, capabilities and metadata) --
        asked with no rows (a diagnostics statement: the area it reads stays) once per
        session state; None: not known (the proxy's own are used)."""
        if counted == "@@session.error_count":
            statement = "SHOW COUNT(*) ERRORS"
        elif counted:
            statement = "SHOW COUNT(*) WARNINGS"
        else:
            statement = "SHOW WARNINGS LIMIT 0"
        state = self.link.state
        key = (statement, state.version, self.charset)
        kept = self.diag.columns.get(key)
        if kept is not None and kept[0] is state:
            return kept[1]
        conn = self.link.live()
        if conn is None or conn.relaying:
            # (none leased for it: what was carried from a connection handed off answers the
            # statements after it, ``link.carried``)
            return None
        conn.send(b"\x03" + (OWN_STATEMENT + statement).encode())
        try:
            payloads = await conn.collect(ResponseKind.QUERY, HOLD_LIMIT)
        except BackendError as exc:
            log.warning("connection %d: %s", self.connection_id, exc)
            return None
        if payloads[0][:1] in (b"\x00", b"\xff", b"\xfe"):
            return None
        count, _ = read_lenenc_int(payloads[0], 0)
        definitions = payloads[1 : 1 + (count or 0)]
        if len(self.diag.columns) >= 8:
            self.diag.columns.clear()
        self.diag.columns[key] = (state, definitions)
        return definitions

    async def _connection(self) -> BackendConnection | None:
        """The session's live backend connection (None: an error was sent). Raises
        SessionLost when the old one died with session state on it."""
        try:
            return await self.link.connection(self._lease)
        except BackendUnavailable as exc:
            log.warning("connection %d: %s", self.connection_id, exc)
            self._reply_error(exc.error)
            return None

    def _lease(self, link: BackendLink) -> Awaitable[tuple[BackendConnection, bool, ShardPool]]:
        """A backend connection of the session's account in its current database, from the
        shard's pool."""
        assert self.account is not None
        return self.ctx.backend_lease(
            link, self.account, self.current_db, self.capabilities, self.charset
        )

    def _keep_found_rows(self, command: Command, relayed: ResponseScanner | None) -> None:
        """After a text statement that left FOUND_ROWS() (``_leaves_found_rows``), wherever
        it ran: it stays what it was (the proxy's count of a scatter SELECT, or the connection
        that ran the SELECT before); else the connection that ran it answers."""
        if isinstance(command, Query) and _leaves_found_rows(command, relayed):
            self.sharded.left_found_rows()

    async def _relay_in_transaction(self, relay: Relay, command: Command, payload: bytes) -> None:
        """A relayed statement while the proxy runs the session's transaction on a sharded
        database: it runs in the transaction's branch on physical database 0 (DDL and the
        like commit the transaction first, as MariaDB does); a deadlock there rolls the whole
        transaction back."""
        text = ""
        transactional = False
        if isinstance(command, Query):
            text = command.sql or ""
            transactional = any(st.kind is Kind.QUERY for st in command.statements)
        elif isinstance(command, StatementCommand):
            transactional = command.code == COM_STMT_EXECUTE
        if relay.effects.resets:
            await self.sharded.close()  # COM_RESET_CONNECTION rolls the transaction back
        elif not await self.sharded.before_relay(transactional, text):
            return
        self.relayed = None
        await self._relay(relay, command, payload)
        await self.sharded.after_statement(self.relayed)

    async def _relay(self, relay: Relay, command: Command, payload: bytes) -> None:
        effects = relay.effects
        if effects.resets:
            # COM_RESET_CONNECTION resets physical database 0's connection alone: the other
            # partitions' connections would keep LOCK TABLES' locks and the session's old
            # settings (an empty variable list applies nothing). Closed: new ones are fresh.
            await self.sharded.close()
        if effects.resets and self.link.live() is None:
            # COM_RESET_CONNECTION with nothing on the shard: reset here.
            self.link.reset()
            self.prepared.clear()
            self._definer_columns.clear()
            self.sharded.forget_statements()
            self._reply_ok()
            return
        conn = await self._connection()
        if conn is None:
            return
        limit = self.link.max_allowed_packet
        if limit and len(payload) > limit:
            # What the shard would answer (and then close the connection), at the sequence
            # number the client expects, without sending it tens of megabytes first.
            raise FatalError(packet_too_large(), "command over the shard's max_allowed_packet")
        # The client's own text of a COM_STMT_PREPARE the privilege tables are spliced into.
        source = payload[1:] if effects.grant_views and isinstance(command, Prepare) else None
        if isinstance(command, StatementCommand):
            if relay.respliced is not None:
                self._resplice(command.statement_id, relay.respliced)
            try:
                on_conn = await self._statement_on(conn, command, payload)
            except BackendError as exc:
                self._backend_lost(conn, exc)
                return
            if on_conn is None:
                return
            payload = on_conn
        elif isinstance(command, Prepare) and (self.link.statements.by_id or self.prepared):
            assert effects.prepares is not None
            if relay.rewrite:
                payload = apply_splices(payload, relay.rewrite, base=1)
            columns = self.sharded.link_columns()
            if effects.grant_views:
                columns = grant_columns(effects.grant_views, columns)
            await self._prepare_renumbered(
                conn, command, effects.prepares, payload, columns, source
            )
            return
        killed_self = False
        if relay.kills:
            payload, killed_self = await self._packet_kills(payload, relay)
        elif relay.rewrite:
            # Identity calls answered by the proxy: the one change to the client's bytes.
            payload = apply_splices(payload, relay.rewrite, base=1)
        conn.send(payload)  # the client's bytes, unchanged (but for the rewrites above)
        started = time.monotonic()
        scanner: ResponseScanner | None = None
        try:
            if effects.hold:
                await self._relay_held(conn, relay)
            elif effects.definers:
                columns = self.sharded.link_columns()
                if effects.grant_views:
                    columns = grant_columns(effects.grant_views, columns)
                executed = command.statement_id if isinstance(command, StatementCommand) else None
                fetch = relay.response is ResponseKind.FETCH
                scanner = await self.relay_definers(conn, columns, executed, fetch)
                self.relayed = scanner
            else:
                columns = self.sharded.link_columns()
                if effects.grant_views:
                    columns = grant_columns(effects.grant_views, columns)
                every = columns is not None and _several_results(command)
                scanner = await conn.relay(self.client, relay.response, columns, every)
                self.relayed = scanner
        except BackendError as exc:
            self._backend_lost(conn, exc)
            return
        if scanner is not None and relay.digest is not None:
            self.fast.record(conn, relay.digest, time.monotonic() - started, scanner)
        if killed_self:
            raise _self_killed()
        if effects is NO_EFFECTS:
            return
        # What the command left on the connection (kept even if it failed: over-binding can
        # only end a session that lost its connection; it never hides a loss).
        self.link.binds |= effects.binds
        if effects.releases and scanner is not None and not scanner.error:
            self.link.binds -= effects.releases
        self.link.state.add_replay(effects.replay)
        try:
            if effects.readback and not effects.hold:
                try:
                    self.link.state.lex_mode = await self.link.read_back(conn, effects.readback)
                except SqlError as error:
                    # The shard accepted a state the proxy cannot lex in: it must not go on.
                    raise FatalError(error, f"unsupported session state: {error.message}") from None
            registered = scanner is not None and scanner.statement_id is not None
            if effects.prepares is not None and registered and scanner and not scanner.error:
                assert isinstance(command, Prepare) and scanner.statement_id is not None
                # The session's first statement: the client's id is the shard's.
                self._register(
                    scanner.statement_id,
                    scanner.statement_id,
                    scanner.prepared_params,
                    Prepared(effects.prepares, command.digest),
                    payload,
                    conn,
                    source,
                )
            if effects.resets and scanner is not None and not scanner.error:
                self.prepared.clear()
                self._definer_columns.clear()
                self.sharded.forget_statements()
                self.link.reset()
                self.link.state.lex_mode = await self.link.read_back(conn, ())
                self.link.state.known = True
        except BackendError as exc:
            self._backend_lost(conn, exc, replied=True)

    # -- server-side prepared statements (proxy/session/statements.py) ---------------------------

    def _register(
        self,
        client_id: int,
        backend_id: int,
        params: int,
        prepared: Prepared,
        payload: bytes,
        conn: BackendConnection,
        source: bytes | None = None,
    ) -> None:
        lexing = prepared_lexing(payload[1:], self.lexing())
        if lexing is not None:
            prepared = replace(prepared, lexing=lexing)
        self.prepared[client_id] = prepared
        self.link.statements.add(client_id, payload[1:], params, conn, backend_id, source)

    def _resplice(self, statement_id: int, splices: tuple[Splice, ...]) -> None:
        """An execution of a statement prepared with the privilege tables' derived tables:
        its text with the grants the account holds now (``splices``); prepared again on the
        shard (``WireStatement.retext``) when that is not the text it was prepared as, as
        MariaDB reads information_schema afresh at each execution. (Long data sent to it
        waits on the statement as prepared: that execution keeps it.)"""
        wire = self.link.statements.by_id.get(statement_id)
        if wire is None or wire.source is None or wire.long_data:
            return
        text = apply_splices(wire.source, splices)
        if text != wire.text:
            wire.retext(text, self.link.send_close)

    async def _prepare_renumbered(
        self,
        conn: BackendConnection,
        command: Prepare,
        statement: Statement,
        payload: bytes,
        columns: Callable[[bytes], bytes] | None,
        source: bytes | None = None,
    ) -> None:
        """COM_STMT_PREPARE when the session has statements already (maybe from other
        connections, whose ids this connection may also hand out): the answer is read whole
        and the client gets an id of the session's own."""
        conn.send(payload)
        try:
            payloads = await conn.collect(ResponseKind.PREPARE, PREPARE_LIMIT)
        except BackendError as exc:
            self._backend_lost(conn, exc)
            return
        first = payloads[0]
        if first[:1] == b"\x00":
            ok = parse_stmt_prepare_ok(first)
            client_id = self.link.statements.client_id_for(ok.statement_id, self.prepared)
            payloads[0] = first[:1] + client_id.to_bytes(4, "little") + first[5:]
            prepared = Prepared(statement, command.digest)
            self._register(
                client_id, ok.statement_id, ok.num_params, prepared, payload, conn, source
            )
            if columns is not None:  # a sharded database's single tables: logical names
                payloads[1:] = [
                    p if p[:1] == b"\xfe" and len(p) < 9 else columns(p) for p in payloads[1:]
                ]
        self._next_seq = self.client.write_many(self._next_seq, self._named_errors(payloads))

    async def _statement_on(
        self, conn: BackendConnection, command: StatementCommand, payload: bytes
    ) -> bytes | None:
        """The command for the statement as prepared on ``conn``: prepared there first if it
        is not (None: the shard refused, and its error was the answer), with the shard's id
        and, for an execution that relies on the last one's parameter types, those types."""
        wire = self.link.statements.by_id.get(command.statement_id)
        if wire is None:
            return payload
        if wire.failed is not None and command.code == COM_STMT_EXECUTE:
            error, wire.failed = wire.failed, None
            self._reply_error(error)
            return None
        backend_id = wire.on.get(conn)
        if backend_id is None:
            refused = await self.link.reprepare(conn, wire)
            if refused is not None:
                self._write(refused)
                return None
            backend_id = wire.on[conn]
        if command.code == COM_STMT_EXECUTE:
            flag_at, types = execute_types(payload, wire.params)
            if types is not None:
                wire.took_types(types, conn)
            elif flag_at >= 0 and wire.types is not None and not wire.has_types_on(conn):
                payload = with_types(payload, flag_at, wire.types)
                wire.sent_types(conn)
            wire.cursor = opens_cursor(payload)
            wire.long_data = False
            if wire.cursor:
                self.link.statements.pinned()
        elif command.code == COM_STMT_RESET:
            wire.cursor = wire.long_data = False
            wire.failed = None
        return with_id(payload, backend_id)

    async def _send_long_data(self, command: StatementCommand, payload: bytes) -> None:
        """COM_STMT_SEND_LONG_DATA (no answer): to a connection the statement is prepared on,
        which the session then keeps until the statement is executed or reset."""
        wire = self.link.statements.by_id.get(command.statement_id)
        if wire is None:
            return
        try:
            conn = await self.link.connection(self._lease)
            backend_id = wire.on.get(conn)
            if backend_id is None:
                refused = await self.link.reprepare(conn, wire)
                if refused is not None:
                    err = parse_err(refused, conn.capabilities)
                    wire.failed = SqlError(err.errno, err.sqlstate, err.message)
                    return
                backend_id = wire.on[conn]
        except BackendUnavailable as exc:
            wire.failed = exc.error
            return
        except BackendError as exc:
            wire.failed = lost_error([], exc)
            self.link.drop()
            return
        wire.long_data = True
        self.link.statements.pinned()
        conn.send(with_id(payload, backend_id))

    async def relay_definers(
        self,
        conn: BackendConnection,
        columns: Callable[[bytes], bytes] | None,
        statement_id: int | None = None,
        fetch: bool = False,
    ) -> ResponseScanner:
        """The answer to a statement that may show a view's definer (an execution of
        prepared statement ``statement_id`` or, ``fetch``, rows of its cursor; or a query),
        its mirrors named as their accounts (proxy.session.definers); column definitions
        through ``columns`` as the compiled relay would pass them."""
        known = None if statement_id is None else self._definer_columns.get(statement_id)
        scanner, self._next_seq, last = await relay_definers(
            conn,
            self.client,
            self._next_seq,
            statement_id is not None,
            self.definers(),
            columns,
            self._named_error,
            known,
            fetch,
        )
        if statement_id is not None and last is not None:
            if len(self._definer_columns) >= _DEFINER_STATEMENTS_KEPT:
                self._definer_columns.clear()
            self._definer_columns[statement_id] = last
        return scanner

    def definers(self) -> Definers:
        """The renaming of mirrors as definers in the session's current database (its
        physical databases: one, or a sharded database's), kept per catalog snapshot."""
        snapshot = self.ctx.snapshot()
        database = None if self.current_db is None else snapshot.database(self.current_db)
        names = () if database is None else tuple(p.name for p in database.physical_databases)
        cached = self._definers
        if cached is not None and cached.snapshot is snapshot and cached.physical == names:
            return cached
        self._definers = Definers(snapshot, self.ctx.secret, names)
        return self._definers

    async def _relay_held(self, conn: BackendConnection, relay: Relay) -> None:
        """Relay a response only once the session state it leaves is known to be one the
        proxy can lex in; otherwise undo the change and refuse the statement."""
        payloads = await conn.collect(relay.response, HOLD_LIMIT)
        state = self.link.state
        previous = dict(state.variables)
        try:
            state.lex_mode = await self.link.read_back(conn, relay.effects.readback)
        except SqlError as error:
            await self.link.restore(conn, previous)
            self._reply_error(error)
            return
        columns = self.sharded.link_columns()
        if columns is not None:  # a sharded database's: logical names
            payloads = renamed_answer(payloads, columns, conn.capabilities)
        self._next_seq = self.client.write_many(self._next_seq, self._named_errors(payloads))

    def _backend_lost(
        self, conn: BackendConnection, exc: BackendError, replied: bool = False
    ) -> None:
        """One way to handle a backend connection lost under a command: 2013 to the client,
        and the session ends if anything was on the connection or the answer was cut."""
        reasons = self.link.bound_reasons()
        self.ctx.metrics.backend_error(conn.target.shard)
        log.warning("connection %d: %s", self.connection_id, exc)
        self.link.drop()
        if reasons or replied or conn.relayed_any:
            raise SessionLost(lost_error(reasons, exc))
        self._reply_error(lost_error([], exc))

    # -- the fast path --------------------------------------------------------------------------

    def fast_partition_failed(
        self, conn: BackendConnection, partition: int, error: BackendError
    ) -> None:
        """A fast statement's connection to another partition than the session's own
        (``conn``, of physical database ``partition``) failed (FastPath.partition_done)."""
        self.ctx.metrics.backend_error(conn.target.shard)
        log.warning("connection %d: %s", self.connection_id, error)
        cut = conn.relayed_any
        self.sharded.fast_failed(conn, partition)
        self._next_seq = 1
        if cut:
            self.kill()  # the command loop sees the connection end and cleans up
        else:
            self._reply_error(lost_error([], error))

    def fast_failed(self, conn: BackendConnection, error: BackendError) -> None:
        """A fast statement's connection (the session's own, ``conn``) failed (FastPath.done)."""
        reasons = self.link.bound_reasons()
        self.ctx.metrics.backend_error(conn.target.shard)
        log.warning("connection %d: %s", self.connection_id, error)
        cut = conn.relayed_any
        self.link.drop()
        self._next_seq = 1
        if not cut:
            self._reply_error(lost_error(reasons, error))
        if reasons or cut:
            self.kill()  # the command loop sees the connection end and cleans up

    def drained_after_fast(self) -> None:
        """A fast statement is complete while the server drains (FastPath.done)."""
        if (self.cut or not self._holds_anything()) and not self.killed:
            self.shut_down()  # the command loop sees the connection end and cleans up

    # -- replies --------------------------------------------------------------------------------

    def _reply_shard_error(self, error: SqlError) -> None:
        """The sharded executor's errors: named as the client may see them."""
        self._reply_error(self.sharded.client_error(error))

    def _reply_error(self, error: SqlError) -> None:
        self.ctx.metrics.denied(error.errno)
        self._write(self._err(error))
        self.diag.refused = error  # (the shard's diagnostics follow: _settle_diagnostics)

    def _answered(self, packet: bytes) -> None:
        """An ERR packet the proxy writes itself that is not its own refusal (the sharded
        executor's: a partition's error, a failed XA step, ...): the one error boundary with
        :meth:`_reply_error` -- :meth:`_settle_diagnostics` raises it in the diagnostics area
        after the command, as MariaDB leaves a failed statement's."""
        err = parse_err(packet, self.capabilities or Capability.PROTOCOL_41)
        self.diag.refused = SqlError(err.errno, err.sqlstate, err.message)

    async def _settle_diagnostics(self) -> None:
        """After a command the proxy answered with an error of its own (any: a refusal, a
        partition's error the sharded executor wrote, a shard's error renamed, ...): the
        shard's diagnostics area holds it (:meth:`_diagnose`); after one it answered with
        notes of its own (not SHOW WARNINGS showing them, nor notes kept through a statement
        that keeps the area): the shard's area is emptied (:meth:`_undiagnose`). Relayed
        answers leave the area as the shard made it."""
        refused, self.diag.refused = self.diag.refused, None
        showing, self.diag.showing = self.diag.showing, False
        held, self.diag.held_notes = self.diag.held_notes, []
        if refused is not None:
            await self._diagnose(refused)
        elif self.notes and not showing and self.notes is not held:
            await self._undiagnose()

    async def _diagnose(self, error: SqlError) -> None:
        """After the proxy's own refusal (the shard never saw the statement): the error in the
        diagnostics area of the session's backend connection, as MariaDB leaves a failed
        statement's -- raised there with ``SIGNAL`` of its number, SQLSTATE and text (MariaDB
        keeps at most 512 characters of a condition's text) -- so that SHOW WARNINGS / SHOW
        ERRORS / SHOW COUNT(*) ... and @@warning_count / @@error_count after it are the shard's
        own answers, with MariaDB's metadata, for as long as MariaDB keeps the area (a
        statement that reads no table, ``SELECT 1``, keeps it). The connection given back and
        taken by another session meanwhile: the diagnostics saved from it become the error's
        (the proxy answers the next SHOW WARNINGS from them, as after any hand-off)."""
        state = error.sqlstate
        if (
            len(state) != 5
            or not state.isascii()
            or not state.isalnum()
            or state[:2] in ("00", "01", "02")  # (SIGNAL raises those as warnings, or refuses)
            or not 0 < error.errno < 65536
        ):
            return
        carried = await self.link.settle()
        conn = self.link.live()
        if conn is None or conn.relaying:
            if carried is not None:
                self.link.carried = replace(
                    carried,
                    row_count=-1,
                    warning_count=1,
                    error_count=1,
                    warnings=(("Error", error.errno, error.message[:_CONDITION_TEXT]),),
                )
            return
        text = error.message[:_CONDITION_TEXT].encode("utf-8", "surrogateescape").hex()
        try:
            await conn.query(
                f"{OWN_STATEMENT}SIGNAL SQLSTATE '{state}' SET MYSQL_ERRNO = {error.errno},"
                f" MESSAGE_TEXT = _utf8mb4 X'{text}'"
            )
        except BackendQueryError as exc:
            # The error raised, as asked -- or another (a pending KILL QUERY, an XA state):
            # then the area holds that one, not the refusal.
            self.diag.diagnosed = exc.errno == error.errno
            self.fast.area = None  # (physical database 0's is the session's again)
        except BackendError as exc:
            # Closed: the next command finds it so (and ends the session if it held state).
            log.warning("connection %d: %s", self.connection_id, exc)

    async def _undiagnose(self) -> None:
        """The proxy answered a statement with notes of its own after :meth:`_diagnose` raised
        a refusal on the shard: the shard's diagnostics area is emptied (by a statement that
        reads a table: one that does not keeps it) so that the refusal does not show again
        once the notes are gone (MariaDB replaces a statement's diagnostics with the next
        one's) -- or whatever an earlier statement left there: a statement after the notes
        that keeps the area (``SELECT 1``) keeps the notes only when the shard's area is
        still empty after it (:meth:`_keep_notes`)."""
        self.diag.diagnosed = False
        await self._clear_area()

    async def _clear_area(self) -> None:
        """Empty the diagnostics area of the session's own backend connection (by a statement
        that reads a table and finds nothing: one that reads none would keep it)."""
        conn = self.link.live()
        if conn is None or conn.relaying:
            return
        try:
            await conn.query(f"{OWN_STATEMENT}SELECT 1 FROM information_schema.ENGINES LIMIT 0")
        except BackendError as exc:
            log.warning("connection %d: %s", self.connection_id, exc)

    def _status(self) -> int:
        """The status flags of the proxy's own answers: the session's state as the shard's last
        answer left it (transaction, autocommit, ...), never flags that describe that answer
        (session-state data, cursors, more results, slow query, ...)."""
        conn = self.link.conn
        status = conn.status if conn is not None else self.link.last_status
        # A transaction the proxy runs on a sharded database may have no branch on the
        # session's own connection yet.
        return (status & _SESSION_STATUS) | self.sharded.status_flags()

    def _reply_ok(self, warnings: int = 0, session_state: bytes = b"") -> None:
        self._write(
            build_ok(
                capabilities=self.capabilities,
                status=self._status(),
                warnings=warnings,
                session_state=session_state,
            )
        )

    def _write_resultset(
        self, columns: list[str], rows: Iterable[Row], numeric: frozenset[str] = frozenset()
    ) -> None:
        """One of the proxy's own result sets (:meth:`_answer`), in the binary protocol when
        it answers an execution of a statement the proxy prepared itself."""
        payloads = self._answer(columns, rows, numeric)
        if self._binary is not None:
            payloads = [self._binary.convert(payload) for payload in payloads]
        self._next_seq = self.client.write_many(self._next_seq, payloads)

    def _answer(
        self, columns: list[str], rows: Iterable[Row], numeric: frozenset[str]
    ) -> list[bytes]:
        """A text result set of the proxy's own, its texts in the session's
        character_set_results and its text columns of that set's collation, as MariaDB sends
        a result (utf8mb3_general_ci, as UTF-8, when it is NULL or one the proxy cannot
        write)."""
        charset = results_charset(self.link.state, self.charset)
        codec = None if charset is None else python_codec(charset)
        collation = 33
        written: Iterable[Sequence[bytes | str | None]] = rows
        if codec is not None and charset is not None:
            collation = DEFAULT_COLLATIONS.get(charset, 33)
            if codec != "utf-8":
                written = [
                    [in_charset(value, codec) if isinstance(value, str) else value for value in row]
                    for row in rows
                ]
        return result_set(columns, written, self.capabilities, self._status(), numeric, collation)

    # -- statements the proxy answers itself, prepared ------------------------------------------

    def _prepare_answered(self, decided: PrepareAnswered, payload: bytes) -> None:
        """COM_STMT_PREPARE answered by the proxy (``PrepareAnswered``): an id no statement of
        the session has (the shard's next ones are renumbered around it, as on several
        connections), no parameters, the columns known now. Executed only under the lexing
        it was read in (``Prepared.lexing``), as every prepared statement."""
        taken = set(self.prepared) | set(self.sharded.statements)
        statement_id = self.link.statements.client_id_for(1, taken)
        prepared = decided.prepared
        lexing = prepared_lexing(payload[1:], self.lexing())
        if lexing is not None:
            prepared = replace(prepared, lexing=lexing)
        self.prepared[statement_id] = prepared
        columns = list(decided.columns)
        answer = self._answer(columns, [], decided.numeric)
        definitions = answer[1 : 1 + len(columns)]
        self._next_seq = self.client.write_many(
            self._next_seq,
            build_stmt_prepare_ok(statement_id, definitions, 0, capabilities=self.capabilities),
        )

    async def _execute_answered(self, decided: AnsweredExecution, command: Command) -> None:
        """An execution of a statement the proxy answers itself: its text's plan carried out
        as for COM_QUERY, every packet of the answer written as the binary protocol's."""
        self._binary = BinaryResults(self.capabilities)
        try:
            await self._execute(decided.plan, command, b"")
        finally:
            self._binary = None

    # -- local answers --------------------------------------------------------------------------

    async def _use(self, name: str) -> None:
        """Switch database: each database has its own backend login, so a new connection."""
        tx = self.sharded.tx
        if name != self.current_db and tx is not None and tx.branches:
            # The transaction's branches are this database's: not lost silently.
            self._reply_error(
                not_supported(
                    "USE of another database inside a transaction on a sharded database"
                    " (COMMIT or ROLLBACK first)"
                )
            )
            return
        if name != self.current_db:
            await self.sharded.close()
            # LAST_INSERT_ID(), FOUND_ROWS() and the warnings stay the session's (USE reads
            # no table): saved from the connection left, as for a hand-off.
            try:
                await self.link.keep_diagnostics()
            except BackendError:
                self.link.drop()
            await self.link.leave()
            self.current_db = name
            self.fast.area = None
        # With CLIENT_SESSION_TRACK, MariaDB reports the new current database in the OK.
        self._reply_ok(session_state=session_track_schema(name))

    def info(self, now: float) -> SessionInfo | None:
        """What SHOW PROCESSLIST shows of this session (None before login)."""
        if self.account is None:
            return None
        activity = self.activity
        return SessionInfo(
            self.connection_id,
            self.account,
            self.user,
            f"{self.client_ip}:{self.client_port}",
            self.current_db,
            activity.command,
            int(now - activity.since),
            activity.info,
            self.link.state.flavor,
        )

    def _visible_sessions(self) -> dict[int, SessionInfo]:
        assert self.account is not None
        now = time.monotonic()
        shown: dict[int, SessionInfo] = {}
        for session in list(self.ctx.sessions.values()):
            info = session.info(now)
            if info is not None and visible(self.account, info):
                shown[info.connection_id] = info
        return shown

    def _tls_status(self) -> dict[str, str]:
        """Ssl_cipher and Ssl_version of the client connection (empty without TLS)."""
        layer = self.client.tls
        if layer is None:
            return tls_status(None, None)
        cipher = layer.ssl_object.cipher()
        return tls_status(cipher[0] if cipher else None, layer.ssl_object.version())

    def _proxy_status(self) -> ProxyStatus:
        """This process's status counters (SHOW STATUS, COM_STATISTICS)."""
        sessions = [
            OpenSession(
                session.activity.command != "Sleep",
                session.client.bytes_received,
                session.client.bytes_sent,
            )
            for session in list(self.ctx.sessions.values())
        ]
        return proxy_status(
            self.ctx.metrics, self.ctx.digest, self.ctx.snapshot().version, sessions, time.time()
        )

    def _show_processlist(self, full: bool) -> None:
        rows = processlist_rows(self._visible_sessions().values(), self.connection_id, full)
        self._write_resultset(list(PROCESSLIST_COLUMNS), rows, PROCESSLIST_NUMERIC)

    def _kill_target(self, connection_id: int) -> Session | SqlError:
        """The session ``KILL connection_id`` ends; a session the caller may not see is
        answered exactly like one that does not exist (1094)."""
        target = self.ctx.sessions.get(connection_id)
        if target is None or connection_id not in self._visible_sessions():
            return sql_error(ErrorCode.NO_SUCH_THREAD, f"Unknown thread id: {connection_id}")
        return target

    async def _kill(self, connection_id: int, query_only: bool) -> None:
        target = self._kill_target(connection_id)
        if isinstance(target, SqlError):
            self._reply_error(target)
            return
        if query_only:
            await target.cancel_query()
            self._reply_ok()
            return
        if target is self:
            self._reply_ok()
            raise _self_killed()
        await target.halt()
        self._reply_ok()

    async def _packet_kills(self, payload: bytes, relay: Relay) -> tuple[bytes, bool]:
        """Carry out the KILL statements of a multi-statement packet, in order, and put a
        stand-in for each in the packet: ``DO 0`` (an OK, as KILL answers) when it succeeded,
        a ``SIGNAL`` of its error (1094) when not -- which also stops the shard there, as a
        failed KILL stops MariaDB; the kills after it are not carried out. Returns the packet
        (identity rewrites applied too) and whether the session killed itself (it ends once
        the answer is relayed). The kills happen before the packet reaches the shard."""
        sql = payload[1:].decode("utf-8", "surrogateescape")
        offsets = utf8_offsets(sql, [at for kill in relay.kills for at in (kill.start, kill.end)])
        splices = list(relay.rewrite)
        killed_self = failed = False
        for index, kill in enumerate(relay.kills):
            standin = b"DO 0"
            target = self._kill_target(kill.connection_id) if not failed else None
            if isinstance(target, SqlError):
                failed = True
                standin = b"SIGNAL SQLSTATE '%s' SET MYSQL_ERRNO = %d, MESSAGE_TEXT = %s" % (
                    target.sqlstate.encode(),
                    target.errno,
                    sql_string(target.message),
                )
            elif target is self:
                killed_self = killed_self or not kill.query_only
            elif target is not None and kill.query_only:
                await target.cancel_query()
            elif target is not None:
                await target.halt()
            text = standin if kill.last else standin + b";"
            splices.append(Splice(offsets[2 * index], offsets[2 * index + 1], text))
        splices.sort(key=lambda splice: splice.start)
        return apply_splices(payload, tuple(splices), base=1), killed_self

    async def cancel_query(self) -> None:
        """KILL QUERY: ask the shards to interrupt this session's running statement, on every
        backend connection it runs on (a sharded statement's partitions included)."""
        if self.link.interrupt() or self.activity.command == "Sleep":
            return
        conns = self.sharded.source.running()
        if self.link.conn is not None:
            conns.append(self.link.conn)
        await asyncio.gather(*(self._kill_query(conn) for conn in conns))

    async def _kill_query(self, conn: BackendConnection) -> None:
        """KILL QUERY for ``conn``'s thread, sent as the same backend account from a
        connection of its own. The session's pooled connection stays leased until the KILL
        has reached the shard: given back meanwhile, it could be running another session's
        statement when the KILL arrives."""
        link = self.link
        ours = conn is link.conn
        if ours:
            link.killing += 1
        try:
            try:
                killer = await BackendConnection.connect(
                    conn.target, timeout=self.ctx.config.server.backend_connect_timeout
                )
            except BackendError as exc:
                log.warning("KILL QUERY for connection %d failed: %s", self.connection_id, exc)
                return
            try:
                await killer.command(b"\x03" + f"KILL QUERY {conn.thread_id}".encode())
            except BackendError:
                pass
            finally:
                await killer.quit()
        finally:
            if ours:
                link.killing -= 1
                if not link.killing and self.activity.command == "Sleep" and not link.closed:
                    link.release()  # what the command loop held back, the command being over

    def idle_limit(self, configured: float) -> float:
        """How long the session may sit idle before it is disconnected: the configured
        ``idle_timeout``, or the session's ``wait_timeout`` when the client set a shorter one
        (MariaDB closes such a session itself; the shard closing only the backend connection
        would go unnoticed). 0: no limit."""
        literal = self.link.state.variables.get("wait_timeout")
        try:
            wait = float(literal) if literal is not None else 0.0
        except ValueError:
            wait = 0.0
        if wait > 0 and (not configured or wait < configured):
            return wait
        return configured

    def disconnect_idle(self) -> None:
        """idle_timeout: tell the client why (MySQL 8's 4031), then close both sides."""
        self._send_error_quietly(
            sql_error(
                ErrorCode.CLIENT_INTERACTION_TIMEOUT,
                "The client was disconnected by the server because of inactivity. See "
                "wait_timeout and interactive_timeout for configuring this behavior.",
            ),
            seq=0,
        )
        log.info("connection %d: idle for too long, disconnected", self.connection_id)
        self.kill()

    # -- draining (proxy/server.py) -------------------------------------------------------------

    def _holds_anything(self) -> bool:
        """Whether the backend connection has anything of the session's on it (a
        transaction, locks, temporary tables, variables, prepared statements), or a
        transaction the proxy runs on a sharded database has branches."""
        tx = self.sharded.tx
        return self.link.bound() or (tx is not None and bool(tx.branches))

    def _waiting(self) -> bool:
        """Logged in and waiting for the client's next command (nothing of its own running)."""
        return self.client.fast is not None and not self.client.hold

    def drain(self) -> None:
        """The server is draining: waiting for a command with nothing open, the session ends
        now; otherwise it goes on until it has nothing open (the command loop checks before
        each command) or is cut off."""
        if self._waiting() and not self._holds_anything():
            self.shut_down()

    async def cut_off(self) -> None:
        """drain_timeout has passed: waiting for a command, the session ends now (the shard
        rolls back what it had open); running a statement, the statement is interrupted on its
        shard and the session ends once that is answered."""
        self.cut = True
        if self._waiting():
            self.shut_down()
        elif self.activity.command != "Sleep":
            await self.cancel_query()

    def shut_down(self) -> None:
        """End the session with 1053, sent as the answer to the client's next command
        (sequence id 1: the client reads it when it next asks), and close the client's
        connection; the task then closes the backend connection with COM_QUIT (the shard
        rolls back whatever was still open)."""
        self._send_error_quietly(SHUTDOWN, seq=1)
        log.debug("connection %d closed: server shutting down", self.connection_id)
        self.killed = True
        self.client.close()

    def _client_gone(self) -> None:
        """The client left. A statement waiting for a backend connection is not run; one
        running on the shard is interrupted there (KILL QUERY): MariaDB would go on with it
        until it next wrote to the connection, holding a pool slot for a client that is gone
        (and the work of a tenant nobody waits for)."""
        if self.activity.command == "Sleep":
            self.link.interrupt()
            return
        in_background(self.cancel_query())

    def kill(self) -> None:
        """KILL CONNECTION from another session: close both sides now (:meth:`halt` first
        for a session that may be running a sharded statement)."""
        self.killed = True
        self.link.interrupt()
        self.link.drop()
        self.client.close()

    async def halt(self) -> None:
        """KILL CONNECTION: a sharded statement running on partitions other than the
        session's own connection is interrupted there (KILL QUERY, awaited: once the KILL is
        answered the statement cannot commit any more, as on MariaDB), then :meth:`kill`.
        Left running, a write to several partitions waiting for a row lock went on to
        commit once the lock was released, after its connection was killed."""
        if self.activity.command != "Sleep":
            self.killed = True
            self.client.close()  # (first: the interrupted statement's error is not its answer)
            running = self.sharded.source.running()
            await asyncio.gather(*(self._kill_query(conn) for conn in running))
        self.kill()

    async def _account_statement(self, text: str) -> None:
        assert self.account is not None
        actor = Actor(self.account, self.client_ip, self.current_db)
        try:
            reply = await execute_account_statement(
                self.ctx.accounts,
                text,
                actor,
                self._table_exists,
                self.ctx.mirrors,
                self.link.state.lex_mode,
            )
        except SqlError as error:
            # a 1064 names the shard's server, as the analysis's do
            self._reply_error(worded_for(error, server_name(self.link.state.flavor)))
            return
        if isinstance(reply, ResultReply):
            self._write_resultset([reply.column], [[row] for row in reply.rows])
            return
        self.notes = [("Note", code, text) for code, text in reply.notes]
        self._reply_ok(warnings=len(self.notes))

    async def _table_exists(self, database: str, table: str) -> bool:
        """GRANT on a table: ask the database's shard, through the caller's own backend login
        there (the caller is that database's administrator, whose mirror sees every table); on
        a sharded database, a logical table of the catalog or a view (physical database 0's)."""
        snapshot = self.ctx.snapshot()
        found = snapshot.database(database)
        if found is None or not _valid_utf8(table):
            # (a name that is not UTF-8 -- bytes the client sent, kept as surrogates -- names
            # no table, and would not even encode into the query)
            return False
        if found.sharded and snapshot.table(database, table) is not None:
            return True  # one of its logical tables
        # (a sharded database's other names: physical database 0's views, never its physical
        # tables of split tables)
        listing = "VIEWS" if found.sharded else "TABLES"
        try:
            assert self.account is not None
            conn = await self.ctx.mirrors.connect(
                self.ctx.snapshot(), self.account, database, True, self.capabilities, self.charset
            )
        except BackendError as exc:
            raise sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}") from None
        try:
            result = await conn.query(
                f"{OWN_STATEMENT}SELECT 1 FROM information_schema.{listing} WHERE TABLE_SCHEMA = "
                f"{quote_string(found.physical_name)} AND TABLE_NAME = {quote_string(table)}"
            )
            return bool(result.rows)
        except (BackendError, BackendQueryError) as exc:
            raise sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}") from None
        finally:
            await conn.quit()

    async def _change_user(self, payload: bytes) -> None:
        """COM_CHANGE_USER: a new session on this connection, through the login path again
        (login.py: audit, metrics, lockout, throttle); a failure closes the connection."""
        await self.sharded.close()
        await self.link.leave()
        self.link.reset()
        self.prepared.clear()
        self._definer_columns.clear()
        self.notes = []
        self.fast.area = None
        self.account = None
        self.current_db = None
        await change_user(self.ctx, self, payload, self._next_seq)


def _self_killed() -> FatalError:
    """A session's KILL of itself: MySQL answers with an error as the connection goes away."""
    return FatalError(
        sql_error(ErrorCode.QUERY_INTERRUPTED, "Query execution was interrupted"), "killed"
    )


def _analyze_payload(
    payload: bytes, db: str | None, mode: LexMode, flavor: ServerFlavor | None
) -> tuple[list[Statement], str, str]:
    """Decode and classify a packet's SQL (run in a worker thread)."""
    sql = _decode(payload[1:])
    statements, digest = analyze_with_digest(sql, db, mode, flavor)
    return statements, digest, sql


def _valid_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _note_bytes(value: str | None, codec: str | None) -> bytes | None:
    """A note's value as MariaDB sends it, in the client's character set (``codec``); a text
    read from the shard's own SHOW WARNINGS keeps its bytes (held as surrogates when they
    were not UTF-8)."""
    if value is None:
        return None
    try:
        return value.encode(codec or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return value.encode("utf-8", "surrogateescape")


def _starts_area(command: Command, relayed: ResponseScanner | None) -> bool:
    """Whether a statement relayed to the session's own connection may have started a new
    diagnostics area there, as MariaDB starts one for a statement that names a table or
    raises a condition (one that does neither -- ``SELECT 1``, ``SET @a = 1``, SHOW
    WARNINGS itself -- keeps the last one's): one that failed, or names a table (its
    privileges), or not a text statement. (The warning of a statement that names no table,
    ``SELECT CAST('1x' AS SIGNED)``, is not seen here: the area stays the other
    partition's.)"""
    if not isinstance(command, Query) or relayed is None or relayed.error:
        return True
    return any(st.requirements or st.reads_information_schema for st in command.statements)


# A statement that reads the diagnostics area without SHOW WARNINGS / ERRORS.
_READS_DIAGNOSTICS = re.compile(r"warning_count|error_count|\bDIAGNOSTICS\b", re.IGNORECASE)
# Its last alternative in lower-cased ASCII text (a literal first: a fast search).
_DIAGNOSTICS_WORD = re.compile(r"diagnostics(?!\w)(?<!\wdiagnostics)")
# reads_diagnostics' slices, and how far each reads into the next (past the longest match and
# the character after it).
DIAGNOSTICS_SLICE = 32 * 1024
_DIAGNOSTICS_OVERLAP = 16


def reads_diagnostics(sql: str) -> bool:
    """Whether ``_READS_DIAGNOSTICS`` matches in ``sql``, read one slice at a time (each with
    the character before it and the 16 after it; a match at a slice's end, where the slice's
    end may have stood for the text's, is the next slice's to find): an ASCII slice
    lower-cased and searched for the words as literals, another by the pattern if it holds
    an ``_`` or a ``g`` (no other character matches those, case blind), which reads every
    character slowly (0.5-2 s for 16 MB, in one call)."""
    n = len(sql)
    for at in range(0, n, DIAGNOSTICS_SLICE):
        end = min(n, at + DIAGNOSTICS_SLICE + _DIAGNOSTICS_OVERLAP)
        start = max(0, at - 1)
        part = sql[start:end]
        if part.isascii():
            low = part.lower()
            if "warning_count" in low or "error_count" in low:
                return True
            found = _DIAGNOSTICS_WORD.search(low, at - start)
        elif "_" in part or "g" in part or "G" in part:  # (what every match holds)
            found = _READS_DIAGNOSTICS.search(part, at - start)
        else:
            continue
        if found is not None and (end == n or found.end() < len(part)):
            return True
    return False


def _leaves_found_rows(command: Query, relayed: ResponseScanner | None) -> bool:
    """Whether ``command``, relayed to the session's own connection, left FOUND_ROWS() as it
    was: none of its statements sets it (``Statement.counts_found_rows``, the analysis's
    reading of MariaDB's rules), or its one statement failed (MariaDB then leaves it)."""
    if len(command.statements) == 1 and relayed is not None and relayed.error:
        return True
    return not any(statement.counts_found_rows for statement in command.statements)


def _several_results(command: Command) -> bool:
    """Whether the answer to ``command`` may have several result sets: a multi-statement
    packet, a CALL."""
    if not isinstance(command, Query):
        return False
    return len(command.statements) > 1 or any(calls(s) for s in command.statements)


def renamed_answer(
    payloads: list[bytes], columns: Callable[[bytes], bytes], capabilities: int
) -> list[bytes]:
    """A whole text-protocol answer (its packets, every result set of it) with each column
    definition passed through ``columns``."""
    out = list(payloads)
    index, count = 0, len(out)
    while index < count:
        first = out[index][:1]
        index += 1
        if first in (b"\x00", b"\xff", b"\xfb", b"\xfe", b""):
            continue
        defs, _ = read_lenenc_int(out[index - 1], 0)
        for at in range(index, min(index + (defs or 0), count)):
            out[at] = columns(out[at])
        index += (defs or 0) + (0 if capabilities & Capability.DEPRECATE_EOF else 1)
        while index < count and not (
            out[index][:1] in (b"\xfe", b"\xff") and len(out[index]) < 0xFFFFFF
        ):
            index += 1
        index += 1  # the result's terminator
    return out


def _terminates(payload: bytes) -> bool:
    """A result set's end: EOF (or the OK in its place) or an error."""
    return payload[:1] in (b"\xfe", b"\xff") and len(payload) < 0xFFFFFF
