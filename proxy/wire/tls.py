"""Server-side TLS on a Protocol-based connection, with ``ssl.SSLObject`` and memory BIOs.

MySQL clients send the SSLRequest packet and their TLS ClientHello back to back, without
waiting for the server, so the ClientHello is often already in the connection's buffer when the
proxy decides to switch. asyncio's ``start_tls`` would lose those bytes; a TLS layer fed by the
connection's own ``data_received`` takes them as its first input.
"""

from __future__ import annotations

import asyncio
import ssl

CHUNK = 65536


class TlsLayer:
    """Decrypts what the transport receives and encrypts what is written to it."""

    def __init__(self, context: ssl.SSLContext, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.handshake_done = False
        self.closed = False

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._transport.write(pending)

    def receive(self, data: bytes) -> bytes:
        """Take received TLS bytes; return the plaintext they complete (maybe b"").

        Raises ssl.SSLError when the peer breaks the protocol (the connection must close).
        """
        if data:
            self._incoming.write(data)
        if not self.handshake_done:
            try:
                self.ssl_object.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return b""
            self.handshake_done = True
            self._flush()
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.ssl_object.read(CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            chunks.append(chunk)
        self._flush()  # key updates, session tickets
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def send(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            written = self.ssl_object.write(view[:CHUNK])
            view = view[written:]
        self._flush()

    def shutdown(self) -> None:
        try:
            self.ssl_object.unwrap()
        except ssl.SSLError:
            pass
        self._flush()
