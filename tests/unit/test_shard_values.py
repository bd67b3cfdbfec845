"""Shard key values as MariaDB converts them (proxy/shard/values.py): the table of what is
placeable and as which key, and the same claims checked against a real MariaDB (its stored
value, and which rows its comparison matches)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from auth.model import KeyType
from proxy.dev.localshard import ShardEndpoint
from proxy.shard.placement import KeyValue
from proxy.shard.values import (
    NotALiteral,
    NotPlaceable,
    SqlValue,
    Use,
    literal_value,
    shard_key,
)
from proxy.sql.charsets import utf8mb3_stored
from proxy.sql.lexer import LexMode, lex

INT = KeyType("int")
UINT = KeyType("int", unsigned=True)
BIGINT = KeyType("bigint")
UBIGINT = KeyType("bigint", unsigned=True)
TINY = KeyType("tinyint")
VARCHAR = KeyType("varchar")
NO = None  # not placeable

# (column type, SQL literal, use, key or NO)
CASES: list[tuple[KeyType, str, Use, KeyValue | type[NotPlaceable]]] = [
    (INT, "15", "store", 15),
    (INT, "-15", "store", -15),
    (INT, "- -15", "store", 15),
    (INT, "15.0", "store", 15),
    (INT, "15.5", "store", NotPlaceable),  # MariaDB rounds: 16
    (INT, "1.5e1", "store", 15),
    (INT, "'15'", "store", 15),
    (INT, "'  15'", "store", 15),
    (INT, "'+15'", "store", 15),
    (INT, "'1e3'", "store", 1000),
    (INT, "'15.00'", "store", 15),
    (INT, "'15abc'", "store", NotPlaceable),  # truncated with a warning, or refused
    (INT, "'15 '", "store", NotPlaceable),
    (INT, "''", "store", NotPlaceable),
    (INT, "2147483648", "store", NotPlaceable),  # out of range
    (INT, "-2147483648", "store", -2147483648),
    (UINT, "-1", "store", NotPlaceable),
    (UINT, "4294967295", "store", 4294967295),
    (TINY, "127", "store", 127),
    (TINY, "128", "store", NotPlaceable),
    (UBIGINT, "18446744073709551615", "store", 18446744073709551615),
    (BIGINT, "9223372036854775807", "store", 9223372036854775807),
    (BIGINT, "9223372036854775808", "store", NotPlaceable),
    (INT, "TRUE", "store", 1),
    (INT, "NULL", "store", None),
    (INT, "X'0F'", "store", NotPlaceable),
    (INT, "0x0F", "compare", NotPlaceable),
    (INT, "b'1'", "compare", NotPlaceable),
    (INT, "15", "compare", 15),
    (INT, "15.0", "compare", 15),
    (INT, "15.5", "compare", NotPlaceable),  # matches no row: any partition would do
    (INT, "'15'", "compare", 15),
    (INT, "'1.5e1'", "compare", 15),
    (BIGINT, "'9007199254740991'", "compare", 9007199254740991),
    (BIGINT, "'9007199254740993'", "compare", NotPlaceable),  # as doubles (MySQL): 2 BIGINTs
    (BIGINT, "9007199254740993", "compare", 9007199254740993),  # an integer: exact
    (BIGINT, "9.007199254740992e15", "compare", NotPlaceable),
    (BIGINT, "9.007199254740993e15", "store", 9007199254740992),  # the double's value
    (INT, "NULL", "compare", None),
    (VARCHAR, "'abc'", "store", "abc"),
    (VARCHAR, "'ABC'", "compare", "ABC"),  # hashed as given, as DRDS does
    (VARCHAR, "N'\u4e2d\u6587'", "compare", "\u4e2d\u6587"),
    (VARCHAR, "'\U0001f600'", "store", "\U0001f600"),
    (VARCHAR, "''", "store", ""),
    (VARCHAR, "15", "store", "15"),
    (VARCHAR, "-15", "store", "-15"),
    (VARCHAR, "15", "compare", NotPlaceable),  # compared as doubles: '015' matches
    (VARCHAR, "1.5", "store", NotPlaceable),
    (VARCHAR, "X'616263'", "store", NotPlaceable),
    (VARCHAR, "NULL", "store", None),
]


def _value(literal: str) -> SqlValue:
    (statement,) = lex(f"SELECT {literal}")
    return literal_value(statement.tokens[1:])


@pytest.mark.parametrize(("key_type", "literal", "use", "expected"), CASES)
def test_shard_keys(
    key_type: KeyType, literal: str, use: Use, expected: KeyValue | type[NotPlaceable]
) -> None:
    value = _value(literal)
    if expected is NotPlaceable:
        with pytest.raises(NotPlaceable):
            shard_key(key_type, value, use)
    else:
        found = shard_key(key_type, value, use)
        assert found == expected and type(found) is type(expected)


def test_literal_values() -> None:
    assert _value("15") == 15 and isinstance(_value("15"), int)
    assert _value("-1.50") == Decimal("-1.50")
    assert _value(".5") == Decimal("0.5")
    assert _value("1e3") == 1000.0 and isinstance(_value("1e3"), float)
    assert _value("+-+7") == -7
    assert _value("'it''s'") == "it's"
    assert _value("'a\\nb'") == "a\nb"
    assert _value("0x0A0B") == b"\x0a\x0b" and _value("X'0a'") == b"\x0a"
    assert _value("0b101") == b"\x05" and _value("b''") == b"\x00"
    assert _value("NULL") is None and _value("false") is False
    (statement,) = lex("SELECT 'a\\nb'", LexMode(no_backslash_escapes=True))
    assert literal_value(statement.tokens[1:]) == "a\\nb"
    for not_one in ("id", "1 + 1", "_utf8mb4'x'", "-'1'", "?", "CONCAT('a')", "-NULL"):
        with pytest.raises(NotALiteral):
            _value(not_one)
    with pytest.raises(NotALiteral):
        literal_value(())


# --- the same claims on MariaDB ------------------------------------------------------------

_COLUMN_TYPES = {
    INT: "INT",
    UINT: "INT UNSIGNED",
    BIGINT: "BIGINT",
    UBIGINT: "BIGINT UNSIGNED",
    TINY: "TINYINT",
    VARCHAR: "VARCHAR(40) CHARACTER SET utf8mb4",
}


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def test_mariadb_stores_and_compares_as_the_table_says(
    shards: list[ShardEndpoint], shard_admin: Callable[..., Any]
) -> None:
    """Every placeable case: stored in strict mode, MariaDB keeps exactly the key; compared,
    it matches exactly the row holding the key (rows beside it are not matched)."""
    conn = shard_admin(shards[0], charset="utf8mb4")
    _rows(conn, "CREATE DATABASE IF NOT EXISTS sg_values_test")
    _rows(conn, "USE sg_values_test")
    _rows(conn, "SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
    try:
        for index, (key_type, literal, use, expected) in enumerate(CASES):
            if expected is NotPlaceable or expected is None:
                continue
            table = f"v{index}"
            _rows(conn, f"CREATE OR REPLACE TABLE {table} (c {_COLUMN_TYPES[key_type]})")
            if use == "store":
                _rows(conn, f"INSERT INTO {table} VALUES ({literal})")
                (stored,) = _rows(conn, f"SELECT c FROM {table}")
                assert stored[0] == expected, (literal, stored)
            else:
                assert isinstance(expected, int | str)
                neighbours = (
                    [expected - 1, expected, expected + 1]
                    if isinstance(expected, int)
                    else [expected, expected + "x"]
                )
                for value in neighbours:
                    _rows(conn, f"INSERT INTO {table} VALUES ({conn.escape(value)})")
                matched = _rows(conn, f"SELECT c FROM {table} WHERE c = {literal}")
                assert matched == [(expected,)], (literal, matched)
        # Why some are not placeable: a number compared with a string column matches other
        # spellings of it ...
        _rows(conn, "CREATE OR REPLACE TABLE s (c VARCHAR(10))")
        _rows(conn, "INSERT INTO s VALUES ('15'), ('015'), ('15.0')")
        assert len(_rows(conn, "SELECT c FROM s WHERE c = 15")) == 3
        # ... and a fraction stored into an integer column is rounded.
        _rows(conn, "CREATE OR REPLACE TABLE r (c INT)")
        _rows(conn, "INSERT INTO r VALUES (15.5), ('15.5')")
        assert _rows(conn, "SELECT c FROM r") == [(16,), (16,)]
    finally:
        _rows(conn, "DROP DATABASE IF EXISTS sg_values_test")


# Bytes read as utf8mb3 as MariaDB 10.11 stores them (INSERT of N'<bytes>' into utf8mb4 and
# utf8mb3 columns without strict mode, read back with HEX: e2e test_sharded_adversary8).
@pytest.mark.parametrize(
    ("data", "stored"),
    [
        (b"\xe9", "3F"),
        (b"\xe9x", "3F78"),
        (b"a\xe9b", "613F62"),
        (b"\xc3", "3F"),
        (b"\xc3x", "3F78"),
        (b"\xe3\xa9", "3F3F"),
        (b"\xe3\xa9x", "3F3F78"),
        (b"\xc0\xaf", "3F3F"),
        (b"\xf0\x9f\x98\x80", "3F3F3F3F"),
        (b"\xf0\x9f\x98", "3F3F3F"),
        (b"\xf0\x9f\x98x", "3F3F3F78"),
        (b"\xf4\x90\x80\x80", "3F3F3F3F"),
        (b"\xc3\xa9\xe9", "C3A93F"),
        (b"\xff", "3F"),
        (b"\x80", "3F"),
        (b"\xef\xbf\xbf", "EFBFBF"),
        (b"\xe0\x80\x80", "3F3F3F"),
        (b"\xf8\x88\x80\x80\x80", "3F3F3F3F3F"),
    ],
)
def test_utf8mb3_bytes_are_stored_as_mariadb_stores_them(data: bytes, stored: str) -> None:
    text = utf8mb3_stored(data)
    assert text is not None and text.encode().hex().upper() == stored


def test_an_encoded_surrogate_is_not_read() -> None:
    assert utf8mb3_stored(b"\xed\xa0\x80") is None  # (MariaDB stores ED A0 80)
