"""A minimal asyncio MySQL client on shardgate's own wire codec, for the benchmarks.

It logs in with mysql_native_password (no TLS), runs simple text queries and quits: just enough
to hold thousands of idle connections from the harness process cheaply. (Logins per second are
measured with sysbench and logins.lua instead: a Python client costs more CPU per login than the
proxy does, and would measure itself.)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from auth.passwords import scramble_native
from proxy.wire.packets import (
    Capability,
    build_handshake_response,
    parse_err,
    parse_handshake_v10,
)
from proxy.wire.stream import PacketConnection, open_connection

MAX_PACKET = 1 << 24
NATIVE = "mysql_native_password"
CLIENT_CAPABILITIES = (
    Capability.LONG_PASSWORD
    | Capability.LONG_FLAG
    | Capability.PROTOCOL_41
    | Capability.TRANSACTIONS
    | Capability.SECURE_CONNECTION
    | Capability.MULTI_RESULTS
    | Capability.PS_MULTI_RESULTS
    | Capability.PLUGIN_AUTH
    | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
)


class WireError(Exception):
    """Login refused, query error, or a protocol surprise."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    password: str
    database: str | None


class WireClient:
    """One logged-in connection."""

    def __init__(self, stream: PacketConnection, capabilities: int) -> None:
        self.stream = stream
        self.capabilities = capabilities

    @classmethod
    async def connect(cls, target: Target, timeout: float = 10.0) -> WireClient:
        stream = await asyncio.wait_for(
            open_connection(PacketConnection, target.host, target.port), timeout
        )
        try:
            capabilities = await asyncio.wait_for(cls._login(stream, target), timeout)
        except BaseException:
            stream.close()
            raise
        return cls(stream, capabilities)

    @staticmethod
    async def _login(stream: PacketConnection, target: Target) -> int:
        seq, greeting = await stream.read(MAX_PACKET)
        if greeting[:1] == b"\xff":
            raise WireError(parse_err(greeting, Capability.PROTOCOL_41).message)
        handshake = parse_handshake_v10(greeting)
        capabilities = CLIENT_CAPABILITIES & handshake.capabilities
        response = build_handshake_response(
            capabilities=capabilities,
            max_packet_size=MAX_PACKET,
            charset=45,
            username=target.user,
            auth_response=scramble_native(target.password, handshake.scramble[:20]),
            database=target.database,
            auth_plugin=NATIVE,
        )
        seq = stream.write(seq + 1, response)
        await stream.drain()
        while True:
            seq, packet = await stream.read(MAX_PACKET)
            first = packet[:1]
            if first == b"\x00":
                return capabilities
            if first == b"\xff":
                raise WireError(parse_err(packet, capabilities).message)
            if first == b"\xfe":
                end = packet.index(b"\x00", 1)
                if packet[1:end].decode() != NATIVE:
                    raise WireError(f"server wants auth plugin {packet[1:end]!r}")
                scramble = packet[end + 1 : end + 21]
                seq = stream.write(seq + 1, scramble_native(target.password, scramble))
                await stream.drain()
                continue
            raise WireError(f"unexpected login packet {packet[:8]!r}")

    async def query(self, sql: str) -> int:
        """Run a text statement; return the number of rows (result sets are read and dropped)."""
        self.stream.write(0, b"\x03" + sql.encode())
        await self.stream.drain()
        _, first = await self.stream.read(MAX_PACKET)
        if first[:1] == b"\xff":
            raise WireError(parse_err(first, self.capabilities).message)
        if first[:1] == b"\x00":
            return 0
        rows = 0
        eofs = 0
        while eofs < 2:  # column definitions EOF, then rows EOF (no DEPRECATE_EOF)
            _, packet = await self.stream.read(MAX_PACKET)
            if packet[:1] == b"\xfe" and len(packet) < 9:
                eofs += 1
            elif packet[:1] == b"\xff":
                raise WireError(parse_err(packet, self.capabilities).message)
            elif eofs == 1:
                rows += 1
        return rows

    async def quit(self) -> None:
        try:
            self.stream.write(0, b"\x01")
            await self.stream.drain()
        except Exception:
            pass
        self.stream.close()

    def abort(self) -> None:
        self.stream.close()
