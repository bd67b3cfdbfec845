"""One client connection: handshake, authentication, then the command loop.

Linear ``async def`` code. Fatal conditions (failed login, protocol violations, a client that
goes away) are raised as exceptions and turned into an ERR packet plus close in exactly one
place, ``Session.run``. Per-statement refusals are ordinary ERR replies and the session goes on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auth.accounts import Actor
from auth.catalog import CatalogError, CatalogSnapshot, LoginLock
from auth.errors import (
    ErrorCode,
    SqlError,
    access_denied,
    account_blocked,
    sql_error,
    user_limit_reached,
)
from auth.model import Account
from auth.privileges import Requirement
from proxy.backend.connection import (
    RELAYED_CAPABILITIES,
    BackendConnection,
    BackendError,
    BackendQueryError,
    quote_string,
)
from proxy.backend.mirror import SHARD_REFUSALS, mirror_user, shard_refused
from proxy.ops.digest import DIGEST_COLUMNS, digest_table
from proxy.ops.logs import audit_login, bind_account
from proxy.plan.authorize import (
    AccountStatement,
    Allow,
    Caller,
    Decision,
    Deny,
    KillSession,
    ShowDatabases,
    ShowDigest,
    ShowProcesslist,
    UseDatabase,
    check_requirements,
    decide,
    default_database,
    resolve_database,
)
from proxy.session.account_statements import ResultReply, execute_account_statement
from proxy.session.authn import CACHING_SHA2, SUPPORTED_PLUGINS, AuthContext, run_plugin
from proxy.sql.analyze import Kind, Statement, analyze_with_digest, cached_shape
from proxy.sql.lexer import LexMode
from proxy.wire.packets import (
    FIELD_TYPE_LONGLONG,
    FIELD_TYPE_VAR_STRING,
    Capability,
    Command,
    ProtocolError,
    ServerStatus,
    build_auth_switch_request,
    build_err,
    build_handshake_v10,
    build_ok,
    build_text_resultset,
    is_ssl_request,
    parse_change_user,
    parse_handshake_response,
)
from proxy.wire.stream import (
    ClientConnection,
    ConnectionLost,
    PacketTooLarge,
    ResponseKind,
    ResponseScanner,
)

if TYPE_CHECKING:
    from proxy.server import ServerContext

log = logging.getLogger("shardgate.session")

# What the proxy advertises. Compression, LOCAL INFILE, DEPRECATE_EOF, session tracking and
# query attributes are deliberately absent: the proxy does not relay them faithfully.
SERVER_CAPABILITIES = RELAYED_CAPABILITIES | Capability.IGNORE_SPACE | Capability.CONNECT_ATTRS

UTF8MB4_GENERAL_CI = 45
# Character sets whose multi-byte sequences never contain ASCII bytes, so the proxy's lexer
# sees the same quotes and backslashes as the server. Clients asking for others at login are
# served in utf8mb4.
_SAFE_CHARSET_IDS = {8, 11, 33, 45, 46, 47, 48, 63, 83, 192, 224, 255}
_STATUS_AUTOCOMMIT = int(ServerStatus.AUTOCOMMIT)
_COM_QUERY = int(Command.COM_QUERY)
_COM_STMT_EXECUTE = int(Command.COM_STMT_EXECUTE)
MAX_REMEMBERED_SETTINGS = 64
_SET = re.compile(r"\s*SET\b", re.IGNORECASE)
_SHOW_WARNINGS = re.compile(r"\s*SHOW\s+WARNINGS\s*;?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PreparedStatement:
    requirements: tuple[Requirement, ...]
    digest: str  # the SQL text as the query digest shows it


class FatalError(Exception):
    """Ends the session: the error (if any) is sent, then the connection is closed."""

    def __init__(self, error: SqlError | None, log_message: str = "") -> None:
        super().__init__(log_message or (error.message if error else "connection closed"))
        self.error = error


@dataclass
class Activity:
    """What SHOW PROCESSLIST shows of a session."""

    command: str = "Sleep"
    since: float = 0.0
    info: str | None = None


class Session:
    def __init__(self, ctx: ServerContext, client: ClientConnection, connection_id: int) -> None:
        self.ctx = ctx
        self.client = client
        self.connection_id = connection_id
        peer: Any = client.get_extra_info("peername") or ("0.0.0.0", 0)
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
        self.lex_mode = LexMode()
        self.backend: BackendConnection | None = None
        self.prepared: dict[int, PreparedStatement] = {}
        self.notes: list[tuple[int, str]] = []
        self.settings: list[bytes] = []
        self.activity = Activity(since=time.monotonic())
        self.killed = False
        self.started = time.time()
        # The snapshot the account was last checked against (see command_loop and _fast).
        self._checked_snapshot: CatalogSnapshot | None = None
        # Requirement tuples (by identity) already found satisfied, valid for one
        # (snapshot, account, current database); the tuple is kept so its id stays unique.
        self._allowed_cache: dict[int, tuple[Requirement, ...]] = {}
        self._allowed_for: tuple[object, object, str | None] = (None, None, None)
        # The fast command in flight: its digest text and when it was sent.
        self._digest = ""
        self._started = 0.0
        self.attempted_user = ""  # the user name of the login in progress, for the audit log
        self.cancelled_at = 0.0  # activity.since of the statement query_timeout interrupted

    # -- the one place fatal errors are handled ------------------------------------------------

    async def run(self) -> None:
        try:
            try:
                await asyncio.wait_for(self.login(), self.ctx.config.server.handshake_timeout)
            except FatalError as exc:
                self._login_failed(exc)
                raise
            self._login_ok()
            await self.command_loop()
        except FatalError as exc:
            if exc.error is not None:
                self._send_error_quietly(exc.error)
            log.info("connection %d closed: %s", self.connection_id, exc)
        except TimeoutError:
            log.info("connection %d: handshake timeout", self.connection_id)
        except (ConnectionLost, ConnectionError):
            pass
        except PacketTooLarge:
            self._send_error_quietly(
                sql_error(ErrorCode.NET_PACKET_TOO_LARGE, "Got a packet bigger than allowed")
            )
        except ProtocolError:
            self._send_error_quietly(sql_error(ErrorCode.HANDSHAKE, "Bad handshake"))
        finally:
            await self.close()

    def _login_ok(self) -> None:
        assert self.account is not None
        self.ctx.metrics.logins_ok.inc()
        account = f"{self.user}@'{self.account.host}'"
        bind_account(account)
        audit_login(True, account, self.client_ip)

    def _login_failed(self, exc: FatalError) -> None:
        self.ctx.metrics.logins_failed.inc()
        if exc.error is not None:
            self.ctx.metrics.denied(exc.error.errno)
        audit_login(False, repr(self.attempted_user), self.client_ip, str(exc))

    def _send_error_quietly(self, error: SqlError, seq: int | None = None) -> None:
        try:
            self.client.write(self._next_seq if seq is None else seq, self._err(error))
        except Exception:  # the client may already be gone
            pass

    async def close(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            await backend.quit()
        try:
            if not self.client.is_closing():
                await asyncio.wait_for(self.client.drain(), 1)
        except (ConnectionLost, TimeoutError):
            pass
        self.client.close()
        self.ctx.sessions.pop(self.connection_id, None)

    # -- handshake and authentication ------------------------------------------------------------

    _next_seq = 0

    def _err(self, error: SqlError) -> bytes:
        return build_err(
            errno=error.errno,
            sqlstate=error.sqlstate,
            message=error.message,
            capabilities=self.capabilities or Capability.PROTOCOL_41,
        )

    async def _read_login_packet(self) -> bytes:
        seq, payload = await self.client.read(self.ctx.config.server.max_handshake_packet)
        self._next_seq = (seq + 1) & 0xFF
        return payload

    def _write(self, payload: bytes) -> None:
        self._next_seq = self.client.write(self._next_seq, payload)

    async def login(self) -> None:
        server = self.ctx.config.server
        scramble = _make_scramble()
        capabilities = SERVER_CAPABILITIES
        if self.ctx.ssl_context is not None:
            capabilities |= Capability.SSL
        self._write(
            build_handshake_v10(
                connection_id=self.connection_id,
                server_version=self.ctx.server_version,
                scramble=scramble,
                capabilities=capabilities,
                charset=UTF8MB4_GENERAL_CI,
                status=_STATUS_AUTOCOMMIT,
                auth_plugin=server.auth_plugin,
            )
        )
        await self.client.drain()
        payload = await self._read_login_packet()
        if is_ssl_request(payload):
            if self.ctx.ssl_context is None:
                raise FatalError(sql_error(ErrorCode.HANDSHAKE, "Bad handshake"), "SSL not offered")
            await self._start_tls(self.ctx.ssl_context)
            payload = await self._read_login_packet()
        response = parse_handshake_response(payload)
        if not response.capabilities & Capability.PROTOCOL_41:
            raise FatalError(sql_error(ErrorCode.HANDSHAKE, "Bad handshake"), "pre-4.1 client")
        self.capabilities = response.capabilities & capabilities
        self.charset = response.charset if response.charset in _SAFE_CHARSET_IDS else 45
        if server.require_tls and not self.tls:
            raise FatalError(
                sql_error(
                    ErrorCode.SECURE_TRANSPORT_REQUIRED,
                    "Connections using insecure transport are prohibited while "
                    "--require_secure_transport=ON.",
                )
            )
        database = response.database if self.capabilities & Capability.CONNECT_WITH_DB else None
        await self._authenticate(
            response.username,
            response.auth_response,
            response.auth_plugin or server.auth_plugin,
            scramble,
        )
        self._enter_database(database)
        # Check the account's connection limit and take the slot with no await in between, so
        # concurrent logins of one account cannot both pass the check.
        self._check_user_limit()
        self.ctx.sessions[self.connection_id] = self
        self._write(build_ok(capabilities=self.capabilities, status=_STATUS_AUTOCOMMIT))
        await self.client.drain()
        # The login itself is logged once, on the audit logger (_login_ok).

    async def _start_tls(self, context: ssl.SSLContext) -> None:
        try:
            await self.client.start_tls(context)
        except (ssl.SSLError, OSError, ConnectionLost) as exc:
            raise FatalError(None, f"TLS handshake failed: {exc}") from None
        self.tls = True

    async def _authenticate(
        self, username: str, auth_response: bytes, plugin: str, scramble: bytes
    ) -> None:
        """Bind the session to the matching account, or raise 1045 (and close)."""
        self.attempted_user = username
        snapshot = self.ctx.snapshot()
        account = snapshot.login_account(username, self.client_ip)
        using_password = bool(auth_response) and auth_response != b"\x00"
        denied = FatalError(
            access_denied(username, self.client_ip, using_password),
            f"access denied for {username!r} from {self.client_ip}",
        )
        if plugin not in SUPPORTED_PLUGINS:
            # Ask the client to use the server's default plugin instead, with the same scramble.
            plugin = self.ctx.config.server.auth_plugin
            self._write(build_auth_switch_request(plugin, scramble))
            await self.client.drain()
            auth_response = await self._read_login_packet()
            using_password = bool(auth_response)
            denied = FatalError(
                access_denied(username, self.client_ip, using_password), denied.args[0]
            )
        if account is None:
            raise denied
        # A locked account is refused before its password is even looked at (so a lock also
        # stops guessing), whatever the password.
        if account.locked_at(time.time()):
            assert account.locked_until is not None
            raise self._blocked(username, account, account.locked_until)
        if (
            plugin == CACHING_SHA2
            and self.ctx.sha2_cache.get(account) is None
            and not (self.tls or self.ctx.config.server.auth_plugin == CACHING_SHA2)
        ):
            # No cached digest and full authentication not offered: switch to native.
            plugin = "mysql_native_password"
            self._write(build_auth_switch_request(plugin, scramble))
            await self.client.drain()
            auth_response = await self._read_login_packet()
        auth_ctx = AuthContext(
            scramble=scramble, tls=self.tls, keys=self.ctx.rsa_keys, sha2_cache=self.ctx.sha2_cache
        )
        run = run_plugin(plugin, account, auth_response, auth_ctx)
        accepted = False
        try:
            step = next(run)
            while True:
                self._write(step.payload)
                await self.client.drain()
                reply = await self._read_login_packet() if step.reply else b""
                step = run.send(reply)
        except StopIteration as done:
            accepted = bool(done.value)
        if not accepted:
            # The address matched this account and the password was wrong: the only failure
            # that counts towards a lock (an unknown user or address locks nothing).
            await self._count_login_failure(username, account)
            raise denied
        if account.failed_logins or account.locked_until is not None:
            # Only then: a normal login writes nothing to the catalog.
            lock = await self._catalog_login_call(
                self.ctx.catalog.login_succeeded,
                account.id,
                self.ctx.config.server.login_lock_seconds,
            )
            if lock is not None:
                raise self._blocked(username, account, lock.locked_until)
        self.account = account
        self.user = username

    def _blocked(self, username: str, account: Account, locked_until: float) -> FatalError:
        # MySQL 8's 3955 rather than 1045: it tells the account's real user why the right
        # password fails and what to ask for, and drivers know the number. It reveals that the
        # account exists only to a client whose address matches it and that named it, and only
        # after that client (or someone like it) made it fail N times -- which the audit log
        # records. Used for every refusal of a locked account, on login and COM_CHANGE_USER.
        server = self.ctx.config.server
        return FatalError(
            account_blocked(
                username,
                self.client_ip,
                server.login_lock_seconds,
                locked_until - time.time(),
                server.login_max_failures or account.failed_logins,
            ),
            f"account {account.name} is locked after failed logins",
        )

    async def _count_login_failure(self, username: str, account: Account) -> None:
        """Record a wrong password in the catalog; raise 3955 if the account is locked now."""
        server = self.ctx.config.server
        if not server.login_max_failures:
            return
        lock = await self._catalog_login_call(
            self.ctx.catalog.record_login_failure,
            account.id,
            server.login_max_failures,
            server.login_lock_seconds,
            self.client_ip,
        )
        if lock is not None:
            raise self._blocked(username, account, lock.locked_until)

    async def _catalog_login_call(
        self, call: Callable[..., LoginLock | None], *args: Any
    ) -> LoginLock | None:
        """A login bookkeeping write, off the event loop. An unreachable catalog does not
        stop logins (nodes keep serving on their snapshot); it is logged."""
        try:
            return await asyncio.to_thread(call, *args)
        except CatalogError as error:
            log.warning("connection %d: login bookkeeping failed: %s", self.connection_id, error)
            return None

    def _check_user_limit(self) -> None:
        """1226 if the account already has its max_user_connections sessions on this node."""
        account = self.account
        assert account is not None
        limit = account.max_user_connections or self.ctx.config.server.max_user_connections
        if not limit:
            return
        open_now = sum(
            1
            for other in self.ctx.sessions.values()
            if other is not self and other.account is not None and other.account.id == account.id
        )
        if open_now >= limit:
            raise FatalError(
                user_limit_reached(self.user, limit),
                f"{account.name} has {open_now} connections (max_user_connections {limit})",
            )

    def _enter_database(self, requested: str | None) -> None:
        """The login database: as named (1044 before 1049), else the only usable one."""
        assert self.account is not None
        snapshot = self.ctx.snapshot()
        if requested:
            resolved = resolve_database(snapshot, self._caller(), requested)
            if isinstance(resolved, SqlError):
                raise FatalError(resolved)
            self.current_db = resolved
        else:
            self.current_db = default_database(snapshot, self.account)

    def _caller(self) -> Caller:
        assert self.account is not None
        return Caller(self.account, self.client_ip, self.current_db)

    # -- the command loop ------------------------------------------------------------------------

    async def command_loop(self) -> None:
        max_packet = self.ctx.config.server.max_packet
        client = self.client
        while True:
            self.activity = Activity("Sleep", time.monotonic())
            # While the task waits, simple commands are served from the fast hook.
            client.fast = self._fast
            try:
                seq, payload = await client.read(max_packet)
            finally:
                client.fast = None
            if self.killed:
                raise FatalError(None, "killed")
            self._next_seq = (seq + 1) & 0xFF
            if not payload:
                raise FatalError(sql_error(ErrorCode.NET_READ_ERROR, "Empty packet"))
            command = payload[0]
            if command == Command.COM_QUIT:
                return
            # The account may have been dropped, or its grants changed, since the last command.
            snapshot = self.ctx.snapshot()
            assert self.account is not None
            current = snapshot.account(self.account.id)
            if current is None:
                raise FatalError(
                    sql_error(ErrorCode.ACCESS_DENIED, "Your account has been dropped"),
                    "account dropped",
                )
            self.account = current
            if snapshot is not self._checked_snapshot and self.backend is not None:
                await self.ctx.mirrors.follow(self.backend, snapshot, current, self.current_db)
            self._checked_snapshot = snapshot
            handler = self._handlers.get(command)
            if handler is None:
                self._reply_error(sql_error(ErrorCode.UNKNOWN_COM, "Unknown command"))
            else:
                await handler(self, payload, snapshot)
            await self.client.drain()
            if self.ctx.draining:
                raise FatalError(None, "server shutting down")

    # -- the fast path ---------------------------------------------------------------------------

    def _fast(self, packet: bytes) -> bool:
        """The fast hook (see ClientConnection): serve a command without waking the task.

        Only a COM_QUERY whose one statement is a plain query or transaction statement, or a
        COM_STMT_EXECUTE, whose privileges were already checked against the current snapshot
        (the same check, cached by requirement tuple), on a live backend connection. It makes
        exactly the decision the command loop would make; anything else returns False and
        the command loop handles the packet.
        """
        backend = self.backend
        if (
            backend is None
            or backend.broken
            or packet[3] != 0
            or self.notes
            or self.killed
            or self.ctx.draining
        ):
            return False
        snapshot = self.ctx.snapshot()
        if snapshot is not self._checked_snapshot:
            return False  # the command loop checks the account against the new snapshot
        command = packet[4]
        if command == _COM_STMT_EXECUTE:
            prepared = self.prepared.get(int.from_bytes(packet[5:9], "little"))
            if prepared is None:
                return False
            requirements = prepared.requirements
            digest = prepared.digest
            kind_name = "execute"
            activity = self.activity
            activity.command = "Execute"
            activity.since = time.monotonic()
        elif command == _COM_QUERY:
            sql = packet[5:].decode("utf-8", "surrogateescape")
            shortcut = cached_shape(sql, self.current_db)
            if shortcut is None:
                statements, digest = analyze_with_digest(sql, self.current_db, self.lex_mode)
                if len(statements) != 1 or statements[0].text != sql:
                    return False
                statement = statements[0]
            elif len(sql.strip(" \t\r\n")) != len(sql):
                return False  # the relayed text would differ from what the client sent
            else:
                digest, statement = shortcut
            kind = statement.kind
            kind_name = kind.value
            if kind is not Kind.QUERY and (
                kind is not Kind.SESSION
                or statement.lex_mode is not None
                or statement.charset is not None
                or _SET.match(sql)
            ):
                return False
            requirements = statement.requirements
            activity = self.activity
            activity.command = "Query"
            activity.since = time.monotonic()
            activity.info = sql
        else:
            return False
        if requirements and not self._allowed(requirements, snapshot):
            return False
        self.ctx.metrics.statement(kind_name)
        backend.write_raw(packet)
        self.client.hold = True
        self._digest = digest
        self._started = time.perf_counter()
        backend.start_relay(self.client, ResponseKind.QUERY, self._fast_done)
        return True

    def _allowed(self, requirements: tuple[Requirement, ...], snapshot: CatalogSnapshot) -> bool:
        """check_requirements, remembered per requirement tuple for this grant view."""
        cache = self._allowed_cache
        seen_snapshot, seen_account, seen_db = self._allowed_for
        if (
            seen_snapshot is not snapshot
            or seen_account is not self.account
            or seen_db != self.current_db
        ):
            cache.clear()
            self._allowed_for = (snapshot, self.account, self.current_db)
        held = cache.get(id(requirements))
        if held is requirements:
            return True
        if check_requirements(requirements, snapshot, self._caller()) is not None:
            return False
        if len(cache) >= 1024:
            cache.clear()
        cache[id(requirements)] = requirements
        return True

    def _fast_done(self, scanner: ResponseScanner, error: BackendError | None) -> None:
        activity = self.activity
        activity.command = "Sleep"
        activity.since = time.monotonic()
        activity.info = None
        backend = self.backend
        if error is not None:
            self.backend = None
            if backend is not None:
                self.ctx.metrics.backend_error(backend.target.shard)
            log.warning("connection %d: %s", self.connection_id, error)
            self._next_seq = 1
            self._reply_error(_backend_lost(error))
        elif backend is not None:
            self._record(backend, self._digest, self._started, scanner)
        if self.ctx.draining:
            self.client.close()  # the command loop sees the connection end and cleans up
        self.client.release()

    def _reply_error(self, error: SqlError) -> None:
        self.ctx.metrics.denied(error.errno)
        self._write(self._err(error))

    def _reply_ok(self) -> None:
        status = self.backend.status if self.backend is not None else _STATUS_AUTOCOMMIT
        self._write(build_ok(capabilities=self.capabilities, status=status))

    # COM_QUERY ------------------------------------------------------------------------------

    async def _com_query(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        raw = payload[1:]
        sql = _decode(raw)
        self.activity = Activity("Query", time.monotonic(), sql)
        # Notes of the proxy's own statements (3162 / 3163) are shown by the next SHOW WARNINGS.
        notes, self.notes = self.notes, []
        if notes and _SHOW_WARNINGS.match(sql):
            self.notes = notes
            self._show_local_warnings()
            return
        statements, digest = analyze_with_digest(sql, self.current_db, self.lex_mode)
        if not statements:
            self._reply_error(sql_error(ErrorCode.EMPTY_QUERY, "Query was empty"))
            return
        for statement in statements:
            self.ctx.metrics.statement(statement.kind.value)
        caller = self._caller()
        if len(statements) == 1:
            decision = decide(statements[0], snapshot, caller)
            if isinstance(decision, Allow):
                text = (
                    raw
                    if statements[0].text == sql
                    else statements[0].text.encode("utf-8", "surrogateescape")
                )
                await self._relay_query(text, statements[0], digest)
            else:
                await self._local(decision, statements[0], snapshot)
            return
        # A multi-statement packet is authorized whole, or refused whole.
        for statement in statements:
            if statement.kind not in (Kind.QUERY, Kind.SESSION, Kind.REFUSED) or (
                statement.lex_mode is not None
            ):
                self._reply_error(
                    sql_error(
                        ErrorCode.NOT_SUPPORTED_YET,
                        "This statement cannot be combined with others in one packet: "
                        f"{statement.text[:60]}",
                    )
                )
                return
            decision = decide(statement, snapshot, caller)
            if isinstance(decision, Deny):
                self._reply_error(decision.error)
                return
        text = ";\n".join(s.text for s in statements).encode("utf-8", "surrogateescape")
        await self._relay_query(text, None, digest)

    async def _relay_query(self, text: bytes, statement: Statement | None, digest: str) -> None:
        backend = await self._backend_or_error()
        if backend is None:
            return
        backend.send(b"\x03" + text)
        started = time.perf_counter()
        scanner = await self._relay(backend, ResponseKind.QUERY)
        if scanner is not None:
            self._record(backend, digest, started, scanner)
        if scanner is None or scanner.error or statement is None:
            return
        if statement.lex_mode is not None:
            self.lex_mode = statement.lex_mode
        # Only settings that read no table are replayed: a replay is not authorized again.
        if (
            statement.kind is Kind.SESSION
            and _SET.match(statement.text)
            and not statement.requirements
            and not statement.reads_information_schema
        ):
            self._remember_setting(text)

    def _record(
        self, backend: BackendConnection, digest: str, started: float, scanner: ResponseScanner
    ) -> None:
        """A relayed statement is complete: the query digest and the shard's latency."""
        seconds = time.perf_counter() - started
        self.ctx.digest.record(self.current_db, digest, seconds, scanner.rows)
        if scanner.error and scanner.errno in SHARD_REFUSALS:
            shard_refused(self.ctx.metrics, scanner.errno, self.current_db, digest)
        self.ctx.metrics.shard(backend.target.shard).latency.observe(seconds)

    def _remember_setting(self, text: bytes) -> None:
        """Session settings are replayed on every new backend connection (another tenant's
        shard after USE, or a reconnect), so the session keeps its character set, sql_mode
        and variables, and the proxy's lexer mode always matches the shard's."""
        if text in self.settings:
            self.settings.remove(text)
        self.settings.append(text)
        del self.settings[:-MAX_REMEMBERED_SETTINGS]

    async def _relay(
        self, backend: BackendConnection, kind: ResponseKind
    ) -> ResponseScanner | None:
        try:
            return await backend.relay(self.client, kind)
        except BackendError as exc:
            self.ctx.metrics.backend_error(backend.target.shard)
            self.backend = None
            log.warning("connection %d: %s", self.connection_id, exc)
            self._reply_error(_backend_lost(exc))
            return None

    async def _backend_or_error(self) -> BackendConnection | None:
        """The current database's backend connection, connecting if needed.

        A session with no current database still needs a backend for statements that touch
        no table (``SET NAMES``, ``SELECT 1``, ``SELECT DATABASE()``): it uses its mirrored
        account on the first database it may use, or, for an account that may use none, the
        shard's privilege-less usage account; either way with no default database.
        """
        if self.backend is not None and not self.backend.broken:
            return self.backend
        logical = self.current_db
        if logical is None:
            assert self.account is not None
            usable = self.ctx.snapshot().usable_databases(self.account.id)
            logical = usable[0] if usable else None
        try:
            backend = await self._connect_backend(logical, self.current_db is not None)
            for setting in self.settings:
                try:
                    await backend.query(setting.decode("utf-8", "surrogateescape"))
                except BackendQueryError as exc:
                    log.info(
                        "connection %d: replaying a setting failed: %s", self.connection_id, exc
                    )
        except BackendError as exc:
            log.warning("connection %d: %s", self.connection_id, exc)
            self._reply_error(sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}"))
            return None
        self.backend = backend
        return backend

    async def _connect_backend(
        self, logical_db: str | None, select_database: bool
    ) -> BackendConnection:
        assert self.account is not None
        return await self.ctx.mirrors.connect(
            self.ctx.snapshot(),
            self.account,
            logical_db,
            select_database,
            self.capabilities,
            self.charset,
        )

    # Local actions ---------------------------------------------------------------------------

    async def _local(
        self, decision: Decision, statement: Statement, snapshot: CatalogSnapshot
    ) -> None:
        if isinstance(decision, Deny):
            self._reply_error(decision.error)
        elif isinstance(decision, UseDatabase):
            await self._use(decision.name)
        elif isinstance(decision, ShowDatabases):
            self._show_databases(decision.names, statement.text)
        elif isinstance(decision, ShowProcesslist):
            self._show_processlist(decision.full)
        elif isinstance(decision, ShowDigest):
            sources = [self.ctx.digest.entries]
            if self.ctx.worker is not None:  # the other worker processes' digests too
                sources += self.ctx.worker.peer_digests()
            self._write_resultset(list(DIGEST_COLUMNS), digest_table(decision.database, sources))
        elif isinstance(decision, KillSession):
            await self._kill(decision.connection_id, decision.query_only)
        elif isinstance(decision, AccountStatement):
            await self._account_statement(decision.text)
        else:  # pragma: no cover - Allow is handled by the caller
            raise AssertionError(decision)

    async def _account_statement(self, text: str) -> None:
        assert self.account is not None
        actor = Actor(self.account, self.client_ip, self.current_db)
        try:
            reply = await execute_account_statement(
                self.ctx.accounts, text, actor, self._table_exists, self.ctx.mirrors
            )
        except SqlError as error:
            self._reply_error(error)
            return
        if isinstance(reply, ResultReply):
            self._write_resultset([reply.column], [[row] for row in reply.rows])
            return
        self.notes = list(reply.notes)
        status = self.backend.status if self.backend is not None else _STATUS_AUTOCOMMIT
        self._write(
            build_ok(capabilities=self.capabilities, status=status, warnings=len(self.notes))
        )

    async def _table_exists(self, logical_db: str, table: str) -> bool:
        """Ask the database's shard, through its own backend account."""
        database = self.ctx.snapshot().database(logical_db)
        if database is None:
            return False
        try:
            backend = await self._connect_backend(logical_db, select_database=False)
        except BackendError as exc:
            raise sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}") from None
        try:
            result = await backend.query(
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                f"{quote_string(database.physical_name)} AND TABLE_NAME = {quote_string(table)}"
            )
            return bool(result.rows)
        except (BackendError, BackendQueryError) as exc:
            raise sql_error(ErrorCode.SERVER_GONE, f"Backend unavailable: {exc}") from None
        finally:
            await backend.quit()

    def _show_local_warnings(self) -> None:
        rows: list[list[str | None]] = [
            ["Note", str(code), message] for code, message in self.notes
        ]
        self._write_resultset(["Level", "Code", "Message"], rows)

    async def _use(self, name: str) -> None:
        """Switch database: same shard -> COM_INIT_DB on the backend; else reconnect lazily."""
        snapshot = self.ctx.snapshot()
        database = snapshot.database(name)
        assert database is not None
        backend = self.backend
        if backend is not None and not backend.broken:
            assert self.account is not None
            if backend.target.shard == database.shard and backend.target.user == mirror_user(
                self.ctx.secret, self.account.id, database.physical_name
            ):
                backend.send(b"\x02" + database.physical_name.encode())
                scanner = await self._relay(backend, ResponseKind.SINGLE)
                if scanner is not None and not scanner.error:
                    self.current_db = name
                return
            # Another tenant's database: never reuse this backend account for it.
            self.backend = None
            self.prepared.clear()
            await backend.quit()
        self.current_db = name
        self._reply_ok()

    def _show_databases(self, names: tuple[str, ...], text: str) -> None:
        pattern = _like_pattern(text)
        shown = ["information_schema", *names]
        if pattern is not None:
            shown = [n for n in shown if pattern(n)]
        self._write_resultset(["Database"], [[n] for n in shown])

    def _write_resultset(self, columns: list[str], rows: list[list[str | None]]) -> None:
        types = [
            FIELD_TYPE_LONGLONG if c in ("Id", "Time", "Code") else FIELD_TYPE_VAR_STRING
            for c in columns
        ]
        status = self.backend.status if self.backend is not None else _STATUS_AUTOCOMMIT
        self._next_seq = self.client.write_many(
            self._next_seq,
            build_text_resultset(
                columns=list(zip(columns, types, strict=True)),
                rows=rows,
                capabilities=self.capabilities,
                status=status,
            ),
        )

    def _visible_sessions(self) -> list[Session]:
        """Own sessions; an administrator also sees every session in its database."""
        assert self.account is not None
        me = self.account
        visible = []
        for other in list(self.ctx.sessions.values()):
            if other.account is None:
                continue
            if other.account.id == me.id or (
                me.builtin == "admin"
                and me.owner_db is not None
                and other.current_db is not None
                and other.current_db.lower() == me.owner_db.lower()
            ):
                visible.append(other)
        return visible

    def _show_processlist(self, full: bool) -> None:
        now = time.monotonic()
        rows: list[list[str | None]] = []
        for other in sorted(self._visible_sessions(), key=lambda s: s.connection_id):
            info = other.activity.info
            if info is not None and not full:
                info = info[:100]
            if other is self:
                info = "SHOW FULL PROCESSLIST" if full else "SHOW PROCESSLIST"
            rows.append(
                [
                    str(other.connection_id),
                    other.user,
                    f"{other.client_ip}:{other.client_port}",
                    other.current_db,
                    "Query" if other is self else other.activity.command,
                    str(int(now - other.activity.since)),
                    "" if other.activity.command == "Sleep" and other is not self else "executing",
                    info if other.activity.command != "Sleep" or other is self else None,
                ]
            )
        self._write_resultset(
            ["Id", "User", "Host", "db", "Command", "Time", "State", "Info"], rows
        )

    async def _kill(self, connection_id: int, query_only: bool) -> None:
        target = self.ctx.sessions.get(connection_id)
        if target is None:
            self._reply_error(
                sql_error(ErrorCode.NO_SUCH_THREAD, f"Unknown thread id: {connection_id}")
            )
            return
        if target not in self._visible_sessions():
            self._reply_error(
                sql_error(ErrorCode.KILL_DENIED, f"You are not owner of thread {connection_id}")
            )
            return
        if query_only:
            await target.cancel_query()
            self._reply_ok()
            return
        self._reply_ok()
        if target is self:
            # MySQL answers a self-KILL with an error as the connection goes away.
            raise FatalError(
                sql_error(ErrorCode.QUERY_INTERRUPTED, "Query execution was interrupted"), "killed"
            )
        target.kill()

    async def cancel_query(self) -> None:
        """KILL QUERY: ask the backend to interrupt this session's running statement."""
        backend = self.backend
        if backend is None or self.activity.command == "Sleep":
            return
        try:
            killer = await BackendConnection.connect(
                backend.target, timeout=self.ctx.config.server.backend_connect_timeout
            )
        except BackendError as exc:
            log.warning("KILL QUERY for connection %d failed: %s", self.connection_id, exc)
            return
        try:
            await killer.command(b"\x03" + f"KILL QUERY {backend.thread_id}".encode())
        except BackendError:
            pass
        finally:
            await killer.quit()

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

    def kill(self) -> None:
        """KILL CONNECTION from another session: close both sides now."""
        self.killed = True
        if self.backend is not None:
            self.backend.close()
        self.client.close()

    # Other commands ----------------------------------------------------------------------------

    async def _com_init_db(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        name = _decode(payload[1:])
        resolved = resolve_database(snapshot, self._caller(), name)
        if isinstance(resolved, SqlError):
            self._reply_error(resolved)
        else:
            await self._use(resolved)

    async def _com_ping(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        self._reply_ok()

    async def _forward_single(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        """Commands answered with one packet (COM_SET_OPTION, COM_STATISTICS, COM_STMT_RESET)."""
        backend = await self._backend_or_error()
        if backend is None:
            return
        backend.send(payload)
        await self._relay(backend, ResponseKind.SINGLE)

    async def _com_stmt_prepare(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        sql = _decode(payload[1:])
        self.activity = Activity("Prepare", time.monotonic(), sql)
        self.ctx.metrics.statement("prepare")
        statements, digest = analyze_with_digest(sql, self.current_db, self.lex_mode)
        if len(statements) != 1:
            self._reply_error(
                sql_error(ErrorCode.PARSE, "Prepared statements take exactly one statement")
            )
            return
        statement = statements[0]
        # Queries and transaction/session statements (sysbench prepares BEGIN and COMMIT);
        # not those the proxy answers itself, nor changes of sql_mode or character set,
        # which the proxy must see as text to keep its lexer in step.
        if (
            statement.kind not in (Kind.QUERY, Kind.SESSION, Kind.REFUSED)
            or statement.lex_mode is not None
            or statement.charset is not None
        ):
            self._reply_error(
                sql_error(
                    ErrorCode.NOT_SUPPORTED_YET,
                    "This command is not supported in the prepared statement protocol yet",
                )
            )
            return
        decision = decide(statement, snapshot, self._caller())
        if isinstance(decision, Deny):
            self._reply_error(decision.error)
            return
        backend = await self._backend_or_error()
        if backend is None:
            return
        text = (
            payload[1:]
            if statement.text == sql
            else statement.text.encode("utf-8", "surrogateescape")
        )
        backend.send(b"\x16" + text)
        scanner = await self._relay(backend, ResponseKind.PREPARE)
        if scanner is not None and scanner.statement_id is not None:
            self.prepared[scanner.statement_id] = PreparedStatement(statement.requirements, digest)

    def _prepared_requirements(
        self, payload: bytes, name: str
    ) -> tuple[int, tuple[Requirement, ...] | None]:
        statement_id = int.from_bytes(payload[1:5], "little")
        prepared = self.prepared.get(statement_id)
        requirements = None if prepared is None else prepared.requirements
        if requirements is None:
            self._reply_error(
                sql_error(
                    ErrorCode.UNKNOWN_STMT_HANDLER,
                    f"Unknown prepared statement handler ({statement_id}) given to {name}",
                )
            )
        return statement_id, requirements

    async def _com_stmt_execute(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        self.activity = Activity("Execute", time.monotonic(), self.activity.info)
        self.ctx.metrics.statement("execute")
        await self._relay_prepared(payload, snapshot, "mysqld_stmt_execute", ResponseKind.QUERY)

    async def _com_stmt_fetch(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        await self._relay_prepared(payload, snapshot, "mysqld_stmt_fetch", ResponseKind.FETCH)

    async def _relay_prepared(
        self, payload: bytes, snapshot: CatalogSnapshot, name: str, kind: ResponseKind
    ) -> None:
        statement_id, requirements = self._prepared_requirements(payload, name)
        if requirements is None:
            return
        # Grants may have changed since PREPARE: check again on every execution and fetch.
        error = check_requirements(requirements, snapshot, self._caller())
        if error is not None:
            self._reply_error(error)
            return
        backend = self.backend
        if backend is None or backend.broken:
            self._reply_error(sql_error(ErrorCode.SERVER_LOST, "Lost connection to backend"))
            return
        backend.send(payload)
        started = time.perf_counter()
        scanner = await self._relay(backend, kind)
        if scanner is not None and kind is ResponseKind.QUERY:
            self._record(backend, self.prepared[statement_id].digest, started, scanner)

    async def _com_stmt_reset(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        _, requirements = self._prepared_requirements(payload, "mysqld_stmt_reset")
        if requirements is not None:
            await self._forward_single(payload, snapshot)

    async def _com_stmt_no_reply(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        """COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA: no response, ever."""
        statement_id = int.from_bytes(payload[1:5], "little")
        if statement_id not in self.prepared:
            return
        if payload[0] == Command.COM_STMT_CLOSE:
            del self.prepared[statement_id]
        if self.backend is not None and not self.backend.broken:
            self.backend.send(payload)

    async def _com_field_list(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        table = _decode(payload[1:].split(b"\x00", 1)[0])
        if self.current_db is None:
            self._reply_error(sql_error(ErrorCode.NO_DB, "No database selected"))
            return
        assert self.account is not None
        if not snapshot.privileges(self.account.id, self.current_db, table):
            self._reply_error(
                sql_error(
                    ErrorCode.TABLEACCESS_DENIED,
                    f"SELECT command denied to user '{self.account.user}'@'{self.client_ip}' "
                    f"for table '{table}'",
                )
            )
            return
        backend = await self._backend_or_error()
        if backend is None:
            return
        backend.send(payload)
        await self._relay(backend, ResponseKind.FIELD_LIST)

    async def _com_reset_connection(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        self.prepared.clear()
        self.settings.clear()
        self.lex_mode = LexMode()
        if self.backend is not None and not self.backend.broken:
            await self._forward_single(payload, snapshot)
        else:
            self._reply_ok()

    async def _com_change_user(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        request = parse_change_user(payload, self.capabilities)
        backend, self.backend = self.backend, None
        if backend is not None:
            await backend.quit()
        self.prepared.clear()
        self.settings.clear()
        self.lex_mode = LexMode()
        self.account = None
        self.current_db = None
        if request.charset is not None and request.charset in _SAFE_CHARSET_IDS:
            self.charset = request.charset
        # Full re-authentication with a fresh scramble; failure closes the connection.
        scramble = _make_scramble()
        plugin = request.auth_plugin or "mysql_native_password"
        if plugin not in SUPPORTED_PLUGINS:
            plugin = self.ctx.config.server.auth_plugin
        self._write(build_auth_switch_request(plugin, scramble))
        await self.client.drain()
        response = await self._read_login_packet()
        await self._authenticate(request.username, response, plugin, scramble)
        self._enter_database(request.database)
        self._check_user_limit()
        self._reply_ok()

    async def _com_process_kill(self, payload: bytes, snapshot: CatalogSnapshot) -> None:
        await self._kill(int.from_bytes(payload[1:5], "little"), query_only=False)

    _handlers: dict[int, Callable[[Session, bytes, CatalogSnapshot], Awaitable[None]]] = {}


Session._handlers = {
    Command.COM_QUERY: Session._com_query,
    Command.COM_INIT_DB: Session._com_init_db,
    Command.COM_PING: Session._com_ping,
    Command.COM_STMT_PREPARE: Session._com_stmt_prepare,
    Command.COM_STMT_EXECUTE: Session._com_stmt_execute,
    Command.COM_STMT_FETCH: Session._com_stmt_fetch,
    Command.COM_STMT_RESET: Session._com_stmt_reset,
    Command.COM_STMT_CLOSE: Session._com_stmt_no_reply,
    Command.COM_STMT_SEND_LONG_DATA: Session._com_stmt_no_reply,
    Command.COM_FIELD_LIST: Session._com_field_list,
    Command.COM_SET_OPTION: Session._forward_single,
    Command.COM_STATISTICS: Session._forward_single,
    Command.COM_RESET_CONNECTION: Session._com_reset_connection,
    Command.COM_CHANGE_USER: Session._com_change_user,
    Command.COM_PROCESS_KILL: Session._com_process_kill,
}


def _backend_lost(exc: BackendError) -> SqlError:
    return sql_error(ErrorCode.SERVER_LOST, f"Lost connection to backend: {exc}")


def _make_scramble() -> bytes:
    # 20 bytes, none of them NUL (some clients treat the scramble as a C string).
    raw = bytearray(os.urandom(20))
    for i, b in enumerate(raw):
        raw[i] = (b % 94) + 33
    return bytes(raw)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _like_pattern(text: str) -> Callable[[str], bool] | None:
    match = re.search(r"\blike\s+'((?:[^'\\]|\\.|'')*)'", text, re.IGNORECASE)
    if match is None:
        return None
    pattern = match.group(1).replace("''", "'")
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    compiled = re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL)
    return lambda name: compiled.match(name) is not None
