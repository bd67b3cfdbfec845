"""Bypass attempts on a sharded database's statement paths, on two real MariaDB shards: what an
attacker who reads the routing code would try. Each test is one finding of the adversarial
review: a statement the proxy read one way and MariaDB another (executable comments, hidden
table references, SQL modes, parameter encodings), or an answer given without the privilege
MariaDB would ask for. Rows are read back from the physical databases directly.

The layout: ``advdb`` over s0 and s1 with 4 physical databases (``advdb_0000``, ``advdb_0001``
on s0; ``advdb_0002``, ``advdb_0003`` on s1); ``DBPARTITION BY HASH(id)``: db = |id| mod 4.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError, lenenc_bytes
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import kill_connections, physical, shard_of, sharded_database
from tests.e2e.tools import error_of

PASSWORD = "Adversary#pass1"
DB = "advdb"
LIMITED = ("advlimited", "Limited#pass12")


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        *(
            statement
            for name in ("ja", "jb")
            for statement in (
                f"CREATE TABLE {name} (id int NOT NULL PRIMARY KEY, x int) DBPARTITION BY HASH(id)",
                f"INSERT INTO {name} VALUES (0, 7), (1, 7), (2, 7), (3, 7)",
            )
        ),
        "CREATE TABLE secret (id int NOT NULL PRIMARY KEY, v varchar(20))"
        " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
        "CREATE TABLE open_t (id int PRIMARY KEY, v int) BROADCAST",
        "CREATE TABLE sk (k varchar(20) NOT NULL PRIMARY KEY, v int)"
        " DEFAULT CHARSET utf8mb4 DBPARTITION BY HASH(k)",
        "CREATE TABLE autot (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, v int)"
        " DBPARTITION BY HASH(id)",
        "CREATE SEQUENCE seq",
        f"CREATE USER '{LIMITED[0]}'@'%' IDENTIFIED BY '{LIMITED[1]}'",
        f"GRANT SELECT ON {DB}.open_t TO '{LIMITED[0]}'@'%'",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


def _client(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB, **kwargs)


def _limited(env: ProxyEnv) -> pymysql.connections.Connection[Any]:
    return env.connect(LIMITED[0], LIMITED[1], database=DB)


# ------------------------------------------------------------------------------ privileges


def test_show_commands_list_only_tables_the_caller_holds_something_on(sharded: ProxyEnv) -> None:
    """SHOW TABLES is answered by the proxy on a sharded database: it listed every logical
    table (MariaDB lists only those the account holds a privilege on), and SHOW RULE / SHOW
    TOPOLOGY answered for any table, naming its shard key and physical tables."""
    conn = _limited(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            assert cur.fetchall() == (("open_t",),)
            cur.execute("SHOW FULL TABLES")
            assert cur.fetchall() == (("open_t", "BASE TABLE"),)
            cur.execute("SHOW TABLES LIKE '%e%'")
            assert cur.fetchall() == (("open_t",),)
            cur.execute("SHOW RULE")
            assert [r[1] for r in cur.fetchall()] == ["open_t"]
            cur.execute("SHOW RULE FROM open_t")
            assert [r[1] for r in cur.fetchall()] == ["open_t"]
            cur.execute("SHOW TOPOLOGY FROM open_t")
            assert len(cur.fetchall()) == 4
            for sql in ("SHOW RULE FROM secret", "SHOW TOPOLOGY FROM secret"):
                errno, message = error_of(cur, sql)
                assert errno == 1142, sql
                assert "'secret'" in message
            # Another database's name before the table was ignored (this database's answered).
            for sql in ("SHOW RULE FROM easydb.open_t", "SHOW TOPOLOGY FROM easydb.open_t"):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
    finally:
        conn.close()
    owner = _client(sharded)
    try:
        with owner.cursor() as cur:
            cur.execute("SHOW TABLES")
            assert [r[0] for r in cur.fetchall()] == ["autot", "ja", "jb", "open_t", "secret", "sk"]
    finally:
        owner.close()


def test_nextval_needs_insert_and_select_on_the_sequence(sharded: ProxyEnv) -> None:
    """``s.NEXTVAL`` takes a GROUP sequence's values (a write): an account holding only SELECT
    on another table took them, the implicit sequences of tables it holds nothing on too.
    MariaDB's NEXTVAL(s) needs INSERT (and the proxy's analysis SELECT) on s."""
    conn = _limited(sharded)
    try:
        with conn.cursor() as cur:
            for sql, sequence in (
                ("SELECT seq.NEXTVAL", "seq"),
                ("SELECT id, seq.NEXTVAL FROM open_t", "seq"),
                ("SELECT AUTO_SEQ_autot.NEXTVAL", "AUTO_SEQ_autot"),
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1142, sql
                assert f"command denied to user '{LIMITED[0]}'" in message
                assert f"for table '{sequence}'" in message
    finally:
        conn.close()
    owner = _client(sharded)
    try:
        with owner.cursor() as cur:
            cur.execute("SELECT seq.NEXTVAL")
            first = cur.fetchall()[0][0]
            cur.execute("SELECT seq.NEXTVAL")
            assert cur.fetchall()[0][0] > first
    finally:
        owner.close()


# ------------------------------------------------------------------- executable comments


def test_executable_comments_are_read_as_the_shard_reads_them(sharded: ProxyEnv) -> None:
    """The co-location check and the merge engine read the statement with sqlglot, which takes
    ``/*!50000 ...*/`` and ``/*M!...*/`` for comments, while MariaDB runs their code: a join
    not on the shard keys hidden in one ran on each partition's own rows (4 pairs of the 16 one
    server joins), and a GROUP BY hidden in one was merged as one group."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                "SELECT ja.id, jb.id FROM ja /*!50000 JOIN jb ON ja.x = jb.x */",
                "SELECT ja.id, jb.id FROM ja /*M!100000 JOIN jb ON ja.x = jb.x */",
                "SELECT ja.id, jb.id FROM ja JOIN jb ON ja.id = jb.id /*!50000 OR ja.x = jb.x */",
                "SELECT COUNT(*) FROM ja /*!50000 JOIN jb ON ja.x = jb.x */",
                "SELECT ja.id FROM ja WHERE /*!50000 EXISTS (SELECT 1 FROM jb WHERE jb.x = 7) AND*/"
                " ja.id > 0",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
                assert "sharded table" in message, sql
            cur.execute("SELECT SUM(x) FROM ja /*!50000 GROUP BY id */")
            assert sorted(r[0] for r in cur.fetchall()) == [7, 7, 7, 7]
            cur.execute("SELECT id FROM ja /*!50000 ORDER BY id DESC */ LIMIT 2")
            assert cur.fetchall() == ((3,), (2,))
            # Still routed by a key the comment's code fixes.
            cur.execute("SELECT x FROM ja WHERE /*!50000 id = 2 AND */ x = 7")
            assert cur.fetchall() == ((7,),)
            # A comment whose version the shard does not run stays a comment.
            cur.execute("SELECT COUNT(*) FROM ja /*!99999 JOIN jb ON ja.x = jb.x */")
            assert cur.fetchall() == ((4,),)
    finally:
        conn.close()


# ----------------------------------------------------------------- hidden table references


def test_parenthesized_and_using_table_references_are_routed(sharded: ProxyEnv) -> None:
    """Routing found table names after FROM, JOIN and the commas of a FROM list, not inside
    the parentheses of ``FROM (t)`` / ``FROM (a, b)`` nor in a multi-table DELETE's ``USING a,
    b``: such a statement named no sharded table as far as routing saw, and ran on physical
    database 0 alone (one partition's rows read, a join of two sharded tables not on their
    keys run there, a multi-table DELETE run on each partition's own rows)."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM (ja)")
            assert sorted(r[0] for r in cur.fetchall()) == [0, 1, 2, 3]
            cur.execute("SELECT COUNT(*) FROM ((ja))")
            assert cur.fetchall() == ((4,),)
            cur.execute("SELECT id FROM (ja) WHERE id = 2")
            assert cur.fetchall() == ((2,),)
            for sql in (
                "SELECT * FROM (ja, jb)",
                "SELECT * FROM ja, (jb)",
                "SELECT * FROM ja JOIN (jb) ON ja.x = jb.x",
                "SELECT * FROM (ja JOIN jb ON ja.x = jb.x)",
                "SELECT * FROM (ja) WHERE x IN (SELECT x FROM (jb))",
                "DELETE FROM ja USING ja, jb WHERE ja.x = jb.x AND jb.id = 2",
                "DELETE FROM ja USING ja JOIN jb ON ja.x = jb.x WHERE jb.id = 2",
            ):
                errno, _ = error_of(cur, sql)
                assert errno == 1235, sql
        for index, ids in enumerate([[0], [1], [2], [3]]):
            assert [r[0] for r in physical(sharded, DB, index, "SELECT id FROM ja")] == ids
    finally:
        conn.close()


# ------------------------------------------------------------------ statements of the session


def test_session_statements_naming_sharded_tables_are_refused(sharded: ProxyEnv) -> None:
    """A SET with a subquery is a session statement: the proxy relayed it to physical
    database 0, so ``SET @n = (SELECT COUNT(*) FROM ja)`` counted one partition's rows (1 of
    4); CHECKSUM TABLE ja, relayed alike, summed one partition's (now every partition's:
    test_sharded_maintenance). (LOCK TABLES, once refused alike, now locks every
    partition: test_sharded_metadata.)"""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                "SET @n = (SELECT COUNT(*) FROM ja)",
                "SET @n := (SELECT MAX(id) FROM secret)",
                "SET @n = 1, @m = (SELECT COUNT(*) FROM ja WHERE id = 1)",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
                assert "naming sharded or broadcast table" in message, sql
            cur.execute("SELECT @n")
            assert cur.fetchall() == ((None,),)
            cur.execute("SET @n = 5")
            cur.execute("SELECT @n")
            assert cur.fetchall() == ((5,),)
    finally:
        conn.close()


# --------------------------------------------------------------------- prepared statements

_NEWDECIMAL = 0xF6
_VAR_STRING = 0xFD


def test_decimal_parameters_are_read_as_the_shard_reads_them(sharded: ProxyEnv) -> None:
    """A DECIMAL parameter's text was read with Python's Decimal, which takes ``1_0`` for 10
    (and spaces around it), where MariaDB reads the digits before the ``_``: 1. A prepared
    INSERT with it put the row with key 1 in key 10's partition (2 instead of 1), where no
    point read of 1 finds it; a point read was routed to key 10's partition."""
    binary = BinaryClient(sharded.port, DB, PASSWORD, DB)
    try:
        insert = binary.prepare("INSERT INTO jb (id, x) VALUES (?, 99)")
        with pytest.raises(ServerError) as refused:
            binary.execute_typed(insert, [(_NEWDECIMAL, lenenc_bytes(b"5_0"))])
        assert refused.value.errno == 1235
        # A decimal MariaDB reads as the proxy does is placed.
        assert binary.execute_typed(insert, [(_NEWDECIMAL, lenenc_bytes(b"6.0"))]) == 1
        select = binary.prepare("SELECT CAST(x AS SIGNED) FROM ja WHERE id = ?")
        for text in (b"1_0", b" 1", b"1 "):
            rows = binary.execute_typed(select, [(_NEWDECIMAL, lenenc_bytes(text))])
            assert rows == [(7,)], text
        assert binary.execute_typed(select, [(_NEWDECIMAL, lenenc_bytes(b"1e0"))]) == [(7,)]
    finally:
        binary.close()
    for index in range(4):
        ids = [r[0] for r in physical(sharded, DB, index, "SELECT id FROM jb")]
        assert 5 not in ids and 50 not in ids
        assert (6 in ids) == (index == 2)


# ---------------------------------------------------------------------------- SQL modes


def test_double_pipe_is_not_read_as_or_when_it_may_concatenate(sharded: ProxyEnv) -> None:
    """Routing split a WHERE at ``||`` as at OR, and the merge evaluated a HAVING's ``||`` as
    OR; under PIPES_AS_CONCAT (and ANSI) MariaDB concatenates: ``id = 1 || 2 = id`` is
    ``(id = '12') = id``, true for the row 0, which lives in neither key 1's nor key 2's
    partition."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT')")
            cur.execute("SELECT id FROM ja WHERE id = 1 || 2 = id")
            assert cur.fetchall() == ((0,),)
            cur.execute("UPDATE ja SET x = 8 WHERE id = 1 || 2 = id")
            assert cur.rowcount == 1
            assert physical(sharded, DB, 0, "SELECT x FROM ja") == [(8,)]
            cur.execute("UPDATE ja SET x = 7 WHERE id = 0")
            errno, _ = error_of(cur, "SELECT x, COUNT(*) n FROM ja GROUP BY x HAVING n > 1 || 0")
            assert errno == 1235
            cur.execute("SET SESSION sql_mode = DEFAULT")
            cur.execute("SELECT id FROM ja WHERE id = 1 || id = 2")
            assert sorted(r[0] for r in cur.fetchall()) == [1, 2]
    finally:
        conn.close()


# ------------------------------------------------------------------------ character sets


def test_string_keys_are_read_in_the_clients_character_set(sharded: ProxyEnv) -> None:
    """The proxy reads every statement as UTF-8; a latin1 client's ``'\xc3\xa9'`` is the two
    characters 'Ã©' to MariaDB (stored as such), but 'é' to routing: the row went to hash('é')'s
    partition (1), where a utf8mb4 client's point read of 'Ã©' (partition 2) does not find
    it, and a latin1 client's point read of it went to partition 1 too."""
    latin1 = _client(sharded, charset="latin1")
    try:
        with latin1.cursor() as cur:
            cur.execute("INSERT INTO sk VALUES ('Ã©', 1), ('plain', 2)")
            cur.execute("SELECT v FROM sk WHERE k = 'Ã©'")
            assert cur.fetchall() == ((1,),)
    finally:
        latin1.close()
    assert physical(sharded, DB, 2, "SELECT k, v FROM sk WHERE v = 1") == [("Ã©", 1)]
    utf8 = _client(sharded)
    try:
        with utf8.cursor() as cur:
            cur.execute("SELECT v FROM sk WHERE k = 'Ã©'")
            assert cur.fetchall() == ((1,),)
    finally:
        utf8.close()
    # A parameter is read in the character set the client set last (not its handshake's).
    binary = BinaryClient(sharded.port, DB, PASSWORD, DB)
    try:
        binary.query("SET NAMES latin1")
        select = binary.prepare("SELECT v + 0 FROM sk WHERE k = ?")
        text = "Ã©".encode("latin1")
        assert binary.execute_typed(select, [(_VAR_STRING, lenenc_bytes(text))]) == [(1,)]
    finally:
        binary.close()


def test_double_quoted_identifiers_under_ansi_quotes(sharded: ProxyEnv) -> None:
    """The merge engine and the co-location check parse with sqlglot's MySQL dialect, where
    ``"id"`` is a string; under ANSI_QUOTES it names the column: ``ORDER BY "id" DESC LIMIT 3``
    was merged as an order by a constant (rows 0, 1, 2 of the partitions' first rows)."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
            cur.execute('SELECT "id" FROM ja ORDER BY "id" DESC LIMIT 3')
            assert cur.fetchall() == ((3,), (2,), (1,))
            cur.execute('SELECT "x", COUNT(*) FROM "ja" GROUP BY "x" ORDER BY 2')
            assert cur.fetchall() == ((7, 4),)
            cur.execute(
                'SELECT "ja"."id" FROM "ja" JOIN "jb" ON "ja"."id" = "jb"."id"'
                ' WHERE "ja"."x" = 7 ORDER BY "ja"."id" DESC'
            )
            assert cur.fetchall() == ((3,), (2,), (1,), (0,))
            cur.execute("SELECT 'x' FROM ja WHERE id = 1")
            assert cur.fetchall() == (("x",),)
    finally:
        conn.close()


def test_backslashes_under_no_backslash_escapes(sharded: ProxyEnv) -> None:
    """Under NO_BACKSLASH_ESCAPES ``'a\\'`` is a whole string; sqlglot (the merge engine, the
    co-location check) reads the backslash as an escape and the rest of the statement as
    string: an ORDER BY after it was not merged in order, an OR after it in a join's ON was
    not seen."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            for sql in (
                "SELECT id FROM ja WHERE 'a\\' <> '' ORDER BY id DESC LIMIT 3 -- '",
                "SELECT ja.id FROM ja JOIN jb ON ja.id = jb.id AND '\\' <> '' OR ja.x = jb.x"
                " OR '' = ''",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
                assert "NO_BACKSLASH_ESCAPES" in message
            cur.execute("SELECT id FROM ja WHERE id = 2 AND 'a\\' <> ''")
            assert cur.fetchall() == ((2,),)
            cur.execute("SELECT id FROM ja WHERE 'a\\' <> ''")
            assert sorted(r[0] for r in cur.fetchall()) == [0, 1, 2, 3]
    finally:
        conn.close()


def test_prepared_key_read_by_the_same_qualifiers_as_routing(sharded: ProxyEnv) -> None:
    """A prepared statement's key slots took ``t.key`` for the table's key even when ``t`` was
    given an alias and the name ``t`` was another table's (a derived table's): ``FROM ja a,
    (SELECT 1 AS id) ja WHERE ja.id = ?`` compares the derived table's column, true for every
    row of ja, but each execution went to the partition of its parameter only."""
    binary = BinaryClient(sharded.port, DB, PASSWORD, DB)
    try:
        select = binary.prepare("SELECT a.id + 0 FROM ja a, (SELECT 1 AS id) ja WHERE ja.id = ?")
        for _ in range(2):  # (the second execution is the one routed by its key alone)
            rows = binary.execute(select, [1])
            assert isinstance(rows, list)
            assert sorted(r[0] for r in rows if isinstance(r[0], int)) == [0, 1, 2, 3]
    finally:
        binary.close()


# ------------------------------------------------------------------------------------ hints


def test_ddl_under_a_node_hint_is_refused(sharded: ProxyEnv) -> None:
    """``/*+TDDL:node(...)*/ ALTER TABLE t ...`` changed one physical database's table behind
    the catalog's back: an ``ADD COLUMN z FIRST`` there made every INSERT without a column
    list place its rows by a key column that partition stores elsewhere."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                f"/*+TDDL:node('{DB}_0001')*/ ALTER TABLE ja ADD COLUMN z int FIRST",
                f"/*+TDDL:node('{DB}_0001')*/ DROP TABLE ja",
                f"/*+TDDL:node('{DB}_0001')*/ RENAME TABLE ja TO ja2",
                "/*+TDDL:scan()*/ CREATE TABLE hinted_new (id int)",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
                assert "under a TDDL hint" in message
            cur.execute(f"/*+TDDL:node('{DB}_0001')*/ SELECT id FROM ja")
            assert cur.fetchall() == ((1,),)
        assert [r[0] for r in physical(sharded, DB, 1, "SHOW COLUMNS FROM ja")] == ["id", "x"]
    finally:
        conn.close()


def test_a_table_routing_does_not_see_is_answered(sharded: ProxyEnv) -> None:
    """Routing finds table names by position; the analysis reads the statement's grammar. A
    table only the analysis found was sent as written: ``CHECKSUM TABLE open_t, ja`` answered
    with physical database 0's checksum of ja (one partition's rows); then refused (1235).
    Table maintenance now reads its list itself: every table named is summed over all its
    partitions (test_sharded_maintenance)."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKSUM TABLE open_t, ja")
            rows = cur.fetchall()
        sums = [physical(sharded, DB, index, "CHECKSUM TABLE ja")[0][1] for index in range(4)]
        assert [row[0] for row in rows] == [f"{DB}.open_t", f"{DB}.ja"]
        assert rows[1][1] == sum(sums) % (1 << 32)
    finally:
        conn.close()


def test_parameter_types_sent_again_reach_every_partition(sharded: ProxyEnv) -> None:
    """An execution may leave out the parameter types ("as last time"). A partition that had
    been sent older types kept reading the values with those when the client had since sent
    new ones to another partition: seven NUL characters (a string, 0 as a number: the row 0)
    were read there as the BIGINT 7, and the row 7 came back too (a DELETE would delete it)."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ja VALUES (7, 7)")  # partition 3
        binary = BinaryClient(sharded.port, DB, PASSWORD, DB)
        try:
            select = binary.prepare("SELECT CAST(id AS SIGNED) FROM ja WHERE id = ?")
            assert binary.execute(select, [11]) == []  # BIGINT, to partition 3
            assert binary.execute(select, ["9"]) == []  # a string, to partition 1
            rows = binary.execute(select, ["\x00" * 7], send_types=False)  # everywhere
            assert rows == [(0,)]
        finally:
            binary.close()
    finally:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM ja WHERE id = 7")
        conn.close()


# ------------------------------------------------------------------------- WHERE grammar


def test_key_conditions_are_read_with_the_grammars_precedence(sharded: ProxyEnv) -> None:
    """Routing split a WHERE at its ANDs and took any part fixing the key: but XOR binds less
    tightly than AND (``1 XOR 0 AND id = 3`` is ``1 XOR (0 AND id = 3)``, true for every row),
    and the ANDs of a CASE are inside it (``CASE WHEN 0 AND id = 3 AND 0 THEN 0 ELSE 1 END``
    is true for every row): both went to key 3's partition alone."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                "SELECT id FROM ja WHERE 1 XOR 0 AND id = 3",
                "SELECT id FROM ja WHERE id = 3 AND 1 XOR 1 OR 1",
                "SELECT id FROM ja WHERE CASE WHEN 0 AND id = 3 AND 0 THEN 0 ELSE 1 END",
                "SELECT id FROM ja WHERE CASE WHEN id = 3 THEN 1 ELSE 1 END AND id IN (3, 0)",
            ):
                cur.execute(sql)
                found = sorted(r[0] for r in cur.fetchall())
                assert found == ([0, 3] if "IN (3, 0)" in sql else [0, 1, 2, 3]), sql
            cur.execute("SELECT id FROM ja WHERE x = 7 AND id = 3")
            assert cur.fetchall() == ((3,),)
    finally:
        conn.close()


def test_stored_functions_in_broadcast_writes_are_refused(sharded: ProxyEnv) -> None:
    """A write to a broadcast table runs on every copy: a stored function there may compute a
    value of its own on each (here, each physical database's own index), so a call of one is
    refused like NOW() -- quoted, qualified or not -- and nothing is written; MariaDB's
    built-in functions (keywords called as functions included) still run."""
    for index in range(4):
        physical(sharded, DB, index, "DROP FUNCTION IF EXISTS per_copy")
        physical(sharded, DB, index, f"CREATE FUNCTION per_copy() RETURNS int RETURN {index}")
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                "INSERT INTO open_t VALUES (90, per_copy())",
                "INSERT INTO open_t VALUES (90, `per_copy`())",
                f"INSERT INTO open_t VALUES (90, {DB}.per_copy())",
                "UPDATE open_t SET v = 1 + PER_COPY() WHERE id = 90",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
                assert "() in a write to broadcast table open_t" in message, sql
            cur.execute("INSERT INTO open_t VALUES (90, IF(1 > 0, LENGTH(LEFT('abc', 2)), 0))")
            cur.execute("SELECT v FROM open_t WHERE id = 90")
            assert cur.fetchall() == ((2,),)
            cur.execute("DELETE FROM open_t WHERE id = 90")
        for index in range(4):
            assert physical(sharded, DB, index, "SELECT COUNT(*) FROM open_t WHERE id = 90") == [
                (0,)
            ]
    finally:
        conn.close()
        for index in range(4):
            physical(sharded, DB, index, "DROP FUNCTION IF EXISTS per_copy")


def test_string_keys_longer_than_the_column_are_placed_as_stored(sharded: ProxyEnv) -> None:
    """MariaDB truncates a string longer than its column (without strict mode with a
    warning; with it, only when spaces alone are cut, else 1406): the row is placed by the
    value stored, so a read by that value finds it and the same key written again is the
    duplicate it is (it was placed by the untruncated string, in another partition)."""
    conn = _client(sharded)
    long_key = "abcdefghijklmnopqrst" + "uvwxyz"  # 26 characters for varchar(20)
    wide_key = "é" * 25
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
            cur.execute(f"INSERT INTO sk VALUES ('{long_key}', 1), ('{wide_key}', 2)")
            assert cur._result is not None and cur._result.warning_count == 2  # 1265 each
            cur.execute(f"SELECT k, v FROM sk WHERE k = '{long_key[:20]}'")
            assert cur.fetchall() == ((long_key[:20], 1),)
            cur.execute(f"SELECT k, v FROM sk WHERE k = '{wide_key[:20]}'")
            assert cur.fetchall() == ((wide_key[:20], 2),)
            errno, message = error_of(cur, f"INSERT INTO sk VALUES ('{long_key[:20]}', 3)")
            assert (errno, message) == (
                1062,
                f"Duplicate entry '{long_key[:20]}' for key 'PRIMARY'",
            )
            cur.execute("SET SESSION sql_mode = 'STRICT_TRANS_TABLES'")
            errno, message = error_of(cur, f"INSERT INTO sk VALUES ('x{long_key}', 4)")
            assert (errno, message) == (1406, "Data too long for column 'k' at row 1")
            # Spaces cut: a note even in strict mode, and the row stored without them.
            cur.execute(f"INSERT INTO sk VALUES ('{long_key[1:21]}     ', 5)")
            cur.execute(f"SELECT v FROM sk WHERE k = '{long_key[1:21]}'")
            assert cur.fetchall() == ((5,),)
            # A long INSERT (its rows read in one pass, not lexed) alike.
            cur.execute("SET SESSION sql_mode = ''")
            bulk = [f"bulk{n:02d}-{long_key}" for n in range(30)]
            sql = "INSERT INTO sk VALUES " + ", ".join(f"('{k}', {n})" for n, k in enumerate(bulk))
            assert len(sql) >= 512
            assert cur.execute(sql) == 30
            for n, key in enumerate(bulk):
                cur.execute(f"SELECT v FROM sk WHERE k = '{key[:20]}'")
                assert cur.fetchall() == ((n,),), key
            cur.execute("DELETE FROM sk WHERE k LIKE 'bulk%'")
            assert cur.rowcount == 30
        # A prepared INSERT's parameter alike.
        prepared = sharded.connector(DB, PASSWORD, DB, autocommit=True)
        try:
            pcur = prepared.cursor(prepared=True)
            pcur.execute("SET SESSION sql_mode = ''")
            pcur.execute("INSERT INTO sk VALUES (?, ?)", ("Z" + long_key, 6))
            pcur.execute("SELECT v FROM sk WHERE k = ?", (("Z" + long_key)[:20],))
            assert pcur.fetchall() == [(6,)]
        finally:
            prepared.close()
        with conn.cursor() as cur:
            cur.execute(
                f"DELETE FROM sk WHERE k IN ('{long_key[:20]}', '{wide_key[:20]}',"
                f" '{long_key[1:21]}', '{('Z' + long_key)[:20]}')"
            )
            assert cur.rowcount == 4
    finally:
        conn.close()


# ------------------------------------------------------------------------- bulk INSERT


def _secret_rows(env: ProxyEnv) -> dict[int, tuple[int, str, str]]:
    """Every row of ``secret`` read from its 8 physical tables directly: id -> (physical
    database, physical table, v). |id| mod 8 is the global table index, db = index div 2."""
    found = {}
    for g in range(8):
        for row_id, value in physical(env, DB, g // 2, f"SELECT id, v FROM secret_0{g}"):
            assert row_id not in found
            found[row_id] = (g // 2, f"secret_0{g}", value)
    return found


def test_a_long_insert_puts_each_row_in_its_physical_table(sharded: ProxyEnv) -> None:
    """A multi-row INSERT long enough to be read without lexing its rows: strings that look
    like row boundaries, comments or escapes, comments between the rows, negative keys -- each
    row lands in the physical table its key hashes to, with its value as written."""
    tricky = ["a''b", "c\\'d", "/* x */", "), (999, ''x", "-- y", "e\\\\", 'f"g', "h,i"]
    rows = {}
    texts = []
    for number, row_id in enumerate(range(-40, 41)):
        raw = tricky[number % len(tricky)]
        value = raw.replace("''", "'").replace("\\'", "'").replace("\\\\", "\\")
        rows[row_id] = value
        comment = ["", " /* r */", "\n-- r\n", " # r\n"][number % 4]
        texts.append(f"({row_id},{comment} '{raw}')")
    sql = "INSERT INTO secret (id, v) VALUES " + ", ".join(texts)
    assert len(sql) > 512 and "999" not in [str(k) for k in rows]
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            assert cur.execute(sql) == len(rows)
            found = _secret_rows(sharded)
            assert {k: v for k, (_, _, v) in found.items()} == rows
            for row_id, (database, table, _) in found.items():
                assert (database, table) == ((abs(row_id) % 8) // 2, f"secret_0{abs(row_id) % 8}")
            cur.execute("SELECT count(*), sum(id) FROM secret")
            assert cur.fetchone() == (len(rows), 0)
    finally:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM secret")
        conn.close()


def test_an_insert_into_tables_of_one_database_commits_all_or_nothing(sharded: ProxyEnv) -> None:
    """Rows for two physical tables of one physical database (one branch, committed in one
    phase): all of them, or -- a duplicate key in the second table -- none."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            # 8 and 16 -> secret_00, 9 and 17 -> secret_01: both in physical database 0
            assert cur.execute("INSERT INTO secret VALUES (8, 'a'), (9, 'b')") == 2
            assert {k: v[:2] for k, v in _secret_rows(sharded).items()} == {
                8: (0, "secret_00"),
                9: (0, "secret_01"),
            }
            with pytest.raises(pymysql.err.IntegrityError):
                cur.execute("INSERT INTO secret VALUES (16, 'c'), (9, 'dup'), (17, 'd')")
            assert sorted(_secret_rows(sharded)) == [8, 9]
            assert cur.execute("INSERT INTO secret VALUES (16, 'c'), (17, 'd')") == 2
            assert sorted(_secret_rows(sharded)) == [8, 9, 16, 17]
    finally:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM secret")
        conn.close()


# ------------------------------------------------------------------------------ LOCK TABLES


def _in_use(env: ProxyEnv) -> list[tuple[str, str]]:
    """The tables in use (locked or read) on both shards: (database, table)."""
    found: list[tuple[str, str]] = []
    for endpoint in env.shards:
        admin = connect_admin(endpoint)
        try:
            with admin.cursor() as cur:
                cur.execute("SHOW OPEN TABLES WHERE In_use > 0")
                found += [(row[0], row[1]) for row in cur.fetchall()]
        finally:
            admin.close()
    return sorted(found)


def test_reset_connection_ends_every_partitions_locks_and_settings(sharded: ProxyEnv) -> None:
    """COM_RESET_CONNECTION went to physical database 0's connection alone: after LOCK TABLES
    the other partitions' connections kept their locks (other sessions blocked, this one told
    1100 for tables it no longer locked), and a setting made before it (sql_mode = '') stayed
    on them, so a string key too long for its column was cut silently where the session is
    strict again."""
    client = BinaryClient(sharded.port, DB, PASSWORD, DB)
    try:
        client.query("LOCK TABLES ja WRITE")
        assert _in_use(sharded) == [(f"{DB}_{i:04d}", "ja") for i in range(4)]
        client._send(b"\x1f")  # COM_RESET_CONNECTION
        client._check(client._read()[1])
        assert _in_use(sharded) == []
        assert client.query_raw("SELECT COUNT(*) FROM jb")[0][:1] != b"\xff"
        client.query("SET SESSION sql_mode = ''")
        assert client.query_raw("SELECT COUNT(*) FROM sk")[0][:1] != b"\xff"  # every partition
        client._send(b"\x1f")
        client._check(client._read()[1])
        for n in range(8):
            with pytest.raises(ServerError) as refused:
                client.query(f"INSERT INTO sk VALUES ('{n}{'x' * 24}', {n})")
            assert str(refused.value) == "(1406) Data too long for column 'k' at row 1", n
    finally:
        client.close()


def test_lock_tables_of_a_physical_table_name_is_no_such_table(sharded: ProxyEnv) -> None:
    """LOCK TABLES passed a name that is no logical table to physical database 0: a split
    table's physical table (``secret_00``, which every other statement answers with 1146) was
    locked there, telling the client it exists. A split table locked under an alias was
    MariaDB's 1066 (its physical tables on one physical database cannot share the alias)."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for name in ("secret_00", "SECRET_01", f"{DB}.secret_00"):
                assert error_of(cur, f"LOCK TABLES {name} READ") == (
                    1146,
                    f"Table '{DB}.{name.split('.')[-1]}' doesn't exist",
                ), name
            assert error_of(cur, "LOCK TABLES ja READ, secret_01 AS s WRITE") == (
                1146,
                f"Table '{DB}.secret_01' doesn't exist",
            )
            assert _in_use(sharded) == []
            errno, message = error_of(cur, "LOCK TABLES secret AS s READ")
            assert errno == 1235 and "split table secret under an alias" in message
            cur.execute("LOCK TABLES secret READ, ja AS j READ")
            cur.execute("SELECT COUNT(*) FROM ja AS j")
            assert cur.fetchall() == ((4,),)
            cur.execute("UNLOCK TABLES")
        assert _in_use(sharded) == []
    finally:
        conn.close()


def test_string_keys_converted_to_the_columns_character_set_are_placed_as_stored(
    sharded: ProxyEnv,
) -> None:
    """MariaDB converts a string to its column's character set: without strict mode a
    character the set cannot hold is stored as ``?`` (a 4-byte one in utf8mb3, a CJK one in
    latin1). The row was placed by the string as given, so a read by the value stored went
    to another partition and found nothing. A character set the proxy cannot convert to is
    refused (1235) for a non-ASCII key."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE k3 (k varchar(10) CHARACTER SET utf8mb3 NOT NULL, v int)"
                " DBPARTITION BY HASH(k)"
            )
            cur.execute(
                "CREATE TABLE kl (k varchar(10) NOT NULL, v int) DEFAULT CHARSET latin1"
                " DBPARTITION BY HASH(k)"
            )
            cur.execute(
                "CREATE TABLE kg (k varchar(10) CHARACTER SET gbk NOT NULL, v int)"
                " DBPARTITION BY HASH(k)"
            )
            cur.execute("SET SESSION sql_mode = ''")
            for n in range(6):
                cur.execute(f"INSERT INTO k3 VALUES ('{n}\U0001f600x', {n})")
                cur.execute(f"INSERT INTO kl VALUES ('{n}\u4e2d\u00e9', {n})")
            for n in range(6):
                cur.execute(f"SELECT v FROM k3 WHERE k = '{n}?x'")
                assert cur.fetchall() == ((n,),), n
                cur.execute(f"SELECT v FROM kl WHERE k = '{n}?\u00e9'")
                assert cur.fetchall() == ((n,),), n
            cur.execute("INSERT INTO kg VALUES ('abc', 1)")
            errno, message = error_of(cur, "INSERT INTO kg VALUES ('\u4e2d', 2)")
            assert errno == 1235 and "character set gbk" in message
            cur.execute("SET SESSION sql_mode = DEFAULT")
            errno, message = error_of(cur, "INSERT INTO k3 VALUES ('\U0001f600', 9)")
            assert errno == 1366 and f"{DB}_0" not in message
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS k3, kl, kg")
        conn.close()


def test_lock_tables_lost_midway_leaves_no_lock_in_the_pool(sharded: ProxyEnv) -> None:
    """A LOCK TABLES whose connection to a later partition was lost (here killed while it
    waited for another client's lock there) released the partitions' locks but not physical
    database 0's, and unbound the session's connection: it went back to the pool holding the
    lock -- every other session blocked on the table, the next one given that connection
    bound by a lock it never took."""
    blocker = connect_admin(sharded.shards[shard_of(2, 4)], database=f"{DB}_0002")
    conn = _client(sharded)
    answers: list[int] = []

    def lock() -> None:
        with conn.cursor() as cur:
            answers.append(error_of(cur, "LOCK TABLES ja WRITE")[0])

    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLES ja WRITE")
        locking = threading.Thread(target=lock)
        locking.start()
        admin = connect_admin(sharded.shards[shard_of(2, 4)])
        try:
            with admin.cursor() as cur:
                waiting: tuple[tuple[Any, ...], ...] = ()
                deadline = time.monotonic() + 30
                while not waiting:
                    assert time.monotonic() < deadline, "the LOCK TABLES never waited"
                    cur.execute(
                        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s"
                        " AND STATE = 'Waiting for table metadata lock'",
                        (f"{DB}_0002",),
                    )
                    waiting = cur.fetchall()
                cur.execute(f"KILL {waiting[0][0]}")
        finally:
            admin.close()
        locking.join()
        assert answers == [2013]
        with blocker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        assert _in_use(sharded) == []
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM jb")  # (was 1100: physical database 0 locked)
            assert len(cur.fetchall()) == 1
    finally:
        blocker.close()
        conn.close()
        if _in_use(sharded):  # (the leak: its pooled connection would block the teardown)
            kill_connections(sharded.shards, DB, 0)


def test_server_version_in_broadcast_writes_is_refused(sharded: ProxyEnv) -> None:
    """VERSION() is each server's own (shards upgraded one after another differ), as
    @@version, which was refused: a write to a broadcast table computing with it ran on every
    copy; so did BINLOG_GTID_POS() (each server's binary log)."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                "INSERT INTO open_t VALUES (91, LENGTH(VERSION()))",
                "UPDATE open_t SET v = LENGTH(version ()) WHERE id = 91",
                "INSERT INTO open_t VALUES (91, @@version)",
                "INSERT INTO open_t VALUES (91, LENGTH(BINLOG_GTID_POS('log', 4)))",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
                assert "in a write to broadcast table open_t" in message, sql
        for index in range(4):
            assert physical(sharded, DB, index, "SELECT COUNT(*) FROM open_t WHERE id = 91") == [
                (0,)
            ]
    finally:
        conn.close()


def test_ddl_refused_alike_on_every_physical_table_names_no_physical_table(
    sharded: ProxyEnv,
) -> None:
    """A DDL statement failing on every physical table with the same error was answered
    with that error only when the texts were equal: the physical names in MariaDB's texts
    made them differ (a split table READ-locked: ``Table 'secret_00' was locked ...``), so
    the client got every physical database's and table's name in a list."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLES secret READ")
            for sql in ("ALTER TABLE secret ADD COLUMN z int", "TRUNCATE TABLE secret"):
                assert error_of(cur, sql) == (
                    1099,
                    "Table 'secret' was locked with a READ lock and can't be updated",
                ), sql
            cur.execute("UNLOCK TABLES")
            cur.execute("SHOW CREATE TABLE secret")
            assert "`z`" not in cur.fetchall()[0][1]
    finally:
        conn.close()


def test_broadcast_column_defaults_computed_per_copy_are_refused(sharded: ProxyEnv) -> None:
    """A broadcast table's column ``DEFAULT (UUID())`` (or RAND(), a stored function...):
    every write leaving the column out, and an ALTER TABLE adding it to existing rows, stored
    a value of each copy's own -- the write refusal of such calls (1235) was bypassed by
    putting the call in the definition. CREATE and ALTER TABLE of one are refused."""
    conn = _client(sharded)
    try:
        with conn.cursor() as cur:
            for sql in (
                "CREATE TABLE bu (id int PRIMARY KEY, u varchar(40) DEFAULT (UUID())) BROADCAST",
                "CREATE TABLE bu (id int PRIMARY KEY, r double DEFAULT (1 + RAND())) BROADCAST",
                "ALTER TABLE open_t ADD COLUMN r double DEFAULT (RAND())",
                "ALTER TABLE open_t ALTER COLUMN v SET DEFAULT (CONNECTION_ID())",
            ):
                errno, message = error_of(cur, sql)
                assert errno == 1235, sql
                assert "a column DEFAULT calling" in message, sql
            cur.execute(
                "CREATE TABLE bu (id int PRIMARY KEY, c varchar(9) DEFAULT (CONCAT('a', 'b')))"
                " BROADCAST"
            )
            cur.execute("INSERT INTO bu (id) VALUES (1)")
            cur.execute("DROP TABLE bu")
        for index in range(4):
            columns = physical(sharded, DB, index, "SHOW COLUMNS FROM open_t")
            assert [c[0] for c in columns] == ["id", "v"]
            assert columns[1][4] is None
    finally:
        conn.close()


def test_locked_split_table_statements_keep_their_string_literals(sharded: ProxyEnv) -> None:
    """Under LOCK TABLES a split table's routed statements lose the alias routing gives the
    physical table (```lt_03` AS `lt```): that was a text substitution over the whole
    statement, string literals included -- a value written as that text was stored without
    its `` AS `lt` ``, the client told OK for a row it did not write."""
    conn = _client(sharded)
    written = [f"`lt_{n:02d}` AS `lt`" for n in range(8)]
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE lt (id int NOT NULL PRIMARY KEY, v varchar(60))"
                " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2"
            )
            cur.execute("LOCK TABLES lt WRITE")
            for n, value in enumerate(written):
                cur.execute("INSERT INTO lt VALUES (%s, %s)", (n, value))
            for n, value in enumerate(written):
                cur.execute("SELECT v FROM lt WHERE id = %s", (n,))
                assert cur.fetchall() == ((value,),), n
            cur.execute("SELECT COUNT(*) FROM lt WHERE v LIKE '%% AS `lt`'")
            assert cur.fetchall() == ((8,),)
            cur.execute("UNLOCK TABLES")
    finally:
        with conn.cursor() as cur:
            cur.execute("UNLOCK TABLES")
            cur.execute("DROP TABLE IF EXISTS lt")
        conn.close()
