"""A sharded database's diagnostics area is one MariaDB's: after each statement, SHOW WARNINGS /
SHOW ERRORS / SHOW COUNT(*) ... and @@warning_count / @@error_count answer what MariaDB answers
after the same statements on one unsharded database -- whichever physical database ran the
statement, and whoever wrote its error (a partition's error the proxy relays in the middle of a
scatter read is the last statement's error, as MariaDB's own would be; a statement that
succeeds on another partition than the session's own leaves an empty area, not the error of
the statement before it).

The reference: a plain database of the same name on the first shard with the same tables and
rows; the same statements through the proxy (sharded) and there, compared row for row.

The layout: ``shdiag`` over s0 and s1 with 4 physical databases, ``DBPARTITION BY HASH(id)``:
physical database = |id| mod 4 (physical database 0 is the session's own connection's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import plain_twin, sharded_database

DB = "shdiag"
PASSWORD = "Shdiag#pass1"
TABLES = [
    "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, s VARCHAR(10))",
    "CREATE TABLE big (id BIGINT NOT NULL PRIMARY KEY)",
]
ROWS = [
    "INSERT INTO t VALUES (0, 'a'), (1, 'a'), (2, 'a'), (3, 'a'), (4, 'a')",
    # (id * 9223372036854775807 is out of range from id 2 on: physical databases 2 and 3)
    "INSERT INTO big VALUES (0), (1), (2), (3)",
]
SPLIT = " DBPARTITION BY HASH(id)"
# What reads the area after each scenario (each answered alike, in order).
READS = [
    "SHOW WARNINGS",
    "SHOW ERRORS",
    "SHOW COUNT(*) WARNINGS",
    "SHOW COUNT(*) ERRORS",
    "SELECT @@warning_count, @@error_count",
    "SELECT 1",  # (names no table: the area stays)
    "SHOW WARNINGS",
    "SELECT @@warning_count, @@error_count",
]


@dataclass
class Twins:
    env: ProxyEnv
    plain: pymysql.connections.Connection[Any]


@pytest.fixture(scope="module")
def twins(proxy: ProxyEnv) -> Iterator[Twins]:
    home = proxy.shards[0]
    setup = [table + SPLIT for table in TABLES] + ROWS
    with (
        sharded_database(proxy, DB, PASSWORD, setup=setup) as env,
        plain_twin(proxy, DB, TABLES + ROWS),
    ):
        plain = connect_admin(home, database=DB)
        try:
            yield Twins(env, plain)
        finally:
            plain.close()


def _answer(conn: pymysql.connections.Connection[Any], sql: str) -> Any:
    """The rows ``sql`` answers, or its error (number, text)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return tuple(cur.fetchall())
    except pymysql.err.MySQLError as exc:
        return exc.args


def _alike(ours: Any, theirs: Any, statements: list[str]) -> None:
    for statement in statements:
        assert _answer(ours, statement) == _answer(theirs, statement), statement


@pytest.fixture
def ours(twins: Twins) -> Iterator[pymysql.connections.Connection[Any]]:
    conn = twins.env.connect(DB, PASSWORD, database=DB)
    try:
        yield conn
    finally:
        conn.close()


def test_a_partitions_error_in_a_scatter_read_is_the_areas(
    twins: Twins, ours: pymysql.connections.Connection[Any]
) -> None:
    """A scatter read whose rows physical database 2 ends with an error (1690, which the
    proxy writes in the middle of the concatenated answer): SHOW WARNINGS and the counts show
    that error, as MariaDB does -- not what physical database 0, whose part succeeded, or the
    statement before left."""
    _alike(
        ours,
        twins.plain,
        [
            "SELECT CAST('1x' AS SIGNED)",  # (a warning first: replaced after)
            "SELECT id * 9223372036854775807 FROM big",
            *READS,
        ],
    )


@pytest.mark.parametrize("times", [1, 2], ids=["command-loop", "fast-path"])
def test_a_statement_on_another_partition_starts_a_new_area(
    twins: Twins, ours: pymysql.connections.Connection[Any], times: int
) -> None:
    """An error (physical database 0's), then a statement that succeeds on physical database
    2 (through the command loop; the second time its shape is routed by the fast path):
    MariaDB's area is empty after it, and so is the sharded database's."""
    theirs = twins.plain
    for _ in range(times):
        _alike(ours, theirs, ["SELECT s FROM t WHERE id = 2"])
    _alike(ours, theirs, ["SELECT * FROM nosuch", "SHOW WARNINGS"])
    for _ in range(times):
        _alike(ours, theirs, ["SELECT s FROM t WHERE id = 2"])
    _alike(ours, theirs, READS)


def test_long_statements_read_the_area(
    twins: Twins, ours: pymysql.connections.Connection[Any]
) -> None:
    """Statements longer than the session analyses on its event loop, whose reading of the
    area is found in a slice past the first (proxy.session.session.reads_diagnostics, in the
    analysis threads): answered as MariaDB answers them, after a statement on physical
    database 2 emptied the area."""
    pad = "/* " + "x" * 100_000 + " */"
    _alike(
        ours,
        twins.plain,
        [
            "SELECT * FROM nosuch",
            "SELECT s FROM t WHERE id = 2",
            f"SELECT {pad} @@warning_count, @@error_count",
            "SELECT * FROM nosuch",
            "SELECT s FROM t WHERE id = 2",
            f"SELECT {pad} 1 {pad}",
            "SHOW WARNINGS",
        ],
    )


def test_warnings_of_a_statement_on_another_partition_are_the_areas(
    twins: Twins, ours: pymysql.connections.Connection[Any]
) -> None:
    """A statement on physical database 2 with a warning of its own after an error: SHOW
    WARNINGS lists that warning, through statements that name no table."""
    _alike(
        ours,
        twins.plain,
        [
            "SELECT * FROM nosuch",
            "SELECT id FROM t WHERE id = 2 AND s = 1",
            "SHOW WARNINGS",
            "SHOW COUNT(*) WARNINGS",
            "SELECT 1",
            "SHOW WARNINGS",
            "SELECT s FROM t WHERE id = 3",
            "SHOW WARNINGS",
        ],
    )


@pytest.mark.parametrize("names", ["utf8mb4", "latin1", "utf8"])
def test_warnings_the_proxy_answers_are_mariadbs_bytes(twins: Twins, names: str) -> None:
    """SHOW WARNINGS / ERRORS / COUNT(*) the proxy answers itself (a shard's error named in
    the logical database's terms): byte for byte MariaDB's answer -- its column definitions
    (Level and Message in the client's character set, of its lengths; Code INT UNSIGNED; the
    counts BIGINT UNSIGNED), rows and ends -- in each character set the client may use."""
    home = twins.env.shards[0]
    ours = BinaryClient(twins.env.port, DB, PASSWORD, DB)
    theirs = BinaryClient(home.port, home.user, home.password, DB)
    try:
        for client in (ours, theirs):
            client.query_raw(f"SET NAMES {names}")
            (failed,) = client.query_raw("SELECT * FROM nosuch")
            assert failed[:1] == b"\xff"
        for statement in [
            "SHOW WARNINGS",
            "SHOW ERRORS",
            "SHOW WARNINGS LIMIT 1",
            "SHOW COUNT(*) WARNINGS",
            "SHOW COUNT(*) ERRORS",
            "SELECT id FROM t WHERE id = 2 AND s = 1",
            "SHOW WARNINGS",
        ]:
            assert ours.query_raw(statement) == theirs.query_raw(statement), statement
    finally:
        ours.close()
        theirs.close()


def test_the_proxys_notes_stay_through_statements_that_name_no_table(
    twins: Twins, ours: pymysql.connections.Connection[Any]
) -> None:
    """CREATE TABLE IF NOT EXISTS of a sharded table there is: the proxy's own note 1050, as
    MariaDB's. MariaDB keeps that area through statements that name no table and raise
    nothing (SELECT 1, SET) and replaces it after one that raises a warning or names a
    table; so does the sharded database."""
    theirs = twins.plain
    exists = ["CREATE TABLE IF NOT EXISTS t (id INT NOT NULL PRIMARY KEY)"]
    for conn, create in ((ours, exists[0] + SPLIT), (theirs, exists[0])):
        with conn.cursor() as cur:
            cur.execute(create)
            assert cur.warning_count == 1
    _alike(
        ours,
        theirs,
        [
            "SHOW WARNINGS",
            "SELECT 1",
            "SHOW WARNINGS",
            "SET @a = 1",
            "SHOW COUNT(*) WARNINGS",
            "SHOW WARNINGS",
            "SELECT CAST('1x' AS SIGNED)",  # (a warning of its own: a new area)
            "SHOW WARNINGS",
        ],
    )
    for conn, create in ((ours, exists[0] + SPLIT), (theirs, exists[0])):
        with conn.cursor() as cur:
            cur.execute(create)
    _alike(ours, theirs, ["SELECT 1", "SELECT s FROM t WHERE id = 0", "SHOW WARNINGS"])


# What ROW_COUNT() and FOUND_ROWS() answer after statements on several partitions: each
# scenario's statements in turn, then the question (run on a fresh pair of sessions).
LAST_STATEMENT = [
    ["UPDATE t SET s = 'b'", "SELECT ROW_COUNT()"],
    ["UPDATE t SET s = 'a' WHERE id > 1", "SELECT ROW_COUNT(), ROW_COUNT() + 1 AS r"],
    ["UPDATE t SET s = 'a'", "SELECT ROW_COUNT()"],  # (nothing changed: 0)
    ["INSERT INTO t VALUES (10, 'x'), (11, 'x'), (12, 'x')", "SELECT ROW_COUNT()"],
    ["DELETE FROM t WHERE id >= 10", "SELECT ROW_COUNT()"],
    ["SELECT s FROM t", "SELECT FOUND_ROWS(), ROW_COUNT()"],
    ["SELECT s FROM t WHERE id > 1", "SELECT FOUND_ROWS()"],
    ["SELECT s FROM t WHERE id > 100", "SELECT FOUND_ROWS(), ROW_COUNT()"],
    ["SELECT id FROM t ORDER BY id LIMIT 2", "SELECT FOUND_ROWS()"],
    ["SELECT id FROM t ORDER BY id LIMIT 1, 2", "SELECT FOUND_ROWS()"],
    ["SELECT id FROM t ORDER BY id DESC LIMIT 3, 10", "SELECT FOUND_ROWS()"],
    ["SELECT s, COUNT(*) FROM t GROUP BY s", "SELECT FOUND_ROWS()"],
    ["SELECT COUNT(*) FROM t", "SELECT FOUND_ROWS(), ROW_COUNT()"],
    ["SELECT DISTINCT s FROM t", "SELECT FOUND_ROWS()"],
    ["SELECT SQL_CALC_FOUND_ROWS s FROM t", "SELECT FOUND_ROWS()"],
    # (a write leaves FOUND_ROWS() as the SELECT before it left it)
    ["SELECT s FROM t", "UPDATE t SET s = 'a'", "SELECT FOUND_ROWS(), ROW_COUNT()"],
    ["SELECT s FROM t WHERE id > 2", "UPDATE t SET s = 'c'", "SELECT ROW_COUNT(), FOUND_ROWS()"],
    ["UPDATE t SET s = 'a'", "SELECT ROW_COUNT()"],
    # (statements on physical database 0 that read no rows leave it too: not 0's own count)
    ["SELECT s FROM t", "SET @a = 1", "SELECT FOUND_ROWS(), ROW_COUNT()"],
    ["SELECT s FROM t WHERE id > 1", "SET @a = 1", "SET @b = 2", "SELECT FOUND_ROWS()"],
    ["SELECT s FROM t", "SELECT 1", "SELECT FOUND_ROWS(), ROW_COUNT()"],  # (0's: 1)
    # (a SELECT on partition 2 alone, after 0's of 2 rows: 2's count, not 0's)
    [
        "SELECT id FROM t WHERE id IN (0, 4)",
        "SELECT s FROM t WHERE id = 2",
        "SET @a = 1",
        "SELECT FOUND_ROWS()",
    ],
    # (a failed statement: -1)
    ["UPDATE t SET s = 'b'", "UPDATE t SET s = s WHERE nosuch = 1", "SELECT ROW_COUNT()"],
    ["SELECT id * 9223372036854775807 FROM big", "SELECT ROW_COUNT()"],
]


def _in_turn(conn: pymysql.connections.Connection[Any], statements: list[str]) -> list[Any]:
    return [_answer(conn, sql) for sql in statements]


@pytest.mark.parametrize("statements", LAST_STATEMENT, ids=lambda s: " / ".join(s)[:60])
def test_row_count_and_found_rows_after_a_statement_on_several_partitions(
    twins: Twins, statements: list[str]
) -> None:
    """ROW_COUNT() after a scatter UPDATE / DELETE or a multi-partition INSERT is the
    affected rows the proxy answered (their sum), -1 after a SELECT or a failure; FOUND_ROWS()
    after a scatter SELECT the rows it sent (those LIMIT's offset skipped counted, as MariaDB
    counts them), after a write what the SELECT before left. They were 1235 (each partition
    knows its own part only); now what MariaDB answers holding the table."""
    ours = twins.env.connect(DB, PASSWORD, database=DB)
    theirs = connect_admin(twins.env.shards[0], database=DB)
    try:
        assert _in_turn(ours, statements) == _in_turn(theirs, statements)
    finally:
        ours.close()
        theirs.close()


def test_row_count_after_a_scatter_write_is_mariadbs_bytes(twins: Twins) -> None:
    """The answer to SELECT ROW_COUNT() / FOUND_ROWS() the proxy computes: byte for byte
    MariaDB's (BIGINT NOT NULL, of its length: not an INT literal's column), in text and after
    the routed statements a partition answers too."""
    home = twins.env.shards[0]
    ours = BinaryClient(twins.env.port, DB, PASSWORD, DB)
    theirs = BinaryClient(home.port, home.user, home.password, DB)
    try:
        for statement in [
            "UPDATE t SET s = 'b'",
            "SELECT ROW_COUNT()",
            "UPDATE t SET s = 'a'",
            "SELECT ROW_COUNT() AS n, ROW_COUNT() - 1 AS m",
            "SELECT s FROM t",
            "SELECT FOUND_ROWS(), ROW_COUNT()",
            "UPDATE t SET s = 'a' WHERE id = 2",
            "SELECT ROW_COUNT()",
            "SELECT s FROM t WHERE id = 3",
            "SELECT FOUND_ROWS()",
        ]:
            mine, its = ours.query_raw(statement), theirs.query_raw(statement)
            if statement.startswith("SELECT"):  # (an OK's info text is not the question)
                assert mine == its, statement
    finally:
        ours.close()
        theirs.close()


NAMED = [
    "SELECT ROW_COUNT() - 1",
    "SELECT ROW_COUNT()  -  1, 2",
    "SELECT (ROW_COUNT()), ROW_COUNT( )",
    "SELECT ROW_COUNT()/* c */+ 0 FROM t WHERE id = 0",
    "SELECT IFNULL(ROW_COUNT(), 0) * 2 AS kept, 1 + ROW_COUNT() kept_too",
    "SELECT `ROW_COUNT`() + 0, -ROW_COUNT()",
    "SELECT FOUND_ROWS() - 1, 1 + @@warning_count, @@error_count + @@warning_count",
    "SELECT ROW_COUNT() - 1 UNION SELECT 5",
    "SELECT x FROM (SELECT ROW_COUNT() + 1 AS x) d",
    "SELECT * FROM (SELECT ROW_COUNT() + 1) d",
    "SELECT (SELECT ROW_COUNT() - 1) + 1",
    "SELECT ROW_COUNT() - 1 = 0, CASE WHEN ROW_COUNT() > 0 THEN 1 ELSE 0 END",
    "SELECT ROW_COUNT() + " + " + ".join(["1"] * 150),
    "SELECT ROW_COUNT() - 1 FROM t",  # (every partition's rows, concatenated)
    "SELECT ROW_COUNT() - 1, COUNT(*) FROM t",  # (merged)
    "SELECT FOUND_ROWS()\n+ 0, MAX(id) FROM t WHERE id IN (1, 2)",
]


@pytest.mark.parametrize("question", NAMED)
def test_the_counts_in_expressions_are_named_as_mariadb_names_them(
    twins: Twins, question: str
) -> None:
    """ROW_COUNT(), FOUND_ROWS() and the counts the proxy answers inside an expression of a
    select item without an alias: the column is named by the client's text of the item, as
    MariaDB names it (it showed the text the proxy put in, ``IF(0, ROW_COUNT(), 5) - 1``);
    an alias stays. Byte for byte MariaDB's answer after a scatter write."""
    home = twins.env.shards[0]
    ours = BinaryClient(twins.env.port, DB, PASSWORD, DB)
    theirs = BinaryClient(home.port, home.user, home.password, DB)
    try:
        for conn in (ours, theirs):
            conn.query_raw("UPDATE t SET s = 'a'")
            conn.query_raw("SELECT id FROM t WHERE s = 1")  # (5 rows, 5 warnings)
        assert ours.query_raw(question) == theirs.query_raw(question), question
    finally:
        ours.close()
        theirs.close()


def test_found_rows_the_proxy_cannot_count_is_refused(
    ours: pymysql.connections.Connection[Any],
) -> None:
    """FOUND_ROWS() after a scatter SELECT whose LIMIT offset skipped every row (how many it
    skipped is not known) or after a failed one (MariaDB counts the rows it sent before the
    error in its own order, or keeps the last count for a statement that never ran): 1235
    rather than a guess; ROW_COUNT() is still answered."""
    with ours.cursor() as cur:
        for sql in (
            "SELECT id FROM t ORDER BY id LIMIT 10, 2",
            "SELECT * FROM t WHERE nosuch = 1",
        ):
            _answer(ours, sql)
            answer = _answer(ours, "SELECT FOUND_ROWS()")
            assert len(answer) == 2, (sql, answer)
            errno, message = answer
            assert errno == 1235 and "FOUND_ROWS()" in message, (sql, message)
            _answer(ours, sql)
            cur.execute("SELECT ROW_COUNT()")
            assert cur.fetchall() == ((-1,),), sql


@pytest.mark.parametrize(
    "statements",
    [
        # (every partition's rows warn: 1292 for each 'a' compared with a number)
        ["SELECT id FROM t WHERE s = 1"],
        ["SELECT COUNT(*) FROM t WHERE s = 1"],  # (merged)
        ["SELECT id FROM t WHERE s = 1 ORDER BY id DESC LIMIT 3"],  # (merged, cut)
        ["SELECT id FROM t WHERE id IN (1, 2, 3) AND s = 1"],  # (neither is partition 0)
        ["SELECT * FROM nosuch", "SELECT id FROM t WHERE s = 1", "SELECT 1"],
        # (partition 2's warning after partition 0's error: @@error_count was 0's, 1)
        ["UPDATE t SET s = s WHERE s = 1", "SELECT id FROM t WHERE id = 2 AND s = 1"],
        ["SELECT * FROM nosuch", "SELECT id FROM t WHERE id = 3 AND s = 1"],
        # (writes: every partition's statement warns; in one XA transaction, or the client's)
        ["UPDATE IGNORE t SET s = s WHERE s = 1"],
        ["BEGIN", "UPDATE IGNORE t SET s = s WHERE s = 1", *READS, "ROLLBACK"],
        # (COMMIT and ROLLBACK name no table: the area stays through them)
        ["BEGIN", "SELECT id FROM t WHERE s = 1", "COMMIT"],
    ],
    ids=lambda s: " / ".join(s)[:60],
)
def test_a_statements_conditions_on_other_partitions_are_the_areas(
    twins: Twins, ours: pymysql.connections.Connection[Any], statements: list[str]
) -> None:
    """The area after a statement on several partitions holds every partition's conditions,
    as MariaDB's for the one statement (it showed physical database 0's or the last
    partition's only: 2 of 5), and @@warning_count / @@error_count after a statement whose
    conditions are on another partition than physical database 0 count that statement's
    (they were physical database 0's own, an earlier statement's error). Writes alike."""
    _alike(ours, twins.plain, [*statements, *READS])


def test_the_counts_the_proxy_answers_are_mariadbs_bytes(twins: Twins) -> None:
    """@@warning_count / @@error_count answered from the conditions the proxy holds: byte for
    byte MariaDB's answer (BIGINT UNSIGNED, not an INT literal's column)."""
    home = twins.env.shards[0]
    ours = BinaryClient(twins.env.port, DB, PASSWORD, DB)
    theirs = BinaryClient(home.port, home.user, home.password, DB)
    try:
        for statement in [
            "SELECT id FROM t WHERE s = 1",
            "SELECT @@warning_count, @@session.error_count",
            "SELECT id FROM t WHERE id = 2 AND s = 1",
            "SELECT @@warning_count AS w, @@error_count",
        ]:
            assert ours.query_raw(statement) == theirs.query_raw(statement), statement
    finally:
        ours.close()
        theirs.close()


def test_a_statement_the_proxy_refuses_leaves_found_rows(
    ours: pymysql.connections.Connection[Any],
) -> None:
    """A statement the proxy refuses (1235: in the plan, or the sharded executor's before any
    partition ran it) ran nowhere: FOUND_ROWS() after it is still the scatter SELECT's before
    it, as after any failed statement on MariaDB -- not physical database 0's part of it (2
    of 5) -- and ROW_COUNT() is -1, not the count of what physical database 0 ran last."""
    with ours.cursor() as cur:
        for refused in ("DO 1", "SELECT SQL_CALC_FOUND_ROWS id FROM t ORDER BY id LIMIT 2"):
            cur.execute("SELECT s FROM t")
            assert len(cur.fetchall()) == 5
            assert _answer(ours, refused)[0] == 1235
            cur.execute("SELECT FOUND_ROWS()")
            assert cur.fetchall() == ((5,),), refused
            cur.execute("UPDATE t SET s = 'a' WHERE id = 0")  # (physical database 0's)
            assert _answer(ours, refused)[0] == 1235
            cur.execute("SELECT ROW_COUNT()")
            assert cur.fetchall() == ((-1,),), refused


def test_prepared_statements_on_several_partitions_answer_as_text_ones(twins: Twins) -> None:
    """The same after executions of prepared statements (binary protocol) on several
    partitions: ROW_COUNT(), FOUND_ROWS(), the counts and SHOW WARNINGS byte for byte
    MariaDB's answers after the same executions."""
    home = twins.env.shards[0]
    ours = BinaryClient(twins.env.port, DB, PASSWORD, DB)
    theirs = BinaryClient(home.port, home.user, home.password, DB)
    try:
        cases: list[tuple[str, list[int | str | bytes | None], str]] = [
            ("UPDATE t SET s = ? WHERE id > ?", ["b", 0], "SELECT ROW_COUNT()"),
            ("UPDATE t SET s = ? WHERE id >= ?", ["a", 0], "SELECT ROW_COUNT()"),
            ("SELECT s FROM t WHERE id > ?", [1], "SELECT FOUND_ROWS(), ROW_COUNT()"),
            ("SELECT id FROM t WHERE id > ? ORDER BY id LIMIT 1, 2", [0], "SELECT FOUND_ROWS()"),
            ("SELECT id FROM t WHERE s = ?", [1], "SELECT @@warning_count, @@error_count"),
            ("SELECT id FROM t WHERE s = ?", [1], "SHOW WARNINGS"),
        ]
        for sql, params, question in cases:
            mine = ours.execute(ours.prepare(sql), params)
            its = theirs.execute(theirs.prepare(sql), params)
            assert mine == its, sql
            assert ours.query_raw(question) == theirs.query_raw(question), (sql, question)
    finally:
        ours.close()
        theirs.close()
