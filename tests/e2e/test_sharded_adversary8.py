"""Findings of an adversarial review of how sharded databases read values and statements, on
two real MariaDB shards, each compared with what MariaDB answers holding the same tables in one
database (a plain copy on s0).

The layout: ``shav8`` over s0 and s1 with 4 physical databases; ``s`` by HASH(k), a utf8mb4
string key; ``n`` by HASH(id), a BIGINT key; ``b`` broadcast.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, plain_twin, sharded_database

PASSWORD = "ShAdv8#pass1"
DB = "shav8"
STRINGS = "CREATE TABLE s (k varchar(20) NOT NULL, v int, PRIMARY KEY (k)) DEFAULT CHARSET utf8mb4"
NUMBERS = "CREATE TABLE n (id bigint NOT NULL, v int, PRIMARY KEY (id))"
COPIES = "CREATE TABLE b (id int NOT NULL, v varchar(200), PRIMARY KEY (id))"
EMOJI = "\U0001f600"


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        STRINGS + " DBPARTITION BY HASH(k)",
        NUMBERS + " DBPARTITION BY HASH(id)",
        COPIES + " BROADCAST",
    ]
    with (
        sharded_database(proxy, DB, PASSWORD, setup=setup),
        plain_twin(proxy, DB, [STRINGS, NUMBERS, COPIES]),
    ):
        yield proxy


def _client(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB, **kwargs)


def _twin(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    """The plain copy on s0, as its administrator."""
    return connect_admin(env.shards[0], database=DB, **kwargs)


def _outcome(conn: Any, sql: str | bytes) -> tuple[str, Any]:
    """("rows", rows) or ("error", errno) of ``sql`` (bytes: sent as they are)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return "rows", tuple(tuple(row) for row in cur.fetchall())
    except pymysql.MySQLError as err:
        return "error", err.args[0]


def _everywhere(env: ProxyEnv, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows on every physical database, together."""
    return sorted(row for index in range(4) for row in physical(env, DB, index, sql))


def _both(env: ProxyEnv, setup: list[str]) -> tuple[Any, Any]:
    """A proxy client and a twin client, each having run ``setup``."""
    pair = (_client(env), _twin(env))
    for conn in pair:
        for sql in setup:
            assert _outcome(conn, sql)[0] == "rows", sql
    return pair


def _found_by_key(env: ProxyEnv, table: str, column: str) -> None:
    """Every row of ``table`` the twin holds is on the physical databases (once) and found
    through the proxy by a point select of its key as the twin stores it (its hex)."""
    twin = _twin(env)
    proxy = _client(env)
    try:
        stored = _outcome(twin, f"SELECT HEX({column}), v FROM {table} ORDER BY v")[1]
        assert _everywhere(env, f"SELECT HEX({column}), v FROM {table}") == sorted(stored)
        for hexed, v in stored:
            point = f"SELECT v FROM {table} WHERE {column} = X'{hexed}'"
            if table == "s":
                point = f"SELECT v FROM s WHERE k = CONVERT(X'{hexed}' USING utf8mb4)"
                literal = bytes.fromhex(hexed).decode()
                assert _outcome(proxy, f"SELECT v FROM s WHERE k = '{literal}'") == (
                    "rows",
                    ((v,),),
                ), (literal, v)
            assert _outcome(twin, point) == ("rows", ((v,),)), point
    finally:
        twin.close()
        proxy.close()


# ------------------------------------------------------------------------ client bytes


def test_a_latin1_clients_bytes_reach_the_partitions_as_sent(sharded: ProxyEnv) -> None:
    """The proxy reads a statement's bytes as UTF-8, keeping a byte that is no part of a
    UTF-8 character as a surrogate; a statement on a sharded table was sent to its partitions
    encoded strictly, so a latin1 client's 'é' (E9) failed there: 1105 and the connection
    dropped. Now the partitions get the client's bytes, as one MariaDB does: the row is
    placed by 'é' (the latin1 reading), found by the key in either character set, and the
    session goes on."""
    env = sharded
    statements: list[bytes] = [
        b"INSERT INTO s VALUES ('\xe9l1', 11), ('l2', 12)",
        b"SELECT v FROM s WHERE k = '\xe9l1'",
        b"UPDATE s SET v = v + 100 WHERE k IN ('\xe9l1', 'l2')",
        b"SELECT v, HEX('\xe9') AS h FROM s WHERE k LIKE '%l_' ORDER BY v",
        b"SELECT COUNT(*) FROM s WHERE k <> '\xe9'",
        b"DELETE FROM s WHERE k = 'l2'",
        b"SELECT HEX(k), v FROM s WHERE k LIKE '%l_' ORDER BY v",
    ]
    proxy, twin = _both(env, ["SET NAMES latin1"])
    try:
        for sql in statements:
            assert _outcome(proxy, sql) == _outcome(twin, sql), sql
        assert _outcome(proxy, "SELECT 1") == ("rows", ((1,),))
    finally:
        proxy.close()
        twin.close()
    _found_by_key(env, "s", "k")


def test_a_latin1_clients_ddl_reaches_every_physical_table(sharded: ProxyEnv) -> None:
    """DDL fanned out to every physical table (and table maintenance) went out through the
    proxy's own-statement path, which encoded the text strictly: a latin1 client's 'é' (E9)
    in a comment was 2013 "Lost connection to backend ... surrogates not allowed", nothing
    altered. Now the partitions get the client's bytes: the comment stored is the twin's."""
    env = sharded
    statements: list[bytes] = [
        b"ALTER TABLE b COMMENT 'caf\xe9'",
        b"ALTER TABLE n COMMENT '\xe9t\xe9'",
        b"CREATE INDEX n_v ON n (v) COMMENT 'index \xe9'",
        b"ANALYZE TABLE n PERSISTENT FOR COLUMNS (v) INDEXES (n_v)",
    ]
    proxy, twin = _both(env, ["SET NAMES latin1"])
    try:
        for sql in statements:
            assert _outcome(proxy, sql) == _outcome(twin, sql), sql
        for table in ("b", "n"):
            shown = (
                "SELECT HEX(TABLE_COMMENT) FROM information_schema.TABLES"
                f" WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
            )
            assert _outcome(proxy, shown) == _outcome(twin, shown), table
        indexes = (
            "SELECT HEX(INDEX_COMMENT) FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = 'n_v'"
        )
        assert _outcome(proxy, indexes) == _outcome(twin, indexes)
        assert (
            _everywhere(
                env,
                "SELECT HEX(TABLE_COMMENT) FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'n'",
            )
            == [("C3A974C3A9",)] * 4
        )
        # SHOW CREATE TABLE, which the proxy answers from the catalog, is in latin1 too (it
        # was sent as UTF-8, 'cafÃ©', with text columns of utf8mb3_general_ci).
        readers = (_client(env, charset="latin1"), _twin(env, charset="latin1"))
        try:
            charsets = []
            for reader in readers:
                with reader.cursor() as cur:
                    cur.execute("SHOW CREATE TABLE b")
                    assert "COMMENT='caf\xe9'" in cur.fetchall()[0][1]
                    charsets.append([f.charsetnr for f in cur._result.fields])
            assert charsets[0] == charsets[1] == [8, 8]
        finally:
            for reader in readers:
                reader.close()
    finally:
        proxy.close()
        twin.close()


# ------------------------------------------------------------------------ N'' strings


def test_national_strings_are_placed_as_mariadb_stores_them(sharded: ProxyEnv) -> None:
    """N'...' is read in utf8mb3 (the national character set) whatever the client's character
    set, and a byte that starts no utf8mb3 character is stored as '?' (a 4-byte character is
    '????'; strict mode refuses the row, 1366). The proxy placed a utf8mb4 client's
    N'<emoji>a' by the emoji -- stored as '????a', a point select for it went to another
    partition and found nothing -- and refused (1235) any non-ASCII N'' of a utf8mb3 or
    latin1 client. Now each is placed as MariaDB stores it, and found by its stored value."""
    env = sharded
    cases: list[tuple[str, bytes]] = [
        ("utf8mb4", f"INSERT INTO s VALUES (N'{EMOJI}a', 1)".encode()),
        ("utf8mb4", "INSERT INTO s VALUES (N'\u00e9b', 2)".encode()),
        ("utf8mb4", f"INSERT INTO s VALUES (n'x{EMOJI}\u00e9', 3), ('plain', 4)".encode()),
        ("utf8mb3", "INSERT INTO s VALUES (N'\u00fcc', 5)".encode()),
        ("utf8mb3", f"INSERT INTO s VALUES (N'{EMOJI}d', 6)".encode()),
        ("latin1", "INSERT INTO s VALUES (N'\u00e9e', 7)".encode()),  # C3 A9: 'é'
        ("latin1", b"INSERT INTO s VALUES (N'\xe9f', 8)"),  # E9: no utf8mb3 character
        ("latin1", b"INSERT INTO s VALUES (N'g\xe3\xa9', 9)"),
    ]
    for charset, sql in cases:
        proxy, twin = _both(env, [f"SET NAMES {charset}", "SET SESSION sql_mode = ''"])
        try:
            outcomes = [_outcome(proxy, sql), _outcome(twin, sql)]
        finally:
            proxy.close()
            twin.close()
        assert outcomes[0] == outcomes[1] == ("rows", ()), (charset, sql, outcomes)
    _found_by_key(env, "s", "k")
    assert ("3F3F3F3F61", 1) in _everywhere(env, "SELECT HEX(k), v FROM s")
    # Compared, such a string is read as it is: 1267 against the utf8mb4 column, as on the
    # twin (every partition asked); strict mode refuses the row everywhere.
    proxy, twin = _both(env, ["SET SESSION sql_mode = DEFAULT"])
    try:
        for compared in (
            f"SELECT v FROM s WHERE k = N'{EMOJI}a'",
            f"SELECT v FROM s WHERE k IN (N'{EMOJI}a', 'plain')",
            f"DELETE FROM s WHERE k = N'{EMOJI}a'",
            f"INSERT INTO s VALUES (N'{EMOJI}z', 10)",
        ):
            outcomes = [_outcome(proxy, compared), _outcome(twin, compared)]
            assert outcomes[0] == outcomes[1] and outcomes[0][0] == "error", (compared, outcomes)
    finally:
        proxy.close()
        twin.close()
    _found_by_key(env, "s", "k")


# ----------------------------------------------------------------- INSERTs reading tables


def test_inserts_reading_a_table_outside_the_database_are_refused(sharded: ProxyEnv) -> None:
    """An INSERT or REPLACE into a sharded or broadcast table whose VALUES or ON DUPLICATE
    KEY UPDATE reads a table the logical database does not hold (information_schema's) was
    routed to the key's partition -- or run on every copy -- and each read its own physical
    database's view: the row held 'shav8_0001' (a physical name), the copies of a broadcast
    row could differ. Now 1235, as the same SELECT or UPDATE is (sharding.md: subqueries
    only within one partition's data). Writes reading no table are still served: a subquery
    FROM DUAL or of a common table expression, CONVERT ... USING, the columns of ON
    DUPLICATE KEY UPDATE."""
    env = sharded
    schema = "(SELECT table_schema FROM information_schema.tables WHERE table_name = 'n')"
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            for sql in (
                f"INSERT INTO n VALUES (1, {schema})",
                f"REPLACE INTO n VALUES (2, 1), (3, {schema})",
                "INSERT INTO n VALUES (4, EXISTS (SELECT 1 FROM information_schema.schemata))",
                f"INSERT INTO n VALUES (5, 1) ON DUPLICATE KEY UPDATE v = {schema}",
                f"INSERT INTO b VALUES (1, {schema})",
                "INSERT INTO b VALUES (2, (SELECT COUNT(*) FROM information_schema.tables))",
                f"INSERT INTO s VALUES ('k', LENGTH({schema}))",
            ):
                for _ in range(2):
                    with pytest.raises(pymysql.MySQLError) as refused:
                        cur.execute(sql)
                    errno, why = refused.value.args
                    assert errno == 1235 and "table information_schema." in why, (sql, why)
    finally:
        conn.close()
    assert _everywhere(env, "SELECT id FROM n") == []
    assert _everywhere(env, "SELECT id FROM b") == []
    served = [
        "INSERT INTO n VALUES (11, (SELECT 7 FROM DUAL))",
        "INSERT INTO n VALUES (12, (WITH c AS (SELECT 8 AS x) SELECT x FROM c))",
        "INSERT INTO n VALUES (11, 1) ON DUPLICATE KEY UPDATE v = v + 10",
        "INSERT INTO b VALUES (3, CONVERT('x' USING latin1))",
        "UPDATE b SET v = CONCAT(v, CHAR(65 USING utf8mb4)) WHERE id = 3",
        "UPDATE n SET v = v + LENGTH(CONVERT('ab' USING utf8mb4)) WHERE id = 12",
        "SELECT id, v FROM n ORDER BY id",
        "SELECT id, v FROM b ORDER BY id",
    ]
    proxy, twin = _both(env, [])
    try:
        for sql in served:
            outcome = _outcome(proxy, sql)
            assert outcome == _outcome(twin, sql) and outcome[0] == "rows", (sql, outcome)
    finally:
        proxy.close()
        twin.close()
    assert _everywhere(env, "SELECT id, v FROM n") == [(11, 17), (12, 10)]
    assert _everywhere(env, "SELECT id, v FROM b") == [(3, "xA")] * 4


# ------------------------------------------------------------- key literals and sql_mode

# A key written in any of these forms is read by routing as MariaDB reads it: each point
# select answers as the twin does, the first time and when repeated (the fast path's). Left
# out: string keys equal to a stored one only by collation -- 'A' for 'a', 'a ' for 'a'
# (PAD SPACE), accents -- which DRDS routes by the string as written (placement.py).
_INTEGER_FORMS = [
    "3", "'3'", "'3abc'", "3.0", "'3.0'", "3e0", "'3e0'", "-0", "'-0'", "0x03", "X'03'",
    "b'11'", "0b11", "_latin1'3'", "_binary'3'", "'3' COLLATE utf8mb4_bin", "3.5", "'  3'",
    "'3 '", "TRUE", "+3", "- -3", "'0x3'", "'+3'", "'\\t3'", "'3\\n'", "18446744073709551615",
    "-9223372036854775808", "'9223372036854775807'", "9.223372036854775807e18", "2.5",
    "'1e0'", "12.0000000000000000001", "'0012'", "'1e3'", "-3.0", "CAST(3 AS CHAR)", "NULL",
    "'3\\0'", "''", "'1' '2'", '"3"', "(3)", "3 + 0", "N'12'", "1.2e1", "'120e-1'",
]  # fmt: skip
_STRING_FORMS = [
    "'a'", "_latin1'a'", "_binary'a'", "X'61'", "0x61", "'a' COLLATE utf8mb4_bin", "N'a'",
    "'3'", "3", "'03'", "3.0", "b'1100001'", "'a' 'b'", '"a"', "'a\\0'", "_utf8mb4'a'",
    "BINARY 'a'", "'a\\t'", "CONVERT('a' USING latin1)", "'k1'", "'k1 '", "'\\k1'", "'a b'",
    "' a'", "_binary'a '",
]  # fmt: skip
_MODES = [
    "ANSI_QUOTES", "PIPES_AS_CONCAT", "NO_BACKSLASH_ESCAPES", "ANSI", "HIGH_NOT_PRECEDENCE",
    "EMPTY_STRING_IS_NULL", "ANSI_QUOTES,PIPES_AS_CONCAT,NO_BACKSLASH_ESCAPES,IGNORE_SPACE",
]  # fmt: skip
_MODE_READS = [
    'SELECT v FROM s WHERE k = "k1"', "SELECT v FROM n WHERE id = 1 || 2",
    "SELECT v FROM s WHERE k = 'a\\\\'", "SELECT v FROM s WHERE k = 'a' || 'b'",
    "SELECT v FROM n WHERE NOT id = 1", "SELECT v FROM s WHERE k = ''",
    "SELECT v FROM s WHERE k = 'a\\' OR k = 'b' -- '", "SELECT v FROM n WHERE id = '1' || '2'",
    'SELECT v FROM s WHERE k = "a" "b"', "SELECT v FROM n WHERE id = 1 && 0",
]  # fmt: skip


def _unordered(outcome: tuple[str, Any]) -> tuple[str, Any]:
    """An outcome with its rows in order (a scatter's come in any)."""
    return (outcome[0], sorted(outcome[1], key=repr)) if outcome[0] == "rows" else outcome


def test_key_literals_and_sql_modes_are_read_as_mariadb_reads_them(sharded: ProxyEnv) -> None:
    """A regression guard from the same review (no difference found): integer and string
    keys in many literal forms, and statements whose reading depends on sql_mode, set in the
    middle of the session."""
    env = sharded
    rows: dict[str, list[str]] = {
        "n": ["0", "1", "2", "3", "5", "12", "-3", "1000", "9223372036854775807"],
        "s": [
            "'a'",
            "'b'",
            "'ab'",
            "'3'",
            "'03'",
            "'a b'",
            "'k1'",
            "'a\\\\'",
            "'\\\\'",
            "'1'",
            "''",
        ],
    }
    proxy, twin = _both(env, ["DELETE FROM n", "DELETE FROM s"])
    try:
        for table, keys in rows.items():
            for number, literal in enumerate(keys):
                sql = f"INSERT INTO {table} VALUES ({literal}, {number})"
                assert _outcome(proxy, sql) == _outcome(twin, sql) == ("rows", ()), sql
        reads = [
            *(f"SELECT v FROM n WHERE id = {form}" for form in _INTEGER_FORMS),
            *(f"SELECT v FROM n WHERE id IN ({form}, 1000)" for form in _INTEGER_FORMS),
            *(f"SELECT v FROM s WHERE k = {form}" for form in _STRING_FORMS),
            *(f"SELECT v FROM s WHERE k IN ({form}, 'zz')" for form in _STRING_FORMS),
            *(f"SELECT v FROM s WHERE BINARY k = {form}" for form in _STRING_FORMS),
        ]
        refused = 0
        for mode in ["", *_MODES]:
            for conn in (proxy, twin):
                assert _outcome(conn, f"SET SESSION sql_mode = '{mode}'")[0] == "rows"
            for sql in reads if not mode else _MODE_READS:
                expected = _unordered(_outcome(twin, sql))
                for _ in range(3):
                    found = _unordered(_outcome(proxy, sql))
                    assert found == expected or found == ("error", 1235), (mode, sql, found)
                    refused += found != expected
        assert refused < 20, refused  # (refusing is safe; it must not be all there is)
    finally:
        proxy.close()
        twin.close()
