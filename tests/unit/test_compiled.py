"""The compiled hot path agrees with its pure-Python reference, byte for byte and value for
value: ``take_packet``, ``text_row_values``, ``text_row_key`` and the ``ResponseScanner``
(proxy/wire/_cscan.pyx against proxy/wire/scanner.py) and the statement-shape key and its
literals' places (proxy/sql/_cfastkey.pyx against ``proxy.sql.analyze._fast_base_pure`` and
``_fast_literals_pure``), on random, split and malformed input.

The extension is built by ``.ci/setup`` (``setup.py build_ext --inplace``); where it is not
built, the comparisons are skipped and the pure versions run everywhere (the fallback test
checks that this works and is reported).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import itertools
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import proxy
from proxy.sql import analyze
from proxy.wire import scanner as pure
from proxy.wire.packets import MAX_PAYLOAD, Capability, frame
from tests.unit.test_scanner import CASES


def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


cscan = _compiled("proxy.wire._cscan")
cfastkey = _compiled("proxy.sql._cfastkey")
needs_cscan = pytest.mark.skipif(cscan is None, reason="proxy.wire._cscan is not built")
needs_cfastkey = pytest.mark.skipif(cfastkey is None, reason="proxy.sql._cfastkey is not built")

CAPS = int(Capability.PROTOCOL_41 | Capability.TRANSACTIONS)
CAPABILITIES = [
    CAPS,
    0,
    int(Capability.PROTOCOL_41),
    CAPS | int(Capability.MARIADB_CLIENT_CACHE_METADATA),
    CAPS | int(Capability.DEPRECATE_EOF),
]


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """A call's result, or its exception as (type name, args): comparable across versions."""
    try:
        return "ok", call()
    except Exception as exc:
        return type(exc).__name__, exc.args


# --- take_packet ----------------------------------------------------------------------------


def frames_strategy(big: bool) -> st.SearchStrategy[bytes]:
    """A receive buffer: frames (some of 16 MiB - 1, continued), cut anywhere, or garbage."""
    lengths = st.integers(0, 40)
    if big:
        lengths = st.one_of(lengths, st.sampled_from([MAX_PAYLOAD - 1, MAX_PAYLOAD]))

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        out = bytearray()
        for length in draw(st.lists(lengths, max_size=6)):
            seq = draw(st.integers(0, 255))
            out += length.to_bytes(3, "little") + bytes([seq]) + bytes([seq]) * length
        out += draw(st.binary(max_size=12))
        cut = draw(st.integers(0, len(out)))
        return bytes(out[:cut]) if draw(st.booleans()) else bytes(out)

    return build()


def drain(take: Callable[[bytearray, int], Any], data: bytes, max_size: int) -> list[Any]:
    """Take packets until none is whole (or an error); every result and what is left."""
    buf = bytearray(data)
    results: list[Any] = []
    for _ in range(20):
        result = outcome(lambda: take(buf, max_size))
        results.append(result)
        if result[0] != "ok" or result[1] is None:
            break
    results.append(bytes(buf))
    return results


@needs_cscan
@settings(max_examples=400, deadline=None)
@given(data=frames_strategy(big=False), max_size=st.sampled_from([0, 5, 30, 100, 1 << 30]))
def test_take_packet_agrees(data: bytes, max_size: int) -> None:
    assert cscan is not None
    assert drain(cscan.take_packet, data, max_size) == drain(pure.take_packet, data, max_size)


@needs_cscan
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=frames_strategy(big=True),
    max_size=st.sampled_from([MAX_PAYLOAD, 2 * MAX_PAYLOAD, 1 << 30]),
)
def test_take_packet_agrees_at_16_mib(data: bytes, max_size: int) -> None:
    assert cscan is not None
    assert drain(cscan.take_packet, data, max_size) == drain(pure.take_packet, data, max_size)


# --- text_row_values -----------------------------------------------------------------------


def _text_row(values: list[bytes | None]) -> bytes:
    out = bytearray()
    for value in values:
        if value is None:
            out += b"\xfb"
        elif len(value) < 0xFB:
            out += bytes([len(value)]) + value
        elif len(value) < 1 << 16:
            out += b"\xfc" + len(value).to_bytes(2, "little") + value
        else:
            out += b"\xfd" + len(value).to_bytes(3, "little") + value
    return bytes(out)


_ROW_VALUES = st.lists(
    st.one_of(
        st.none(),
        st.binary(max_size=20),
        st.binary(min_size=250, max_size=300),
        st.binary(min_size=65_536, max_size=65_600),
    ),
    max_size=6,
)


@needs_cscan
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=_ROW_VALUES, count=st.integers(0, 8), cut=st.integers(0, 70_000), junk=st.binary())
def test_text_row_values_agrees(
    values: list[bytes | None], count: int, cut: int, junk: bytes
) -> None:
    """Whole rows, rows cut short (ProtocolError, same message), trailing and random bytes."""
    assert cscan is not None
    row = _text_row(values)
    for payload in (row, row[:cut], row + junk, junk):
        compiled = outcome(functools.partial(cscan.text_row_values, payload, count))
        assert compiled == outcome(functools.partial(pure.text_row_values, payload, count))
    if count <= len(values):
        assert cscan.text_row_values(row, count) == values[:count]


# Columns of every kind (type code, charset, flags) and values for each: text_row_key's
# shortcuts must give exactly what the columns' key functions give.
_KEY_COLUMNS = [
    (3, 63, 0),  # INT: integer
    (8, 63, 32),  # BIGINT UNSIGNED
    (253, 45, 0),  # VARCHAR utf8mb4_general_ci
    (253, 46, 128),  # VARCHAR utf8mb4_bin (BINARY_FLAG)
    (253, 63, 128),  # VARBINARY
    (12, 63, 128),  # DATETIME
    (246, 63, 0),  # DECIMAL
    (5, 63, 0),  # DOUBLE
    (11, 63, 128),  # TIME
]
_TEXTS = st.text(
    alphabet=st.sampled_from(["a", "Z", "z", " ", "~", "\t", "\x7f", "é", "ß", "😀", "_", "0"]),
    max_size=6,
)
_KEY_VALUES = [
    st.integers(-(2**63), 2**63 - 1).map(lambda i: str(i).encode()),
    st.integers(0, 2**64 - 1).map(lambda i: str(i).encode()),
    _TEXTS.map(str.encode),
    _TEXTS.map(str.encode),
    st.binary(max_size=6),
    st.sampled_from([b"2024-01-01 00:00:00", b"1999-12-31 23:59:59.5"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(lambda d: str(d).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(f).encode()),
    st.sampled_from([b"-838:59:59", b"00:00:01.5", b"12:00:00"]),
]


@needs_cscan
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_text_row_key_agrees(data: st.DataObject) -> None:
    from proxy.merge.rows import TextRows
    from proxy.merge.values import ColumnDefinition

    assert cscan is not None
    kinds = data.draw(st.lists(st.integers(0, len(_KEY_COLUMNS) - 1), min_size=1, max_size=4))
    columns = [
        ColumnDefinition(b"def", b"", b"", b"", b"c", b"", None, charset, 0, type_code, flags, 0)
        for type_code, charset, flags in (_KEY_COLUMNS[k] for k in kinds)
    ]
    values = [data.draw(st.one_of(st.none(), _KEY_VALUES[k])) for k in kinds]
    order = data.draw(
        st.lists(st.tuples(st.integers(0, len(kinds) - 1), st.booleans()), min_size=1, max_size=3)
    )
    upto, parts = TextRows(columns).key_parts(order)
    payload = _text_row(values)
    compiled = cscan.text_row_key(payload, upto, parts)
    assert compiled == pure.text_row_key(payload, upto, parts)
    assert [type(k) for k in compiled] == [type(k) for k in pure.text_row_key(payload, upto, parts)]


def _sized(*sizes: int) -> st.SearchStrategy[bytes]:
    """Bytes of one of ``sizes`` (a temporal's packed forms)."""
    return st.sampled_from(sizes).flatmap(lambda n: st.binary(min_size=n, max_size=n))


_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=2)

# Binary-protocol columns (type code, charset, flags) and their values' packed forms:
# binary_row_key's shortcuts must give exactly what BinaryRows.key gives.
_BIN_COLUMNS: list[tuple[tuple[int, int, int], st.SearchStrategy[bytes]]] = [
    ((1, 63, 0), st.binary(min_size=1, max_size=1)),  # TINYINT
    ((1, 63, 32), st.binary(min_size=1, max_size=1)),  # TINYINT UNSIGNED
    ((2, 63, 0), st.binary(min_size=2, max_size=2)),  # SMALLINT
    ((13, 63, 32), st.binary(min_size=2, max_size=2)),  # YEAR
    ((3, 63, 0), st.binary(min_size=4, max_size=4)),  # INT
    ((9, 63, 32), st.binary(min_size=4, max_size=4)),  # MEDIUMINT UNSIGNED
    ((8, 63, 0), st.binary(min_size=8, max_size=8)),  # BIGINT
    ((8, 63, 32), st.binary(min_size=8, max_size=8)),  # BIGINT UNSIGNED
    ((4, 63, 0), st.floats(width=32, allow_nan=False).map(lambda f: struct.pack("<f", f))),
    ((5, 63, 0), st.floats(allow_nan=False).map(lambda f: struct.pack("<d", f))),
    ((12, 63, 128), _sized(0, 4, 7, 11)),  # DATETIME
    ((10, 63, 128), _sized(0, 4)),  # DATE
    ((7, 63, 128), _sized(0, 4, 7, 11)),  # TIMESTAMP
    ((11, 63, 128), _sized(0, 8, 12)),  # TIME
    ((253, 45, 0), _TEXTS.map(str.encode)),  # VARCHAR utf8mb4_general_ci
    ((253, 46, 128), _TEXTS.map(str.encode)),  # VARCHAR utf8mb4_bin
    ((253, 63, 128), st.binary(max_size=300)),  # VARBINARY (some with a 0xFC length)
    ((246, 63, 0), _DECIMALS.map(lambda d: str(d).encode())),  # DECIMAL
]  # fmt: skip


@needs_cscan
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_binary_row_key_agrees(data: st.DataObject) -> None:
    """Compiled and reference binary_row_key agree (values, key types, errors) on rows of every
    binary column kind with NULLs, DESC and truncated rows; on whole rows both are the
    columns' BinaryRows.key."""
    from proxy.merge.rows import BinaryRows
    from proxy.merge.values import ColumnDefinition, Descending

    assert cscan is not None
    picks = data.draw(st.lists(st.integers(0, len(_BIN_COLUMNS) - 1), min_size=1, max_size=9))
    columns = [
        ColumnDefinition(b"def", b"", b"", b"", b"c", b"", None, charset, 0, type_code, flags, 0)
        for type_code, charset, flags in (_BIN_COLUMNS[k][0] for k in picks)
    ]
    codec = BinaryRows(columns)
    values = [data.draw(st.one_of(st.none(), _BIN_COLUMNS[k][1])) for k in picks]
    order = data.draw(
        st.lists(st.tuples(st.integers(0, len(picks) - 1), st.booleans()), min_size=1, max_size=4)
    )
    upto, parts = codec.key_parts(order)
    row = codec.build(values)
    cut = data.draw(st.integers(0, len(row)))
    for payload in (row, row[:cut]):
        args = (codec.bitmap_len, codec.widths, upto, parts, payload)
        compiled = outcome(functools.partial(cscan.binary_row_key, *args))
        reference = outcome(functools.partial(pure.binary_row_key, *args))
        assert compiled == reference
        if compiled[0] == "ok":
            assert [type(k) for k in compiled[1]] == [type(k) for k in reference[1]]
    expected = tuple(
        Descending(codec.key(c)(values[c])) if d else codec.key(c)(values[c]) for c, d in order
    )
    assert cscan.binary_row_key(codec.bitmap_len, codec.widths, upto, parts, row) == expected


# --- RowMerge ---------------------------------------------------------------------------------


def _merge_run(
    cls: Any,
    streams: list[list[bytes]],
    buffered: list[bool],
    plan: list[int],
    upto: int,
    parts: Any,
    key: Any,
    max_packet: int,
) -> list[Any]:
    """Drive a RowMerge as the merge does: each stream's answer (row packets, then an EOF)
    arrives in its buffer a few bytes at a time (``plan`` says how many, and the batch
    sizes); a stream the merge hands back reads its next packet itself (``take_packet``).
    Every call's result, the rows of each batch and the buffers' contents are recorded."""
    wire = []
    for rows in streams:
        data = bytearray()
        for seq, payload in enumerate([*rows, b"\xfe\x00\x00\x02\x00"]):
            data += frame(seq & 0xFF, payload)
        wire.append(data)
    buffers: list[bytearray] = [bytearray() for _ in streams]
    sent = [0] * len(streams)
    steps = iter(plan)

    def arrive(i: int) -> None:
        n = next(steps, 7) % 50 + 1
        buffers[i] += wire[i][sent[i] : sent[i] + n]
        sent[i] += n

    def read(i: int) -> bytes | None:
        while (packet := pure.take_packet(buffers[i], 1 << 30)) is None:
            arrive(i)
        payload: bytes = packet[1]
        return None if payload[:1] == b"\xfe" else payload

    merge = cls(
        [b if on else None for b, on in zip(buffers, buffered, strict=True)],
        max_packet,
        upto,
        parts,
        key,
    )
    record: list[Any] = []

    def head(i: int) -> Any:
        return merge.set_head(i, read(i))

    for i in range(len(streams)):
        arrive(i)
        record.append(outcome(functools.partial(head, i)))
    for _ in range(200):
        for i in range(len(streams)):
            if next(steps, 0) % 3 == 0:
                arrive(i)
        out: list[bytes] = []
        result = outcome(functools.partial(merge.run, out, next(steps, 5) % 9))
        record.append((result, out, [bytes(b) for b in buffers], merge.streams))
        if result[0] != "ok" or result[1] == -1:
            break
        if result[1] >= 0:
            record.append(outcome(functools.partial(head, result[1])))
    return record


@needs_cscan
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_row_merge_agrees(data: st.DataObject) -> None:
    """The compiled RowMerge takes the same rows in the same batches, leaves the same bytes in
    the buffers and hands back the same streams as the reference, over text rows of every
    key kind (NULLs, DESC, ties across streams, long values read by the reference), rows
    larger than ``max_packet``, streams without a buffer, and a caller's key function; the
    rows come out in (key, stream) order."""
    from proxy.merge.rows import TextRows
    from proxy.merge.values import ColumnDefinition

    assert cscan is not None
    kinds = data.draw(st.lists(st.integers(0, len(_KEY_COLUMNS) - 1), min_size=1, max_size=3))
    columns = [
        ColumnDefinition(b"def", b"", b"", b"", b"c", b"", None, charset, 0, type_code, flags, 0)
        for type_code, charset, flags in (_KEY_COLUMNS[k] for k in kinds)
    ]
    order = data.draw(
        st.lists(st.tuples(st.integers(0, len(kinds) - 1), st.booleans()), min_size=1, max_size=3)
    )
    upto, parts = TextRows(columns).key_parts(order)
    # Values of 251 bytes and more (a 0xFC length: the compiled key reads such a row with
    # text_row_key) for the kinds that have them.
    long = {0: b"0" * 298 + b"7", 1: b"0" * 299 + b"1", 2: b"a" * 300, 3: b"Z" * 300, 4: b"~" * 300}
    values = [
        st.one_of(st.none(), _KEY_VALUES[k], *([st.just(long[k])] if k in long else []))
        for k in kinds
    ]
    custom = data.draw(st.booleans())
    key = (lambda payload: (len(payload) % 3, payload)) if custom else None

    def sort_key(payload: bytes) -> Any:
        return key(payload) if key is not None else pure.text_row_key(payload, upto, parts)

    streams = []
    for _ in range(data.draw(st.integers(1, 4))):
        rows = [
            _text_row([data.draw(v) for v in values]) for _ in range(data.draw(st.integers(0, 6)))
        ]
        # Ties within a stream and across streams: values drawn from a few.
        tie = data.draw(st.booleans())
        if rows and tie:
            rows = rows + rows[: data.draw(st.integers(0, len(rows)))]
        streams.append(sorted(rows, key=sort_key))
    buffered = data.draw(st.lists(st.booleans(), min_size=len(streams), max_size=len(streams)))
    plan = data.draw(st.lists(st.integers(0, 1000), max_size=300))
    max_packet = data.draw(st.sampled_from([1 << 30, 12]))
    args = (streams, buffered, plan, upto, parts, key, max_packet)
    compiled = _merge_run(cscan.RowMerge, *args)
    assert compiled == _merge_run(pure.RowMerge, *args)
    taken = [row for entry in compiled if isinstance(entry, tuple) and len(entry) == 4
             for row in entry[1]]  # fmt: skip
    if compiled[-1][0] == ("ok", -1):
        expected = sorted(
            [(sort_key(r), i, n, r) for i, rows in enumerate(streams) for n, r in enumerate(rows)]
        )
        assert taken == [r for *_, r in expected]


@needs_cscan
def test_take_packet_joins_16_mib_frames() -> None:
    assert cscan is not None
    payload = bytes(range(256)) * (MAX_PAYLOAD // 128)  # ~32 MiB: two frames
    data = frame(3, payload) + frame(9, b"next")
    assert drain(cscan.take_packet, data, 1 << 30) == drain(pure.take_packet, data, 1 << 30)
    buf = bytearray(data)
    assert cscan.take_packet(buf, 1 << 30) == (4, payload)
    assert cscan.take_packet(buf, 1 << 30) == (9, b"next")


# --- the response scanner -------------------------------------------------------------------

KINDS = list(pure.ResponseKind)


@st.composite
def packet(draw: st.DrawFn) -> bytes:
    """A payload that matters to the scanner: OK/EOF/ERR heads, column counts, rows, junk."""
    first = draw(st.sampled_from([0x00, 0x01, 0x02, 0x05, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF, 0x30]))
    rest = draw(st.binary(max_size=14))
    if draw(st.integers(0, 9)) == 0:
        return b""
    return bytes([first]) + rest


@st.composite
def stream(draw: st.DrawFn) -> tuple[pure.ResponseKind, int, bytes, list[int]]:
    """A response (a known good one, random packets, or both) and where to cut it."""
    kind = draw(st.sampled_from(KINDS))
    payloads: list[bytes] = []
    if draw(st.booleans()):
        case = draw(st.sampled_from(CASES))
        kind = case[1]
        payloads += case[2]
    payloads += draw(st.lists(packet(), max_size=10))
    if draw(st.booleans()):
        payloads = draw(st.permutations(payloads))
    data = b"".join(frame(i & 0xFF, p) for i, p in enumerate(payloads))
    data += draw(st.binary(max_size=6))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    return kind, draw(st.sampled_from(CAPABILITIES)), data, cuts


def state(scanner: Any) -> tuple[Any, ...]:
    return (
        scanner.status,
        scanner.error,
        scanner.errno,
        scanner.rows,
        scanner.statement_id,
        scanner.prepared_params,
        scanner.prepared_columns,
        scanner.error_at,
    )


def run_feed(cls: Any, kind: pure.ResponseKind, caps: int, data: bytes, cuts: list[int]) -> Any:
    scanner = cls(kind, caps)
    results: list[Any] = []
    points = [0, *cuts, len(data)]
    for start, end in itertools.pairwise(points):
        result = outcome(functools.partial(scanner.feed, data[start:end]))
        results.append((result, scanner.unsure))
        if result[0] != "ok" or result[1] >= 0:
            break
    return results, state(scanner)


def run_frames(cls: Any, kind: pure.ResponseKind, caps: int, data: bytes) -> Any:
    """``frame()`` over the stream's wire frames, each in a buffer with bytes around it."""
    scanner = cls(kind, caps)
    results: list[Any] = []
    pos = 0
    while pos + 4 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "little")
        end = min(pos + 4 + length, len(data))
        buf = bytearray(b"<<" + data[pos + 4 : end] + b">>")
        result = outcome(functools.partial(scanner.frame, buf, 2, 2 + end - pos - 4))
        results.append(result)
        if result[0] != "ok" or result[1]:
            break
        pos = end
    return results, state(scanner)


@needs_cscan
@settings(max_examples=1500, deadline=None)
@given(case=stream())
def test_scanner_agrees(case: tuple[pure.ResponseKind, int, bytes, list[int]]) -> None:
    assert cscan is not None
    kind, caps, data, cuts = case
    assert run_feed(cscan.ResponseScanner, kind, caps, data, cuts) == run_feed(
        pure.ResponseScanner, kind, caps, data, cuts
    )
    assert run_frames(cscan.ResponseScanner, kind, caps, data) == run_frames(
        pure.ResponseScanner, kind, caps, data
    )


@needs_cscan
@settings(max_examples=100, deadline=None)
@given(case=st.sampled_from(CASES), step=st.integers(1, 7))
def test_scanner_agrees_byte_by_byte(case: Any, step: int) -> None:
    assert cscan is not None
    _, kind, payloads, *_ = case
    data = b"".join(frame(i & 0xFF, p) for i, p in enumerate(payloads))
    cuts = list(range(step, len(data), step))
    assert run_feed(cscan.ResponseScanner, kind, CAPS, data, cuts) == run_feed(
        pure.ResponseScanner, kind, CAPS, data, cuts
    )


@needs_cscan
def test_scanner_agrees_across_16_mib_rows() -> None:
    assert cscan is not None
    big = b"\xfc" + b"\x00" * MAX_PAYLOAD
    huge = b"\x05" + b"\xfe" * (MAX_PAYLOAD + 100)
    payloads = [b"\x01", b"\x03def" + b"x" * 20, b"\xfe\x00\x00\x02\x00", big, huge, b"\x01a"]
    payloads.append(b"\xfe\x00\x00\x02\x00")
    data = b"".join(pure_frames(payloads))
    cuts = list(range(1 << 20, len(data), (1 << 20) + 7))
    kind = pure.ResponseKind.QUERY
    theirs = run_feed(pure.ResponseScanner, kind, CAPS, data, cuts)
    assert run_feed(cscan.ResponseScanner, kind, CAPS, data, cuts) == theirs
    assert theirs[1][3] == 3  # rows


def pure_frames(payloads: list[bytes]) -> list[bytes]:
    out = []
    seq = 1
    for payload in payloads:
        out.append(frame(seq, payload))
        seq = (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF
    return out


# --- the statement-shape key ----------------------------------------------------------------

FRAGMENTS = [
    "SELECT",
    " ",
    "c",
    "FROM",
    "sbtest1",
    "WHERE",
    "id",
    "=",
    "5005",
    "1.5",
    "1.",
    ".5",
    "0",
    "'a'",
    "''",
    "'it''s'",
    "'\\n'",
    "'\x00'",
    "'é'",
    "'\udc80'",
    "`t`",
    "`a$1`",
    "``",
    "$",
    '"',
    "?",
    "?a",
    ":=",
    ":",
    "<=>",
    "<=",
    "<>",
    "!=",
    "--",
    "-",
    "/*",
    "/",
    "*",
    "#",
    ";",
    ",",
    "(",
    ")",
    "IN",
    "in",
    "VALUES",
    "NULL",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "é",
    "\udcff",
    ".",
    "a.b",
    "_x",
    "x$",
    "1e5",
    "0x1F",
    "@v",
    "%",
    "|",
    "&",
    "^",
    "~",
    "+",
    "!",
    "\\",
    "count",
    "Sum",
    "now",
    "t.max",
    " (",
]


@needs_cfastkey
@settings(max_examples=3000, deadline=None)
@given(
    sql=st.one_of(
        st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join),
        st.text(max_size=40),
        st.text(alphabet="ab1.' `?:=-/*\\\x00é\t", max_size=30),
    )
)
def test_fast_key_agrees(sql: str) -> None:
    assert cfastkey is not None
    assert cfastkey.fast_base(sql) == analyze._fast_base_pure(sql)


@needs_cfastkey
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count (v) FROM t",
        "SELECT COUNT\n\t(v) FROM t",
        "SELECT t.sum (v) FROM t",
        "SELECT `a`max (v)",
        "SELECT count(v), counts (v), xcount (v) FROM t",
        "SELECT v FROM count (a)",
    ],
)
def test_fast_key_leaves_out_what_ignore_space_reads_otherwise(sql: str) -> None:
    """``count (v)`` is the built-in under IGNORE_SPACE, a stored function without it: not in
    the fast language (whose key has no lexer mode), in both scans alike."""
    assert cfastkey is not None
    assert cfastkey.fast_base(sql) == analyze._fast_base_pure(sql)
    assert (cfastkey.fast_base(sql) is None) == ("count(v)" not in sql)


@needs_cfastkey
@settings(max_examples=3000, deadline=None)
@given(
    sql=st.one_of(
        st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join),
        st.text(max_size=40),
        st.text(alphabet="ab1.' `?:=-/*\\\x00é\t", max_size=30),
    )
)
def test_fast_literals_agree(sql: str) -> None:
    """The literal spans: the compiled scan's are the reference's, and putting ``?`` / ``'?'``
    in their place gives the fast key."""
    assert cfastkey is not None
    found = cfastkey.fast_literals(sql)
    assert found == analyze._fast_literals_pure(sql)
    assert (found is None) == (cfastkey.fast_base(sql) is None)
    if found is not None:
        key, spans = found
        out, at = [], 0
        for start, end in zip(spans[::2], spans[1::2], strict=True):
            out += [sql[at:start], "'?'" if sql[start] == "'" else "?"]
            at = end
        assert "".join(out) + sql[at:] == key


@needs_cfastkey
def test_fast_key_length_limit() -> None:
    assert cfastkey is not None
    for sql in ("SELECT 1 " + " " * 4087, "SELECT 1 " + " " * 4088, "x" * 5000):
        assert cfastkey.fast_base(sql) == analyze._fast_base_pure(sql)


@needs_cfastkey
def test_fast_key_examples() -> None:
    assert cfastkey is not None
    assert cfastkey.fast_base(" SELECT c FROM t WHERE id=5 AND s='x' ") == (
        " SELECT c FROM t WHERE id=? AND s='?' "
    )
    assert cfastkey.fast_base("SELECT `a`1") == "SELECT `a`1"
    assert cfastkey.fast_base("SELECT 1; SELECT 2") is None
    assert cfastkey.fast_base("   ") is None


# --- the fallback ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(head=st.binary(max_size=20), value=st.binary(min_size=0, max_size=8))
def test_uint_le_agrees_with_int_from_bytes(head: bytes, value: bytes) -> None:
    """FastPath's reading of an execution's integer parameter (proxy.session.fast.uint_le,
    compiled where built: C unsigned arithmetic) is int.from_bytes of the bytes after
    ``at``, up to 8 of them, extremes included."""
    from proxy.session import fast

    packet = head + value
    assert fast.uint_le(packet, len(head)) == int.from_bytes(value, "little")
    assert fast.uint_le(head + b"\xff" * 8, len(head)) == 2**64 - 1


def test_pure_fallback_when_the_extension_is_missing() -> None:
    """Without the extension the pure modules run, and the reason is there to be logged."""
    code = (
        "import sys\n"
        "sys.modules['proxy.wire._cscan'] = None\n"
        "sys.modules['proxy.sql._cfastkey'] = None\n"
        "from proxy.wire import stream, scanner\n"
        "from proxy.sql import analyze\n"
        "assert stream.ResponseScanner is scanner.ResponseScanner\n"
        "assert stream.take_packet is scanner.take_packet\n"
        "assert stream.RowMerge is scanner.RowMerge\n"
        "assert stream.binary_row_key is scanner.binary_row_key\n"
        "assert stream.COMPILED_MISSING and analyze.FAST_BASE_MISSING\n"
        "assert analyze._fast_base is analyze._fast_base_pure\n"
        "print('pure')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pure"


# --- coalesced writes -----------------------------------------------------------------------


class _Recorder:
    """The transport side of a PacketConnection: what it was asked to send, call by call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, parts: list[bytes | memoryview]) -> None:
        self.calls.append(("writelines", b"".join(parts)))

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize(
    "sizes", [[7, 30, 0, 120], [5], [MAX_PAYLOAD - 1, 3], [MAX_PAYLOAD, 4], [2 * MAX_PAYLOAD + 9]]
)
def test_write_many_is_one_vectored_write(sizes: list[int]) -> None:
    """A whole small result set leaves in one writelines() call (one send()), with the same
    bytes and sequence numbers as packet-by-packet framing."""
    from proxy.wire.stream import PacketConnection

    payloads = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    conn = PacketConnection()
    recorder = _Recorder()
    conn.connection_made(recorder)  # type: ignore[arg-type]
    next_seq = conn.write_many(250, payloads)
    expected = b""
    seq = 250
    for payload in payloads:
        expected += frame(seq, payload)
        seq = (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF
    assert recorder.calls == [("writelines", expected)]
    assert next_seq == seq


# --- modules compiled as they are (proxy/__init__.py's finder) ------------------------------


def _module_pair(directory: Path, source: str, name: str = "fake") -> str:
    """``directory/NAME.py`` holding ``source`` and a (dummy) extension file next to it; the
    digest of the source and its .pxd, if there is one."""
    (directory / f"{name}.py").write_text(source)
    (directory / f"{name}{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    pxd = directory / f"{name}.pxd"
    return hashlib.sha256(source.encode() + (pxd.read_bytes() if pxd.exists() else b"")).hexdigest()


def test_a_compiled_module_loads_only_from_the_source_it_was_built_from(tmp_path: Path) -> None:
    digest = _module_pair(tmp_path, "X = 1\n")
    finder = proxy.CompiledFinder(pure=False, built={"proxy.fake": digest})
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, ExtensionFileLoader)
    assert finder.compiled == {"proxy.fake"} and not finder.skipped
    (tmp_path / "fake.py").write_text("X = 2\n")  # edited after the build
    finder = proxy.CompiledFinder(pure=False, built={"proxy.fake": digest})
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, SourceFileLoader)
    assert spec.origin == str(tmp_path / "fake.py")
    assert finder.skipped == {"proxy.fake": proxy.STALE} and not finder.compiled
    # An extension the manifest does not name (a build that skipped it): the source.
    finder = proxy.CompiledFinder(pure=False, built={})
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, SourceFileLoader)
    # Not ours: the ordinary finders'.
    assert finder.find_spec("fake", [str(tmp_path)]) is None
    assert finder.find_spec("proxy.absent", [str(tmp_path)]) is None


def test_a_compiled_module_runs_as_python_when_a_module_it_cimports_does(tmp_path: Path) -> None:
    """A compiled module typed with another's classes (its .pxd cimports them: pool.pxd uses
    connection.pxd's BackendConnection) loads only while that one runs compiled too: its
    import would fail on the pure class. The reason is reported."""
    base = _module_pair(tmp_path, "class Base: ...\n", "base")
    (tmp_path / "fake.pxd").write_text("from proxy.base cimport Base\n")
    fake = _module_pair(tmp_path, "X = 1\n", "fake")
    built = {"proxy.base": base, "proxy.fake": fake}
    finder = proxy.CompiledFinder(pure=False, built=built)
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, ExtensionFileLoader)
    (tmp_path / "base.py").write_text("class Base:\n    edited = 1\n")
    finder = proxy.CompiledFinder(pure=False, built=built)
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, SourceFileLoader)
    assert finder.skipped == {"proxy.fake": "it uses the types of proxy.base, which runs as Python"}
    # Not built at all, or its extension gone: the same.
    finder = proxy.CompiledFinder(pure=False, built={"proxy.fake": fake})
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, SourceFileLoader)
    base = _module_pair(tmp_path, "class Base: ...\n", "base")
    (tmp_path / f"base{EXTENSION_SUFFIXES[0]}").unlink()
    finder = proxy.CompiledFinder(pure=False, built={"proxy.base": base, "proxy.fake": fake})
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, SourceFileLoader)


def test_pure_mode_loads_only_sources(tmp_path: Path) -> None:
    digest = _module_pair(tmp_path, "X = 1\n")
    (tmp_path / f"twin{EXTENSION_SUFFIXES[0]}").write_bytes(b"")  # compiled only (_cscan)
    finder = proxy.CompiledFinder(pure=True, built={"proxy.fake": digest})
    spec = finder.find_spec("proxy.fake", [str(tmp_path)])
    assert spec is not None and isinstance(spec.loader, SourceFileLoader)
    assert finder.skipped == {"proxy.fake": f"{proxy.PURE_ENV} is set"}
    with pytest.raises(ModuleNotFoundError):
        finder.find_spec("proxy.twin", [str(tmp_path)])
    assert (
        proxy.CompiledFinder(pure=False, built={}).find_spec("proxy.twin", [str(tmp_path)]) is None
    )


@needs_cscan
def test_pure_python_switch_in_a_process_of_its_own() -> None:
    """``SHARDGATE_PURE_PYTHON=1``: the built extensions are there and not used."""
    code = (
        "from proxy.wire import stream, scanner\n"
        "from proxy.sql import analyze\n"
        "from proxy.server import hot_path\n"
        "assert stream.ResponseScanner is scanner.ResponseScanner\n"
        "assert analyze._fast_base is analyze._fast_base_pure\n"
        "print(hot_path())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, proxy.PURE_ENV: "1"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pure Python (SHARDGATE_PURE_PYTHON is set")


def test_setup_py_and_the_finder_share_one_source_digest(tmp_path: Path) -> None:
    """The manifest's digests (setup.py) and the finder's check (proxy/__init__.py) come from
    one definition, proxy/sourcedigest.py: two copies could drift apart, and every compiled module
    would then run as Python ("source changed"). setup.py loads it by path (on a clean clone
    the package cannot be imported before its extensions are built): it defines no digest of
    its own and imports nothing of ``proxy``."""
    import ast

    from proxy import sourcedigest

    root = Path(__file__).resolve().parents[2]
    for path in (root / "setup.py", root / "proxy" / "__init__.py"):
        tree = ast.parse(path.read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert "source_digest" not in defined, path
    setup_tree = ast.parse((root / "setup.py").read_text())
    for node in ast.walk(setup_tree):
        if isinstance(node, ast.Import):
            assert not any(alias.name.split(".")[0] == "proxy" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "proxy"
    assert vars(proxy)["source_digest"] is sourcedigest.source_digest
    # setup.py's (run as a script by setuptools: loaded here without running setup()).
    probe = (
        "import runpy, setuptools; setuptools.setup = lambda **kw: None; "
        "ns = runpy.run_path('setup.py'); "
        "import sys; print(ns['source_digest'](sys.argv[1]))"
    )
    (tmp_path / "m.py").write_text("X = 1\n")
    (tmp_path / "m.pxd").write_text("cdef int X\n")
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "m.py")],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == sourcedigest.source_digest(str(tmp_path / "m.py"))
