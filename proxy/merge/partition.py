"""Reading one partition's answer for the merge, at the pace the merge takes its rows."""

from __future__ import annotations

from collections.abc import AsyncIterator

from proxy.wire.packets import Capability, is_err_packet, read_lenenc_int
from proxy.wire.stream import PacketConnection

# Bytes a partition's connection may hold unread while the merge takes rows from the others.
BUFFER_LIMIT = 1 << 20


async def result_payloads(
    conn: PacketConnection,
    *,
    capabilities: int,
    max_packet: int,
    buffer_limit: int = BUFFER_LIMIT,
) -> AsyncIterator[bytes]:
    """The payloads of the answer to the command just sent on ``conn`` (one result set, text
    or binary, or an OK or ERR), up to and including its last packet. ``capabilities``: the
    connection's (DEPRECATE_EOF decides where the column definitions end).

    Send the statement to every partition first, then hand these to ``merge_results``: the
    partitions work in parallel. While this runs, ``conn`` stops reading its socket whenever
    ``buffer_limit`` bytes wait unread, so a partition whose rows the merge does not need yet
    is held back by TCP rather than buffered in the proxy. If the merge stops early it reads
    the rest (``merge_results`` drains every partition)."""
    conn.limit_reading(buffer_limit)
    try:
        _, first = await conn.read(max_packet)
        yield first
        if is_err_packet(first) or first[:1] == b"\x00":
            return
        count, _ = read_lenenc_int(first, 0)
        definitions = count or 0
        if not capabilities & Capability.DEPRECATE_EOF:
            definitions += 1  # and their EOF
        for _ in range(definitions):
            _, payload = await conn.read(max_packet)
            yield payload
        while True:
            _, payload = await conn.read(max_packet)
            yield payload
            if is_err_packet(payload) or (payload[:1] == b"\xfe" and len(payload) < 0xFFFFFF):
                return
    finally:
        conn.limit_reading(0)
