"""Connections from the proxy to a backend MySQL/MariaDB shard.

The proxy logs in as the session's mirrored account (``proxy.backend.mirror``) and then relays
client commands. The
backend's answers are copied to the client verbatim, chunk by chunk as they arrive, with a
ResponseScanner deciding where each response ends; rows are never decoded on the way through.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from auth.passwords import scramble_native
from proxy.backend.grants import MirrorGrants
from proxy.ops.config import ShardConfig
from proxy.wire.packets import (
    Capability,
    ProtocolError,
    build_handshake_response,
    frame,
    parse_err,
    parse_handshake_v10,
    parse_ok,
    parse_stmt_prepare_ok,
    read_lenenc_int,
    read_lenenc_str,
)
from proxy.wire.stream import (
    ConnectionLost,
    PacketConnection,
    PacketTooLarge,
    ProtocolViolation,
    ResponseKind,
    ResponseScanner,
    open_connection,
    take_packet,
)

# What the proxy is willing to pass from the client's capabilities to the backend. Anything
# the proxy does not relay faithfully (compression, LOCAL INFILE, DEPRECATE_EOF, query
# attributes, MariaDB's progress reports and bulk execution, SSL on the backend hop) is left
# out. Session tracking is relayed: the shard's OK packets reach the client verbatim, with
# their session-state data. IGNORE_SPACE is relayed: the shard adds IGNORE_SPACE to the
# session's sql_mode for it, as it would for the client, and the proxy lexes by the sql_mode it
# reads back from the shard (``proxy.session.link``: one source of truth).
RELAYED_CAPABILITIES = (
    Capability.LONG_PASSWORD
    | Capability.FOUND_ROWS
    | Capability.LONG_FLAG
    | Capability.CONNECT_WITH_DB
    | Capability.NO_SCHEMA
    | Capability.ODBC
    | Capability.PROTOCOL_41
    | Capability.INTERACTIVE
    | Capability.IGNORE_SPACE
    | Capability.IGNORE_SIGPIPE
    | Capability.TRANSACTIONS
    | Capability.SECURE_CONNECTION
    | Capability.MULTI_STATEMENTS
    | Capability.MULTI_RESULTS
    | Capability.PS_MULTI_RESULTS
    | Capability.PLUGIN_AUTH
    | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capability.SESSION_TRACK
    | Capability.MARIADB_CLIENT_EXTENDED_TYPE_INFO
    | Capability.MARIADB_CLIENT_CACHE_METADATA
)
# Capabilities that change the format of what the shard sends: a client that negotiated one
# with the proxy must get it from the shard too, or it would misread every result set.
FORMAT_CAPABILITIES = (
    Capability.MARIADB_CLIENT_EXTENDED_TYPE_INFO | Capability.MARIADB_CLIENT_CACHE_METADATA
)
# The capabilities that depend on the shard: the proxy offers them to clients only when the
# shard offers them (``offered_capabilities``).
SHARD_CAPABILITIES = FORMAT_CAPABILITIES | Capability.SESSION_TRACK
REQUIRED_CAPABILITIES = (
    Capability.PROTOCOL_41
    | Capability.SECURE_CONNECTION
    | Capability.PLUGIN_AUTH
    | Capability.TRANSACTIONS
    | Capability.MULTI_RESULTS
    | Capability.PS_MULTI_RESULTS
)

MAX_BACKEND_PACKET = 1 << 30
_CLIENT_MYSQL = int(Capability.LONG_PASSWORD)
_EXTENDED_TYPE_INFO = int(Capability.MARIADB_CLIENT_EXTENDED_TYPE_INFO)


def offered_capabilities(proxy: int, shard: int) -> int:
    """What the proxy offers clients: its own ``proxy`` capabilities, less those that depend on
    the shard (``SHARD_CAPABILITIES``) when the shard's greeting (``shard``) lacks them."""
    return proxy & ~(SHARD_CAPABILITIES & ~shard)


class BackendError(Exception):
    """The backend is unreachable, refused the proxy's login, or broke the protocol.

    ``errno``: the shard's error number when it refused the login (else 0)."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass(frozen=True)
class BackendTarget:
    """Where and as whom to connect."""

    shard: str
    host: str
    port: int
    user: str
    password: str
    database: str | None
    # What the account holds on the shard when it is a mirror (None: the usage account).
    grants: MirrorGrants | None = None


def backend_password(secret: bytes, shard: str, database: str) -> str:
    """A backend account's password, derived from the catalog secret so it is never stored
    (``database``: the physical database, or a label with a ``*``, which no database name has)."""
    digest = hmac.new(secret, f"shardgate-backend:{shard}:{database}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def quote_string(value: str) -> str:
    """A single-quoted SQL string literal (default sql_mode escaping)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def quote_name(name: str) -> str:
    """A backquoted SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def usage_target(shard: ShardConfig, secret: bytes) -> BackendTarget:
    """The shard's privilege-less account, for sessions in no database: enough for SET NAMES,
    SELECT 1 or SELECT @@version, and nothing else. Its name is derived from the catalog secret
    too, so proxies with different catalogs sharing a shard never overwrite each other's."""
    tag = hmac.new(secret, b"shardgate-usage-account", hashlib.sha256).hexdigest()[:12]
    return BackendTarget(
        shard=shard.name,
        host=shard.host,
        port=shard.port,
        user=f"sgu_{tag}",
        password=backend_password(secret, shard.name, "*usage*"),
        database=None,
    )


def backend_user(database: str) -> str:
    """The all-privileges account older versions made per database (see the README): the
    catalog still records the name, the reconciler drops the account."""
    return f"sg_{database}"[:80]


async def shard_admin(shard: ShardConfig, timeout: float = 10.0) -> BackendConnection:
    """A connection as the shard's administrator (``[[shards]] user``), for provisioning and
    mirror management; never for a session."""
    return await BackendConnection.connect(
        BackendTarget(
            shard=shard.name,
            host=shard.host,
            port=shard.port,
            user=shard.user,
            password=shard.password,
            database=None,
        ),
        timeout=timeout,
    )


@dataclass
class QueryResult:
    """A small decoded text result, for the proxy's own administrative queries."""

    columns: list[str]
    rows: list[list[bytes | None]]
    affected_rows: int = 0
    types: list[int] = field(default_factory=list)  # each column's MYSQL_TYPE_* code
    # The column definition packets as the shard sent them (payloads, no frame header).
    definitions: list[bytes] = field(default_factory=list)


RelayDone = Callable[[ResponseScanner, "BackendError | None"], None]
# Rewrites one column definition packet of a relayed answer (the payload, no frame header).
ColumnRewrite = Callable[[bytes], bytes]
_CACHE_METADATA = int(Capability.MARIADB_CLIENT_CACHE_METADATA)
_DEPRECATE_EOF = int(Capability.DEPRECATE_EOF)
# The kinds the relay tests for, as module constants: on CPython 3.11 reading a member off an
# enum class goes through EnumType.__getattr__'s slot (~800 instructions, not specialized),
# once per statement in start_relay.
_QUERY = ResponseKind.QUERY
_PREPARE = ResponseKind.PREPARE
_HEAD_LIMIT = 1 << 20  # a column count or definition is far smaller
# Where an answer of several result sets is (BackendConnection._every_head).
_FIRST, _DEFS, _EOF, _ROWS = range(4)
_HEADS_KEPT = 64  # rewritten answer heads a connection remembers


# How long a retired connection waits for the shard to close it after COM_QUIT.
RETIRE_SECONDS = 2.0


class BackendConnection(PacketConnection):
    """One logged-in connection to a shard (an asyncio Protocol).

    Between commands it reads packets like any PacketConnection (the proxy's own queries,
    login). ``start_relay`` switches it to relay mode for one response: every chunk the shard
    sends is fed to a ResponseScanner and written to the client as it is, from
    ``data_received``, with no task involved; ``on_done`` is called once with the scanner, or
    with a BackendError if the shard went away or broke the protocol mid-response.
    """

    def __init__(self, target: BackendTarget) -> None:
        super().__init__()
        self.target = target
        self.capabilities = 0
        self.thread_id = 0
        self.server_version = ""
        self.broken = False
        self.status = 2
        # The session state on the connection as the proxy applied and read it back (variable
        # -> SQL literal; SET TRANSACTION fragments), recorded when a session gives the
        # connection back to its pool; and the lexing variables as the connection began with.
        self.applied: dict[str, str] = {}
        # COM_STMT_CLOSE ids to send before the next command (statements of sessions that no
        # longer lease this connection: proxy/session/statements.py).
        self.pending_closes: list[int] = []
        # Called once the connection is gone (the pool frees its slot then: ``retire``).
        self.on_lost: Callable[[], None] | None = None
        self.applied_replay: tuple[str, ...] = ()
        # Whose session state (an object of the session layer) and which version of it
        # ``applied`` copies: given back unchanged, it is not copied again.
        self.applied_from: object = None
        self.applied_version = 0
        self.born: dict[str, str] = {}
        # Whether any byte of the response being relayed reached the client (a loss then
        # cannot be answered with an error packet: the client is mid-response).
        self.relayed_any = False
        self._scanner: ResponseScanner | None = None
        # The end of what the shard sent that may begin an ERR packet, not whole yet: kept
        # from the client until it is (``_relay_tail``), so an ERR is written renamed.
        self._held = b""
        # A response is being relayed (``start_relay`` until its ``on_done``): ``_scanner`` is
        # set (a plain attribute, read on every give-back; a property is a Python call).
        self.relaying = False
        self._client: PacketConnection | None = None
        self._on_done: RelayDone | None = None
        # While the head of a relayed answer is rewritten (``start_relay(columns=...)``): the
        # rewrite, the head's bytes not yet taken as packets, and how many column
        # definitions are still to come (None: the first packet is).
        self._columns: ColumnRewrite | None = None
        self._head = bytearray()
        self._defs: int | None = None
        # Every result set's definitions rewritten, not the first one's only (an answer of
        # several: a multi-statement packet, a CALL): where the answer is (see _every_head).
        self._every = False
        self._phase = _FIRST
        self._continued = False  # the last frame passed was a full one: the next continues it
        # Heads of query answers rewritten before, by length: (rewrite, the shard's bytes) ->
        # the bytes written (a statement's definitions repeat byte for byte), bounded.
        self._heads: dict[int, dict[tuple[ColumnRewrite, bytes], bytes]] = {}
        # The last of them met, by rewrite: (the shard's bytes, the bytes written). A caller
        # that gives each statement a rewrite of its own (the sharded fast paths) has its
        # statement's head recognized without slicing and hashing it (one dict lookup by
        # identity, one comparison).
        self._last_heads: dict[ColumnRewrite, tuple[bytes, bytes]] = {}
        self._head_kind = ResponseKind.QUERY
        # time.monotonic() of the last bytes from the shard while a response is awaited;
        # 0.0 when none is (the stall watchdog reads it).
        self.waiting_since = 0.0
        # Why the watchdog gave up on the connection (``stall``), for whoever reads it next.
        self._stalled: str | None = None
        # Given back to its pool lazily (``proxy.backend.pool.ShardPool.release``, nobody
        # waiting): the session it was given back by (a ``pool.Owner``), and when; None
        # while leased or once the pool has entered it among its idle connections.
        self.parked_by: object = None
        self.parked_at = 0.0

    @classmethod
    async def connect(
        cls,
        target: BackendTarget,
        *,
        client_capabilities: int = 0,
        charset: int = 45,
        timeout: float = 5.0,
    ) -> BackendConnection:
        try:
            conn = await asyncio.wait_for(
                open_connection(lambda: cls(target), target.host, target.port), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise BackendError(
                f"cannot connect to shard '{target.shard}' at {target.host}:{target.port}: "
                f"{exc.__class__.__name__}"
            ) from None
        try:
            await asyncio.wait_for(conn._login(client_capabilities, charset), timeout)
        except TimeoutError:
            conn.close()
            raise BackendError(f"shard '{target.shard}' did not answer the login in time") from None
        except (ConnectionLost, ProtocolError, PacketTooLarge, ValueError) as exc:
            conn.close()
            raise BackendError(f"login to shard '{target.shard}' failed: {exc}") from None
        except BackendError:
            conn.close()
            raise
        return conn

    async def _login(self, client_capabilities: int, charset: int) -> None:
        target = self.target
        _, greeting = await self.read(MAX_BACKEND_PACKET)
        if greeting[:1] == b"\xff":
            err = parse_err(greeting, Capability.PROTOCOL_41)
            raise BackendError(f"shard '{target.shard}' refused the connection: {err.message}")
        handshake = parse_handshake_v10(greeting)
        missing = client_capabilities & FORMAT_CAPABILITIES & ~handshake.capabilities
        if missing:
            raise BackendError(
                f"shard '{target.shard}' does not offer {Capability(missing)!r}, which the "
                "client negotiated with the proxy"
            )
        capabilities = (
            (client_capabilities & RELAYED_CAPABILITIES) | REQUIRED_CAPABILITIES
        ) & handshake.capabilities
        if not capabilities >> 32:
            capabilities |= _CLIENT_MYSQL  # (with MariaDB's extensions it must stay clear)
        if target.database:
            capabilities |= Capability.CONNECT_WITH_DB
        else:
            capabilities &= ~Capability.CONNECT_WITH_DB
        plugin = "mysql_native_password"
        response = build_handshake_response(
            capabilities=capabilities,
            max_packet_size=MAX_BACKEND_PACKET,
            charset=charset,
            username=target.user,
            auth_response=scramble_native(target.password, handshake.scramble[:20]),
            database=target.database,
            auth_plugin=plugin,
        )
        seq = self.write(1, response)
        while True:
            seq, packet = await self.read(MAX_BACKEND_PACKET)
            first = packet[:1]
            if first == b"\x00":
                break
            if first == b"\xff":
                err = parse_err(packet, capabilities)
                raise BackendError(
                    f"shard '{target.shard}' refused login: {err.message}", err.errno
                )
            if first == b"\xfe":
                # Auth switch: only mysql_native_password is used on the backend hop.
                name_end = packet.index(b"\x00", 1)
                name = packet[1:name_end].decode()
                if name != "mysql_native_password":
                    raise BackendError(f"shard '{target.shard}' wants auth plugin {name}")
                scramble = packet[name_end + 1 : name_end + 21]
                self.write(seq + 1, scramble_native(target.password, scramble))
                continue
            raise BackendError(f"shard '{target.shard}' sent an unexpected login packet")
        # A plain int: the scanner tests it for every response (IntFlag arithmetic is Python).
        self.capabilities = int(capabilities)
        self.thread_id = handshake.connection_id
        self.server_version = handshake.server_version

    # -- relaying -----------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Send a command packet (sequence 0)."""
        self.write(0, payload)

    def start_relay(
        self,
        client: PacketConnection,
        kind: ResponseKind,
        on_done: RelayDone,
        columns: ColumnRewrite | None = None,
        every: bool = False,
    ) -> None:
        """Relay the response to the command just sent, verbatim, onto ``client``; with
        ``columns``, the first result set's column definitions (or the answer's error) pass
        through it (they are
        taken as packets and written again with the shard's sequence ids; the rest of the
        answer is relayed as it comes) -- with ``every``, each result set's (the frames of
        rows still pass as they come)."""
        self._scanner = ResponseScanner(kind, self.capabilities)
        self.relaying = True
        self._held = b""
        # (only answers that open with a column count or PREPARE_OK have their definitions
        # where the head expects them)
        rewrites = kind is _QUERY or kind is _PREPARE
        self._columns = columns if rewrites else None
        self._head.clear()
        self._defs = None
        self._every = every and kind is _QUERY and self._columns is not None
        self._phase = _FIRST
        self._continued = False
        self._head_kind = kind
        self._client = client
        self._on_done = on_done
        self.relayed_any = False
        self.waiting_since = time.monotonic()
        client.feeder = self
        if client.write_paused:
            self.pause_reading()
        elif self.reading_paused:
            self.resume_reading()
        if self._buf:  # pragma: no cover - a shard does not speak before it is asked
            data = bytes(self._buf)
            self._buf.clear()
            self._relay_data(data)
        elif self._lost is not None:
            self._finish(self._lost_error())

    async def relay(
        self,
        client: PacketConnection,
        kind: ResponseKind,
        columns: ColumnRewrite | None = None,
        every: bool = False,
    ) -> ResponseScanner:
        """Relay one response and wait for its end (raises BackendError; then broken)."""
        future: asyncio.Future[ResponseScanner] = asyncio.get_running_loop().create_future()

        def done(scanner: ResponseScanner, error: BackendError | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(scanner)

        self.start_relay(client, kind, done, columns, every)
        return await future

    def data_received(self, data: bytes) -> None:
        if self._scanner is None:
            super().data_received(data)
        else:
            self._relay_data(data)

    def _relay_data(self, data: bytes) -> None:
        scanner = self._scanner
        client = self._client
        assert scanner is not None and client is not None
        if self._every:
            self.waiting_since = time.monotonic()
            self._every_head(data, scanner, client)
            return
        head = b""
        columns = self._columns
        if columns is not None:
            known = None
            if self._defs is None and not self._head and self._heads:
                known = self._known_head(data, columns)
            if known is not None:
                data = known  # the head as rewritten before, then what follows it
            else:
                self.waiting_since = time.monotonic()
                found = self._relay_head(data, scanner)
                if found is None:
                    return
                # The head, rewritten, goes out in one write with what follows it.
                head, data = found
                if not data:
                    client.write_raw(head)
                    return
        try:
            end = scanner.feed(data)
        except ProtocolViolation as exc:
            if head:
                client.write_raw(head)
            self._break(self._lost_error(exc))
            return
        self.relayed_any = True
        if end < 0:
            if scanner.unsure or self._held:
                self._relay_tail(head, data, end, scanner, client)
                return
            client.write_raw(head + data if head else data)
            # More is awaited: the watchdog measures from here. (A response that ends in this
            # chunk has no clock read: its end sets waiting_since to 0.)
            self.waiting_since = time.monotonic()
            return
        if scanner.error or self._held:
            # An ERR ends the response (the only test of a response that succeeds here).
            self._relay_tail(head, data, end, scanner, client)
            return
        if end == len(data):
            client.write_raw(head + data if head else data)
            self._finish(None)
            return
        # The response is complete, but the shard sent more: deliver the response, then drop
        # this connection, which is out of step.
        client.write_raw(head + data[:end])
        self._finish(None)
        self.broken = True
        self.abort()

    def _relay_tail(
        self,
        head: bytes,
        data: bytes,
        end: int,
        scanner: ResponseScanner,
        client: PacketConnection,
    ) -> None:
        """``_relay_data`` when an ERR ends the response, or may begin at the end of the
        chunk (bytes held back), or bytes were held back before: what is written keeps back
        the bytes that may begin an ERR until it is whole, and the ERR that ends the
        response passes through the client's ``errors`` (its length in the frame header
        follows; the sequence id stays)."""
        held = head or self._held  # (both are never set: head only with no bytes held)
        out = held + data
        base = len(held)
        if end < 0:
            cut = len(out) - scanner.unsure
            self._held = out[cut:]
            if cut:
                client.write_raw(out[:cut])
            self.waiting_since = time.monotonic()
            return
        self._held = b""
        stop = base + end
        rename = client.errors
        if scanner.error and rename is not None:
            start = base + scanner.error_at
            payload = out[start + 4 : stop]
            renamed = rename(payload)
            if renamed != payload:
                out = out[:start] + frame(out[start + 3], renamed) + out[stop:]
                stop = start + 4 + len(renamed)
        client.write_raw(out[:stop] if stop < len(out) else out)
        self._finish(None)
        if stop < len(out):
            # The shard sent more than its answer: this connection is out of step.
            self.broken = True
            self.abort()

    def _known_head(self, data: bytes, columns: ColumnRewrite) -> bytes | None:
        """An answer that opens with a head rewritten before (the same bytes, the same
        rewrite; more after it): the head as written then followed by the rest of ``data``
        (fed to the scanner and written as an answer's bytes are); None when it does not."""
        n = len(data)
        last = self._last_heads.get(columns)
        if last is not None:
            raw = last[0]
            length = len(raw)
            # (compiled, bytes.startswith is a memcmp: no slice)
            if n > length and data.startswith(raw):
                self._columns = None
                return last[1] + data[length:]
        for length, known in self._heads.items():
            if n > length:
                raw = data[:length]
                written = known.get((columns, raw))
                if written is not None:
                    self._columns = None
                    self._last_head(columns, raw, written)
                    return written + data[length:]
        return None

    def _last_head(self, columns: ColumnRewrite, raw: bytes, written: bytes) -> None:
        last = self._last_heads
        if len(last) >= _HEADS_KEPT and columns not in last:
            last.clear()
        last[columns] = (raw, written)

    def _remember_head(self, columns: ColumnRewrite, raw: bytes, written: bytes) -> None:
        known = self._heads.setdefault(len(raw), {})
        if sum(len(k) for k in self._heads.values()) >= _HEADS_KEPT:
            self._heads.clear()
            known = self._heads[len(raw)] = {}
        known[columns, raw] = written
        self._last_head(columns, raw, written)

    def _relay_head(self, data: bytes, scanner: ResponseScanner) -> tuple[bytes, bytes] | None:
        """The head of an answer whose column definitions are rewritten: packet by packet
        (the scanner fed what is written). Once it is done, returns the rewritten head not
        written yet and the bytes after it; None while it goes on or when the answer ended
        (or broke) in it, what was rewritten then written (one write per call)."""
        columns = self._columns
        client = self._client
        assert columns is not None and client is not None
        head = self._head
        whole = not head and self._defs is None  # the head starts in ``data``
        head += data
        outs: list[bytes] = []
        while True:
            try:
                taken = take_packet(head, _HEAD_LIMIT)
            except PacketTooLarge as exc:
                self._columns = None
                if outs:
                    client.write_raw(b"".join(outs))
                self._break(self._lost_error(exc))
                return None
            if taken is None:
                if outs:
                    client.write_raw(b"".join(outs))
                return None
            seq, packet = taken
            defs = self._defs
            if defs is None:
                defs = 0
                first = packet[:1]
                if first == b"\xff":
                    packet = columns(packet)  # an error naming what the rewrite renames
                elif self._head_kind is _PREPARE:
                    try:
                        ok = parse_stmt_prepare_ok(packet)
                    except ProtocolError:
                        pass  # an ERR (or what the scanner refuses just below)
                    else:
                        between = ok.num_params and ok.num_columns
                        eof = 0 if self.capabilities & _DEPRECATE_EOF else 1
                        defs = ok.num_params + ok.num_columns + (eof if between else 0)
                elif first and first not in (b"\x00", b"\xff", b"\xfb", b"\xfe"):
                    count, width = read_lenenc_int(packet, 0)
                    cached = self.capabilities & _CACHE_METADATA
                    if not (cached and len(packet) > width and packet[width] == 0):
                        defs = count or 0
            else:
                if packet[:1] != b"\xfe" or len(packet) >= 9:  # not the EOF after parameters
                    packet = columns(packet)
                defs -= 1
            self._defs = defs
            out = frame(seq, packet)
            try:
                end = scanner.feed(out)
            except ProtocolViolation as exc:
                self._columns = None
                if outs:
                    client.write_raw(b"".join(outs))
                self._break(self._lost_error(exc))
                return None
            self.relayed_any = True
            outs.append(out)
            if end >= 0 or defs == 0:
                self._columns = None
                rest = bytes(head)
                head.clear()
                if end < 0:
                    written = b"".join(outs)
                    if whole and self._head_kind is _QUERY:
                        self._remember_head(columns, data[: len(data) - len(rest)], written)
                    return written, rest
                client.write_raw(b"".join(outs))
                self._finish(None)
                if rest:  # the shard sent more than its answer: out of step
                    self.broken = True
                    self.abort()
                return None

    def _every_head(self, data: bytes, scanner: ResponseScanner, client: PacketConnection) -> None:
        """An answer of several result sets whose every column definition is rewritten: each
        result's head packet by packet (its column count, definitions renamed and the EOF
        after them, written again with the shard's sequence ids), its rows as whole frames
        as they came, up to the terminator (the scanner says whether the answer ends there or
        another result follows)."""
        columns = self._columns
        assert columns is not None
        head = self._head
        head += data
        deprecate_eof = self.capabilities & _DEPRECATE_EOF
        while True:
            if self._phase == _ROWS:
                out, terminator = self._row_frames(head)
                if not out:
                    return
                if terminator >= 0 and out[terminator + 4] == 0xFF:
                    # An error after rows (it ends the answer: the last frame) passes through
                    # the client's ``errors``, as _relay_tail passes one.
                    rename = client.errors
                    if rename is not None:
                        at = terminator + 4
                        out = out[:terminator] + frame(out[at - 1], rename(out[at:]))
                if not self._feed(out, scanner, client, head):
                    return
                if terminator >= 0:
                    self._phase = _FIRST
                continue
            try:
                taken = take_packet(head, _HEAD_LIMIT)
            except PacketTooLarge as exc:
                self._every = False
                self._break(self._lost_error(exc))
                return
            if taken is None:
                return
            seq, packet = taken
            phase = self._phase
            if phase == _FIRST:
                first = packet[:1]
                if first and first not in (b"\x00", b"\xff", b"\xfb", b"\xfe"):
                    count, width = read_lenenc_int(packet, 0)
                    cached = self.capabilities & _CACHE_METADATA
                    if cached and len(packet) > width and packet[width] == 0:
                        count = 0
                    self._defs = count or 0
                    self._phase = _DEFS if count else (_ROWS if deprecate_eof else _EOF)
                elif first == b"\xfb":
                    self._every = False  # LOCAL INFILE: the rest as it comes
                    self._columns = None
                elif first == b"\xff":
                    packet = columns(packet)
            elif phase == _DEFS:
                packet = columns(packet)
                self._defs = (self._defs or 1) - 1
                if self._defs == 0:
                    self._phase = _ROWS if deprecate_eof else _EOF
            elif phase == _EOF:
                self._phase = _ROWS
            if not self._feed(frame(seq, packet), scanner, client, head):
                return
            if not self._every:
                rest = bytes(head)
                head.clear()
                if rest:
                    self._relay_data(rest)
                return

    def _row_frames(self, head: bytearray) -> tuple[bytes, int]:
        """The whole frames of rows at the start of ``head``, up to and including a result's
        terminator (EOF, the OK that replaces it, or an error), taken out of it; and where
        the terminator's frame starts among them (-1: it is not among them)."""
        pos, n = 0, len(head)
        terminated = False  # (a bool, tested per frame: cheaper than an int comparison)
        continued = self._continued
        while n - pos >= 4:
            length = head[pos] | head[pos + 1] << 8 | head[pos + 2] << 16
            end = pos + 4 + length
            if end > n:
                break
            if not continued and length and head[pos + 4] in (0xFE, 0xFF) and length < 0xFFFFFF:
                terminated = True
            continued = length == 0xFFFFFF
            if terminated:
                out = bytes(head[:end])
                del head[:end]
                self._continued = continued
                return out, pos
            pos = end
        self._continued = continued
        out = bytes(head[:pos])
        del head[:pos]
        return out, -1

    def _feed(
        self, out: bytes, scanner: ResponseScanner, client: PacketConnection, head: bytearray
    ) -> bool:
        """``out`` through the scanner to the client; False once the answer ended (or broke)
        there."""
        try:
            end = scanner.feed(out)
        except ProtocolViolation as exc:
            self._every = False
            self._break(self._lost_error(exc))
            return False
        self.relayed_any = True
        client.write_raw(out)
        if end < 0:
            return True
        self._every = False
        self._finish(None)
        if head:  # the shard sent more than its answer: out of step
            head.clear()
            self.broken = True
            self.abort()
        return False

    def _lost_error(self, cause: object = None) -> BackendError:
        why = self._lost if cause is None else cause
        return BackendError(f"lost connection to shard '{self.target.shard}': {why}")

    def _given_up(self, cause: Exception) -> BackendError:
        """The proxy's own exchange failed: this connection is out of step; close it."""
        self.broken = True
        self.close()
        return self._lost_error(cause)

    def _break(self, error: BackendError) -> None:
        self.broken = True
        self.abort()
        self._finish(error)

    def _finish(self, error: BackendError | None) -> None:
        scanner, on_done, client = self._scanner, self._on_done, self._client
        self._scanner = self._on_done = self._client = None
        self.relaying = False
        self._columns = None
        self._every = False
        self.waiting_since = 0.0
        if client is not None and client.feeder is self:
            client.feeder = None
        assert scanner is not None and on_done is not None
        if error is None and scanner.status is not None:
            self.status = scanner.status
        on_done(scanner, error)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None and self._stalled is not None:
            exc = ConnectionLost(self._stalled)
        super().connection_lost(exc)
        self.broken = True
        on_lost, self.on_lost = self.on_lost, None
        try:
            if self._scanner is not None:
                self._finish(self._lost_error())
        finally:
            if on_lost is not None:
                on_lost()

    @property
    def gone(self) -> bool:
        """The connection is closed at both ends (or was never open)."""
        return self.transport is None or self._lost is not None

    def retire(self, on_lost: Callable[[], None] | None = None) -> None:
        """Close the connection so that the shard has ended its session by the time
        ``on_lost`` runs: COM_QUIT and wait for the shard to close (at most RETIRE_SECONDS),
        or, mid-response or broken, close it from this end."""
        if self.gone:
            self.broken = True
            if on_lost is not None:
                on_lost()
            return
        self.on_lost = on_lost
        healthy = not self.broken and not self.is_closing() and self._scanner is None
        self.broken = True
        if healthy:
            self.send(b"\x01")  # COM_QUIT: the shard closes its end, then connection_lost
            asyncio.get_running_loop().call_later(RETIRE_SECONDS, self.abort)
        else:
            self.abort()

    async def retired(self) -> None:
        """``retire`` and wait until the connection is gone."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def lost() -> None:
            if not done.done():
                done.set_result(None)

        self.retire(lost)
        await done

    def stall(self, reason: str) -> None:
        """The watchdog's verdict: the shard is not answering; give up on this connection (a
        read waiting on it fails with ``reason``)."""
        if self._scanner is not None:
            self._break(BackendError(reason))
        elif not self.gone:
            self.broken = True
            self._stalled = reason
            self.abort()

    async def collect(self, kind: ResponseKind, limit: int) -> list[bytes]:
        """Read one whole (small) response into memory: a held answer the session relays only
        once it has checked what the statement did."""
        scanner = ResponseScanner(kind, self.capabilities)
        payloads: list[bytes] = []
        total = 0
        self.waiting_since = time.monotonic()
        try:
            while True:
                _, payload = await self.read(limit)
                total += len(payload)
                if total > limit:
                    raise ProtocolViolation(f"held response larger than {limit} bytes")
                payloads.append(payload)
                if scanner.frame(payload, 0, len(payload)):
                    if scanner.status is not None:
                        self.status = scanner.status
                    return payloads
        except (ConnectionLost, ProtocolViolation, PacketTooLarge) as exc:
            raise self._given_up(exc) from None
        finally:
            self.waiting_since = 0.0

    async def command(self, payload: bytes) -> bytes:
        """Send a command whose answer is one packet, and return that packet."""
        try:
            self.send(payload)
            _, packet = await self.read(MAX_BACKEND_PACKET)
        except (ConnectionLost, PacketTooLarge) as exc:
            raise self._given_up(exc) from None
        return packet

    async def query(self, sql: str) -> QueryResult:
        """Run a statement and decode its (small, text) result: the proxy's own, or one of a
        client's whose answer the proxy reads (DDL fanned out, table maintenance).

        Raises BackendQueryError for the shard's error answer, BackendError (and the connection
        is closed) if it went away or answered something malformed."""
        try:
            # (a client's statement run here -- DDL fanned out, table maintenance -- may hold
            # a byte the proxy read as no UTF-8 character, kept as a surrogate: sent back as
            # the client's byte)
            self.send(b"\x03" + sql.encode("utf-8", "surrogateescape"))
            return await self._read_text_result()
        except (ConnectionLost, PacketTooLarge, ProtocolError, ValueError, IndexError) as exc:
            raise self._given_up(exc) from None

    async def _read_text_result(self) -> QueryResult:
        _, first = await self.read(MAX_BACKEND_PACKET)
        if first[:1] == b"\xff":
            err = parse_err(first, self.capabilities)
            raise BackendQueryError(err.errno, err.sqlstate, err.message)
        if first[:1] == b"\x00":
            ok = parse_ok(first, self.capabilities)
            return QueryResult([], [], ok.affected_rows)
        count, _ = read_lenenc_int(first, 0)
        columns: list[str] = []
        types: list[int] = []
        definitions: list[bytes] = []
        for _ in range(count or 0):
            _, coldef = await self.read(MAX_BACKEND_PACKET)
            definitions.append(coldef)
            pos = 0
            fields: list[bytes] = []
            for _ in range(6):  # catalog, schema, table, org_table, name, org_name
                value, pos = read_lenenc_str(coldef, pos)
                fields.append(value or b"")
            if self.capabilities & _EXTENDED_TYPE_INFO:
                _, pos = read_lenenc_str(coldef, pos)  # MariaDB's extended type information
            columns.append(fields[4].decode())
            # then: length of the fixed fields (0x0c), charset (2), column length (4), type
            types.append(coldef[pos + 7] if pos + 7 < len(coldef) else 0)
        await self.read(MAX_BACKEND_PACKET)  # the EOF after the column definitions
        rows: list[list[bytes | None]] = []
        while True:
            _, packet = await self.read(MAX_BACKEND_PACKET)
            if packet[:1] == b"\xfe" and len(packet) < 9:
                return QueryResult(columns, rows, types=types, definitions=definitions)
            if packet[:1] == b"\xff":
                err = parse_err(packet, self.capabilities)
                raise BackendQueryError(err.errno, err.sqlstate, err.message)
            row: list[bytes | None] = []
            pos = 0
            for _ in columns:
                value, pos = read_lenenc_str(packet, pos)
                row.append(value)
            rows.append(row)

    async def quit(self) -> None:
        try:
            if not self.broken and not self.is_closing():
                self.send(b"\x01")
                await asyncio.wait_for(self.drain(), 1)
        except (ConnectionLost, TimeoutError):
            pass
        self.close()


class BackendQueryError(Exception):
    """The backend answered one of the proxy's own queries with an error."""

    def __init__(self, errno: int, sqlstate: str, message: str) -> None:
        super().__init__(f"({errno}) {message}")
        self.errno = errno
        self.sqlstate = sqlstate
        self.message = message
