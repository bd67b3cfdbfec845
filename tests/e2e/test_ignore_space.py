"""A built-in function name followed by a space, read as MariaDB reads it, through real clients
against real MariaDB shards.

MariaDB's lexer takes the names of its ``sql_functions[]`` (COUNT, SUM, MAX, NOW, TRIM, CAST...:
``proxy.sql.mariadb_words.SPACED_FUNCTIONS``) for the built-in only when ``(`` follows at once
-- under IGNORE_SPACE (``sql_mode``, or the client's CLIENT_IGNORE_SPACE at login) after
whitespace only, never after a comment. Otherwise ``count (v)`` calls a stored function
``count`` of the current database, as a backquoted `` `count`(v) `` always does.

Findings (each test fails without its fix):

* The proxy read ``count (v)`` as the COUNT aggregate whatever the spacing and the sql_mode:
  on a sharded table the scatter merged it as one, and the partitions (sent the merge's
  rewritten ``COUNT(v)``) computed it -- the client got the row count where MariaDB calls the
  stored function ``count`` (refused: the account holds no EXECUTE), even with one made on
  the shard. Now the lexer reads such a word as a name: a stored-function call, refused (1235)
  where the proxy's parser would take it for the built-in, relayed like ``myfunc(v)``
  otherwise.
* ``session_user ()`` (and ``system_user ()``, after any gap) was answered by the proxy itself
  as the identity function, where MariaDB calls a stored function (1370 for the account).
* A write to a broadcast table calling ``trim (v)`` was relayed to every copy as the
  deterministic TRIM (each copy refused it, 1370); it is a stored function's call, refused
  by the proxy as any is there (1235).
* CLIENT_IGNORE_SPACE was advertised to clients but not passed on to the shard: a client
  asking for it got ``count (v)`` refused where MariaDB counts. It reaches the shard now, whose
  sql_mode (read back) the proxy lexes by.

(The sharded test without IGNORE_SPACE passes without the fix too: the partitions got the
client's ``count (v)`` and refused it; it pins that the merge does not change that.)
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy.sql.mariadb_words import SPACED_FUNCTIONS
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import shard_of, sharded_database

PASSWORD = "IgSpace#pass1"
DB = "shigsp"
READER = "igreader"
READER_PASSWORD = "IgSpace#reader1"
PLAIN_READER = "igplain"
PLAIN = "easydb"
DIRECT = "igdirect"  # the same privileges, directly on the shard

# Arguments each name is called with (one that makes the built-in answer), default "v".
ARGS = {
    "ADDDATE": "'2020-01-01', 1",
    "SUBDATE": "'2020-01-01', 1",
    "DATE_ADD": "'2020-01-01', INTERVAL 1 DAY",
    "DATE_SUB": "'2020-01-01', INTERVAL 1 DAY",
    "CAST": "v AS CHAR",
    "EXTRACT": "DAY FROM '2020-01-02'",
    "POSITION": "'1' IN v",
    "MID": "v, 1, 1",
    "SUBSTR": "v, 2",
    "SUBSTRING": "v, 2",
    "CURDATE": "",
    "CURTIME": "",
    "NOW": "",
    "SESSION_USER": "",
    "SYSTEM_USER": "",
    "CUME_DIST": "",
    "DENSE_RANK": "",
    "PERCENT_RANK": "",
    "RANK": "",
    "NTILE": "2",
    "NTH_VALUE": "v, 1",
    "PERCENTILE_CONT": "0.5",
    "PERCENTILE_DISC": "0.5",
    "MEDIAN": "id",
    "JSON_OBJECTAGG": "id, v",
}
WINDOW = {
    "CUME_DIST": "OVER (ORDER BY id)",
    "DENSE_RANK": "OVER (ORDER BY id)",
    "PERCENT_RANK": "OVER (ORDER BY id)",
    "RANK": "OVER (ORDER BY id)",
    "NTILE": "OVER (ORDER BY id)",
    "NTH_VALUE": "OVER (ORDER BY id)",
    "FIRST_VALUE": "OVER (ORDER BY id)",
    "LAG": "OVER (ORDER BY id)",
    "LEAD": "OVER (ORDER BY id)",
    "PERCENTILE_CONT": "WITHIN GROUP (ORDER BY id) OVER ()",
    "PERCENTILE_DISC": "WITHIN GROUP (ORDER BY id) OVER ()",
    "MEDIAN": "OVER ()",
}
# Answers that differ between two runs or two accounts: only the reading is compared.
VOLATILE = frozenset({"NOW", "CURDATE", "CURTIME", "SESSION_USER", "SYSTEM_USER"})
# How the name meets its "(".
GAPS = ["", " ", "\t", "\n", "/**/", "/*!*/", " -- c\n", "#c\n"]


def _call(name: str, gap: str, spelling: str | None = None) -> str:
    word = spelling or name.lower()
    return f"{word}{gap}({ARGS.get(name, 'v')}) {WINDOW.get(name, '')}".rstrip()


def _answer(cur: Any, sql: str) -> tuple[str, Any]:
    """("rows", the rows) or ("error", errno)."""
    try:
        cur.execute(sql)
        return "rows", cur.fetchall()
    except pymysql.err.MySQLError as error:
        return "error", error.args[0]


@pytest.fixture(scope="module")
def plain(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """Table ig_t in the unsharded database easydb (on shard s0), an account that may read it
    through the proxy, and one with the same privilege directly on the shard; a stored
    function ``count`` made on the shard by its administrator."""
    with proxy.connect() as owner, owner.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS ig_t")
        cur.execute("CREATE TABLE ig_t (id int PRIMARY KEY, v varchar(20))")
        cur.execute("INSERT INTO ig_t VALUES (1, 'a1'), (2, 'b2'), (3, 'c3')")
        cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER}'@'%'")
        cur.execute(f"CREATE USER '{PLAIN_READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
        cur.execute(f"GRANT SELECT ON {PLAIN}.ig_t TO '{PLAIN_READER}'@'%'")
    admin = connect_admin(proxy.shards[0])
    try:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{DIRECT}'@'%'")
            cur.execute(f"CREATE USER '{DIRECT}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
            cur.execute(f"GRANT SELECT ON {PLAIN}.ig_t TO '{DIRECT}'@'%'")
        yield proxy
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{DIRECT}'@'%'")
            cur.execute(f"DROP FUNCTION IF EXISTS {PLAIN}.count")
        admin.close()
        with proxy.connect() as owner, owner.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER}'@'%'")
            cur.execute("DROP TABLE IF EXISTS ig_t")


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    with sharded_database(proxy, DB, PASSWORD):
        conn = proxy.connect(DB, PASSWORD, database=DB)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE t (id int NOT NULL PRIMARY KEY, v varchar(20))"
                    " DBPARTITION BY HASH(id)"
                )
                cur.execute("INSERT INTO t VALUES (0, 'a0'), (1, 'b1'), (2, 'c2'), (3, 'd3')")
                cur.execute("CREATE TABLE bc (id int PRIMARY KEY, v varchar(20)) BROADCAST")
                cur.execute("INSERT INTO bc VALUES (1, ' x ')")
                cur.execute(f"CREATE USER '{READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
                cur.execute(f"GRANT SELECT ON {DB}.t TO '{READER}'@'%'")
        finally:
            conn.close()
        yield proxy


def _direct(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    shard = env.shards[0]
    return pymysql.connect(
        host=shard.host,
        port=shard.port,
        user=DIRECT,
        password=READER_PASSWORD,
        database=PLAIN,
        autocommit=True,
        **kwargs,
    )


def _stored_count(env: ProxyEnv, database: str, shard: int) -> None:
    """A stored function ``count`` in ``database``, made on the shard by its administrator;
    MariaDB's administrator gets its answer (42) for ``count (v)``, the built-in's for
    ``count(v)``."""
    admin = connect_admin(env.shards[shard], database=database)
    try:
        with admin.cursor() as cur:
            cur.execute("DROP FUNCTION IF EXISTS count")
            cur.execute(
                "CREATE FUNCTION `count`(x varchar(20)) RETURNS int DETERMINISTIC RETURN 42"
            )
            cur.execute("SELECT count (v), count(v) FROM (SELECT 'x' AS v) AS d")
            assert cur.fetchall() == ((42, 1),)
    finally:
        admin.close()


MODES = [
    pytest.param({}, None, id="default"),
    pytest.param({}, "IGNORE_SPACE", id="sql_mode"),
    pytest.param({"client_flag": CLIENT.IGNORE_SPACE}, None, id="client_flag"),
]


@pytest.mark.parametrize(("login", "sql_mode"), MODES)
def test_unsharded_reads_every_spaced_name_as_mariadb_does(
    plain: ProxyEnv, login: dict[str, Any], sql_mode: str | None
) -> None:
    """Every name of sql_functions[] after every kind of gap, under each way of setting
    IGNORE_SPACE: the proxy's answer is MariaDB's for an account with the same privileges
    (the same rows, or an error where MariaDB refuses -- it calls a stored function there),
    with a stored function ``count`` on the shard."""
    _stored_count(plain, PLAIN, 0)
    proxied = plain.connect(PLAIN_READER, READER_PASSWORD, database=PLAIN, **login)
    direct = _direct(plain, **login)
    disagree: list[tuple[str, Any, Any]] = []
    try:
        with proxied.cursor() as pcur, direct.cursor() as dcur:
            if sql_mode is not None:
                for cur in (pcur, dcur):
                    cur.execute(f"SET sql_mode = CONCAT(@@sql_mode, ',{sql_mode}')")
            for cur in (pcur, dcur):
                cur.execute("SELECT @@sql_mode LIKE '%IGNORE_SPACE%'")
                assert cur.fetchall() == ((int(bool(login or sql_mode)),),)
            for name in sorted(SPACED_FUNCTIONS):
                adjacent = f"SELECT {_call(name, '')} FROM ig_t ORDER BY id"
                if _answer(pcur, adjacent) == ("error", 1235):
                    continue  # the proxy refuses the built-in itself (here PERCENTILE_CONT)
                for gap in GAPS:
                    sql = f"SELECT {_call(name, gap)} FROM ig_t ORDER BY id"
                    mine, theirs = _answer(pcur, sql), _answer(dcur, sql)
                    same = mine[0] == theirs[0] and (
                        mine[0] == "error" or name in VOLATILE or mine == theirs
                    )
                    if not same:
                        disagree.append((sql, mine, theirs))
            for sql in (
                "SELECT `count`(v) FROM ig_t",
                "SELECT `count` (v) FROM ig_t",
                f"SELECT {PLAIN}.count(v) FROM ig_t",
                "SELECT /*!count */(v) FROM ig_t",
                "SELECT /*!count (v)*/ FROM ig_t",
                "SET STATEMENT sql_mode = 'IGNORE_SPACE' FOR SELECT count (v) FROM ig_t",
            ):
                mine, theirs = _answer(pcur, sql), _answer(dcur, sql)
                if mine[0] != theirs[0] or (mine[0] == "rows" and mine != theirs):
                    disagree.append((sql, mine, theirs))
    finally:
        proxied.close()
        direct.close()
    assert disagree == [], "\n".join(map(repr, disagree))


@pytest.mark.parametrize(("login", "sql_mode"), MODES)
def test_sharded_scatter_does_not_merge_a_stored_function_as_an_aggregate(
    sharded: ProxyEnv, login: dict[str, Any], sql_mode: str | None
) -> None:
    """On a table over four partitions, with a stored function ``count`` on every physical
    database: where MariaDB reads the aggregate the proxy merges it (4, the sum, the maximum);
    where it reads a call of the stored function the proxy does not compute the aggregate --
    it refuses, as MariaDB does the account (no EXECUTE)."""
    for index in range(4):
        _stored_count(sharded, f"{DB}_{index:04d}", shard_of(index, 4))
    ignore_space = bool(login or sql_mode)
    conn = sharded.connect(READER, READER_PASSWORD, database=DB, **login)
    aggregates = {
        "count": ((4,),),
        "sum": ((Decimal(6),),),
        "max": (("d3",),),
        "min": (("a0",),),
    }
    wrong: list[tuple[str, Any]] = []
    try:
        with conn.cursor() as cur:
            if sql_mode is not None:
                cur.execute(f"SET sql_mode = CONCAT(@@sql_mode, ',{sql_mode}')")
            for name, expected in aggregates.items():
                column = "id" if name in ("sum", "bit_or") else "v"
                for gap in GAPS:
                    for spelling in (name, name.upper()):
                        sql = f"SELECT {spelling}{gap}({column}) FROM t"
                        builtin = gap == "" or (ignore_space and not gap.strip(" \t\n"))
                        answer = _answer(cur, sql)
                        want = ("rows", expected) if builtin else "error"
                        if (answer if builtin else answer[0]) != want:
                            wrong.append((sql, answer))
            for sql in (
                "SELECT `count`(v) FROM t",
                "SELECT `sum` (id) FROM t",
                "SELECT count/*!*/(v), id FROM t GROUP BY id",
                "SELECT json_arrayagg/**/(id) FROM t",
            ):
                answer = _answer(cur, sql)
                if answer[0] != "error":
                    wrong.append((sql, answer))
            # merged shapes: the rewrite sent to the partitions must not make it the built-in
            for sql, expected_rows in (
                ("SELECT count (v) AS n FROM t ORDER BY n", ((4,),)),
                ("SELECT count (v) FROM t LIMIT 1", ((4,),)),
                ("SELECT count (v) FROM t HAVING count (v) > 0", ((4,),)),
                ("SELECT id % 2 AS k, count (v) FROM t GROUP BY k ORDER BY k", ((0, 2), (1, 2))),
            ):
                answer = _answer(cur, sql)
                if answer != ("rows", expected_rows) if ignore_space else answer[0] != "error":
                    wrong.append((sql, answer))
            # a spaced name in a routed statement: the partition's MariaDB decides alike
            answer = _answer(cur, "SELECT count (v) FROM t WHERE id = 2")
            if answer != (("rows", ((1,),)) if ignore_space else ("error", answer[1])):
                wrong.append(("routed", answer))
    finally:
        conn.close()
    assert wrong == [], "\n".join(map(repr, wrong))


@pytest.mark.parametrize(("login", "sql_mode"), MODES)
def test_broadcast_write_with_a_spaced_name_is_a_stored_function_call(
    sharded: ProxyEnv, login: dict[str, Any], sql_mode: str | None
) -> None:
    """A write to a broadcast table calling ``trim (v)``: without IGNORE_SPACE a stored
    function ``trim`` for MariaDB, which each copy would compute for itself -- refused (1235,
    as any stored function there); under IGNORE_SPACE the built-in, written to every copy."""
    ignore_space = bool(login or sql_mode)
    conn = sharded.connect(DB, PASSWORD, database=DB, **login)
    try:
        with conn.cursor() as cur:
            if sql_mode is not None:
                cur.execute(f"SET sql_mode = CONCAT(@@sql_mode, ',{sql_mode}')")
            cur.execute("UPDATE bc SET v = ' x ' WHERE id = 1")
            answer = _answer(cur, "UPDATE bc SET v = trim (v) WHERE id = 1")
            if ignore_space:
                assert answer[0] == "rows", answer
            else:
                assert answer == ("error", 1235)
            # (under IGNORE_SPACE the lexer refuses a comment after the name: 1064)
            assert _answer(cur, "UPDATE bc SET v = trim/**/(v) WHERE id = 1") == (
                "error",
                1064 if ignore_space else 1235,
            )
    finally:
        conn.close()
    copies = set()
    for index in range(4):
        admin = connect_admin(sharded.shards[shard_of(index, 4)], database=f"{DB}_{index:04d}")
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT v FROM bc WHERE id = 1")
                copies.update(cur.fetchall())
        except pymysql.err.MySQLError:
            continue  # (a broadcast table need not be on every physical database)
        finally:
            admin.close()
    assert copies == {("x",)} if ignore_space else {(" x ",)}


def test_backquoted_native_identity_functions_are_answered(proxy: ProxyEnv) -> None:
    """MariaDB calls its native functions (NATIVE_FUNCTIONS) backquoted too: `CONNECTION_ID`()
    is the built-in -- which the shard answered with its own connection's id, and
    `FOUND_ROWS`() / `ROW_COUNT`() with the backend connection's last statement, not the
    session's. A qualified name is a stored function's call (not answered), and a table of
    one of these names, ``INSERT INTO found_rows () VALUES ()``, is a table (not spliced)."""
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        ((ours,),) = cur.fetchall()
        for spelling in ("`CONNECTION_ID`()", "`connection_id` ( )", "`CONNECTION_ID`/**/()"):
            cur.execute(f"SELECT {spelling}, {spelling} AS c")
            assert cur.fetchall() == ((ours, ours),), spelling
            assert cur.description[0][0] == spelling
        cur.execute("SELECT 1 UNION SELECT 2")
        cur.fetchall()
        cur.execute("SELECT `FOUND_ROWS`()")
        assert cur.fetchall() == ((2,),)
        cur.execute("DROP TABLE IF EXISTS found_rows")
        cur.execute("CREATE TABLE found_rows (a int)")
        try:
            cur.execute("INSERT INTO found_rows () VALUES ()")
            cur.execute("INSERT INTO `found_rows` () VALUES ()")
            cur.execute("SELECT COUNT(*) FROM found_rows")
            assert cur.fetchall() == ((2,),)
        finally:
            cur.execute("DROP TABLE found_rows")
        with pytest.raises(pymysql.err.OperationalError) as info:
            cur.execute("SELECT easydb.CONNECTION_ID()")
        assert info.value.args[0] == 1370  # as MariaDB: no EXECUTE on the stored function
