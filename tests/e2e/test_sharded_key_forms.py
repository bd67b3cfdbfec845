"""Shard keys in every form a client can give them, on two real MariaDB shards, each statement
compared with what MariaDB answers holding the same tables in one database (a plain copy on
s0, reached directly): a routed read or write must give the same rows, affected rows or error,
or be refused (1235); a row written must be where a later point read (text and prepared) finds
it. Text literals (hexadecimal, bit, introducers, signs, exponents, overflowing numbers,
``<=>``, ``BETWEEN``, sql_mode's readings) and binary parameters of every type the shard reads
(integers of each width signed and unsigned, FLOAT, DOUBLE, DECIMAL, strings, blobs, NULL,
temporals), bound to integer and string keys, also with the types left out ("as last time")
after other types were sent.

Left out of the exact comparison, as documented (README, *Sharded databases*: placement is
DRDS's, by the string as written): string keys equal to a stored one only by the column's
collation -- case, accents, trailing spaces under PAD SPACE -- whose rows may be in another
partition: such a read answers a subset of MariaDB's rows (checked), a write may store a row
MariaDB would call a duplicate.

The layout: ``shkf`` over s0 and s1 with 4 physical databases; ``n`` by HASH of a BIGINT,
``u`` of a BIGINT UNSIGNED split into 2 tables per database, ``ti`` of a TINYINT; ``s`` by
HASH of a VARCHAR (utf8mb4_general_ci), ``sb`` by UNI_HASH of a utf8mb4_bin VARCHAR split
into 2 tables per database, ``c`` by HASH of a CHAR.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, Prepared, ServerError, lenenc_bytes
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import plain_twin, sharded_database

PASSWORD = "ShKeyForms#1"
DB = "shkf"
TABLES = {
    "n": "CREATE TABLE n (id bigint NOT NULL, v varchar(40), PRIMARY KEY (id))",
    "u": "CREATE TABLE u (id bigint unsigned NOT NULL, v varchar(40), PRIMARY KEY (id))",
    "ti": "CREATE TABLE ti (id tinyint NOT NULL, v varchar(40), PRIMARY KEY (id))",
    "s": "CREATE TABLE s (k varchar(20) NOT NULL, v varchar(40), PRIMARY KEY (k))"
    " DEFAULT CHARSET utf8mb4",
    "sb": "CREATE TABLE sb (k varchar(20) COLLATE utf8mb4_bin NOT NULL, v varchar(40),"
    " PRIMARY KEY (k)) DEFAULT CHARSET utf8mb4",
    "c": "CREATE TABLE c (k char(8) NOT NULL, v varchar(40), PRIMARY KEY (k))"
    " DEFAULT CHARSET utf8mb4",
}
RULES = {
    "n": " DBPARTITION BY HASH(id)",
    "u": " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
    "ti": " DBPARTITION BY HASH(id)",
    "s": " DBPARTITION BY HASH(k)",
    "sb": " DBPARTITION BY UNI_HASH(k) TBPARTITION BY UNI_HASH(k) TBPARTITIONS 2",
    "c": " DBPARTITION BY HASH(k)",
}
KEYS = {"n": "id", "u": "id", "ti": "id", "s": "k", "sb": "k", "c": "k"}
INT_ROWS = [0, 1, 2, 3, 4, 5, 7, 12, 16, 100, 127, 1000]
STR_ROWS = ["a", "b", "3", "03", "a b", "k1", "", "A1", "10", "x"]


def _rows(table: str) -> str:
    """The INSERT of ``table``'s rows."""
    if KEYS[table] == "id":
        keys = [k for k in INT_ROWS if table != "ti" or k < 128]
        return f"INSERT INTO {table} VALUES " + ", ".join(f"({k}, 'r{k}')" for k in keys)
    return f"INSERT INTO {table} VALUES " + ", ".join(f"('{k}', 'r{k}')" for k in STR_ROWS)


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [TABLES[t] + RULES[t] for t in TABLES] + [_rows(t) for t in TABLES]
    with (
        sharded_database(proxy, DB, PASSWORD, setup=setup),
        plain_twin(proxy, DB, [*TABLES.values(), *(_rows(t) for t in TABLES)]),
    ):
        yield proxy


Outcome = tuple[str, Any]


def _outcome(conn: Any, sql: str) -> Outcome:
    """("rows", rows in a fixed order), ("ok", affected rows) or ("error", errno)."""
    try:
        with conn.cursor() as cur:
            count = cur.execute(sql)
            rows = sorted((tuple(r) for r in cur.fetchall()), key=repr)
            return ("rows", tuple(rows)) if cur.description else ("ok", count)
    except pymysql.MySQLError as err:
        return "error", err.args[0]


def _clients(env: ProxyEnv) -> tuple[Any, Any]:
    return env.connect(DB, PASSWORD, database=DB), connect_admin(env.shards[0], database=DB)


def _binary_clients(env: ProxyEnv) -> tuple[BinaryClient, BinaryClient]:
    shard = env.shards[0]
    proxy = BinaryClient(env.port, DB, PASSWORD, DB)
    return proxy, BinaryClient(shard.port, shard.user, shard.password, DB)


def _reset(conns: Sequence[Any], table: str) -> None:
    """``table`` holding its first rows again, through each of ``conns``."""
    for conn in conns:
        assert _outcome(conn, f"DELETE FROM {table}")[0] == "ok"
        assert _outcome(conn, _rows(table))[0] == "ok"


# ----------------------------------------------------------------- digits without end


def test_keys_of_unbounded_magnitude_are_out_of_range_at_once(sharded: ProxyEnv) -> None:
    """A key in exponent notation was turned into a Python int to be placed: '1e9999999'
    (a string or DECIMAL parameter compared with or stored in an integer key) took minutes
    of the event loop, every session of the proxy waiting; a number literal of more than
    4300 digits raised ValueError out of routing. Both are out of any key's range: a read
    scatters (MariaDB's answer), an INSERT is refused."""
    env = sharded
    proxy, twin = _clients(env)
    many = "1" * 5000
    try:
        for sql in (
            "SELECT id, v FROM n WHERE id = '1e9999999'",
            "SELECT id, v FROM n WHERE id IN ('1e9999999', 3)",
            f"SELECT id, v FROM n WHERE id = {many}",
            f"SELECT id, v FROM n WHERE id = '{many}'",
            f"SELECT id, v FROM u WHERE id = -{many}",
            "UPDATE n SET v = v WHERE id = '-1e9999999'",
        ):
            for _ in range(2):
                assert _outcome(proxy, sql) == _outcome(twin, sql), sql
        for sql in (
            "INSERT INTO n VALUES ('1e9999999', 'x')",
            f"INSERT INTO n VALUES ({many}, 'x')",
            f"INSERT INTO n VALUES (1, 'x'), ({many}, 'x')",
        ):
            assert _outcome(proxy, sql) == ("error", 1235), sql
    finally:
        proxy.close()
        twin.close()
    client, plain = _binary_clients(env)
    try:
        for code in (0xF6, 0xFD):
            params = [(code, False, lenenc_bytes(b"1e9999999"))]
            for sql in ("SELECT CONCAT(id), v FROM n WHERE id = ?", "DELETE FROM n WHERE id = ?"):
                statements = client.prepare(sql), plain.prepare(sql)
                assert _execute(client, statements[0], params) == _execute(
                    plain, statements[1], params
                )
            insert = client.prepare("INSERT INTO n VALUES (?, 'x')")
            assert _execute(client, insert, params) == ("error", 1235)
        assert _execute(client, client.prepare("SELECT COUNT(*) FROM n"), []) == (
            "rows",
            ((len(INT_ROWS),),),
        )
    finally:
        client.close()
        plain.close()


# ----------------------------------------------------------------------------- text


INT_FORMS = [
    "3", "'3'", "'3abc'", "3.0", "3e0", "'3e0'", "-0", "0x03", "X'03'", "b'11'",
    "_binary'3'", "_latin1'3'", "'+3'", "+3", "--3", "- -3", "~0", "TRUE", "NULL",
    "18446744073709551615", "-9223372036854775808", "99999999999999999999999",
    "1+2", "'0x10'", "''", "' 3'", "'3 '", "3.5", "'3.5'", "1e19", "'1e19'", "1e1",
    "'1e1'", "'1e9999999'", "'1e-9999999'", "12e-1", "0.12e2", "'.12e2'", "'12.'",
    "'\\t12'", "'\\n12'", "'\\r12'", "'\\v12'", "'\\f12'", "'\\x0b12'", "_utf8mb4'12'",
    "N'12'", "'12' COLLATE utf8mb4_bin", "'\u0663'", "'\uff13'", "0e0", "-0e0", "'-0'", "'-0.0'",
    "127", "128", "-128", "-129", "255", "256", "1000", "'1000'", "1e3", "'1e3'",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "'9223372036854775808'", "'18446744073709551615'", "'18446744073709551616'",
    "18446744073709551616", "0.0", "'0.0e5'", "'00012'", "'1_2'", "'1,2'", "1" * 5000,
    "'" + "1" * 5000 + "'", "1e9999999", '"3"', "'3\\'", "'\\3'",
]  # fmt: skip
STR_FORMS = [
    "'a'", "' a'", "'a\\0'", "_binary'a'", "_latin1'a'", "X'61'", "0x61",
    "'a' COLLATE utf8mb4_bin", "N'a'", "3", "'3'", "'03'", "3.0", "'k1'", "''", "' '", "'10'",
    "10", "1e1", "'a b'", "'x'", "_utf8mb4'x'", "'a' 'b'", "CONCAT('a')", "'ª'", "'a\\t'",
    "'\\a'", "b'1100001'", "TRUE", "NULL", "'x\\0'", "'A1'", '"a"', "'a\\\\'", "'\\\\a'",
    "'\\\\'",
]  # fmt: skip
# Equal to a stored key by collation only (placed by the string as written, as DRDS does).
COLLATION_EQUAL = ["'A'", "'a '", "'k1 '", "'K1'", "'A B'", "'X'", "'a1'", "'á'", "'ä'"]
MODES = ["NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "PAD_CHAR_TO_FULL_LENGTH", "ANSI"]


def _reads() -> list[tuple[str, bool]]:
    """(a point read, whether it is compared exactly) for every key form."""
    reads = []
    for table in ("n", "u", "ti"):
        for form in INT_FORMS:
            reads += [
                (f"SELECT id, v FROM {table} WHERE id = {form}", True),
                (f"SELECT id, v FROM {table} WHERE id IN ({form}, 1000)", True),
                (f"SELECT id, v FROM {table} WHERE {form} = id", True),
                (f"SELECT id, v FROM {table} WHERE id <=> {form}", True),
                (f"SELECT id, v FROM {table} WHERE id BETWEEN {form} AND {form}", True),
            ]
    for table in ("s", "sb", "c"):
        for form in STR_FORMS + COLLATION_EQUAL:
            exact = form not in COLLATION_EQUAL
            reads += [
                (f"SELECT k, v FROM {table} WHERE k = {form}", exact),
                (f"SELECT k, v FROM {table} WHERE k IN ({form}, 'zz')", exact),
            ]
    return reads


def test_text_key_forms_read_as_one_server(sharded: ProxyEnv) -> None:
    """Every form, twice on one connection (the second the text fast path's where it has a
    shape), by default; those whose reading depends on it under other sql_modes."""
    proxy, twin = _clients(sharded)
    differences: list[tuple[object, ...]] = []
    compared = 0
    try:
        for mode in ["", *MODES]:
            for conn in (proxy, twin):
                assert _outcome(conn, f"SET SESSION sql_mode = '{mode}'")[0] == "ok"
            reads = _reads()
            if mode:
                # (what the mode changes: quotes, backslashes, CHAR values read back padded)
                padded = mode == "PAD_CHAR_TO_FULL_LENGTH"
                reads = [
                    (sql, exact)
                    for sql, exact in reads
                    if '"' in sql or "\\" in sql or (padded and " FROM c " in sql)
                ]
            for sql, exact in reads:
                expected = _outcome(twin, sql)
                for _ in range(2):
                    found = _outcome(proxy, sql)
                    compared += 1
                    if (exact and found != expected) or (
                        not exact and not set(found[1]) <= set(expected[1])
                    ):
                        differences.append((mode, sql, found, expected))
    finally:
        proxy.close()
        twin.close()
    assert not differences
    assert compared > 4000


# ---------------------------------------------------------------------- parameters


Param = tuple[int, bool, bytes | None]  # type code, unsigned, the value's bytes (None: NULL)


def _execute(
    client: BinaryClient, statement: Prepared, params: Sequence[Param], send: bool = True
) -> Outcome:
    """COM_STMT_EXECUTE of ``statement`` with ``params`` (their types left out unless
    ``send``): ("rows", ...), ("ok", affected rows) or ("error", errno)."""
    body = bytearray(b"\x17" + statement.statement_id.to_bytes(4, "little"))
    body += b"\x00" + (1).to_bytes(4, "little")
    if statement.params:
        bitmap = bytearray((statement.params + 7) // 8)
        for i, (_, _, raw) in enumerate(params):
            if raw is None:
                bitmap[i // 8] |= 1 << (i % 8)
        body += bitmap + (b"\x01" if send else b"\x00")
        if send:
            for code, unsigned, _ in params:
                body += bytes([code, 0x80 if unsigned else 0])
        for _, _, raw in params:
            body += raw or b""
    try:
        client._send(bytes(body))
        first = client._check(client._read()[1])
        if first[:1] == b"\x00":
            return "ok", first[1]
        client.types = client._column_types(first[0])
        return "rows", tuple(sorted(client._rows(client.types), key=repr))
    except ServerError as err:
        return "error", err.errno


def _params() -> list[tuple[str, Param]]:
    """(a label, a parameter) of every type the shard reads."""
    out: list[tuple[str, Param]] = []
    for v in (3, -3, 127, -128, 255, 0, 12):
        if -128 <= v <= 127:
            out.append((f"tiny {v}", (0x01, False, struct.pack("<b", v))))
        if 0 <= v <= 255:
            out.append((f"unsigned tiny {v}", (0x01, True, struct.pack("<B", v))))
        out.append((f"short {v}", (0x02, False, struct.pack("<h", v))))
        out.append((f"long {v}", (0x03, False, struct.pack("<i", v))))
        out.append((f"longlong {v}", (0x08, False, struct.pack("<q", v))))
    out += [
        ("unsigned longlong max", (0x08, True, struct.pack("<Q", (1 << 64) - 1))),
        ("longlong min", (0x08, False, struct.pack("<q", -(1 << 63)))),
        ("unsigned short max", (0x02, True, struct.pack("<H", 65535))),
        ("unsigned long max", (0x03, True, struct.pack("<I", (1 << 32) - 1))),
    ]
    for f in (3.0, 3.5, -0.0, 1e19, 12.0, 1e3, 0.0, 1e300, -3.0, 2.0**63, 2.0**64):
        out.append((f"double {f}", (0x05, False, struct.pack("<d", f))))
        if abs(f) < 3e38:
            out.append((f"float {f}", (0x04, False, struct.pack("<f", f))))
    decimals = [b"3.000", b"3.5", b"-0", b"12", b"3e0", b"1e9999999", b"1e3", b".3e1", b"+3"]
    for d in [*decimals, b" 3", b"3.", b"-3"]:
        out.append((f"newdecimal {d!r}", (0xF6, False, lenenc_bytes(d))))
        out.append((f"decimal {d!r}", (0x00, False, lenenc_bytes(d))))
    strings = [b"3", b" 3", b"3abc", b"0x10", b"", b"+3", b"3e0", b"12", b"1e3", b"a", b"k1"]
    for s in [*strings, b"03", b"\t3", b"1e9999999", b"-0", b"x", b"A1"]:
        for name, code in (("var_string", 0xFD), ("string", 0xFE), ("varchar", 0x0F)):
            out.append((f"{name} {s!r}", (code, False, lenenc_bytes(s))))
        out.append((f"blob {s!r}", (0xFC, False, lenenc_bytes(s))))
        out.append((f"enum {s!r}", (0xF7, False, lenenc_bytes(s))))
    out += [
        ("NULL", (0x08, False, None)),
        ("NULL type", (0x06, False, b"")),
        ("date", (0x0A, False, b"\x04" + struct.pack("<HBB", 2024, 1, 2))),
        ("zero date", (0x0A, False, b"\x00")),
        ("time", (0x0B, False, b"\x08" + struct.pack("<BIBBB", 0, 0, 0, 0, 3))),
        ("datetime", (0x0C, False, b"\x07" + struct.pack("<HBBBBB", 2024, 1, 2, 0, 0, 3))),
    ]
    return out


def test_parameters_of_every_type_read_as_one_server(sharded: ProxyEnv) -> None:
    """Each parameter as the key of a point read and in an IN list, executed with its types
    and twice "as last time" (the prepared fast path's), on every table; then executions
    choosing at random between new types and the last ones, each compared."""
    proxy, twin = _binary_clients(sharded)
    differences: list[tuple[object, ...]] = []
    compared = 0
    params = _params()
    rng = random.Random(15)
    try:
        for table, column in KEYS.items():
            shapes = [f"SELECT CONCAT({column}), v FROM {table} WHERE {column} = ?"]
            if table in ("n", "s"):
                shapes.append(f"SELECT CONCAT({column}), v FROM {table} WHERE {column} IN (?, ?)")
            for shape in shapes:
                mine, theirs = proxy.prepare(shape), twin.prepare(shape)
                for label, param in params:
                    sent = [param, (0x08, False, struct.pack("<q", 1000))][: mine.params]
                    expected = _execute(twin, theirs, sent)
                    for send in (True, False):
                        compared += 1
                        found = _execute(proxy, mine, sent, send)
                        if found != expected:
                            differences.append((shape, label, send, found, expected))
                last: Param | None = None
                for _ in range(100):
                    label, param = rng.choice(params)
                    send = last is None or rng.random() < 0.5
                    if not send and last is not None:
                        label, param = rng.choice(
                            [p for p in params if p[1][:2] == last[:2] and p[1][2] is not None]
                        )
                    sent = [param, (0x05, False, struct.pack("<d", 7.0))][: mine.params]
                    expected = _execute(twin, theirs, sent, send)
                    found = _execute(proxy, mine, sent, send)
                    compared += 1
                    if found != expected:
                        differences.append((shape, "again", label, send, found, expected))
                    if send:
                        last = param
    finally:
        proxy.close()
        twin.close()
    assert not differences
    assert compared > 2500


# -------------------------------------------------------------------------- writes


INSERT_INT = [
    "3", "'3'", "'3abc'", "3.0", "3e0", "'3e0'", "-0", "0x03", "X'03'", "b'11'", "_binary'3'",
    "_latin1'3'", "'+3'", "+3", "--3", "- -3", "TRUE", "NULL", "' 3'", "'3 '", "3.5", "'3.5'",
    "'1e1'", "1e1", "'1e9999999'", "'1e3'", "1+2", "'0x10'", "''", "'\\t3'", "N'3'",
    "'3' COLLATE utf8mb4_bin", "127", "128", "-129", "18446744073709551615",
    "-9223372036854775808", "'٣'", "1" * 5000, "'" + "1" * 5000 + "'", "0.3e1", "'.3e1'",
    "'00003'", "3.000", "'3.'", "~0", "-1", "'-1'", "CAST('3' AS SIGNED)",
]  # fmt: skip
INSERT_STR = [
    "'a'", "3", "'3'", "3.0", "1e1", "_binary'a'", "X'61'", "0x61", "_latin1'a'", "N'a'",
    "'a' 'b'", "TRUE", "NULL", "'x\\0'", "'\\\\a'", "b'1100001'", "CONCAT('a')", "-3",
    "'a' COLLATE utf8mb4_bin", "18446744073709551615", "'a\\t'", "'new'", "' new'",
]  # fmt: skip


def test_text_writes_land_where_point_reads_find_them(sharded: ProxyEnv) -> None:
    """INSERT, REPLACE and INSERT IGNORE of a row keyed by each form (with and without strict
    mode) answer as MariaDB or are refused; the row stored is found by a point read of its
    key as stored, in text (twice) and prepared; UPDATE and DELETE by the same form change
    the rows MariaDB changes."""
    env = sharded
    proxy, twin = _clients(env)
    binary = BinaryClient(env.port, DB, PASSWORD, DB)
    differences: list[tuple[object, ...]] = []
    compared = 0
    try:
        for mode in ("", "STRICT_ALL_TABLES"):
            for conn in (proxy, twin):
                assert _outcome(conn, f"SET SESSION sql_mode = '{mode}'")[0] == "ok"
            for table, column in KEYS.items():
                forms = INSERT_INT if column == "id" else INSERT_STR
                point = binary.prepare(
                    f"SELECT CONCAT({column}), v FROM {table} WHERE {column} = ?"
                )
                read = f"SELECT CONCAT({column}), v FROM {table}"
                for form in forms:
                    for verb in ("INSERT", "REPLACE", "INSERT IGNORE"):
                        _reset((proxy, twin), table)
                        sql = f"{verb} INTO {table} ({column}, v) VALUES ({form}, 'w')"
                        expected, found = _outcome(twin, sql), _outcome(proxy, sql)
                        compared += 1
                        if found != expected:
                            if found != ("error", 1235):
                                differences.append((mode, sql, found, expected))
                            continue
                        stored = _outcome(
                            twin, f"SELECT CONCAT({column}) FROM {table} WHERE v = 'w'"
                        )
                        for (key,) in stored[1]:
                            literal = twin.escape(key) if column == "k" else key
                            text = f"{read} WHERE {column} = {literal}"
                            for _ in range(2):
                                if _outcome(proxy, text) != ("rows", ((key, "w"),)):
                                    differences.append((mode, sql, "text read", key))
                            param = (0xFD, False, lenenc_bytes(key.encode()))
                            if _execute(binary, point, [param]) != ("rows", ((key, "w"),)):
                                differences.append((mode, sql, "prepared read", key))
                        for sql in (
                            f"UPDATE {table} SET v = 'w2' WHERE {column} = {form}",
                            f"DELETE FROM {table} WHERE {column} = {form}",
                            read,
                        ):
                            expected, found = _outcome(twin, sql), _outcome(proxy, sql)
                            compared += 1
                            if found != expected and found != ("error", 1235):
                                differences.append((mode, sql, found, expected))
    finally:
        proxy.close()
        twin.close()
        binary.close()
    assert not differences
    assert compared > 3000


def test_prepared_writes_land_where_point_reads_find_them(sharded: ProxyEnv) -> None:
    """INSERT and REPLACE of a row keyed by each parameter answer as MariaDB or are refused,
    leave the same rows, and an UPDATE and a DELETE by the same parameter change the rows
    MariaDB changes."""
    proxy, twin = _binary_clients(sharded)
    differences: list[tuple[object, ...]] = []
    compared = 0
    try:
        for table, column in (("n", "id"), ("u", "id"), ("s", "k"), ("c", "k")):
            read = f"SELECT CONCAT({column}), v FROM {table}"
            writes = [
                f"INSERT INTO {table} ({column}, v) VALUES (?, 'w')",
                f"REPLACE INTO {table} ({column}, v) VALUES (?, 'w')",
            ]
            changes = [
                f"UPDATE {table} SET v = 'w2' WHERE {column} = ?",
                f"DELETE FROM {table} WHERE {column} = ?",
            ]
            prepared = {sql: (proxy.prepare(sql), twin.prepare(sql)) for sql in writes + changes}
            for label, param in _params():
                for write in writes:
                    _reset([_Text(proxy), _Text(twin)], table)
                    mine, theirs = prepared[write]
                    expected, found = (
                        _execute(twin, theirs, [param]),
                        _execute(proxy, mine, [param]),
                    )
                    compared += 1
                    if found != expected:
                        if found != ("error", 1235):
                            differences.append((table, write, label, found, expected))
                        continue
                    for change in changes:
                        mine, theirs = prepared[change]
                        expected = _execute(twin, theirs, [param])
                        found = _execute(proxy, mine, [param])
                        compared += 1
                        if found != expected and found != ("error", 1235):
                            differences.append((table, change, label, found, expected))
                    if sorted(proxy.query_raw(read)[3:-1]) != sorted(twin.query_raw(read)[3:-1]):
                        differences.append((table, write, label, "rows left"))
    finally:
        proxy.close()
        twin.close()
    assert not differences
    assert compared > 1500


class _Text:
    """A BinaryClient's text statements, as ``_outcome`` runs them (OK or error only)."""

    def __init__(self, client: BinaryClient) -> None:
        self.client = client

    def cursor(self) -> _Text:
        return self

    def __enter__(self) -> _Text:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str) -> int:
        self.client.query(sql)
        return 0

    def fetchall(self) -> list[Any]:
        return []

    description = None
