"""Server-side TLS over an existing asyncio stream pair, with ``ssl.SSLObject`` and memory BIOs.

MySQL clients send the SSLRequest packet and their TLS ClientHello back to back, without
waiting for the server. asyncio's ``start_tls`` loses whatever the plain StreamReader had
already buffered past the SSLRequest (often the whole ClientHello), so the handshake stalls.
Doing TLS on top of the same StreamReader consumes those bytes naturally.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

CHUNK = 65536


class TlsStream:
    """Plaintext ``readexactly/read`` and ``write/drain/close`` over a TLS-wrapped stream pair.

    It offers the subset of StreamReader/StreamWriter the packet layer and relay use.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: ssl.SSLContext,
    ) -> None:
        self._raw_reader = reader
        self._raw_writer = writer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._plain = bytearray()

    @property
    def transport(self) -> asyncio.WriteTransport:
        return self._raw_writer.transport

    async def handshake(self) -> None:
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                await self._raw_reader_fill()
        self._flush()
        await self._raw_writer.drain()

    async def _raw_reader_fill(self) -> None:
        data = await self._raw_reader.read(CHUNK)
        if not data:
            self._incoming.write_eof()
            raise ConnectionResetError("peer closed the connection during TLS")
        self._incoming.write(data)

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._raw_writer.write(pending)

    def _pull(self) -> bool:
        """Move decrypted bytes into the plaintext buffer; False if more input is needed."""
        try:
            chunk = self._ssl.read(CHUNK)
        except ssl.SSLWantReadError:
            self._flush()  # renegotiation/key-update replies
            return False
        except ssl.SSLZeroReturnError:
            raise ConnectionResetError("TLS session closed") from None
        if not chunk:
            raise ConnectionResetError("TLS session closed")
        self._plain += chunk
        return True

    async def readexactly(self, n: int) -> bytes:
        while len(self._plain) < n:
            if not self._pull():
                try:
                    await self._raw_reader_fill()
                except ConnectionResetError:
                    partial = bytes(self._plain)
                    self._plain.clear()
                    raise asyncio.IncompleteReadError(partial, n) from None
        data = bytes(self._plain[:n])
        del self._plain[:n]
        return data

    async def read(self, n: int = -1) -> bytes:
        while not self._plain:
            if not self._pull():
                try:
                    await self._raw_reader_fill()
                except ConnectionResetError:
                    return b""
        size = len(self._plain) if n < 0 else min(n, len(self._plain))
        data = bytes(self._plain[:size])
        del self._plain[:size]
        return data

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = self._ssl.write(view[:CHUNK])
            view = view[written:]
            self._flush()

    async def drain(self) -> None:
        await self._raw_writer.drain()

    def is_closing(self) -> bool:
        return self._raw_writer.is_closing()

    def close(self) -> None:
        if self._raw_writer.is_closing():
            return
        try:
            self._ssl.unwrap()
        except ssl.SSLError:
            pass
        self._flush()
        self._raw_writer.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._ssl
        return self._raw_writer.get_extra_info(name, default)
