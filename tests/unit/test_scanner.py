"""The response scanner: where a backend response ends, however its bytes are chunked.

Responses are built with the codec's own builders (and one real-world oddity each: rows that
start with 0xFE, rows larger than 16 MiB, multi-result sets). Each is fed whole, one wire frame
at a time (``frame``), and cut into chunks at arbitrary points (``feed``); all three must agree
on where the response ends, its status flags, its row count and the prepared statement's id.
"""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.wire.packets import (
    MAX_PAYLOAD,
    Capability,
    ServerStatus,
    build_column_count,
    build_column_definition,
    build_eof,
    build_err,
    build_ok,
    build_text_row,
    frame,
)
from proxy.wire.stream import ProtocolViolation, ResponseKind, ResponseScanner

CAPS = int(Capability.PROTOCOL_41 | Capability.TRANSACTIONS)
AUTOCOMMIT = int(ServerStatus.AUTOCOMMIT)
MORE = int(ServerStatus.MORE_RESULTS_EXISTS)
CURSOR = int(ServerStatus.CURSOR_EXISTS)


def wire(payloads: list[bytes]) -> bytes:
    out = b""
    seq = 1
    for payload in payloads:
        out += frame(seq, payload)
        seq = (seq + len(payload) // MAX_PAYLOAD + 1) & 0xFF
    return out


def resultset(rows: list[bytes], status: int = AUTOCOMMIT, columns: int = 2) -> list[bytes]:
    defs = [build_column_definition(name=f"c{i}", type_code=253, table="t") for i in range(columns)]
    return [build_column_count(columns), *defs, build_eof(), *rows, build_eof(status=status)]


def ok(status: int = AUTOCOMMIT) -> bytes:
    return build_ok(capabilities=CAPS, affected_rows=3, last_insert_id=7, status=status)


def err() -> bytes:
    return build_err(errno=1146, sqlstate="42S02", message="no such table", capabilities=CAPS)


def prepare_ok(statement_id: int, params: int, columns: int) -> bytes:
    return b"\x00" + struct.pack("<IHHxH", statement_id, columns, params, 0)


FE_ROW = build_text_row(["x" * 300, None])  # a lenenc 0xFC..; next: one that starts with 0xFE
FE_ROW_LONG = b"\xfe" + (20).to_bytes(8, "little") + b"y" * 20  # a >=9-byte row starting 0xFE
ROWS = [build_text_row([str(i), "v" * (i % 50)]) for i in range(40)]

# (name, kind, payloads, status, rows, statement id)
CASES: list[tuple[str, ResponseKind, list[bytes], int, int, int | None]] = [
    ("ok", ResponseKind.QUERY, [ok()], AUTOCOMMIT, 0, None),
    ("err", ResponseKind.QUERY, [err()], -1, 0, None),
    ("rows", ResponseKind.QUERY, resultset(ROWS), AUTOCOMMIT, 40, None),
    ("empty result", ResponseKind.QUERY, resultset([]), AUTOCOMMIT, 0, None),
    ("0xFE rows", ResponseKind.QUERY, resultset([FE_ROW, FE_ROW_LONG]), AUTOCOMMIT, 2, None),
    (
        "multi results",
        ResponseKind.QUERY,
        [*resultset(ROWS[:3], AUTOCOMMIT | MORE), ok(AUTOCOMMIT | MORE), *resultset(ROWS[:2])],
        AUTOCOMMIT,
        5,
        None,
    ),
    ("error mid rows", ResponseKind.QUERY, [*resultset(ROWS[:5])[:-1], err()], -1, 5, None),
    (
        "error after a result",
        ResponseKind.QUERY,
        [*resultset(ROWS[:3], AUTOCOMMIT | MORE), err()],
        -1,
        3,
        None,
    ),
    (
        "cursor",
        ResponseKind.QUERY,
        [*resultset([])[:-1][:-1], build_eof(status=AUTOCOMMIT | CURSOR)],
        AUTOCOMMIT | CURSOR,
        0,
        None,
    ),
    ("fetch", ResponseKind.FETCH, [*ROWS[:7], build_eof(status=AUTOCOMMIT)], AUTOCOMMIT, 7, None),
    (
        "prepare",
        ResponseKind.PREPARE,
        [prepare_ok(5, 2, 1), *resultset([])[1:3], build_eof(), *resultset([])[1:2], build_eof()],
        -2,
        0,
        5,
    ),
    ("prepare no params", ResponseKind.PREPARE, [prepare_ok(9, 0, 0)], -2, 0, 9),
    ("single ok", ResponseKind.SINGLE, [ok(0)], 0, 0, None),
    ("single statistics", ResponseKind.SINGLE, [b"Uptime: 5  Threads: 1"], -2, 0, None),
    (
        "field list",
        ResponseKind.FIELD_LIST,
        [*resultset([])[1:3], build_eof(status=AUTOCOMMIT)],
        AUTOCOMMIT,
        0,
        None,
    ),
]


def expected_status(status: int) -> int | None:
    return None if status < 0 else status


def check(scanner: ResponseScanner, status: int, rows: int, statement_id: int | None) -> None:
    assert scanner.error == (status == -1)
    assert scanner.errno == (1146 if status == -1 else 0)  # the ERR that ended it
    if status != -1:
        assert scanner.status == expected_status(status)
    assert scanner.rows == rows
    assert scanner.statement_id == statement_id


@pytest.mark.parametrize(("name", "kind", "payloads", "status", "rows", "sid"), CASES)
def test_whole_and_frame_by_frame(
    name: str,
    kind: ResponseKind,
    payloads: list[bytes],
    status: int,
    rows: int,
    sid: int | None,
) -> None:
    data = wire(payloads)
    whole = ResponseScanner(kind, CAPS)
    assert whole.feed(data + b"trailing") == len(data)
    check(whole, status, rows, sid)

    framed = ResponseScanner(kind, CAPS)
    done = [framed.frame(p, 0, len(p)) for p in payloads]
    assert done == [False] * (len(payloads) - 1) + [True]
    check(framed, status, rows, sid)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(CASES), cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_any_chunking_finds_the_same_end(
    case: tuple[str, ResponseKind, list[bytes], int, int, int | None], cuts: list[int]
) -> None:
    _, kind, payloads, status, rows, sid = case
    data = wire(payloads)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    scanner = ResponseScanner(kind, CAPS)
    consumed = 0
    for start, end in itertools.pairwise(points):
        result = scanner.feed(data[start:end])
        if end < len(data):
            assert result == -1
        else:
            assert result == end - start
        consumed = end
    assert consumed == len(data)
    check(scanner, status, rows, sid)


def test_byte_by_byte() -> None:
    payloads = [*resultset([FE_ROW, FE_ROW_LONG, *ROWS[:3]], AUTOCOMMIT | MORE), ok()]
    data = wire(payloads)
    scanner = ResponseScanner(ResponseKind.QUERY, CAPS)
    results = [scanner.feed(data[i : i + 1]) for i in range(len(data))]
    assert results == [-1] * (len(data) - 1) + [1]
    assert scanner.rows == 5 and scanner.status == AUTOCOMMIT


def test_row_larger_than_16_mib_is_skipped_across_frames() -> None:
    big = b"\xfc" + b"\x00" * MAX_PAYLOAD  # 16 MiB + 1 bytes: a full frame and a 1-byte one
    huge = b"\x05" + b"\xfe" * (MAX_PAYLOAD + 100)  # continuation frame starts with 0xFE
    data = wire(resultset([big, huge, ROWS[0]]))
    scanner = ResponseScanner(ResponseKind.QUERY, CAPS)
    step = 1 << 20
    results = [scanner.feed(data[i : i + step]) for i in range(0, len(data), step)]
    assert results[-1] == len(data) - (len(results) - 1) * step
    assert set(results[:-1]) == {-1}
    assert scanner.rows == 3 and scanner.status == AUTOCOMMIT


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (ResponseKind.QUERY, b"\xfb/etc/passwd", "LOCAL INFILE"),
        (ResponseKind.QUERY, build_eof(), "unexpected EOF"),
        (ResponseKind.PREPARE, ok(), None),
        (ResponseKind.QUERY, b"", "empty packet"),
    ],
)
def test_violations(kind: ResponseKind, payload: bytes, message: str | None) -> None:
    scanner = ResponseScanner(kind, CAPS)
    with pytest.raises(ProtocolViolation, match=message):
        scanner.feed(wire([payload]))
