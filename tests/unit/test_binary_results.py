"""``BinaryResults``: a text answer's packets as the binary protocol's (the executions of the
statements the proxy answers itself). Each value written as a binary field reads back, through
the merge engine's own binary reading (``BinaryRows.parse`` / ``text``), as the text it was."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.merge.rows import BinaryResults, BinaryRows
from proxy.merge.values import ColumnDefinition
from proxy.wire.packets import (
    Capability,
    build_column_definition,
    build_eof,
    build_err,
    build_ok,
    build_text_row,
    lenenc_int,
)

T_LONG, T_LONGLONG, T_DOUBLE, T_DATE, T_DATETIME, T_TIME, T_VAR_STRING = 3, 8, 5, 10, 12, 11, 253


def _definition(name: str, type_code: int, flags: int = 0) -> bytes:
    return build_column_definition(name=name, type_code=type_code, flags=flags)


COLUMNS = [
    ("n", T_LONG, 0),
    ("u", T_LONGLONG, 32),  # UNSIGNED
    ("f", T_DOUBLE, 0),
    ("d", T_DATE, 0),
    ("dt", T_DATETIME, 0),
    ("t", T_TIME, 0),
    ("s", T_VAR_STRING, 0),
]


def _convert(rows: list[list[bytes | None]], capabilities: int = 0) -> list[bytes]:
    packets = [lenenc_int(len(COLUMNS))]
    packets += [_definition(*column) for column in COLUMNS]
    packets += [build_eof(), *(build_text_row(row) for row in rows), build_eof()]
    converter = BinaryResults(capabilities)
    return [converter.convert(packet) for packet in packets]


@pytest.mark.parametrize(
    "row",
    [
        [b"-5", b"18446744073709551615", b"1.5", b"2026-12-05", b"2026-12-05 01:02:03.000450",
         b"-838:59:59", b"x"],
        [b"0", b"0", b"0", b"0000-00-00", b"2026-12-05 00:00:00", b"00:00:00", b""],
        [None, None, None, None, None, None, None],
        [b"7", b"1", b"-0.25", b"1000-01-01", b"2026-01-02 03:04:05", b"26:00:00.500000", b"y"],
    ],
)  # fmt: skip
def test_rows_read_back_as_their_text(row: list[bytes | None]) -> None:
    out = _convert([row])
    assert out[: 2 + len(COLUMNS)] == [
        lenenc_int(len(COLUMNS)),
        *(_definition(*c) for c in COLUMNS),
        build_eof(),
    ]
    rows = BinaryRows([ColumnDefinition.parse(_definition(*c)) for c in COLUMNS])
    values = rows.parse(out[-2], len(COLUMNS))
    back = [None if v is None else rows.text(i, v) for i, v in enumerate(values)]
    expected = list(row)
    if row[3] == b"0000-00-00":  # (a zero date packs to no bytes, as MariaDB's)
        assert values[3] == b""
        expected[3] = back[3]
    if row[5] == b"00:00:00":
        assert values[5] == b""
        expected[5] = back[5]
    if row[2] is not None:  # (a double's text: the value)
        assert float(back[2] or b"") == float(row[2])
        expected[2] = back[2]
    assert back == expected
    assert out[-2][:1] == b"\x00"


def test_oks_errors_and_the_metadata_flag() -> None:
    converter = BinaryResults(0)
    ok = build_ok(capabilities=0)
    err = build_err(errno=1146, sqlstate="42S02", message="no", capabilities=0)
    assert converter.convert(ok) == ok
    assert converter.convert(err) == err
    caps = int(Capability.MARIADB_CLIENT_CACHE_METADATA | Capability.DEPRECATE_EOF)
    converter = BinaryResults(caps)
    assert converter.convert(lenenc_int(1) + b"\x01") == lenenc_int(1) + b"\x01"
    converter.convert(_definition("s", T_VAR_STRING))
    assert converter.convert(build_text_row([b"ab"])) == b"\x00\x00\x02ab"
    end = build_ok(capabilities=caps, header=0xFE)
    assert converter.convert(end) == end
    assert converter.convert(ok) == ok  # (a next answer starts afresh)


@given(st.integers(-(2**31), 2**31 - 1))
def test_integers(value: int) -> None:
    rows = BinaryRows([ColumnDefinition.parse(_definition("n", T_LONG))])
    assert rows.value(0, str(value).encode()) == value.to_bytes(4, "little", signed=True)
