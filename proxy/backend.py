"""Connections from the proxy to a backend MySQL/MariaDB shard.

The proxy logs in as the per-database backend account and then relays client commands. The
backend's answers are copied to the client verbatim, in chunks, with a ResponseScanner deciding
where each response ends; rows are never decoded on the way through.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass

from auth.passwords import scramble_native
from proxy.config import ShardConfig
from proxy.wire.packets import (
    Capability,
    build_handshake_response,
    parse_err,
    parse_handshake_v10,
    parse_ok,
    read_lenenc_int,
    read_lenenc_str,
)
from proxy.wire.stream import (
    ByteWriter,
    ConnectionLost,
    PacketStream,
    PacketTooLarge,
    ProtocolViolation,
    ResponseKind,
    ResponseScanner,
)

# What the proxy is willing to pass from the client's capabilities to the backend. Anything
# the proxy does not relay faithfully (compression, LOCAL INFILE, DEPRECATE_EOF, session
# tracking, query attributes, SSL on the backend hop) is left out.
RELAYED_CAPABILITIES = (
    Capability.LONG_PASSWORD
    | Capability.FOUND_ROWS
    | Capability.LONG_FLAG
    | Capability.CONNECT_WITH_DB
    | Capability.NO_SCHEMA
    | Capability.ODBC
    | Capability.PROTOCOL_41
    | Capability.INTERACTIVE
    | Capability.IGNORE_SIGPIPE
    | Capability.TRANSACTIONS
    | Capability.SECURE_CONNECTION
    | Capability.MULTI_STATEMENTS
    | Capability.MULTI_RESULTS
    | Capability.PS_MULTI_RESULTS
    | Capability.PLUGIN_AUTH
    | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
)
REQUIRED_CAPABILITIES = (
    Capability.PROTOCOL_41
    | Capability.SECURE_CONNECTION
    | Capability.PLUGIN_AUTH
    | Capability.TRANSACTIONS
    | Capability.MULTI_RESULTS
    | Capability.PS_MULTI_RESULTS
)

CHUNK = 256 * 1024
MAX_BACKEND_PACKET = 1 << 30


class BackendError(Exception):
    """The backend is unreachable, refused the proxy's login, or broke the protocol."""


@dataclass(frozen=True)
class BackendTarget:
    """Where and as whom to connect."""

    shard: str
    host: str
    port: int
    user: str
    password: str
    database: str | None


def backend_password(secret: bytes, shard: str, database: str) -> str:
    """The per-database backend account password, derived so it is never stored."""
    digest = hmac.new(secret, f"shardgate-backend:{shard}:{database}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def quote_string(value: str) -> str:
    """A single-quoted SQL string literal (default sql_mode escaping)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


USAGE_USER = "sg_usage"


def usage_target(shard: ShardConfig, secret: bytes) -> BackendTarget:
    """The shard's privilege-less account, for sessions whose account may use no database:
    enough for SET NAMES, SELECT 1 or SELECT @@version, and nothing else."""
    return BackendTarget(
        shard=shard.name,
        host=shard.host,
        port=shard.port,
        user=USAGE_USER,
        password=backend_password(secret, shard.name, "*usage*"),
        database=None,
    )


def backend_user(database: str) -> str:
    return f"sg_{database}"[:80]


@dataclass
class QueryResult:
    """A small decoded text result, for the proxy's own administrative queries."""

    columns: list[str]
    rows: list[list[bytes | None]]
    affected_rows: int = 0


class BackendConnection:
    """One logged-in connection to a shard."""

    def __init__(
        self,
        target: BackendTarget,
        stream: PacketStream,
        capabilities: int,
        thread_id: int,
        server_version: str,
    ) -> None:
        self.target = target
        self.stream = stream
        self.capabilities = capabilities
        self.thread_id = thread_id
        self.server_version = server_version
        self.broken = False
        self.status = 2

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
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port, limit=CHUNK), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise BackendError(
                f"cannot connect to shard '{target.shard}' at {target.host}:{target.port}: "
                f"{exc.__class__.__name__}"
            ) from None
        stream = PacketStream(reader, writer)
        try:
            return await asyncio.wait_for(
                cls._login(target, stream, client_capabilities, charset), timeout
            )
        except TimeoutError:
            stream.close()
            raise BackendError(f"shard '{target.shard}' did not answer the login in time") from None
        except (ConnectionLost, ProtocolViolation, ValueError) as exc:
            stream.close()
            raise BackendError(f"login to shard '{target.shard}' failed: {exc}") from None
        except BackendError:
            stream.close()
            raise

    @classmethod
    async def _login(
        cls, target: BackendTarget, stream: PacketStream, client_capabilities: int, charset: int
    ) -> BackendConnection:
        _, greeting = await stream.read(MAX_BACKEND_PACKET)
        if greeting[:1] == b"\xff":
            err = parse_err(greeting, Capability.PROTOCOL_41)
            raise BackendError(f"shard '{target.shard}' refused the connection: {err.message}")
        handshake = parse_handshake_v10(greeting)
        capabilities = (
            (client_capabilities & RELAYED_CAPABILITIES) | REQUIRED_CAPABILITIES
        ) & handshake.capabilities
        capabilities |= Capability.LONG_PASSWORD
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
        seq = stream.write(1, response)
        await stream.drain()
        while True:
            seq, packet = await stream.read(MAX_BACKEND_PACKET)
            first = packet[:1]
            if first == b"\x00":
                break
            if first == b"\xff":
                err = parse_err(packet, capabilities)
                raise BackendError(f"shard '{target.shard}' refused login: {err.message}")
            if first == b"\xfe":
                # Auth switch: only mysql_native_password is used on the backend hop.
                name_end = packet.index(b"\x00", 1)
                name = packet[1:name_end].decode()
                if name != "mysql_native_password":
                    raise BackendError(f"shard '{target.shard}' wants auth plugin {name}")
                scramble = packet[name_end + 1 : name_end + 21]
                stream.write(seq + 1, scramble_native(target.password, scramble))
                await stream.drain()
                continue
            raise BackendError(f"shard '{target.shard}' sent an unexpected login packet")
        return cls(target, stream, capabilities, handshake.connection_id, handshake.server_version)

    # -- relaying -----------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Send a command packet (sequence 0)."""
        self.stream.write(0, payload)

    async def relay(self, client_writer: ByteWriter, kind: ResponseKind) -> ResponseScanner:
        """Copy one response to the client verbatim and return the scanner that followed it.

        Raises BackendError if the backend goes away mid-response (the connection is then
        marked broken).
        """
        scanner = ResponseScanner(kind, self.capabilities)
        reader = self.stream.reader
        buf = bytearray()
        try:
            await self.stream.drain()
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    raise ConnectionLost("backend closed the connection")
                buf += data
                pos = 0
                size = len(buf)
                done = False
                while size - pos >= 4:
                    length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
                    end = pos + 4 + length
                    if end > size:
                        break
                    done = scanner.frame(buf, pos + 4, end)
                    pos = end
                    if done:
                        break
                if pos:
                    client_writer.write(bytes(buf[:pos]) if pos < size else bytes(buf))
                    del buf[:pos]
                if done:
                    if buf:
                        raise ProtocolViolation("backend sent data after the end of a response")
                    if scanner.status is not None:
                        self.status = scanner.status
                    if client_writer.transport.get_write_buffer_size() > CHUNK:
                        await client_writer.drain()
                    return scanner
                if client_writer.transport.get_write_buffer_size() > CHUNK:
                    await client_writer.drain()
        except (ConnectionLost, ConnectionError, ProtocolViolation) as exc:
            self.broken = True
            self.close()
            raise BackendError(f"lost connection to shard '{self.target.shard}': {exc}") from None

    async def collect(self, kind: ResponseKind, limit: int) -> list[bytes]:
        """Read one whole response into memory (for the proxy's filtered metadata results)."""
        scanner = ResponseScanner(kind, self.capabilities)
        payloads: list[bytes] = []
        total = 0
        try:
            await self.stream.drain()
            while True:
                _, payload = await self.stream.read(limit)
                total += len(payload)
                if total > limit:
                    raise ProtocolViolation(f"metadata result larger than {limit} bytes")
                payloads.append(payload)
                if scanner.frame(payload, 0, len(payload)):
                    if scanner.status is not None:
                        self.status = scanner.status
                    return payloads
        except (ConnectionLost, ConnectionError, ProtocolViolation, PacketTooLarge) as exc:
            self.broken = True
            self.close()
            raise BackendError(f"lost connection to shard '{self.target.shard}': {exc}") from None

    async def command(self, payload: bytes) -> bytes:
        """Send a command whose answer is one packet, and return that packet."""
        try:
            self.send(payload)
            await self.stream.drain()
            _, packet = await self.stream.read(MAX_BACKEND_PACKET)
        except (ConnectionLost, ConnectionError) as exc:
            self.broken = True
            self.close()
            raise BackendError(f"lost connection to shard '{self.target.shard}': {exc}") from None
        return packet

    async def query(self, sql: str) -> QueryResult:
        """Run a statement for the proxy itself and decode its (small, text) result."""
        try:
            self.send(b"\x03" + sql.encode())
            await self.stream.drain()
            return await self._read_text_result()
        except (ConnectionLost, ConnectionError) as exc:
            self.broken = True
            self.close()
            raise BackendError(f"lost connection to shard '{self.target.shard}': {exc}") from None

    async def _read_text_result(self) -> QueryResult:
        _, first = await self.stream.read(MAX_BACKEND_PACKET)
        if first[:1] == b"\xff":
            err = parse_err(first, self.capabilities)
            raise BackendQueryError(err.errno, err.sqlstate, err.message)
        if first[:1] == b"\x00":
            ok = parse_ok(first, self.capabilities)
            return QueryResult([], [], ok.affected_rows)
        count, _ = read_lenenc_int(first, 0)
        columns: list[str] = []
        for _ in range(count or 0):
            _, coldef = await self.stream.read(MAX_BACKEND_PACKET)
            pos = 0
            fields: list[bytes] = []
            for _ in range(5):  # catalog, schema, table, org_table, name
                value, pos = read_lenenc_str(coldef, pos)
                fields.append(value or b"")
            columns.append(fields[4].decode())
        await self.stream.read(MAX_BACKEND_PACKET)  # the EOF after the column definitions
        rows: list[list[bytes | None]] = []
        while True:
            _, packet = await self.stream.read(MAX_BACKEND_PACKET)
            if packet[:1] == b"\xfe" and len(packet) < 9:
                return QueryResult(columns, rows)
            if packet[:1] == b"\xff":
                err = parse_err(packet, self.capabilities)
                raise BackendQueryError(err.errno, err.sqlstate, err.message)
            row: list[bytes | None] = []
            pos = 0
            for _ in columns:
                value, pos = read_lenenc_str(packet, pos)
                row.append(value)
            rows.append(row)

    def close(self) -> None:
        self.stream.close()

    async def quit(self) -> None:
        try:
            if not self.broken and not self.stream.writer.is_closing():
                self.send(b"\x01")
                await asyncio.wait_for(self.stream.drain(), 1)
        except (ConnectionLost, ConnectionError, TimeoutError):
            pass
        self.close()


class BackendQueryError(Exception):
    """The backend answered one of the proxy's own queries with an error."""

    def __init__(self, errno: int, sqlstate: str, message: str) -> None:
        super().__init__(f"({errno}) {message}")
        self.errno = errno
        self.sqlstate = sqlstate
        self.message = message
