"""A MySQL login spoken packet by packet over a socket, recording everything the server sends.

For the tests that compare whole login exchanges byte for byte (an unknown user must get
exactly what a known one gets) and time them: no driver in between, so nothing is hidden,
retried or added. The random parts of the server's packets (the scramble, the connection id)
are masked, and the user name in an error message is replaced by ``<user>``, so exchanges of
different users and connections compare equal when the server treated them alike.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass

from pymysql import _auth as pymysql_auth

from auth.passwords import scramble_caching_sha2, scramble_native
from proxy.wire.packets import Capability, build_handshake_response, parse_handshake_v10

NATIVE = "mysql_native_password"
CACHING_SHA2 = "caching_sha2_password"
CLIENT_CAPABILITIES = int(
    Capability.PROTOCOL_41
    | Capability.SECURE_CONNECTION
    | Capability.PLUGIN_AUTH
    | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA
    | Capability.TRANSACTIONS
)


@dataclass(frozen=True)
class Exchange:
    """What the server sent during one login: (sequence number, payload) per packet, masked."""

    packets: tuple[tuple[int, bytes], ...]
    closed: bool  # the server closed the connection after its last packet
    auth_seconds: float  # from sending the handshake response to the server's last packet

    @property
    def outcome(self) -> bytes:
        """The last packet: an OK (0x00...) or an ERR (0xFF...)."""
        return self.packets[-1][1]

    @property
    def errno(self) -> int | None:
        last = self.outcome
        return int.from_bytes(last[1:3], "little") if last[:1] == b"\xff" else None


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


def _read(sock: socket.socket) -> tuple[int, bytes]:
    header = _recv_exact(sock, 4)
    return header[3], _recv_exact(sock, int.from_bytes(header[:3], "little"))


def _send(sock: socket.socket, seq: int, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload)


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True  # closed with unread data in flight, or TLS torn down: closed too
    except TimeoutError:
        return False


def _masked_greeting(payload: bytes) -> bytes:
    """The greeting without its connection id and the two parts of its scramble."""
    end = payload.index(0, 1)  # the NUL after the server version
    masked = bytearray(payload)
    masked[end + 1 : end + 13] = bytes(12)  # connection id (4), scramble part 1 (8)
    masked[end + 32 : end + 44] = bytes(12)  # scramble part 2, after the fixed fields
    return bytes(masked)


def _answer(plugin: str, password: str, scramble: bytes) -> bytes:
    if plugin == NATIVE:
        return scramble_native(password, scramble)
    return scramble_caching_sha2(password, scramble)


def login(
    port: int,
    user: str,
    password: str,
    plugin: str,
    *,
    tls: bool = False,
    database: str | None = None,
    bind: str = "127.0.0.1",
) -> Exchange:
    """Log in as a client asking for ``plugin`` that answers whatever the server asks (a plugin
    switch, caching_sha2 full authentication over TLS or with the RSA key) with ``password``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(bind, 0))
    packets: list[tuple[int, bytes]] = []
    try:
        seq, greeting = _read(sock)
        scramble = parse_handshake_v10(greeting).scramble[:20]
        packets.append((seq, _masked_greeting(greeting)))
        seq += 1
        if tls:
            request = struct.pack("<IIB23x", CLIENT_CAPABILITIES | Capability.SSL, 1 << 24, 45)
            _send(sock, seq, request)
            seq += 1
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        response = build_handshake_response(
            capabilities=CLIENT_CAPABILITIES | (Capability.SSL if tls else 0),
            max_packet_size=1 << 24,
            charset=45,
            username=user,
            auth_response=_answer(plugin, password, scramble),
            database=database,
            auth_plugin=plugin,
        )
        started = time.perf_counter()
        _send(sock, seq, response)
        while True:
            seq, payload = _read(sock)
            kind = payload[:1]
            if kind in (b"\x00", b"\xff"):
                elapsed = time.perf_counter() - started
                packets.append((seq, payload.replace(f"'{user}'@".encode(), b"'<user>'@")))
                closed = _closed(sock) if kind == b"\xff" else False
                return Exchange(tuple(packets), closed, elapsed)
            if kind == b"\xfe":  # switch: the plugin's name, then a new scramble
                name_end = payload.index(0, 1)
                plugin = payload[1:name_end].decode()
                scramble = payload[name_end + 1 : name_end + 21]
                packets.append((seq, payload[: name_end + 1] + bytes(20) + b"\x00"))
                _send(sock, seq + 1, _answer(plugin, password, scramble))
                continue
            packets.append((seq, payload))
            if payload == b"\x01\x04":  # caching_sha2: perform full authentication
                _send(sock, seq + 1, password.encode() + b"\x00" if tls else b"\x02")
            elif kind == b"\x01" and payload != b"\x01\x03":  # the RSA public key
                encrypted = pymysql_auth.sha2_rsa_encrypt(password.encode(), scramble, payload[1:])
                _send(sock, seq + 1, encrypted)
            elif kind != b"\x01":  # 0x01 0x03, fast authentication succeeded: the OK follows
                raise AssertionError(f"unexpected packet from the server: {payload[:40]!r}")
    finally:
        sock.close()
